//! A cross-check for the criterion benches on a noisy machine: the same receive and
//! send workloads, hybi, tungstenite and fastwebsockets taking turns in short rounds
//! (so a burst of load from elsewhere hits all three alike), reporting the median of
//! each library's rounds and the ratios.
//!
//! ```text
//! cargo run --release -p hybi-benches --example interleaved [ROUNDS]
//! ```

use std::hint::black_box;
use std::time::Instant;

use hybi::{Config, Connection};
use hybi_benches::{
    CHUNK, Content, Cycle, KernelSink, client_stream, messages_for, payload, receive_messages,
    send_messages,
};
use rand::{Rng, SeedableRng};

#[path = "../benches/peers/mod.rs"]
mod peers;
use peers::MemStream;

/// About this many payload bytes per round and library.
const ROUND_BYTES: usize = 8 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs each closure `rounds` times in turn; returns each one's median seconds per call.
fn interleave(rounds: usize, runs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut times = vec![Vec::new(); runs.len()];
    for run in runs.iter_mut() {
        run(); // warm-up
    }
    for _ in 0..rounds {
        for (run, t) in runs.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            run();
            t.push(start.elapsed().as_secs_f64());
        }
    }
    times.into_iter().map(median).collect()
}

fn print_row(case: &str, msgs: usize, bytes: usize, secs: &[f64]) {
    let rate = |s: f64| msgs as f64 / s;
    let gbps = |s: f64| bytes as f64 / s / 1e9;
    let mut row = format!("| {case} |");
    for s in secs {
        let r = rate(*s);
        let r = if r >= 1e6 {
            format!("{:.2} M", r / 1e6)
        } else {
            format!("{:.1} k", r / 1e3)
        };
        row += &format!(" {r} | {:.2} |", gbps(*s));
    }
    row += &format!(" {:.2}x | {:.2}x |", secs[1] / secs[0], secs[2] / secs[0]);
    println!("{row}");
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let rt = peers::runtime();
    println!("{rounds} interleaved rounds; medians. msgs/s and GB/s of payload.\n");
    println!(
        "| case | hybi msgs/s | hybi GB/s | tungstenite msgs/s | tungstenite GB/s | fastwebsockets msgs/s | fastwebsockets GB/s | hybi/tungstenite | hybi/fastwebsockets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut cases = Vec::new();
    for size in [16, 125, 1 << 10, 64 << 10, 1 << 20] {
        cases.push((Content::Binary, size));
        cases.push((Content::Ascii, size));
        if size == 1 << 10 {
            cases.push((Content::MultiByte, size));
        }
    }
    for (content, size) in cases {
        let count = if size >= 1 << 20 {
            4
        } else {
            messages_for(size)
        };
        let laps = (ROUND_BYTES / (count * size)).max(1);
        let wire = client_stream(content, &payload(content, size), count);
        let expected = count * size;

        let mut conn = Connection::server(Config::default());
        let mut cycle = Cycle::new(&wire);
        let mut hybi_run = || {
            for _ in 0..laps {
                assert_eq!(receive_messages(&mut conn, &mut cycle, count).1, expected);
            }
        };
        let mut tws = tungstenite::WebSocket::from_raw_socket(
            MemStream::new(wire.clone()),
            tungstenite::protocol::Role::Server,
            Some(peers::tungstenite_config()),
        );
        let mut tungstenite_run = || {
            for _ in 0..laps * count {
                match tws.read() {
                    Ok(tungstenite::Message::Binary(d)) => black_box(d.len()),
                    Ok(tungstenite::Message::Text(t)) => black_box(t.len()),
                    other => panic!("{other:?}"),
                };
            }
        };
        let mut fws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(wire.clone()),
            fastwebsockets::Role::Server,
        );
        let mut fastwebsockets_run = || {
            rt.block_on(async {
                for _ in 0..laps * count {
                    let frame = fws.read_frame().await.expect("read_frame");
                    black_box(frame.payload.len());
                }
            })
        };
        let secs = interleave(
            rounds,
            &mut [&mut hybi_run, &mut tungstenite_run, &mut fastwebsockets_run],
        );
        let case = format!("receive {}/{}", content.name(), size);
        print_row(&case, laps * count, laps * expected, &secs);
    }

    for client in [true, false] {
        for size in [16, 1 << 10, 64 << 10] {
            let count = messages_for(size).min(1 << 16);
            let laps = (ROUND_BYTES / (count * size)).max(1);
            let data = payload(Content::Binary, size);

            let mut conn = if client {
                let mut rng = rand::rngs::StdRng::seed_from_u64(7);
                Connection::client(Config::default(), move |b: &mut [u8]| rng.fill_bytes(b))
            } else {
                Connection::server(Config::default())
            };
            let mut sink = KernelSink::new();
            let mut hybi_run = || {
                for _ in 0..laps {
                    send_messages(&mut conn, &mut sink, &data, count);
                }
            };
            let role = if client {
                tungstenite::protocol::Role::Client
            } else {
                tungstenite::protocol::Role::Server
            };
            let mut tws = tungstenite::WebSocket::from_raw_socket(
                MemStream::sink(),
                role,
                Some(peers::tungstenite_config().write_buffer_size(CHUNK)),
            );
            let bytes = tungstenite::Bytes::from(data.clone());
            let mut tungstenite_run = || {
                for _ in 0..laps * count {
                    tws.write(tungstenite::Message::Binary(bytes.clone()))
                        .expect("write");
                }
                tws.flush().expect("flush");
            };
            let role = if client {
                fastwebsockets::Role::Client
            } else {
                fastwebsockets::Role::Server
            };
            let mut fws = fastwebsockets::WebSocket::after_handshake(MemStream::sink(), role);
            let mut scratch = data.clone();
            let mut fastwebsockets_run = || {
                rt.block_on(async {
                    for _ in 0..laps * count {
                        let payload = if client {
                            fastwebsockets::Payload::BorrowedMut(&mut scratch)
                        } else {
                            fastwebsockets::Payload::Borrowed(&scratch)
                        };
                        fws.write_frame(fastwebsockets::Frame::binary(payload))
                            .await
                            .expect("write_frame");
                    }
                })
            };
            let secs = interleave(
                rounds,
                &mut [&mut hybi_run, &mut tungstenite_run, &mut fastwebsockets_run],
            );
            let case = format!("send {}/{}", if client { "client" } else { "server" }, size);
            print_row(&case, laps * count, laps * count * size, &secs);
        }
    }
}

//! The permessage-deflate codec workloads of `benches/deflate.rs` without criterion,
//! for profilers and instruction counts (valgrind --tool=callgrind): 256 different
//! 1 KiB JSON-like text messages received or sent LAPS times.
//!
//! ```text
//! cargo build --release -p hybi-benches --example deflate_profile
//! valgrind --tool=callgrind target/release/examples/deflate_profile receive takeover 20
//! ```
//!
//! Arguments: `(receive|send) (plain|takeover|no-takeover) [LAPS]`; 0 laps runs only
//! the setup (to subtract it).

use hybi::deflate::{Agreement, DeflateConfig};
use hybi::{Config, Connection, Event, Next};
use hybi_benches::{Cycle, KernelSink, drain, json_messages};

fn with(mut conn: Connection, agreement: Option<Agreement>) -> Connection {
    if let Some(a) = agreement {
        conn.enable_deflate(a, DeflateConfig::default());
    }
    conn
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: deflate_profile (receive|send) (plain|takeover|no-takeover) [LAPS]";
    let (Some(path), Some(mode)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let laps: usize = args.get(2).map_or(20, |l| l.parse().expect(usage));
    let agreement = match mode.as_str() {
        "plain" => None,
        "takeover" => Some(Agreement::default()),
        "no-takeover" => Some(Agreement {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Agreement::default()
        }),
        _ => panic!("{usage}"),
    };
    // `HYBI_LOAD_PAYLOADS=1`: the 64 messages `hybi load --json-payload` sends instead.
    let messages = if std::env::var_os("HYBI_LOAD_PAYLOADS").is_some() {
        load_payloads(1024)
    } else {
        json_messages(1024, 256)
    };
    let mut total = 0;
    match path.as_str() {
        "receive" => {
            let mut c = with(
                Connection::client(Config::default(), |b: &mut [u8]| b.fill(0x5a)),
                agreement,
            );
            let mut wire = Vec::new();
            for m in &messages {
                c.send_text(m).expect("send");
                while let Some(t) = c.transmit() {
                    wire.extend_from_slice(t.bytes());
                    let n = t.bytes().len();
                    t.consume(n);
                }
            }
            let mut server = with(Connection::server(Config::default()), agreement);
            let mut cycle = Cycle::new(&wire);
            let mut got = 0;
            while got < laps * messages.len() {
                let n = cycle.read_into(server.read_buf());
                server.commit(n);
                loop {
                    match server.next() {
                        Next::Event(Event::Text(t), _) => {
                            total += std::hint::black_box(t.len());
                            got += 1;
                        }
                        Next::Wait(_) => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        }
        "send" => {
            let mut server = with(Connection::server(Config::default()), agreement);
            let mut sink = KernelSink::new();
            for _ in 0..laps {
                for m in &messages {
                    server.send_text(m).expect("send");
                }
                total += drain(&mut server, &mut sink);
            }
        }
        _ => panic!("{usage}"),
    }
    println!("{total}");
}

/// What `hybi load --json-payload --size SIZE` sends (crates/hybi-cli/src/load.rs).
fn load_payloads(size: usize) -> Vec<String> {
    (0..64u64)
        .map(|v| {
            let mut s = String::with_capacity(size + 96);
            let mut k = 0u64;
            while s.len() < size {
                let id = v * 1000 + k;
                s.push_str(&format!(
                    "{{\"id\":{id},\"user\":\"user{}\",\"room\":\"r{}\",\"text\":\"message {} of the day\",\"ts\":{}}},",
                    (id * 7919) % 97,
                    (id * 31) % 13,
                    (id * 104_729) % 1000,
                    1_700_000_000 + (id * 7) % 86_400
                ));
                k += 1;
            }
            s.truncate(size);
            s
        })
        .collect()
}

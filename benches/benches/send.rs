//! Send path, in memory: encode N messages (client role: masked with a fresh key each;
//! server role: unmasked) and drain the output the way a socket write loop would.
//! hybi (send_binary, then the `Next::Write`s of `next`: bytes + consume) side by side with tungstenite
//! (write + flush into a sink) and fastwebsockets (write_frame into a sink).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hybi::{Config, Connection};
use hybi_benches::{CHUNK, Content, KernelSink, messages_for, payload, send_messages};
use rand::{Rng, SeedableRng};

mod peers;
use peers::MemStream;

fn tungstenite_send(
    ws: &mut tungstenite::WebSocket<MemStream>,
    data: &tungstenite::Bytes,
    count: usize,
) -> u64 {
    let before = ws.get_ref().sink.written;
    for _ in 0..count {
        // Cloning `Bytes` bumps a reference count: the cheapest way in.
        ws.write(tungstenite::Message::Binary(data.clone()))
            .expect("write");
    }
    ws.flush().expect("flush");
    ws.get_ref().sink.written - before
}

async fn fastwebsockets_send(
    ws: &mut fastwebsockets::WebSocket<MemStream>,
    data: &mut [u8],
    client: bool,
    count: usize,
) {
    for _ in 0..count {
        // A client masks the payload in place (its zero-copy path); a server sends it
        // as it is.
        let payload = if client {
            fastwebsockets::Payload::BorrowedMut(&mut *data)
        } else {
            fastwebsockets::Payload::Borrowed(&*data)
        };
        ws.write_frame(fastwebsockets::Frame::binary(payload))
            .await
            .expect("write_frame");
    }
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("send");
    group.sample_size(20);
    for client in [true, false] {
        let role = if client { "client" } else { "server" };
        for size in [16, 1 << 10, 64 << 10] {
            let count = messages_for(size).min(1 << 16);
            let data = payload(Content::Binary, size);
            let id = |lib: &str| BenchmarkId::new(lib, format!("{role}/{size}"));
            group.throughput(Throughput::ElementsAndBytes {
                elements: count as u64,
                bytes: (count * size) as u64,
            });
            let header = if size < 126 {
                2
            } else if size < 65536 {
                4
            } else {
                10
            };
            let wire_len = count * (size + header + if client { 4 } else { 0 });

            // The adapters seed a ChaCha generator from the OS; do the same here.
            let mut conn = if client {
                let mut rng = rand::rngs::StdRng::seed_from_u64(7);
                Connection::client(Config::default(), move |buf: &mut [u8]| rng.fill_bytes(buf))
            } else {
                Connection::server(Config::default())
            };
            let mut sink = KernelSink::new();
            assert_eq!(send_messages(&mut conn, &mut sink, &data, count), wire_len);
            group.bench_function(id("hybi"), |b| {
                b.iter(|| send_messages(&mut conn, &mut sink, &data, count))
            });

            let tungstenite_role = if client {
                tungstenite::protocol::Role::Client
            } else {
                tungstenite::protocol::Role::Server
            };
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                MemStream::sink(),
                tungstenite_role,
                Some(peers::tungstenite_config().write_buffer_size(CHUNK)),
            );
            let bytes = tungstenite::Bytes::from(data.clone());
            assert_eq!(tungstenite_send(&mut ws, &bytes, count), wire_len as u64);
            group.bench_function(id("tungstenite"), |b| {
                b.iter(|| tungstenite_send(&mut ws, &bytes, count))
            });

            let rt = peers::runtime();
            let fws_role = if client {
                fastwebsockets::Role::Client
            } else {
                fastwebsockets::Role::Server
            };
            let mut ws = fastwebsockets::WebSocket::after_handshake(MemStream::sink(), fws_role);
            let mut scratch = data.clone();
            rt.block_on(fastwebsockets_send(&mut ws, &mut scratch, client, count));
            group.bench_function(id("fastwebsockets"), |b| {
                b.iter(|| rt.block_on(fastwebsockets_send(&mut ws, &mut scratch, client, count)))
            });
            assert_eq!(ws.into_inner().sink.written % wire_len as u64, 0);
        }
    }
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);

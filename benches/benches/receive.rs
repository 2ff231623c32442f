//! Receive path, in memory: a server-role engine decodes, unmasks, validates and
//! delivers N masked client messages fed to it in socket-sized (64 KiB) pieces.
//! hybi (read_buf + commit, then `next` until it waits) side by side with tungstenite and
//! fastwebsockets reading the very same bytes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hybi::{Config, Connection};
use hybi_benches::{Content, Cycle, client_stream, messages_for, payload, receive_messages};

mod peers;
use peers::MemStream;

/// Reads `count` messages through the zero-copy path; returns the payload bytes seen.
fn hybi_receive(conn: &mut Connection, cycle: &mut Cycle<'_>, count: usize) -> usize {
    let (msgs, bytes) = receive_messages(conn, cycle, count);
    debug_assert_eq!(msgs, count);
    bytes
}

fn tungstenite_receive(ws: &mut tungstenite::WebSocket<MemStream>, count: usize) -> usize {
    let mut bytes = 0;
    for _ in 0..count {
        match ws.read() {
            Ok(tungstenite::Message::Binary(data)) => bytes += black_box(data.len()),
            Ok(tungstenite::Message::Text(text)) => bytes += black_box(text.len()),
            other => panic!("unexpected {other:?}"),
        }
    }
    bytes
}

async fn fastwebsockets_receive(
    ws: &mut fastwebsockets::WebSocket<MemStream>,
    count: usize,
) -> usize {
    let mut bytes = 0;
    for _ in 0..count {
        match ws.read_frame().await {
            Ok(frame)
                if frame.fin
                    && matches!(
                        frame.opcode,
                        fastwebsockets::OpCode::Binary | fastwebsockets::OpCode::Text
                    ) =>
            {
                bytes += black_box(frame.payload.len());
            }
            Ok(frame) => panic!("unexpected frame {:?}", frame.opcode),
            Err(e) => panic!("fastwebsockets: {e}"),
        }
    }
    bytes
}

fn cases() -> Vec<(Content, usize)> {
    let mut cases = Vec::new();
    for size in [16, 125, 1 << 10, 64 << 10, 1 << 20] {
        cases.push((Content::Binary, size));
        cases.push((Content::Ascii, size));
        if size == 1 << 10 {
            cases.push((Content::MultiByte, size));
        }
    }
    cases
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    // One iteration moves 2-4 MiB: 20 samples keep a run to a few seconds per case.
    group.sample_size(20);
    for (content, size) in cases() {
        let count = if size >= 1 << 20 {
            4
        } else {
            messages_for(size)
        };
        let data = payload(content, size);
        let wire = client_stream(content, &data, count);
        let expected = count * size;
        let id = |lib: &str| BenchmarkId::new(lib, format!("{}/{}", content.name(), size));
        group.throughput(Throughput::ElementsAndBytes {
            elements: count as u64,
            bytes: expected as u64,
        });

        let mut conn = Connection::server(Config::default());
        let mut cycle = Cycle::new(&wire);
        assert_eq!(hybi_receive(&mut conn, &mut cycle, count), expected);
        assert!(cycle.at_start());
        group.bench_function(id("hybi"), |b| {
            b.iter(|| hybi_receive(&mut conn, &mut cycle, count))
        });

        let mut ws = tungstenite::WebSocket::from_raw_socket(
            MemStream::new(wire.clone()),
            tungstenite::protocol::Role::Server,
            Some(peers::tungstenite_config()),
        );
        assert_eq!(tungstenite_receive(&mut ws, count), expected);
        group.bench_function(id("tungstenite"), |b| {
            b.iter(|| tungstenite_receive(&mut ws, count))
        });

        let rt = peers::runtime();
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(wire.clone()),
            fastwebsockets::Role::Server,
        );
        assert_eq!(
            rt.block_on(fastwebsockets_receive(&mut ws, count)),
            expected
        );
        group.bench_function(id("fastwebsockets"), |b| {
            b.iter(|| rt.block_on(fastwebsockets_receive(&mut ws, count)))
        });
    }
    group.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);

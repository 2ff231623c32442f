//! permessage-deflate codec benchmarks: hybi receiving and sending 1 KiB JSON-like
//! text messages compressed (context takeover, and none: the shared-codec mode), next
//! to the same messages uncompressed, in memory. The compression ratio is printed once
//! per mode. (No Rust peer with deflate is built here yet.)

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use hybi::deflate::{Agreement, DeflateConfig};
use hybi::{Config, Connection, Event, Next};
use hybi_benches::{Cycle, KernelSink, drain, json_messages};

const COUNT: usize = 256;
const SIZE: usize = 1024;

fn modes() -> [(&'static str, Option<Agreement>); 3] {
    [
        ("plain", None),
        ("deflate", Some(Agreement::default())),
        (
            "deflate-no-takeover",
            Some(Agreement {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..Agreement::default()
            }),
        ),
    ]
}

fn with(mut conn: Connection, agreement: Option<Agreement>) -> Connection {
    if let Some(a) = agreement {
        conn.enable_deflate(a, DeflateConfig::default());
    }
    conn
}

/// What a client sending `messages` writes: the wire a server reads.
fn client_wire(agreement: Option<Agreement>, messages: &[String]) -> Vec<u8> {
    let mut c = with(
        Connection::client(Config::default(), |b: &mut [u8]| b.fill(0x5a)),
        agreement,
    );
    let mut wire = Vec::new();
    for m in messages {
        c.send_text(m).expect("send");
        while let Some(t) = c.transmit() {
            wire.extend_from_slice(t.bytes());
            let n = t.bytes().len();
            t.consume(n);
        }
    }
    wire
}

fn receive(conn: &mut Connection, cycle: &mut Cycle<'_>, count: usize) -> usize {
    let mut got = 0;
    let mut bytes = 0;
    while got < count {
        let n = cycle.read_into(conn.read_buf());
        conn.commit(n);
        loop {
            match conn.next() {
                Next::Event(Event::Text(t), _) => {
                    bytes += std::hint::black_box(t.len());
                    got += 1;
                }
                Next::Wait(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let messages = json_messages(SIZE, COUNT);
    let mut group = c.benchmark_group("deflate");
    group.sample_size(30);
    group.throughput(Throughput::ElementsAndBytes {
        elements: COUNT as u64,
        bytes: (COUNT * SIZE) as u64,
    });
    for (name, agreement) in modes() {
        let wire = client_wire(agreement, &messages);
        println!(
            "{name}: {COUNT} messages of {SIZE} B take {} B on the wire ({:.3} of the payload)",
            wire.len(),
            wire.len() as f64 / (COUNT * SIZE) as f64
        );
        let mut server = with(Connection::server(Config::default()), agreement);
        let mut cycle = Cycle::new(&wire);
        assert_eq!(receive(&mut server, &mut cycle, COUNT), COUNT * SIZE);
        group.bench_function(format!("receive/{name}"), |b| {
            b.iter(|| receive(&mut server, &mut cycle, COUNT))
        });
        let mut server = with(Connection::server(Config::default()), agreement);
        let mut sink = KernelSink::new();
        group.bench_function(format!("send/{name}"), |b| {
            b.iter(|| {
                for m in &messages {
                    server.send_text(m).expect("send");
                }
                drain(&mut server, &mut sink)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

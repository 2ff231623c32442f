//! A hybi-only driver for profilers (perf, valgrind --tool=callgrind): runs one
//! benchmark workload in a loop, without criterion around it.
//!
//! ```text
//! cargo build --release -p hybi-benches --example profile
//! valgrind --tool=callgrind target/release/examples/profile receive binary 125 20
//! perf record -g target/release/examples/profile send client 16 2000
//! ```
//!
//! Arguments: `receive (binary|text|text-utf8) SIZE [LAPS]` or
//! `send (client|server) SIZE [LAPS]`. A lap is the benchmark's iteration (about
//! 2 MiB of payload).

use hybi::{Config, Connection};
use hybi_benches::{
    Content, Cycle, KernelSink, XorShift, client_stream, messages_for, payload, receive_messages,
    send_messages,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: profile (receive (binary|text|text-utf8) | send (client|server)) SIZE [LAPS]";
    let (Some(path), Some(kind), Some(size)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let size: usize = size.parse().unwrap_or_else(|_| panic!("{usage}"));
    let laps: usize = args.get(3).map_or(100, |l| l.parse().unwrap_or(100));
    let count = if size >= 1 << 20 {
        4
    } else {
        messages_for(size)
    };
    let mut total = 0;
    match path.as_str() {
        "receive" => {
            let content = match kind.as_str() {
                "binary" => Content::Binary,
                "text" => Content::Ascii,
                "text-utf8" => Content::MultiByte,
                _ => panic!("{usage}"),
            };
            let wire = client_stream(content, &payload(content, size), count);
            let mut cycle = Cycle::new(&wire);
            let mut conn = Connection::server(Config::default());
            for _ in 0..laps {
                total += receive_messages(&mut conn, &mut cycle, count).1;
            }
        }
        "send" => {
            let data = payload(Content::Binary, size);
            let count = count.min(1 << 16);
            let mut conn = match kind.as_str() {
                "client" => {
                    let mut rng = XorShift::new(1);
                    Connection::client(Config::default(), move |b: &mut [u8]| rng.fill(b))
                }
                "server" => Connection::server(Config::default()),
                _ => panic!("{usage}"),
            };
            let mut sink = KernelSink::new();
            for _ in 0..laps {
                total += send_messages(&mut conn, &mut sink, &data, count);
            }
        }
        _ => panic!("{usage}"),
    }
    println!("{total} bytes");
}

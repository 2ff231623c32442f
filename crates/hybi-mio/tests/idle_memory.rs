//! Memory per idle connection, measured as the growth of this process's resident
//! memory. A test binary of its own, so no other test allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use hybi_mio::{Context, Handler, Server};

struct Echo;
impl Handler for Echo {
    fn on_binary(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let _ = ctx.send_binary(data);
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[test]
fn idle_connections_hold_no_buffers() {
    // Indirect but observable: a connection that went idle returned its buffers, so
    // 2000 idle connections after a burst of 64 KiB messages stay cheap. Measured as
    // growth of the process's resident memory.
    fn rss_kib() -> usize {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    }
    let server = Server::builder()
        .workers(1)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let clients = Server::builder().workers(1).start().unwrap();
    let before = rss_kib();
    let (tx, rx) = mpsc::channel();
    struct Once(mpsc::Sender<()>, usize);
    impl Handler for Once {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            let _ = ctx.send_binary(&vec![1u8; 60 << 10]);
        }
        fn on_binary(&mut self, _: &mut Context<'_>, data: &[u8]) {
            self.1 += data.len();
            let _ = self.0.send(());
        }
    }
    const N: usize = 2000;
    for _ in 0..N {
        clients
            .connect(&url(addr, "/echo"), Once(tx.clone(), 0))
            .unwrap();
    }
    for _ in 0..N {
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let grown = rss_kib().saturating_sub(before);
    // Both ends of 2000 connections live in this process. With a 64 KiB receive and
    // output buffer kept per connection that would be over 500 MiB.
    let per_conn = grown * 1024 / (2 * N);
    assert!(per_conn < 16 << 10, "{per_conn} bytes per connection end");
}

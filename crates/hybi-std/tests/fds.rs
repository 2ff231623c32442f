//! A server connection holds one file descriptor (a test binary of its own, so that no
//! other test opens descriptors meanwhile).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use hybi_std::{Handler, Message, Peer, Server};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, peer: &Peer, text: &str) {
        let _ = peer.send_text(text);
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn a_server_connection_holds_one_file_descriptor() {
    let server = Server::builder()
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/echo", server.local_addr());
    let before = open_fds();
    let n = 50;
    let mut clients: Vec<_> = (0..n).map(|_| hybi_std::connect(&url).unwrap().0).collect();
    for ws in &mut clients {
        ws.send_text("hi").unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text("hi".into()));
    }
    // Every connection is open and echoing: its client socket and its server socket.
    let until = Instant::now() + Duration::from_secs(5);
    let mut held = open_fds() - before;
    while held > 2 * n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        held = open_fds() - before;
    }
    assert_eq!(held, 2 * n, "descriptors for {n} connections, both ends");
    drop(clients);
    server.shutdown(Duration::from_secs(1));
}

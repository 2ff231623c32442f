//! A WebSocket over a non-blocking stream: a read with nothing to read returns
//! `WouldBlock` at once, also while an engine timer is armed, instead of spinning a
//! core until the timer fires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hybi_std::{ClientBuilder, Error, Message};

#[test]
fn a_non_blocking_read_with_a_timer_armed_returns_would_block_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = hybi_std::accept(stream).unwrap();
        // Echo one message, then hold the connection open, silent.
        let message = ws.read().unwrap();
        ws.send(message).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    let config = hybi_std::default_config().with_keepalive(Some(Duration::from_secs(30)));
    let (mut ws, _) = ClientBuilder::new(&format!("ws://{addr}/"))
        .config(config)
        .connect()
        .unwrap();
    ws.get_ref().tcp().set_nonblocking(true).unwrap();
    ws.send_text("hi").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The echo arrives at some point; poll for it as an event loop would.
        let message = loop {
            match ws.read() {
                Ok(m) => break m,
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        };
        // Nothing more comes: each read returns WouldBlock promptly.
        let started = Instant::now();
        let result = ws.read();
        let _ = tx.send((
            message,
            result.map_err(|e| e.to_string()),
            started.elapsed(),
        ));
    });
    let (message, result, took) = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("a non-blocking read returns instead of spinning until the keepalive");
    assert_eq!(message, Message::Text("hi".into()));
    assert!(
        result.is_err_and(
            |e| e.contains("Resource temporarily unavailable") || e.contains("would block")
        ),
        "WouldBlock"
    );
    assert!(took < Duration::from_millis(500), "took {took:?}");
    server.join().unwrap();
}

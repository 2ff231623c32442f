//! Timers driven by caller-supplied time: keepalive pings, the pong deadline, the idle
//! timeout, the close timeout, and the client's wait for the server to close TCP.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use core::time::Duration;
use hybi::{CloseCode, Config, Connection, Error, Instant, OpCode, State};

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn keepalive_server() -> Connection {
    Connection::server(
        Config::default()
            .with_keepalive(Some(Duration::from_secs(10)))
            .with_pong_timeout(Duration::from_secs(5)),
    )
}

#[test]
fn keepalive_pings_after_the_interval_without_traffic() {
    let mut s = keepalive_server();
    assert_eq!(wait(&mut s), Some(Instant::ZERO), "needs the time first");
    s.handle_timeout(secs(100));
    assert_eq!(wait(&mut s), Some(secs(110)));
    s.handle_timeout(secs(109));
    assert!(s.buffered_output() == 0);
    s.handle_timeout(secs(110));
    let out = frames(&take_output(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.opcode, OpCode::Ping);
    assert_eq!(wait(&mut s), Some(secs(115)), "pong deadline");
}

#[test]
fn a_peer_that_does_not_answer_the_keepalive_ping_is_dropped() {
    let mut s = keepalive_server();
    s.handle_timeout(secs(0));
    s.handle_timeout(secs(10));
    take_output(&mut s);
    s.send_text("queued but never read").unwrap();
    s.handle_timeout(secs(15));
    assert_eq!(drain(&mut s), vec![Ev::Err(Error::PongTimeout)]);
    assert_eq!(Error::PongTimeout.close_code(), CloseCode::ABNORMAL);
    assert_eq!(s.state(), State::Closed);
    assert!(closing(&mut s), "even with output queued: the peer is gone");
    assert!(
        s.buffered_output() == 0,
        "nothing more is sent to a dead peer"
    );
}

#[test]
fn any_received_frame_counts_as_an_answer() {
    let mut s = keepalive_server();
    s.handle_timeout(secs(0));
    s.handle_timeout(secs(10));
    take_output(&mut s);
    s.handle_timeout(secs(12));
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Pong, b"")),
        vec![Ev::Pong(vec![])]
    );
    s.handle_timeout(secs(15));
    assert!(drain(&mut s).is_empty());
    assert!(s.is_open());
    assert_eq!(
        wait(&mut s),
        Some(secs(22)),
        "next ping 10 s after the last frame"
    );
}

#[test]
fn traffic_postpones_the_keepalive_ping() {
    let mut s = keepalive_server();
    s.handle_timeout(secs(0));
    for t in [5, 12, 19] {
        s.handle_timeout(secs(t));
        feed(&mut s, &client_frame(true, OpCode::Text, b"busy"));
    }
    s.handle_timeout(secs(28));
    assert!(s.buffered_output() == 0);
    assert_eq!(wait(&mut s), Some(secs(29)));
}

#[test]
fn the_close_timeout_ends_a_closing_handshake_the_peer_ignores() {
    let mut s = Connection::server(Config::default().with_close_timeout(Duration::from_secs(3)));
    s.handle_timeout(secs(10));
    s.close(CloseCode::NORMAL, "bye").unwrap();
    // The close frame stays queued: the peer reads nothing.
    assert!(!closing(&mut s), "the close frame to write");
    s.handle_timeout(secs(12));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(secs(13));
    assert_eq!(drain(&mut s), vec![Ev::Err(Error::CloseTimeout)]);
    assert!(closing(&mut s), "even with the close frame unwritten");
}

#[test]
fn a_timer_started_before_the_time_is_known_starts_at_the_next_handle_timeout() {
    let mut c = client_with(Config::default().with_close_timeout(Duration::from_secs(5)));
    c.close(CloseCode::NORMAL, "").unwrap();
    take_output(&mut c);
    assert_eq!(wait(&mut c), Some(Instant::ZERO), "give me the time");
    c.handle_timeout(secs(50));
    assert_eq!(wait(&mut c), Some(secs(55)));
}

#[test]
fn idle_timeout_closes_with_1001() {
    let mut s =
        Connection::server(Config::default().with_idle_timeout(Some(Duration::from_secs(30))));
    s.handle_timeout(secs(0));
    assert_eq!(wait(&mut s), Some(secs(30)));
    s.handle_timeout(secs(20));
    feed(&mut s, &client_frame(true, OpCode::Text, b"still here"));
    s.handle_timeout(secs(49));
    assert!(s.is_open());
    s.handle_timeout(secs(50));
    assert!(
        drain(&mut s).is_empty(),
        "not an error in the middle of the stream"
    );
    assert_eq!(sent_close(&mut s), Some((1001, "idle timeout".into())));
    assert_eq!(
        s.state(),
        State::CloseSent,
        "the closing handshake proceeds"
    );
    // The peer answers: the connection ends, reporting why it was closed.
    let (events, _) = feed_and_drive(
        &mut s,
        &client_frame(true, OpCode::Close, &close_payload(1001, "")),
    );
    assert_eq!(
        events,
        vec![Ev::Close(1001, String::new()), Ev::Err(Error::IdleTimeout)]
    );
}

#[test]
fn the_client_waits_for_the_server_to_close_tcp_then_gives_up() {
    let mut c = client_with(Config::default().with_close_timeout(Duration::from_secs(2)));
    c.handle_timeout(secs(1));
    feed(
        &mut c,
        &server_frame(true, OpCode::Close, &close_payload(1000, "")),
    );
    take_output(&mut c);
    assert_eq!(c.state(), State::Closed);
    assert!(!closing(&mut c));
    assert_eq!(wait(&mut c), Some(secs(3)));
    c.handle_timeout(secs(3));
    assert!(closing(&mut c));
    assert!(
        drain(&mut c).is_empty(),
        "giving up on the server's TCP close is not an error"
    );
}

#[test]
fn no_timers_no_timeout() {
    let mut s = server();
    assert_eq!(wait(&mut s), None);
    s.handle_timeout(secs(1));
    assert_eq!(wait(&mut s), None);
}

#[test]
fn end_of_input_stops_every_timer() {
    // Found by fuzzing: a pong deadline armed before the end of input stayed, so
    // poll_timeout() kept returning an instant in the past and a caller spun.
    let mut s = keepalive_server();
    s.handle_timeout(secs(0));
    s.handle_timeout(secs(10)); // keepalive ping, pong deadline at 15 s
    take_output(&mut s);
    s.receive_eof();
    assert_eq!(drain(&mut s), vec![Ev::Err(Error::UnexpectedEof)]);
    assert!(closing(&mut s));
    s.handle_timeout(secs(30));
    assert_eq!(
        drain(&mut s),
        vec![Ev::Err(Error::UnexpectedEof)],
        "no timer fired"
    );
}

#[test]
fn a_failed_connection_gives_up_on_a_peer_that_does_not_read_its_close_frame() {
    let mut s = Connection::server(Config::default().with_close_timeout(Duration::from_secs(2)));
    s.handle_timeout(secs(1));
    // A protocol error: the close frame is queued but never written.
    let events = feed(&mut s, &server_frame(true, OpCode::Text, b"unmasked"));
    assert!(events.is_empty());
    assert!(!closing(&mut s), "the close frame is still queued");
    s.handle_timeout(secs(2));
    assert!(!closing(&mut s), "still within the close timeout");
    s.handle_timeout(secs(3));
    assert!(closing(&mut s), "given up after the close timeout");
    assert!(matches!(drain(&mut s)[..], [Ev::Err(Error::Protocol(_))]));
}

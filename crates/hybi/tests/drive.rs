//! The drive contract: `next` says what to do (event, write, wait, close) and the
//! driver feeds bytes, end of input and time. Failures come through the same loop.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use std::time::Duration;

use hybi::{CloseCode, Config, Connection, Error, Instant, Next, OpCode, ProtocolError, Role};

fn text_frame(t: &str) -> Vec<u8> {
    client_frame(true, OpCode::Text, t.as_bytes())
}

fn close_frame(code: u16) -> Vec<u8> {
    client_frame(true, OpCode::Close, &close_payload(code, ""))
}

fn opcodes(bytes: &[u8]) -> Vec<OpCode> {
    frames(bytes).iter().map(|f| f.header.opcode).collect()
}

#[test]
fn a_fresh_connection_waits_without_a_timer() {
    let mut s = server();
    assert_eq!(drive(&mut s).end, End::Wait(None));
}

#[test]
fn events_come_before_writes_and_replies_go_out_together() {
    let mut s = server();
    let mut wire = text_frame("a");
    wire.extend(text_frame("b"));
    s.receive(&wire);
    let d = drive_with(&mut s, echo);
    assert_eq!(d.events, [Ev::Text("a".into()), Ev::Text("b".into())]);
    let echoed: Vec<_> = frames(&d.written).into_iter().map(|f| f.payload).collect();
    assert_eq!(echoed, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(d.end, End::Wait(None));
}

#[test]
fn input_is_handled_while_output_waits_for_the_transport() {
    // A driver whose transport takes nothing (WouldBlock) leaves the Write pending
    // and reads: the new input's events come before the Write again.
    let mut s = server();
    s.send_text("queued").unwrap();
    assert!(matches!(s.next(), Next::Write(_)));
    s.receive(&client_frame(true, OpCode::Ping, b"p"));
    assert!(matches!(s.next(), Next::Event(hybi::Event::Ping(b"p"), _)));
    let d = drive(&mut s);
    assert_eq!(opcodes(&d.written), [OpCode::Text, OpCode::Pong]);
}

#[test]
fn end_of_input_after_a_message_still_writes_the_reply_then_reports_1006() {
    let mut s = server();
    s.receive(&text_frame("last words"));
    s.receive_eof();
    let d = drive_with(&mut s, echo);
    assert_eq!(d.events, [Ev::Text("last words".into())]);
    let sent = frames(&d.written);
    assert_eq!(sent.len(), 1, "the echo, and no close frame after EOF");
    assert_eq!(sent[0].payload, b"last words");
    assert_eq!(
        d.end,
        End::Close {
            peer: None,
            error: Some(Error::UnexpectedEof),
            code: 1006
        }
    );
}

#[test]
fn a_close_frame_with_end_of_input_is_answered_before_the_transport_closes() {
    let mut s = server();
    let mut wire = text_frame("hi");
    wire.extend(close_frame(1000));
    s.receive(&wire);
    s.receive_eof();
    let d = drive_with(&mut s, echo);
    assert_eq!(
        d.events,
        [Ev::Text("hi".into()), Ev::Close(1000, String::new())]
    );
    assert_eq!(opcodes(&d.written), [OpCode::Text, OpCode::Close]);
    assert_eq!(
        d.end,
        End::Close {
            peer: Some((1000, String::new())),
            error: None,
            code: 1000
        }
    );
}

#[test]
fn a_protocol_error_writes_its_close_frame_then_closes_with_the_error() {
    let mut s = server();
    s.receive(&server_frame(true, OpCode::Text, b"unmasked"));
    let d = drive(&mut s);
    assert!(d.events.is_empty());
    let sent = frames(&d.written);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header.opcode, OpCode::Close);
    assert_eq!(&sent[0].payload[..2], &1002u16.to_be_bytes());
    assert_eq!(
        d.end,
        End::Close {
            peer: None,
            error: Some(Error::Protocol(ProtocolError::UnmaskedFrame)),
            code: 1002
        }
    );
    // Close is final: asked again, it says the same.
    assert_eq!(drive(&mut s).end, d.end);
}

#[test]
fn invalid_text_in_one_frame_fails_with_1007() {
    let mut s = server();
    s.receive(&client_frame(true, OpCode::Text, &[0xff, 0xfe]));
    let d = drive(&mut s);
    assert!(d.events.is_empty());
    assert!(matches!(
        d.end,
        End::Close {
            error: Some(Error::Protocol(ProtocolError::InvalidUtf8)),
            code: 1007,
            ..
        }
    ));
}

#[test]
fn the_idle_timeout_closes_normally_and_the_peer_may_still_talk() {
    let config = Config::default().with_idle_timeout(Some(Duration::from_secs(10)));
    let mut s = Connection::server(config);
    s.handle_timeout(Instant::from_millis(0));
    assert_eq!(
        drive(&mut s).end,
        End::Wait(Some(Instant::from_millis(10_000)))
    );
    s.handle_timeout(Instant::from_millis(10_000));
    let d = drive(&mut s);
    assert_eq!(opcodes(&d.written), [OpCode::Close]);
    // Waiting for the peer's answer, within the close timeout.
    assert!(matches!(d.end, End::Wait(Some(_))));
    // The peer's data sent before it saw our close is still delivered, then its close.
    let mut wire = text_frame("one more");
    wire.extend(close_frame(1001));
    s.receive(&wire);
    let d = drive(&mut s);
    assert_eq!(
        d.events,
        [Ev::Text("one more".into()), Ev::Close(1001, String::new())]
    );
    assert_eq!(
        d.end,
        End::Close {
            peer: Some((1001, String::new())),
            error: Some(Error::IdleTimeout),
            code: 1001
        }
    );
}

#[test]
fn a_silent_peer_after_a_keepalive_ping_ends_with_the_pong_timeout() {
    let config = Config::default()
        .with_keepalive(Some(Duration::from_secs(5)))
        .with_pong_timeout(Duration::from_secs(2));
    let mut s = Connection::server(config);
    s.handle_timeout(Instant::from_millis(0));
    assert_eq!(
        drive(&mut s).end,
        End::Wait(Some(Instant::from_millis(5_000)))
    );
    s.handle_timeout(Instant::from_millis(5_000));
    let d = drive(&mut s);
    assert_eq!(opcodes(&d.written), [OpCode::Ping]);
    assert_eq!(d.end, End::Wait(Some(Instant::from_millis(7_000))));
    s.send_text("never written").unwrap();
    s.handle_timeout(Instant::from_millis(7_000));
    let d = drive(&mut s);
    assert!(d.written.is_empty(), "nothing is written to a dead peer");
    assert!(matches!(
        d.end,
        End::Close {
            error: Some(Error::PongTimeout),
            code: 1006,
            ..
        }
    ));
}

#[test]
fn a_client_waits_for_the_server_to_close_the_transport() {
    let mut c = client();
    c.handle_timeout(Instant::from_millis(0));
    c.close(CloseCode::NORMAL, "bye").unwrap();
    let d = drive(&mut c);
    assert_eq!(opcodes(&d.written), [OpCode::Close]);
    c.receive(&server_frame(true, OpCode::Close, &close_payload(1000, "")));
    let d = drive(&mut c);
    assert_eq!(d.events, [Ev::Close(1000, String::new())]);
    // Handshake done; the server closes TCP first (RFC 6455 §7.1.1).
    assert_eq!(d.end, End::Wait(Some(Instant::from_millis(5_000))));
    c.receive_eof();
    let d = drive(&mut c);
    assert_eq!(
        d.end,
        End::Close {
            peer: Some((1000, String::new())),
            error: None,
            code: 1000
        }
    );
}

#[test]
fn a_server_that_answered_a_close_closes_once_written() {
    let mut s = server();
    s.receive(&close_frame(1000));
    assert!(matches!(s.next(), Next::Event(hybi::Event::Close(_), _)));
    let Next::Write(t) = s.next() else {
        panic!("the close reply")
    };
    let n = t.len();
    t.consume(n);
    assert!(matches!(s.next(), Next::Close(c) if c.is_clean()));
}

#[test]
fn a_failure_whose_close_frame_cannot_be_written_ends_at_the_close_timeout() {
    let config = Config::default().with_close_timeout(Duration::from_secs(1));
    let mut s = Connection::server(config);
    s.handle_timeout(Instant::from_millis(0));
    s.receive(&[0x83, 0x80, 0, 0, 0, 0]); // reserved opcode
    assert!(matches!(s.next(), Next::Write(_)));
    // The transport never takes the close frame.
    s.handle_timeout(Instant::from_millis(1_000));
    assert!(matches!(
        s.next(),
        Next::Close(c) if c.error == Some(Error::Protocol(ProtocolError::ReservedOpCode(3)))
    ));
}

#[test]
fn end_of_input_with_a_reply_the_transport_never_takes_ends_at_the_close_timeout() {
    let config = Config::default().with_close_timeout(Duration::from_secs(1));
    let mut s = Connection::server(config);
    s.handle_timeout(Instant::from_millis(0));
    s.receive(&text_frame("x"));
    s.receive_eof();
    assert!(matches!(s.next(), Next::Event(..)));
    s.send_text("reply").unwrap();
    let Next::Write(_) = s.next() else { panic!() };
    assert!(matches!(s.next(), Next::Write(_)), "still queued");
    s.handle_timeout(Instant::from_millis(1_000));
    assert!(matches!(s.next(), Next::Close(c) if c.error == Some(Error::UnexpectedEof)));
}

#[test]
fn write_to_and_read_from_move_bytes_over_std_io() {
    let mut c = client_with(Config::default());
    let mut s = server();
    c.send_binary(&vec![5u8; 10_000]).unwrap();
    c.send_text("two").unwrap();
    let mut wire: Vec<u8> = Vec::new();
    while let Next::Write(t) = c.next() {
        t.write_to(&mut wire).unwrap();
    }
    let mut reader = std::io::Cursor::new(wire);
    let mut got = Vec::new();
    loop {
        match s.next() {
            Next::Event(e, _) => got.push(Ev::from(e)),
            Next::Wait(_) => {
                if s.read_from(&mut reader).unwrap() == 0 {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, [Ev::Binary(vec![5; 10_000]), Ev::Text("two".into())]);
    assert!(matches!(s.next(), Next::Close(c) if c.error == Some(Error::UnexpectedEof)));
}

#[test]
fn write_to_keeps_what_a_short_write_left() {
    /// Takes at most 3 bytes per write.
    struct Trickle(Vec<u8>);
    impl std::io::Write for Trickle {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(3);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut s = server();
    s.send_binary_owned(vec![1u8; 5000]).unwrap(); // header and payload: two runs
    let mut w = Trickle(Vec::new());
    while let Next::Write(t) = s.next() {
        let n = t.write_to(&mut w).unwrap();
        assert!((1..=3).contains(&n));
    }
    let f = frames(&w.0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].payload, vec![1u8; 5000]);
}

#[test]
fn instants_convert_to_and_from_std() {
    let origin = Instant::now(); // the scale starts at its first use
    let now = std::time::Instant::now();
    let t = Instant::from_std(now);
    assert!(t >= origin);
    let back = t.to_std();
    assert!(back <= now && now - back < Duration::from_micros(1));
    let later = Instant::now();
    assert!(later >= t);
    assert_eq!(
        (t + Duration::from_secs(3)).to_std() - back,
        Duration::from_secs(3)
    );
}

#[test]
fn the_client_role_masks_what_next_hands_out() {
    let mut c = client();
    c.send_text("masked").unwrap();
    let d = drive(&mut c);
    let f = frames(&d.written);
    assert!(f[0].header.mask.is_some());
    assert_eq!(f[0].payload, b"masked");
    assert_eq!(c.role(), Role::Client);
}

#[test]
fn a_ping_before_end_of_input_is_answered_even_with_output_backed_up() {
    // Above 8 KiB queued, a ping's answer waits as the pending pong; the end of input
    // must not drop it, as it does not drop any other reply.
    for queued in [100usize, 9000] {
        let mut s = server();
        s.send_binary(&vec![7u8; queued]).unwrap();
        s.receive(&client_frame(true, OpCode::Ping, b"p"));
        s.receive_eof();
        let d = drive(&mut s);
        assert_eq!(d.events, [Ev::Ping(b"p".to_vec())]);
        let sent = frames(&d.written);
        assert_eq!(
            sent.iter().map(|f| f.header.opcode).collect::<Vec<_>>(),
            [OpCode::Binary, OpCode::Pong],
            "{queued} bytes queued"
        );
        assert!(matches!(
            d.end,
            End::Close {
                error: Some(Error::UnexpectedEof),
                ..
            }
        ));
    }
}

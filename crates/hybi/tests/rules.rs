//! RFC 6455 §5-§8 rules the engine enforces, one test per rule, named after it.
//! Every violation must queue the right close frame, report a typed error, and stop
//! delivering.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use hybi::close::ClosePayloadError;
use hybi::{CloseCode, Config, Error, MessageKind, OpCode, ProtocolError, SendError, State};

/// Feeds `bytes` to a fresh server and expects it to fail with `expected`, having queued
/// a close frame with `code`.
fn server_fails(bytes: &[u8], expected: ProtocolError, code: u16) {
    let mut s = server();
    let (events, close) = feed_and_drive(&mut s, bytes);
    assert_eq!(
        events.last(),
        Some(&Ev::Err(Error::Protocol(expected))),
        "{events:?}"
    );
    assert_eq!(expected.close_code().as_u16(), code);
    assert_eq!(close.map(|c| c.0), Some(code));
    assert_eq!(s.state(), State::Closed);
    // Nothing more is delivered, whatever follows: only the same ending again.
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Text, b"late")),
        [Ev::Err(Error::Protocol(expected))]
    );
}

#[test]
fn server_rejects_unmasked_frames() {
    server_fails(
        &server_frame(true, OpCode::Text, b"hi"),
        ProtocolError::UnmaskedFrame,
        1002,
    );
}

#[test]
fn client_rejects_masked_frames() {
    let mut c = client();
    let (events, close) = feed_and_drive(&mut c, &client_frame(true, OpCode::Text, b"hi"));
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::MaskedFrame))]
    );
    assert_eq!(close.map(|c| c.0), Some(1002));
}

#[test]
fn rsv_bits_without_extension_fail() {
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        server_fails(
            &raw_frame(0x80 | rsv | 0x1, Some(KEY), b"x"),
            ProtocolError::ReservedBits,
            1002,
        );
    }
}

#[test]
fn reserved_opcodes_fail() {
    for op in (0x3u8..=0x7).chain(0xB..=0xF) {
        server_fails(
            &raw_frame(0x80 | op, Some(KEY), b""),
            ProtocolError::ReservedOpCode(op),
            1002,
        );
    }
}

#[test]
fn control_frames_over_125_bytes_fail() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        server_fails(
            &client_frame(true, op, &[b'a'; 126]),
            ProtocolError::ControlFrameTooLong(126),
            1002,
        );
    }
    // 125 is fine.
    let mut s = server();
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Ping, &[7; 125])),
        vec![Ev::Ping(vec![7; 125])]
    );
}

#[test]
fn fragmented_control_frames_fail() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        server_fails(
            &client_frame(false, op, b""),
            ProtocolError::FragmentedControlFrame,
            1002,
        );
    }
}

#[test]
fn continuation_without_a_message_fails() {
    server_fails(
        &client_frame(true, OpCode::Continuation, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    // Also right after a complete message.
    let mut bytes = client_frame(true, OpCode::Text, b"done");
    bytes.extend(client_frame(false, OpCode::Continuation, b"x"));
    let mut s = server();
    let (events, close) = feed_and_drive(&mut s, &bytes);
    assert_eq!(
        events,
        vec![
            Ev::Text("done".into()),
            Ev::Err(Error::Protocol(ProtocolError::UnexpectedContinuation))
        ]
    );
    assert_eq!(close.map(|c| c.0), Some(1002));
}

#[test]
fn new_data_frame_inside_a_fragmented_message_fails() {
    for op in [OpCode::Text, OpCode::Binary] {
        let mut bytes = client_frame(false, OpCode::Text, b"part");
        bytes.extend(client_frame(true, op, b"new"));
        server_fails(&bytes, ProtocolError::ExpectedContinuation, 1002);
    }
}

#[test]
fn control_frames_between_fragments_are_delivered() {
    let mut bytes = client_frame(false, OpCode::Text, b"Hel");
    bytes.extend(client_frame(true, OpCode::Ping, b"are you there"));
    bytes.extend(client_frame(false, OpCode::Continuation, b"lo, "));
    bytes.extend(client_frame(true, OpCode::Pong, b"unsolicited"));
    bytes.extend(client_frame(true, OpCode::Continuation, b"world"));
    let mut s = server();
    assert_eq!(
        feed(&mut s, &bytes),
        vec![
            Ev::Ping(b"are you there".to_vec()),
            Ev::Pong(b"unsolicited".to_vec()),
            Ev::Text("Hello, world".into()),
        ]
    );
    let out = frames(&take_output(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.opcode, OpCode::Pong);
    assert_eq!(out[0].payload, b"are you there");
}

#[test]
fn text_is_validated_across_fragments_and_fails_at_the_first_bad_byte() {
    // "κόσμε" split inside a character, then a third fragment with an invalid byte
    // in its middle: the error comes with the third fragment, before the last.
    let text = "κόσμε".as_bytes();
    let mut s = server();
    assert!(feed(&mut s, &client_frame(false, OpCode::Text, &text[..3])).is_empty());
    assert!(
        feed(
            &mut s,
            &client_frame(false, OpCode::Continuation, &text[3..7])
        )
        .is_empty()
    );
    let third = client_frame(false, OpCode::Continuation, b"ab\xFFcd");
    let (events, close) = feed_and_drive(&mut s, &third);
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::InvalidUtf8))]
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[test]
fn text_fails_fast_in_the_middle_of_a_frame() {
    // One frame whose bytes arrive in three reads; the second read carries the bad
    // sequence (Autobahn 6.4.3). The error must come before the third read.
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80");
    payload.extend_from_slice(b"edited");
    let bytes = client_frame(true, OpCode::Text, &payload);
    let mut s = server();
    assert!(feed(&mut s, &bytes[..10]).is_empty());
    let cut = bytes.len() - "edited".len();
    let (events, close) = feed_and_drive(&mut s, &bytes[10..cut]);
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::InvalidUtf8))]
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[test]
fn text_ending_inside_a_character_fails() {
    let mut bytes = client_frame(false, OpCode::Text, b"ok \xE2\x82");
    bytes.extend(client_frame(true, OpCode::Continuation, b""));
    server_fails(&bytes, ProtocolError::InvalidUtf8, 1007);
    server_fails(
        &client_frame(true, OpCode::Text, b"\xF0\x9F\x98"),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn close_payload_of_one_byte_fails() {
    server_fails(
        &client_frame(true, OpCode::Close, &[0x03]),
        ProtocolError::InvalidClosePayload(ClosePayloadError::Truncated),
        1002,
    );
}

#[test]
fn close_codes_outside_the_allowed_ranges_fail() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        server_fails(
            &client_frame(true, OpCode::Close, &close_payload(code, "")),
            ProtocolError::InvalidClosePayload(ClosePayloadError::InvalidCode(code)),
            1002,
        );
    }
}

#[test]
fn close_codes_inside_the_allowed_ranges_are_accepted_and_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut s = server();
        let events = feed(
            &mut s,
            &client_frame(true, OpCode::Close, &close_payload(code, "why")),
        );
        assert_eq!(events, vec![Ev::Close(code, "why".into())]);
        assert_eq!(
            sent_close(&mut s),
            Some((code, String::new())),
            "echo of {code}"
        );
    }
}

#[test]
fn close_reason_must_be_utf8() {
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"\xCE\xBA\xE1\xBD\xB9\xED\xA0\x80");
    server_fails(
        &client_frame(true, OpCode::Close, &payload),
        ProtocolError::InvalidClosePayload(ClosePayloadError::InvalidReason),
        1007,
    );
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let mut s = server();
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Close, b"")),
        vec![Ev::Close(1005, String::new())]
    );
    let out = frames(&take_output(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.opcode, OpCode::Close);
    assert!(out[0].payload.is_empty());
}

#[test]
fn close_is_answered_with_a_close_echoing_the_code() {
    let mut s = server();
    let events = feed(
        &mut s,
        &client_frame(true, OpCode::Close, &close_payload(4000, "bye")),
    );
    assert_eq!(events, vec![Ev::Close(4000, "bye".into())]);
    assert_eq!(s.state(), State::CloseReceived);
    assert_eq!(s.peer_close(), Some((CloseCode(4000), "bye")));
    assert_eq!(sent_close(&mut s), Some((4000, String::new())));
    assert_eq!(s.state(), State::Closed);
    assert!(closing(&mut s), "the server closes TCP first");
}

#[test]
fn after_close_nothing_more_is_sent_or_delivered() {
    let mut s = server();
    let mut bytes = client_frame(true, OpCode::Close, &close_payload(1000, ""));
    bytes.extend(client_frame(true, OpCode::Text, b"after close"));
    bytes.extend(client_frame(true, OpCode::Ping, b"after close"));
    assert_eq!(feed(&mut s, &bytes), vec![Ev::Close(1000, String::new())]);
    assert_eq!(s.send_text("no"), Err(SendError::Closed));
    assert_eq!(s.send_binary(b"no"), Err(SendError::Closed));
    assert_eq!(s.send_ping(b"no"), Err(SendError::Closed));
    assert_eq!(s.send_pong(b"no"), Err(SendError::Closed));
    assert_eq!(
        s.send_fragment(MessageKind::Text, b"no", true),
        Err(SendError::Closed)
    );
    assert_eq!(s.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
    let out = frames(&take_output(&mut s));
    assert_eq!(out.len(), 1, "only the close echo, no pong: {out:?}");
    assert!(feed(&mut s, &client_frame(true, OpCode::Text, b"later")).is_empty());
}

#[test]
fn after_sending_close_data_from_the_peer_is_still_delivered_but_not_sent() {
    let mut s = server();
    s.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
    assert_eq!(s.state(), State::CloseSent);
    assert_eq!(s.send_text("no"), Err(SendError::Closed));
    let mut bytes = client_frame(true, OpCode::Text, b"in flight");
    bytes.extend(client_frame(true, OpCode::Ping, b"p"));
    bytes.extend(client_frame(true, OpCode::Close, &close_payload(1001, "")));
    assert_eq!(
        feed(&mut s, &bytes),
        vec![
            Ev::Text("in flight".into()),
            Ev::Ping(b"p".to_vec()),
            Ev::Close(1001, String::new())
        ]
    );
    let out = frames(&take_output(&mut s));
    assert_eq!(
        out.len(),
        1,
        "our close only, no pong after it and no second close: {out:?}"
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn frame_over_the_limit_fails_with_1009_as_soon_as_its_header_arrives() {
    let config = Config::default().with_max_frame_size(1000);
    let mut s = hybi::Connection::server(config);
    let frame = client_frame(true, OpCode::Binary, &[0u8; 1001]);
    // Only the header (2 + 2 + 4 bytes) is given.
    let (events, close) = feed_and_drive(&mut s, &frame[..8]);
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::FrameTooLarge {
            len: 1001,
            max: 1000
        }))]
    );
    assert_eq!(close.map(|c| c.0), Some(1009));
}

#[test]
fn message_over_the_limit_fails_with_1009_at_the_fragment_that_crosses_it() {
    let config = Config::default().with_max_message_size(1000);
    let mut s = hybi::Connection::server(config);
    assert!(feed(&mut s, &client_frame(false, OpCode::Binary, &[1; 600])).is_empty());
    let second = client_frame(true, OpCode::Continuation, &[2; 401]);
    let (events, close) = feed_and_drive(&mut s, &second[..8]);
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::MessageTooLarge {
            len: 1001,
            max: 1000
        }))]
    );
    assert_eq!(close.map(|c| c.0), Some(1009));
}

#[test]
fn length_with_the_top_bit_set_fails() {
    let mut bytes = vec![0x82, 0xFF];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    server_fails(&bytes, ProtocolError::LengthOverflow, 1002);
}

#[test]
fn huge_announced_length_fails_with_1009() {
    // 2^63 - 1 bytes announced: refused from the header alone.
    let mut bytes = vec![0x82, 0xFF];
    bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    let mut s = server();
    let (events, close) = feed_and_drive(&mut s, &bytes);
    assert!(matches!(
        events[..],
        [Ev::Err(Error::Protocol(
            ProtocolError::FrameTooLarge { .. }
        ))]
    ));
    assert_eq!(close.map(|c| c.0), Some(1009));
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let mut s = server();
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Ping, b"\x00\xFFecho")),
        vec![Ev::Ping(b"\x00\xFFecho".to_vec())]
    );
    let out = frames(&take_output(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.opcode, OpCode::Pong);
    assert_eq!(out[0].header.mask, None);
    assert_eq!(out[0].payload, b"\x00\xFFecho");

    // A client answers with a masked pong.
    let mut c = client();
    assert_eq!(
        feed(&mut c, &server_frame(true, OpCode::Ping, b"hi")),
        vec![Ev::Ping(b"hi".to_vec())]
    );
    let out = frames(&take_output(&mut c));
    assert!(out[0].header.mask.is_some());
    assert_eq!(out[0].payload, b"hi");
}

#[test]
fn auto_pong_can_be_turned_off() {
    let mut s = hybi::Connection::server(Config::default().with_auto_pong(false));
    assert_eq!(
        feed(&mut s, &client_frame(true, OpCode::Ping, b"x")),
        vec![Ev::Ping(b"x".to_vec())]
    );
    assert_eq!(s.buffered_output(), 0);
    s.send_pong(b"x").unwrap();
    assert_eq!(frames(&take_output(&mut s))[0].header.opcode, OpCode::Pong);
}

#[test]
fn every_ping_is_answered_in_order_while_the_peer_reads() {
    let mut s = server();
    let mut bytes = Vec::new();
    for i in 0..10u8 {
        bytes.extend(client_frame(true, OpCode::Ping, &[i]));
    }
    bytes.extend(client_frame(true, OpCode::Text, b"after the pings"));
    let events = feed(&mut s, &bytes);
    assert_eq!(events.len(), 11);
    // The application replies to the text; the pongs stay ahead of it.
    s.send_text("reply").unwrap();
    let out = frames(&take_output(&mut s));
    let payloads: Vec<Vec<u8>> = out[..10].iter().map(|f| f.payload.clone()).collect();
    assert_eq!(payloads, (0..10u8).map(|i| vec![i]).collect::<Vec<_>>());
    assert!(out[..10].iter().all(|f| f.header.opcode == OpCode::Pong));
    assert_eq!(out[10].header.opcode, OpCode::Text);
}

#[test]
fn a_ping_flood_from_a_peer_that_does_not_read_keeps_the_output_bounded() {
    let mut s = server();
    let mut bytes = Vec::new();
    for i in 0..100_000u32 {
        bytes.extend(client_frame(true, OpCode::Ping, &i.to_be_bytes()));
    }
    let events = feed(&mut s, &bytes);
    assert_eq!(events.len(), 100_000);
    assert!(
        s.buffered_output() <= (8 << 10) + 2 * (2 + 125),
        "pongs coalesce once output backs up: {}",
        s.buffered_output()
    );
    let out = frames(&take_output(&mut s));
    assert_eq!(
        out.last().unwrap().payload,
        99_999u32.to_be_bytes(),
        "the latest ping is answered"
    );
}

#[test]
fn pending_pong_goes_out_before_our_close() {
    let mut s = server();
    let mut bytes = client_frame(true, OpCode::Ping, b"last words");
    bytes.extend(client_frame(true, OpCode::Close, &close_payload(1000, "")));
    feed(&mut s, &bytes);
    let out = frames(&take_output(&mut s));
    let ops: Vec<OpCode> = out.iter().map(|f| f.header.opcode).collect();
    assert_eq!(ops, vec![OpCode::Pong, OpCode::Close]);
}

#[test]
fn unexpected_eof_is_an_abnormal_closure() {
    let mut s = server();
    let frame = client_frame(true, OpCode::Text, b"whole");
    s.receive(&frame);
    s.receive(&client_frame(true, OpCode::Text, b"cut")[..4]);
    s.receive_eof();
    assert_eq!(
        drain(&mut s),
        vec![Ev::Text("whole".into()), Ev::Err(Error::UnexpectedEof)]
    );
    assert_eq!(Error::UnexpectedEof.close_code(), CloseCode::ABNORMAL);
    assert!(closing(&mut s));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn eof_after_the_closing_handshake_is_normal() {
    let mut c = client();
    feed(
        &mut c,
        &server_frame(true, OpCode::Close, &close_payload(1000, "")),
    );
    take_output(&mut c);
    assert!(
        !closing(&mut c),
        "the client waits for the server to close TCP"
    );
    c.receive_eof();
    assert!(drain(&mut c).is_empty(), "a clean end");
    assert!(closing(&mut c));
}

#[test]
fn every_violation_queues_a_close_and_reports_a_typed_error() {
    // Each case: bytes for a server → the close code it must send.
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (server_frame(true, OpCode::Text, b"unmasked"), 1002),
        (raw_frame(0xC1, Some(KEY), b"rsv1"), 1002),
        (raw_frame(0x83, Some(KEY), b""), 1002),
        (client_frame(true, OpCode::Ping, &[0; 126]), 1002),
        (client_frame(false, OpCode::Ping, b""), 1002),
        (client_frame(true, OpCode::Continuation, b""), 1002),
        (client_frame(true, OpCode::Text, b"\xC0\x80"), 1007),
        (client_frame(true, OpCode::Close, b"\x03"), 1002),
        (client_frame(true, OpCode::Close, b"\x03\xED"), 1002),
        (client_frame(true, OpCode::Close, b"\x03\xE8\xFF"), 1007),
    ];
    for (bytes, code) in cases {
        let mut s = server();
        let (events, close) = feed_and_drive(&mut s, &bytes);
        let Some(Ev::Err(Error::Protocol(e))) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(e.close_code().as_u16(), code);
        assert_eq!(close.map(|c| c.0), Some(code));
    }
}

#[test]
fn sending_fragments_follows_the_rules() {
    let mut c = client();
    c.send_fragment(MessageKind::Text, "κό".as_bytes(), false)
        .unwrap();
    assert_eq!(c.send_text("x"), Err(SendError::MessageInProgress));
    assert_eq!(
        c.send_fragment(MessageKind::Binary, b"x", false),
        Err(SendError::KindMismatch)
    );
    // A fragment may end inside a character...
    c.send_fragment(MessageKind::Text, b"\xCF", false).unwrap();
    // ...but bad UTF-8 is refused and nothing is queued.
    let before = c.output_queued();
    assert_eq!(
        c.send_fragment(MessageKind::Text, b"\xFF", false),
        Err(SendError::InvalidUtf8)
    );
    assert_eq!(c.output_queued(), before);
    // Control frames interleave.
    c.send_ping(b"mid").unwrap();
    c.send_fragment(MessageKind::Text, b"\x83\xCE\xBC\xCE\xB5", true)
        .unwrap();
    c.send_text("next").unwrap();

    let mut s = server();
    let events = feed(&mut s, &take_output(&mut c));
    assert_eq!(
        events,
        vec![
            Ev::Ping(b"mid".to_vec()),
            Ev::Text("κόσμε".into()),
            Ev::Text("next".into())
        ]
    );
}

#[test]
fn a_text_message_may_not_end_inside_a_character() {
    let mut c = client();
    assert_eq!(
        c.send_fragment(MessageKind::Text, b"\xE2\x82", true),
        Err(SendError::InvalidUtf8)
    );
    assert!(!c.is_sending_fragments());
}

#[test]
fn control_payloads_and_close_arguments_are_checked_on_send() {
    let mut s = server();
    assert_eq!(
        s.send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        s.send_pong(&[0; 126]),
        Err(SendError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        s.close(CloseCode(1005), ""),
        Err(SendError::InvalidCloseCode(1005))
    );
    assert_eq!(
        s.close(CloseCode(999), ""),
        Err(SendError::InvalidCloseCode(999))
    );
    assert_eq!(
        s.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::CloseReasonTooLong(124))
    );
    assert_eq!(s.buffered_output(), 0);
    s.close(CloseCode::NORMAL, &"x".repeat(123)).unwrap();
    assert_eq!(sent_close(&mut s), Some((1000, "x".repeat(123))));
}

#[test]
fn empty_messages_are_delivered() {
    let mut s = server();
    let mut bytes = client_frame(true, OpCode::Text, b"");
    bytes.extend(client_frame(true, OpCode::Binary, b""));
    bytes.extend(client_frame(false, OpCode::Text, b""));
    bytes.extend(client_frame(true, OpCode::Continuation, b""));
    assert_eq!(
        feed(&mut s, &bytes),
        vec![
            Ev::Text(String::new()),
            Ev::Binary(Vec::new()),
            Ev::Text(String::new())
        ]
    );
}

#[test]
fn lenient_masking_accepts_what_strict_masking_refuses() {
    let lenient = Config::default().with_strict_masking(false);
    let mut s = hybi::Connection::server(lenient.clone());
    assert_eq!(
        feed(&mut s, &server_frame(true, OpCode::Text, b"plain")),
        vec![Ev::Text("plain".into())]
    );
    let mut c = client_with(lenient);
    assert_eq!(
        feed(&mut c, &client_frame(true, OpCode::Text, b"masked")),
        vec![Ev::Text("masked".into())]
    );
}

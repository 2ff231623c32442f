//! Delivery::Streaming: pieces of messages as they arrive, through a bounded buffer.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use hybi::{Config, Connection, Delivery, Error, Event, MessageKind, OpCode, ProtocolError};

fn streaming_server() -> Connection {
    Connection::server(Config::default().with_delivery(Delivery::Streaming))
}

#[test]
fn fragments_arrive_with_first_and_fin_flags() {
    let mut s = streaming_server();
    let mut bytes = client_frame(false, OpCode::Binary, b"ab");
    bytes.extend(client_frame(true, OpCode::Ping, b"p"));
    bytes.extend(client_frame(false, OpCode::Continuation, b""));
    bytes.extend(client_frame(true, OpCode::Continuation, b"cd"));
    bytes.extend(client_frame(true, OpCode::Text, b"one"));
    let frag = |kind, data: &[u8], first, fin| Ev::Fragment {
        kind,
        data: data.to_vec(),
        first,
        fin,
    };
    assert_eq!(
        feed(&mut s, &bytes),
        vec![
            frag(MessageKind::Binary, b"ab", true, false),
            Ev::Ping(b"p".to_vec()),
            frag(MessageKind::Binary, b"cd", false, true),
            frag(MessageKind::Text, b"one", true, true),
        ]
    );
}

#[test]
fn a_frame_larger_than_the_buffer_streams_through_it() {
    const LEN: usize = 10 << 20;
    const BUF: usize = 16 << 10;
    let config = Config::default()
        .with_delivery(Delivery::Streaming)
        .with_read_buffer_size(BUF);
    let mut s = Connection::server(config);
    let payload: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
    let wire = client_frame(true, OpCode::Binary, &payload);

    let mut received = Vec::with_capacity(LEN);
    let mut fins = 0;
    let mut offset = 0;
    while offset < wire.len() {
        let buf = s.read_buf();
        assert!(
            buf.len() <= BUF,
            "the receive buffer stays at its configured size"
        );
        let n = buf.len().min(wire.len() - offset).min(5000);
        buf[..n].copy_from_slice(&wire[offset..offset + n]);
        s.commit(n);
        offset += n;
        while let hybi::Next::Event(event, _) = s.next() {
            let Event::Fragment(f) = event else {
                panic!("{event:?}")
            };
            assert_eq!(f.first, received.is_empty() && fins == 0);
            received.extend_from_slice(f.data);
            fins += usize::from(f.fin);
        }
    }
    assert_eq!(fins, 1);
    assert!(received == payload, "streamed bytes differ");
}

#[test]
fn streamed_text_fails_at_the_first_bad_byte() {
    let mut s = streaming_server();
    let wire = client_frame(true, OpCode::Text, b"valid so far \xED\xA0\x80 and more");
    let events = feed(&mut s, &wire[..6 + 14]);
    // 14 payload bytes: "valid so far " plus 0xED, a valid prefix so far.
    assert_eq!(
        events,
        vec![Ev::Fragment {
            kind: MessageKind::Text,
            data: b"valid so far \xED".to_vec(),
            first: true,
            fin: false
        }]
    );
    let (events, close) = feed_and_drive(&mut s, &wire[20..21]);
    assert_eq!(
        events,
        vec![Ev::Err(Error::Protocol(ProtocolError::InvalidUtf8))]
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[test]
fn streamed_text_pieces_join_to_valid_utf8() {
    let text = "Grüße, 世界! 🎉 ".repeat(200);
    let mut c = client();
    let bytes = text.as_bytes();
    // Fragments cut at arbitrary bytes, even inside characters.
    for (i, chunk) in bytes.chunks(7).enumerate() {
        let fin = (i + 1) * 7 >= bytes.len();
        c.send_fragment(MessageKind::Text, chunk, fin).unwrap();
    }
    let wire = take_output(&mut c);
    let mut s = streaming_server();
    let mut joined = Vec::new();
    for piece in wire.chunks(13) {
        for e in feed(&mut s, piece) {
            let Ev::Fragment { data, .. } = e else {
                panic!("{e:?}")
            };
            joined.extend(data);
        }
    }
    assert_eq!(String::from_utf8(joined).unwrap(), text);
}

#[test]
fn the_message_limit_applies_in_streaming_mode() {
    let config = Config::default()
        .with_delivery(Delivery::Streaming)
        .with_max_message_size(10);
    let mut s = Connection::server(config);
    let mut bytes = client_frame(false, OpCode::Binary, &[0; 6]);
    bytes.extend(client_frame(true, OpCode::Continuation, &[0; 6]));
    let (events, _) = feed_and_drive(&mut s, &bytes);
    assert_eq!(
        events.last(),
        Some(&Ev::Err(Error::Protocol(ProtocolError::MessageTooLarge {
            len: 12,
            max: 10
        })))
    );
}

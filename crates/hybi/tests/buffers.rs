//! Buffer hand-back for pooling adapters, and the split borrow of events and outbox.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use hybi::{Config, Connection, Event, OpCode};

#[test]
fn the_read_buffer_comes_back_only_when_it_holds_nothing() {
    let mut s = server();
    assert!(s.take_read_buffer().is_none(), "nothing allocated yet");
    let frame = client_frame(true, OpCode::Text, b"hello");
    s.receive(&frame[..5]);
    assert!(drain(&mut s).is_empty());
    assert!(
        s.take_read_buffer().is_none(),
        "a partial frame is buffered"
    );
    s.receive(&frame[5..]);
    assert_eq!(drain(&mut s), vec![Ev::Text("hello".into())]);
    let buf = s.take_read_buffer().expect("empty again");
    assert_eq!(buf.len(), 64 << 10);

    // A pooled buffer is used by another connection, whatever it held.
    let mut other = server();
    let mut dirty = buf;
    dirty.fill(0xEE);
    assert!(other.give_read_buffer(dirty).is_none());
    assert_eq!(
        feed(&mut other, &client_frame(true, OpCode::Binary, b"ok")),
        vec![Ev::Binary(b"ok".to_vec())]
    );
    // A connection that has a buffer hands the offered one back.
    assert!(other.give_read_buffer(vec![0; 10]).is_some());
}

#[test]
fn a_frame_whose_header_arrived_survives_a_buffer_swap() {
    let mut s = server();
    let frame = client_frame(true, OpCode::Binary, &[7u8; 300]);
    s.receive(&frame[..8]); // header and mask key only
    assert!(drain(&mut s).is_empty());
    let buf = s.take_read_buffer().expect("no payload byte is buffered");
    assert!(s.give_read_buffer(buf).is_none());
    assert_eq!(feed(&mut s, &frame[8..]), vec![Ev::Binary(vec![7u8; 300])]);
}

#[test]
fn the_output_buffer_comes_back_only_when_written() {
    let mut s = server();
    s.send_text("queued").unwrap();
    assert!(s.take_output_buffer().is_none());
    take_output(&mut s);
    let buf = s.take_output_buffer().expect("written");
    assert!(buf.capacity() > 0);
    let mut other = server();
    assert!(other.give_output_buffer(buf).is_none());
    other.send_text("reused").unwrap();
    assert_eq!(frames(&take_output(&mut other))[0].payload, b"reused");
}

#[test]
fn an_echo_through_the_outbox_needs_no_copy_in_between() {
    let mut s = Connection::server(Config::default());
    let mut wire = client_frame(true, OpCode::Text, "κόσμε".as_bytes());
    wire.extend(client_frame(true, OpCode::Binary, &[1, 2, 3]));
    s.receive(&wire);
    while let hybi::Next::Event(event, mut out) = s.next() {
        match event {
            Event::Text(t) => out.send_text(t).unwrap(),
            Event::Binary(b) => out.send_binary(b).unwrap(),
            other => panic!("{other:?}"),
        }
    }
    let out = frames(&take_output(&mut s));
    assert_eq!(out[0].payload, "κόσμε".as_bytes());
    assert_eq!(out[1].payload, [1, 2, 3]);
}

#[test]
fn after_a_failure_the_read_buffer_keeps_draining_the_transport() {
    // Found in the browser: a too-large frame fails the connection with its first
    // read; the rest of that read stayed buffered, read_buf() came back empty, and
    // an adapter reading into it saw 0 bytes, i.e. end of input, and dropped the
    // connection before the 1009 close frame went out.
    let mut s = Connection::server(Config::default().with_max_message_size(1000));
    let frame = client_frame(true, OpCode::Text, &vec![b'a'; 100_000]);
    let buf = s.read_buf();
    let n = buf.len();
    buf.copy_from_slice(&frame[..n]);
    s.commit(n);
    assert!(drain(&mut s).is_empty(), "failed: the close frame to write");
    assert!(
        !s.read_buf().is_empty(),
        "room to keep reading (and discarding)"
    );
    assert_eq!(sent_close(&mut s).map(|c| c.0), Some(1009));
}

#[test]
fn a_frame_larger_than_the_receive_buffer_is_read_straight_into_the_message() {
    let payload: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let wire = client_frame(true, OpCode::Binary, &payload);
    let mut s = server();
    let (events, largest) = feed_via_read_buf(&mut s, &wire, usize::MAX);
    assert_eq!(events, vec![Ev::Binary(payload.clone())]);
    assert!(
        largest > 64 << 10,
        "read_buf offered the message buffer ({largest} bytes)"
    );

    // In odd pieces, fragmented, with a ping between fragments.
    let mut wire = client_frame(false, OpCode::Text, &[b'a'; 100_000]);
    wire.extend(client_frame(true, OpCode::Ping, b"mid"));
    wire.extend(client_frame(
        false,
        OpCode::Continuation,
        "κόσμε".repeat(20_000).as_bytes(),
    ));
    wire.extend(client_frame(true, OpCode::Continuation, &[b'z'; 70_001]));
    let mut want = "a".repeat(100_000);
    want.push_str(&"κόσμε".repeat(20_000));
    want.push_str(&"z".repeat(70_001));
    for chunk in [1, 7, 4095, 4096, 65_537, usize::MAX] {
        let mut s = server();
        let (events, _) = feed_via_read_buf(&mut s, &wire, chunk);
        assert_eq!(
            events,
            vec![Ev::Ping(b"mid".to_vec()), Ev::Text(want.clone())],
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_large_receive_buffer_starts_at_64_kib_and_grows_once_it_fills() {
    let config = Config::default().with_read_buffer_size(256 << 10);
    let mut s = Connection::server(config.clone());
    assert_eq!(s.read_buf().len(), 64 << 10, "starts small");

    // Small messages in small reads: the buffer never fills, it stays small.
    let mut wire = Vec::new();
    for i in 0..2000u32 {
        wire.extend(client_frame(true, OpCode::Binary, &i.to_be_bytes()));
    }
    let (events, largest) = feed_via_read_buf(&mut s, &wire, 1500);
    assert_eq!(events.len(), 2000);
    assert_eq!(events[1999], Ev::Binary(1999u32.to_be_bytes().to_vec()));
    assert_eq!(largest, 64 << 10);

    // Reads that fill what is offered: more is waiting, so more room is offered.
    let payload = vec![5u8; 1000];
    let mut wire = Vec::new();
    for _ in 0..300 {
        wire.extend(client_frame(true, OpCode::Binary, &payload));
    }
    let (events, largest) = feed_via_read_buf(&mut s, &wire, usize::MAX);
    assert_eq!(events.len(), 300);
    assert!(events.iter().all(|e| *e == Ev::Binary(payload.clone())));
    assert!(
        largest > 64 << 10 && largest <= 256 << 10,
        "grew to the configured size: offered {largest}"
    );

    // A frame that fits the configured size but not 64 KiB arrives in reads that
    // never fill the buffer: it still fits once the buffer is full.
    let big: Vec<u8> = (0..200_000).map(|i| (i % 253) as u8).collect();
    let wire = client_frame(true, OpCode::Binary, &big);
    for chunk in [1000, 4096, 65_536, usize::MAX] {
        let mut s = Connection::server(config.clone());
        let (events, _) = feed_via_read_buf(&mut s, &wire, chunk);
        assert_eq!(events, vec![Ev::Binary(big.clone())], "chunk {chunk}");
        let mut s = Connection::server(config.clone());
        let mut events = Vec::new();
        for piece in wire.chunks(chunk.min(wire.len())) {
            events.extend(feed(&mut s, piece));
        }
        assert_eq!(
            events,
            vec![Ev::Binary(big.clone())],
            "receive, chunk {chunk}"
        );
    }
    // `receive` filled the 64 KiB buffer exactly, inside that frame: the next
    // `read_buf` offers the room the rest needs.
    let mut s = Connection::server(config);
    assert!(feed(&mut s, &wire[..64 << 10]).is_empty());
    let (events, _) = feed_via_read_buf(&mut s, &wire[64 << 10..], usize::MAX);
    assert_eq!(events, vec![Ev::Binary(big)]);
}

#[test]
fn a_growing_receive_buffer_delivers_what_a_fixed_one_does_however_the_reads_fall() {
    // Random frames (whole and fragmented, 0 B to 300 KB, pings between) read in
    // random pieces, by read_buf + commit and by receive in turn: a connection whose
    // buffer grows from 64 KiB to 256 KiB delivers exactly what one fed the whole
    // stream at once does.
    let mut seed = 0x9E37_79B9_u32;
    let mut next = move |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % n.max(1)
    };
    for round in 0..20 {
        let mut wire = Vec::new();
        for _ in 0..40 {
            let len = match next(4) {
                0 => next(200),
                1 => next(70_000),
                2 => 65_536 + next(2) * 14,
                _ => next(300_000),
            } as usize;
            let payload: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            if next(3) == 0 {
                let cut = payload.len() / 2;
                wire.extend(client_frame(false, OpCode::Binary, &payload[..cut]));
                wire.extend(client_frame(true, OpCode::Ping, b"p"));
                wire.extend(client_frame(true, OpCode::Continuation, &payload[cut..]));
            } else {
                wire.extend(client_frame(true, OpCode::Binary, &payload));
            }
        }
        let config = Config::default().with_read_buffer_size(256 << 10);
        let want = feed(&mut Connection::server(config.clone()), &wire);
        assert!(want.iter().all(|e| !matches!(e, Ev::Err(_))), "{round}");

        let mut s = Connection::server(config);
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < wire.len() {
            let chunk = [1, 100, 4096, 65_536, 300_000][next(5) as usize];
            let n = if next(4) == 0 {
                let n = chunk.min(wire.len() - pos);
                s.receive(&wire[pos..pos + n]);
                n
            } else {
                let buf = s.read_buf();
                assert!(!buf.is_empty(), "round {round}: no room offered at {pos}");
                let n = buf.len().min(chunk).min(wire.len() - pos);
                buf[..n].copy_from_slice(&wire[pos..pos + n]);
                s.commit(n);
                n
            };
            pos += n;
            got.extend(drain(&mut s));
        }
        assert!(got == want, "round {round}: events differ");
    }
}

#[test]
fn invalid_utf8_read_straight_into_the_message_fails_at_once() {
    let mut text = vec![b'a'; 150_000];
    text[100_000] = 0xFF;
    let wire = client_frame(true, OpCode::Text, &text);
    let mut s = server();
    // Stop feeding halfway through the frame: the error must already be there.
    let (events, _) = feed_via_read_buf(&mut s, &wire[..110_000], 8192);
    assert!(events.is_empty());
    let (events, close) = feed_and_drive(&mut s, &[]);
    assert_eq!(
        events.last(),
        Some(&Ev::Err(hybi::Error::Protocol(
            hybi::ProtocolError::InvalidUtf8
        )))
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[test]
fn messages_of_a_megabyte_reuse_the_message_buffer() {
    // After the first, receiving another 1 MiB message needs no new buffer: the
    // message buffer is kept (up to 2 MiB) between messages.
    let payload = vec![9u8; 1 << 20];
    let wire = client_frame(true, OpCode::Binary, &payload);
    let mut s = server();
    for _ in 0..3 {
        let (events, _) = feed_via_read_buf(&mut s, &wire, 65536);
        assert_eq!(events.len(), 1);
    }
}

#[test]
fn the_message_buffer_comes_back_only_between_messages_and_can_be_reused() {
    let payload: Vec<u8> = (0..200_000).map(|i| (i % 253) as u8).collect();
    let wire = client_frame(true, OpCode::Binary, &payload);
    let mut s = server();
    assert!(s.take_message_buffer().is_none(), "nothing allocated yet");

    // Half of a large frame: the message buffer holds it and stays.
    let (events, _) = feed_via_read_buf(&mut s, &wire[..100_000], usize::MAX);
    assert!(events.is_empty());
    assert!(
        s.take_message_buffer().is_none(),
        "a message is being assembled"
    );
    let (events, _) = feed_via_read_buf(&mut s, &wire[100_000..], usize::MAX);
    assert_eq!(events, vec![Ev::Binary(payload.clone())]);
    let mut buf = s.take_message_buffer().expect("between messages");
    assert!(buf.len() >= payload.len());
    assert!(s.take_message_buffer().is_none(), "given away");

    // Another connection uses it, whatever it held, without allocating a new one.
    buf.fill(0xEE);
    let ptr = buf.as_ptr();
    let mut other = server();
    assert!(other.give_message_buffer(buf).is_none());
    let (events, largest) = feed_via_read_buf(&mut other, &wire, usize::MAX);
    assert_eq!(events, vec![Ev::Binary(payload.clone())]);
    assert!(
        largest >= payload.len() - (64 << 10),
        "read straight into it"
    );
    let back = other.take_message_buffer().expect("between messages");
    assert_eq!(
        back.as_ptr(),
        ptr,
        "the pooled buffer was used, not a new one"
    );

    // A connection that has one refuses a second; so does one whose limit is smaller.
    assert!(other.give_message_buffer(back).is_none());
    assert!(other.give_message_buffer(vec![0; 10]).is_some());
    let mut small = Connection::server(Config::default().with_max_message_size(1000));
    assert!(small.give_message_buffer(vec![0; 4096]).is_some());
    let mut huge = server();
    assert!(huge.give_message_buffer(vec![0; 3 << 20]).is_some());
}

#[test]
fn a_fragmented_message_keeps_its_buffer_until_the_last_fragment() {
    let mut s = server();
    let first = client_frame(false, OpCode::Text, &[b'a'; 5000]);
    assert!(feed(&mut s, &first).is_empty());
    assert!(
        s.take_message_buffer().is_none(),
        "fragments are held in it"
    );
    let last = client_frame(true, OpCode::Continuation, &[b'b'; 10]);
    let mut want = "a".repeat(5000);
    want.push_str(&"b".repeat(10));
    assert_eq!(feed(&mut s, &last), vec![Ev::Text(want)]);
    assert!(s.take_message_buffer().is_some());
}

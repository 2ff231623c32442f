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
    while let Some((event, mut out)) = s.poll_event_with_outbox().unwrap() {
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

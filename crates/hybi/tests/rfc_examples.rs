//! The frames given as examples in RFC 6455 §5.7, received and sent.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use hybi::{Config, Connection, Role};

/// (description, receiving role, wire bytes, what the receiver reports)
fn examples() -> Vec<(&'static str, Role, Vec<u8>, Vec<Ev>)> {
    let mut bin256 = vec![0x82, 0x7E, 0x01, 0x00];
    bin256.extend((0..256).map(|i| i as u8));
    let mut bin64k = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    bin64k.extend((0..65536).map(|i| (i % 251) as u8));
    vec![
        (
            "a single-frame unmasked text message",
            Role::Client,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            vec![Ev::Text("Hello".into())],
        ),
        (
            "a single-frame masked text message",
            Role::Server,
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            vec![Ev::Text("Hello".into())],
        ),
        (
            "a fragmented unmasked text message",
            Role::Client,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            vec![Ev::Text("Hello".into())],
        ),
        (
            "an unmasked ping request",
            Role::Client,
            vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            vec![Ev::Ping(b"Hello".to_vec())],
        ),
        (
            "a masked ping response (pong)",
            Role::Server,
            vec![
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            vec![Ev::Pong(b"Hello".to_vec())],
        ),
        (
            "256 bytes binary message in a single unmasked frame",
            Role::Client,
            bin256,
            vec![Ev::Binary((0..256).map(|i| i as u8).collect())],
        ),
        (
            "64KiB binary message in a single unmasked frame",
            Role::Client,
            bin64k,
            vec![Ev::Binary((0..65536).map(|i| (i % 251) as u8).collect())],
        ),
    ]
}

fn engine(role: Role) -> Connection {
    match role {
        Role::Client => client(),
        Role::Server => server(),
    }
}

#[test]
fn rfc_6455_section_5_7_examples_are_received() {
    for (what, role, bytes, expected) in examples() {
        // Whole, then split at every byte.
        assert_eq!(feed(&mut engine(role), &bytes), expected, "{what}");
        if bytes.len() < 1000 {
            for cut in 0..=bytes.len() {
                let mut conn = engine(role);
                let mut events = feed(&mut conn, &bytes[..cut]);
                events.extend(feed(&mut conn, &bytes[cut..]));
                assert_eq!(events, expected, "{what}, split at {cut}");
            }
        }
    }
}

#[test]
fn rfc_6455_section_5_7_examples_are_sent_byte_for_byte() {
    let mut server = Connection::server(Config::default());
    server.send_text("Hello").unwrap();
    assert_eq!(
        take_output(&mut server),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );

    server
        .send_fragment(hybi::MessageKind::Text, b"Hel", false)
        .unwrap();
    server
        .send_fragment(hybi::MessageKind::Text, b"lo", true)
        .unwrap();
    assert_eq!(
        take_output(&mut server),
        [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
    );

    server.send_ping(b"Hello").unwrap();
    assert_eq!(
        take_output(&mut server),
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );

    server.send_binary(&[0u8; 256]).unwrap();
    assert_eq!(take_output(&mut server)[..4], [0x82, 0x7E, 0x01, 0x00]);

    server.send_binary(&[0u8; 65536]).unwrap();
    assert_eq!(
        take_output(&mut server)[..10],
        [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]
    );

    // The RFC's masking key, supplied by the caller's random source.
    let mut client = Connection::client(Config::default(), |buf: &mut [u8]| {
        buf.copy_from_slice(&[0x37, 0xfa, 0x21, 0x3d]);
    });
    client.send_text("Hello").unwrap();
    assert_eq!(
        take_output(&mut client),
        [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    client.send_pong(b"Hello").unwrap();
    assert_eq!(
        take_output(&mut client),
        [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
}

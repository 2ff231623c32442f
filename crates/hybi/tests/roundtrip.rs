//! Property: any sequence of messages, fragmented any way by the sender, with pings
//! between fragments, fed to the peer in chunks split at arbitrary points, comes out
//! byte-identical, in both directions and both delivery modes.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use hybi::{Config, Connection, Delivery, MessageKind};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Message {
    kind: MessageKind,
    payload: Vec<u8>,
    /// Where the sender cuts the payload into fragments (may be inside a character).
    cuts: Vec<usize>,
    /// Send a ping after this many fragments.
    ping_after: Option<usize>,
}

fn message() -> impl Strategy<Value = Message> {
    let payload = prop_oneof![
        6 => "\\PC{0,300}".prop_map(|s| (MessageKind::Text, s.into_bytes())),
        3 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(|b| (MessageKind::Binary, b)),
        1 => proptest::collection::vec(any::<u8>(), 60_000..140_000).prop_map(|b| (MessageKind::Binary, b)),
    ];
    (
        payload,
        proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(|((kind, payload), cuts, ping)| {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let ping_after = ping.map(|i| i.index(cuts.len() + 1));
            Message {
                kind,
                payload,
                cuts,
                ping_after,
            }
        })
}

fn send(conn: &mut Connection, m: &Message) {
    if m.cuts.is_empty() && m.ping_after.is_none() {
        match m.kind {
            MessageKind::Text => conn
                .send_text(std::str::from_utf8(&m.payload).unwrap())
                .unwrap(),
            MessageKind::Binary => conn.send_binary(&m.payload).unwrap(),
        }
        return;
    }
    let mut bounds = vec![0];
    bounds.extend(&m.cuts);
    bounds.push(m.payload.len());
    for (i, w) in bounds.windows(2).enumerate() {
        if m.ping_after == Some(i) {
            conn.send_ping(b"between").unwrap();
        }
        let fin = i + 2 == bounds.len();
        conn.send_fragment(m.kind, &m.payload[w[0]..w[1]], fin)
            .unwrap();
    }
}

fn check(
    messages: Vec<Message>,
    client_sends: bool,
    streaming: bool,
    chunks: Vec<prop::sample::Index>,
) {
    let delivery = if streaming {
        Delivery::Streaming
    } else {
        Delivery::Message
    };
    let config = Config::default()
        .with_delivery(delivery)
        .with_read_buffer_size(16 << 10);
    let (mut sender, mut receiver) = if client_sends {
        (client(), Connection::server(config))
    } else {
        (server(), client_with(config))
    };
    for m in &messages {
        send(&mut sender, m);
    }
    let wire = take_output(&mut sender);

    // Split the wire at arbitrary points.
    let mut points: Vec<usize> = chunks.iter().map(|c| c.index(wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    let mut events = Vec::new();
    for (i, w) in points.windows(2).enumerate() {
        // Alternate the copying and the zero-copy input paths.
        if i % 2 == 0 {
            events.extend(feed(&mut receiver, &wire[w[0]..w[1]]));
        } else {
            events.extend(feed_via_read_buf(&mut receiver, &wire[w[0]..w[1]], usize::MAX).0);
        }
    }

    let mut got: Vec<(MessageKind, Vec<u8>)> = Vec::new();
    let mut open: Option<(MessageKind, Vec<u8>)> = None;
    for e in events {
        match e {
            Ev::Text(t) => got.push((MessageKind::Text, t.into_bytes())),
            Ev::Binary(b) => got.push((MessageKind::Binary, b)),
            Ev::Fragment {
                kind,
                data,
                first,
                fin,
            } => {
                assert_eq!(first, open.is_none(), "first flag");
                let entry = open.get_or_insert((kind, Vec::new()));
                assert_eq!(entry.0, kind);
                entry.1.extend(data);
                if fin {
                    got.push(open.take().unwrap());
                }
            }
            Ev::Ping(p) => assert_eq!(p, b"between"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(open.is_none(), "unfinished streamed message");
    let want: Vec<(MessageKind, Vec<u8>)> =
        messages.into_iter().map(|m| (m.kind, m.payload)).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w,
            "message differs: kind {:?} vs {:?}, len {} vs {}",
            g.0,
            w.0,
            g.1.len(),
            w.1.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_fragmentation_and_any_split_round_trips(
        messages in proptest::collection::vec(message(), 1..4),
        client_sends in any::<bool>(),
        streaming in any::<bool>(),
        chunks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        check(messages, client_sends, streaming, chunks);
    }
}

#[test]
fn every_split_of_a_small_exchange_round_trips() {
    let messages = vec![
        Message {
            kind: MessageKind::Text,
            payload: "héllo €".as_bytes().to_vec(),
            cuts: vec![2, 3, 7],
            ping_after: Some(1),
        },
        Message {
            kind: MessageKind::Binary,
            payload: vec![0, 1, 2, 3, 255],
            cuts: vec![],
            ping_after: None,
        },
    ];
    let mut c = client();
    for m in &messages {
        send(&mut c, m);
    }
    let wire_len = take_output(&mut c).len();
    for cut in 0..=wire_len {
        for streaming in [false, true] {
            check_split(&messages, cut, streaming);
        }
    }
}

fn check_split(messages: &[Message], cut: usize, streaming: bool) {
    let delivery = if streaming {
        Delivery::Streaming
    } else {
        Delivery::Message
    };
    let mut c = client();
    for m in messages {
        send(&mut c, m);
    }
    let wire = take_output(&mut c);
    let mut s = Connection::server(Config::default().with_delivery(delivery));
    let mut events = feed(&mut s, &wire[..cut]);
    events.extend(feed(&mut s, &wire[cut..]));
    let mut joined: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    for e in events {
        match e {
            Ev::Text(t) => joined.push(t.into_bytes()),
            Ev::Binary(b) => joined.push(b),
            Ev::Fragment { data, fin, .. } => {
                current.extend(data);
                if fin {
                    joined.push(std::mem::take(&mut current));
                }
            }
            Ev::Ping(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let want: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(joined, want, "split at {cut}, streaming {streaming}");
}

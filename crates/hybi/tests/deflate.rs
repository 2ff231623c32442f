//! permessage-deflate on the connection: compressed messages both ways, RSV1 rules,
//! fragmentation, streaming, context takeover or not, the limit on inflated size,
//! and lending the codec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use hybi::deflate::{Agreement, DeflateConfig};
use hybi::{Config, Connection, Delivery, Error, MessageKind, OpCode, ProtocolError};

fn pair(agreement: Agreement, config: DeflateConfig) -> (Connection, Connection) {
    let mut c = client();
    let mut s = server();
    c.enable_deflate(agreement, config);
    s.enable_deflate(agreement, config);
    (c, s)
}

/// Moves everything `from` writes into `to` and returns `to`'s events, with the
/// frames that crossed.
fn carry(from: &mut Connection, to: &mut Connection) -> (Vec<Ev>, Vec<Frame>) {
    let bytes = take_output(from);
    let sent = frames(&bytes);
    (feed(to, &bytes), sent)
}

fn json(n: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"u{}\",\"text\":\"hello again\"}},",
            i % 7
        ));
        i += 1;
    }
    s.truncate(n);
    s
}

#[test]
fn messages_are_compressed_both_ways_in_every_mode() {
    for (snct, cnct) in [(false, false), (true, false), (false, true), (true, true)] {
        for bits in 8..=15u8 {
            let agreement = Agreement {
                server_no_context_takeover: snct,
                client_no_context_takeover: cnct,
                server_max_window_bits: bits,
                client_max_window_bits: 23 - bits,
            };
            let (mut c, mut s) = pair(agreement, DeflateConfig::default());
            for size in [0usize, 5, 200, 5_000, 300_000] {
                let text = json(size);
                c.send_text(&text).unwrap();
                let (events, sent) = carry(&mut c, &mut s);
                assert_eq!(
                    events,
                    [Ev::Text(text.clone())],
                    "{snct} {cnct} {bits} {size}"
                );
                assert_eq!(sent[0].header.rsv1, size >= 128, "RSV1 iff compressed");
                if size >= 5_000 {
                    assert!(
                        sent[0].payload.len() < size / 2,
                        "compressed: {}",
                        sent[0].payload.len()
                    );
                }
                s.send_binary(text.as_bytes()).unwrap();
                let (events, _) = carry(&mut s, &mut c);
                assert_eq!(events, [Ev::Binary(text.into_bytes())]);
            }
        }
    }
}

#[test]
fn context_takeover_compresses_a_repeated_message_better() {
    let size_of_second = |agreement: Agreement| {
        let (mut c, mut s) = pair(agreement, DeflateConfig::default());
        let text = json(2000);
        c.send_text(&text).unwrap();
        carry(&mut c, &mut s);
        c.send_text(&text).unwrap();
        let (events, sent) = carry(&mut c, &mut s);
        assert_eq!(events, [Ev::Text(text)]);
        sent[0].payload.len()
    };
    let kept = size_of_second(Agreement::default());
    let reset = size_of_second(Agreement {
        client_no_context_takeover: true,
        ..Agreement::default()
    });
    assert!(kept * 2 < reset, "takeover {kept} bytes, reset {reset}");
}

#[test]
fn fragments_are_compressed_with_rsv1_on_the_first_only() {
    let (mut c, mut s) = pair(Agreement::default(), DeflateConfig::default());
    let text = json(3000);
    let (a, rest) = text.split_at(1000);
    let (b, d) = rest.split_at(1000);
    c.send_fragment(MessageKind::Text, a.as_bytes(), false)
        .unwrap();
    c.send_fragment(MessageKind::Text, b.as_bytes(), false)
        .unwrap();
    c.send_fragment(MessageKind::Text, d.as_bytes(), true)
        .unwrap();
    let (events, sent) = carry(&mut c, &mut s);
    assert_eq!(events, [Ev::Text(text)]);
    let rsv: Vec<bool> = sent.iter().map(|f| f.header.rsv1).collect();
    assert_eq!(rsv, [true, false, false]);
    assert_eq!(sent[1].header.opcode, OpCode::Continuation);
}

#[test]
fn streaming_delivers_the_inflated_message_in_pieces() {
    let mut c = client();
    c.enable_deflate(Agreement::default(), DeflateConfig::default());
    let mut s = Connection::server(Config::default().with_delivery(Delivery::Streaming));
    s.enable_deflate(Agreement::default(), DeflateConfig::default());
    let text = json(200_000);
    c.send_text(&text).unwrap();
    let wire = take_output(&mut c);
    let mut joined = Vec::new();
    let mut pieces = 0;
    for chunk in wire.chunks(700) {
        for e in feed(&mut s, chunk) {
            let Ev::Fragment {
                data, first, fin, ..
            } = e
            else {
                panic!("{e:?}")
            };
            assert_eq!(first, pieces == 0);
            assert!(data.len() <= 16 << 10, "pieces are bounded");
            joined.extend(data);
            pieces += 1;
            if fin {
                assert_eq!(String::from_utf8(joined.clone()).unwrap(), text);
            }
        }
    }
    assert_eq!(joined.len(), text.len());
    assert!(pieces > 12);
}

#[test]
fn rsv1_needs_the_extension_and_a_first_data_frame() {
    // Without the extension.
    let mut s = server();
    let (events, close) = feed_and_drive(&mut s, &raw_frame(0xC1, Some(KEY), b"x"));
    assert_eq!(
        events,
        [Ev::Err(Error::Protocol(ProtocolError::ReservedBits))]
    );
    assert_eq!(close.map(|c| c.0), Some(1002));
    // On a continuation or a control frame.
    for bytes in [
        [
            client_frame(false, OpCode::Text, b"a"),
            raw_frame(0xC0, Some(KEY), b"b"),
        ]
        .concat(),
        raw_frame(0xC9, Some(KEY), b"ping"),
    ] {
        let mut s = server();
        s.enable_deflate(Agreement::default(), DeflateConfig::default());
        let (events, close) = feed_and_drive(&mut s, &bytes);
        assert_eq!(
            events.last(),
            Some(&Ev::Err(Error::Protocol(ProtocolError::ReservedBits)))
        );
        assert_eq!(close.map(|c| c.0), Some(1002));
    }
}

#[test]
fn control_frames_are_never_compressed() {
    let (mut c, mut s) = pair(
        Agreement::default(),
        DeflateConfig::default().with_threshold(0),
    );
    c.send_ping(&[b'p'; 125]).unwrap();
    c.close(hybi::CloseCode::NORMAL, &"r".repeat(100)).unwrap();
    let (_, sent) = carry(&mut c, &mut s);
    assert!(sent.iter().all(|f| !f.header.rsv1));
}

#[test]
fn invalid_compressed_data_fails_with_1007_and_invalid_text_too() {
    let mut s = server();
    s.enable_deflate(Agreement::default(), DeflateConfig::default());
    let (events, close) = feed_and_drive(&mut s, &raw_frame(0xC2, Some(KEY), &[0xff; 40]));
    assert_eq!(
        events,
        [Ev::Err(Error::Protocol(
            ProtocolError::InvalidCompressedData
        ))]
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
    // Valid deflate whose inflated text is not UTF-8, failing at once.
    let (mut c, mut s) = pair(Agreement::default(), DeflateConfig::default());
    c.send_binary(&[&b"valid so far "[..], &[0xC0, 0x80], &vec![b'a'; 500]].concat())
        .unwrap();
    let mut bytes = take_output(&mut c);
    bytes[0] = (bytes[0] & 0xF0) | 0x1; // now a text frame
    let (events, close) = feed_and_drive(&mut s, &bytes);
    assert_eq!(
        events,
        [Ev::Err(Error::Protocol(ProtocolError::InvalidUtf8))]
    );
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[test]
fn the_message_limit_applies_to_the_inflated_size() {
    let config = Config::default().with_max_message_size(10_000);
    let mut s = Connection::server(config);
    s.enable_deflate(Agreement::default(), DeflateConfig::default());
    let mut c = client();
    c.enable_deflate(Agreement::default(), DeflateConfig::default());
    c.send_binary(&vec![0u8; 10_000]).unwrap();
    let (events, _) = carry(&mut c, &mut s);
    assert_eq!(events, [Ev::Binary(vec![0; 10_000])], "at the limit");
    c.send_binary(&vec![0u8; 10_001]).unwrap();
    let bytes = take_output(&mut c);
    assert!(bytes.len() < 200, "a small frame: {} bytes", bytes.len());
    let (events, close) = feed_and_drive(&mut s, &bytes);
    assert!(matches!(
        events[..],
        [Ev::Err(Error::Protocol(ProtocolError::MessageTooLarge {
            max: 10_000,
            ..
        }))]
    ));
    assert_eq!(close.map(|c| c.0), Some(1009));
}

#[test]
fn a_compressor_and_an_inflater_can_be_lent_when_no_context_is_kept() {
    let lean = Agreement {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..Agreement::default()
    };
    let (mut c, mut s) = pair(lean, DeflateConfig::default());
    c.send_text(&json(1000)).unwrap();
    carry(&mut c, &mut s);
    let deflater = c
        .take_deflater()
        .expect("no context: the compressor can go");
    assert!(c.take_deflater().is_none());
    let inflater = s.take_inflater().expect("no context: the inflater can go");
    // Lent to another connection, they work there.
    let (mut c2, mut s2) = pair(lean, DeflateConfig::default());
    assert!(c2.give_deflater(deflater).is_none());
    assert!(s2.give_inflater(inflater).is_none());
    c2.send_text(&json(1000)).unwrap();
    let (events, _) = carry(&mut c2, &mut s2);
    assert_eq!(events, [Ev::Text(json(1000))]);
    // With context takeover at level 1 our context is kept by the connection (the last
    // window it compressed and its own match table), so the compressor can go too; at
    // other levels zlib-rs holds the context and the compressor stays. The peer's
    // context is kept as its last window of bytes, so the inflater can go and a fresh
    // one is primed with it: messages that refer back still inflate.
    let (mut c5, mut s5) = pair(Agreement::default(), DeflateConfig::default().with_level(6));
    c5.send_text(&json(1000)).unwrap();
    carry(&mut c5, &mut s5);
    assert!(c5.take_deflater().is_none(), "zlib-rs holds the context");
    let (mut c3, mut s3) = pair(Agreement::default(), DeflateConfig::default());
    let text = json(1000);
    c3.send_text(&text).unwrap();
    carry(&mut c3, &mut s3);
    let lent = c3
        .take_deflater()
        .expect("the connection holds the context");
    let (mut c6, mut s6) = pair(Agreement::default(), DeflateConfig::default());
    assert!(c6.give_deflater(lent).is_none());
    c6.send_text(&text).unwrap();
    assert_eq!(carry(&mut c6, &mut s6).0, [Ev::Text(text.clone())]);
    c3.send_text(&text).unwrap();
    let (events, sent) = carry(&mut c3, &mut s3);
    assert_eq!(events, [Ev::Text(text.clone())]);
    assert!(
        sent[0].payload.len() < 100,
        "a fresh compressor still refers back to the message before"
    );
    for round in 0..4 {
        let inflater = s3.take_inflater().expect("between messages it can go");
        // Lend it elsewhere (it inflates another connection's message) meanwhile.
        let (mut c4, mut s4) = pair(Agreement::default(), DeflateConfig::default());
        assert!(s4.give_inflater(inflater).is_none());
        c4.send_text(&json(500 + round)).unwrap();
        carry(&mut c4, &mut s4);
        let back = s4.take_inflater().unwrap();
        assert!(s3.give_inflater(back).is_none());
        c3.send_text(&text).unwrap();
        let (events, sent) = carry(&mut c3, &mut s3);
        assert_eq!(events, [Ev::Text(text.clone())], "round {round}");
        assert!(
            sent[0].payload.len() < 100,
            "refers back to the earlier message"
        );
    }
}

#[test]
fn a_message_that_does_not_shrink_goes_out_as_it_is_without_context_takeover() {
    let lean = Agreement {
        client_no_context_takeover: true,
        ..Agreement::default()
    };
    let (mut c, mut s) = pair(lean, DeflateConfig::default());
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    c.send_binary(&noise).unwrap();
    let (events, sent) = carry(&mut c, &mut s);
    assert_eq!(events, [Ev::Binary(noise.clone())]);
    assert!(!sent[0].header.rsv1, "sent uncompressed");
    // With context takeover the compressed output is always sent.
    let (mut c, mut s) = pair(Agreement::default(), DeflateConfig::default());
    c.send_binary(&noise).unwrap();
    let (events, sent) = carry(&mut c, &mut s);
    assert_eq!(events, [Ev::Binary(noise)]);
    assert!(sent[0].header.rsv1);
}

mod handshake {
    use super::*;
    use hybi::handshake::{
        Answer, ClientHandshake, ClientRequest, Decision, ResponseError, ServerHandshake,
    };

    fn rng() -> impl FnMut(&mut [u8]) {
        |b: &mut [u8]| b.fill(3)
    }

    /// A whole handshake: the client offers under `client`, the server decides under
    /// `server` (and `decision`); returns the two connections, or the client's error.
    fn handshake(
        client: Option<DeflateConfig>,
        server: Option<DeflateConfig>,
        decision: Decision,
    ) -> Result<(Connection, Connection, Option<Agreement>), ResponseError> {
        let mut request = ClientRequest::new("h", None, false);
        if let Some(c) = client {
            request = request.deflate(c);
        }
        let mut ch = ClientHandshake::new(&request, &mut rng()).unwrap();
        let upgrade = ServerHandshake::new()
            .receive(ch.request())
            .unwrap()
            .unwrap();
        let Answer::Upgrade(accepted) = upgrade.answer_with(&decision, server.as_ref()) else {
            panic!("accepted")
        };
        let agreed = accepted.deflate().copied();
        let bytes = accepted.response().to_bytes();
        let s = accepted.into_connection(Config::default().with_deflate(server));
        let opened = ch.receive(&bytes)?.unwrap();
        assert_eq!(opened.deflate().copied(), agreed, "both sides agree");
        let c = opened.into_connection(Config::default().with_deflate(client), rng());
        Ok((c, s, agreed))
    }

    #[test]
    fn every_offer_and_policy_agree_and_compress() {
        let mut configs = Vec::new();
        for bits in [8u8, 9, 12, 15] {
            for lean in [false, true] {
                let c = DeflateConfig::default().with_max_window_bits(bits);
                configs.push(if lean {
                    c.without_context_takeover()
                } else {
                    c
                });
            }
        }
        for client in &configs {
            for server in &configs {
                let (mut c, mut s, agreed) =
                    handshake(Some(*client), Some(*server), Decision::accept()).unwrap();
                let a = agreed.expect("agreed");
                assert!(
                    a.server_max_window_bits
                        <= server
                            .server_max_window_bits
                            .min(client.server_max_window_bits)
                );
                assert!(
                    a.client_max_window_bits
                        <= server
                            .client_max_window_bits
                            .min(client.client_max_window_bits)
                );
                for _ in 0..3 {
                    let text = json(4000);
                    c.send_text(&text).unwrap();
                    let (events, sent) = carry(&mut c, &mut s);
                    assert_eq!(events, [Ev::Text(text.clone())]);
                    assert!(sent[0].header.rsv1);
                    s.send_text(&text).unwrap();
                    let (events, _) = carry(&mut s, &mut c);
                    assert_eq!(events, [Ev::Text(text)]);
                }
            }
        }
    }

    /// Found by the `deflate_negotiation` fuzz target: a client that asked for a window
    /// of 10 bits, answered by a server that does not limit the client's window (no
    /// `client_max_window_bits` in the answer, as RFC 7692 §7.1.2.2 allows), took the
    /// answer as an agreement to compress with 15 bits: its compressor then ran with a
    /// 32 KiB window (and context of that size with context takeover) against its
    /// config. It keeps to the window it asked for.
    #[test]
    fn a_client_keeps_its_window_when_the_answer_does_not_limit_it() {
        let mut client = DeflateConfig::default();
        client.client_max_window_bits = 10;
        let bare = Agreement::from_response(core::iter::once(&b"permessage-deflate"[..]), &client);
        assert_eq!(
            bare,
            Ok(Some(Agreement {
                client_max_window_bits: 10,
                ..Agreement::default()
            }))
        );
        // Through the handshake: a server's 101 without the parameter.
        let request = ClientRequest::new("h", None, false).deflate(client);
        let mut ch = ClientHandshake::new(&request, &mut rng()).unwrap();
        let upgrade = ServerHandshake::new()
            .receive(ch.request())
            .unwrap()
            .unwrap();
        let server_config = DeflateConfig::default();
        let Answer::Upgrade(accepted) =
            upgrade.answer_with(&Decision::accept(), Some(&server_config))
        else {
            panic!("accepted")
        };
        let response = String::from_utf8(accepted.response().to_bytes()).unwrap();
        assert!(
            response.contains("; client_max_window_bits=10"),
            "{response}"
        );
        let response = response.replace("; client_max_window_bits=10", "");
        let opened = ch.receive(response.as_bytes()).unwrap().unwrap();
        let agreed = *opened.deflate().expect("agreed");
        assert_eq!(agreed.client_max_window_bits, 10);
        // It compresses with that window, which the server (inflating any) reads.
        let mut c = opened.into_connection(Config::default().with_deflate(Some(client)), rng());
        let mut s = server();
        s.enable_deflate(
            Agreement {
                client_max_window_bits: 15,
                ..agreed
            },
            server_config,
        );
        for _ in 0..3 {
            let text = json(5000);
            c.send_text(&text).unwrap();
            let (events, sent) = carry(&mut c, &mut s);
            assert_eq!(events, [Ev::Text(text)]);
            assert!(sent[0].header.rsv1);
        }
    }

    #[test]
    fn a_server_without_deflate_ignores_the_offer() {
        let (mut c, mut s, agreed) =
            handshake(Some(DeflateConfig::default()), None, Decision::accept()).unwrap();
        assert_eq!(agreed, None);
        assert!(c.deflate().is_none() && s.deflate().is_none());
        c.send_text(&json(1000)).unwrap();
        let (_, sent) = carry(&mut c, &mut s);
        assert!(!sent[0].header.rsv1);
    }

    #[test]
    fn the_decision_can_decline_or_choose() {
        let offer = Some(DeflateConfig::default());
        let (_, _, agreed) = handshake(offer, offer, Decision::accept().without_deflate()).unwrap();
        assert_eq!(agreed, None);
        let chosen = Agreement {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..Agreement::default()
        };
        let (_, _, agreed) =
            handshake(offer, None, Decision::accept().with_deflate(chosen)).unwrap();
        assert_eq!(agreed, Some(chosen));
        // Parameters that answer no offer are refused with a 500, not sent.
        let request = ClientRequest::new("h", None, false).deflate(DeflateConfig::default());
        let ch = ClientHandshake::new(&request, &mut rng()).unwrap();
        let upgrade = ServerHandshake::new()
            .receive(ch.request())
            .unwrap()
            .unwrap();
        let bad = Agreement {
            server_max_window_bits: 16,
            ..Agreement::default()
        };
        assert_eq!(
            upgrade
                .answer(&Decision::accept().with_deflate(bad))
                .status(),
            500
        );
    }

    #[test]
    fn a_browser_offer_is_answered_and_malformed_offers_declined() {
        let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let upgrade = ServerHandshake::new().receive(request).unwrap().unwrap();
        let config = DeflateConfig::default();
        let Answer::Upgrade(a) = upgrade.answer_with(&Decision::accept(), Some(&config)) else {
            panic!()
        };
        assert_eq!(
            a.response().headers().get_str("sec-websocket-extensions"),
            Some("permessage-deflate")
        );
        for bad in [
            "permessage-deflate; server_max_window_bits=8; server_max_window_bits=8",
            "permessage-deflate; mystery",
            "permessage-deflate; client_max_window_bits=20",
        ] {
            let request = alloc_request(bad);
            let upgrade = ServerHandshake::new()
                .receive(request.as_bytes())
                .unwrap()
                .unwrap();
            let Answer::Upgrade(a) = upgrade.answer_with(&Decision::accept(), Some(&config)) else {
                panic!()
            };
            assert_eq!(a.deflate(), None, "declined: {bad}");
            assert!(!a.response().headers().contains("sec-websocket-extensions"));
        }
        // A later valid offer is taken when an earlier one is declined.
        let request = alloc_request(
            "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=11",
        );
        let upgrade = ServerHandshake::new()
            .receive(request.as_bytes())
            .unwrap()
            .unwrap();
        let Answer::Upgrade(a) = upgrade.answer_with(&Decision::accept(), Some(&config)) else {
            panic!()
        };
        assert_eq!(a.deflate().map(|a| a.server_max_window_bits), Some(11));
    }

    fn alloc_request(extensions: &str) -> String {
        format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
        )
    }

    #[test]
    fn a_client_refuses_an_answer_it_did_not_offer() {
        let request = ClientRequest::new("h", None, false);
        let mut ch = ClientHandshake::new(&request, &mut rng()).unwrap();
        let accept = ch.key().accept();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            accept.as_str()
        );
        assert_eq!(
            ch.receive(response.as_bytes()),
            Err(ResponseError::UnexpectedExtensions)
        );
        let request = ClientRequest::new("h", None, false).deflate(DeflateConfig::default());
        let mut ch = ClientHandshake::new(&request, &mut rng()).unwrap();
        let accept = ch.key().accept();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate; x=1\r\n\r\n",
            accept.as_str()
        );
        assert!(matches!(
            ch.receive(response.as_bytes()),
            Err(ResponseError::Extension(_))
        ));
    }
}

#[test]
fn a_large_incompressible_message_goes_out_in_frames_within_the_limits() {
    // Random bytes grow a little when compressed; 16 MiB of them must still pass a
    // peer whose frame limit is 16 MiB.
    let (mut c, mut s) = pair(Agreement::default(), DeflateConfig::default());
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..16 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    c.send_binary(&data).unwrap();
    let (events, sent) = carry(&mut c, &mut s);
    assert!(sent.len() > 16, "{} frames", sent.len());
    assert!(sent.iter().all(|f| f.payload.len() <= 1 << 20));
    assert!(sent[0].header.rsv1 && sent[1..].iter().all(|f| !f.header.rsv1));
    assert!(sent[..sent.len() - 1].iter().all(|f| !f.header.fin));
    assert_eq!(events, [Ev::Binary(data)]);
}

#[test]
fn empty_messages_and_empty_last_fragments_are_compressed_validly() {
    // zlib answers a flush right after a flush with no output; an empty end of a
    // compressed message must still be a deflate block (0x00 + the appended tail).
    for agreement in [
        Agreement::default(),
        Agreement {
            client_no_context_takeover: true,
            ..Agreement::default()
        },
    ] {
        let (mut c, mut s) = pair(agreement, DeflateConfig::default().with_threshold(0));
        for text in ["a", "", "b", "", "", "after"] {
            c.send_text(text).unwrap();
            let (events, sent) = carry(&mut c, &mut s);
            assert_eq!(events, [Ev::Text(text.into())]);
            if text.is_empty() && sent[0].header.rsv1 {
                assert!(!sent[0].payload.is_empty(), "a block, not nothing");
            }
        }
        c.send_fragment(MessageKind::Binary, b"abc", false).unwrap();
        c.send_fragment(MessageKind::Binary, b"", false).unwrap();
        c.send_fragment(MessageKind::Binary, b"", true).unwrap();
        let (events, _) = carry(&mut c, &mut s);
        assert_eq!(events, [Ev::Binary(b"abc".to_vec())]);
        c.send_text("still in step").unwrap();
        let (events, _) = carry(&mut c, &mut s);
        assert_eq!(events, [Ev::Text("still in step".into())]);
    }
}

#[test]
fn a_compressed_frame_may_exceed_the_frame_limit_up_to_the_message_limit() {
    let config = Config::default()
        .with_max_frame_size(1000)
        .with_max_message_size(4000);
    let mut s = Connection::server(config);
    s.enable_deflate(Agreement::default(), DeflateConfig::default());
    let mut c = client();
    c.enable_deflate(Agreement::default(), DeflateConfig::default());
    let mut x = 7u64;
    let noise: Vec<u8> = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    c.send_binary(&noise).unwrap();
    let (events, sent) = carry(&mut c, &mut s);
    assert!(sent[0].payload.len() > 1000);
    assert_eq!(events, [Ev::Binary(noise)]);
}

/// Pseudo-random bytes (xorshift), for incompressible payloads.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn context_takeover_refers_back_across_messages_in_every_window() {
    // Our context with takeover is the last window we compressed: messages of every
    // size (beyond the window too), fragments, short uncompressed ones in between (not
    // part of the context), each inflated by the peer that kept all of them.
    for bits in [8, 9, 10, 12, 15] {
        let agreement = Agreement {
            server_max_window_bits: bits,
            client_max_window_bits: bits,
            ..Agreement::default()
        };
        let (mut c, mut s) = pair(agreement, DeflateConfig::default());
        let mut total_wire = 0;
        let mut total_payload = 0;
        for round in 0..12u64 {
            let size = [200, 1000, 5000, 40_000, 70_000, 300][round as usize % 6];
            let text = json(size + round as usize);
            c.send_text(&text).unwrap();
            let (events, sent) = carry(&mut c, &mut s);
            assert_eq!(
                events,
                [Ev::Text(text.clone())],
                "{bits} bits, round {round}"
            );
            total_wire += sent.iter().map(|f| f.payload.len()).sum::<usize>();
            total_payload += text.len();
            // The same text again refers back to the last window.
            if text.len() <= 1 << bits {
                c.send_text(&text).unwrap();
                let (events, sent) = carry(&mut c, &mut s);
                assert_eq!(events, [Ev::Text(text.clone())]);
                let len = sent[0].payload.len();
                assert!(len < text.len() / 8, "{bits} bits: {len} of {}", text.len());
            }
            // Below the threshold: sent as it is, outside the context.
            c.send_text("short").unwrap();
            assert_eq!(carry(&mut c, &mut s).0, [Ev::Text("short".into())]);
            // Incompressible binary, compressed anyway (the context must see it).
            let bin = noise(3000, round + 7);
            c.send_binary(&bin).unwrap();
            let (events, sent) = carry(&mut c, &mut s);
            assert_eq!(events, [Ev::Binary(bin)]);
            assert!(
                sent[0].header.rsv1,
                "with context takeover every long message is compressed"
            );
            // A fragmented message: three compressed pieces, the first with RSV1.
            let parts = [json(700), json(1500), json(90)];
            c.send_fragment(MessageKind::Text, parts[0].as_bytes(), false)
                .unwrap();
            c.send_fragment(MessageKind::Text, parts[1].as_bytes(), false)
                .unwrap();
            c.send_fragment(MessageKind::Text, parts[2].as_bytes(), true)
                .unwrap();
            let (events, sent) = carry(&mut c, &mut s);
            assert_eq!(
                events,
                [Ev::Text(parts.concat())],
                "{bits} bits, round {round}"
            );
            assert_eq!(
                sent.iter().map(|f| f.header.rsv1).collect::<Vec<_>>(),
                [true, false, false]
            );
        }
        assert!(
            total_wire * 4 < total_payload,
            "{bits} bits: {total_wire} of {total_payload}"
        );
    }
}

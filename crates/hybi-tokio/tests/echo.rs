//! hybi-tokio end to end over loopback TCP: its client against its server, and each
//! against the blocking hybi-std adapter: messages of every kind and size, fragments,
//! the closing handshake both ways, rejected upgrades, the Stream and Sink, the split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hybi_tokio::{
    CloseCode, CloseInfo, Config, Decision, Delivery, Error, HandshakeError, Message, MessageKind,
    accept, accept_with, connect_async,
};
use tokio::net::TcpListener;

/// A listener on a free port and its `ws://` URL for `path`.
async fn listen(path: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}{path}", listener.local_addr().unwrap());
    (listener, url)
}

/// An echo server for one connection: data messages back as they came, until the end.
async fn echo_once(listener: TcpListener) -> Result<(), Error> {
    let (tcp, _) = listener.accept().await?;
    let mut ws = accept(tcp).await?;
    loop {
        match ws.recv().await {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).await?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test]
async fn messages_of_every_size_round_trip_and_close_cleanly() {
    let (listener, url) = listen("/echo").await;
    let server = tokio::spawn(echo_once(listener));
    let (mut ws, response) = connect_async(&url).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.protocol(), None);

    ws.send_text("héllo ✓").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::Text("héllo ✓".into()));
    let big: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i * 31 % 251) as u8).collect();
    ws.send_binary(&big).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::Binary(big));
    ws.send(Message::Text(String::new())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::Text(String::new()));
    // A message sent in three pieces arrives whole.
    ws.send_fragment(MessageKind::Text, b"one ", false)
        .await
        .unwrap();
    ws.send_fragment(MessageKind::Text, b"two ", false)
        .await
        .unwrap();
    ws.send_fragment(MessageKind::Text, b"three", true)
        .await
        .unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Text("one two three".into())
    );
    ws.ping(b"are you there").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::Pong(b"are you there".to_vec())
    );

    ws.close(CloseCode(4000), "done").await.unwrap();
    let answer = ws.recv().await.unwrap();
    assert_eq!(
        answer,
        Message::Close(CloseInfo {
            code: CloseCode(4000),
            reason: String::new()
        })
    );
    assert!(matches!(ws.recv().await, Err(Error::ConnectionClosed)));
    assert!(matches!(ws.recv().await, Err(Error::ConnectionClosed)));
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_server_closing_is_seen_with_its_code_and_reason() {
    let (listener, url) = listen("/").await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept(tcp).await.unwrap();
        ws.send_text("last words").await.unwrap();
        ws.close(CloseCode::GOING_AWAY, "shutting down")
            .await
            .unwrap();
        // The client's answer, then the end.
        let answer = ws.recv().await.unwrap();
        assert!(matches!(answer, Message::Close(ref c) if c.code == CloseCode::GOING_AWAY));
        assert!(matches!(ws.recv().await, Err(Error::ConnectionClosed)));
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::Text("last words".into()));
    let close = ws.recv().await.unwrap();
    assert_eq!(
        close,
        Message::Close(CloseInfo {
            code: CloseCode::GOING_AWAY,
            reason: "shutting down".into()
        })
    );
    assert_eq!(
        ws.peer_close(),
        Some(CloseInfo {
            code: CloseCode::GOING_AWAY,
            reason: "shutting down".into()
        })
    );
    assert!(matches!(ws.recv().await, Err(Error::ConnectionClosed)));
    server.await.unwrap();
}

#[tokio::test]
async fn a_transport_that_ends_early_is_an_abnormal_closure_once() {
    let (listener, url) = listen("/").await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = accept(tcp).await.unwrap();
        drop(ws); // no close frame: TCP just ends
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    server.await.unwrap();
    match ws.recv().await {
        Err(Error::Protocol(e)) => assert_eq!(e.close_code(), CloseCode::ABNORMAL),
        other => panic!("want an abnormal closure, got {other:?}"),
    }
    assert!(matches!(ws.recv().await, Err(Error::ConnectionClosed)));
}

#[tokio::test]
async fn a_refused_upgrade_reaches_the_client_with_its_status() {
    let (listener, url) = listen("/private").await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_with(tcp, |request| {
            assert_eq!(request.path(), "/private");
            Decision::reject(403, "members only")
        })
        .await
    });
    let err = connect_async(&url).await.unwrap_err();
    match &err {
        Error::Handshake(e) => assert_eq!(e.status(), Some(403), "{err}"),
        other => panic!("want a refused handshake, got {other:?}"),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Handshake(HandshakeError::Rejected(403)))
    ));
}

#[tokio::test]
async fn a_subprotocol_and_extra_headers_are_agreed() {
    let (listener, url) = listen("/chat").await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = accept_with(tcp, |request| {
            assert_eq!(request.protocols(), ["v2.chat", "v1.chat"]);
            Decision::accept()
                .with_protocol("v1.chat")
                .with_header("x-served-by", "hybi-tokio")
        })
        .await
        .unwrap();
        drop(ws);
    });
    let (_ws, response) = hybi_tokio::ClientBuilder::new(&url)
        .protocol("v2.chat")
        .protocol("v1.chat")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol(), Some("v1.chat"));
    assert_eq!(
        response.headers().get_str("x-served-by"),
        Some("hybi-tokio")
    );
    server.await.unwrap();
}

#[tokio::test]
async fn stream_and_sink() {
    let (listener, url) = listen("/").await;
    let server = tokio::spawn(echo_once(listener));
    let (mut ws, _) = connect_async(&url).await.unwrap();
    for i in 0..100 {
        SinkExt::feed(&mut ws, Message::Text(format!("message {i}")))
            .await
            .unwrap();
    }
    SinkExt::flush(&mut ws).await.unwrap();
    for i in 0..100 {
        let got = ws.next().await.unwrap().unwrap();
        assert_eq!(got, Message::Text(format!("message {i}")));
    }
    // poll_close sends 1000; the stream then gives the echo and ends.
    SinkExt::close(&mut ws).await.unwrap();
    let rest: Vec<_> = ws.collect().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(matches!(&rest[0], Ok(Message::Close(c)) if c.code == CloseCode::NORMAL));
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn streaming_delivery_hands_out_pieces() {
    let (listener, url) = listen("/").await;
    let config = Config::default().with_delivery(Delivery::Streaming);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = hybi_tokio::Acceptor::new()
            .config(config)
            .accept(tcp)
            .await
            .unwrap();
        let mut whole = Vec::new();
        let mut pieces = 0;
        loop {
            match ws.recv().await.unwrap() {
                Message::Fragment {
                    kind, data, fin, ..
                } => {
                    assert_eq!(kind, MessageKind::Binary);
                    whole.extend_from_slice(&data);
                    pieces += 1;
                    if fin {
                        break;
                    }
                }
                other => panic!("want fragments, got {other:?}"),
            }
        }
        (whole, pieces)
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    ws.send_binary(&data).await.unwrap();
    let (whole, pieces) = server.await.unwrap();
    assert_eq!(whole, data);
    assert!(pieces > 1, "300 kB over TCP in one piece");
}

#[tokio::test]
async fn against_the_blocking_adapter_both_ways() {
    // hybi-std's server, hybi-tokio's client.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", std_listener.local_addr().unwrap());
    let std_server = std::thread::spawn(move || {
        let (tcp, _) = std_listener.accept().unwrap();
        let mut ws = hybi_std::accept(tcp).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (hybi_std::Message::Text(_) | hybi_std::Message::Binary(_))) => {
                    ws.send(m).unwrap()
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    for size in [0usize, 1, 125, 126, 65535, 65536, 200_000] {
        let data = vec![b'x'; size];
        ws.send_binary(&data).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::Binary(data));
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Message::Close(_)));
    tokio::task::spawn_blocking(move || std_server.join().unwrap())
        .await
        .unwrap();

    // hybi-tokio's server, hybi-std's client.
    let (listener, url) = listen("/").await;
    let server = tokio::spawn(echo_once(listener));
    let client = tokio::task::spawn_blocking(move || {
        let (mut ws, _) = hybi_std::connect(&url).unwrap();
        ws.send_text("from the blocking side").unwrap();
        let echo = ws.read().unwrap();
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.read().is_ok() {}
        echo
    });
    assert_eq!(
        client.await.unwrap(),
        hybi_std::Message::Text("from the blocking side".into())
    );
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    let (listener, url) = listen("/").await;
    let server = tokio::spawn(echo_once(listener));
    let (ws, _) = connect_async(&url).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let writing = tokio::spawn(async move {
        for i in 0..1000 {
            writer.send_text(&format!("n{i}")).await.unwrap();
        }
        writer
    });
    for i in 0..1000 {
        assert_eq!(reader.recv().await.unwrap(), Message::Text(format!("n{i}")));
    }
    let mut writer = writing.await.unwrap();
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(reader.recv().await.unwrap(), Message::Close(_)));
    assert!(matches!(reader.recv().await, Err(Error::ConnectionClosed)));
    let ws = reader.reunite(writer).unwrap();
    assert_eq!(ws.state(), hybi_tokio::State::Closed);
    server.await.unwrap().unwrap();
}

/// A peer that pings through the blocking adapter and counts the pongs.
fn pinging_peer(listener: std::net::TcpListener, pings: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = hybi_std::accept(tcp).unwrap();
        let mut pongs = 0;
        for i in 0..pings {
            ws.ping(format!("p{i}").as_bytes()).unwrap();
            loop {
                if let hybi_std::Message::Pong(p) = ws.read().unwrap() {
                    assert_eq!(p, format!("p{i}").into_bytes());
                    pongs += 1;
                    break;
                }
            }
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.read().is_ok() {}
        pongs
    })
}

#[tokio::test]
async fn pings_are_answered_by_a_task_that_only_reads_the_reader_half() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let peer = pinging_peer(listener, 20);
    let (ws, _) = connect_async(&url).await.unwrap();
    let (mut reader, _writer) = ws.split();
    let mut pings = 0;
    loop {
        match reader.recv().await {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pings, 20);
    let pongs = tokio::task::spawn_blocking(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(pongs, 20);
}

#[tokio::test]
async fn pings_are_answered_by_a_task_that_only_writes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let peer = pinging_peer(listener, 5);
    let (mut ws, _) = connect_async(&url).await.unwrap();
    // Only sends, a few ms apart: each send looks at the input on its way out.
    let mut sent = 0;
    while !peer.is_finished() && sent < 2000 {
        ws.send_text("tick").await.unwrap_or(());
        tokio::time::sleep(Duration::from_millis(2)).await;
        sent += 1;
    }
    let pongs = tokio::task::spawn_blocking(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(pongs, 5);
    // What arrived meanwhile waits for the reader, in order: the pings (already
    // answered), then the peer's close frame.
    let mut pings = 0;
    loop {
        match ws.recv().await {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(Message::Close(_)) | Ok(Message::Text(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pings, 5);
}

#[tokio::test]
async fn keepalive_pings_an_idle_peer_and_a_silent_one_times_out() {
    // The server keeps alive every 50 ms and gives up 100 ms after a ping without
    // an answer. A client that reads answers, and stays; a client that never reads
    // (so never answers) is dropped with 1006-class timeout.
    let (listener, url) = listen("/").await;
    let config = Config::default()
        .with_keepalive(Some(Duration::from_millis(50)))
        .with_pong_timeout(Duration::from_millis(100));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = hybi_tokio::Acceptor::new()
            .config(config)
            .accept(tcp)
            .await
            .unwrap();
        let mut pongs = 0;
        loop {
            match ws.recv().await {
                Ok(Message::Pong(_)) => pongs += 1,
                Ok(_) => {}
                Err(e) => return (pongs, e),
            }
        }
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    let mut pings = 0;
    let reading = tokio::time::timeout(Duration::from_millis(400), async {
        loop {
            if let Ok(Message::Ping(_)) = ws.recv().await {
                pings += 1;
            }
        }
    });
    let _ = reading.await;
    assert!(pings >= 3, "{pings} keepalive pings in 400 ms at 50 ms");
    // Now stop reading: the server's pong timeout ends it.
    let (pongs, error) = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(pongs >= 3, "{pongs} pongs");
    assert!(
        matches!(error, Error::Protocol(hybi::Error::PongTimeout)),
        "{error:?}"
    );
}

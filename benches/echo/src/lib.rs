//! Echo benchmarks over loopback: the servers and clients that `benches/run-echo.sh`
//! runs beside hybi's own echo servers.
//!
//! Binaries (each takes the listen or server address as its first argument):
//!
//! - `echo-raw`: the ceiling. Answers the WebSocket handshake (with
//!   `hybi::handshake`), then returns every byte as it came, on one mio thread. The
//!   load generator reads our own masked frames back (`hybi load --accept-masked`).
//! - `echo-tungstenite`: tungstenite, a blocking thread per connection.
//! - `echo-tokio-tungstenite`: tokio-tungstenite on a `current_thread` tokio runtime.
//! - `echo-tokio-tungstenite-tls`: the same over tokio-rustls (wss), with
//!   `--tls-cert FILE --tls-key FILE`.
//! - `echo-yawc`: yawc (hyper upgrade) with permessage-deflate on, at level 1 with
//!   context takeover (hybi's `DeflateConfig::default()`), on a `current_thread`
//!   tokio runtime.
//! - `echo-fastwebsockets`: fastwebsockets (hyper upgrade, `FragmentCollector`) on a
//!   `current_thread` tokio runtime.
//! - `handshakes`: opens and closes WebSocket connections as fast as it can and
//!   reports handshakes per second (over TLS with `--tls` or a `wss://` URL).
//! - `idle-clients`: opens N connections and holds them idle, for memory per
//!   connection (over TLS likewise).
//!
//! The TLS clients do not verify the server's certificate ([`tls::insecure_client`]):
//! they measure servers on this machine with a certificate made for the run.

use std::net::SocketAddr;

pub mod tls;

/// The listen address from the first argument (default `127.0.0.1:9002`).
pub fn listen_addr() -> SocketAddr {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bad address {arg:?}: {e}");
            std::process::exit(2);
        }
    }
}

/// A blocking listener on `addr` with a backlog of 4,096, as hybi's servers (and
/// mio's and tokio's `bind`, 1,024) have.
pub fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Serves `addr` on a `current_thread` tokio runtime (one core, like the other
/// servers): every accepted connection (TCP_NODELAY on) goes to `serve` on a task of
/// its own.
pub fn serve_tokio<F, Fut>(name: &str, addr: SocketAddr, serve: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    serve_tokio_on(name, addr, false, serve)
}

/// [`serve_tokio`] on a runtime with tokio's timer driver too, for a peer whose
/// streams arm timers by default (sockudo-ws: its heartbeat); the others run
/// without it.
pub fn serve_tokio_timed<F, Fut>(name: &str, addr: SocketAddr, serve: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    serve_tokio_on(name, addr, true, serve)
}

fn serve_tokio_on<F, Fut>(name: &str, addr: SocketAddr, time: bool, serve: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_io();
    if time {
        builder.enable_time();
    }
    let runtime = builder.build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("{name} echo on {addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    })
}

/// Where a client connects: the server's address, the request path, and whether the
/// connection is TLS (wss).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// The request path, if the first argument was a URL.
    pub path: Option<String>,
    /// TLS: the URL was `wss://`, or `--tls` was given.
    pub tls: bool,
}

/// Reads a client's arguments: the first positional one is `ADDR`, `ws://ADDR/PATH`
/// or `wss://ADDR/PATH`; `--tls` anywhere means TLS. Returns the target and the
/// other arguments (flags other than `--tls` included), or `None` if the first is
/// neither an address nor such a URL.
pub fn parse_target(args: &[String]) -> Option<(Target, Vec<String>)> {
    let mut tls = args.iter().any(|a| a == "--tls");
    let mut rest: Vec<String> = args.iter().filter(|a| *a != "--tls").cloned().collect();
    if rest.is_empty() {
        return None;
    }
    let first = rest.remove(0);
    let (authority, path) = if let Some(url) = first.strip_prefix("wss://") {
        tls = true;
        split_url(url)
    } else if let Some(url) = first.strip_prefix("ws://") {
        split_url(url)
    } else {
        (first.as_str(), None)
    };
    let addr = authority.parse().ok()?;
    Some((Target { addr, path, tls }, rest))
}

fn split_url(url: &str) -> (&str, Option<String>) {
    match url.find('/') {
        Some(i) => (&url[..i], Some(url[i..].to_owned())),
        None => (url, Some("/".to_owned())),
    }
}

/// A client's upgrade request with a fixed key (the servers do not care which key
/// they get), and the `Sec-WebSocket-Accept` value that must come back.
pub fn upgrade_request(host: &str, path: &str) -> (Vec<u8>, String) {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let accept = hybi::handshake::accept_key(key.as_bytes());
    (request.into_bytes(), accept.as_str().to_owned())
}

/// A masked client close frame with code 1000 (normal closure).
pub const CLOSE_FRAME: [u8; 8] = {
    let key = [0x12, 0x34, 0x56, 0x78];
    let code = 1000u16.to_be_bytes();
    [
        0x88,
        0x82,
        key[0],
        key[1],
        key[2],
        key[3],
        code[0] ^ key[0],
        code[1] ^ key[1],
    ]
};

/// The length of the HTTP head at the start of `buf` (through the blank line), if
/// it is all there.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a 101 response head against the expected accept key.
pub fn check_101(head: &[u8], accept: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    if !text.starts_with("HTTP/1.1 101") {
        return Err(format!(
            "not a 101: {:?}",
            text.lines().next().unwrap_or("")
        ));
    }
    let ok = text.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == accept
        })
    });
    if ok {
        Ok(())
    } else {
        Err("wrong or missing Sec-WebSocket-Accept".into())
    }
}

/// Where the next WebSocket frame in `buf` ends: `Some((opcode, total_len))` when its
/// whole header is in `buf` (the payload may not be), else `None`.
pub fn frame_extent(buf: &[u8]) -> Option<(u8, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let masked = b1 & 0x80 != 0;
    let (len, ext) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 2),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 8)
        }
        n => (n as usize, 0),
    };
    let header = 2 + ext + if masked { 4 } else { 0 };
    Some((b0 & 0x0f, header + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_extent_reads_all_length_forms() {
        assert_eq!(frame_extent(&CLOSE_FRAME), Some((8, 8)));
        assert_eq!(frame_extent(&[0x82, 0x7e, 0x01, 0x00]), Some((2, 4 + 256)));
        let mut long = vec![0x82, 0xff];
        long.extend_from_slice(&65536u64.to_be_bytes());
        assert_eq!(frame_extent(&long), Some((2, 14 + 65536)));
        assert_eq!(frame_extent(&[0x82]), None);
        assert_eq!(frame_extent(&[0x82, 0x7e, 0x01]), None);
    }

    #[test]
    fn targets_from_addresses_and_urls() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let addr: SocketAddr = "127.0.0.1:9001".parse().unwrap_or_else(|_| unreachable!());
        let Some((t, rest)) = parse_target(&args(&["127.0.0.1:9001", "/echo", "2"])) else {
            panic!("an address")
        };
        assert_eq!((t.addr, t.path, t.tls), (addr, None, false));
        assert_eq!(rest, args(&["/echo", "2"]));
        let Some((t, rest)) = parse_target(&args(&["wss://127.0.0.1:9001/echo", "2"])) else {
            panic!("a wss URL")
        };
        assert_eq!(
            (t.addr, t.path.as_deref(), t.tls),
            (addr, Some("/echo"), true)
        );
        assert_eq!(rest, args(&["2"]));
        let Some((t, _)) = parse_target(&args(&["--tls", "ws://127.0.0.1:9001"])) else {
            panic!("a ws URL and --tls")
        };
        assert_eq!((t.path.as_deref(), t.tls), (Some("/"), true));
        assert!(parse_target(&args(&["localhost:9001"])).is_none());
    }

    #[test]
    fn the_request_is_accepted_by_hybi() {
        let (request, accept) = upgrade_request("127.0.0.1:1", "/echo");
        let Ok(Some(req)) = hybi::handshake::ServerHandshake::new().receive(&request) else {
            panic!("a whole, valid request")
        };
        let Ok(accepted) = req.accept(None, &[]) else {
            panic!("accepted")
        };
        let response = accepted.response().to_bytes();
        let Some(len) = head_len(&response) else {
            panic!("a whole head")
        };
        let head = &response[..len];
        assert_eq!(check_101(head, &accept), Ok(()));
    }
}

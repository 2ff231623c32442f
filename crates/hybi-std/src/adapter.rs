//! What every adapter that drives hybi over std sockets needs, written once: this
//! crate, `hybi-mio` and `hybi-tokio` use it. Mask keys from an OS-seeded generator,
//! a `ws://`/`wss://` URL turned into a handshake request, a listening socket with a
//! deep backlog, a route table that makes the upgrade decision, and the accept loop's
//! back-off ([`AcceptBackoff`](crate::AcceptBackoff)).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use hybi::RandomSource;
use hybi::handshake::{ClientRequest, Decision, Limits, UpgradeRequest};
use rand::{RngCore, SeedableRng};
use socket2::{Domain, Protocol, Socket, Type};

/// A random source for mask and handshake keys: ChaCha12, seeded from the OS, one
/// per connection (RFC 6455 §10.3 asks for unpredictable mask keys).
pub fn mask_rng() -> impl RandomSource + 'static {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    move |buf: &mut [u8]| rng.fill_bytes(buf)
}

/// What a plain HTTP client on a TLS port is answered before it is dropped (every
/// adapter's TLS server says the same).
pub const NOT_TLS_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 42\r\nConnection: close\r\n\r\nThis port speaks TLS: connect with wss://\n";

/// Whether the first byte a client sent on a TLS port starts plain HTTP: a method's
/// capital letter, where a TLS record starts with a content type from 20 to 24.
pub fn looks_like_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// A URL that is not a WebSocket URL (`ws://` or `wss://`, a host, no fragment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidUrl(pub String);

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidUrl {}

/// The parts of a `ws://` or `wss://` URL a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host, as the `Host` header and the TLS server name take it (an IPv6
    /// address without brackets).
    pub host: String,
    /// The port (default 80 for `ws`, 443 for `wss`).
    pub port: u16,
    /// `wss://`: the connection runs over TLS.
    pub secure: bool,
    /// The path and query, at least `/`.
    pub path: String,
}

impl Target {
    /// Parses `url` (with the `url` crate).
    pub fn parse(url: &str) -> Result<Target, InvalidUrl> {
        let bad = |why: &dyn fmt::Display| InvalidUrl(format!("{url}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let secure = match parsed.scheme() {
            "ws" => false,
            "wss" => true,
            other => return Err(bad(&format_args!("scheme {other:?} is not ws or wss"))),
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad(&"no host")),
        };
        if parsed.fragment().is_some() {
            return Err(bad(&"a WebSocket URL has no #fragment"));
        }
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        let mut path = parsed.path().to_owned();
        if let Some(query) = parsed.query() {
            path.push('?');
            path.push_str(query);
        }
        Ok(Target {
            host,
            port,
            secure,
            path,
        })
    }

    /// The handshake request for this target, offering `protocols` (in order of
    /// preference) with extra `headers`.
    pub fn request(
        &self,
        protocols: &[String],
        headers: &[(String, String)],
        limits: Limits,
    ) -> ClientRequest {
        let mut request = ClientRequest::new(&self.host, Some(self.port), self.secure)
            .path(&self.path)
            .limits(limits);
        for p in protocols {
            request = request.protocol(p);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    }

    /// The addresses the host resolves to (an error if none).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", self.host),
            ));
        }
        Ok(addrs)
    }
}

/// The listen backlog [`listen`] asks for (the kernel caps it at
/// `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Binds a listening socket on the first of `addr`'s addresses that binds, with a
/// backlog of [`BACKLOG`] so that a burst of connections arriving faster than the
/// accept loop takes them waits in the kernel instead of being dropped and retried
/// seconds later (`std::net::TcpListener::bind` asks for 128). An address another
/// socket listens on fails with `AddrInUse`.
pub fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")))
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // What std does before binding a listener on Unix: a restarted server can bind
    // while connections of its previous run linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The hook a server runs on every upgrade request to a known route.
pub type UpgradeHook = dyn Fn(&UpgradeRequest) -> Decision + Send + Sync;

/// Routes by exact path (without the query) to a value `F` (a handler factory), with
/// an optional fallback for every other path and an optional hook that may reject an
/// upgrade or accept it with a subprotocol and headers.
pub struct Routes<F> {
    paths: HashMap<String, F>,
    fallback: Option<F>,
    hook: Option<Box<UpgradeHook>>,
}

impl<F> Default for Routes<F> {
    fn default() -> Routes<F> {
        Routes {
            paths: HashMap::new(),
            fallback: None,
            hook: None,
        }
    }
}

impl<F> fmt::Debug for Routes<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("paths", &self.paths.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl<F> Routes<F> {
    /// Routes `path` to `value` (replacing an earlier route of that path).
    pub fn insert(&mut self, path: &str, value: F) {
        self.paths.insert(path.to_owned(), value);
    }

    /// What every path without a route of its own goes to.
    pub fn set_fallback(&mut self, value: F) {
        self.fallback = Some(value);
    }

    /// The hook that decides upgrades to known routes.
    pub fn set_hook(&mut self, hook: Box<UpgradeHook>) {
        self.hook = Some(hook);
    }

    /// What `path` goes to, if anything.
    pub fn get(&self, path: &str) -> Option<&F> {
        self.paths.get(path).or(self.fallback.as_ref())
    }

    /// True if `path` has a route (its own or the fallback).
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The decision for `request`: 404 without a route, else the hook's (accept if
    /// there is none), with the route's value when the decision is to accept.
    pub fn decide(&self, request: &UpgradeRequest) -> (Decision, Option<&F>) {
        let Some(route) = self.get(request.path()) else {
            return (Decision::reject(404, "no WebSocket here"), None);
        };
        let decision = match &self.hook {
            Some(hook) => hook(request),
            None => Decision::accept(),
        };
        let accepted = matches!(decision, Decision::Accept { .. });
        (decision, accepted.then_some(route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain-HTTP refusal's `Content-Length` is its body's length (a client
    /// reading by it gets the whole body, and nothing waits for one byte more).
    #[test]
    fn the_not_tls_answer_declares_its_body_length() {
        let text = std::str::from_utf8(NOT_TLS_ANSWER).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
        let declared = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.parse::<usize>().ok());
        assert_eq!(declared, Some(body.len()));
        assert!(looks_like_http(b'G') && !looks_like_http(0x16));
    }
}

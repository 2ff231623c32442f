//! What every adapter that drives hybi over std sockets needs, written once: this
//! crate, `hybi-mio` and `hybi-tokio` use it. Mask keys from an OS-seeded generator,
//! a `ws://`/`wss://` URL turned into a handshake request, a listening socket with a
//! deep backlog, a route table that makes the upgrade decision, and the accept loop's
//! back-off ([`AcceptBackoff`](crate::AcceptBackoff)).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

use hybi::RandomSource;
use hybi::handshake::{ClientRequest, Decision, HttpRequest, Limits, Response, UpgradeRequest};
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
/// an optional fallback for every other path, an optional hook per path and an
/// optional global hook, which may reject an upgrade or accept it with a subprotocol
/// and headers. Both server adapters' builders fill one of these, so `route`,
/// `fallback`, `should_upgrade` and `should_upgrade_at` mean the same in each.
pub struct Routes<F> {
    paths: HashMap<String, F>,
    fallback: Option<F>,
    hook: Option<Box<UpgradeHook>>,
    hooks_at: HashMap<String, Box<UpgradeHook>>,
}

impl<F> Default for Routes<F> {
    fn default() -> Routes<F> {
        Routes {
            paths: HashMap::new(),
            fallback: None,
            hook: None,
            hooks_at: HashMap::new(),
        }
    }
}

impl<F> fmt::Debug for Routes<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("paths", &self.paths.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .field("hook", &self.hook.is_some())
            .field("hooks_at", &self.hooks_at.keys().collect::<Vec<_>>())
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

    /// The hook that decides upgrades to every known route (after the path's own
    /// hook, if it has one).
    pub fn set_hook(&mut self, hook: Box<UpgradeHook>) {
        self.hook = Some(hook);
    }

    /// A hook for upgrades to `path` alone (replacing an earlier one of that path),
    /// run before the global hook. `path` needs no route: a hook alone can reject
    /// requests to a path (say `/admin` with 403) that would otherwise reach the
    /// fallback or get 404. See [`decide`](Self::decide).
    pub fn set_hook_at(&mut self, path: &str, hook: Box<UpgradeHook>) {
        self.hooks_at.insert(path.to_owned(), hook);
    }

    /// What `path` goes to, if anything.
    pub fn get(&self, path: &str) -> Option<&F> {
        self.paths.get(path).or(self.fallback.as_ref())
    }

    /// True if `path` has a route (its own or the fallback).
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The decision for `request`, with the route's value when it is to accept:
    ///
    /// 1. The path's own hook ([`set_hook_at`](Self::set_hook_at)), if it has one: a
    ///    rejection is the answer.
    /// 2. Without a route (its own or the fallback): 404.
    /// 3. The global hook ([`set_hook`](Self::set_hook)), if any: a rejection is the
    ///    answer.
    /// 4. Accept: with the path hook's subprotocol and headers if it has a hook, else
    ///    with the global hook's (plain accept if neither).
    ///
    /// So a path with a hook and no route can only reject: when its hook accepts, the
    /// request goes on to the fallback if there is one, and is answered 404 if not.
    pub fn decide(&self, request: &UpgradeRequest) -> (Decision, Option<&F>) {
        let own = self.hooks_at.get(request.path()).map(|hook| hook(request));
        if let Some(rejection @ Decision::Reject { .. }) = own {
            return (rejection, None);
        }
        let Some(route) = self.get(request.path()) else {
            return (Decision::reject(404, "no WebSocket here"), None);
        };
        let global = match &self.hook {
            Some(hook) => hook(request),
            None => Decision::accept(),
        };
        let decision = match (own, global) {
            (_, rejection @ Decision::Reject { .. }) => rejection,
            (Some(accept), _) => accept,
            (None, accept) => accept,
        };
        let accepted = matches!(decision, Decision::Accept { .. });
        (decision, accepted.then_some(route))
    }
}

/// Plain HTTP pages a WebSocket server serves beside its routes (the page of a
/// browser client, say): path → content type and body. Both server adapters answer
/// requests that are not upgrades with [`answer`](Self::answer), then close the
/// connection.
#[derive(Clone, Default)]
pub struct Pages {
    pages: HashMap<String, (String, Arc<[u8]>)>,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("paths", &self.pages.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The answer when even an error answer cannot be built.
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

impl Pages {
    /// Serves `body` as `content_type` at `path` (replacing an earlier page there).
    pub fn insert(&mut self, path: &str, content_type: &str, body: Arc<[u8]>) {
        self.pages
            .insert(path.to_owned(), (content_type.to_owned(), body));
    }

    /// True if no page is served.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The whole HTTP answer to a plain request, with `Connection: close`: the page
    /// for `GET` (its head alone for `HEAD`), 405 for another method on a page, 426
    /// on a path that serves WebSockets (`websocket_at`), else 404.
    pub fn answer(&self, request: &HttpRequest, websocket_at: bool) -> Vec<u8> {
        let page = self.pages.get(request.path());
        let response = match (request.method(), page) {
            ("GET" | "HEAD", Some((content_type, body))) => {
                let body: &[u8] = if request.method() == "HEAD" {
                    &[]
                } else {
                    body
                };
                Response::reject(200, &[("Content-Type", content_type.as_str())], body)
            }
            (_, Some(_)) => Response::reject(405, &[("Allow", "GET, HEAD")], b""),
            (_, None) if websocket_at => Response::reject(
                426,
                &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
                b"this is a WebSocket endpoint\n",
            ),
            (_, None) => Response::reject(404, &[("Content-Type", "text/plain")], b"not found\n"),
        };
        response.map_or_else(|_| NOT_FOUND.to_vec(), |r| r.to_bytes())
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

    fn request(path: &str, protocol: Option<&str>) -> UpgradeRequest {
        let mut headers = vec![
            ("host", "example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ];
        if let Some(p) = protocol {
            headers.push(("sec-websocket-protocol", p));
        }
        let parsed = UpgradeRequest::from_parts("GET", path, headers);
        parsed.unwrap_or_else(|e| panic!("{e}"))
    }

    fn status(decision: &Decision) -> u16 {
        match decision {
            Decision::Accept { .. } => 101,
            Decision::Reject { status, .. } => *status,
        }
    }

    fn protocol(decision: &Decision) -> Option<&str> {
        match decision {
            Decision::Accept { protocol, .. } => protocol.as_deref(),
            Decision::Reject { .. } => None,
        }
    }

    /// The path's hook decides first, the global hook may still reject, and a path
    /// with a hook but no route can only reject (404 when its hook accepts, the
    /// fallback's route once there is one).
    #[test]
    fn a_path_hook_runs_before_the_global_hook_and_alone_can_only_reject() {
        let mut routes: Routes<&str> = Routes::default();
        routes.insert("/chat", "chat");
        routes.set_hook_at(
            "/chat",
            Box::new(|_| Decision::accept().with_protocol("v1")),
        );
        routes.set_hook_at("/deny", Box::new(|_| Decision::reject(403, "no")));
        routes.set_hook_at("/open", Box::new(|_| Decision::accept()));
        routes.set_hook(Box::new(|req| match req.protocols().first() {
            Some(p) if p == "banned" => Decision::reject(401, "banned"),
            _ => Decision::accept().with_protocol("global"),
        }));

        let (d, route) = routes.decide(&request("/chat", Some("v1")));
        assert_eq!(
            (status(&d), protocol(&d), route),
            (101, Some("v1"), Some(&"chat"))
        );
        let (d, route) = routes.decide(&request("/chat", Some("banned")));
        assert_eq!(
            (status(&d), route),
            (401, None),
            "the global hook still rejects"
        );
        let (d, route) = routes.decide(&request("/deny", None));
        assert_eq!((status(&d), route), (403, None));
        let (d, route) = routes.decide(&request("/open", None));
        assert_eq!(
            (status(&d), route),
            (404, None),
            "a hook alone serves nothing"
        );

        routes.set_fallback("fallback");
        let (d, route) = routes.decide(&request("/open", None));
        assert_eq!((status(&d), route), (101, Some(&"fallback")));
        assert_eq!(protocol(&d), None, "the path hook's accept is used");
        let (d, route) = routes.decide(&request("/deny", None));
        assert_eq!(
            (status(&d), route),
            (403, None),
            "the fallback does not override it"
        );
        let (d, route) = routes.decide(&request("/other", None));
        assert_eq!((status(&d), protocol(&d)), (101, Some("global")));
        assert_eq!(route, Some(&"fallback"));
    }
}

//! What an idle wss:// connection costs on the event loop: 200 connections between a
//! TLS server loop and a client loop, each after its handshake and a few small echoes,
//! measured with a counting allocator per end (the server's worker thread, and the
//! client's worker with the thread that starts the connections: the client's TLS
//! session is made there). A test binary of its own: it installs a global allocator.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use hybi_mio::rustls::crypto::ring;
use hybi_mio::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use hybi_mio::rustls::{ClientConfig, RootCertStore, ServerConfig};
use hybi_mio::{ClientOptions, Context, Handler, Server};

// Which end a thread's allocations count for: 0 none, 1 server, 2 client.
thread_local! {
    static END: Cell<usize> = const { Cell::new(0) };
}
static LIVE: [AtomicIsize; 3] = [
    AtomicIsize::new(0),
    AtomicIsize::new(0),
    AtomicIsize::new(0),
];

fn end() -> usize {
    END.try_with(Cell::get).unwrap_or(0)
}

struct Counting;

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[end()].fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[end()].fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Echo;
impl Handler for Echo {
    fn on_open(&mut self, _: &mut Context<'_>) {
        END.with(|e| e.set(1));
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, text: &str) {
        let _ = ctx.send_text(text);
    }
}

/// Sends three small texts one after the other, then stays open and idle.
struct Idle {
    tx: mpsc::Sender<()>,
    echoes: usize,
}
impl Handler for Idle {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        END.with(|e| e.set(2));
        let _ = ctx.send_text("hello, idle soon");
    }
    fn on_text(&mut self, ctx: &mut Context<'_>, _: &str) {
        self.echoes += 1;
        if self.echoes < 3 {
            let _ = ctx.send_text("a small echo");
        } else {
            let _ = self.tx.send(());
        }
    }
}

fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let provider = || Arc::new(ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn an_idle_wss_connection_costs_at_most_40_kib_per_end() {
    const N: usize = 200;
    const BOUND: isize = 40 << 10;
    let (server_config, client_config) = configs();
    let server = Server::builder()
        .workers(1)
        .tls(server_config)
        .route("/echo", |_| Echo)
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("wss://localhost:{}/echo", server.local_addr().port());
    let clients = Server::builder().workers(1).start().unwrap();
    let (tx, rx) = mpsc::channel();
    let connect = |tx: &mpsc::Sender<()>| {
        let options = ClientOptions::new(&url).tls_config(Arc::clone(&client_config));
        let idle = Idle {
            tx: tx.clone(),
            echoes: 0,
        };
        clients.connect_with(options, idle).unwrap();
    };
    // Warm both loops (pools, first allocations, the ends' thread tags).
    connect(&tx);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    END.with(|e| e.set(2));
    let before = [1, 2].map(|i| LIVE[i].load(Ordering::SeqCst));
    for _ in 0..N {
        connect(&tx);
    }
    for _ in 0..N {
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = [1, 2].map(|i| LIVE[i].load(Ordering::SeqCst));
    END.with(|e| e.set(0));
    let per_conn = [0, 1].map(|i| (after[i] - before[i]) / N as isize);
    println!(
        "idle wss connection: server {} B, client {} B",
        per_conn[0], per_conn[1]
    );
    assert!(per_conn[0] > 1000, "nothing counted: {per_conn:?}");
    assert!(per_conn[0] <= BOUND, "server end: {} B", per_conn[0]);
    assert!(per_conn[1] <= BOUND, "client end: {} B", per_conn[1]);
    clients.shutdown(Duration::from_millis(200));
    server.shutdown(Duration::from_millis(200));
}

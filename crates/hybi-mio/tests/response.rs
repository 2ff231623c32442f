//! A client connection's `on_open` sees the server's handshake response: status,
//! header fields, the subprotocol it chose; a server's connection sees none.

use std::sync::mpsc;
use std::time::Duration;

use hybi_mio::{ClientOptions, CloseCode, Context, Decision, Handler, Server};

/// What `on_open` saw of the response: status, subprotocol, one header's value.
type Seen = Option<(u16, Option<String>, Option<String>)>;

struct Probe(mpsc::Sender<Seen>);

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let seen = ctx.response().map(|r| {
            let header = r.header("x-greeting").map(str::to_owned);
            (r.status(), r.subprotocol().map(str::to_owned), header)
        });
        let _ = self.0.send(seen);
        let _ = ctx.close(CloseCode::NORMAL, "");
    }
}

#[test]
fn a_client_sees_the_handshake_response_in_on_open_and_a_server_does_not() {
    let (server_tx, server_rx) = mpsc::channel();
    let server = Server::builder()
        .workers(1)
        .should_upgrade(|_| {
            Decision::accept()
                .with_protocol("v2")
                .with_header("X-Greeting", "hello")
        })
        .route("/", move |_| Probe(server_tx.clone()))
        .bind("127.0.0.1:0")
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let (client_tx, client_rx) = mpsc::channel();
    let options = ClientOptions::new(&url).protocol("v1").protocol("v2");
    let _client = hybi_mio::connect_with(options, Probe(client_tx)).unwrap();

    let seen = client_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(seen, Some((101, Some("v2".into()), Some("hello".into()))));
    let seen = server_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        seen, None,
        "a server's connection has no handshake response"
    );
}

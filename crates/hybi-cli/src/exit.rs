//! Exit codes: what each means, in one place (also printed by `--help`).

use std::process::ExitCode;

/// The text `--help` shows after the options.
pub(crate) const HELP: &str = "\
Exit status:
    0  success (connect: the connection closed normally, 1000 or 1001)
    1  the connection ended abnormally (another close code, a protocol error, a drop)
    2  usage error (bad arguments, bad URL, bad header, a missing or bad PEM file)
    3  network error (name did not resolve, connection refused, cannot listen, the
       TLS handshake failed: a certificate not trusted or not for the host; connect:
       no answer in time, see --connect-timeout)
    4  the server refused the upgrade (HTTP status printed)
    5  load: connections failed or echoes were wrong
    6  connect: stdin could not be read, or a line was not UTF-8 in text mode (the
       lines before it were sent; the connection was closed with 1000 first)
  130  connect: interrupted by Ctrl-C (or SIGTERM, SIGHUP); the connection was closed
       with 1001 first, waiting up to 2 s for the server's answer";

/// Why the command stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Abnormal = 1,
    Usage = 2,
    Network = 3,
    Refused = 4,
    LoadFailed = 5,
    BadInput = 6,
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Maps a client error to a message a person can act on and an exit status.
pub(crate) fn client_error(url: &str, e: &hybi_std::Error) -> (String, Exit) {
    use hybi::handshake::ResponseError;
    use hybi_std::{Error, HandshakeError};
    match e {
        Error::Url(why) => (format!("bad URL: {why}"), Exit::Usage),
        Error::Dns(err) => (
            format!("cannot resolve the host of {url}: {err}"),
            Exit::Network,
        ),
        Error::Connect(err) => (format!("cannot connect to {url}: {err}"), Exit::Network),
        Error::Tls(err) => (
            format!("TLS handshake with {url} failed: {err}"),
            Exit::Network,
        ),
        Error::Handshake(HandshakeError::Response(ResponseError::Rejected(r))) => {
            let body = String::from_utf8_lossy(r.body());
            let body = body.trim();
            let detail = if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            };
            (
                format!(
                    "the server refused the upgrade: {} {}{detail}",
                    r.status(),
                    r.reason()
                ),
                Exit::Refused,
            )
        }
        Error::Handshake(HandshakeError::Timeout) => (
            format!("no answer to the handshake from {url} in time"),
            Exit::Network,
        ),
        Error::Handshake(HandshakeError::InvalidRequest(err)) => {
            (format!("bad request: {err}"), Exit::Usage)
        }
        Error::Handshake(err) => (format!("handshake with {url} failed: {err}"), Exit::Refused),
        other => (format!("{url}: {other}"), Exit::Abnormal),
    }
}

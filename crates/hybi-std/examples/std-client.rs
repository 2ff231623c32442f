//! Interactive client: each line of stdin is sent as a text message; every message
//! received is printed.
//!
//! Usage: `cargo run -p hybi-std --example std-client [URL]` (default ws://127.0.0.1:9002/).

use std::io::BufRead;

use hybi_std::{CloseCode, Error, Message};

fn main() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002/".into());
    let (ws, response) = hybi_std::connect(&url)?;
    eprintln!("connected to {url} (subprotocol {:?})", response.protocol());
    let (mut reader, writer) = ws.split()?;
    let printer = std::thread::spawn(move || {
        loop {
            match reader.read() {
                Ok(Message::Text(t)) => println!("{t}"),
                Ok(Message::Binary(b)) => println!("<{} bytes>", b.len()),
                Ok(Message::Close(c)) => eprintln!("closed by server: {} {}", c.code, c.reason),
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return,
                Err(e) => {
                    eprintln!("error: {e}");
                    return;
                }
            }
        }
    });
    for line in std::io::stdin().lock().lines() {
        writer.send_text(&line?)?;
    }
    writer.close(CloseCode::NORMAL, "stdin closed")?;
    let _ = printer.join();
    Ok(())
}

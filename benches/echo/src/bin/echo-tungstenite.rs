//! tungstenite echo server: a blocking thread per connection, `read()` then `send()`
//! (write and flush) for every text and binary message, on any path. Default limits
//! (16 MiB frames, 64 MiB messages). The listener gets the backlog hybi's servers
//! ask for (4,096; std's `bind` asks for 128, which drops a burst of 1,000 connects
//! into SYN retransmissions).
//!
//! Usage: `echo-tungstenite [ADDR]` (default 127.0.0.1:9002).

use hybi_echo_bench::{listen, listen_addr};

fn main() -> std::io::Result<()> {
    let addr = listen_addr();
    let listener = listen(addr)?;
    eprintln!("tungstenite echo on {addr}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || {
            let Ok(mut ws) = tungstenite::accept(stream) else {
                return;
            };
            loop {
                match ws.read() {
                    Ok(msg) if msg.is_text() || msg.is_binary() => {
                        if ws.send(msg).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    }
    Ok(())
}

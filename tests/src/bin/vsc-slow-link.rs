//! A slow link for tests: a TCP relay that holds every chunk it forwards for a while, so that a
//! card side connected through it answers each APDU late (a slow real card, or a congested
//! network). A test makes a card take seconds instead of milliseconds, to act on the station
//! while it is in the middle of that card.
//!
//!   vsc-slow-link LISTEN TARGET DELAY_MS   e.g. 127.0.0.1:45963 127.0.0.1:35963 20
//!
//! Each connection accepted at LISTEN is relayed to a new connection to TARGET, both ways.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, target, delay] = args.as_slice() else {
        eprintln!("usage: vsc-slow-link LISTEN TARGET DELAY_MS");
        std::process::exit(2);
    };
    let delay = Duration::from_millis(delay.parse().unwrap_or_else(|_| {
        eprintln!("vsc-slow-link: {delay:?} is not a number of milliseconds");
        std::process::exit(2)
    }));
    let listener = TcpListener::bind(listen)?;
    for incoming in listener.incoming() {
        let Ok(inbound) = incoming else { continue };
        let Ok(outbound) = TcpStream::connect(target) else {
            continue;
        };
        for stream in [&inbound, &outbound] {
            stream.set_nodelay(true)?;
        }
        let (a, b) = (inbound.try_clone()?, outbound.try_clone()?);
        std::thread::spawn(move || relay(inbound, outbound, delay));
        std::thread::spawn(move || relay(b, a, delay));
    }
    Ok(())
}

/// Forwards what `from` sends to `to`, each chunk `delay` late, until either side closes.
fn relay(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let mut buffer = [0; 4096];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                std::thread::sleep(delay);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

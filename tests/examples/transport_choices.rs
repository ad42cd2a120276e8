//! The measurements behind the transport's choices (docs/emulator.md): card sides answering
//! `9000`, built in different ways, driven through a private pcscd + vpcd by the same PC/SC
//! client, one slot and two slots in parallel. Wall-clock rates swing by a fifth from run to run
//! on a shared machine; the CPU time per APDU (the whole process: client and card side, from the
//! scheduler's accounting) is the steadier measure of what a card side costs.
//!
//! ```sh
//! cargo run --release -p vsc-tests --example transport_choices
//! ```
//!
//! - the emulator's way: a thread with a single-threaded runtime per slot (`serve_slots`);
//! - one multi-threaded runtime for all slots, the card called inline, through
//!   `block_in_place`, or through `spawn_blocking`;
//! - a minimal blocking card side (std::net, no runtime): the floor;
//! - the same with TCP_NODELAY only, without re-arming TCP_QUICKACK: the 40 ms trap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use vsc_emulator::vpcd::{Connection, Message};
use vsc_emulator::{Endpoint, NULL_CARD_ATR, NullCard, VirtualCard};
use vsc_tests::{CardSide, Machine, Readers, transmit, wait_for_card, wait_for_empty_reader};

const APDU: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
const TIMEOUT: Duration = Duration::from_secs(20);

/// How many times each card side is measured; the median is shown (the machine is shared, so
/// single runs are noisy).
const ROUNDS: usize = 7;

/// Starts a card side on the two vpcd slots; the returned closure stops it.
type Start = Box<dyn Fn(&[SocketAddr]) -> Box<dyn FnOnce()>>;

fn main() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let readers: Vec<String> = pcscd.readers()[..2].to_vec();
    let addrs: Vec<SocketAddr> = (0..2)
        .map(|slot| match Endpoint::vpcd_default().slot(slot).unwrap() {
            Endpoint::Connect(addr) | Endpoint::Listen(addr) => addr,
        })
        .collect();

    let mut variants: Vec<(&str, u32, usize, Start)> = vec![(
        "thread + current-thread runtime per slot (emulator)",
        3000,
        ROUNDS,
        Box::new(|addrs: &[SocketAddr]| {
            let slots = addrs
                .iter()
                .map(|addr| (Endpoint::Connect(*addr), NullCard))
                .collect();
            let side = CardSide::start(slots).unwrap();
            Box::new(move || drop(side.stop()))
        }),
    )];
    for (name, call) in [
        ("multi-thread runtime, card called inline", Call::Inline),
        (
            "multi-thread runtime, card in block_in_place",
            Call::BlockInPlace,
        ),
        (
            "multi-thread runtime, card in spawn_blocking",
            Call::SpawnBlocking,
        ),
    ] {
        variants.push((
            name,
            3000,
            ROUNDS,
            Box::new(move |addrs: &[SocketAddr]| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                for addr in addrs {
                    runtime.spawn(serve_on_shared_runtime(*addr, call));
                }
                Box::new(move || runtime.shutdown_background())
            }),
        ));
    }
    for (name, quickack, apdus, rounds) in [
        (
            "blocking std::net, NODELAY + QUICKACK after each read",
            true,
            3000,
            ROUNDS,
        ),
        ("blocking std::net, NODELAY only", false, 40, 1),
    ] {
        variants.push((
            name,
            apdus,
            rounds,
            Box::new(move |addrs: &[SocketAddr]| {
                let streams: Vec<TcpStream> = addrs
                    .iter()
                    .map(|addr| blocking_card_side(*addr, quickack))
                    .collect();
                Box::new(move || {
                    for stream in streams {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                })
            }),
        ));
    }

    // Rounds interleave the card sides, so that a busy moment of the machine hits them alike.
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); variants.len()];
    for round in 0..ROUNDS {
        for ((_, apdus, rounds, start), results) in variants.iter().zip(&mut results) {
            if round >= *rounds {
                continue;
            }
            let stop = start(&addrs);
            results.push(measure(&readers, *apdus));
            stop();
            for reader in &readers {
                wait_for_empty_reader(reader, TIMEOUT).unwrap();
            }
        }
    }

    println!(
        "{:<56} {:>18} {:>24} {:>13}",
        "card side (median of rounds)", "1 slot", "2 slots (both counted)", "CPU/APDU"
    );
    for ((name, ..), results) in variants.iter().zip(&results) {
        let one = median(results.iter().map(|(one, ..)| *one).collect());
        let two = median(results.iter().map(|(_, two, _)| *two).collect());
        let cpu = median(results.iter().map(|(.., cpu)| *cpu).collect());
        println!("{name:<56} {one:>11.0} APDU/s {two:>17.0} APDU/s {cpu:>10.1} us");
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// APDU/s on the first reader alone, then on both at once (counting both).
fn measure(readers: &[String], apdus: u32) -> (f64, f64, f64) {
    let cards: Vec<pcsc::Card> = readers
        .iter()
        .map(|reader| wait_for_card(reader, TIMEOUT).unwrap())
        .collect();
    for card in &cards {
        for _ in 0..apdus / 10 + 1 {
            assert_eq!(transmit(card, &APDU).unwrap(), [0x90, 0x00]);
        }
    }
    let cpu_before = process_cpu_ns();
    let start = Instant::now();
    for _ in 0..apdus {
        transmit(&cards[0], &APDU).unwrap();
    }
    let one = f64::from(apdus) / start.elapsed().as_secs_f64();
    let cpu = (process_cpu_ns() - cpu_before) as f64 / f64::from(apdus) / 1000.0;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for card in &cards {
            scope.spawn(move || {
                for _ in 0..apdus {
                    transmit(card, &APDU).unwrap();
                }
            });
        }
    });
    let two = f64::from(2 * apdus) / start.elapsed().as_secs_f64();
    (one, two, cpu)
}

/// CPU time of this process's live threads (client and card side alike), in ns, from the
/// scheduler's own accounting (`/proc/self/task/*/schedstat`, first field).
fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[derive(Clone, Copy)]
enum Call {
    Inline,
    BlockInPlace,
    SpawnBlocking,
}

/// One slot as a task on a shared multi-threaded runtime.
async fn serve_on_shared_runtime(addr: SocketAddr, call: Call) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut connection = Connection::new(stream).unwrap();
    let mut card = NullCard;
    let mut reply = Vec::new();
    while let Ok(Some(message)) = connection.read_message().await {
        reply.clear();
        match message {
            Message::GetAtr => reply.extend_from_slice(&NULL_CARD_ATR),
            Message::Apdu(command) => match call {
                Call::Inline => card.transmit(command, &mut reply),
                Call::BlockInPlace => {
                    tokio::task::block_in_place(|| card.transmit(command, &mut reply));
                }
                Call::SpawnBlocking => {
                    let command = command.to_vec();
                    let mut response = std::mem::take(&mut reply);
                    (card, reply) = tokio::task::spawn_blocking(move || {
                        card.transmit(&command, &mut response);
                        (card, response)
                    })
                    .await
                    .unwrap();
                }
            },
            Message::Unknown(_) => reply.extend_from_slice(&vsc_emulator::NOT_AN_APDU),
            Message::PowerOn | Message::PowerOff | Message::Reset => continue,
        }
        if connection.write_frame(&reply).await.is_err() {
            break;
        }
    }
}

/// A minimal blocking card side on a thread; returns a handle to shut its socket down.
fn blocking_card_side(addr: SocketAddr, quickack: bool) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let handle = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut body = vec![0; 65_535];
        loop {
            let mut len = [0; 2];
            if read_exact(&mut stream, &mut len, quickack).is_err() {
                return;
            }
            let len = usize::from(u16::from_be_bytes(len));
            if read_exact(&mut stream, &mut body[..len], quickack).is_err() {
                return;
            }
            let reply: &[u8] = match &body[..len] {
                [0x04] => &NULL_CARD_ATR,
                [_] => continue,
                _ => &[0x90, 0x00],
            };
            let mut frame = (reply.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(reply);
            if stream.write_all(&frame).is_err() {
                return;
            }
        }
    });
    handle
}

fn read_exact(stream: &mut TcpStream, buffer: &mut [u8], quickack: bool) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..])? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            read => filled += read,
        }
        if quickack {
            socket2::SockRef::from(&*stream).set_tcp_quickack(true)?;
        }
    }
    Ok(())
}

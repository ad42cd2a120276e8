//! A misbehaving vpcd peer on one slot of the real `vsc-emulator serve`: garbage, oversize
//! length prefixes, empty and 1-byte frames, a frame trickling in, a frame that never ends, a
//! flood, and closes in the middle of a frame. Throughout, the emulator stays alive, its memory
//! stays bounded, and a well-behaved peer on the other slot keeps getting its answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{FakeVpcd, Images, accept, hex, port_pair};
use rand::{Rng, RngCore};

/// The resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

/// The well-behaved peer: reads the holder's name again and again, counting answers and
/// keeping the longest wait.
struct GoodPeer {
    answers: Arc<AtomicUsize>,
    longest: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl GoodPeer {
    fn start(listener: TcpListener) -> GoodPeer {
        let answers = Arc::new(AtomicUsize::new(0));
        let longest = Arc::new(Mutex::new(Duration::ZERO));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answers, longest, stop) = (answers.clone(), longest.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut vpcd = accept(&listener);
                vpcd.power_on();
                assert_eq!(vpcd.apdu("00A4040C06F05653430001"), "9000");
                let name = format!("{}9000", hex::encode_upper(b"ERIKA MUSTERMANN"));
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert_eq!(vpcd.apdu("00B0810010"), name);
                    let took = started.elapsed();
                    let mut longest = longest.lock().unwrap();
                    *longest = (*longest).max(took);
                    answers.fetch_add(1, Ordering::Relaxed);
                    drop(longest);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        GoodPeer {
            answers,
            longest,
            stop,
            thread,
        }
    }

    fn answers(&self) -> usize {
        self.answers.load(Ordering::Relaxed)
    }
}

/// Reads and throws away whatever the emulator sends on `stream`, until it closes.
fn drain(stream: &TcpStream) -> std::thread::JoinHandle<usize> {
    let mut reader = stream.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    std::thread::spawn(move || {
        let mut total = 0;
        let mut buffer = [0; 65536];
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            total += n;
        }
        total
    })
}

/// Whether the emulator closes `stream` within `within`.
fn closed_by_emulator(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buffer = [0; 256];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) => return error.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn a_misbehaving_peer_does_not_hurt_the_emulator_or_the_other_slot() {
    let images = Images::new();
    let (abused, good_card) = (images.sample(1), images.sample(2));
    let (abuse_listener, good_listener, port) = port_pair();
    let mut emulator = images.serve(
        &[&abused, &good_card],
        &["--connect", &format!("127.0.0.1:{port}"), "-q"],
    );
    let pid = emulator.id();
    let good = GoodPeer::start(good_listener);
    let mut rng = rand::thread_rng();
    // The start: both slots up and serving.
    let deadline = Instant::now() + common::LIMIT;
    while good.answers() == 0 {
        assert!(Instant::now() < deadline, "the good slot never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rss_start = rss_kib(pid);
    // Sampled all along, so that a peak between phases counts too.
    let rss_max = Arc::new(AtomicU64::new(rss_start));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (rss_max, sampling) = (rss_max.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                rss_max.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut phase = |what: &str, abuse: &mut dyn FnMut(TcpStream)| {
        let before = good.answers();
        let started = Instant::now();
        let FakeVpcd(stream) = accept(&abuse_listener);
        abuse(stream);
        eprintln!("{what}: {:?}", started.elapsed());
        // The other slot was served during the abuse, and the emulator lives.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            good.answers() > before,
            "{what}: the other slot got no answer"
        );
        assert!(
            emulator.try_wait().unwrap().is_none(),
            "{what}: the emulator died"
        );
    };

    phase("garbage", &mut |mut stream| {
        let drained = drain(&stream);
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for _ in 0..64 {
            let mut junk = vec![0; 4096];
            rng.fill_bytes(&mut junk);
            if stream.write_all(&junk).is_err() {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
        // Whatever it made of the junk, it ends when the frame it waits for cannot come.
        drop(drained);
    });

    phase("oversize length prefixes", &mut |mut stream| {
        let drained = drain(&stream);
        for _ in 0..4 {
            let mut frame = vec![0xFF, 0xFF];
            frame.extend((0..0xFFFF).map(|_| rng.r#gen::<u8>()));
            stream.write_all(&frame).unwrap();
        }
        // One more announced, half sent, then the close in the middle of it.
        stream.write_all(&[0xFF, 0xFF]).unwrap();
        stream.write_all(&[0x00; 30_000]).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let received = drained.join().unwrap();
        assert!(
            received >= 4 * 4,
            "each whole frame got an answer ({received} bytes)"
        );
    });

    phase("empty and 1-byte frames", &mut |stream| {
        let mut vpcd = FakeVpcd::new(stream);
        for _ in 0..500 {
            assert_eq!(vpcd.exchange(&[]).unwrap(), [0x67, 0x00]);
            // Any byte but the four control messages.
            let byte = match rng.gen_range(0x04..=0xFFu8) {
                0x04 => 0x03,
                byte => byte,
            };
            assert_eq!(vpcd.exchange(&[byte]).unwrap(), [0x67, 0x00], "{byte:02X}");
        }
        // A power-on that is not followed by GET ATR, then an APDU: both answered, in order.
        vpcd.send_body(&[0x01]).unwrap();
        assert_eq!(vpcd.apdu("00B0810004"), "6700", "the 01 first");
        assert_eq!(
            vpcd.receive().unwrap().len(),
            2,
            "then the APDU's status word"
        );
    });

    phase("a slow frame", &mut |stream| {
        let mut vpcd = FakeVpcd::new(stream);
        vpcd.power_on();
        assert_eq!(vpcd.apdu("00A4040C06F05653430001"), "9000");
        for byte in [0x00, 0x05, 0x00, 0xB0, 0x81, 0x00, 0x04] {
            vpcd.0.write_all(&[byte]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            vpcd.receive().unwrap(),
            hex(&format!("{}9000", hex::encode(b"ERIK")))
        );
    });

    phase("a frame that never ends", &mut |mut stream| {
        stream.write_all(&[0x00, 0x20, 0x00, 0xB0]).unwrap();
        let started = Instant::now();
        assert!(closed_by_emulator(&mut stream, Duration::from_secs(10)));
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    });

    phase("a flood", &mut |mut stream| {
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut frames = Vec::new();
        for _ in 0..2_000 {
            frames.extend_from_slice(&[0x00, 0x05, 0x00, 0xB0, 0x81, 0x00, 0x10]);
        }
        // Nothing is read back for a while: the emulator's answers back up, TCP holds the
        // flood back, and its memory must not grow with it.
        // Up to 56 MB: far more than the socket buffers of both ends hold.
        let mut sent = 0;
        for _ in 0..4_000 {
            if stream.write_all(&frames).is_err() {
                break;
            }
            sent += 1;
        }
        assert!(
            sent < 4_000,
            "TCP pushed back: the emulator did not buffer the flood"
        );
        let drained = drain(&stream);
        stream.shutdown(Shutdown::Both).unwrap();
        drop(drained);
    });

    phase("closes in the middle of frames", &mut |mut stream| {
        stream.write_all(&[0x00, 0x10, 0x00, 0xA4]).unwrap();
        drop(stream);
    });

    // The abused slot serves a well-behaved peer again.
    let mut vpcd = accept(&abuse_listener);
    assert_eq!(vpcd.power_on(), vsc_core::atr::atr(0x05));
    assert_eq!(vpcd.apdu("00A4040C06F05653430001"), "9000");
    good.stop.store(true, Ordering::Relaxed);
    let longest = *good.longest.lock().unwrap();
    good.thread.join().unwrap();
    let rss_end = rss_kib(pid);
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let rss_max = rss_max.load(Ordering::Relaxed);
    common::kill(emulator);
    eprintln!(
        "RSS: {rss_start} KiB at the start, {rss_max} KiB at most, {rss_end} KiB at the end; \
         the other slot's longest wait {longest:?}"
    );
    assert!(
        longest < Duration::from_secs(1),
        "the other slot waited {longest:?}"
    );
    assert!(
        rss_max < rss_start + 16 * 1024,
        "memory grew from {rss_start} to {rss_max} KiB"
    );
}

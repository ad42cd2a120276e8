//! APDU round trips through pcscd and vpcd, measured with the `pcsc` crate: one slot, and two
//! slots in parallel, for each card side:
//!
//! - (a) `null_card`: `vsc-null-card`, the emulator's transport answering `9000` — the limit of
//!   the stack on this machine;
//! - (b) `emulator`: the emulator serving a real VSC (see `emulator_cases` below);
//! - (c) `vicc`: vsmartcard's Python emulator as Debian ships it, the peer.
//!
//! Every case sends the same realistic session, the one an application runs on the emulator: SELECT
//! DF.PUBLIC by its AID, SELECT an EF, READ BINARY of 256 bytes, VERIFY (the null card and vicc
//! answer what they answer; the emulator answers as the card does). A private pcscd is started
//! for the run. `scripts/bench` runs this and prints APDU/s and the ratios from criterion's
//! estimates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use vsc_core::crypto::MasterKey;
use vsc_core::issuer::IssuerKeyFile;
use vsc_tests::{
    Machine, Pcscd, Process, Readers, transmit, vicc_command, wait_for_card, wait_for_empty_reader,
    workspace_binary,
};

/// The session: SELECT DF.PUBLIC by AID, SELECT EF 5003 (1 KB), READ BINARY of 256 bytes,
/// VERIFY the user PIN (the sample card's).
const SESSION: [&[u8]; 4] = [
    &[
        0x00, 0xA4, 0x04, 0x0C, 0x06, 0xF0, 0x56, 0x53, 0x43, 0x00, 0x01,
    ],
    &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x03],
    &[0x00, 0xB0, 0x00, 0x00, 0x00],
    &[
        0x00, 0x20, 0x00, 0x01, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF,
    ],
];
const CARD_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let machine = Machine::lock().expect("the machine's pcscd lock");
    let pcscd = machine
        .start_pcscd(&Readers::system())
        .expect("a private pcscd");

    let null_card = {
        let binary = workspace_binary("vsc-emulator", "vsc-null-card").unwrap();
        let mut command = Command::new(binary);
        command.args(["--slots", "2"]);
        Process::spawn("vsc-null-card", &command, machine.scratch()).unwrap()
    };
    let mut group = criterion.benchmark_group("null_card");
    round_trips(&mut group, &pcscd);
    group.finish();
    stop(vec![null_card], &pcscd);

    emulator_cases(&mut criterion, &machine, &pcscd);

    let vicc: Vec<Process> = [35963, 35964]
        .into_iter()
        .map(|port| {
            let command = vicc_command(port, machine.scratch()).unwrap();
            Process::spawn("vicc", &command, machine.scratch()).unwrap()
        })
        .collect();
    let mut group = criterion.benchmark_group("vicc");
    // About 48 ms an APDU (vicc does not defeat the delayed-ACK trap): few, long samples.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    round_trips(&mut group, &pcscd);
    group.finish();
    stop(vicc, &pcscd);

    criterion.final_summary();
}

/// (b) `vsc-emulator serve` of two VSC images (the sample card) through the same pcscd; every
/// response of the session checked once first.
fn emulator_cases(criterion: &mut Criterion, machine: &Machine, pcscd: &Pcscd<'_>) {
    let folder = machine.scratch().join("bench-images");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let key_file = folder.join("issuer.key");
    let master: MasterKey = IssuerKeyFile::create_new(&key_file)
        .unwrap()
        .master_key()
        .clone();
    let images: Vec<_> = (0..2)
        .map(|n| {
            let path = folder.join(format!("card-{n}.vsc"));
            vsc_core::image::save(&path, &vsc_core::sample::card().into_state(), &master).unwrap();
            path
        })
        .collect();
    let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    command
        .arg("serve")
        .args(&images)
        .arg("--key-file")
        .arg(&key_file);
    let emulator = Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap();
    for reader in &pcscd.readers()[..2] {
        let card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
        for apdu in SESSION {
            let response = transmit(&card, apdu).unwrap();
            assert_eq!(response[response.len() - 2..], [0x90, 0x00], "{apdu:02X?}");
        }
    }
    let mut group = criterion.benchmark_group("emulator");
    round_trips(&mut group, pcscd);
    group.finish();
    stop(vec![emulator], pcscd);
}

/// Benchmarks `1_slot` (reader 0) and `2_slots_parallel` (readers 0 and 1 at once, counting the
/// APDUs of both).
fn round_trips(group: &mut BenchmarkGroup<'_, WallTime>, pcscd: &Pcscd<'_>) {
    let cards: Vec<pcsc::Card> = pcscd.readers()[..2]
        .iter()
        .map(|reader| wait_for_card(reader, CARD_TIMEOUT).unwrap())
        .collect();
    let session = |card: &pcsc::Card| {
        for apdu in SESSION {
            transmit(card, apdu).unwrap();
        }
    };

    group.throughput(Throughput::Elements(SESSION.len() as u64));
    group.bench_function("1_slot", |bencher| {
        bencher.iter(|| session(&cards[0]));
    });

    group.throughput(Throughput::Elements(2 * SESSION.len() as u64));
    group.bench_function("2_slots_parallel", |bencher| {
        bencher.iter_custom(|iterations| {
            std::thread::scope(|scope| {
                let start = Instant::now();
                for card in &cards {
                    scope.spawn(move || {
                        for _ in 0..iterations {
                            session(card);
                        }
                    });
                }
                // The scope joins both threads before it returns.
                start
            })
            .elapsed()
        });
    });
}

/// Stops a card side and waits until pcscd sees its readers empty, so the next one starts clean.
fn stop(processes: Vec<Process>, pcscd: &Pcscd<'_>) {
    for mut process in processes {
        process.stop().unwrap();
    }
    for reader in pcscd.readers() {
        wait_for_empty_reader(reader, CARD_TIMEOUT).unwrap();
    }
    // pcscd must see the readers empty in one of its own polls too, or it misses the next card.
    std::thread::sleep(Duration::from_secs(1));
}

//! APDU round trips through pcscd and vpcd, measured with the `pcsc` crate: one slot, and two
//! slots in parallel, for each card side:
//!
//! - (a) `null_card`: `vsc-null-card`, the emulator's transport answering `9000` — the limit of
//!   the stack on this machine;
//! - (b) `emulator`: the emulator serving a real VSC (see `emulator_cases` below);
//! - (c) `vicc`: vsmartcard's Python emulator as Debian ships it, the peer.
//!
//! Every case sends the same APDU. A private pcscd is started for the run. `scripts/bench` runs
//! this and prints APDU/s and the ratios from criterion's estimates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use vsc_tests::{
    Machine, Pcscd, Process, Readers, transmit, vicc_command, wait_for_card, wait_for_empty_reader,
    workspace_binary,
};

/// SELECT the MF by its identifier, no response data: answered by every card side here.
const APDU: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
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

/// (b) The emulator serving a real VSC image, through the same pcscd: the lead adds it here
/// when the card OS lands, as a `benchmark_group("emulator")` with `round_trips` (start
/// `vsc-emulator serve` on two images, run, `stop`), so that `scripts/bench` reports it next to
/// (a) and (c).
fn emulator_cases(_criterion: &mut Criterion, _machine: &Machine, _pcscd: &Pcscd<'_>) {}

/// Benchmarks `1_slot` (reader 0) and `2_slots_parallel` (readers 0 and 1 at once, counting the
/// APDUs of both).
fn round_trips(group: &mut BenchmarkGroup<'_, WallTime>, pcscd: &Pcscd<'_>) {
    let cards: Vec<pcsc::Card> = pcscd.readers()[..2]
        .iter()
        .map(|reader| wait_for_card(reader, CARD_TIMEOUT).unwrap())
        .collect();
    for card in &cards {
        assert_eq!(transmit(card, &APDU).unwrap(), [0x90, 0x00]);
    }

    group.throughput(Throughput::Elements(1));
    group.bench_function("1_slot", |bencher| {
        bencher.iter(|| transmit(&cards[0], &APDU).unwrap());
    });

    group.throughput(Throughput::Elements(2));
    group.bench_function("2_slots_parallel", |bencher| {
        bencher.iter_custom(|iterations| {
            std::thread::scope(|scope| {
                let start = Instant::now();
                for card in &cards {
                    scope.spawn(move || {
                        for _ in 0..iterations {
                            transmit(card, &APDU).unwrap();
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
}

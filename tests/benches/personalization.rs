//! Personalization through pcscd and vpcd, measured:
//!
//! - `replay`: the replay engine sending a card's personalization transcript (every response
//!   compared with its expectation) against a bare `SCardTransmit` loop over the same APDUs, in
//!   one run. Target: the engine costs at most 5 % more.
//! - `station`: a station (kept open, as a running one is) personalizing one card in one
//!   reader, on a SQLite store and on a PostgreSQL one, against the bare loop of its transcript:
//!   the station's own cost per card (connecting, reading the UID, claiming, checking the
//!   signature, reading the card back, recording the ending). And two cards in two readers,
//!   next to the same transcripts as bare loops on one and two readers at once: the scaling of
//!   the PC/SC stack itself on this machine.
//!
//! The cards are blank VSCs served by `vsc-emulator serve --fresh`, blank again at every
//! power-on (the bench powers them off between iterations, outside the timed part), so every
//! iteration personalizes a fresh card; the store's rows are put back to "prepared" between
//! station rounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use vsc_core::card::Card;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::{Step, Transcript};
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::prepare::{self, Options};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records;
use vsc_personalizer::replay::{self, CardLink, CardOsLink, PcscLink};
use vsc_personalizer::station;
use vsc_personalizer::store::{self, Access, OpenOptions, StoreLocation, Uid};
use vsc_tests::{Machine, Process, Readers, TestDatabase, wait_for_card, workspace_binary};

const CARD_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let machine = Machine::lock().expect("the machine's pcscd lock");
    let pcscd = machine
        .start_pcscd(&Readers::system())
        .expect("a private pcscd");

    // Two prepared cards and their blank cards.
    let folder = machine.scratch().join("bench-personalization");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalizer/profiles");
    let profile = Profile::load(&profiles.join("demo.toml")).unwrap();
    let text = std::fs::read_to_string(profiles.join("demo-records.csv")).unwrap();
    let records_file = folder.join("records.csv");
    std::fs::write(
        &records_file,
        text.lines().take(3).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let key_file = folder.join("issuer.key");
    let master = IssuerKeyFile::create_new(&key_file)
        .unwrap()
        .master_key()
        .clone();
    let template = folder.join("template.db");
    {
        let mut store = open_store(&template, Access::CreateOrMigrate);
        let mut source = records::open(records_file.to_str().unwrap()).unwrap();
        let summary = prepare::run(
            &profile,
            source.as_mut(),
            &master,
            store.as_mut(),
            None,
            &Options::default(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(summary.prepared, 2);
    }
    let uids: Vec<Uid> = text
        .lines()
        .skip(1)
        .take(2)
        .map(|l| Uid::parse(l.split(',').next().unwrap()).unwrap())
        .collect();
    let blank = |uid: Uid| {
        let preinit = compile::compile_preinit(&profile, uid, &master, Mode::Channel).unwrap();
        let mut link = CardOsLink::new(Card::blank());
        replay::replay(&mut link, &preinit, |_| {}).unwrap();
        link.into_card().into_state()
    };
    // The blank cards, served by vsc-emulator --fresh: blank again at every power-on.
    let images: Vec<_> = uids
        .iter()
        .map(|uid| {
            let path = folder.join(format!("blank-{uid}.vsc"));
            vsc_core::image::save(&path, &blank(*uid), &master).unwrap();
            path
        })
        .collect();
    let mut command =
        std::process::Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    command
        .arg("serve")
        .args(&images)
        .arg("--key-file")
        .arg(&key_file)
        .arg("--fresh");
    let mut emulator = Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap();
    let readers: Vec<CString> = pcscd.readers()[..2]
        .iter()
        .map(|r| CString::new(r.as_str()).unwrap())
        .collect();
    for reader in &pcscd.readers()[..2] {
        drop(wait_for_card(reader, CARD_TIMEOUT).unwrap());
    }
    let context = Context::establish(Scope::User).unwrap();
    // Power a card off and on: blank again.
    let refresh = |reader: &CString| {
        let mut card = context
            .connect(reader, ShareMode::Shared, Protocols::ANY)
            .unwrap();
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::UnpowerCard)
            .unwrap();
        drop(card);
    };

    let (transcript, commands) = personalization(&template, uids[0]);

    let mut group = criterion.benchmark_group("replay");
    group.throughput(Throughput::Elements(commands.len() as u64));
    group.bench_function("bare SCardTransmit loop", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                refresh(&readers[0]);
                let mut card = replay::connect_exclusive(&context, &readers[0]).unwrap();
                let mut link = PcscLink::begin(&mut card).unwrap();
                let mut response = Vec::new();
                let start = Instant::now();
                for command in &commands {
                    link.transmit(command, &mut response).unwrap();
                }
                elapsed += start.elapsed();
                assert!(response.ends_with(&[0x90, 0x00]), "{response:02X?}");
            }
            elapsed
        })
    });
    group.bench_function("replay engine", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                refresh(&readers[0]);
                let mut card = replay::connect_exclusive(&context, &readers[0]).unwrap();
                let mut link = PcscLink::begin(&mut card).unwrap();
                let start = Instant::now();
                replay::replay(&mut link, &transcript, |_| {}).unwrap();
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    let (_, commands_b) = personalization(&template, uids[1]);
    let contexts: Vec<Context> = (0..2)
        .map(|_| Context::establish(Scope::User).unwrap())
        .collect();
    for n in [1usize, 2] {
        // The stack's own scaling: each card's transcript as a bare loop, on one reader and on
        // two at once (the station cannot scale better than this).
        group.bench_function(format!("bare loops, {n} reader(s) at once"), |bencher| {
            bencher.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    for reader in &readers[..n] {
                        refresh(reader);
                    }
                    let mut cards: Vec<_> = readers[..n]
                        .iter()
                        .zip(&contexts)
                        .map(|(r, c)| replay::connect_exclusive(c, r).unwrap())
                        .collect();
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for (card, commands) in cards.iter_mut().zip([&commands, &commands_b]) {
                            s.spawn(move || {
                                let mut link = PcscLink::exclusive(card);
                                let mut response = Vec::new();
                                for command in commands {
                                    link.transmit(command, &mut response).unwrap();
                                }
                                assert!(response.ends_with(&[0x90, 0x00]));
                            });
                        }
                    });
                    elapsed += start.elapsed();
                }
                elapsed
            })
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("station");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    // A running station keeps its PC/SC contexts and store connections: open one station per
    // store and reader count, and between rounds put the cards back to "prepared" (outside the
    // timing). The store refuses to undo a personalization, so the bench's copies drop that
    // guard (and the one personalized line per card) first.
    let sqlite_store = folder.join("station.db");
    std::fs::copy(&template, &sqlite_store).unwrap();
    rusqlite::Connection::open(&sqlite_store)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER cards_personalized_stays; DROP INDEX audit_personalized_once; \
             DROP TRIGGER audit_personalized_needs_the_card;",
        )
        .unwrap();
    let database = TestDatabase::create("bench_station").unwrap();
    let pg_store = StoreLocation::parse(&database.location()).unwrap();
    {
        let mut store = store::open(&pg_store, &OpenOptions::new(Access::CreateOrMigrate))
            .unwrap()
            .store;
        let mut source = records::open(records_file.to_str().unwrap()).unwrap();
        prepare::run(
            &profile,
            source.as_mut(),
            &master,
            store.as_mut(),
            None,
            &Options::default(),
            &mut |_| {},
        )
        .unwrap();
    }
    let mut pg = database.client().unwrap();
    pg.batch_execute(
        "DROP TRIGGER cards_guard ON vsc.cards; DROP INDEX vsc.audit_personalized_once; \
         DROP TRIGGER audit_personalized_needs_the_card ON vsc.audit;",
    )
    .unwrap();
    let open_station = |location: StoreLocation, count: usize| {
        let trust = replay::Trust::new(vec![
            vsc_core::transcript::PreparationKey::derive(&master).verify_key(),
        ]);
        let mut config = station::Config::new(location, "bench", readers[..count].to_vec(), trust);
        config.once = true;
        station::Station::open(config).unwrap()
    };
    let reset = rusqlite::Connection::open(&sqlite_store).unwrap();
    let unpersonalize = "UPDATE cards SET status = 'prepared', claimed_by = NULL, \
                         claim_reader = NULL, claim_host = NULL, claim_expires = NULL, \
                         failed_step = NULL, failure = NULL";
    let round = |station: &mut station::Station, count: usize, postgres: bool| {
        if postgres {
            pg.batch_execute(&unpersonalize.replace("cards", "vsc.cards").replace(
                "claim_expires = NULL",
                "claim_expires = NULL, claimed_at = NULL",
            ))
            .unwrap();
        } else {
            reset
                .execute(&format!("{unpersonalize}, claimed_ms = NULL"), [])
                .unwrap();
        }
        for reader in &readers[..count] {
            refresh(reader);
        }
        let start = Instant::now();
        let summary = station.run(&AtomicBool::new(false), &|_| {}).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(summary.personalized, count as u64, "{summary:?}");
        elapsed
    };
    let round = std::cell::RefCell::new(round);
    for (name, location, postgres) in [
        ("SQLite", StoreLocation::Sqlite(sqlite_store.clone()), false),
        ("PostgreSQL", pg_store.clone(), true),
    ] {
        let mut one = open_station(location.clone(), 1);
        group.bench_function(format!("one card, one reader ({name})"), |bencher| {
            bencher.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| (round.borrow_mut())(&mut one, 1, postgres))
                    .sum()
            })
        });
        if !postgres {
            let mut two = open_station(location, 2);
            group.bench_function("two cards, two readers", |bencher| {
                bencher.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| (round.borrow_mut())(&mut two, 2, postgres))
                        .sum()
                })
            });
        }
    }
    group.finish();

    emulator.stop().unwrap();
    criterion.final_summary();
}

/// The personalization transcript the store holds for `uid`, and its commands as bytes (for the
/// bare `SCardTransmit` loops).
fn personalization(store: &Path, uid: Uid) -> (Transcript, Vec<Vec<u8>>) {
    let stored = open_store(store, Access::Existing)
        .card(uid)
        .unwrap()
        .unwrap();
    let text = store::sealing::open(
        &stored.card.perso,
        vsc_core::transcript::Kind::Personalization,
        uid,
        None,
    )
    .unwrap();
    let transcript = Transcript::parse(text.as_str()).unwrap();
    let commands = transcript
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Command { command, .. } => Some(command.as_bytes().to_vec()),
            Step::Reset { .. } => None,
        })
        .collect();
    (transcript, commands)
}

/// The store in the SQLite file `path`.
fn open_store(path: &Path, access: Access) -> Box<dyn store::Store> {
    store::open(
        &StoreLocation::Sqlite(path.to_path_buf()),
        &OpenOptions::new(access),
    )
    .unwrap()
    .store
}

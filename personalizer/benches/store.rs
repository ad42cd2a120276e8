//! A station's store round, measured: claim a card, then record its ending (personalized), with
//! 8 station tasks at once, each on its own connection, as a station with 8 readers (or 8
//! stations) does. Latencies of whole rounds, p50 / p99 / max, on a SQLite file and on a
//! PostgreSQL database made for the run on the machine's server (`VSC_TEST_POSTGRES`, by
//! default `host=/var/run/postgresql user=postgres`). Target: p99 ≤ 2 ms on PostgreSQL.
//!
//! Every claim and ending is a durable commit, so a round waits for the server's WAL flush
//! (fdatasync) at least once; the PostgreSQL figures are given again with
//! `synchronous_commit=off` for the session (through the location's `options`), which takes
//! the disk out and leaves the store's own cost.
//!
//! Not criterion: criterion reports means, and the target is a percentile.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use vsc_personalizer::store::{
    self, Access, AuditRecord, AuditResult, Batch, Claimant, OpenOptions, PreparedCard,
    SealedTranscript, StoreLocation, StoredTranscript, Uid,
};

const TASKS: usize = 8;
const ROUNDS: usize = 250;

fn cards() -> Vec<PreparedCard> {
    (0..TASKS * ROUNDS)
        .map(|n| PreparedCard {
            uid: Uid([0x56, 0x53, 0xBE, 0, 0, 0, (n >> 8) as u8, n as u8]),
            profile_id: "bench".into(),
            profile_version: 1,
            image: (0..950).map(|i| (i * 7 + n) as u8).collect(),
            preinit: StoredTranscript::Sealed(SealedTranscript::new(vec![0x5A; 300])),
            preinit_digest: "AA".repeat(32),
            perso: StoredTranscript::pack(&format!("VSC-TRANSCRIPT 2\n# card {n}\n"), None),
            perso_digest: "BB".repeat(32),
        })
        .collect()
}

fn round_trips(location: &StoreLocation) -> Vec<Duration> {
    let options = OpenOptions::new(Access::CreateOrMigrate);
    let mut setup = store::open(location, &options).unwrap().store;
    let cards = cards();
    for chunk in cards.chunks(500) {
        setup
            .insert_batch(&Batch {
                cards: chunk,
                mailer_file: None,
            })
            .unwrap();
    }
    let barrier = Barrier::new(TASKS);
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (barrier, cards) = (&barrier, &cards);
                scope.spawn(move || {
                    let mut store = store::open(location, &OpenOptions::new(Access::Existing))
                        .unwrap()
                        .store;
                    let claimant = Claimant {
                        station: format!("bench-{task}"),
                        host: "bench".into(),
                        reader: format!("reader {task}"),
                    };
                    barrier.wait();
                    let mut times = Vec::with_capacity(ROUNDS);
                    for card in cards.iter().skip(task).step_by(TASKS) {
                        let started = Instant::now();
                        store
                            .claim(card.uid, &claimant, Duration::from_secs(60))
                            .unwrap()
                            .unwrap();
                        store
                            .finish_attempt(&AuditRecord {
                                uid: card.uid,
                                station: claimant.station.clone(),
                                host: claimant.host.clone(),
                                reader: claimant.reader.clone(),
                                transcript_digest: Some(card.perso_digest.clone()),
                                result: AuditResult::Personalized,
                                failed_step: None,
                                reason: None,
                                started_at: store::now(),
                                duration_ms: 1,
                            })
                            .unwrap();
                        times.push(started.elapsed());
                    }
                    times
                })
            })
            .collect();
        tasks.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    latencies.sort();
    latencies
}

fn report(name: &str, latencies: &[Duration]) {
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "store/claim + finish, {TASKS} tasks ({name}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms \
         ({} rounds)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        latencies.len()
    );
}

fn main() {
    // `cargo bench` passes criterion's arguments to every bench; this one takes none.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreLocation::Sqlite(dir.path().join("bench.db"));
    report("SQLite", &round_trips(&sqlite));

    let admin = std::env::var("VSC_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=/var/run/postgresql user=postgres".to_string());
    let name = format!("vsc_bench_store_{}", std::process::id());
    let mut client =
        postgres::Client::connect(&format!("{admin} dbname=postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin:?}: {e}"));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let durable = StoreLocation::parse(&format!("{admin} dbname={name}")).unwrap();
    let latencies = std::panic::catch_unwind(|| round_trips(&durable));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    report("PostgreSQL", &latencies.unwrap());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let asynchronous = StoreLocation::parse(&format!(
        "{admin} dbname={name} options='-c synchronous_commit=off'"
    ))
    .unwrap();
    let latencies = std::panic::catch_unwind(|| round_trips(&asynchronous));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    report("PostgreSQL, synchronous_commit=off", &latencies.unwrap());
}

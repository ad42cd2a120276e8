//! Stations on many machines sharing one PostgreSQL store (issue 11): three station hosts, each
//! a private network, mount and pid namespace with its own pcscd, two vpcd readers and
//! emulators serving blank cards, all reaching one database of this test through the server's
//! Unix socket; and a station whose connection to the server breaks in the middle of a card.
//!
//! These tests need root (namespaces) and the machine's PostgreSQL server; without either they
//! fail, saying why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use vsc_core::card::{CardState, LifeCycle};
use vsc_core::crypto::MasterKey;
use vsc_core::image;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::PreparationKey;
use vsc_personalizer::compile::Mode;
use vsc_personalizer::prepare::{self, Options};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records;
use vsc_personalizer::replay::Trust;
use vsc_personalizer::station::{self, Attempt, Failure};
use vsc_personalizer::store::{
    self, Access, AuditFilter, AuditRecord, AuditResult, CardStatus, OpenOptions, Store,
    StoreLocation, Uid,
};
use vsc_tests::{
    Machine, Process, Readers, StationHost, TestDatabase, postgres_admin, wait_for_card,
    wait_for_empty_reader, workspace_binary,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a card stays out between two insertions: more than two of pcscd's polls.
const REMOVAL: Duration = Duration::from_millis(1_000);

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../personalizer/profiles")
        .join(file)
}

fn personalizer_binary() -> PathBuf {
    workspace_binary("vsc-personalizer", "vsc-personalizer").unwrap()
}

fn emulator_binary() -> PathBuf {
    workspace_binary("vsc-emulator", "vsc-emulator").unwrap()
}

fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap();
    assert_eq!(
        uid, "0",
        "these tests make private hosts with unshare: run them as root (scripts/private-host)"
    );
}

/// The test database as a URL (no spaces: it passes through a host's command line).
fn url(db: &TestDatabase) -> String {
    let admin = postgres_admin();
    let value = |key: &str| {
        admin
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let host = value("host")
        .unwrap_or_else(|| "/var/run/postgresql".into())
        .replace('/', "%2F");
    let user = value("user").unwrap_or_else(|| "postgres".into());
    let port = value("port").map(|p| format!(":{p}")).unwrap_or_default();
    format!("postgresql://{user}@{host}{port}/{}", db.name())
}

/// Cards prepared into the test's PostgreSQL store, and their blank cards.
struct Cards {
    folder: PathBuf,
    key_file: PathBuf,
    master: MasterKey,
    trusted_key: PathBuf,
    location: StoreLocation,
    uids: Vec<Uid>,
}

impl Cards {
    fn prepare(folder: &Path, db: &TestDatabase, count: usize) -> Cards {
        std::fs::create_dir_all(folder).unwrap();
        let key_file = folder.join("issuer.key");
        let master = IssuerKeyFile::create_new(&key_file)
            .unwrap()
            .master_key()
            .clone();
        let records = folder.join("records.csv");
        let made = Command::new(personalizer_binary())
            .args(["records", "sample", "--count", &count.to_string()])
            .arg("--profile")
            .arg(demo("demo.toml"))
            .arg("--out")
            .arg(&records)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let profile = Profile::load(&demo("demo.toml")).unwrap();
        let mut source = records::open(records.to_str().unwrap()).unwrap();
        let location = StoreLocation::parse(&db.location()).unwrap();
        let mut store = store::open(&location, &OpenOptions::new(Access::CreateOrMigrate))
            .unwrap()
            .store;
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
        assert_eq!(summary.prepared, count as u64);
        let text = std::fs::read_to_string(&records).unwrap();
        let column = text
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|name| name == "uid")
            .unwrap();
        let uids: Vec<Uid> = text
            .lines()
            .skip(1)
            .map(|line| Uid::parse(line.split(',').nth(column).unwrap()).unwrap())
            .collect();
        for uid in &uids {
            let (blank, _) =
                vsc_personalizer::blank::make(&profile, *uid, &master, Mode::Channel).unwrap();
            std::fs::write(folder.join(format!("{uid}.vsc")), blank).unwrap();
        }
        let trusted_key = folder.join("preparation.pub");
        std::fs::write(
            &trusted_key,
            PreparationKey::derive(&master).verify_key().encode(),
        )
        .unwrap();
        Cards {
            folder: folder.to_owned(),
            key_file,
            master,
            trusted_key,
            location,
            uids,
        }
    }

    fn image(&self, uid: Uid) -> PathBuf {
        self.folder.join(format!("{uid}.vsc"))
    }

    fn store(&self) -> Box<dyn Store> {
        store::open(&self.location, &OpenOptions::new(Access::Existing))
            .unwrap()
            .store
    }

    fn load(&self, uid: Uid) -> CardState {
        image::load(&self.image(uid), &self.master).unwrap()
    }

    fn prepared(&self, uid: Uid, store: &mut dyn Store) -> CardState {
        image::decode(&store.card(uid).unwrap().unwrap().card.image, &self.master).unwrap()
    }

    fn trust(&self) -> Trust {
        Trust::new(vec![PreparationKey::derive(&self.master).verify_key()])
    }
}

/// Waits until `done` holds, polling; panics after `timeout`, saying what was awaited.
fn wait_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) {
    assert!(waited(timeout, done), "{what}: not after {timeout:?}");
}

/// Whether `done` came to hold within `timeout`.
fn waited(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Everything the hosts' processes printed, for a failure's message.
fn logs(hosts: &[Host]) -> String {
    let mut text = String::new();
    for host in hosts {
        for name in ["pcscd", "station", "emulator-0", "emulator-1", "slow-link"] {
            let log = host.host.log(name);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            text += &format!("--- host {} {name}:\n", host.host.name());
            for line in tail.iter().rev() {
                text += line;
                text += "\n";
            }
        }
    }
    text
}

fn status(store: &mut dyn Store, uid: Uid) -> CardStatus {
    store.card(uid).unwrap().unwrap().status
}

/// A station host with its pcscd, two readers and a station.
struct Host {
    host: StationHost,
    station: String,
}

impl Host {
    fn start(name: &str, scratch: &Path, cards: &Cards, db: &TestDatabase) -> Host {
        let mut host = StationHost::start(name, scratch).unwrap();
        host.spawn("pcscd", Path::new("/usr/sbin/pcscd"), &["--foreground"])
            .unwrap();
        let personalizer = personalizer_binary();
        wait_until(
            &format!("host {name}: pcscd's two readers"),
            CARD_TIMEOUT,
            || {
                let (_, output) = host.run(&personalizer, &["readers"]).unwrap();
                output.matches("no card").count() == 2
            },
        );
        let mut host = Host {
            host,
            station: format!("station-{name}"),
        };
        host.start_station(cards, db);
        host
    }

    fn start_station(&mut self, cards: &Cards, db: &TestDatabase) {
        let store = url(db);
        let trusted = cards.trusted_key.to_str().unwrap().to_string();
        self.host
            .spawn(
                "station",
                &personalizer_binary(),
                &[
                    "station",
                    "--store",
                    &store,
                    "--trusted-key",
                    &trusted,
                    "--station-id",
                    &self.station,
                    "--lease",
                    "3",
                    "--json",
                    "--reader",
                    "0",
                    "--reader",
                    "1",
                ],
            )
            .unwrap();
    }

    /// Serves `image` in reader `slot`, through `connect` when given (a slow link).
    fn insert(&mut self, slot: usize, image: &Path, key_file: &Path, connect: Option<&str>) {
        let slot_text = slot.to_string();
        let mut args = vec![
            "serve",
            image.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--slot",
            &slot_text,
        ];
        if let Some(address) = connect {
            args.extend(["--connect", address]);
        }
        self.host
            .spawn(&format!("emulator-{slot}"), &emulator_binary(), &args)
            .unwrap();
    }

    /// Takes the card out of reader `slot`: its emulator stops, its image saved.
    fn remove(&mut self, slot: usize) {
        let status = self.host.stop(&format!("emulator-{slot}")).unwrap();
        assert!(
            status == 0 || status == 143,
            "emulator {slot}: {status}\n{}",
            self.host.log(&format!("emulator-{slot}"))
        );
    }

    /// Waits until pcscd in the host sees both readers empty, and the station has seen it too:
    /// pcscd polls vpcd about every 400 ms, and a card inserted again before a poll saw the
    /// reader empty would be taken for the one still there (see tests/vsc.rs).
    fn wait_empty(&mut self) {
        let personalizer = personalizer_binary();
        let name = self.host.name().to_string();
        let host = &mut self.host;
        wait_until(&format!("host {name}: empty readers"), CARD_TIMEOUT, || {
            let (_, output) = host.run(&personalizer, &["readers"]).unwrap();
            output.matches("no card").count() == 2
        });
    }

    /// The station's JSON events so far, `done` ones.
    fn done_events(&self) -> Vec<serde_json::Value> {
        self.host
            .log("station")
            .lines()
            .filter(|line| line.starts_with('{'))
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["event"] == "done")
            .collect()
    }
}

/// Issue 11, item 4: three hosts, 60 cards in waves, one station killed mid-card and its card
/// re-personalized by another station once the lease ended.
#[test]
fn three_station_hosts_share_one_store_and_a_killed_stations_card_is_taken_over() {
    require_root();
    let machine = Machine::lock().unwrap();
    let db = TestDatabase::create("three_hosts").unwrap();
    let cards = Cards::prepare(&machine.scratch().join("cards"), &db, 60);
    let names = ["a", "b", "c"];
    let mut hosts: Vec<Host> = names
        .iter()
        .map(|name| Host::start(name, machine.scratch(), &cards, &db))
        .collect();
    // B's reader 0 will take one card through a slow link: each APDU some 100 ms late, so
    // that its station is surely in the middle of the card when it is killed.
    let slow = workspace_binary("vsc-tests", "vsc-slow-link").unwrap();
    hosts[1]
        .host
        .spawn(
            "slow-link",
            &slow,
            &["127.0.0.1:45963", "127.0.0.1:35963", "25"],
        )
        .unwrap();

    // Six readers, ten cards each, fed in waves.
    let mut queues: Vec<Vec<Uid>> = (0..6)
        .map(|slot| cards.uids.iter().skip(slot).step_by(6).copied().collect())
        .collect();
    let victim_wave = 3;
    let victim = queues[2][victim_wave]; // host b, reader 0
    let mut store = cards.store();
    let mut wave = 0;
    let mut taken_over = false;
    while queues.iter().any(|queue| !queue.is_empty()) {
        let mut fed = Vec::new();
        for (slot, queue) in queues.iter_mut().enumerate() {
            let (host, reader) = (slot / 2, slot % 2);
            // In the victim's wave, host b's other reader stays empty (its card waits).
            if wave == victim_wave && host == 1 && reader == 1 {
                continue;
            }
            let Some(uid) = (!queue.is_empty()).then(|| queue.remove(0)) else {
                continue;
            };
            let slow_link = (uid == victim).then_some("127.0.0.1:45963");
            hosts[host].insert(reader, &cards.image(uid), &cards.key_file, slow_link);
            fed.push((host, reader, uid));
        }
        if wave == victim_wave {
            wait_until("host b to claim the victim card", CARD_TIMEOUT, || {
                matches!(status(store.as_mut(), victim), CardStatus::Claimed(ref l)
                    if l.station == "station-b")
            });
            std::thread::sleep(Duration::from_millis(500));
            hosts[1].host.signal("station", "KILL").unwrap();
            assert_eq!(hosts[1].host.wait("station").unwrap(), 137);
            assert!(
                matches!(status(store.as_mut(), victim), CardStatus::Claimed(ref l)
                    if l.station == "station-b"),
                "killed in the middle of the card"
            );
        }
        for (host, reader, uid) in &fed {
            if *uid == victim {
                continue;
            }
            let personalized = waited(CARD_TIMEOUT, || {
                status(store.as_mut(), *uid) == CardStatus::Personalized
            });
            assert!(
                personalized,
                "card {uid} in host {} reader {reader}: {:?}\n{}",
                names[*host],
                status(store.as_mut(), *uid),
                logs(&hosts)
            );
        }
        for (host, reader, _) in &fed {
            hosts[*host].remove(*reader);
        }
        for host in &mut hosts {
            host.wait_empty();
        }
        std::thread::sleep(REMOVAL);
        if wave == victim_wave {
            let half = cards.load(victim);
            assert_eq!(
                half.life_cycle,
                LifeCycle::Initialisation,
                "half personalized"
            );
            assert_ne!(half, cards.prepared(victim, store.as_mut()));
            // Host a gets the card at once: the dead station's lease holds, it is refused.
            hosts[0].insert(0, &cards.image(victim), &cards.key_file, None);
            wait_until("host a to refuse the victim card", CARD_TIMEOUT, || {
                store
                    .audit(&AuditFilter {
                        uid: Some(victim),
                        ..AuditFilter::default()
                    })
                    .unwrap()
                    .iter()
                    .any(|r| r.result == AuditResult::Refused)
            });
            hosts[0].remove(0);
            hosts[0].wait_empty();
            std::thread::sleep(REMOVAL);
            // Once the lease ended, host a takes the card over and personalizes it.
            wait_until("the dead station's lease to end", CARD_TIMEOUT, || {
                store.status().unwrap().claims[0].remaining_ms <= 0
            });
            hosts[0].insert(0, &cards.image(victim), &cards.key_file, None);
            wait_until(
                "host a to personalize the victim card",
                CARD_TIMEOUT,
                || status(store.as_mut(), victim) == CardStatus::Personalized,
            );
            hosts[0].remove(0);
            hosts[0].wait_empty();
            std::thread::sleep(REMOVAL);
            taken_over = true;
            hosts[1].start_station(&cards, &db);
        }
        wave += 1;
    }
    assert!(taken_over);
    let mut done: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for host in &mut hosts {
        host.host.stop("station").unwrap();
        done.insert(host.station.clone(), host.done_events());
    }

    // No card personalized twice, every card its prepared image.
    let audit = store.audit(&AuditFilter::default()).unwrap();
    let mut personalized: BTreeMap<Uid, Vec<&AuditRecord>> = BTreeMap::new();
    for record in &audit {
        if matches!(
            record.result,
            AuditResult::Personalized | AuditResult::Confirmed
        ) {
            personalized.entry(record.uid).or_default().push(record);
        }
    }
    assert_eq!(personalized.len(), 60);
    assert!(personalized.values().all(|records| records.len() == 1));
    for uid in &cards.uids {
        assert_eq!(
            cards.load(*uid),
            cards.prepared(*uid, store.as_mut()),
            "card {uid}"
        );
    }
    // The victim: abandoned by b, refused by a while b's lease held, then personalized by a.
    let victim_lines: Vec<(AuditResult, &str)> = audit
        .iter()
        .filter(|r| r.uid == victim)
        .map(|r| (r.result, r.station.as_str()))
        .collect();
    assert_eq!(
        victim_lines,
        [
            (AuditResult::Refused, "station-a"),
            (AuditResult::Abandoned, "station-b"),
            (AuditResult::Personalized, "station-a"),
        ]
    );
    // Audit lines equal the attempts made: one per ending a station reported, and one for
    // the attempt the killed station never ended.
    let reported: usize = done.values().map(Vec::len).sum();
    assert_eq!(audit.len(), reported + 1, "{audit:#?}");
    for (station, events) in &done {
        let mut from_events: BTreeMap<String, u64> = BTreeMap::new();
        for event in events {
            *from_events
                .entry(event["result"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let mut from_audit: BTreeMap<String, u64> = BTreeMap::new();
        for record in audit
            .iter()
            .filter(|r| &r.station == station && r.result != AuditResult::Abandoned)
        {
            *from_audit.entry(record.result.to_string()).or_default() += 1;
        }
        assert_eq!(from_events, from_audit, "{station}");
    }
    // `store status` shows the truth.
    let output = Command::new(personalizer_binary())
        .args(["store", "status", "--json", "--store", &db.location()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        shown["cards"],
        serde_json::json!([
            ["prepared", 0],
            ["claimed", 0],
            ["personalized", 60],
            ["failed", 0]
        ])
    );
    assert_eq!(shown["claims"], serde_json::json!([]));
    let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for record in &audit {
        *counted
            .entry((record.station.clone(), record.result.to_string()))
            .or_default() += 1;
    }
    let shown_stations: BTreeMap<(String, String), u64> = shown["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                (
                    s["station"].as_str().unwrap().to_string(),
                    s["result"].as_str().unwrap().to_string(),
                ),
                s["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown_stations, counted);
    drop(hosts);
    drop(machine);
}

/// A station in this test's process (through the library), its store the test's database.
fn station_config(cards: &Cards, reader: &str, lease: Duration) -> station::Config {
    let mut config = station::Config::new(
        cards.location.clone(),
        "in-process",
        vec![CString::new(reader).unwrap()],
        cards.trust(),
    );
    config.once = true;
    config.lease = lease;
    config.store_options = OpenOptions::new(Access::Existing).lock_timeout(Duration::from_secs(2));
    config
}

fn serve(machine: &Machine, cards: &Cards, uid: Uid) -> Process {
    let mut command = Command::new(emulator_binary());
    command
        .arg("serve")
        .arg(cards.image(uid))
        .arg("--key-file")
        .arg(&cards.key_file);
    Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap()
}

/// Issue 11, item 2: the station's sessions are ended (pg_terminate_backend) in the middle of a
/// card: the station reconnects, and the card is recorded personalized, once.
#[test]
fn a_station_whose_sessions_are_ended_mid_card_records_the_card_once() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let db = TestDatabase::create("terminated").unwrap();
    let cards = Cards::prepare(&machine.scratch().join("terminated"), &db, 1);
    let uid = cards.uids[0];
    let mut emulator = serve(&machine, &cards, uid);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let mut station = station::Station::open(station_config(
        &cards,
        pcscd.reader(0),
        Duration::from_secs(60),
    ))
    .unwrap();
    let ended = Mutex::new(0);
    let attempts = Mutex::new(Vec::new());
    let summary = station
        .run(&AtomicBool::new(false), &|event| match event {
            station::Event::Step { step, total, .. } if step == total / 2 => {
                let mut ended = ended.lock().unwrap();
                if *ended == 0 {
                    *ended = db.terminate_sessions().unwrap();
                }
            }
            station::Event::Done { attempt, .. } => {
                attempts.lock().unwrap().push(attempt.outcome());
            }
            _ => {}
        })
        .unwrap();
    emulator.stop().unwrap();
    assert!(
        *ended.lock().unwrap() >= 2,
        "the tasks' and the keeper's sessions"
    );
    assert_eq!(*attempts.lock().unwrap(), ["personalized"]);
    assert_eq!((summary.personalized, summary.failed), (1, 0));
    let mut store = cards.store();
    assert_eq!(status(store.as_mut(), uid), CardStatus::Personalized);
    let audit = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].result, AuditResult::Personalized);
    assert_eq!(cards.load(uid), cards.prepared(uid, store.as_mut()));
}

/// Issue 11, item 2: the server stays away in the middle of a card (its database closed to
/// connections): the lease runs out, the station stops before its next command, reports the
/// card not recorded (never personalized), and once the server is back the lease returns the
/// card to another station, which personalizes it.
#[test]
fn a_station_cut_off_from_its_server_stops_and_the_lease_returns_the_card() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let db = TestDatabase::create("cut_off").unwrap();
    let cards = Cards::prepare(&machine.scratch().join("cut-off"), &db, 1);
    let uid = cards.uids[0];
    let mut emulator = serve(&machine, &cards, uid);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let lease = Duration::from_millis(1_500);
    let mut station =
        station::Station::open(station_config(&cards, pcscd.reader(0), lease)).unwrap();
    let cut_at = Mutex::new(None);
    let outcome = Mutex::new(None);
    let summary = station
        .run(&AtomicBool::new(false), &|event| match event {
            station::Event::Step { step, total, .. } if step == total / 2 => {
                let mut cut = cut_at.lock().unwrap();
                if cut.is_none() {
                    db.allow_connections(false).unwrap();
                    db.terminate_sessions().unwrap();
                    *cut = Some(step);
                    // A slow card: the lease runs out before the next command.
                    std::thread::sleep(lease + Duration::from_millis(300));
                }
            }
            station::Event::Done { attempt, .. } => {
                *outcome.lock().unwrap() = Some(match attempt {
                    Attempt::NotRecorded { previous, .. } => match previous.as_ref() {
                        Attempt::Failed {
                            step,
                            failure: Failure::LeaseLost(_),
                            ..
                        } => format!("not recorded: lease lost before step {step:?}"),
                        other => format!("not recorded: {other}"),
                    },
                    other => other.to_string(),
                });
            }
            _ => {}
        })
        .unwrap();
    let cut = cut_at.lock().unwrap().unwrap();
    let said = outcome.lock().unwrap().clone().unwrap();
    assert!(said.starts_with("not recorded: lease lost"), "{said}");
    assert_eq!(summary.personalized, 0);
    emulator.stop().unwrap();
    let half = cards.load(uid);
    assert_eq!(
        half.life_cycle,
        LifeCycle::Initialisation,
        "stopped at {cut}"
    );

    db.allow_connections(true).unwrap();
    let mut store = cards.store();
    assert!(matches!(
        status(store.as_mut(), uid),
        CardStatus::Claimed(_)
    ));
    assert!(store.audit(&AuditFilter::default()).unwrap().is_empty());
    wait_for_empty_reader(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    let mut emulator = serve(&machine, &cards, uid);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let mut config = station_config(&cards, pcscd.reader(0), Duration::from_secs(60));
    config.station = "other".into();
    let summary = station::run(config, &AtomicBool::new(false), &|_| {}).unwrap();
    emulator.stop().unwrap();
    assert_eq!(summary.personalized, 1);
    let results: Vec<(AuditResult, String)> = store
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| (r.result, r.station))
        .collect();
    assert_eq!(
        results,
        [
            (AuditResult::Abandoned, "in-process".to_string()),
            (AuditResult::Personalized, "other".to_string())
        ]
    );
    assert_eq!(cards.load(uid), cards.prepared(uid, store.as_mut()));
}

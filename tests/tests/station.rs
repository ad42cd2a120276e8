//! Personalization through the real stack: cards prepared into a store, blank VSCs (the
//! stand-ins for real pre-initialized cards) served by `vsc-emulator`, and `vsc-personalizer
//! station` and `replay` talking to them through pcscd and vpcd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use vsc_core::card::{CardState, LifeCycle};
use vsc_core::crypto::MasterKey;
use vsc_core::image;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::PreparationKey;
use vsc_core::transcript::Transcript;
use vsc_personalizer::compile::Mode;
use vsc_personalizer::prepare::{self, Options};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records;
use vsc_personalizer::replay::{self, PcscLink, ReplayError, Trust};
use vsc_personalizer::station;
use vsc_personalizer::store::{
    self, Access, AuditFilter, AuditResult, CardStatus, OpenOptions, Store, StoreLocation,
    StoredTranscript, Uid,
};
use vsc_tests::{
    Machine, Pcscd, Process, Readers, wait_for_card, wait_for_empty_reader, workspace_binary,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../personalizer/profiles")
        .join(file)
}

/// Cards prepared into a store.
struct Batch {
    folder: PathBuf,
    key_file: PathBuf,
    master: MasterKey,
    store: PathBuf,
    /// The issuer's verification key file (`keys public-key`).
    trusted_key: PathBuf,
    uids: Vec<Uid>,
}

impl Batch {
    /// The first `count` demo holders, prepared in `mode`.
    fn prepare(scratch: &Path, name: &str, count: usize, mode: Mode) -> Batch {
        let folder = scratch.join(name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let key_file = folder.join("issuer.key");
        let master = IssuerKeyFile::create_new(&key_file)
            .unwrap()
            .master_key()
            .clone();
        let text = std::fs::read_to_string(demo("demo-records.csv")).unwrap();
        let lines: Vec<&str> = text.lines().take(count + 1).collect();
        let records = folder.join("records.csv");
        std::fs::write(&records, lines.join("\n") + "\n").unwrap();
        let uids = lines[1..]
            .iter()
            .map(|line| Uid::parse(line.split(',').next().unwrap()).unwrap())
            .collect();
        let store = folder.join("vsc.db");
        let profile = Profile::load(&demo("demo.toml")).unwrap();
        let mut source = records::open(records.to_str().unwrap()).unwrap();
        let mut sqlite = open_store(&store, Access::CreateOrMigrate);
        let options = Options {
            mode,
            ..Options::default()
        };
        let summary = prepare::run(
            &profile,
            source.as_mut(),
            &master,
            sqlite.as_mut(),
            None,
            &options,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(summary.prepared, count as u64);
        let trusted_key = folder.join("preparation.pub");
        std::fs::write(
            &trusted_key,
            PreparationKey::derive(&master).verify_key().encode(),
        )
        .unwrap();
        Batch {
            folder,
            key_file,
            master,
            store,
            trusted_key,
            uids,
        }
    }

    /// A pre-initialized VSC for `uid`, made by `vsc-personalizer blank`.
    fn blank(&self, uid: Uid, plain: bool) -> PathBuf {
        self.blank_of(&demo("demo.toml"), uid, plain)
    }

    /// A pre-initialized VSC for `uid` made from `profile`.
    fn blank_of(&self, profile: &Path, uid: Uid, plain: bool) -> PathBuf {
        let out = self.folder.join(format!("blank-{uid}.vsc"));
        let _ = std::fs::remove_file(&out);
        let mut command = personalizer();
        command
            .args(["blank", "--profile"])
            .arg(profile)
            .args(["--uid", &uid.to_string()]);
        command
            .arg("--key-file")
            .arg(&self.key_file)
            .arg("--out")
            .arg(&out);
        if plain {
            command.arg("--plain");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    }

    /// The card as preparation made it.
    fn prepared(&self, uid: Uid) -> CardState {
        let stored = self.store().card(uid).unwrap().unwrap();
        image::decode(&stored.card.image, &self.master).unwrap()
    }

    fn load(&self, path: &Path) -> CardState {
        image::load(path, &self.master).unwrap()
    }

    fn store(&self) -> Box<dyn Store> {
        open_store(&self.store, Access::Existing)
    }

    /// The trust of a station that was given the verification key.
    fn trust(&self) -> Trust {
        Trust::new(vec![PreparationKey::derive(&self.master).verify_key()])
    }

    /// A station configuration for `readers`, `--once`.
    fn station_config(&self, readers: Vec<CString>) -> station::Config {
        let mut config = station::Config::new(
            StoreLocation::Sqlite(self.store.clone()),
            "test",
            readers,
            self.trust(),
        );
        config.once = true;
        config
    }

    /// `vsc-emulator serve` of `cards` from slot 0.
    fn serve(&self, machine: &Machine, cards: &[&Path]) -> Process {
        let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
        command
            .arg("serve")
            .args(cards)
            .arg("--key-file")
            .arg(&self.key_file);
        Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap()
    }
}

fn open_store(path: &Path, access: Access) -> Box<dyn Store> {
    store::open(
        &StoreLocation::Sqlite(path.to_path_buf()),
        &OpenOptions::new(access),
    )
    .unwrap()
    .store
}

fn personalizer() -> Command {
    Command::new(workspace_binary("vsc-personalizer", "vsc-personalizer").unwrap())
}

/// Waits until pcscd has seen the card leave reader `index` (see tests/vsc.rs).
fn card_removed(pcscd: &Pcscd<'_>, index: usize) {
    wait_for_empty_reader(pcscd.reader(index), CARD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
}

#[test]
fn the_station_personalizes_blank_cards_in_two_readers() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "two-readers", 3, Mode::Channel);
    let (a, b) = (batch.uids[0], batch.uids[1]);
    let (card_a, card_b) = (batch.blank(a, false), batch.blank(b, false));
    assert_eq!(batch.load(&card_a).life_cycle, LifeCycle::Initialisation);
    let mut emulator = batch.serve(&machine, &[&card_a, &card_b]);
    for reader in 0..2 {
        drop(wait_for_card(pcscd.reader(reader), CARD_TIMEOUT).unwrap());
    }

    let output = personalizer()
        .args([
            "station",
            "--once",
            "--station-id",
            "test-station",
            "--store",
        ])
        .arg(&batch.store)
        .arg("--trusted-key")
        .arg(&batch.trusted_key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("2 personalized, 0 failed, 0 refused"),
        "{stdout}"
    );
    emulator.stop().unwrap();

    // Each card is now exactly what preparation made: every area.
    assert_eq!(batch.load(&card_a), batch.prepared(a));
    assert_eq!(batch.load(&card_b), batch.prepared(b));
    let mut store = batch.store();
    let audit = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|r| r.result == AuditResult::Personalized && r.station == "test-station")
    );
    let mut audited: Vec<Uid> = audit.iter().map(|r| r.uid).collect();
    audited.sort();
    assert_eq!(audited, [a, b]);
    let digest = store.card(a).unwrap().unwrap().card.perso_digest;
    assert!(
        audit
            .iter()
            .any(|r| r.uid == a && r.transcript_digest.as_ref() == Some(&digest))
    );
    assert_eq!(
        store.card(a).unwrap().unwrap().status,
        CardStatus::Personalized
    );
    assert_eq!(
        store.card(batch.uids[2]).unwrap().unwrap().status,
        CardStatus::Prepared
    );
    drop(pcscd);
}

#[test]
fn card_a_transcript_fails_on_card_b_at_the_first_channel_command() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "a-on-b", 2, Mode::Channel);
    let (a, b) = (batch.uids[0], batch.uids[1]);
    let card_b = batch.blank(b, false);
    let before = batch.load(&card_b);
    let mut emulator = batch.serve(&machine, &[&card_b]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());

    // The replay command checks the UID first and sends nothing.
    let transcript_a = batch.folder.join("a.vsct");
    let export = personalizer()
        .args(["export", "transcript", "--uid", &a.to_string(), "--store"])
        .arg(&batch.store)
        .arg("--out")
        .arg(&transcript_a)
        .arg("--trusted-key")
        .arg(&batch.trusted_key)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let replay_cli = personalizer()
        .args(["replay", "--reader", pcscd.reader(0)])
        .arg(&transcript_a)
        .arg("--trusted-key")
        .arg(&batch.trusted_key)
        .output()
        .unwrap();
    assert_eq!(replay_cli.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&replay_cli.stderr);
    assert!(
        stderr.contains(&format!("the card's UID is {b}, the transcript is for {a}")),
        "{stderr}"
    );

    // Sent anyway, the first protected command is refused: 6988.
    let transcript = Transcript::parse(&std::fs::read_to_string(&transcript_a).unwrap()).unwrap();
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = CString::new(pcscd.reader(0)).unwrap();
    let mut card = replay::connect_exclusive(&context, &reader).unwrap();
    let mut link = PcscLink::begin(&mut card).unwrap();
    match replay::replay(&mut link, &transcript, |_| {}) {
        Err(ReplayError::Mismatch {
            step: 1, exchange, ..
        }) => assert_eq!(exchange.response(), [0x69, 0x88]),
        other => panic!("{other:?}"),
    }
    drop(link);
    drop(card);
    emulator.stop().unwrap();
    assert_eq!(batch.load(&card_b), before, "nothing written");
}

#[test]
fn a_card_pulled_mid_replay_is_personalized_by_the_retry() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "pulled", 1, Mode::Channel);
    let uid = batch.uids[0];
    let card = batch.blank(uid, false);
    let emulator = Mutex::new(batch.serve(&machine, &[&card]));
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());

    let config = batch.station_config(vec![CString::new(pcscd.reader(0)).unwrap()]);
    let shutdown = AtomicBool::new(false);
    let mut station = station::Station::open(config).unwrap();
    // Pull the card (kill its emulator) when half the steps are sent.
    let pulled_at = Mutex::new(None);
    let summary = station
        .run(&shutdown, &|event| {
            if let station::Event::Step { step, total, .. } = event
                && step == total / 2
            {
                let mut pulled = pulled_at.lock().unwrap();
                if pulled.is_none() {
                    emulator.lock().unwrap().signal("KILL").unwrap();
                    *pulled = Some(step);
                }
            }
        })
        .unwrap();
    assert_eq!((summary.personalized, summary.failed), (0, 1));
    let pulled = pulled_at.lock().unwrap().unwrap();
    match batch.store().card(uid).unwrap().unwrap().status {
        CardStatus::Failed {
            step: Some(step), ..
        } => assert!(
            step as usize >= pulled,
            "failed at {step}, pulled at {pulled}"
        ),
        other => panic!("{other:?}"),
    }
    let _ = emulator.lock().unwrap().wait(Duration::from_secs(5));
    assert_eq!(
        batch.load(&card).life_cycle,
        LifeCycle::Initialisation,
        "half personalized"
    );
    card_removed(&pcscd, 0);

    // Served again: the retry starts from the first step and completes.
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let summary = station.run(&shutdown, &|_| {}).unwrap();
    assert_eq!((summary.personalized, summary.failed), (1, 0));
    emulator.stop().unwrap();
    assert_eq!(batch.load(&card), batch.prepared(uid));
    let results: Vec<AuditResult> = batch
        .store()
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.result)
        .collect();
    assert_eq!(results, [AuditResult::Failed, AuditResult::Personalized]);
}

#[test]
fn a_plain_transcript_replays_onto_a_card_without_the_channel() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "plain", 1, Mode::Plain);
    let uid = batch.uids[0];
    let card = batch.blank(uid, true);
    assert_eq!(
        batch.load(&card).life_cycle,
        LifeCycle::Creation,
        "no channel keys"
    );
    let stored = batch.store().card(uid).unwrap().unwrap();
    assert!(
        matches!(stored.card.perso, StoredTranscript::Sealed(_)),
        "plain transcripts rest sealed"
    );
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());

    // Without the issuer key the station cannot open the sealed transcript.
    let station = |key: bool| {
        let mut command = personalizer();
        command
            .args(["station", "--once", "--store"])
            .arg(&batch.store)
            .arg("--trusted-key")
            .arg(&batch.trusted_key);
        if key {
            command.arg("--key-file").arg(&batch.key_file);
        }
        command.output().unwrap()
    };
    let without = station(false);
    assert_eq!(without.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&without.stdout);
    assert!(stdout.contains("give --key-file"), "{stdout}");
    let with = station(true);
    let stdout = String::from_utf8_lossy(&with.stdout);
    assert!(with.status.success(), "{stdout}");
    emulator.stop().unwrap();
    assert_eq!(batch.load(&card), batch.prepared(uid));
    assert_eq!(batch.load(&card).life_cycle, LifeCycle::Operational);
}

/// Runs `vsc-personalizer ARGS` (the store and trusted key of `batch` appended).
fn station_cli(batch: &Batch, args: &[&str]) -> std::process::Output {
    personalizer()
        .args(args)
        .arg("--store")
        .arg(&batch.store)
        .arg("--trusted-key")
        .arg(&batch.trusted_key)
        .output()
        .unwrap()
}

/// Issue 9, item 2: a card finished by an attempt the store never heard of (here: replayed by
/// hand, under this station's own claim) is recognized by its read-back and confirmed, not
/// failed forever on "already operational".
#[test]
fn an_operational_card_that_reads_back_as_its_image_is_confirmed() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "confirmed", 2, Mode::Channel);
    let uid = batch.uids[0];
    let card = batch.blank(uid, false);
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    // This station claimed the card, then "died" right after the last step.
    let claimant = vsc_personalizer::store::Claimant {
        station: "bench-1".into(),
        host: "h".into(),
        reader: pcscd.reader(0).into(),
    };
    batch
        .store()
        .claim(uid, &claimant, Duration::from_secs(600))
        .unwrap()
        .unwrap();
    let replayed = station_cli(
        &batch,
        &["replay", "--uid", &uid.to_string(), "--reader", "0"],
    );
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );

    // Another station: the lease holds, the card is refused.
    let other = station_cli(&batch, &["station", "--once", "--station-id", "bench-2"]);
    assert_eq!(other.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&other.stdout).contains("being personalized by bench-1"));
    // The station itself: its own claim, an operational card equal to its image.
    let own = station_cli(
        &batch,
        &["station", "--once", "--station-id", "bench-1", "--json"],
    );
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stdout)
    );
    let done: Vec<serde_json::Value> = String::from_utf8_lossy(&own.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "done")
        .collect();
    assert_eq!(done[0]["result"], "confirmed", "{done:?}");
    emulator.stop().unwrap();
    assert_eq!(
        batch.store().card(uid).unwrap().unwrap().status,
        CardStatus::Personalized
    );
    let results: Vec<AuditResult> = batch
        .store()
        .audit(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.result)
        .collect();
    // The claim that "died" after its last step is audited abandoned when its station takes the
    // card back (issue 11: one audit line per attempt).
    assert_eq!(
        results,
        [
            AuditResult::Refused,
            AuditResult::Abandoned,
            AuditResult::Confirmed
        ]
    );
}

/// Issue 9, item 3: a `--plain` card failing at its PIN step shows the PIN nowhere: not in the
/// station's output, not in the store's failure column.
#[test]
fn a_plain_card_failing_at_its_pin_step_shows_no_pin() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "plain-pin", 1, Mode::Plain);
    let uid = batch.uids[0];
    // A card maker's mistake: the card's PIN takes 7 characters at most, the transcript sends 8.
    let profile = batch.folder.join("short-pin.toml");
    let text = std::fs::read_to_string(demo("demo.toml")).unwrap();
    std::fs::write(
        &profile,
        text.replacen("max_length = 8\ntries = 3", "max_length = 7\ntries = 3", 1),
    )
    .unwrap();
    let card = batch.blank_of(&profile, uid, true);
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let output = personalizer()
        .args(["station", "--once", "--store"])
        .arg(&batch.store)
        .arg("--key-file")
        .arg(&batch.key_file)
        .output()
        .unwrap();
    emulator.stop().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let records = std::fs::read_to_string(demo("demo-records.csv")).unwrap();
    let pin = records.lines().nth(1).unwrap().rsplit(',').next().unwrap();
    let pin_hex = hex::encode_upper(pin.as_bytes());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("set the user PIN"), "{stdout}");
    assert!(stdout.contains("data bytes masked"), "{stdout}");
    let CardStatus::Failed { reason, .. } = batch.store().card(uid).unwrap().unwrap().status else {
        panic!("failed")
    };
    let audit = batch.store().audit(&AuditFilter::default()).unwrap();
    for shown in [
        stdout.as_ref(),
        reason.as_str(),
        audit[0].reason.as_deref().unwrap(),
    ] {
        assert!(!shown.contains(&pin_hex), "the PIN {pin} in {shown}");
    }
}

/// Issue 9, items 4 and 5: a scriptor script names its card, and the replay checks it; an error
/// status word fails the replay unless --unchecked.
#[test]
fn scriptor_replays_check_the_card_and_the_status_words() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "scriptor", 2, Mode::Plain);
    let (a, b) = (batch.uids[0], batch.uids[1]);
    let card_b = batch.blank(b, true);
    let before = batch.load(&card_b);
    let mut emulator = batch.serve(&machine, &[&card_b]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let script = batch.folder.join("a.scr");
    let export = personalizer()
        .args([
            "export",
            "scriptor",
            "--uid",
            &a.to_string(),
            "--clear",
            "--store",
        ])
        .arg(&batch.store)
        .arg("--key-file")
        .arg(&batch.key_file)
        .arg("--out")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let replay = personalizer()
        .args(["replay", "--reader", "0"])
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(
        stderr.contains(&format!("the card's UID is {b}, the transcript is for {a}")),
        "{stderr}"
    );

    let missing = batch.folder.join("missing.scr");
    std::fs::write(
        &missing,
        "# select a file that is not there\n00 A4 02 0C 02 6F 6F\n",
    )
    .unwrap();
    let checked = personalizer()
        .args(["replay", "--reader", "0"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("6A82 (file not found)"), "{stderr}");
    let unchecked = personalizer()
        .args(["replay", "--unchecked", "--reader", "0"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(
        unchecked.status.success(),
        "{}",
        String::from_utf8_lossy(&unchecked.stderr)
    );
    // --json: JSON Lines, the response masked and decoded, a `done` line last.
    let json = personalizer()
        .args(["replay", "--unchecked", "--json", "--reader", "0"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(json.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let response = events.iter().find(|e| e["event"] == "response").unwrap();
    assert_eq!(response["response"], "6A82 (file not found)");
    assert_eq!(events.last().unwrap()["event"], "done");
    emulator.stop().unwrap();
    assert_eq!(batch.load(&card_b), before, "nothing of A's data on B");
}

/// Issue 10: a store locked past the timeout is said ("waiting for the lock on …"), the card is
/// not attempted, and no audit line is written (least of all one for UID 0000000000000000).
#[test]
fn a_locked_store_leaves_the_card_untouched_and_writes_no_audit_line() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "locked", 1, Mode::Channel);
    let uid = batch.uids[0];
    let card = batch.blank(uid, false);
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let holder = rusqlite::Connection::open(&batch.store).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let output = station_cli(&batch, &["station", "--once", "--lock-timeout", "1"]);
    holder.execute_batch("ROLLBACK").unwrap();
    emulator.stop().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("waiting for the lock on"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("is locked by another process"), "{stdout}");
    assert!(
        batch
            .store()
            .audit(&AuditFilter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        batch.store().card(uid).unwrap().unwrap().status,
        CardStatus::Prepared
    );
    assert_eq!(batch.load(&card).life_cycle, LifeCycle::Initialisation);
}

/// Issue 10: a reader task that panics fails the station (it does not report "0 failed").
#[test]
fn a_panicked_reader_task_fails_the_station() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let batch = Batch::prepare(machine.scratch(), "panic", 1, Mode::Channel);
    let card = batch.blank(batch.uids[0], false);
    let mut emulator = batch.serve(&machine, &[&card]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());
    let config = batch.station_config(vec![CString::new(pcscd.reader(0)).unwrap()]);
    let mut station = station::Station::open(config).unwrap();
    let result = station.run(&AtomicBool::new(false), &|event| {
        if let station::Event::Inserted { .. } = event {
            panic!("a bug in a reader task");
        }
    });
    emulator.stop().unwrap();
    assert!(
        matches!(result, Err(station::StationError::Panicked { .. })),
        "{result:?}"
    );
}

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
        let out = self.folder.join(format!("blank-{uid}.vsc"));
        let mut command = personalizer();
        command
            .args(["blank", "--profile"])
            .arg(demo("demo.toml"))
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

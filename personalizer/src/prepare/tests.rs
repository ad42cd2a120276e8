//! Preparing the demo records into a store.

use std::io::Read;

use vsc_core::transcript::{Document, VerifyKey};

use super::*;
use crate::records;
use crate::store::{self, Access, CardStatus, MailerState, OpenOptions, StoreLocation};

fn demo_profile() -> Profile {
    Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/demo.toml"
    )))
    .unwrap()
}

fn demo_records() -> Box<dyn RecordSource> {
    records::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/demo-records.csv"
    ))
    .unwrap()
}

fn new_store(dir: &std::path::Path) -> Box<dyn Store> {
    store::open(
        &StoreLocation::Sqlite(dir.join("vsc.db")),
        &OpenOptions::new(Access::CreateOrMigrate),
    )
    .unwrap()
    .store
}

fn decrypt(path: &std::path::Path, identity: &age::x25519::Identity) -> String {
    let bytes = std::fs::read(path).unwrap();
    let decryptor = age::Decryptor::new(&bytes[..]).unwrap();
    let mut text = String::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("uid,record"),
        "encrypted on disk"
    );
    text
}

#[test]
fn the_demo_records_become_cards_and_pins() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[4; 32]);
    let mut store = new_store(dir.path());
    let identity = age::x25519::Identity::generate();
    let mut mailer = PinMailer::new(&dir.path().join("pins"), vec![identity.to_public()]).unwrap();
    let options = Options {
        batch: 7,
        ..Options::default()
    };
    let mut failures = Vec::new();
    let summary = run(
        &demo_profile(),
        demo_records().as_mut(),
        &master,
        store.as_mut(),
        Some(&mut mailer),
        &options,
        &mut |event| {
            if let Event::Failed(error) = event {
                failures.push(error.to_string());
            }
        },
    )
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(summary.prepared >= 20);
    assert_eq!(summary.failed, 0);
    let status = store.status().unwrap();
    assert_eq!(status.cards[0], ("prepared".to_string(), summary.prepared));

    // Every PIN mailer file decrypts; one line per card; each stored card names its file.
    let mut lines = 0;
    for file in mailer.files() {
        let text = decrypt(file, &identity);
        assert!(text.starts_with("uid,record,pin,puk\n"));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for line in text.lines().skip(1) {
            let uid = Uid::parse(line.split(',').next().unwrap()).unwrap();
            let stored = store.card(uid).unwrap().unwrap();
            assert_eq!(stored.mailer_file.as_deref(), Some(name.as_str()));
            lines += 1;
        }
    }
    assert_eq!(lines as u64, summary.prepared);
    assert_eq!(
        store.mailer_files(MailerState::Stored).unwrap().len(),
        mailer.files().len()
    );

    // A stored card: its image opens, its transcripts are signed and what the digests say.
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/demo-records.csv"
    ))
    .unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "uid").unwrap();
    let uid = Uid::parse(csv.lines().nth(1).unwrap().split(',').nth(column).unwrap()).unwrap();
    let first = store.card(uid).unwrap().unwrap();
    assert_eq!(first.status, CardStatus::Prepared);
    let state = image::decode(&first.card.image, &master).unwrap();
    assert_eq!(state.life_cycle, vsc_core::card::LifeCycle::Operational);
    let StoredTranscript::Packed(packed) = &first.card.perso else {
        panic!("compressed in clear")
    };
    assert!(
        packed.dictionary.is_some(),
        "against the profile's dictionary"
    );
    let perso = sealing::open(&first.card.perso, Kind::Personalization, uid, None).unwrap();
    let document = Document::parse(perso.as_str()).unwrap();
    assert_eq!(
        hex::encode_upper(document.digest.as_bytes()),
        first.card.perso_digest
    );
    let verify: VerifyKey = PreparationKey::derive(&master).verify_key();
    assert!(
        document.verify(&[verify]).is_ok(),
        "signed by the preparation key"
    );
    let opened = sealing::open(
        &first.card.preinit,
        Kind::PreInitialization,
        uid,
        Some(&master),
    )
    .unwrap();
    assert!(opened.as_str().contains("channel keys"));
    assert!(
        Document::parse(opened.as_str())
            .unwrap()
            .verify(&[verify])
            .is_ok()
    );

    // The same records again: every card is already there; with skip_existing, none fails.
    let mut failures = 0;
    let again = run(
        &demo_profile(),
        demo_records().as_mut(),
        &master,
        store.as_mut(),
        None,
        &options,
        &mut |event| {
            if let Event::Failed(CardError::AlreadyStored { .. }) = event {
                failures += 1;
            }
        },
    )
    .unwrap();
    assert_eq!((again.prepared, again.failed), (0, summary.prepared));
    assert_eq!(failures, summary.prepared);
    let resumed = run(
        &demo_profile(),
        demo_records().as_mut(),
        &master,
        store.as_mut(),
        None,
        &Options {
            skip_existing: true,
            ..options
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (resumed.prepared, resumed.failed, resumed.skipped),
        (0, 0, summary.prepared)
    );
}

#[test]
fn a_batch_that_never_reached_the_store_is_named_an_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let identity = age::x25519::Identity::generate();
    let folder = dir.path().join("pins");
    // A run that wrote its file and stopped before its commit (its lock goes with it).
    let mut dead = PinMailer::new(&folder, vec![identity.to_public()]).unwrap();
    let content_uids = [Uid([1; 8]), Uid([2; 8])];
    let rows: Vec<PinRow> = content_uids
        .iter()
        .map(|uid| PinRow::for_test(*uid))
        .collect();
    let name = dead.write_batch(store.as_mut(), rows.iter()).unwrap();
    drop(dead);
    assert!(folder.join(&name).exists());

    // A live run's pending file is left alone; a dead run's is an orphan.
    let mut live = PinMailer::new(&folder, vec![identity.to_public()]).unwrap();
    let live_name = live.write_batch(store.as_mut(), rows.iter()).unwrap();
    let mut next = PinMailer::new(&folder, vec![identity.to_public()]).unwrap();
    let orphans = next.reconcile(store.as_mut()).unwrap();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(orphans[0].name, name);
    assert_eq!(orphans[0].uids, content_uids);
    assert!(!folder.join(&name).exists());
    assert!(folder.join(format!("{name}.orphan")).exists());
    assert!(folder.join(&live_name).exists());
    assert_eq!(store.mailer_files(MailerState::Orphan).unwrap().len(), 1);
    assert_eq!(store.mailer_files(MailerState::Pending).unwrap().len(), 1);
    assert!(next.reconcile(store.as_mut()).unwrap().is_empty(), "once");
}

#[test]
fn workers_that_cannot_start_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let options = Options {
        jobs: 3,
        ..Options::default()
    };
    let refuse_third = |n: usize| {
        if n == 2 {
            Err(std::io::Error::other("Resource temporarily unavailable"))
        } else {
            Ok(())
        }
    };
    let error = run_with(
        &demo_profile(),
        demo_records().as_mut(),
        &MasterKey::from_bytes(&[4; 32]),
        store.as_mut(),
        None,
        &options,
        &mut |_| {},
        &refuse_third,
    )
    .unwrap_err();
    assert!(matches!(error, PrepareError::Spawn(_)), "{error}");
    assert!(!store.contains(Uid([0; 8])).unwrap());
    assert_eq!(store.status().unwrap().cards[0].1, 0, "nothing stored");
}

#[test]
fn bad_records_are_reported_and_the_rest_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("records.csv");
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/demo-records.csv"
    ))
    .unwrap();
    let mut lines: Vec<String> = good.lines().take(4).map(str::to_string).collect();
    // Line 3: a date that is not one.
    let mut fields: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let dob = header.iter().position(|h| *h == "date_of_birth").unwrap();
    fields[dob] = "1990-02-30".into();
    lines[2] = fields.join(",");
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let master = MasterKey::from_bytes(&[4; 32]);
    let mut store = new_store(dir.path());
    let mut messages = Vec::new();
    let summary = run(
        &demo_profile(),
        records::open(csv.to_str().unwrap()).unwrap().as_mut(),
        &master,
        store.as_mut(),
        None,
        &Options::default(),
        &mut |event| {
            if let Event::Failed(error) = event {
                messages.push(error.to_string());
            }
        },
    )
    .unwrap();
    assert_eq!((summary.prepared, summary.failed), (2, 1));
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("line 3") && messages[0].contains("date_of_birth"),
        "{messages:?}"
    );
}

//! Preparing the demo records into a store.

use std::io::Read;
use std::str::FromStr;

use super::*;
use crate::records;
use crate::store::{CardStatus, SqliteStore};

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

#[test]
fn the_demo_records_become_cards_and_pins() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::from_bytes(&[4; 32]);
    let mut store = SqliteStore::open(&dir.path().join("vsc.db")).unwrap();
    let identity = age::x25519::Identity::generate();
    let mut mailer = PinMailer::new(
        &dir.path().join("pins"),
        &[identity.to_public().to_string()],
    )
    .unwrap();
    let options = Options {
        batch: 7,
        ..Options::default()
    };
    let mut failures = Vec::new();
    let summary = run(
        &demo_profile(),
        demo_records().as_mut(),
        &master,
        &mut store,
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
    assert_eq!(
        store.counts().unwrap(),
        [("prepared".to_string(), summary.prepared)]
    );

    // Every PIN mailer file decrypts; one line per card.
    let mut lines = 0;
    for file in mailer.files() {
        let bytes = std::fs::read(file).unwrap();
        let decryptor = age::Decryptor::new(&bytes[..]).unwrap();
        let mut text = String::new();
        decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.starts_with("uid,record,pin,puk\n"));
        lines += text.lines().count() - 1;
        assert!(
            !String::from_utf8_lossy(&bytes).contains("uid,record"),
            "encrypted on disk"
        );
    }
    assert_eq!(lines as u64, summary.prepared);

    // A stored card: its image opens, its transcripts are what the digests say.
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
    let StoredTranscript::Clear(perso) = &first.card.perso else {
        panic!("clear")
    };
    let (_, digest) = vsc_core::transcript::Transcript::parse(perso)
        .unwrap()
        .encode();
    assert_eq!(
        hex::encode_upper(digest.as_bytes()),
        first.card.perso_digest
    );
    let StoredTranscript::Sealed(preinit) = &first.card.preinit else {
        panic!("sealed")
    };
    let opened = SealKey::derive(&master, SealedArea::Transcript, &first.card.uid.0)
        .open(
            &transcript_aad(Kind::PreInitialization, &first.card.uid.0),
            preinit,
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&opened).contains("channel keys"));

    // The same records again: every card is already there.
    let mut failures = 0;
    let again = run(
        &demo_profile(),
        demo_records().as_mut(),
        &master,
        &mut store,
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
    let mut store = SqliteStore::open(&dir.path().join("vsc.db")).unwrap();
    let mut messages = Vec::new();
    let summary = run(
        &demo_profile(),
        records::open(csv.to_str().unwrap()).unwrap().as_mut(),
        &master,
        &mut store,
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
    let _ = age::x25519::Recipient::from_str("not a recipient").is_err();
}

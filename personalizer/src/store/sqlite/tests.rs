//! The SQLite store's rules: whole batches, leased claims, the typed append-only audit log,
//! schema versions, file modes and lock waits.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use super::*;
use crate::store::{self, OpenOptions, Opened};

fn card(n: u8) -> PreparedCard {
    PreparedCard {
        uid: Uid([0x56, 0x53, 0x43, 0, 0, 0, 0, n]),
        profile_id: "demo".into(),
        profile_version: 3,
        image: vec![n; 100],
        preinit: StoredTranscript::Sealed(crate::store::SealedTranscript::new(vec![1, 2, 3])),
        preinit_digest: "AA".into(),
        perso: StoredTranscript::Clear("VSC-TRANSCRIPT 1\n".into()),
        perso_digest: "BB".into(),
    }
}

fn open(path: &Path, access: Access) -> Result<Opened, StoreError> {
    store::open(
        &StoreLocation::Sqlite(path.to_path_buf()),
        &OpenOptions::new(access),
    )
}

fn new_store() -> (tempfile::TempDir, Box<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let opened = open(&dir.path().join("vsc.db"), Access::CreateOrMigrate).unwrap();
    assert!(opened.created);
    (dir, opened.store)
}

fn insert(store: &mut dyn Store, cards: &[PreparedCard]) -> Result<(), StoreError> {
    store.insert_batch(&Batch {
        cards,
        mailer_file: None,
    })
}

fn claimant(station: &str, reader: &str) -> Claimant {
    Claimant {
        station: station.into(),
        host: "host".into(),
        reader: reader.into(),
    }
}

fn record(uid: Uid, station: &str, result: AuditResult) -> AuditRecord {
    AuditRecord {
        uid,
        station: station.into(),
        host: "host".into(),
        reader: "r".into(),
        transcript_digest: Some("BB".into()),
        result,
        failed_step: (result == AuditResult::Failed).then_some(7),
        reason: (result == AuditResult::Failed).then(|| "card removed".to_string()),
        started_at: now(),
        duration_ms: 1,
    }
}

#[test]
fn batches_go_in_whole_or_not_at_all() {
    let (_dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1), card(2)]).unwrap();
    let error = insert(store.as_mut(), &[card(3), card(2)]).unwrap_err();
    assert!(matches!(error.kind(), StoreErrorKind::Duplicate(uid) if *uid == card(2).uid));
    assert!(error.to_string().contains("vsc.db"), "{error}");
    assert!(
        !store.contains(card(3).uid).unwrap(),
        "the failed batch left nothing"
    );
    let stored = store.card(card(1).uid).unwrap().unwrap();
    assert_eq!(stored.card, card(1));
    assert_eq!(stored.status, CardStatus::Prepared);
    let status = store.status().unwrap();
    assert_eq!(status.cards[0], ("prepared".to_string(), 2));
    assert_eq!(status.schema_version, SCHEMA_VERSION);
}

#[test]
fn a_batch_names_its_announced_mailer_file() {
    let (_dir, mut store) = new_store();
    let file = MailerFile {
        name: "a.csv.age".into(),
        run: "run".into(),
        folder: "pin-mailer".into(),
        state: MailerState::Pending,
        uids: vec![card(1).uid],
    };
    let unannounced = store.insert_batch(&Batch {
        cards: &[card(1)],
        mailer_file: Some("a.csv.age"),
    });
    assert!(unannounced.is_err());
    store.announce_mailer_file(&file).unwrap();
    assert_eq!(
        store.mailer_files(MailerState::Pending).unwrap(),
        std::slice::from_ref(&file)
    );
    store
        .insert_batch(&Batch {
            cards: &[card(1)],
            mailer_file: Some("a.csv.age"),
        })
        .unwrap();
    assert!(store.mailer_files(MailerState::Pending).unwrap().is_empty());
    assert_eq!(store.mailer_files(MailerState::Stored).unwrap().len(), 1);
    let stored = store.card(card(1).uid).unwrap().unwrap();
    assert_eq!(stored.mailer_file.as_deref(), Some("a.csv.age"));

    let orphan = MailerFile {
        name: "b.csv.age".into(),
        uids: vec![card(2).uid],
        ..file
    };
    store.announce_mailer_file(&orphan).unwrap();
    store.mark_orphan("b.csv.age").unwrap();
    let orphans = store.mailer_files(MailerState::Orphan).unwrap();
    assert_eq!(orphans[0].uids, [card(2).uid]);
}

#[test]
fn a_card_is_claimed_once_under_a_lease() {
    let (_dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    let lease = Duration::from_secs(60);
    let claim = store
        .claim(uid, &claimant("a", "r0"), lease)
        .unwrap()
        .unwrap();
    assert_eq!(claim.previous, Previous::Prepared);
    assert!(claim.lease.expires_at_ms > now_ms());
    match store.claim(uid, &claimant("b", "r1"), lease).unwrap() {
        Err(ClaimRefused::ClaimedElsewhere { lease, .. }) => {
            assert_eq!((lease.station.as_str(), lease.reader.as_str()), ("a", "r0"));
        }
        other => panic!("{other:?}"),
    }
    // The same station recognizes its own earlier claim (say it was killed mid-card).
    let again = store
        .claim(uid, &claimant("a", "r1"), lease)
        .unwrap()
        .unwrap();
    assert_eq!(again.previous, Previous::OwnClaim);
    assert!(store.renew(uid, "a", lease).unwrap());
    assert!(!store.renew(uid, "b", lease).unwrap());

    store
        .finish_attempt(&record(uid, "a", AuditResult::Failed))
        .unwrap();
    assert_eq!(
        store.card(uid).unwrap().unwrap().status,
        CardStatus::Failed {
            step: Some(7),
            reason: "card removed".into()
        }
    );
    let retry = store
        .claim(uid, &claimant("b", "r1"), lease)
        .unwrap()
        .unwrap();
    assert_eq!(retry.previous, Previous::Failed);
    // Station a no longer holds the card: its ending is refused, and nothing is written.
    let lost = store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap_err();
    assert!(
        matches!(lost.kind(), StoreErrorKind::ClaimLost(_)),
        "{lost}"
    );
    store
        .finish_attempt(&record(uid, "b", AuditResult::Personalized))
        .unwrap();
    let results: Vec<AuditResult> = store
        .audit(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.result)
        .collect();
    // The first claim of station a never ended: its restart took the card over.
    assert_eq!(
        results,
        [
            AuditResult::Abandoned,
            AuditResult::Failed,
            AuditResult::Personalized
        ]
    );
    assert_eq!(
        store
            .claim(uid, &claimant("c", "x"), lease)
            .unwrap()
            .unwrap_err(),
        ClaimRefused::AlreadyPersonalized(uid)
    );
    let unknown = Uid([9; 8]);
    assert_eq!(
        store
            .claim(unknown, &claimant("c", "x"), lease)
            .unwrap()
            .unwrap_err(),
        ClaimRefused::Unknown(unknown)
    );
}

#[test]
fn an_ended_lease_leaves_the_card_to_another_station() {
    let (_dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("dead", "r0"), Duration::ZERO)
        .unwrap()
        .unwrap();
    let taken = store
        .claim(uid, &claimant("alive", "r1"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(matches!(taken.previous, Previous::ExpiredClaim(ref l) if l.station == "dead"));
    let status = store.status().unwrap();
    assert_eq!(status.claims.len(), 1);
    assert_eq!(status.claims[0].lease.station, "alive");
}

#[test]
fn a_release_by_hand_is_audited() {
    let (_dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    let operator = claimant("operator", "");
    assert_eq!(store.release(uid, &operator).unwrap(), None, "not claimed");
    store
        .claim(uid, &claimant("a", "r0"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let released = store.release(uid, &operator).unwrap().unwrap();
    assert_eq!(released.station, "a");
    assert!(matches!(
        store.card(uid).unwrap().unwrap().status,
        CardStatus::Failed { .. }
    ));
    let audit = store
        .audit(&AuditFilter {
            uid: Some(uid),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].result, AuditResult::Released);
    assert!(
        store.release(Uid([9; 8]), &operator).is_err(),
        "unknown card"
    );
}

#[test]
fn the_audit_log_is_append_only_and_filtered() {
    let (dir, mut store) = new_store();
    let mut refused = record(Uid([1; 8]), "s1", AuditResult::Refused);
    refused.transcript_digest = None;
    store.finish_attempt(&refused).unwrap();
    store
        .finish_attempt(&record(Uid([2; 8]), "s2", AuditResult::Refused))
        .unwrap();
    assert_eq!(store.audit(&AuditFilter::default()).unwrap()[0], refused);
    let only = AuditFilter {
        station: Some("s2".into()),
        ..AuditFilter::default()
    };
    assert_eq!(store.audit(&only).unwrap().len(), 1);
    let later = AuditFilter {
        since: Some("2999-01-01T00:00:00Z".into()),
        ..AuditFilter::default()
    };
    assert!(store.audit(&later).unwrap().is_empty());
    let connection = Connection::open(dir.path().join("vsc.db")).unwrap();
    assert!(connection.execute("DELETE FROM audit", []).is_err());
    assert!(
        connection
            .execute("UPDATE audit SET result = 'x'", [])
            .is_err()
    );
    let unknown = connection.execute(
        "INSERT INTO audit (uid, reader, station, transcript_digest, result, started_at, duration_ms) \
         VALUES ('0101010101010101', '', '', '', 'maybe', '', 0)",
        [],
    );
    assert!(unknown.is_err(), "only known results");
}

#[test]
fn a_missing_store_is_never_created_by_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let error = open(&path, Access::Existing).unwrap_err();
    assert!(matches!(error.kind(), StoreErrorKind::Missing));
    assert!(error.to_string().starts_with("no store at "), "{error}");
    assert!(!path.exists());
}

#[test]
fn a_new_store_is_private() {
    let (dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    for name in ["vsc.db", "vsc.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

#[test]
fn a_newer_schema_is_refused_and_an_older_one_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = open(&newer, Access::CreateOrMigrate).unwrap_err();
    assert!(matches!(
        error.kind(),
        StoreErrorKind::SchemaTooNew { found: 99, .. }
    ));

    // A store as version 1 of this program left it: a prepared card, a claimed one, an audit line.
    let older = dir.path().join("older.db");
    let connection = Connection::open(&older).unwrap();
    connection.execute_batch(schema::VERSION_1).unwrap();
    connection.pragma_update(None, "user_version", 1).unwrap();
    for (uid, status) in [
        ("5653430000000001", "prepared"),
        ("5653430000000002", "claimed"),
    ] {
        connection
            .execute(
                "INSERT INTO cards (uid, profile_id, profile_version, status, claimed_by, image, \
                 preinit_sealed, preinit, preinit_digest, perso_sealed, perso, perso_digest, \
                 created_at, updated_at) VALUES (?1, 'demo', 3, ?2, 's/r', x'00', 1, x'01', 'AA', \
                 0, CAST('text' AS BLOB), 'BB', 't', 't')",
                params![uid, status],
            )
            .unwrap();
    }
    connection
        .execute(
            "INSERT INTO audit (uid, reader, station, transcript_digest, result, failed_step, \
             started_at, duration_ms) VALUES ('5653430000000001', 'r', 's', '', 'refused', NULL, \
             't', 3)",
            [],
        )
        .unwrap();
    drop(connection);

    let error = open(&older, Access::Existing).unwrap_err();
    assert!(matches!(
        error.kind(),
        StoreErrorKind::SchemaTooOld { found: 1, .. }
    ));
    assert!(error.to_string().contains("store migrate"), "{error}");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&notices);
    let options =
        OpenOptions::new(Access::CreateOrMigrate).observer(Arc::new(move |n: &Notice| {
            heard.lock().unwrap().push(n.clone())
        }));
    let mut store = store::open(&StoreLocation::Sqlite(older.clone()), &options)
        .unwrap()
        .store;
    assert!(matches!(
        notices.lock().unwrap()[0],
        Notice::Migrated { from: 1, to: 3, .. }
    ));
    let card = store
        .card(Uid::parse("5653430000000001").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(card.status, CardStatus::Prepared);
    assert_eq!(card.card.perso, StoredTranscript::Clear("text".into()));
    // The claim of version 1 had no lease: any station may take the card.
    let claimed = Uid::parse("5653430000000002").unwrap();
    let taken = store
        .claim(claimed, &claimant("new", "r"), Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(matches!(taken.previous, Previous::ExpiredClaim(_)));
    let audit = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(audit[0].result, AuditResult::Refused);
    assert_eq!(audit[0].transcript_digest, None);
    assert_eq!(store.migrate().unwrap(), Migration { from: 3, to: 3 });
}

/// A store as version 2 of this program left it: its clear and sealed transcripts (text, not
/// compressed) still open after the migration to version 3, and its claim is audited when
/// taken over.
#[test]
fn a_version_2_store_keeps_its_transcripts_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let connection = Connection::open(&path).unwrap();
    for statements in schema::VERSION_2 {
        connection.execute_batch(statements).unwrap();
    }
    connection.pragma_update(None, "user_version", 2).unwrap();
    let master = vsc_core::crypto::MasterKey::from_bytes(&[7; 32]);
    let uid = Uid::parse("5653430000000001").unwrap();
    let sealed = vsc_core::crypto::SealKey::derive(
        &master,
        vsc_core::crypto::SealedArea::Transcript,
        uid.bytes(),
    )
    .seal(
        &crate::store::sealing::transcript_aad(vsc_core::transcript::Kind::PreInitialization, uid),
        b"VSC-TRANSCRIPT 2\nkind pre-initialization\n",
    );
    connection
        .execute(
            "INSERT INTO cards (uid, profile_id, profile_version, status, claimed_by, \
             claim_reader, claim_expires, image, preinit_sealed, preinit, preinit_digest, \
             perso_sealed, perso, perso_digest, created_at, updated_at) VALUES (?1, 'demo', 3, \
             'claimed', 'old', 'r', 0, x'00', 1, ?2, 'AA', 0, \
             CAST('VSC-TRANSCRIPT 2' AS BLOB), 'BB', 't', 't')",
            params![uid.to_string(), sealed],
        )
        .unwrap();
    drop(connection);
    let mut store = open(&path, Access::CreateOrMigrate).unwrap().store;
    let card = store.card(uid).unwrap().unwrap();
    assert_eq!(
        card.card.perso,
        StoredTranscript::Clear("VSC-TRANSCRIPT 2".into())
    );
    let preinit = crate::store::sealing::open(
        &card.card.preinit,
        vsc_core::transcript::Kind::PreInitialization,
        uid,
        Some(&master),
    )
    .unwrap();
    assert_eq!(
        preinit.as_str(),
        "VSC-TRANSCRIPT 2\nkind pre-initialization\n"
    );
    store
        .claim(uid, &claimant("new", "r1"), Duration::from_secs(5))
        .unwrap()
        .unwrap();
    let audit = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(
        (audit[0].result, audit[0].station.as_str()),
        (AuditResult::Abandoned, "old")
    );
}

/// Issue 11, item 2, for the embedded store too: the file itself refuses to personalize a card
/// twice, to change a personalized card, or to delete one.
#[test]
fn the_database_refuses_a_second_personalization() {
    let (dir, mut store) = new_store();
    insert(store.as_mut(), &[card(1), card(2)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("a", "r"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap();
    let connection = Connection::open(dir.path().join("vsc.db")).unwrap();
    for (statement, why) in [
        (
            "UPDATE cards SET status = 'prepared'",
            "never changes again",
        ),
        ("DELETE FROM cards", "never deleted"),
        (
            "UPDATE cards SET status = 'personalized' WHERE uid = '5653430000000002'",
            "only a claimed card",
        ),
        (
            "INSERT INTO audit (uid, reader, station, transcript_digest, result, started_at, \
             duration_ms) VALUES ('5653430000000002', '', '', '', 'personalized', '', 0)",
            "not personalized",
        ),
        (
            "INSERT INTO audit (uid, reader, station, transcript_digest, result, started_at, \
             duration_ms) VALUES ('5653430000000001', '', '', '', 'confirmed', '', 0)",
            "UNIQUE",
        ),
    ] {
        let error = connection.execute(statement, []).unwrap_err().to_string();
        assert!(error.contains(why), "{statement}: {error}");
    }
}

#[test]
fn a_held_lock_is_waited_for_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsc.db");
    drop(open(&path, Access::CreateOrMigrate).unwrap());
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&notices);
    let options = OpenOptions::new(Access::Existing)
        .lock_timeout(Duration::from_millis(1_200))
        .observer(Arc::new(move |n: &Notice| {
            heard.lock().unwrap().push(n.clone())
        }));
    let mut store = store::open(&StoreLocation::Sqlite(path.clone()), &options)
        .unwrap()
        .store;
    let started = Instant::now();
    let error = insert(store.as_mut(), &[card(1)]).unwrap_err();
    assert!(error.is_lock_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(1_200));
    let text = error.to_string();
    assert!(
        text.contains("vsc.db is locked by another process"),
        "{text}"
    );
    assert_eq!(text.matches("locked").count(), 1, "{text}");
    assert!(matches!(
        &notices.lock().unwrap()[..],
        [Notice::WaitingForLock { .. }]
    ));
    holder.execute_batch("ROLLBACK").unwrap();
    insert(store.as_mut(), &[card(1)]).unwrap();
}

#[test]
fn a_store_that_was_created_and_never_filled_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsc.db");
    let opened = open(&path, Access::CreateOrMigrate).unwrap();
    assert!(path.exists());
    store::discard_new(opened).unwrap();
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing left"
    );
}

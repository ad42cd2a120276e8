//! The PostgreSQL store's rules, against the server of the machine (`VSC_TEST_POSTGRES`, by
//! default `host=/var/run/postgresql user=postgres`): each test makes a database of its own and
//! drops it, even when it fails. A server that cannot be reached fails the test, saying why.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use ::postgres::{Client, NoTls};

use super::*;
use crate::store::{self, OpenOptions, Opened};

/// Where the tests' server is, as an administrator (a keyword string without `dbname`).
fn admin() -> String {
    std::env::var("VSC_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=/var/run/postgresql user=postgres".to_string())
}

fn admin_client(dbname: &str) -> Client {
    let text = format!("{} dbname={dbname}", admin());
    Client::connect(&text, NoTls).unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is not reachable at {text:?}: {} (these tests need a server: \
             scripts/setup starts one; VSC_TEST_POSTGRES names another)",
            super::super::error::postgres_message(&error)
        )
    })
}

/// A database of this test's own, dropped on drop.
struct Database {
    name: String,
}

impl Database {
    fn new() -> Database {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vsc_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        admin_client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Database { name }
    }

    fn text(&self) -> String {
        format!("{} dbname={}", admin(), self.name)
    }

    fn location(&self) -> StoreLocation {
        StoreLocation::parse(&self.text()).unwrap()
    }

    fn open(&self, access: Access) -> Result<Opened, StoreError> {
        store::open(
            &self.location(),
            &OpenOptions::new(access).lock_timeout(Duration::from_secs(3)),
        )
    }

    fn store(&self) -> Box<dyn Store> {
        self.open(Access::CreateOrMigrate).unwrap().store
    }

    fn sql(&self) -> Client {
        admin_client(&self.name)
    }

    /// Ends every session of this database but the caller's.
    fn terminate_sessions(&self) -> u64 {
        admin_client("postgres")
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .unwrap()
            .get::<_, i64>(0) as u64
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Two statements: DROP DATABASE cannot run in the transaction of a multi-statement
        // query.
        let mut admin = admin_client("postgres");
        let _ = admin.batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ));
        let dropped = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(error) = dropped
            && !std::thread::panicking()
        {
            panic!("dropping {}: {error}", self.name);
        }
    }
}

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

fn insert(store: &mut dyn Store, cards: &[PreparedCard]) -> Result<(), StoreError> {
    store.insert_batch(&Batch {
        cards,
        mailer_file: None,
    })
}

fn claimant(station: &str, reader: &str) -> Claimant {
    Claimant {
        station: station.into(),
        host: format!("{station}-host"),
        reader: reader.into(),
    }
}

fn record(uid: Uid, station: &str, result: AuditResult) -> AuditRecord {
    AuditRecord {
        uid,
        station: station.into(),
        host: format!("{station}-host"),
        reader: "r".into(),
        transcript_digest: Some("BB".into()),
        result,
        failed_step: (result == AuditResult::Failed).then_some(7),
        reason: (result == AuditResult::Failed).then(|| "card removed".to_string()),
        started_at: crate::store::now(),
        duration_ms: 1,
    }
}

#[test]
fn batches_are_copied_in_whole_or_not_at_all() {
    let db = Database::new();
    let mut store = db.store();
    let dictionary = store
        .add_dictionary("demo", 3, Kind::Personalization, "VSC-TRANSCRIPT 1\n# a")
        .unwrap();
    let mut packed = card(1);
    packed.perso = StoredTranscript::pack("VSC-TRANSCRIPT 1\n# b", Some(&dictionary));
    insert(store.as_mut(), &[packed.clone(), card(2)]).unwrap();
    let error = insert(store.as_mut(), &[card(3), card(2)]).unwrap_err();
    assert!(
        matches!(error.kind(), StoreErrorKind::Duplicate(uid) if *uid == card(2).uid),
        "{error}"
    );
    assert!(error.to_string().contains(&db.name), "{error}");
    assert!(
        !store.contains(card(3).uid).unwrap(),
        "nothing of the batch"
    );
    assert_eq!(
        store
            .existing(&[card(1).uid, card(3).uid, card(2).uid])
            .unwrap(),
        [card(1).uid, card(2).uid]
    );
    // Read by another connection (no cached dictionary): the same card, its dictionary found.
    let mut other = db.open(Access::Existing).unwrap().store;
    let stored = other.card(card(1).uid).unwrap().unwrap();
    assert_eq!(stored.card, packed);
    let opened = crate::store::sealing::open(
        &stored.card.perso,
        vsc_core::transcript::Kind::Personalization,
        card(1).uid,
        None,
    )
    .unwrap();
    assert_eq!(opened.as_str(), "VSC-TRANSCRIPT 1\n# b");
    assert_eq!(
        other
            .dictionary("demo", 3, Kind::Personalization)
            .unwrap()
            .unwrap()
            .text(),
        dictionary.text()
    );
    assert!(
        other
            .dictionary("demo", 4, Kind::Personalization)
            .unwrap()
            .is_none()
    );
    assert_eq!(stored.status, CardStatus::Prepared);
    let status = other.status().unwrap();
    assert_eq!(status.cards[0], ("prepared".to_string(), 2));
    assert_eq!(status.backend, "PostgreSQL");
    assert_eq!(status.schema_version, SCHEMA_VERSION);
}

#[test]
fn a_batch_names_its_announced_mailer_file() {
    let db = Database::new();
    let mut store = db.store();
    let file = MailerFile {
        name: "a.csv.age".into(),
        run: "run".into(),
        folder: "pin-mailer".into(),
        state: MailerState::Pending,
        uids: vec![card(1).uid],
    };
    let batch = Batch {
        cards: &[card(1)],
        mailer_file: Some("a.csv.age"),
    };
    assert!(store.insert_batch(&batch).is_err(), "never announced");
    store.announce_mailer_file(&file).unwrap();
    assert_eq!(
        store.mailer_files(MailerState::Pending).unwrap(),
        std::slice::from_ref(&file)
    );
    store.insert_batch(&batch).unwrap();
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
    assert_eq!(
        store.mailer_files(MailerState::Orphan).unwrap()[0].uids,
        [card(2).uid]
    );
}

#[test]
fn a_card_is_claimed_once_under_a_lease() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    let lease = Duration::from_secs(60);
    let claim = store
        .claim(uid, &claimant("a", "r0"), lease)
        .unwrap()
        .unwrap();
    assert_eq!(claim.previous, Previous::Prepared);
    assert_eq!(claim.card.card, card(1));
    let left = claim.lease.expires_at_ms - crate::store::now_ms();
    assert!((50_000..70_000).contains(&left), "{left} ms");
    match store.claim(uid, &claimant("b", "r1"), lease).unwrap() {
        Err(ClaimRefused::ClaimedElsewhere { lease, .. }) => {
            assert_eq!((lease.station.as_str(), lease.reader.as_str()), ("a", "r0"));
        }
        other => panic!("{other:?}"),
    }
    // The same station started again: its earlier attempt is audited as abandoned.
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
    let audit = store.audit(&AuditFilter::default()).unwrap();
    let results: Vec<(AuditResult, &str)> = audit
        .iter()
        .map(|r| (r.result, r.station.as_str()))
        .collect();
    assert_eq!(
        results,
        [
            (AuditResult::Abandoned, "a"),
            (AuditResult::Failed, "a"),
            (AuditResult::Personalized, "b")
        ]
    );
    assert_eq!(audit[0].reader, "r0");
    assert_eq!(audit[0].host, "a-host");
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
    assert!(matches!(
        store
            .finish_attempt(&record(unknown, "c", AuditResult::Failed))
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound(_)
    ));
}

#[test]
fn an_ended_lease_leaves_the_card_to_another_station_and_audits_the_dead_attempt() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("dead", "r0"), Duration::from_millis(300))
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .claim(uid, &claimant("alive", "r1"), Duration::from_secs(60))
            .unwrap(),
        Err(ClaimRefused::ClaimedElsewhere { .. })
    ));
    let status = store.status().unwrap();
    assert!(status.claims[0].remaining_ms > 0);
    std::thread::sleep(Duration::from_millis(400));
    let status = store.status().unwrap();
    assert!(status.claims[0].remaining_ms <= 0, "{:?}", status.claims);
    let taken = store
        .claim(uid, &claimant("alive", "r1"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(matches!(taken.previous, Previous::ExpiredClaim(ref l) if l.station == "dead"));
    let audit = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].result, AuditResult::Abandoned);
    assert_eq!(audit[0].station, "dead");
    assert!(audit[0].duration_ms >= 300, "{:?}", audit[0]);
    assert!(
        audit[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("alive took the card")
    );
    // The dead station's late ending is refused, and writes nothing.
    assert!(matches!(
        store
            .finish_attempt(&record(uid, "dead", AuditResult::Personalized))
            .unwrap_err()
            .kind(),
        StoreErrorKind::ClaimLost(_)
    ));
    assert_eq!(store.audit(&AuditFilter::default()).unwrap().len(), 1);
}

#[test]
fn eight_stations_racing_for_one_card_give_it_to_one() {
    let db = Database::new();
    insert(db.store().as_mut(), &[card(1)]).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let winners = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for n in 0..8 {
            let (db, barrier, winners) = (&db, Arc::clone(&barrier), Arc::clone(&winners));
            scope.spawn(move || {
                let mut store = db.open(Access::Existing).unwrap().store;
                barrier.wait();
                let station = format!("s{n}");
                if let Ok(claim) = store
                    .claim(
                        card(1).uid,
                        &claimant(&station, "r"),
                        Duration::from_secs(60),
                    )
                    .unwrap()
                {
                    winners.lock().unwrap().push(claim.lease.station);
                }
            });
        }
    });
    assert_eq!(winners.lock().unwrap().len(), 1, "{winners:?}");
}

#[test]
fn a_release_by_hand_is_audited() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    let operator = claimant("operator", "");
    assert_eq!(store.release(uid, &operator).unwrap(), None);
    store
        .claim(uid, &claimant("a", "r0"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(store.release(uid, &operator).unwrap().unwrap().station, "a");
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
    assert!(store.release(Uid([9; 8]), &operator).is_err());
}

#[test]
fn the_audit_log_is_filtered() {
    let db = Database::new();
    let mut store = db.store();
    let mut refused = record(Uid([1; 8]), "s1", AuditResult::Refused);
    refused.transcript_digest = None;
    refused.started_at = "2026-01-31T10:00:00.25Z".into();
    store.finish_attempt(&refused).unwrap();
    store
        .finish_attempt(&record(Uid([2; 8]), "s2", AuditResult::Refused))
        .unwrap();
    assert_eq!(store.audit(&AuditFilter::default()).unwrap()[0], refused);
    let mut only = |filter: AuditFilter| store.audit(&filter).unwrap().len();
    assert_eq!(
        only(AuditFilter {
            station: Some("s2".into()),
            ..AuditFilter::default()
        }),
        1
    );
    assert_eq!(
        only(AuditFilter {
            uid: Some(Uid([1; 8])),
            ..AuditFilter::default()
        }),
        1
    );
    assert_eq!(
        only(AuditFilter {
            since: Some("2026-02-01T00:00:00Z".into()),
            ..AuditFilter::default()
        }),
        1
    );
    let error = store
        .audit(&AuditFilter {
            since: Some("yesterday".into()),
            ..AuditFilter::default()
        })
        .unwrap_err();
    assert!(error.to_string().contains("RFC 3339"), "{error}");
}

/// Item 2: the audit table is append-only in the database, for its owner (triggers) and for
/// the stations' role (no privilege at all); a card is personalized at most once, by the
/// database's own rules.
#[test]
fn the_database_keeps_the_audit_log_and_the_cards_honest() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1), card(2)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("a", "r"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap();
    let mut sql = db.sql();
    let refused = |sql: &mut Client, statement: &str| -> String {
        let error = sql.batch_execute(statement).unwrap_err();
        super::super::error::postgres_message(&error)
    };
    for statement in [
        "UPDATE vsc.audit SET result = 'failed'",
        "DELETE FROM vsc.audit",
        "TRUNCATE vsc.audit",
    ] {
        let why = refused(&mut sql, statement);
        assert!(why.contains("append-only"), "{statement}: {why}");
    }
    let why = refused(&mut sql, "UPDATE vsc.cards SET status = 'prepared'");
    assert!(why.contains("never changes again"), "{why}");
    let why = refused(&mut sql, "DELETE FROM vsc.cards");
    assert!(why.contains("never deleted"), "{why}");
    let why = refused(
        &mut sql,
        "UPDATE vsc.cards SET status = 'personalized' WHERE uid = '5653430000000002'",
    );
    assert!(why.contains("only a claimed card"), "{why}");
    let why = refused(
        &mut sql,
        "INSERT INTO vsc.audit (uid, station, host, reader, result, started_at, duration_ms) \
         VALUES ('5653430000000001', 'x', 'h', 'r', 'confirmed', now(), 0)",
    );
    assert!(why.contains("audit_personalized_once"), "{why}");
    let why = refused(
        &mut sql,
        "INSERT INTO vsc.audit (uid, station, host, reader, result, started_at, duration_ms) \
         VALUES ('5653430000000002', 'x', 'h', 'r', 'personalized', now(), 0)",
    );
    assert!(why.contains("is not personalized"), "{why}");
    let why = refused(
        &mut sql,
        "INSERT INTO vsc.audit (uid, station, host, reader, result, started_at, duration_ms) \
         VALUES ('5653430000000002', 'x', 'h', 'r', 'maybe', now(), 0)",
    );
    assert!(why.contains("audit_result_check"), "{why}");

    // The stations' role: no UPDATE or DELETE of the audit log at all, nor of what preparation
    // made; it may claim and append.
    sql.batch_execute("SET ROLE vsc_station").unwrap();
    for statement in [
        "UPDATE vsc.audit SET reason = 'x'",
        "DELETE FROM vsc.audit",
        "TRUNCATE vsc.audit",
        "UPDATE vsc.cards SET image = '\\x00'",
        "DELETE FROM vsc.cards",
        "INSERT INTO vsc.cards (uid, profile_id, profile_version, status, image, preinit_sealed, \
         preinit, preinit_digest, perso_sealed, perso, perso_digest) VALUES \
         ('5653430000000009', 'p', 1, 'prepared', '', false, '', '', false, '', '')",
    ] {
        let why = refused(&mut sql, statement);
        assert!(why.contains("permission denied"), "{statement}: {why}");
    }
    sql.batch_execute(
        "UPDATE vsc.cards SET status = 'claimed', claimed_by = 'x', claim_expires = now() \
         WHERE uid = '5653430000000002'; \
         INSERT INTO vsc.audit (uid, station, host, reader, result, started_at, duration_ms) \
         VALUES ('5653430000000002', 'x', 'h', 'r', 'refused', now(), 0)",
    )
    .unwrap();
    sql.batch_execute("RESET ROLE; SET ROLE vsc_preparation")
        .unwrap();
    let why = refused(&mut sql, "UPDATE vsc.cards SET failure = 'x'");
    assert!(why.contains("permission denied"), "{why}");
    let why = refused(&mut sql, "DELETE FROM vsc.audit");
    assert!(why.contains("permission denied"), "{why}");
}

/// A station whose session is ended (the server restarted, or pg_terminate_backend) gets a
/// new connection on its next call, and its ending is written once.
#[test]
fn a_broken_connection_is_reopened_and_the_ending_written_once() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("a", "r"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(db.terminate_sessions() >= 1);
    assert!(store.renew(uid, "a", Duration::from_secs(60)).unwrap());
    db.terminate_sessions();
    store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap();
    assert_eq!(
        store.card(uid).unwrap().unwrap().status,
        CardStatus::Personalized
    );
    assert_eq!(store.audit(&AuditFilter::default()).unwrap().len(), 1);
}

/// A server that stays away: the call gives up after the lock timeout, saying so, and the
/// card keeps its claim.
#[test]
fn a_server_that_stays_away_is_unreachable_after_the_lock_timeout() {
    let db = Database::new();
    let mut store = db.store();
    insert(store.as_mut(), &[card(1)]).unwrap();
    let uid = card(1).uid;
    store
        .claim(uid, &claimant("a", "r"), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    admin_client("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            db.name
        ))
        .unwrap();
    db.terminate_sessions();
    let started = Instant::now();
    let error = store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(error.to_string().contains("cannot be reached"), "{error}");
    admin_client("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ))
        .unwrap();
    assert!(matches!(
        store.card(uid).unwrap().unwrap().status,
        CardStatus::Claimed(_)
    ));
    store
        .finish_attempt(&record(uid, "a", AuditResult::Personalized))
        .unwrap();
}

#[test]
fn a_missing_store_is_never_created_by_a_reader() {
    let db = Database::new();
    let error = db.open(Access::Existing).unwrap_err();
    assert!(matches!(error.kind(), StoreErrorKind::Missing), "{error}");
    let exists: bool = db
        .sql()
        .query_one("SELECT to_regnamespace('vsc') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!exists);
    let missing =
        StoreLocation::parse(&format!("{} dbname=vsc_no_such_database", admin())).unwrap();
    let error = store::open(&missing, &OpenOptions::new(Access::CreateOrMigrate)).unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[test]
fn a_newer_schema_is_refused_and_migrations_run_once() {
    let db = Database::new();
    // Two processes migrating a new store at once: one creates it, both end at the version.
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| db.open(Access::CreateOrMigrate).map(|o| o.created)))
            .collect();
        for run in runs {
            run.join().unwrap().unwrap();
        }
    });
    let mut store = db.store();
    assert_eq!(
        store.migrate().unwrap(),
        Migration {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    db.sql()
        .batch_execute("UPDATE vsc.schema_version SET version = 99")
        .unwrap();
    let error = db.open(Access::CreateOrMigrate).unwrap_err();
    assert!(matches!(
        error.kind(),
        StoreErrorKind::SchemaTooNew { found: 99, .. }
    ));
}

#[test]
fn a_store_that_was_created_and_never_filled_is_discarded() {
    let db = Database::new();
    let opened = db.open(Access::CreateOrMigrate).unwrap();
    assert!(opened.created);
    store::discard_new(opened).unwrap();
    assert!(matches!(
        db.open(Access::Existing).unwrap_err().kind(),
        StoreErrorKind::Missing
    ));
    let mut filled = db.open(Access::CreateOrMigrate).unwrap();
    insert(filled.store.as_mut(), &[card(1)]).unwrap();
    store::discard_new(filled).unwrap();
    assert!(
        db.store().contains(card(1).uid).unwrap(),
        "a used store stays"
    );
}

/// TLS settings: `sslmode=disable` and `prefer` reach the server over its Unix socket (no TLS
/// there), as URLs and as keyword strings.
#[test]
fn sslmode_disable_and_prefer_connect_over_the_socket() {
    let db = Database::new();
    drop(db.store());
    let user = admin()
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("user="))
        .unwrap_or("postgres")
        .to_string();
    for mode in ["disable", "prefer", "allow"] {
        for text in [
            format!(
                "postgres://{user}@%2Fvar%2Frun%2Fpostgresql/{}?sslmode={mode}",
                db.name
            ),
            format!(
                "postgresql:///{}?host=/var/run/postgresql&user={user}&sslmode={mode}",
                db.name
            ),
            format!(
                "host=/var/run/postgresql user={user} dbname={} sslmode={mode}",
                db.name
            ),
        ] {
            let location = StoreLocation::parse(&text).unwrap();
            let mut store = store::open(&location, &OpenOptions::new(Access::Existing))
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .store;
            assert_eq!(store.status().unwrap().backend, "PostgreSQL", "{text}");
        }
    }
}

//! The SQLite store: one file, no server; WAL journal and full synchronous commits, so a crash
//! never loses a committed batch or a status change.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    AuditRecord, CardStatus, ClaimRefused, Ending, PreparedCard, Store, StoreError, StoredCard,
    StoredTranscript, Uid, now,
};

/// The schema version this program writes (`PRAGMA user_version`).
const SCHEMA_VERSION: u32 = 1;

const SCHEMA: &str = "
CREATE TABLE cards (
    id                INTEGER PRIMARY KEY,
    uid               TEXT NOT NULL UNIQUE,
    profile_id        TEXT NOT NULL,
    profile_version   INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('prepared', 'claimed', 'personalized', 'failed')),
    claimed_by        TEXT,
    failed_step       INTEGER,
    failure           TEXT,
    image             BLOB NOT NULL,
    preinit_sealed    INTEGER NOT NULL,
    preinit           BLOB NOT NULL,
    preinit_digest    TEXT NOT NULL,
    perso_sealed      INTEGER NOT NULL,
    perso             BLOB NOT NULL,
    perso_digest      TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX cards_status ON cards (status);
CREATE TABLE audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT NOT NULL,
    reader            TEXT NOT NULL,
    station           TEXT NOT NULL,
    transcript_digest TEXT NOT NULL,
    result            TEXT NOT NULL,
    failed_step       INTEGER,
    started_at        TEXT NOT NULL,
    duration_ms       INTEGER NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

const CARD_COLUMNS: &str = "uid, profile_id, profile_version, status, claimed_by, failed_step, failure, image, \
     preinit_sealed, preinit, preinit_digest, perso_sealed, perso, perso_digest, created_at, updated_at";

/// A store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
}

impl SqliteStore {
    /// Opens the store at `path`, creating it if it does not exist.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let connection = Connection::open(path)?;
        // Station tasks contend for the write lock a few milliseconds at a time: retry every
        // 200 µs (SQLite's own timeout sleeps whole milliseconds, growing), for up to 10 s.
        connection.busy_handler(Some(|retries| {
            std::thread::sleep(Duration::from_micros(200));
            retries < 50_000
        }))?;
        // Cards are a few KB each: large pages mean fewer overflow pages and system calls. The
        // page size takes effect only on a new database, before its journal mode is set.
        connection.pragma_update(None, "page_size", 16_384)?;
        connection.pragma_update(None, "cache_size", -32_768)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        let version: u32 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        match version {
            0 => {
                let tx = connection.unchecked_transaction()?;
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            SCHEMA_VERSION => {}
            found => {
                return Err(StoreError::Schema {
                    found: found.to_string(),
                    supported: SCHEMA_VERSION,
                });
            }
        }
        Ok(SqliteStore { connection })
    }

    fn card_from_row(row: &Row<'_>) -> rusqlite::Result<(StoredCard, String)> {
        let uid_text: String = row.get("uid")?;
        let transcript = |sealed: &str, column: &str| -> rusqlite::Result<StoredTranscript> {
            let bytes: Vec<u8> = row.get(column)?;
            Ok(if row.get::<_, bool>(sealed)? {
                StoredTranscript::Sealed(bytes)
            } else {
                StoredTranscript::Clear(String::from_utf8_lossy(&bytes).into_owned())
            })
        };
        let status = match row.get::<_, String>("status")?.as_str() {
            "prepared" => CardStatus::Prepared,
            "claimed" => CardStatus::Claimed {
                by: row
                    .get::<_, Option<String>>("claimed_by")?
                    .unwrap_or_default(),
            },
            "personalized" => CardStatus::Personalized,
            _ => CardStatus::Failed {
                step: row.get("failed_step")?,
                reason: row.get::<_, Option<String>>("failure")?.unwrap_or_default(),
            },
        };
        let card = PreparedCard {
            uid: Uid([0; 8]),
            profile_id: row.get("profile_id")?,
            profile_version: row.get("profile_version")?,
            image: row.get("image")?,
            preinit: transcript("preinit_sealed", "preinit")?,
            preinit_digest: row.get("preinit_digest")?,
            perso: transcript("perso_sealed", "perso")?,
            perso_digest: row.get("perso_digest")?,
        };
        Ok((
            StoredCard {
                card,
                status,
                created_at: row.get("created_at")?,
                updated_at: row.get("updated_at")?,
            },
            uid_text,
        ))
    }

    fn read_card(connection: &Connection, uid: Uid) -> Result<Option<StoredCard>, StoreError> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE uid = ?1");
        let found = connection
            .prepare_cached(&sql)?
            .query_row(params![uid.to_string()], Self::card_from_row)
            .optional()?;
        match found {
            None => Ok(None),
            Some((mut stored, uid_text)) => {
                stored.card.uid = Uid::parse(&uid_text).map_err(|_| StoreError::Corrupt {
                    uid: uid_text,
                    what: "UID",
                })?;
                Ok(Some(stored))
            }
        }
    }

    fn set_status(
        connection: &Connection,
        uid: Uid,
        status: &str,
        step: Option<u32>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let changed = connection.prepare_cached(
            "UPDATE cards SET status = ?2, failed_step = ?3, failure = ?4, claimed_by = NULL, updated_at = ?5 WHERE uid = ?1",
        )?
        .execute(params![uid.to_string(), status, step, reason, now()])?;
        if changed == 0 {
            Err(StoreError::NotFound(uid))
        } else {
            Ok(())
        }
    }
}

fn transcript_columns(transcript: &StoredTranscript) -> (bool, &[u8]) {
    match transcript {
        StoredTranscript::Clear(text) => (false, text.as_bytes()),
        StoredTranscript::Sealed(bytes) => (true, bytes),
    }
}

impl Store for SqliteStore {
    fn insert_batch(&mut self, cards: &[PreparedCard]) -> Result<(), StoreError> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO cards ({CARD_COLUMNS}) VALUES (?1, ?2, ?3, 'prepared', NULL, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"
            ))?;
            let created = now();
            for card in cards {
                let (preinit_sealed, preinit) = transcript_columns(&card.preinit);
                let (perso_sealed, perso) = transcript_columns(&card.perso);
                let result = insert.execute(params![
                    card.uid.to_string(),
                    card.profile_id,
                    card.profile_version,
                    card.image,
                    preinit_sealed,
                    preinit,
                    card.preinit_digest,
                    perso_sealed,
                    perso,
                    card.perso_digest,
                    created,
                ]);
                match result {
                    Ok(_) => {}
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        return Err(StoreError::Duplicate(card.uid));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn contains(&mut self, uid: Uid) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .prepare_cached("SELECT 1 FROM cards WHERE uid = ?1")?
            .exists(params![uid.to_string()])?)
    }

    fn card(&mut self, uid: Uid) -> Result<Option<StoredCard>, StoreError> {
        Self::read_card(&self.connection, uid)
    }

    fn counts(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT status, COUNT(*) FROM cards GROUP BY status ORDER BY status")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn claim(
        &mut self,
        uid: Uid,
        by: &str,
    ) -> Result<Result<StoredCard, ClaimRefused>, StoreError> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(mut stored) = Self::read_card(&tx, uid)? else {
            return Ok(Err(ClaimRefused::Unknown(uid)));
        };
        match stored.status {
            CardStatus::Prepared | CardStatus::Failed { .. } => {}
            CardStatus::Personalized => return Ok(Err(ClaimRefused::AlreadyPersonalized(uid))),
            CardStatus::Claimed { by: other } => {
                return Ok(Err(ClaimRefused::ClaimedElsewhere { uid, by: other }));
            }
        }
        let updated = now();
        tx.prepare_cached(
            "UPDATE cards SET status = 'claimed', claimed_by = ?2, updated_at = ?3 WHERE uid = ?1",
        )?
        .execute(params![uid.to_string(), by, updated])?;
        tx.commit()?;
        stored.status = CardStatus::Claimed { by: by.to_string() };
        stored.updated_at = updated;
        Ok(Ok(stored))
    }

    fn finish_attempt(&mut self, ending: &Ending, record: &AuditRecord) -> Result<(), StoreError> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        match ending {
            Ending::Personalized => Self::set_status(&tx, record.uid, "personalized", None, None)?,
            Ending::Failed { step, reason } => {
                Self::set_status(&tx, record.uid, "failed", *step, Some(reason))?;
            }
            Ending::Refused => {}
        }
        tx.prepare_cached(
                "INSERT INTO audit (uid, reader, station, transcript_digest, result, failed_step, started_at, duration_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                record.uid.to_string(),
                record.reader,
                record.station,
                record.transcript_digest,
                record.result,
                record.failed_step,
                record.started_at,
                record.duration_ms,
            ])?;
        tx.commit()?;
        Ok(())
    }

    fn audit_log(&mut self) -> Result<Vec<AuditRecord>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT uid, reader, station, transcript_digest, result, failed_step, started_at, duration_ms FROM audit ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            let uid: String = row.get(0)?;
            Ok((
                uid,
                AuditRecord {
                    uid: Uid([0; 8]),
                    reader: row.get(1)?,
                    station: row.get(2)?,
                    transcript_digest: row.get(3)?,
                    result: row.get(4)?,
                    failed_step: row.get(5)?,
                    started_at: row.get(6)?,
                    duration_ms: row.get(7)?,
                },
            ))
        })?;
        rows.map(|row| {
            let (uid, mut record) = row?;
            record.uid = Uid::parse(&uid).map_err(|_| StoreError::Corrupt { uid, what: "UID" })?;
            Ok(record)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: u8) -> PreparedCard {
        PreparedCard {
            uid: Uid([0x56, 0x53, 0x43, 0, 0, 0, 0, n]),
            profile_id: "demo".into(),
            profile_version: 3,
            image: vec![n; 100],
            preinit: StoredTranscript::Sealed(vec![1, 2, 3]),
            preinit_digest: "aa".into(),
            perso: StoredTranscript::Clear("vsct 1\n".into()),
            perso_digest: "bb".into(),
        }
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("vsc.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn batches_go_in_whole_or_not_at_all() {
        let (_dir, mut store) = store();
        store.insert_batch(&[card(1), card(2)]).unwrap();
        let error = store.insert_batch(&[card(3), card(2)]).unwrap_err();
        assert!(matches!(error, StoreError::Duplicate(uid) if uid == card(2).uid));
        assert!(
            !store.contains(card(3).uid).unwrap(),
            "the failed batch left nothing"
        );
        let stored = store.card(card(1).uid).unwrap().unwrap();
        assert_eq!(stored.card, card(1));
        assert_eq!(stored.status, CardStatus::Prepared);
        assert_eq!(store.counts().unwrap(), [("prepared".to_string(), 2)]);
    }

    #[test]
    fn a_card_is_claimed_once() {
        let (_dir, mut store) = store();
        store.insert_batch(&[card(1)]).unwrap();
        let uid = card(1).uid;
        assert!(store.claim(uid, "station-a/reader-0").unwrap().is_ok());
        assert_eq!(
            store.claim(uid, "station-a/reader-1").unwrap().unwrap_err(),
            ClaimRefused::ClaimedElsewhere {
                uid,
                by: "station-a/reader-0".into()
            }
        );
        let record = |result: &str| AuditRecord {
            uid,
            reader: "r".into(),
            station: "s".into(),
            transcript_digest: "d".into(),
            result: result.into(),
            failed_step: None,
            started_at: now(),
            duration_ms: 1,
        };
        let failed = Ending::Failed {
            step: Some(7),
            reason: "card removed".into(),
        };
        store.finish_attempt(&failed, &record("failed")).unwrap();
        let failed = store.card(uid).unwrap().unwrap().status;
        assert_eq!(
            failed,
            CardStatus::Failed {
                step: Some(7),
                reason: "card removed".into()
            }
        );
        assert!(
            store.claim(uid, "station-a/reader-1").unwrap().is_ok(),
            "a failed card is retried"
        );
        store
            .finish_attempt(&Ending::Personalized, &record("personalized"))
            .unwrap();
        assert_eq!(store.audit_log().unwrap().len(), 2);
        assert_eq!(
            store.claim(uid, "x").unwrap().unwrap_err(),
            ClaimRefused::AlreadyPersonalized(uid)
        );
        let unknown = Uid([9; 8]);
        assert_eq!(
            store.claim(unknown, "x").unwrap().unwrap_err(),
            ClaimRefused::Unknown(unknown)
        );
    }

    #[test]
    fn the_audit_log_is_append_only() {
        let (dir, mut store) = store();
        let record = AuditRecord {
            uid: Uid([1; 8]),
            reader: "Virtual PCD 00 00".into(),
            station: "s1".into(),
            transcript_digest: "cc".into(),
            result: "personalized".into(),
            failed_step: None,
            started_at: now(),
            duration_ms: 12,
        };
        store.finish_attempt(&Ending::Refused, &record).unwrap();
        assert_eq!(store.audit_log().unwrap(), [record]);
        let connection = Connection::open(dir.path().join("vsc.db")).unwrap();
        assert!(connection.execute("DELETE FROM audit", []).is_err());
        assert!(
            connection
                .execute("UPDATE audit SET result = 'x'", [])
                .is_err()
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vsc.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path).unwrap_err(),
            StoreError::Schema { .. }
        ));
    }
}

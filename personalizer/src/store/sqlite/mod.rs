//! The SQLite store: one file, no server; WAL journal and full synchronous commits, so a crash
//! never loses a committed batch or a status change. The file is created with mode 0600 (it
//! holds failure text and the cards' images); SQLite gives its `-wal` and `-shm` files the
//! same mode.

mod schema;

use std::collections::HashMap;
use std::fs::OpenOptions as FileOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, params};

use super::Kind;
use super::packing::{self, Dictionary};
use super::{
    Access, AuditFilter, AuditRecord, AuditResult, Batch, CardStatus, Claim, ClaimInfo,
    ClaimRefused, Claimant, Lease, MailerFile, MailerState, Migration, Notice, OpenOptions,
    PreparedCard, Previous, ProfileCount, SCHEMA_VERSION, StationCount, Store, StoreError,
    StoreErrorKind, StoreLocation, StoreStatus, StoredCard, StoredTranscript, Uid, now, now_ms,
};

const CARD_COLUMNS: &str = "uid, profile_id, profile_version, status, claimed_by, claim_reader, \
     claim_expires, failed_step, failure, image, preinit_sealed, preinit, preinit_digest, \
     perso_sealed, perso, perso_digest, mailer_file, created_at, updated_at, perso_dictionary, \
     claim_host, claimed_ms, preinit_dictionary";

const AUDIT_COLUMNS: &str = "uid, station, host, reader, transcript_digest, result, failed_step, \
     reason, started_at, duration_ms";

/// A store in one SQLite file.
pub(super) struct SqliteStore {
    location: StoreLocation,
    connection: Connection,
    options: OpenOptions,
    /// The dictionaries read so far, by id (they never change).
    dictionaries: HashMap<i64, Dictionary>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Station tasks contend for the write lock a few milliseconds at a time: SQLite retries every
/// 200 µs at first (its own timeout sleeps whole milliseconds, growing), then every 2 ms, for
/// about half a second; then [`SqliteStore::locked`] says it waits, and goes on until the lock
/// timeout.
fn busy(retries: i32) -> bool {
    if retries < 500 {
        std::thread::sleep(Duration::from_micros(200));
    } else {
        std::thread::sleep(Duration::from_millis(2));
    }
    retries < 700
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Removes a store's files (the database, its WAL and shared-memory files).
pub(super) fn remove_files(location: &StoreLocation, path: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::new(location, StoreErrorKind::Io(error))),
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (or, with [`Access::CreateOrMigrate`], creates) the store in `path`.
    pub(super) fn open(
        location: &StoreLocation,
        path: &Path,
        options: &OpenOptions,
    ) -> Result<(SqliteStore, bool), StoreError> {
        let error = |kind| StoreError::new(location, kind);
        let mut created = false;
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if options.access == Access::Existing {
                    return Err(error(StoreErrorKind::Missing));
                }
                // An empty file is an empty SQLite database: made here so that its mode is
                // 0600 from the start.
                match FileOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(_) => created = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(error(StoreErrorKind::Io(e))),
                }
            }
            Err(e) => return Err(error(StoreErrorKind::Io(e))),
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .map_err(|e| error(StoreErrorKind::Sqlite(e)))?;
        connection
            .busy_handler(Some(busy))
            .map_err(|e| error(StoreErrorKind::Sqlite(e)))?;
        let mut store = SqliteStore {
            location: location.clone(),
            connection,
            options: options.clone(),
            dictionaries: HashMap::new(),
        };
        let opened = store.configure(options.access);
        match opened {
            Ok(()) => Ok((store, created)),
            Err(e) => {
                if created {
                    drop(store);
                    let _ = remove_files(location, path);
                }
                Err(e)
            }
        }
    }

    fn configure(&mut self, access: Access) -> Result<(), StoreError> {
        self.locked(|connection| {
            // Cards are a few KB each: large pages mean fewer overflow pages and system calls.
            // The page size takes effect only on a new database, before its journal mode is set.
            connection.pragma_update(None, "page_size", 16_384)?;
            connection.pragma_update(None, "cache_size", -32_768)?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "FULL")?;
            connection.pragma_update(None, "foreign_keys", "ON")
        })?;
        let version = self.version()?;
        if version > SCHEMA_VERSION {
            return Err(self.error(StoreErrorKind::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            }));
        }
        if version < SCHEMA_VERSION {
            match access {
                Access::CreateOrMigrate => {
                    self.migrate()?;
                }
                Access::Existing => {
                    return Err(self.error(StoreErrorKind::SchemaTooOld {
                        found: version,
                        current: SCHEMA_VERSION,
                    }));
                }
            }
        }
        Ok(())
    }

    fn version(&mut self) -> Result<u32, StoreError> {
        self.locked(|connection| {
            connection.pragma_query_value(None, "user_version", |row| row.get(0))
        })
    }

    fn error(&self, kind: StoreErrorKind) -> StoreError {
        StoreError::new(&self.location, kind)
    }

    /// Dictionary `id`, from the cache or the store.
    fn dictionary_by_id(&mut self, id: i64) -> Result<Dictionary, StoreError> {
        if let Some(dictionary) = self.dictionaries.get(&id) {
            return Ok(dictionary.clone());
        }
        let packed = self
            .locked(|connection| read_dictionary(connection, id))?
            .ok_or_else(|| {
                self.error(StoreErrorKind::Unpack(
                    packing::UnpackError::MissingDictionary(id),
                ))
            })?;
        let text =
            packing::unpack(&packed, None).map_err(|e| self.error(StoreErrorKind::Unpack(e)))?;
        let dictionary = Dictionary::new(id, text);
        self.dictionaries.insert(id, dictionary.clone());
        Ok(dictionary)
    }

    /// The card of `row`, its transcript's dictionary attached.
    fn finish_card(&mut self, row: CardRow) -> Result<StoredCard, StoreError> {
        let mut card = row.card;
        for (id, transcript) in [
            (row.preinit_dictionary, &mut card.card.preinit),
            (row.perso_dictionary, &mut card.card.perso),
        ] {
            if let (Some(id), Some(slot)) = (id, transcript.dictionary_mut()) {
                *slot = Some(self.dictionary_by_id(id)?);
            }
        }
        Ok(card)
    }

    /// Runs `op` (one whole transaction), again while another process holds the lock, until
    /// the lock timeout; the first wait is announced.
    fn locked<T>(
        &mut self,
        mut op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut announced = false;
        loop {
            match op(&mut self.connection) {
                Err(e) if is_busy(&e) => {
                    let waited = started.elapsed();
                    if waited >= self.options.lock_timeout {
                        return Err(self.error(StoreErrorKind::LockTimeout { waited }));
                    }
                    if !announced {
                        announced = true;
                        tracing::info!(store = %self.location, "waiting for the lock");
                        self.options.notify(&Notice::WaitingForLock {
                            store: self.location.to_string(),
                        });
                    }
                }
                Err(e) => return Err(self.error(StoreErrorKind::Sqlite(e))),
                Ok(value) => return Ok(value),
            }
        }
    }

    /// Like [`SqliteStore::locked`], for a write transaction (taken at its start, so that it
    /// never fails half-way on the lock).
    fn write<T>(
        &mut self,
        mut op: impl FnMut(&Transaction<'_>) -> Result<T, Abort>,
    ) -> Result<T, StoreError> {
        let mut aborted = None;
        let result = self.locked(|connection| {
            let tx =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            match op(&tx) {
                Ok(value) => {
                    tx.commit()?;
                    Ok(Some(value))
                }
                Err(Abort::Sqlite(e)) => Err(e),
                Err(Abort::Store(kind)) => {
                    aborted = Some(kind);
                    Ok(None)
                }
            }
        })?;
        match (result, aborted) {
            (Some(value), _) => Ok(value),
            (None, Some(kind)) => Err(self.error(kind)),
            (None, None) => Err(self.error(StoreErrorKind::Corrupt {
                what: "transaction result".into(),
            })),
        }
    }
}

/// Why a write transaction stopped: SQLite (retried when busy) or a store rule (rolled back).
enum Abort {
    Sqlite(rusqlite::Error),
    Store(StoreErrorKind),
}

impl From<rusqlite::Error> for Abort {
    fn from(error: rusqlite::Error) -> Abort {
        Abort::Sqlite(error)
    }
}

/// A card as its row holds it: its UID still as text (checked by the caller), the claim's
/// start, and the id of the dictionary its personalization transcript needs (attached by the
/// caller).
struct CardRow {
    card: StoredCard,
    uid: String,
    claim_host: Option<String>,
    claimed_ms: Option<i64>,
    preinit_dictionary: Option<i64>,
    perso_dictionary: Option<i64>,
}

/// A card row.
fn card_from_row(row: &Row<'_>) -> rusqlite::Result<CardRow> {
    let uid_text: String = row.get("uid")?;
    let transcript = |sealed: &str, column: &str| -> rusqlite::Result<StoredTranscript> {
        let bytes: Vec<u8> = row.get(column)?;
        Ok(StoredTranscript::from_columns(
            bytes,
            row.get::<_, bool>(sealed)?,
            None,
        ))
    };
    let status = match row.get::<_, String>("status")?.as_str() {
        "prepared" => CardStatus::Prepared,
        "claimed" => CardStatus::Claimed(Lease {
            station: row
                .get::<_, Option<String>>("claimed_by")?
                .unwrap_or_default(),
            reader: row
                .get::<_, Option<String>>("claim_reader")?
                .unwrap_or_default(),
            expires_at_ms: row.get::<_, Option<i64>>("claim_expires")?.unwrap_or(0),
        }),
        "personalized" => CardStatus::Personalized,
        _ => CardStatus::Failed {
            step: row.get("failed_step")?,
            reason: row.get::<_, Option<String>>("failure")?.unwrap_or_default(),
        },
    };
    let card = PreparedCard {
        uid: Uid::default(),
        profile_id: row.get("profile_id")?,
        profile_version: row.get("profile_version")?,
        image: row.get("image")?,
        preinit: transcript("preinit_sealed", "preinit")?,
        preinit_digest: row.get("preinit_digest")?,
        perso: transcript("perso_sealed", "perso")?,
        perso_digest: row.get("perso_digest")?,
    };
    Ok(CardRow {
        card: StoredCard {
            card,
            status,
            mailer_file: row.get("mailer_file")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        },
        uid: uid_text,
        claim_host: row.get("claim_host")?,
        claimed_ms: row.get("claimed_ms")?,
        preinit_dictionary: row.get("preinit_dictionary")?,
        perso_dictionary: row.get("perso_dictionary")?,
    })
}

fn read_card(
    connection: &Connection,
    uid: Uid,
) -> rusqlite::Result<Option<Result<CardRow, StoreErrorKind>>> {
    let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE uid = ?1");
    let found = connection
        .prepare_cached(&sql)?
        .query_row(params![uid.to_string()], card_from_row)
        .optional()?;
    Ok(found.map(|mut row| match Uid::parse(&row.uid) {
        Ok(parsed) => {
            row.card.card.uid = parsed;
            Ok(row)
        }
        Err(_) => Err(StoreErrorKind::Corrupt {
            what: format!("UID {:?}", row.uid),
        }),
    }))
}

/// Reads dictionary `id`.
fn read_dictionary(connection: &Connection, id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    connection
        .prepare_cached("SELECT text FROM dictionaries WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<Result<AuditRecord, StoreErrorKind>> {
    let uid: String = row.get(0)?;
    let result: String = row.get(5)?;
    let digest: String = row.get(4)?;
    let (Ok(uid), Some(result)) = (Uid::parse(&uid), AuditResult::from_name(&result)) else {
        return Ok(Err(StoreErrorKind::Corrupt {
            what: format!("audit line (UID {uid:?}, result {result:?})"),
        }));
    };
    Ok(Ok(AuditRecord {
        uid,
        station: row.get(1)?,
        host: row.get(2)?,
        reader: row.get(3)?,
        transcript_digest: (!digest.is_empty()).then_some(digest),
        result,
        failed_step: row.get(6)?,
        reason: row.get(7)?,
        started_at: row.get(8)?,
        duration_ms: row.get(9)?,
    }))
}

/// The audit line of a claim that is taken over: its station's attempt never ended.
pub(super) fn abandoned(
    row_uid: Uid,
    held: &Lease,
    host: Option<String>,
    claimed_ms: Option<i64>,
    digest: &str,
    by: &Claimant,
    now_ms: i64,
) -> AuditRecord {
    let started = claimed_ms.unwrap_or(now_ms);
    let reason = if held.station == by.station {
        format!(
            "the attempt never ended: {} started again and took the card at {}",
            by.station, by.reader
        )
    } else {
        format!(
            "the attempt never ended: its lease ended and {} took the card at {}",
            by.station, by.reader
        )
    };
    AuditRecord {
        uid: row_uid,
        station: held.station.clone(),
        host: host.unwrap_or_default(),
        reader: held.reader.clone(),
        transcript_digest: Some(digest.to_string()),
        result: AuditResult::Abandoned,
        failed_step: None,
        reason: Some(reason),
        started_at: rfc3339_ms(started),
        duration_ms: u64::try_from(now_ms.saturating_sub(started)).unwrap_or(0),
    }
}

/// Milliseconds since the Unix epoch, as RFC 3339 in UTC.
pub(super) fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn insert_audit(tx: &Transaction<'_>, record: &AuditRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        record.uid.to_string(),
        record.station,
        record.host,
        record.reader,
        record.transcript_digest.as_deref().unwrap_or(""),
        record.result.name(),
        record.failed_step,
        record.reason,
        record.started_at,
        record.duration_ms,
    ])?;
    Ok(())
}

fn parse_uids(text: &str) -> Result<Vec<Uid>, StoreErrorKind> {
    text.split_whitespace()
        .map(|uid| {
            Uid::parse(uid).map_err(|_| StoreErrorKind::Corrupt {
                what: format!("PIN mailer UID {uid:?}"),
            })
        })
        .collect()
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Store for SqliteStore {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn migrate(&mut self) -> Result<Migration, StoreError> {
        let from = self.version()?;
        if from > SCHEMA_VERSION {
            return Err(self.error(StoreErrorKind::SchemaTooNew {
                found: from,
                supported: SCHEMA_VERSION,
            }));
        }
        let to = self.write(|tx| {
            // Read again under the write lock: another process may have migrated meanwhile.
            let mut version: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            while (version as usize) < schema::MIGRATIONS.len() {
                tx.execute_batch(schema::MIGRATIONS[version as usize])?;
                version += 1;
                tx.pragma_update(None, "user_version", version)?;
            }
            Ok(version)
        })?;
        let migration = Migration { from, to };
        if from != to {
            tracing::info!(store = %self.location, from, to, "schema migrated");
            if from > 0 {
                self.options.notify(&Notice::Migrated {
                    store: self.location.to_string(),
                    from,
                    to,
                });
            }
        }
        Ok(migration)
    }

    fn insert_batch(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let created = now();
        self.write(|tx| {
            if let Some(name) = batch.mailer_file {
                let stored = tx
                    .prepare_cached(
                        "UPDATE mailer_files SET state = 'stored', updated_at = ?2 \
                         WHERE name = ?1 AND state = 'pending'",
                    )?
                    .execute(params![name, created])?;
                if stored == 0 {
                    return Err(Abort::Store(StoreErrorKind::Corrupt {
                        what: format!("PIN mailer file {name} (it was never announced)"),
                    }));
                }
            }
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO cards ({CARD_COLUMNS}) VALUES (?1, ?2, ?3, 'prepared', NULL, NULL, \
                 NULL, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, NULL, NULL, ?14)"
            ))?;
            for card in batch.cards {
                let (preinit, preinit_sealed, preinit_dictionary) = card.preinit.columns();
                let (perso, perso_sealed, dictionary) = card.perso.columns();
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
                    batch.mailer_file,
                    created,
                    dictionary,
                    preinit_dictionary,
                ]);
                match result {
                    Ok(_) => {}
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == ErrorCode::ConstraintViolation =>
                    {
                        return Err(Abort::Store(StoreErrorKind::Duplicate(card.uid)));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }

    fn contains(&mut self, uid: Uid) -> Result<bool, StoreError> {
        self.locked(|connection| {
            connection
                .prepare_cached("SELECT 1 FROM cards WHERE uid = ?1")?
                .exists(params![uid.to_string()])
        })
    }

    fn existing(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, StoreError> {
        let texts: Vec<String> = uids.iter().map(Uid::to_string).collect();
        self.locked(|connection| {
            let mut statement = connection.prepare_cached("SELECT 1 FROM cards WHERE uid = ?1")?;
            let mut found = Vec::new();
            for (uid, text) in uids.iter().zip(&texts) {
                if statement.exists(params![text])? {
                    found.push(*uid);
                }
            }
            Ok(found)
        })
    }

    fn dictionary(
        &mut self,
        profile_id: &str,
        profile_version: u32,
        kind: Kind,
    ) -> Result<Option<Dictionary>, StoreError> {
        let id = self.locked(|connection| {
            connection
                .prepare_cached(
                    "SELECT min(id) FROM dictionaries WHERE profile_id = ?1 \
                     AND profile_version = ?2 AND kind = ?3",
                )?
                .query_row(params![profile_id, profile_version, kind.label()], |row| {
                    row.get::<_, Option<i64>>(0)
                })
        })?;
        id.map(|id| self.dictionary_by_id(id)).transpose()
    }

    fn add_dictionary(
        &mut self,
        profile_id: &str,
        profile_version: u32,
        kind: Kind,
        text: &str,
    ) -> Result<Dictionary, StoreError> {
        let packed = packing::pack(text.as_bytes(), None);
        let digest = packing::digest(text.as_bytes());
        let created = now();
        let id = self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO dictionaries (profile_id, profile_version, kind, text, digest, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                profile_id,
                profile_version,
                kind.label(),
                packed,
                digest,
                created
            ])?;
            Ok(tx.last_insert_rowid())
        })?;
        let dictionary = Dictionary::new(id, text.as_bytes().to_vec());
        self.dictionaries.insert(id, dictionary.clone());
        Ok(dictionary)
    }

    fn card(&mut self, uid: Uid) -> Result<Option<StoredCard>, StoreError> {
        match self.locked(|connection| read_card(connection, uid))? {
            None => Ok(None),
            Some(Ok(row)) => self.finish_card(row).map(Some),
            Some(Err(kind)) => Err(self.error(kind)),
        }
    }

    fn status(&mut self) -> Result<StoreStatus, StoreError> {
        let schema_version = self.version()?;
        let (cards, profiles, stations, claims, mailer) = self.locked(|connection| {
            let tx = connection.transaction()?;
            let mut cards: Vec<(String, u64)> = ["prepared", "claimed", "personalized", "failed"]
                .iter()
                .map(|state| (state.to_string(), 0))
                .collect();
            {
                let mut statement =
                    tx.prepare_cached("SELECT status, COUNT(*) FROM cards GROUP BY status")?;
                let rows =
                    statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
                for row in rows {
                    let (state, count) = row?;
                    match cards.iter_mut().find(|(s, _)| *s == state) {
                        Some(entry) => entry.1 = count,
                        None => cards.push((state, count)),
                    }
                }
            }
            let profiles = tx
                .prepare_cached(
                    "SELECT profile_id, profile_version, status, COUNT(*) FROM cards \
                     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                )?
                .query_map([], |row| {
                    Ok(ProfileCount {
                        profile: row.get(0)?,
                        version: row.get(1)?,
                        state: row.get(2)?,
                        cards: row.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let stations = tx
                .prepare_cached(
                    "SELECT station, result, COUNT(*) FROM audit GROUP BY 1, 2 ORDER BY 1, 2",
                )?
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let claims = tx
                .prepare_cached(
                    "SELECT uid, claimed_by, claim_reader, claim_expires FROM cards \
                     WHERE status = 'claimed' ORDER BY uid",
                )?
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        Lease {
                            station: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            reader: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                            expires_at_ms: row.get::<_, Option<i64>>(3)?.unwrap_or(0),
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mailer = tx
                .prepare_cached("SELECT state, COUNT(*) FROM mailer_files GROUP BY 1 ORDER BY 1")?
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((cards, profiles, stations, claims, mailer))
        })?;
        let stations = stations
            .into_iter()
            .map(|(station, result, attempts)| {
                AuditResult::from_name(&result)
                    .map(|result| StationCount {
                        station,
                        result,
                        attempts,
                    })
                    .ok_or_else(|| {
                        self.error(StoreErrorKind::Corrupt {
                            what: format!("audit result {result:?}"),
                        })
                    })
            })
            .collect::<Result<_, _>>()?;
        let now = now_ms();
        let claims = claims
            .into_iter()
            .map(|(uid, lease)| {
                Uid::parse(&uid)
                    .map(|uid| ClaimInfo {
                        uid,
                        remaining_ms: lease.expires_at_ms - now,
                        lease,
                    })
                    .map_err(|_| {
                        self.error(StoreErrorKind::Corrupt {
                            what: format!("UID {uid:?}"),
                        })
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(StoreStatus {
            store: self.location.to_string(),
            backend: self.location.backend(),
            schema_version,
            cards,
            profiles,
            stations,
            claims,
            mailer_files: mailer,
        })
    }

    fn claim(
        &mut self,
        uid: Uid,
        claimant: &Claimant,
        lease: Duration,
    ) -> Result<Result<Claim, ClaimRefused>, StoreError> {
        let claimed = self.write(|tx| {
            let Some(found) = read_card(tx, uid)? else {
                return Ok(Err(ClaimRefused::Unknown(uid)));
            };
            let mut row = found.map_err(Abort::Store)?;
            let now = now_ms();
            let previous = match &row.card.status {
                CardStatus::Prepared => Previous::Prepared,
                CardStatus::Failed { .. } => Previous::Failed,
                CardStatus::Personalized => {
                    return Ok(Err(ClaimRefused::AlreadyPersonalized(uid)));
                }
                CardStatus::Claimed(held) if held.station == claimant.station => Previous::OwnClaim,
                CardStatus::Claimed(held) if held.expired(now) => {
                    Previous::ExpiredClaim(held.clone())
                }
                CardStatus::Claimed(held) => {
                    return Ok(Err(ClaimRefused::ClaimedElsewhere {
                        uid,
                        lease: held.clone(),
                    }));
                }
            };
            if let CardStatus::Claimed(held) = &row.card.status {
                insert_audit(
                    tx,
                    &abandoned(
                        uid,
                        held,
                        row.claim_host.take(),
                        row.claimed_ms,
                        &row.card.card.perso_digest,
                        claimant,
                        now,
                    ),
                )?;
            }
            let granted = Lease {
                station: claimant.station.clone(),
                reader: claimant.reader.clone(),
                expires_at_ms: now.saturating_add(lease_ms(lease)),
            };
            let updated = super::now();
            tx.prepare_cached(
                "UPDATE cards SET status = 'claimed', claimed_by = ?2, claim_reader = ?3, \
                 claim_expires = ?4, updated_at = ?5, claim_host = ?6, claimed_ms = ?7 \
                 WHERE uid = ?1",
            )?
            .execute(params![
                uid.to_string(),
                granted.station,
                granted.reader,
                granted.expires_at_ms,
                updated,
                claimant.host,
                now
            ])?;
            row.card.status = CardStatus::Claimed(granted.clone());
            row.card.updated_at = updated;
            Ok(Ok((row, granted, previous)))
        })?;
        match claimed {
            Err(refused) => Ok(Err(refused)),
            Ok((row, lease, previous)) => Ok(Ok(Claim {
                card: self.finish_card(row)?,
                lease,
                previous,
            })),
        }
    }

    fn renew(&mut self, uid: Uid, station: &str, lease: Duration) -> Result<bool, StoreError> {
        let expires = now_ms().saturating_add(lease_ms(lease));
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE cards SET claim_expires = ?3 \
                     WHERE uid = ?1 AND status = 'claimed' AND claimed_by = ?2",
                )?
                .execute(params![uid.to_string(), station, expires])?;
            Ok(changed > 0)
        })
    }

    fn finish_attempt(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        let status = match record.result {
            AuditResult::Personalized | AuditResult::Confirmed => Some("personalized"),
            AuditResult::Failed => Some("failed"),
            AuditResult::Refused | AuditResult::Released | AuditResult::Abandoned => None,
        };
        let updated = now();
        self.write(|tx| {
            if let Some(status) = status {
                let (step, reason) = match record.result {
                    AuditResult::Failed => (record.failed_step, record.reason.as_deref()),
                    _ => (None, None),
                };
                let changed = tx
                    .prepare_cached(
                        "UPDATE cards SET status = ?2, failed_step = ?3, failure = ?4, \
                         claimed_by = NULL, claim_reader = NULL, claim_expires = NULL, \
                         claim_host = NULL, claimed_ms = NULL, updated_at = ?5 \
                         WHERE uid = ?1 AND status = 'claimed' AND claimed_by = ?6",
                    )?
                    .execute(params![
                        record.uid.to_string(),
                        status,
                        step,
                        reason,
                        updated,
                        record.station
                    ])?;
                if changed == 0 {
                    return Err(Abort::Store(match read_card(tx, record.uid)? {
                        None => StoreErrorKind::NotFound(record.uid),
                        Some(_) => StoreErrorKind::ClaimLost(record.uid),
                    }));
                }
            }
            insert_audit(tx, record)?;
            Ok(())
        })
    }

    fn release(&mut self, uid: Uid, by: &Claimant) -> Result<Option<Lease>, StoreError> {
        let started = now();
        self.write(|tx| {
            let Some(found) = read_card(tx, uid)? else {
                return Err(Abort::Store(StoreErrorKind::NotFound(uid)));
            };
            let CardStatus::Claimed(lease) = found.map_err(Abort::Store)?.card.status else {
                return Ok(None);
            };
            let reason = format!(
                "the claim of {} at {} was released by hand by {}",
                lease.station, lease.reader, by.station
            );
            tx.prepare_cached(
                "UPDATE cards SET status = 'failed', failed_step = NULL, failure = ?2, \
                 claimed_by = NULL, claim_reader = NULL, claim_expires = NULL, claim_host = NULL, \
                 claimed_ms = NULL, updated_at = ?3 WHERE uid = ?1",
            )?
            .execute(params![uid.to_string(), reason, started])?;
            insert_audit(
                tx,
                &AuditRecord {
                    uid,
                    station: by.station.clone(),
                    host: by.host.clone(),
                    reader: lease.reader.clone(),
                    transcript_digest: None,
                    result: AuditResult::Released,
                    failed_step: None,
                    reason: Some(reason),
                    started_at: started.clone(),
                    duration_ms: 0,
                },
            )?;
            Ok(Some(lease))
        })
    }

    fn audit(&mut self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self.locked(|connection| {
            let mut sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE (?1 IS NULL OR started_at >= ?1) \
                 AND (?2 IS NULL OR uid = ?2) AND (?3 IS NULL OR station = ?3) ORDER BY id"
            );
            sql.shrink_to_fit();
            let mut statement = connection.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![
                    filter.since,
                    filter.uid.map(|uid| uid.to_string()),
                    filter.station
                ],
                audit_from_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|row| row.map_err(|kind| self.error(kind)))
            .collect()
    }

    fn announce_mailer_file(&mut self, file: &MailerFile) -> Result<(), StoreError> {
        let uids = file
            .uids
            .iter()
            .map(Uid::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let created = now();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO mailer_files (name, run, folder, state, uids, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![
                file.name,
                file.run,
                file.folder,
                file.state.name(),
                uids,
                created
            ])?;
            Ok(())
        })
    }

    fn mailer_files(&mut self, state: MailerState) -> Result<Vec<MailerFile>, StoreError> {
        let rows = self.locked(|connection| {
            connection
                .prepare_cached(
                    "SELECT name, run, folder, uids FROM mailer_files WHERE state = ?1 \
                     ORDER BY created_at, name",
                )?
                .query_map(params![state.name()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(name, run, folder, uids)| {
                Ok(MailerFile {
                    name,
                    run,
                    folder,
                    state,
                    uids: parse_uids(&uids).map_err(|kind| self.error(kind))?,
                })
            })
            .collect()
    }

    fn mark_orphan(&mut self, name: &str) -> Result<(), StoreError> {
        let updated = now();
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE mailer_files SET state = 'orphan', updated_at = ?2 \
                 WHERE name = ?1 AND state = 'pending'",
            )?
            .execute(params![name, updated])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

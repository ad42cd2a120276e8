//! The PostgreSQL store: one database that stations on many machines share, through the sync
//! `postgres` driver (one connection per store value: the station is thread-based, one store
//! per reader task). Leases run on the server's clock. A claim is one statement; so is an
//! attempt's ending; preparation bulk-loads each batch with COPY in one transaction.
//!
//! A broken connection (the server restarted, the session was terminated, the network went
//! away) is reopened on the next call; calls whose effect is known to be absent or harmless to
//! repeat (reads, renewals, an attempt's ending, checked by its audit line) are tried again
//! until the lock timeout. Nothing is reported done that the server did not commit.

mod connect;
pub(crate) mod schema;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::error::SqlState;
use ::postgres::types::Type;
use ::postgres::{Client, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Kind;
use super::packing::{self, Dictionary};
use super::{
    Access, AuditFilter, AuditRecord, AuditResult, Batch, CardStatus, Claim, ClaimInfo,
    ClaimRefused, Claimant, Lease, MailerFile, MailerState, Migration, Notice, OpenOptions,
    PostgresConfig, PreparedCard, Previous, ProfileCount, SCHEMA_VERSION, StationCount, Store,
    StoreError, StoreErrorKind, StoreLocation, StoreStatus, StoredCard, StoredTranscript, Uid,
};

/// The card columns every read takes, lease times as milliseconds on the server's clock.
const CARD_COLUMNS: &str = "uid, profile_id, profile_version, status, claimed_by, claim_reader, \
     (extract(epoch FROM claim_expires) * 1000)::bigint AS claim_expires_ms, failed_step, \
     failure, image, preinit_sealed, preinit, preinit_digest, perso_sealed, perso, perso_digest, \
     perso_dictionary, preinit_dictionary, mailer_file, created_at, updated_at";

const AUDIT_COLUMNS: &str = "uid, station, host, reader, transcript_digest, result, failed_step, \
     reason, started_at, duration_ms";

/// An attempt's ending that changes the card: its status, then its audit line, in one
/// statement, only while this station holds the claim.
const FINISH: &str = "WITH done AS ( \
         UPDATE vsc.cards SET status = $2, failed_step = $3, failure = $4, \
             claimed_by = NULL, claim_reader = NULL, claim_host = NULL, \
             claimed_at = NULL, claim_expires = NULL, updated_at = now() \
         WHERE uid = $1 AND status = 'claimed' AND claimed_by = $5 \
         RETURNING uid) \
     INSERT INTO vsc.audit (uid, station, host, reader, transcript_digest, \
         result, failed_step, reason, started_at, duration_ms) \
     SELECT $1, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM done";

/// A renewal: the lease from now, while the claim is this station's.
const RENEW: &str = "UPDATE vsc.cards SET claim_expires = now() + $3::float8 * interval \
     '1 millisecond' WHERE uid = $1 AND status = 'claimed' AND claimed_by = $2";

/// How long to wait between attempts to reach the server.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// A connection and the statements prepared on it (the hot ones: a station's claim, renewal
/// and ending), so that each is parsed and planned once per connection, not per call.
struct Connection {
    client: Client,
    statements: HashMap<String, ::postgres::Statement>,
}

impl Connection {
    /// The statement `sql`, prepared on this connection once.
    fn cached(&mut self, sql: &str) -> Result<::postgres::Statement, ::postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

impl std::ops::Deref for Connection {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A store in a PostgreSQL database.
pub(super) struct PostgresStore {
    location: StoreLocation,
    connector: connect::Connector,
    client: Option<Connection>,
    options: OpenOptions,
    dictionaries: HashMap<i64, Dictionary>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Why an operation stopped: the server (retried when the connection broke) or a store rule.
enum Abort {
    Postgres(::postgres::Error),
    Store(StoreErrorKind),
}

impl From<::postgres::Error> for Abort {
    fn from(error: ::postgres::Error) -> Abort {
        Abort::Postgres(error)
    }
}

/// Whether an operation may run again after its connection broke.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// It changes nothing, or the same again (a read, a renewal).
    Yes,
    /// It may have committed before the connection broke: not again (the caller checks).
    No,
}

/// Whether the connection is gone (the session was ended, the server went away, the network
/// broke), as opposed to an error of the statement itself.
fn connection_lost(error: &::postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        // No server message: the driver lost the socket (an I/O error).
        None => std::error::Error::source(error).is_some_and(|e| e.is::<std::io::Error>()),
    }
}

/// Whether a refused connection may be accepted later: no server answer at all (nothing
/// listens, the network is down), too many connections, or a database closed to connections
/// for a while (`ALLOW_CONNECTIONS false`).
fn not_now(error: &::postgres::Error) -> bool {
    match error.code() {
        None => true,
        Some(code) => [
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
        ]
        .contains(code),
    }
}

/// Whether the transaction lost a race and may simply run again.
fn serialization_failure(error: &::postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

fn uid_text(uid: Uid) -> String {
    uid.to_string()
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

fn parse_time(text: &str) -> Result<OffsetDateTime, StoreErrorKind> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| StoreErrorKind::Corrupt {
        what: format!("time {text:?} (RFC 3339 expected)"),
    })
}

fn parse_uid(text: &str) -> Result<Uid, StoreErrorKind> {
    Uid::parse(text).map_err(|_| StoreErrorKind::Corrupt {
        what: format!("UID {text:?}"),
    })
}

/// The UID a unique violation names (`Key (uid)=(5653…) already exists.`).
fn duplicate_uid(error: &::postgres::Error) -> Option<Uid> {
    let detail = error.as_db_error()?.detail()?;
    let start = detail.find("(uid)=(")? + "(uid)=(".len();
    let end = start + detail[start..].find(')')?;
    Uid::parse(&detail[start..end]).ok()
}

/// A card row: the card, and the ids of the dictionaries its transcripts need.
fn card_from_row(row: &Row) -> Result<(StoredCard, [Option<i64>; 2]), StoreErrorKind> {
    let get = |e: ::postgres::Error| StoreErrorKind::Postgres(e);
    let uid = parse_uid(row.try_get::<_, &str>("uid").map_err(get)?)?;
    let status = match row.try_get::<_, &str>("status").map_err(get)? {
        "prepared" => CardStatus::Prepared,
        "claimed" => CardStatus::Claimed(Lease {
            station: row
                .try_get::<_, Option<String>>("claimed_by")
                .map_err(get)?
                .unwrap_or_default(),
            reader: row
                .try_get::<_, Option<String>>("claim_reader")
                .map_err(get)?
                .unwrap_or_default(),
            expires_at_ms: row
                .try_get::<_, Option<i64>>("claim_expires_ms")
                .map_err(get)?
                .unwrap_or(0),
        }),
        "personalized" => CardStatus::Personalized,
        _ => CardStatus::Failed {
            step: row
                .try_get::<_, Option<i32>>("failed_step")
                .map_err(get)?
                .map(|s| s.max(0) as u32),
            reason: row
                .try_get::<_, Option<String>>("failure")
                .map_err(get)?
                .unwrap_or_default(),
        },
    };
    let transcript = |bytes: &str, sealed: &str| -> Result<StoredTranscript, StoreErrorKind> {
        Ok(StoredTranscript::from_columns(
            row.try_get(bytes).map_err(get)?,
            row.try_get(sealed).map_err(get)?,
            None,
        ))
    };
    let card = PreparedCard {
        uid,
        profile_id: row.try_get("profile_id").map_err(get)?,
        profile_version: row
            .try_get::<_, i32>("profile_version")
            .map_err(get)?
            .max(0) as u32,
        image: row.try_get("image").map_err(get)?,
        preinit: transcript("preinit", "preinit_sealed")?,
        preinit_digest: row.try_get("preinit_digest").map_err(get)?,
        perso: transcript("perso", "perso_sealed")?,
        perso_digest: row.try_get("perso_digest").map_err(get)?,
    };
    Ok((
        StoredCard {
            card,
            status,
            mailer_file: row.try_get("mailer_file").map_err(get)?,
            created_at: rfc3339(row.try_get("created_at").map_err(get)?),
            updated_at: rfc3339(row.try_get("updated_at").map_err(get)?),
        },
        [
            row.try_get("preinit_dictionary").map_err(get)?,
            row.try_get("perso_dictionary").map_err(get)?,
        ],
    ))
}

fn audit_from_row(row: &Row) -> Result<AuditRecord, StoreErrorKind> {
    let get = |e: ::postgres::Error| StoreErrorKind::Postgres(e);
    let result: &str = row.try_get("result").map_err(get)?;
    let result = AuditResult::from_name(result).ok_or_else(|| StoreErrorKind::Corrupt {
        what: format!("audit result {result:?}"),
    })?;
    Ok(AuditRecord {
        uid: parse_uid(row.try_get("uid").map_err(get)?)?,
        station: row.try_get("station").map_err(get)?,
        host: row.try_get("host").map_err(get)?,
        reader: row.try_get("reader").map_err(get)?,
        transcript_digest: row.try_get("transcript_digest").map_err(get)?,
        result,
        failed_step: row
            .try_get::<_, Option<i32>>("failed_step")
            .map_err(get)?
            .map(|s| s.max(0) as u32),
        reason: row.try_get("reason").map_err(get)?,
        started_at: rfc3339(row.try_get("started_at").map_err(get)?),
        duration_ms: row.try_get::<_, i64>("duration_ms").map_err(get)?.max(0) as u64,
    })
}

impl PostgresStore {
    /// Connects to the database of `config` and opens (or, with [`Access::CreateOrMigrate`],
    /// creates) the store in it.
    pub(super) fn open(
        location: &StoreLocation,
        config: &PostgresConfig,
        options: &OpenOptions,
    ) -> Result<(PostgresStore, bool), StoreError> {
        let connector = connect::connector(config, options.lock_timeout)
            .map_err(|why| StoreError::new(location, StoreErrorKind::Config(why)))?;
        let mut store = PostgresStore {
            location: location.clone(),
            connector,
            client: None,
            options: options.clone(),
            dictionaries: HashMap::new(),
        };
        let version = store.version()?;
        let created = version.is_none();
        match version {
            None if options.access == Access::Existing => {
                return Err(store.error(StoreErrorKind::Missing));
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(store.error(StoreErrorKind::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                }));
            }
            Some(found) if found < SCHEMA_VERSION && options.access == Access::Existing => {
                return Err(store.error(StoreErrorKind::SchemaTooOld {
                    found,
                    current: SCHEMA_VERSION,
                }));
            }
            Some(SCHEMA_VERSION) => {}
            _ => {
                store.migrate()?;
            }
        }
        Ok((store, created))
    }

    fn error(&self, kind: StoreErrorKind) -> StoreError {
        StoreError::new(&self.location, kind)
    }

    /// The connection, opened (again) if there is none or it broke; the server is tried until
    /// the lock timeout, the first wait announced.
    fn client(&mut self) -> Result<&mut Connection, StoreError> {
        if self.client.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let started = Instant::now();
            let mut announced = false;
            let client = loop {
                match self.connector.config.connect(self.connector.tls.clone()) {
                    Ok(mut client) => {
                        // A row lock held by another station is waited for as long as any lock.
                        let set = format!(
                            "SET lock_timeout = {}",
                            self.options.lock_timeout.as_millis().max(1)
                        );
                        match client.batch_execute(&set) {
                            Ok(()) => break client,
                            Err(error) if connection_lost(&error) => {}
                            Err(error) => return Err(self.error(StoreErrorKind::Postgres(error))),
                        }
                    }
                    Err(error) if connection_lost(&error) || not_now(&error) => {
                        let waited = started.elapsed();
                        if waited >= self.options.lock_timeout {
                            return Err(self.error(StoreErrorKind::Unreachable {
                                waited,
                                cause: error,
                            }));
                        }
                        if !announced {
                            announced = true;
                            tracing::info!(store = %self.location, "waiting for the server");
                            self.options.notify(&Notice::WaitingForServer {
                                store: self.location.to_string(),
                            });
                        }
                        std::thread::sleep(RECONNECT_PAUSE);
                    }
                    // The server answered and refused (no such database, authentication).
                    Err(error) => return Err(self.error(StoreErrorKind::Postgres(error))),
                }
            };
            self.client = Some(Connection {
                client,
                statements: HashMap::new(),
            });
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => Err(StoreError::new(
                &self.location,
                StoreErrorKind::Corrupt {
                    what: "connection".into(),
                },
            )),
        }
    }

    /// Runs `op`; after a broken connection, again on a new one (until the lock timeout) when
    /// `retry` allows; after a lost race, again.
    fn run<T>(
        &mut self,
        retry: Retry,
        mut op: impl FnMut(&mut Connection) -> Result<T, Abort>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        loop {
            let client = self.client()?;
            match op(client) {
                Ok(value) => return Ok(value),
                Err(Abort::Store(kind)) => return Err(self.error(kind)),
                Err(Abort::Postgres(error)) if serialization_failure(&error) => {}
                Err(Abort::Postgres(error)) if connection_lost(&error) => {
                    self.client = None;
                    let waited = started.elapsed();
                    if retry == Retry::No {
                        return Err(self.error(StoreErrorKind::Postgres(error)));
                    }
                    if waited >= self.options.lock_timeout {
                        return Err(self.error(StoreErrorKind::Unreachable {
                            waited,
                            cause: error,
                        }));
                    }
                    tracing::info!(store = %self.location, %error, "connection lost; again");
                }
                Err(Abort::Postgres(error))
                    if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
                {
                    return Err(self.error(StoreErrorKind::LockTimeout {
                        waited: started.elapsed(),
                    }));
                }
                Err(Abort::Postgres(error)) => {
                    return Err(self.error(StoreErrorKind::Postgres(error)));
                }
            }
        }
    }

    /// The schema version, or `None` for a database without a store.
    fn version(&mut self) -> Result<Option<u32>, StoreError> {
        self.run(Retry::Yes, |client| {
            let exists: bool = client
                .query_one("SELECT to_regclass('vsc.schema_version') IS NOT NULL", &[])?
                .get(0);
            if !exists {
                return Ok(None);
            }
            let version: i32 = client
                .query_one("SELECT max(version) FROM vsc.schema_version", &[])?
                .get(0);
            Ok(Some(version.max(0) as u32))
        })
    }

    /// Dictionary `id`, from the cache or the store.
    fn dictionary_by_id(&mut self, id: i64) -> Result<Dictionary, StoreError> {
        if let Some(dictionary) = self.dictionaries.get(&id) {
            return Ok(dictionary.clone());
        }
        let packed: Option<Vec<u8>> = self.run(Retry::Yes, |client| {
            Ok(client
                .query_opt("SELECT text FROM vsc.dictionaries WHERE id = $1", &[&id])?
                .map(|row| row.get(0)))
        })?;
        let packed = packed.ok_or_else(|| {
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

    /// The card of a row, its transcript's dictionary attached.
    fn finish_card(
        &mut self,
        (mut card, [preinit, perso]): (StoredCard, [Option<i64>; 2]),
    ) -> Result<StoredCard, StoreError> {
        for (id, transcript) in [
            (preinit, &mut card.card.preinit),
            (perso, &mut card.card.perso),
        ] {
            if let (Some(id), Some(slot)) = (id, transcript.dictionary_mut()) {
                *slot = Some(self.dictionary_by_id(id)?);
            }
        }
        Ok(card)
    }

    /// Whether this attempt's audit line is there (its ending committed before the
    /// connection broke).
    fn recorded(&mut self, record: &AuditRecord) -> Result<bool, StoreError> {
        let started = parse_time(&record.started_at).map_err(|kind| self.error(kind))?;
        let uid = uid_text(record.uid);
        self.run(Retry::Yes, |client| {
            Ok(client
                .query_opt(
                    "SELECT 1 FROM vsc.audit WHERE uid = $1 AND station = $2 AND reader = $3 \
                     AND started_at = $4 AND result = $5",
                    &[
                        &uid,
                        &record.station,
                        &record.reader,
                        &started,
                        &record.result.name(),
                    ],
                )?
                .is_some())
        })
    }

    fn finish_once(
        &mut self,
        record: &AuditRecord,
        started: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let status = match record.result {
            AuditResult::Personalized | AuditResult::Confirmed => Some("personalized"),
            AuditResult::Failed => Some("failed"),
            AuditResult::Refused | AuditResult::Released | AuditResult::Abandoned => None,
        };
        let (step, reason) = match record.result {
            AuditResult::Failed => (
                record
                    .failed_step
                    .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
                record.reason.as_deref(),
            ),
            _ => (None, None),
        };
        let uid = uid_text(record.uid);
        let audit_step = record
            .failed_step
            .map(|s| i32::try_from(s).unwrap_or(i32::MAX));
        let duration = i64::try_from(record.duration_ms).unwrap_or(i64::MAX);
        self.run(Retry::No, |client| {
            let finish = client.cached(FINISH)?;
            let inserted = match status {
                Some(status) => client.execute(
                    &finish,
                    &[
                        &uid,
                        &status,
                        &step,
                        &reason,
                        &record.station,
                        &record.host,
                        &record.reader,
                        &record.transcript_digest,
                        &record.result.name(),
                        &audit_step,
                        &record.reason,
                        &started,
                        &duration,
                    ],
                )?,
                None => client.execute(
                    "INSERT INTO vsc.audit (uid, station, host, reader, transcript_digest, \
                         result, failed_step, reason, started_at, duration_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &uid,
                        &record.station,
                        &record.host,
                        &record.reader,
                        &record.transcript_digest,
                        &record.result.name(),
                        &audit_step,
                        &record.reason,
                        &started,
                        &duration,
                    ],
                )?,
            };
            if inserted == 0 {
                let known = client
                    .query_opt("SELECT 1 FROM vsc.cards WHERE uid = $1", &[&uid])?
                    .is_some();
                return Err(Abort::Store(if known {
                    StoreErrorKind::ClaimLost(record.uid)
                } else {
                    StoreErrorKind::NotFound(record.uid)
                }));
            }
            Ok(())
        })
    }
}

/// Runs the migrations from the store's version, in one transaction (the caller holds the
/// migration lock).
fn migrate_locked(client: &mut Client) -> Result<u32, Abort> {
    let mut tx = client.transaction()?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('vsc.schema_version') IS NOT NULL", &[])?
        .get(0);
    let mut version = if exists {
        let found: i32 = tx
            .query_one("SELECT max(version) FROM vsc.schema_version", &[])?
            .get(0);
        found.max(0) as u32
    } else {
        0
    };
    for (start, statements) in schema::MIGRATIONS {
        if start == version {
            tx.batch_execute(statements)?;
            let found: i32 = tx
                .query_one("SELECT max(version) FROM vsc.schema_version", &[])?
                .get(0);
            version = found.max(0) as u32;
        }
    }
    if version != SCHEMA_VERSION {
        return Err(Abort::Store(StoreErrorKind::Corrupt {
            what: format!("schema version {version} (no migration to {SCHEMA_VERSION})"),
        }));
    }
    tx.commit()?;
    Ok(version)
}

impl Store for PostgresStore {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn migrate(&mut self) -> Result<Migration, StoreError> {
        let from = self.version()?.unwrap_or(0);
        if from > SCHEMA_VERSION {
            return Err(self.error(StoreErrorKind::SchemaTooNew {
                found: from,
                supported: SCHEMA_VERSION,
            }));
        }
        let to = self.run(Retry::Yes, |client| {
            // One migration at a time, whichever process runs it; the version is read again
            // under the lock, in a transaction begun after it (so that it sees the catalog a
            // migration that held the lock committed).
            client.batch_execute("SELECT pg_advisory_lock(5653434400000003)")?;
            let migrated = migrate_locked(&mut client.client);
            let unlocked = client.batch_execute("SELECT pg_advisory_unlock(5653434400000003)");
            let version = migrated?;
            unlocked?;
            Ok(version)
        })?;
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
        Ok(Migration { from, to })
    }

    fn insert_batch(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let types = [
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::BYTEA,
            Type::BOOL,
            Type::BYTEA,
            Type::TEXT,
            Type::BOOL,
            Type::BYTEA,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
        ];
        // A batch whose commit may have been lost is not sent again: `prepare` stops, and a
        // run with --skip-existing goes on where it stopped.
        self.run(Retry::No, |client| {
            let mut tx = client.transaction()?;
            if let Some(name) = batch.mailer_file {
                let stored = tx.execute(
                    "UPDATE vsc.mailer_files SET state = 'stored', updated_at = now() \
                     WHERE name = $1 AND state = 'pending'",
                    &[&name],
                )?;
                if stored == 0 {
                    return Err(Abort::Store(StoreErrorKind::Corrupt {
                        what: format!("PIN mailer file {name} (it was never announced)"),
                    }));
                }
            }
            let sink = tx.copy_in(
                "COPY vsc.cards (uid, profile_id, profile_version, status, image, \
                 preinit_sealed, preinit, preinit_digest, perso_sealed, perso, perso_digest, \
                 perso_dictionary, preinit_dictionary, mailer_file) FROM STDIN (FORMAT binary)",
            )?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for card in batch.cards {
                let (preinit, preinit_sealed, preinit_dictionary) = card.preinit.columns();
                let (perso, perso_sealed, dictionary) = card.perso.columns();
                let version = i32::try_from(card.profile_version).unwrap_or(i32::MAX);
                writer.write(&[
                    &uid_text(card.uid),
                    &card.profile_id,
                    &version,
                    &"prepared",
                    &card.image,
                    &preinit_sealed,
                    &preinit,
                    &card.preinit_digest,
                    &perso_sealed,
                    &perso,
                    &card.perso_digest,
                    &dictionary,
                    &preinit_dictionary,
                    &batch.mailer_file,
                ])?;
            }
            match writer.finish() {
                Ok(_) => {}
                Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    return Err(match duplicate_uid(&error) {
                        Some(uid) => Abort::Store(StoreErrorKind::Duplicate(uid)),
                        None => Abort::Postgres(error),
                    });
                }
                Err(error) => return Err(error.into()),
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn contains(&mut self, uid: Uid) -> Result<bool, StoreError> {
        let uid = uid_text(uid);
        self.run(Retry::Yes, |client| {
            Ok(client
                .query_opt("SELECT 1 FROM vsc.cards WHERE uid = $1", &[&uid])?
                .is_some())
        })
    }

    fn existing(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, StoreError> {
        let texts: Vec<String> = uids.iter().copied().map(uid_text).collect();
        let found: Vec<String> = self.run(Retry::Yes, |client| {
            Ok(client
                .query("SELECT uid FROM vsc.cards WHERE uid = ANY($1)", &[&texts])?
                .iter()
                .map(|row| row.get(0))
                .collect())
        })?;
        let found: std::collections::HashSet<String> = found.into_iter().collect();
        Ok(uids
            .iter()
            .filter(|uid| found.contains(&uid.to_string()))
            .copied()
            .collect())
    }

    fn dictionary(
        &mut self,
        profile_id: &str,
        profile_version: u32,
        kind: Kind,
    ) -> Result<Option<Dictionary>, StoreError> {
        let version = i32::try_from(profile_version).unwrap_or(i32::MAX);
        let id: Option<i64> = self.run(Retry::Yes, |client| {
            Ok(client
                .query_one(
                    "SELECT min(id) FROM vsc.dictionaries WHERE profile_id = $1 \
                     AND profile_version = $2 AND kind = $3",
                    &[&profile_id, &version, &kind.label()],
                )?
                .get(0))
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
        let version = i32::try_from(profile_version).unwrap_or(i32::MAX);
        let id: i64 = self.run(Retry::No, |client| {
            Ok(client
                .query_one(
                    "INSERT INTO vsc.dictionaries (profile_id, profile_version, kind, text, digest) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&profile_id, &version, &kind.label(), &packed, &digest],
                )?
                .get(0))
        })?;
        let dictionary = Dictionary::new(id, text.as_bytes().to_vec());
        self.dictionaries.insert(id, dictionary.clone());
        Ok(dictionary)
    }

    fn card(&mut self, uid: Uid) -> Result<Option<StoredCard>, StoreError> {
        let uid = uid_text(uid);
        let sql = format!("SELECT {CARD_COLUMNS} FROM vsc.cards WHERE uid = $1");
        let row = self.run(Retry::Yes, |client| {
            let statement = client.cached(&sql)?;
            client
                .query_opt(&statement, &[&uid])?
                .map(|row| card_from_row(&row).map_err(Abort::Store))
                .transpose()
        })?;
        row.map(|row| self.finish_card(row)).transpose()
    }

    fn status(&mut self) -> Result<StoreStatus, StoreError> {
        let schema_version = self.version()?.unwrap_or(0);
        let (cards, profiles, stations, claims, mailer) = self.run(Retry::Yes, |client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(::postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut cards: Vec<(String, u64)> = ["prepared", "claimed", "personalized", "failed"]
                .iter()
                .map(|state| (state.to_string(), 0))
                .collect();
            for row in tx.query("SELECT status, count(*) FROM vsc.cards GROUP BY 1", &[])? {
                let state: String = row.get(0);
                let count = row.get::<_, i64>(1).max(0) as u64;
                match cards.iter_mut().find(|(s, _)| *s == state) {
                    Some(entry) => entry.1 = count,
                    None => cards.push((state, count)),
                }
            }
            let profiles = tx
                .query(
                    "SELECT profile_id, profile_version, status, count(*) FROM vsc.cards \
                     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                    &[],
                )?
                .iter()
                .map(|row| ProfileCount {
                    profile: row.get(0),
                    version: row.get::<_, i32>(1).max(0) as u32,
                    state: row.get(2),
                    cards: row.get::<_, i64>(3).max(0) as u64,
                })
                .collect::<Vec<_>>();
            let stations = tx
                .query(
                    "SELECT station, result, count(*) FROM vsc.audit GROUP BY 1, 2 \
                     ORDER BY 1, 2",
                    &[],
                )?
                .iter()
                .map(|row| {
                    let result: String = row.get(1);
                    AuditResult::from_name(&result)
                        .map(|result| StationCount {
                            station: row.get(0),
                            result,
                            attempts: row.get::<_, i64>(2).max(0) as u64,
                        })
                        .ok_or_else(|| {
                            Abort::Store(StoreErrorKind::Corrupt {
                                what: format!("audit result {result:?}"),
                            })
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let claims = tx
                .query(
                    "SELECT uid, claimed_by, claim_reader, \
                     (extract(epoch FROM claim_expires) * 1000)::bigint, \
                     (extract(epoch FROM claim_expires - now()) * 1000)::bigint \
                     FROM vsc.cards WHERE status = 'claimed' ORDER BY uid",
                    &[],
                )?
                .iter()
                .map(|row| {
                    Ok(ClaimInfo {
                        uid: parse_uid(row.get(0)).map_err(Abort::Store)?,
                        lease: Lease {
                            station: row.get(1),
                            reader: row.get::<_, Option<String>>(2).unwrap_or_default(),
                            expires_at_ms: row.get(3),
                        },
                        remaining_ms: row.get(4),
                    })
                })
                .collect::<Result<Vec<_>, Abort>>()?;
            let mailer = tx
                .query(
                    "SELECT state, count(*) FROM vsc.mailer_files GROUP BY 1 ORDER BY 1",
                    &[],
                )?
                .iter()
                .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1).max(0) as u64))
                .collect::<Vec<_>>();
            tx.commit()?;
            Ok((cards, profiles, stations, claims, mailer))
        })?;
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
        let text = uid_text(uid);
        let lease = lease_ms(lease);
        // One statement: lock the card, take it if it may be taken, and audit the claim it
        // takes over. A claim whose reply was lost is not sent again: the card then waits
        // for its lease, or for this station's next claim (which audits the lost one).
        let sql = format!(
            "WITH old AS ( \
                 SELECT uid, status, claimed_by, claim_reader, claim_host, claimed_at, \
                     claim_expires, claim_expires <= now() AS expired, perso_digest \
                 FROM vsc.cards WHERE uid = $1 FOR UPDATE), \
             granted AS ( \
                 UPDATE vsc.cards c SET status = 'claimed', claimed_by = $2, \
                     claim_reader = $3, claim_host = $4, claimed_at = now(), \
                     claim_expires = now() + $5::float8 * interval '1 millisecond', updated_at = now() \
                 FROM old WHERE c.uid = old.uid AND (old.status IN ('prepared', 'failed') \
                     OR (old.status = 'claimed' AND (old.claimed_by = $2 OR old.expired))) \
                 RETURNING c.*), \
             abandoned AS ( \
                 INSERT INTO vsc.audit (uid, station, host, reader, transcript_digest, result, \
                     reason, started_at, duration_ms) \
                 SELECT old.uid, old.claimed_by, coalesce(old.claim_host, ''), \
                     coalesce(old.claim_reader, ''), old.perso_digest, 'abandoned', \
                     CASE WHEN old.claimed_by = $2 \
                         THEN format('the attempt never ended: %s started again and took \
                             the card at %s', $2::text, $3::text) \
                         ELSE format('the attempt never ended: its lease ended and %s took \
                             the card at %s', $2::text, $3::text) END, \
                     coalesce(old.claimed_at, now()), \
                     greatest(0, (extract(epoch FROM now() - coalesce(old.claimed_at, now())) \
                         * 1000)::bigint) \
                 FROM old WHERE old.status = 'claimed' AND EXISTS (SELECT 1 FROM granted)) \
             SELECT old.status AS old_status, old.claimed_by AS old_by, \
                 old.claim_reader AS old_reader, \
                 (extract(epoch FROM old.claim_expires) * 1000)::bigint AS old_expires_ms, \
                 old.expired AS old_expired, g.uid IS NOT NULL AS granted, {} \
             FROM old LEFT JOIN granted g ON true",
            CARD_COLUMNS
                .split(", ")
                .map(|column| match column.split_once(" AS ") {
                    Some((expression, name)) => format!(
                        "{} AS {name}",
                        expression.replace("claim_expires", "g.claim_expires")
                    ),
                    None => format!("g.{column}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let claimed = self.run(Retry::No, |client| {
            let statement = client.cached(&sql)?;
            let Some(row) = client.query_opt(
                &statement,
                &[
                    &text,
                    &claimant.station,
                    &claimant.reader,
                    &claimant.host,
                    &(lease as f64),
                ],
            )?
            else {
                return Ok(Err(ClaimRefused::Unknown(uid)));
            };
            let old_status: String = row.get("old_status");
            let held = || Lease {
                station: row.get::<_, Option<String>>("old_by").unwrap_or_default(),
                reader: row
                    .get::<_, Option<String>>("old_reader")
                    .unwrap_or_default(),
                expires_at_ms: row.get::<_, Option<i64>>("old_expires_ms").unwrap_or(0),
            };
            if !row.get::<_, bool>("granted") {
                return Ok(Err(if old_status == "personalized" {
                    ClaimRefused::AlreadyPersonalized(uid)
                } else {
                    ClaimRefused::ClaimedElsewhere { uid, lease: held() }
                }));
            }
            let previous = match old_status.as_str() {
                "prepared" => Previous::Prepared,
                "failed" => Previous::Failed,
                _ if held().station == claimant.station => Previous::OwnClaim,
                _ => Previous::ExpiredClaim(held()),
            };
            let card = card_from_row(&row).map_err(Abort::Store)?;
            Ok(Ok((card, previous)))
        })?;
        match claimed {
            Err(refused) => Ok(Err(refused)),
            Ok((row, previous)) => {
                let card = self.finish_card(row)?;
                let CardStatus::Claimed(lease) = card.status.clone() else {
                    return Err(self.error(StoreErrorKind::Corrupt {
                        what: format!("claim of card {uid}"),
                    }));
                };
                Ok(Ok(Claim {
                    card,
                    lease,
                    previous,
                }))
            }
        }
    }

    fn renew(&mut self, uid: Uid, station: &str, lease: Duration) -> Result<bool, StoreError> {
        let uid = uid_text(uid);
        let lease = lease_ms(lease) as f64;
        self.run(Retry::Yes, |client| {
            let statement = client.cached(RENEW)?;
            Ok(client.execute(&statement, &[&uid, &station, &lease])? > 0)
        })
    }

    fn finish_attempt(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        let started = parse_time(&record.started_at).map_err(|kind| self.error(kind))?;
        let deadline = Instant::now() + self.options.lock_timeout;
        loop {
            match self.finish_once(record, started) {
                Ok(()) => return Ok(()),
                // The connection broke with the ending sent: it committed when its line is
                // there; else it never did, and is sent again.
                Err(error)
                    if matches!(error.kind(), StoreErrorKind::Postgres(e) if connection_lost(e))
                        && Instant::now() < deadline =>
                {
                    if self.recorded(record)? {
                        return Ok(());
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn release(&mut self, uid: Uid, by: &Claimant) -> Result<Option<Lease>, StoreError> {
        let text = uid_text(uid);
        self.run(Retry::No, |client| {
            let mut tx = client.transaction()?;
            let Some(row) = tx.query_opt(
                "SELECT status, claimed_by, claim_reader, \
                 (extract(epoch FROM claim_expires) * 1000)::bigint \
                 FROM vsc.cards WHERE uid = $1 FOR UPDATE",
                &[&text],
            )?
            else {
                return Err(Abort::Store(StoreErrorKind::NotFound(uid)));
            };
            if row.get::<_, &str>(0) != "claimed" {
                return Ok(None);
            }
            let lease = Lease {
                station: row.get::<_, Option<String>>(1).unwrap_or_default(),
                reader: row.get::<_, Option<String>>(2).unwrap_or_default(),
                expires_at_ms: row.get::<_, Option<i64>>(3).unwrap_or(0),
            };
            let reason = format!(
                "the claim of {} at {} was released by hand by {}",
                lease.station, lease.reader, by.station
            );
            tx.execute(
                "UPDATE vsc.cards SET status = 'failed', failed_step = NULL, failure = $2, \
                 claimed_by = NULL, claim_reader = NULL, claim_host = NULL, claimed_at = NULL, \
                 claim_expires = NULL, updated_at = now() WHERE uid = $1",
                &[&text, &reason],
            )?;
            tx.execute(
                "INSERT INTO vsc.audit (uid, station, host, reader, result, reason, \
                 started_at, duration_ms) VALUES ($1, $2, $3, $4, 'released', $5, now(), 0)",
                &[&text, &by.station, &by.host, &lease.reader, &reason],
            )?;
            tx.commit()?;
            Ok(Some(lease))
        })
    }

    fn audit(&mut self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let since = filter
            .since
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|kind| self.error(kind))?;
        let uid = filter.uid.map(uid_text);
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM vsc.audit WHERE ($1::timestamptz IS NULL OR \
             started_at >= $1) AND ($2::text IS NULL OR uid = $2) AND ($3::text IS NULL OR \
             station = $3) ORDER BY id"
        );
        self.run(Retry::Yes, |client| {
            client
                .query(&sql, &[&since, &uid, &filter.station])?
                .iter()
                .map(|row| audit_from_row(row).map_err(Abort::Store))
                .collect()
        })
    }

    fn announce_mailer_file(&mut self, file: &MailerFile) -> Result<(), StoreError> {
        let uids: Vec<String> = file.uids.iter().copied().map(uid_text).collect();
        self.run(Retry::No, |client| {
            client.execute(
                "INSERT INTO vsc.mailer_files (name, run, folder, state, uids) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &file.name,
                    &file.run,
                    &file.folder,
                    &file.state.name(),
                    &uids,
                ],
            )?;
            Ok(())
        })
    }

    fn mailer_files(&mut self, state: MailerState) -> Result<Vec<MailerFile>, StoreError> {
        self.run(Retry::Yes, |client| {
            client
                .query(
                    "SELECT name, run, folder, uids FROM vsc.mailer_files WHERE state = $1 \
                     ORDER BY created_at, name",
                    &[&state.name()],
                )?
                .iter()
                .map(|row| {
                    Ok(MailerFile {
                        name: row.get(0),
                        run: row.get(1),
                        folder: row.get(2),
                        state,
                        uids: row
                            .get::<_, Vec<String>>(3)
                            .iter()
                            .map(|uid| parse_uid(uid))
                            .collect::<Result<_, _>>()
                            .map_err(Abort::Store)?,
                    })
                })
                .collect()
        })
    }

    fn mark_orphan(&mut self, name: &str) -> Result<(), StoreError> {
        self.run(Retry::Yes, |client| {
            client.execute(
                "UPDATE vsc.mailer_files SET state = 'orphan', updated_at = now() \
                 WHERE name = $1 AND state = 'pending'",
                &[&name],
            )?;
            Ok(())
        })
    }

    fn discard(&mut self) -> Result<(), StoreError> {
        // Only a store with no card and no audit line is dropped: this run made it and
        // stored nothing.
        self.run(Retry::No, |client| {
            let mut tx = client.transaction()?;
            let used: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM vsc.cards) OR EXISTS (SELECT 1 FROM vsc.audit)",
                    &[],
                )?
                .get(0);
            if !used {
                tx.batch_execute("DROP SCHEMA vsc CASCADE")?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

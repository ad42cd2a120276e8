//! What can go wrong with a store. Every error names the store it happened in, and each cause
//! is printed once: the database's own message is part of the text, not a `source()` repeating
//! it.

use std::fmt;
use std::time::Duration;

use super::Uid;

/// A store failed.
#[derive(Debug)]
pub struct StoreError {
    store: String,
    kind: StoreErrorKind,
}

/// What failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// SQLite refused or failed.
    Sqlite(rusqlite::Error),
    /// PostgreSQL refused or failed.
    Postgres(postgres::Error),
    /// The PostgreSQL server could not be reached (or the connection broke) for longer than
    /// the lock timeout.
    Unreachable {
        /// How long this process tried.
        waited: Duration,
        /// The last failure.
        cause: postgres::Error,
    },
    /// The connection string cannot be used (an option this program's driver does not know,
    /// a TLS setting it cannot honour).
    Config(String),
    /// A transcript at rest does not unpack.
    Unpack(super::packing::UnpackError),
    /// The store's file could not be created or read.
    Io(std::io::Error),
    /// A command that only uses a store found none (only `prepare` and `store migrate` create
    /// one).
    Missing,
    /// Another process held the store's write lock for longer than the lock timeout.
    LockTimeout {
        /// How long this process waited.
        waited: Duration,
    },
    /// The store's schema is newer than this program (or unknown).
    SchemaTooNew {
        /// The version found.
        found: u32,
        /// The newest version this program knows.
        supported: u32,
    },
    /// The store's schema is older than this program and must be migrated first.
    SchemaTooOld {
        /// The version found.
        found: u32,
        /// The version this program writes.
        current: u32,
    },
    /// A card with this UID is already in the store.
    Duplicate(Uid),
    /// The store holds a value this program cannot read.
    Corrupt {
        /// The card or row.
        what: String,
    },
    /// The card is not in the store.
    NotFound(Uid),
    /// This station's claim on the card is gone (its lease expired and another station took
    /// it over): the attempt's ending was not recorded.
    ClaimLost(Uid),
}

impl StoreError {
    /// An error in the store `store` (its location as shown to people).
    pub fn new(store: impl fmt::Display, kind: StoreErrorKind) -> StoreError {
        StoreError {
            store: store.to_string(),
            kind,
        }
    }

    /// What failed.
    pub fn kind(&self) -> &StoreErrorKind {
        &self.kind
    }

    /// The store, as shown in the message.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Whether the store was busy: another process held its lock past the timeout.
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self.kind, StoreErrorKind::LockTimeout { .. })
    }

    /// Whether the store could not be reached for the lock timeout: locked by another process,
    /// or its server unreachable. The operation was not done; trying later may work.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::LockTimeout { .. } | StoreErrorKind::Unreachable { .. }
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = &self.store;
        match &self.kind {
            StoreErrorKind::Sqlite(error) => write!(f, "store {store}: {}", sqlite_message(error)),
            StoreErrorKind::Postgres(error) => {
                write!(f, "store {store}: {}", postgres_message(error))
            }
            StoreErrorKind::Unreachable { waited, cause } => write!(
                f,
                "store {store} cannot be reached: gave up after {:.1} s (--lock-timeout): {}",
                waited.as_secs_f64(),
                postgres_message(cause)
            ),
            StoreErrorKind::Config(why) => write!(f, "store {store}: {why}"),
            StoreErrorKind::Unpack(error) => write!(f, "store {store}: {error}"),
            StoreErrorKind::Io(error) => write!(f, "store {store}: {error}"),
            StoreErrorKind::Missing => write!(
                f,
                "no store at {store} (`vsc-personalizer prepare` or `store migrate` creates one)"
            ),
            StoreErrorKind::LockTimeout { waited } => write!(
                f,
                "store {store} is locked by another process: gave up after {:.1} s \
                 (--lock-timeout)",
                waited.as_secs_f64()
            ),
            StoreErrorKind::SchemaTooNew { found, supported } => write!(
                f,
                "store {store} has schema version {found}; this program knows up to {supported} \
                 (use a newer vsc-personalizer)"
            ),
            StoreErrorKind::SchemaTooOld { found, current } => write!(
                f,
                "store {store} has schema version {found}, this program writes {current}: run \
                 `vsc-personalizer store migrate --store {store}` first"
            ),
            StoreErrorKind::Duplicate(uid) => {
                write!(f, "store {store}: card {uid} is already in it")
            }
            StoreErrorKind::Corrupt { what } => {
                write!(f, "store {store} holds an unreadable {what}")
            }
            StoreErrorKind::NotFound(uid) => write!(f, "card {uid} is not in the store {store}"),
            StoreErrorKind::ClaimLost(uid) => write!(
                f,
                "store {store}: the claim on card {uid} was lost (its lease expired and another \
                 station took the card)"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// SQLite's message once: its extended message when there is one (the code's description
/// below it says the same), else the code's description.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

/// PostgreSQL's message once: the server's message (and its detail, which names the row) for a
/// database error, else the driver's text with its cause.
pub(super) fn postgres_message(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
    }
    let text = error.to_string();
    match std::error::Error::source(error) {
        Some(cause) if !text.contains(&cause.to_string()) => format!("{text}: {cause}"),
        _ => text,
    }
}

//! The VSC store: per card its UID, profile, status, sealed image and transcripts, and the
//! append-only audit log of the stations. SQLite by default ([`SqliteStore`]); the [`Store`]
//! trait is what another database (PostgreSQL, for many stations on many machines) implements.

mod sqlite;

use std::fmt;

pub use sqlite::SqliteStore;

pub use vsc_core::Uid;

/// Where a card is in its life at the bureau.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardStatus {
    /// Prepared: image and transcripts ready, waiting for its real card.
    Prepared,
    /// A station task is personalizing it.
    Claimed {
        /// Which station and reader.
        by: String,
    },
    /// Personalized and read back.
    Personalized,
    /// The last attempt failed; a retry starts from the first step.
    Failed {
        /// The step (1-based) that failed, if the replay got that far.
        step: Option<u32>,
        /// What went wrong.
        reason: String,
    },
}

impl CardStatus {
    /// The status word stored.
    pub fn name(&self) -> &'static str {
        match self {
            CardStatus::Prepared => "prepared",
            CardStatus::Claimed { .. } => "claimed",
            CardStatus::Personalized => "personalized",
            CardStatus::Failed { .. } => "failed",
        }
    }
}

/// A transcript as stored: its text, sealed when it carries secrets in clear (the
/// pre-initialization transcript loads the channel keys; a plain personalization carries PINs
/// and keys).
#[derive(Clone, PartialEq, Eq)]
pub enum StoredTranscript {
    /// The transcript's text.
    Clear(String),
    /// The transcript's text sealed under a key derived from the issuer master key.
    Sealed(Vec<u8>),
}

impl fmt::Debug for StoredTranscript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredTranscript::Clear(text) => write!(f, "Clear({} bytes)", text.len()),
            StoredTranscript::Sealed(bytes) => write!(f, "Sealed({} bytes)", bytes.len()),
        }
    }
}

/// What preparation hands the store for one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedCard {
    /// The card's UID.
    pub uid: Uid,
    /// The profile it was prepared with.
    pub profile_id: String,
    /// The profile's version.
    pub profile_version: u32,
    /// The personalized VSC image (sealed areas inside).
    pub image: Vec<u8>,
    /// The pre-initialization transcript.
    pub preinit: StoredTranscript,
    /// Its SHA-256 digest, hex.
    pub preinit_digest: String,
    /// The personalization transcript.
    pub perso: StoredTranscript,
    /// Its SHA-256 digest, hex.
    pub perso_digest: String,
}

/// A card in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCard {
    /// What preparation made.
    pub card: PreparedCard,
    /// Where it is now.
    pub status: CardStatus,
    /// When it was prepared (RFC 3339, UTC).
    pub created_at: String,
    /// When its status last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// One line of the audit log: a personalization attempt at a station.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The card.
    pub uid: Uid,
    /// The reader it was in.
    pub reader: String,
    /// The station.
    pub station: String,
    /// The digest of the transcript replayed.
    pub transcript_digest: String,
    /// `personalized`, `failed` or `refused`.
    pub result: String,
    /// The failing step, if any.
    pub failed_step: Option<u32>,
    /// When the attempt started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// How a station's attempt on a card ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Personalized and read back.
    Personalized,
    /// The replay or the read-back failed; a retry starts from the first step.
    Failed {
        /// The step (1-based) that failed, if the replay got that far.
        step: Option<u32>,
        /// What went wrong.
        reason: String,
    },
    /// The card was refused (unknown, already personalized, claimed elsewhere, unreadable):
    /// its status does not change.
    Refused,
}

/// Why a station may not personalize a card.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    /// The store does not know the UID.
    #[error("card {0} is not in the store")]
    Unknown(Uid),
    /// The card is already personalized.
    #[error("card {0} is already personalized")]
    AlreadyPersonalized(Uid),
    /// Another station task holds it.
    #[error("card {uid} is being personalized by {by}")]
    ClaimedElsewhere {
        /// The card.
        uid: Uid,
        /// Who holds it.
        by: String,
    },
}

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("store: {0}")]
    Database(#[from] rusqlite::Error),
    /// The store file was written by a newer (or unknown) version of this program.
    #[error("store schema version {found} is not supported (this program knows {supported})")]
    Schema {
        /// The version found.
        found: String,
        /// The version this program writes.
        supported: u32,
    },
    /// A card with this UID is already in the store.
    #[error("card {0} is already in the store")]
    Duplicate(Uid),
    /// The store holds a value this program cannot read.
    #[error("store holds an unreadable {what} for card {uid}")]
    Corrupt {
        /// The card.
        uid: String,
        /// What could not be read.
        what: &'static str,
    },
    /// Not a UID.
    #[error("{0:?} is not a UID (16 hex digits)")]
    BadUid(String),
    /// The card is not in the store.
    #[error("card {0} is not in the store")]
    NotFound(Uid),
}

/// The store behind preparation, export and the stations.
pub trait Store: Send {
    /// Adds prepared cards in one transaction: all of them or, on any error, none.
    fn insert_batch(&mut self, cards: &[PreparedCard]) -> Result<(), StoreError>;
    /// Whether a card with this UID is in the store.
    fn contains(&mut self, uid: Uid) -> Result<bool, StoreError>;
    /// The card with this UID.
    fn card(&mut self, uid: Uid) -> Result<Option<StoredCard>, StoreError>;
    /// How many cards have each status.
    fn counts(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
    /// Claims a prepared (or failed) card for a station task, atomically.
    fn claim(&mut self, uid: Uid, by: &str)
    -> Result<Result<StoredCard, ClaimRefused>, StoreError>;
    /// Ends a station's attempt in one transaction: the card's new status (none for a refused
    /// card, which was never claimed) and the attempt's line in the audit log.
    fn finish_attempt(&mut self, ending: &Ending, record: &AuditRecord) -> Result<(), StoreError>;
    /// The audit log, oldest first.
    fn audit_log(&mut self) -> Result<Vec<AuditRecord>, StoreError>;
}

/// The current time, RFC 3339 in UTC.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

//! The VSC store: per card its UID, profile, status, sealed image and transcripts, the PIN
//! mailer files its PINs went into, and the append-only audit log of the stations.
//!
//! Every command reaches a store through [`open`] and the [`Store`] trait; no backend is named
//! outside this module. The location ([`StoreLocation`]) says which backend: a SQLite file (the
//! embedded default) or PostgreSQL (one database for stations on many machines). Claims carry
//! a lease (owner and expiry, on the store's clock), so that a card left by a dead station
//! returns to the others; a card is personalized at most once, which the database itself
//! enforces; the audit log is typed ([`AuditResult`]) and append-only; schemas carry a version
//! and are migrated forward ([`Store::migrate`]). Transcripts rest compressed ([`packing`]).

mod error;
mod location;
pub mod packing;
mod postgres;
pub mod sealing;
mod sqlite;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
pub use vsc_core::transcript::Kind;

pub use error::{StoreError, StoreErrorKind};
pub use location::{LocationError, PostgresConfig, StoreLocation};
pub use packing::Dictionary;
pub use vsc_core::Uid;

/// The schema version this program writes, for every backend.
pub const SCHEMA_VERSION: u32 = 3;

/// How long a claim lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long a command waits for another process's lock on the store by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether opening may create the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The store must exist, with the current schema (everything but `prepare` and `store
    /// migrate`): a typo in `--store` is an error, never a new empty store.
    Existing,
    /// Create the store if it does not exist, and migrate an older schema.
    CreateOrMigrate,
}

/// What a store tells its user while it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Another process holds the store's lock; this one waits (at most the lock timeout).
    WaitingForLock {
        /// The store.
        store: String,
    },
    /// The store's server cannot be reached (or the connection broke); this process tries
    /// again (at most the lock timeout).
    WaitingForServer {
        /// The store.
        store: String,
    },
    /// The schema was migrated.
    Migrated {
        /// The store.
        store: String,
        /// From this version.
        from: u32,
        /// To this one.
        to: u32,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::WaitingForLock { store } => write!(f, "waiting for the lock on {store}"),
            Notice::WaitingForServer { store } => {
                write!(f, "waiting for the store's server ({store})")
            }
            Notice::Migrated { store, from, to } => {
                write!(
                    f,
                    "store {store}: schema migrated from version {from} to {to}"
                )
            }
        }
    }
}

/// Who hears a store's notices.
pub type Observer = Arc<dyn Fn(&Notice) + Send + Sync>;

/// How to open a store.
#[derive(Clone)]
pub struct OpenOptions {
    /// Whether it may be created.
    pub access: Access,
    /// How long to wait for another process's lock before giving up.
    pub lock_timeout: Duration,
    /// Who hears the notices (lock waits, migrations).
    pub observer: Option<Observer>,
}

impl OpenOptions {
    /// Options for `access`, the default lock timeout, no observer.
    pub fn new(access: Access) -> OpenOptions {
        OpenOptions {
            access,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            observer: None,
        }
    }

    /// The same, with this lock timeout.
    pub fn lock_timeout(mut self, timeout: Duration) -> OpenOptions {
        self.lock_timeout = timeout;
        self
    }

    /// The same, with this observer.
    pub fn observer(mut self, observer: Observer) -> OpenOptions {
        self.observer = Some(observer);
        self
    }

    fn notify(&self, notice: &Notice) {
        if let Some(observer) = &self.observer {
            observer(notice);
        }
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("access", &self.access)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// An opened store, and whether opening created it.
pub struct Opened {
    /// The store.
    pub store: Box<dyn Store>,
    /// Whether this open created it (a run that then stores nothing removes it again with
    /// [`discard_new`]).
    pub created: bool,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("store", &self.store.location())
            .field("created", &self.created)
            .finish()
    }
}

/// Opens the store at `location`.
pub fn open(location: &StoreLocation, options: &OpenOptions) -> Result<Opened, StoreError> {
    match location {
        StoreLocation::Sqlite(path) => {
            let (store, created) = sqlite::SqliteStore::open(location, path, options)?;
            Ok(Opened {
                store: Box::new(store),
                created,
            })
        }
        StoreLocation::Postgres(config) => {
            let (store, created) = postgres::PostgresStore::open(location, config, options)?;
            Ok(Opened {
                store: Box::new(store),
                created,
            })
        }
    }
}

/// Removes a store that this run created and never filled (a `prepare` that failed before its
/// first card leaves nothing behind).
pub fn discard_new(opened: Opened) -> Result<(), StoreError> {
    let location = opened.store.location().clone();
    match &location {
        StoreLocation::Sqlite(path) => {
            drop(opened);
            sqlite::remove_files(&location, path)
        }
        StoreLocation::Postgres(_) => {
            let mut store = opened.store;
            store.discard()
        }
    }
}

/// Where a card is in its life at the bureau.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardStatus {
    /// Prepared: image and transcripts ready, waiting for its real card.
    Prepared,
    /// A station task is personalizing it, under a lease.
    Claimed(Lease),
    /// Personalized and read back.
    Personalized,
    /// The last attempt failed; a retry starts from the first step.
    Failed {
        /// The step (1-based) that failed, if the replay got that far.
        step: Option<u32>,
        /// What went wrong (masked: never a secret).
        reason: String,
    },
}

impl CardStatus {
    /// The state's name, as stored and shown.
    pub fn name(&self) -> &'static str {
        match self {
            CardStatus::Prepared => "prepared",
            CardStatus::Claimed(_) => "claimed",
            CardStatus::Personalized => "personalized",
            CardStatus::Failed { .. } => "failed",
        }
    }
}

/// A claim's lease: who holds the card, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The station (its id).
    pub station: String,
    /// The reader the card is in.
    pub reader: String,
    /// When the lease ends, in milliseconds since the Unix epoch on the store's clock; after it
    /// any station may take the card.
    pub expires_at_ms: i64,
}

impl Lease {
    /// Whether the lease has ended at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms <= now_ms
    }
}

/// A transcript as stored: compressed ([`packing`]), and sealed when it carries secrets in
/// clear (the pre-initialization transcript loads the channel keys; a plain personalization
/// carries PINs and keys). [`sealing::open`] gives the text back.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredTranscript {
    /// The transcript's text (as stores of schema version 2 and before kept it).
    Clear(String),
    /// The text compressed, in clear, with the dictionary it was compressed against.
    Packed(PackedTranscript),
    /// The text (schema version 2 and before) or the compressed text, sealed under a key
    /// derived from the issuer master key ([`sealing`]).
    Sealed(SealedTranscript),
}

/// A transcript sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedTranscript {
    /// The sealed bytes.
    pub bytes: Vec<u8>,
    /// The dictionary its text was compressed against before sealing, if any.
    pub dictionary: Option<Dictionary>,
}

impl SealedTranscript {
    /// Sealed bytes whose text needs no dictionary.
    pub fn new(bytes: Vec<u8>) -> SealedTranscript {
        SealedTranscript {
            bytes,
            dictionary: None,
        }
    }
}

/// A transcript compressed in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedTranscript {
    /// The zstd frame.
    pub bytes: Vec<u8>,
    /// The dictionary it was compressed against, if any.
    pub dictionary: Option<Dictionary>,
}

impl StoredTranscript {
    /// The dictionary it needs, if any.
    pub fn dictionary_mut(&mut self) -> Option<&mut Option<Dictionary>> {
        match self {
            StoredTranscript::Clear(_) => None,
            StoredTranscript::Packed(packed) => Some(&mut packed.dictionary),
            StoredTranscript::Sealed(sealed) => Some(&mut sealed.dictionary),
        }
    }

    /// Compresses `text` in clear, against `dictionary` when given.
    pub fn pack(text: &str, dictionary: Option<&Dictionary>) -> StoredTranscript {
        StoredTranscript::Packed(PackedTranscript {
            bytes: packing::pack(text.as_bytes(), dictionary),
            dictionary: dictionary.cloned(),
        })
    }

    /// The bytes that rest in the store, whether they are sealed, and the dictionary's id.
    pub fn columns(&self) -> (&[u8], bool, Option<i64>) {
        match self {
            StoredTranscript::Clear(text) => (text.as_bytes(), false, None),
            StoredTranscript::Packed(packed) => (
                &packed.bytes,
                false,
                packed.dictionary.as_ref().map(Dictionary::id),
            ),
            StoredTranscript::Sealed(sealed) => (
                &sealed.bytes,
                true,
                sealed.dictionary.as_ref().map(Dictionary::id),
            ),
        }
    }

    /// The transcript as a store row gives it back: sealed bytes, packed bytes or text, with
    /// the dictionary the row names.
    pub fn from_columns(
        bytes: Vec<u8>,
        sealed: bool,
        dictionary: Option<Dictionary>,
    ) -> StoredTranscript {
        if sealed {
            StoredTranscript::Sealed(SealedTranscript { bytes, dictionary })
        } else if packing::is_packed(&bytes) {
            StoredTranscript::Packed(PackedTranscript { bytes, dictionary })
        } else {
            StoredTranscript::Clear(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

impl fmt::Debug for StoredTranscript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredTranscript::Clear(text) => write!(f, "Clear({} bytes)", text.len()),
            StoredTranscript::Packed(packed) => write!(
                f,
                "Packed({} bytes, dictionary {:?})",
                packed.bytes.len(),
                packed.dictionary.as_ref().map(Dictionary::id)
            ),
            StoredTranscript::Sealed(sealed) => write!(
                f,
                "Sealed({} bytes, dictionary {:?})",
                sealed.bytes.len(),
                sealed.dictionary.as_ref().map(Dictionary::id)
            ),
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
    /// The PIN mailer file holding its PIN and PUK, if it had one.
    pub mailer_file: Option<String>,
    /// When it was prepared (RFC 3339, UTC).
    pub created_at: String,
    /// When its status last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// A batch of prepared cards: one transaction, and the PIN mailer file that holds their PINs.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The cards.
    pub cards: &'a [PreparedCard],
    /// Their PIN mailer file, announced before with [`Store::announce_mailer_file`].
    pub mailer_file: Option<&'a str>,
}

/// A PIN mailer file as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailerFile {
    /// The file's name in the PIN mailer folder.
    pub name: String,
    /// The preparation run that wrote it.
    pub run: String,
    /// The PIN mailer folder it is in (as the run named it).
    pub folder: String,
    /// Where it stands.
    pub state: MailerState,
    /// The cards it names.
    pub uids: Vec<Uid>,
}

/// Where a PIN mailer file stands with its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailerState {
    /// Announced: its batch is being written; if the run stops now, the file is an orphan.
    Pending,
    /// Its batch is in the store: it holds the PINs of those cards.
    Stored,
    /// Its batch never reached the store: its entries belong to no stored card.
    Orphan,
}

impl MailerState {
    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            MailerState::Pending => "pending",
            MailerState::Stored => "stored",
            MailerState::Orphan => "orphan",
        }
    }
}

/// Who is attempting a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    /// The station's id (a station recognizes its own earlier claims by it).
    pub station: String,
    /// The machine it runs on.
    pub host: String,
    /// The reader the card is in.
    pub reader: String,
}

/// A granted claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The card, as stored when claimed (its status now [`CardStatus::Claimed`]).
    pub card: StoredCard,
    /// The lease granted.
    pub lease: Lease,
    /// What the card was before this claim.
    pub previous: Previous,
}

/// What a claimed card was before the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Previous {
    /// Prepared, never attempted.
    Prepared,
    /// An earlier attempt failed.
    Failed,
    /// This station's own earlier claim (it stopped before finishing the card).
    OwnClaim,
    /// Another station's claim whose lease had ended.
    ExpiredClaim(Lease),
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
    /// Another station holds it, under a lease that has not ended.
    #[error("card {uid} is being personalized by {} at {}", lease.station, lease.reader)]
    ClaimedElsewhere {
        /// The card.
        uid: Uid,
        /// The other station's lease.
        lease: Lease,
    },
}

/// How an attempt on a card ended, as the audit log keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum AuditResult {
    /// Replayed and read back: the card is personalized.
    Personalized,
    /// Found already operational, and its read-back equals its prepared image: an earlier
    /// attempt finished the card without recording it. Now marked personalized.
    Confirmed,
    /// The replay or the read-back failed; a retry starts from the first step.
    Failed,
    /// Not attempted: unknown, already personalized, or claimed elsewhere. Status unchanged.
    Refused,
    /// A claim released by hand (`store release`): the card may be attempted again.
    Released,
    /// An attempt that never ended: its station stopped (killed, or cut off from the store)
    /// and its claim was taken over after its lease, or by the same station started again.
    /// The store writes this line, for the claim's station, when the claim is taken over.
    Abandoned,
}

impl AuditResult {
    /// Every result.
    pub const ALL: [AuditResult; 6] = [
        AuditResult::Personalized,
        AuditResult::Confirmed,
        AuditResult::Failed,
        AuditResult::Refused,
        AuditResult::Released,
        AuditResult::Abandoned,
    ];

    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            AuditResult::Personalized => "personalized",
            AuditResult::Confirmed => "confirmed",
            AuditResult::Failed => "failed",
            AuditResult::Refused => "refused",
            AuditResult::Released => "released",
            AuditResult::Abandoned => "abandoned",
        }
    }

    /// The result a stored name gives.
    pub fn from_name(name: &str) -> Option<AuditResult> {
        AuditResult::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for AuditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of the audit log: an attempt at a station (or a release by hand).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The card.
    pub uid: Uid,
    /// The station.
    pub station: String,
    /// The machine it ran on.
    pub host: String,
    /// The reader the card was in.
    pub reader: String,
    /// The digest of the transcript replayed (none when nothing was replayed).
    pub transcript_digest: Option<String>,
    /// How it ended.
    pub result: AuditResult,
    /// The failing step, if any.
    pub failed_step: Option<u32>,
    /// Why it failed or was refused, masked by the disclosure rule.
    pub reason: Option<String>,
    /// When the attempt started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// Which audit lines to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only attempts started at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only this card.
    pub uid: Option<Uid>,
    /// Only this station.
    pub station: Option<String>,
}

/// A count of cards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProfileCount {
    /// The profile id.
    pub profile: String,
    /// Its version.
    pub version: u32,
    /// The cards' state.
    pub state: String,
    /// How many.
    pub cards: u64,
}

/// A count of attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StationCount {
    /// The station.
    pub station: String,
    /// How attempts ended.
    pub result: AuditResult,
    /// How many.
    pub attempts: u64,
}

/// A claim in force (or ended, not yet taken over).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimInfo {
    /// The card.
    pub uid: Uid,
    /// Its lease.
    pub lease: Lease,
    /// How long the lease has left, in milliseconds, on the store's clock (0 or less: ended,
    /// any station may take the card).
    pub remaining_ms: i64,
}

/// What a store holds, in counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    /// The store's location (password hidden).
    pub store: String,
    /// The backend (`SQLite`, `PostgreSQL`).
    pub backend: &'static str,
    /// The schema version.
    pub schema_version: u32,
    /// Cards by state: `prepared`, `claimed`, `personalized`, `failed` (every state listed).
    pub cards: Vec<(String, u64)>,
    /// Cards by profile and state.
    pub profiles: Vec<ProfileCount>,
    /// Attempts by station and result.
    pub stations: Vec<StationCount>,
    /// The cards claimed now.
    pub claims: Vec<ClaimInfo>,
    /// PIN mailer files by state.
    pub mailer_files: Vec<(String, u64)>,
}

/// What a migration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The schema version before.
    pub from: u32,
    /// The schema version after.
    pub to: u32,
}

/// The store behind preparation, export, replay, the stations and the `store` commands.
///
/// Every method is one transaction. Times are the store's: a backend that serves many machines
/// uses its database's clock for leases.
pub trait Store: Send {
    /// Where the store is.
    fn location(&self) -> &StoreLocation;

    /// Brings the schema to [`SCHEMA_VERSION`] (nothing if it is there).
    fn migrate(&mut self) -> Result<Migration, StoreError>;

    /// Adds prepared cards in one transaction: all of them or, on any error, none. Their PIN
    /// mailer file, if any, becomes [`MailerState::Stored`] in the same transaction.
    fn insert_batch(&mut self, batch: &Batch<'_>) -> Result<(), StoreError>;

    /// Whether a card with this UID is in the store.
    fn contains(&mut self, uid: Uid) -> Result<bool, StoreError>;

    /// Which of `uids` are in the store (one query for a whole batch).
    fn existing(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, StoreError>;

    /// The compression dictionary for transcripts of `kind` of this profile and version, if
    /// the store has one.
    fn dictionary(
        &mut self,
        profile_id: &str,
        profile_version: u32,
        kind: Kind,
    ) -> Result<Option<Dictionary>, StoreError>;

    /// Keeps `text` (a transcript of `kind` of this profile that carries no secret: it rests in
    /// clear) as the dictionary that later cards of the profile are compressed against.
    fn add_dictionary(
        &mut self,
        profile_id: &str,
        profile_version: u32,
        kind: Kind,
        text: &str,
    ) -> Result<Dictionary, StoreError>;

    /// The card with this UID.
    fn card(&mut self, uid: Uid) -> Result<Option<StoredCard>, StoreError>;

    /// Counts by state, profile and station.
    fn status(&mut self) -> Result<StoreStatus, StoreError>;

    /// Claims a card for `claimant`, atomically, with a lease of `lease`: a prepared or failed
    /// card, this station's own earlier claim, or a claim whose lease ended. Taking over an
    /// earlier claim appends its [`AuditResult::Abandoned`] line in the same transaction.
    fn claim(
        &mut self,
        uid: Uid,
        claimant: &Claimant,
        lease: Duration,
    ) -> Result<Result<Claim, ClaimRefused>, StoreError>;

    /// Extends this station's claim on `uid` by `lease` from now; `false` if the claim is gone.
    fn renew(&mut self, uid: Uid, station: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Ends an attempt in one transaction: the card's new status by the record's result
    /// (personalized for `personalized` and `confirmed`, failed for `failed`, unchanged for
    /// `refused`), then the record appended to the audit log. A card's status changes only
    /// while this station holds its claim ([`StoreErrorKind::ClaimLost`] otherwise).
    fn finish_attempt(&mut self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Releases a claim by hand: the card becomes failed ("released by …"), and the release is
    /// audited. `Ok(None)` if the card is not claimed.
    fn release(&mut self, uid: Uid, by: &Claimant) -> Result<Option<Lease>, StoreError>;

    /// The audit log, oldest first.
    fn audit(&mut self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Announces a PIN mailer file before it is written ([`MailerState::Pending`]), with the
    /// cards it will name: if the batch never reaches the store, a later run knows the file
    /// and its entries are orphans.
    fn announce_mailer_file(&mut self, file: &MailerFile) -> Result<(), StoreError>;

    /// The PIN mailer files in `state`.
    fn mailer_files(&mut self, state: MailerState) -> Result<Vec<MailerFile>, StoreError>;

    /// Marks an announced PIN mailer file whose batch never reached the store as an orphan.
    fn mark_orphan(&mut self, name: &str) -> Result<(), StoreError>;

    /// Removes a store that this run created and never filled (see [`discard_new`]).
    fn discard(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The current time, RFC 3339 in UTC.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

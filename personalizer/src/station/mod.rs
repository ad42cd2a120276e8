//! The personalization station: one task per reader, concurrently. Each waits for a card,
//! reads its UID, claims the card's job in the store, replays its personalization transcript,
//! reads the clear side back and compares it with the VSC image, marks the card personalized
//! and appends an audit record; then waits for the card's removal and the next one.
//!
//! A card whose UID is unknown, already personalized or claimed by another task is refused: no
//! card is ever personalized twice. A card pulled mid-replay leaves its job failed at that
//! step; every step before the activation is idempotent, so a retry replays from the first.

mod readback;

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};
use vsc_core::crypto::{MasterKey, SealKey, SealedArea};
use vsc_core::image;
use vsc_core::transcript::{Header, Kind, Transcript};

pub use readback::{ReadbackError, compare_clear_side};

use crate::replay::{self, CardLink, LinkError, PcscLink, ReplayError};
use crate::store::{
    AuditRecord, ClaimRefused, Ending, SqliteStore, Store, StoreError, StoredCard,
    StoredTranscript, Uid, now,
};

/// How often a waiting task looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(250);
/// How many more times a task tries to connect to a card that is not ready.
const CONNECT_TRIES: u32 = 8;

/// What a station is.
#[derive(Debug)]
pub struct Config {
    /// The store (each reader task opens its own connection).
    pub store: PathBuf,
    /// The station's name in claims and the audit log.
    pub station: String,
    /// The readers to serve.
    pub readers: Vec<CString>,
    /// Personalize the cards present now, then stop.
    pub once: bool,
    /// The issuer key, to open sealed (plain) personalization transcripts.
    pub master: Option<MasterKey>,
}

/// What a reader task reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// A card is in the reader; its UID.
    Inserted {
        /// The reader.
        reader: &'a str,
        /// The card.
        uid: Option<Uid>,
    },
    /// Replaying: step of total.
    Step {
        /// The reader.
        reader: &'a str,
        /// The step.
        step: usize,
        /// How many.
        total: usize,
    },
    /// A card is done (or refused, or failed): the audit record written.
    Done {
        /// The reader.
        reader: &'a str,
        /// The audit record.
        record: &'a AuditRecord,
        /// Why it failed or was refused.
        problem: Option<String>,
    },
    /// The task is waiting for the card to be removed.
    RemoveCard {
        /// The reader.
        reader: &'a str,
    },
}

/// What a station run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cards personalized.
    pub personalized: u64,
    /// Cards that failed.
    pub failed: u64,
    /// Cards refused.
    pub refused: u64,
}

/// What stops a reader task.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// PC/SC failed outside a card's personalization.
    #[error("{reader}: PC/SC: {error}")]
    Pcsc {
        /// The reader.
        reader: String,
        /// What failed.
        error: pcsc::Error,
    },
    /// The store failed.
    #[error("{reader}: {error}")]
    Store {
        /// The reader.
        reader: String,
        /// What failed.
        error: StoreError,
    },
}

/// A station: one task per reader, each with its own PC/SC context and store connection, kept
/// for as long as the station lives.
#[derive(Debug)]
pub struct Station {
    config: Config,
    tasks: Vec<ReaderTask>,
}

impl Station {
    /// Opens the readers' tasks: a PC/SC context and a store connection each.
    pub fn open(config: Config) -> Result<Station, StationError> {
        let tasks = config
            .readers
            .iter()
            .map(|reader| ReaderTask::new(&config, reader.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Station { config, tasks })
    }

    /// Runs every task until `shutdown` is set (a task finishes the card it is on first) or,
    /// with `once`, until every reader's present card is done.
    pub fn run(
        &mut self,
        shutdown: &AtomicBool,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<Summary, StationError> {
        let config = &self.config;
        let results: Vec<Result<Summary, StationError>> = std::thread::scope(|scope| {
            let running: Vec<_> = self
                .tasks
                .iter_mut()
                .map(|task| scope.spawn(move || task.run(config, shutdown, report)))
                .collect();
            running
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|_| Ok(Summary::default())))
                .collect()
        });
        let mut total = Summary::default();
        for result in results {
            let summary = result?;
            total.personalized += summary.personalized;
            total.failed += summary.failed;
            total.refused += summary.refused;
        }
        Ok(total)
    }
}

/// Opens a station for `config` and runs it (see [`Station::run`]).
pub fn run(
    config: Config,
    shutdown: &AtomicBool,
    report: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Summary, StationError> {
    Station::open(config)?.run(shutdown, report)
}

/// Every reader pcscd knows.
pub fn all_readers() -> Result<Vec<CString>, pcsc::Error> {
    Context::establish(Scope::User)?.list_readers_owned()
}

/// One reader's task and its state.
struct ReaderTask {
    reader: CString,
    name: String,
    context: Context,
    store: SqliteStore,
    summary: Summary,
}

impl std::fmt::Debug for ReaderTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderTask")
            .field("reader", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where a reader task is.
enum Phase {
    /// No card yet.
    WaitingForCard,
    /// A card is in: personalize it.
    CardPresent,
    /// Done with the card: wait until it is taken out.
    WaitingForRemoval,
    /// Stop.
    Stopped,
}

impl ReaderTask {
    fn new(config: &Config, reader: CString) -> Result<ReaderTask, StationError> {
        let name = reader.to_string_lossy().into_owned();
        let context = Context::establish(Scope::User).map_err(|error| StationError::Pcsc {
            reader: name.clone(),
            error,
        })?;
        let store = SqliteStore::open(&config.store).map_err(|error| StationError::Store {
            reader: name.clone(),
            error,
        })?;
        Ok(ReaderTask {
            reader,
            name,
            context,
            store,
            summary: Summary::default(),
        })
    }

    fn run(
        &mut self,
        config: &Config,
        shutdown: &AtomicBool,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<Summary, StationError> {
        self.summary = Summary::default();
        let mut phase = if config.once {
            if self.card_present(Duration::ZERO)? {
                Phase::CardPresent
            } else {
                Phase::Stopped
            }
        } else {
            Phase::WaitingForCard
        };
        loop {
            phase = match phase {
                Phase::Stopped => return Ok(self.summary),
                _ if shutdown.load(Ordering::Relaxed) => Phase::Stopped,
                Phase::WaitingForCard => {
                    if self.card_present(POLL)? {
                        Phase::CardPresent
                    } else {
                        Phase::WaitingForCard
                    }
                }
                Phase::CardPresent => {
                    self.personalize(config, report)?;
                    if config.once {
                        Phase::Stopped
                    } else {
                        report(Event::RemoveCard { reader: &self.name });
                        Phase::WaitingForRemoval
                    }
                }
                Phase::WaitingForRemoval => {
                    if self.card_present(POLL)? {
                        Phase::WaitingForRemoval
                    } else {
                        Phase::WaitingForCard
                    }
                }
            };
        }
    }

    /// Whether a card is in the reader, waiting at most `timeout` for a change.
    fn card_present(&self, timeout: Duration) -> Result<bool, StationError> {
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        match self.context.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(error) => {
                return Err(StationError::Pcsc {
                    reader: self.name.clone(),
                    error,
                });
            }
        }
        let present = |s: &ReaderState| {
            s.event_state().contains(State::PRESENT) && !s.event_state().contains(State::MUTE)
        };
        if timeout.is_zero() {
            return Ok(present(&states[0]));
        }
        states[0].sync_current_state();
        match self.context.get_status_change(timeout, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => Ok(present(&states[0])),
            Err(error) => Err(StationError::Pcsc {
                reader: self.name.clone(),
                error,
            }),
        }
    }

    /// One card: read its UID, claim, replay, read back, record.
    fn personalize(
        &mut self,
        config: &Config,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<(), StationError> {
        let started_at = now();
        let started = Instant::now();
        let by = format!("{}/{}", config.station, self.name);
        let outcome = self.attempt(config, &by, report);
        let store_error = |error| StationError::Store {
            reader: self.name.clone(),
            error,
        };
        let (uid, digest, ending, problem) = match outcome {
            Attempt::Unreadable(problem) => {
                (Uid([0; 8]), String::new(), Ending::Refused, Some(problem))
            }
            Attempt::Refused(uid, refusal) => (
                uid,
                String::new(),
                Ending::Refused,
                Some(refusal.to_string()),
            ),
            Attempt::Failed {
                uid,
                digest,
                step,
                problem,
            } => {
                let ending = Ending::Failed {
                    step: step.map(|s| s as u32),
                    reason: problem.clone(),
                };
                (uid, digest, ending, Some(problem))
            }
            Attempt::Personalized { uid, digest } => (uid, digest, Ending::Personalized, None),
        };
        let (result, failed_step) = match &ending {
            Ending::Personalized => {
                self.summary.personalized += 1;
                ("personalized", None)
            }
            Ending::Failed { step, .. } => {
                self.summary.failed += 1;
                ("failed", *step)
            }
            Ending::Refused => {
                self.summary.refused += 1;
                ("refused", None)
            }
        };
        let record = AuditRecord {
            uid,
            reader: self.name.clone(),
            station: config.station.clone(),
            transcript_digest: digest,
            result: result.to_string(),
            failed_step,
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        self.store
            .finish_attempt(&ending, &record)
            .map_err(store_error)?;
        report(Event::Done {
            reader: &self.name,
            record: &record,
            problem,
        });
        Ok(())
    }

    fn attempt(
        &mut self,
        config: &Config,
        by: &str,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Attempt {
        // A card just inserted may still be settling (pcscd sees the insertion, the reset, a
        // bounce): try a few times before giving up on it.
        let mut tries = 0;
        let (mut card, uid) = loop {
            match self.open_card() {
                Ok(opened) => break opened,
                Err(_) if tries < CONNECT_TRIES => {
                    tries += 1;
                    std::thread::sleep(POLL);
                }
                Err(problem) => return Attempt::Unreadable(problem),
            }
        };
        let mut link = PcscLink::exclusive(&mut card);
        report(Event::Inserted {
            reader: &self.name,
            uid: Some(uid),
        });
        let stored = match self.store.claim(uid, by) {
            Ok(Ok(stored)) => stored,
            Ok(Err(refusal)) => return Attempt::Refused(uid, refusal),
            Err(error) => return Attempt::Unreadable(format!("store: {error}")),
        };
        let digest = stored.card.perso_digest.clone();
        let failed = |step: Option<usize>, problem: String| Attempt::Failed {
            uid,
            digest: digest.clone(),
            step,
            problem,
        };
        let transcript = match transcript(config, &stored) {
            Ok(transcript) => transcript,
            Err(problem) => return failed(None, problem),
        };
        let steps = transcript.steps.len();
        // The card was reset when connected and its UID is known: check both against the
        // header, then replay (plain commands since the reset left the channel unopened).
        let replayed = check_header(&mut link, &transcript.header, uid).and_then(|()| {
            replay::replay(&mut link, &transcript, |event| {
                if let replay::Event::Step { step, total, .. } = event {
                    report(Event::Step {
                        reader: &self.name,
                        step,
                        total,
                    });
                }
            })
        });
        if let Err(error) = replayed {
            return failed(error.step(), error.to_string());
        }
        // Read the clear side back, as any application sees it.
        let readback = image::read_clear(&stored.card.image)
            .map_err(|e| e.to_string())
            .and_then(|view| compare_clear_side(&mut link, &view.fs).map_err(|e| e.to_string()));
        if let Err(problem) = readback {
            return failed(Some(steps), problem);
        }
        let _ = link.end();
        Attempt::Personalized { uid, digest }
    }

    /// Connects to the card exclusively and reads its UID.
    fn open_card(&self) -> Result<(pcsc::Card, Uid), String> {
        let mut card =
            replay::connect_exclusive(&self.context, &self.reader).map_err(|e| e.to_string())?;
        let uid = read_uid(&mut PcscLink::exclusive(&mut card)).map_err(|e| e.to_string())?;
        match uid {
            Some(uid) => Ok((card, uid)),
            None => Err("the card has no readable EF.UID".into()),
        }
    }
}

/// The card's personalization transcript, opened if sealed.
fn transcript(config: &Config, stored: &StoredCard) -> Result<Transcript, String> {
    let text = match &stored.card.perso {
        StoredTranscript::Clear(text) => text.clone(),
        StoredTranscript::Sealed(sealed) => {
            let master = config.master.as_ref().ok_or("the personalization transcript is sealed (plain mode): the station needs --key-file")?;
            let uid = stored.card.uid.0;
            let opened = SealKey::derive(master, SealedArea::Transcript, &uid)
                .open(
                    &crate::prepare::transcript_aad(Kind::Personalization, &uid),
                    sealed,
                )
                .map_err(|_| {
                    "the sealed transcript does not open with this issuer key".to_string()
                })?;
            String::from_utf8_lossy(&opened).into_owned()
        }
    };
    Transcript::parse(&text).map_err(|e| format!("the stored transcript: {e}"))
}

/// How one card went.
enum Attempt {
    Unreadable(String),
    Refused(Uid, ClaimRefused),
    Failed {
        uid: Uid,
        digest: String,
        step: Option<usize>,
        problem: String,
    },
    Personalized {
        uid: Uid,
        digest: String,
    },
}

/// Checks the card's ATR and UID against what the transcript was made for.
fn check_header(link: &mut impl CardLink, header: &Header, uid: Uid) -> Result<(), ReplayError> {
    let atr = link
        .atr()
        .map_err(|cause| ReplayError::Link { step: 0, cause })?;
    if atr != header.atr.as_bytes() {
        return Err(ReplayError::AtrMismatch {
            expected: header.atr.as_bytes().to_vec(),
            received: atr,
        });
    }
    if uid.0 != header.uid.0 {
        return Err(ReplayError::UidMismatch {
            expected: header.uid.0,
            received: Some(uid.0),
        });
    }
    Ok(())
}

/// The UID from EF.UID (plain commands: the personalization channel is not opened).
fn read_uid(link: &mut impl CardLink) -> Result<Option<Uid>, ReplayError> {
    let error = |cause: LinkError| ReplayError::Link { step: 0, cause };
    let mut response = Vec::new();
    let mut uid = None;
    link.transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00], &mut response)
        .map_err(error)?;
    link.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x02], &mut response)
        .map_err(error)?;
    if response == [0x90, 0x00] {
        link.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x08], &mut response)
            .map_err(error)?;
        if let [data @ .., 0x90, 0x00] = response.as_slice()
            && let Ok(bytes) = <[u8; 8]>::try_from(data)
        {
            uid = Some(Uid(bytes));
        }
    }
    Ok(uid)
}

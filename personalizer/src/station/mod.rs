//! The personalization station: one task per reader, concurrently. Each waits for a card,
//! reads its UID, claims the card's job in the store under a lease, replays its
//! personalization transcript (signed by data preparation, checked against the trusted
//! verification keys), reads the clear side back and compares it with the VSC image, marks the
//! card personalized and appends an audit record; then waits for the card's removal and the
//! next one.
//!
//! A card whose UID is unknown, already personalized or claimed by another station under a
//! lease that has not ended is refused: no card is ever personalized twice. A card pulled
//! mid-replay leaves its job failed at that step; every step before the activation is
//! idempotent, so a retry replays from the first. A card interrupted at or after its last step
//! is operational: when its read-back equals its prepared image, it is confirmed personalized.

mod attempt;
mod lease;
pub mod openpgp;
pub mod piv;
mod readback;

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};
use vsc_core::crypto::MasterKey;

pub use attempt::{Attempt, Failure, Unreadable};
pub use lease::LeaseLost;
pub use readback::{ReadbackError, compare_clear_side};

use crate::replay::Trust;
use crate::store::{
    self, Access, AuditRecord, Claimant, OpenOptions, Store, StoreError, StoreLocation, Uid, now,
};

/// How often a waiting task looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(250);

/// What a station is.
#[derive(Debug)]
pub struct Config {
    /// The store (each reader task opens its own connection).
    pub store: StoreLocation,
    /// How to open it (lock timeout, who hears lock waits); it must exist.
    pub store_options: OpenOptions,
    /// The station's id in claims and the audit log.
    pub station: String,
    /// The machine's name, for the audit log.
    pub host: String,
    /// The readers to serve.
    pub readers: Vec<CString>,
    /// Personalize the cards present now, then stop.
    pub once: bool,
    /// The issuer key, to open sealed (plain) personalization transcripts and to derive the
    /// card's own keys for live steps.
    pub master: Option<MasterKey>,
    /// Which transcripts may be replayed.
    pub trust: Trust,
    /// How long a claim lasts unless renewed (a task renews it while it works on the card).
    pub lease: Duration,
}

impl Config {
    /// A configuration for `readers` with the defaults: the store at `store`, lease
    /// [`store::DEFAULT_LEASE`], no issuer key.
    pub fn new(store: StoreLocation, station: &str, readers: Vec<CString>, trust: Trust) -> Config {
        Config {
            store,
            store_options: OpenOptions::new(Access::Existing),
            station: station.to_string(),
            host: host_name(),
            readers,
            once: false,
            master: None,
            trust,
            lease: store::DEFAULT_LEASE,
        }
    }
}

/// What a reader task reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// A card is in the reader; its UID.
    Inserted {
        /// The reader.
        reader: &'a str,
        /// The card.
        uid: Uid,
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
    /// A card is done: personalized, confirmed, failed, refused or unreadable; the audit
    /// record written, if there is one.
    Done {
        /// The reader.
        reader: &'a str,
        /// How it went.
        attempt: &'a Attempt,
        /// What the audit log got (none for an unreadable card or a store that could not be
        /// reached).
        record: Option<&'a AuditRecord>,
        /// How long it took.
        elapsed: Duration,
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
    /// Cards personalized (confirmed ones included).
    pub personalized: u64,
    /// Of those, cards found already personalized and confirmed by their read-back.
    pub confirmed: u64,
    /// Cards that failed (or whose ending the store could not take).
    pub failed: u64,
    /// Cards refused (unknown, already personalized, claimed elsewhere, unreadable).
    pub refused: u64,
}

impl Summary {
    fn add(&mut self, other: Summary) {
        self.personalized += other.personalized;
        self.confirmed += other.confirmed;
        self.failed += other.failed;
        self.refused += other.refused;
    }

    /// Whether every card was personalized.
    pub fn all_done(&self) -> bool {
        self.failed == 0 && self.refused == 0
    }
}

/// What stops a station.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// PC/SC failed outside a card's personalization.
    #[error("{reader}: PC/SC: {error}")]
    Pcsc {
        /// The reader.
        reader: String,
        /// What failed.
        #[source]
        error: pcsc::Error,
    },
    /// The store failed.
    #[error("{reader}: {error}")]
    Store {
        /// The reader.
        reader: String,
        /// What failed.
        #[source]
        error: StoreError,
    },
    /// A reader task panicked: its cards' fate is unknown, so the station fails.
    #[error("{reader}: the reader task stopped unexpectedly (a bug): check its card in the store")]
    Panicked {
        /// The reader.
        reader: String,
    },
    /// No reader to serve.
    #[error("no reader to serve")]
    NoReaders,
}

/// A station: one task per reader, each with its own PC/SC context and store connection, kept
/// for as long as the station lives, and the keeper of their claims on a connection of its own.
pub struct Station {
    config: Config,
    tasks: Vec<ReaderTask>,
    claims: Arc<lease::Claims>,
    keeper: Box<dyn Store>,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("config", &self.config)
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

impl Station {
    /// Opens the readers' tasks: a PC/SC context and a store connection each.
    pub fn open(config: Config) -> Result<Station, StationError> {
        if config.readers.is_empty() {
            return Err(StationError::NoReaders);
        }
        let tasks = config
            .readers
            .iter()
            .map(|reader| ReaderTask::new(&config, reader.clone()))
            .collect::<Result<_, _>>()?;
        let keeper = store::open(&config.store, &config.store_options)
            .map_err(|error| StationError::Store {
                reader: "lease keeper".into(),
                error,
            })?
            .store;
        let claims = Arc::new(lease::Claims::new(&config.station, config.lease));
        Ok(Station {
            config,
            tasks,
            claims,
            keeper,
        })
    }

    /// Runs every task until `shutdown` is set (a task finishes the card it is on first) or,
    /// with `once`, until every reader's present card is done.
    pub fn run(
        &mut self,
        shutdown: &AtomicBool,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<Summary, StationError> {
        let config = &self.config;
        let claims = &self.claims;
        let keeper = self.keeper.as_mut();
        let keeper_stop = AtomicBool::new(false);
        let results: Vec<Result<Summary, StationError>> = std::thread::scope(|scope| {
            let keeping = scope.spawn(|| claims.keep(keeper, &keeper_stop));
            let running: Vec<_> = self
                .tasks
                .iter_mut()
                .map(|task| {
                    let reader = task.name.clone();
                    (
                        reader,
                        scope.spawn(move || task.run(config, claims, shutdown, report)),
                    )
                })
                .collect();
            let results = running
                .into_iter()
                .map(|(reader, task)| {
                    task.join().unwrap_or_else(|_| {
                        // The others finish their cards; the run still fails.
                        shutdown.store(true, Ordering::Relaxed);
                        Err(StationError::Panicked { reader })
                    })
                })
                .collect();
            keeper_stop.store(true, Ordering::Relaxed);
            keeping.thread().unpark();
            if keeping.join().is_err() {
                tracing::error!("the lease keeper stopped unexpectedly");
            }
            results
        });
        let mut total = Summary::default();
        let mut first_error = None;
        for result in results {
            match result {
                Ok(summary) => total.add(summary),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(total),
        }
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

/// The machine's host name, the station's default id.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "station".to_string())
}

/// One reader's task and its state.
struct ReaderTask {
    reader: CString,
    name: String,
    context: Context,
    store: Box<dyn Store>,
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
        let store = store::open(&config.store, &config.store_options)
            .map_err(|error| StationError::Store {
                reader: name.clone(),
                error,
            })?
            .store;
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
        claims: &Arc<lease::Claims>,
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
                    self.personalize(config, claims, report)?;
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
        let pcsc = |error| StationError::Pcsc {
            reader: self.name.clone(),
            error,
        };
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        match self.context.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(error) => return Err(pcsc(error)),
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
            Err(error) => Err(pcsc(error)),
        }
    }

    /// One card: attempt it, record the ending, report.
    fn personalize(
        &mut self,
        config: &Config,
        claims: &Arc<lease::Claims>,
        report: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<(), StationError> {
        let started_at = now();
        let started = Instant::now();
        let claimant = Claimant {
            station: config.station.clone(),
            host: config.host.clone(),
            reader: self.name.clone(),
        };
        let mut attempt = attempt::run(
            &self.reader,
            &self.name,
            &self.context,
            self.store.as_mut(),
            config,
            &claimant,
            claims,
            report,
        );
        let mut record = attempt.audit_record(&claimant, started_at, started.elapsed());
        if let Some(audit) = &record {
            match self.store.finish_attempt(audit) {
                Ok(()) => {}
                // The store stays unreachable (locked, or its server gone) past the lock
                // timeout, or the claim was taken over: the card's ending is not recorded, and
                // the card is not reported personalized. A claim still this station's makes its
                // next attempt recognize the card; else the lease returns it to the others.
                Err(error)
                    if error.is_unavailable()
                        || matches!(error.kind(), store::StoreErrorKind::ClaimLost(_)) =>
                {
                    attempt = Attempt::NotRecorded {
                        uid: audit.uid,
                        previous: Box::new(attempt),
                        error,
                    };
                    record = None;
                }
                Err(error) => {
                    return Err(StationError::Store {
                        reader: self.name.clone(),
                        error,
                    });
                }
            }
        }
        match &attempt {
            Attempt::Personalized { .. } => self.summary.personalized += 1,
            Attempt::Confirmed { .. } => {
                self.summary.personalized += 1;
                self.summary.confirmed += 1;
            }
            Attempt::Failed { .. }
            | Attempt::StoreUnavailable { .. }
            | Attempt::NotRecorded { .. } => self.summary.failed += 1,
            Attempt::Refused { .. } | Attempt::Unreadable(_) => self.summary.refused += 1,
        }
        report(Event::Done {
            reader: &self.name,
            attempt: &attempt,
            record: record.as_ref(),
            elapsed: started.elapsed(),
        });
        Ok(())
    }
}

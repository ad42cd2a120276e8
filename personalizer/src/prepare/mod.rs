//! Data preparation: card holder records and a profile in; per card a pre-initialization
//! transcript, a personalization transcript and the personalized VSC image into the store, and
//! the holder's PIN and PUK into the PIN mailer.
//!
//! Each record is resolved (in order, on the calling thread: it finds duplicate UIDs), then on
//! a worker thread compiled, and both transcripts are run on a blank card through the card OS
//! in-process with every response checked against the transcript; the card that results is the
//! VSC image; both transcripts are signed by the issuer's preparation key. A writer thread
//! stores the cards in batches, each one transaction, after writing and syncing the batch's PIN
//! mailer file ([`mailer`]): a crash loses at most the batch in flight, never a stored card's
//! PINs, and the next run names the orphaned entries. Memory does not grow with the number of
//! records.
//!
//! Transcripts are compressed on the workers, the personalization transcript against its
//! profile's dictionary ([`crate::store::packing`]): the store's, or, for a profile the store
//! has none of, the personalization transcript of the run's first card, kept in the store
//! before any card that needs it.

pub mod mailer;

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vsc_core::card::Card;
use vsc_core::crypto::MasterKey;
use vsc_core::image;
use vsc_core::transcript::{Channel, Kind, PreparationKey, ResetKind};

pub use mailer::{Orphan, PinMailer, PinRow, PinsError, Recipient, parse_recipient};

use crate::compile::{self, Compiled, Mode};
use crate::content::{CardContent, Resolver, system_rng};
use crate::keys::MasterKeyDeriver;
use crate::profile::Profile;
use crate::records::{Position, Record, RecordError, RecordSource, SourceError, Step};
use crate::replay::{self, CardLink, CardOsLink, ReplayError};
use crate::store::sealing;
use crate::store::{Batch, Dictionary, PreparedCard, Store, StoreError, StoredTranscript, Uid};

/// How to prepare.
#[derive(Debug, Clone)]
pub struct Options {
    /// Personalization through the channel, or in plain.
    pub mode: Mode,
    /// Worker threads.
    pub jobs: usize,
    /// Stop at the first record that fails.
    pub strict: bool,
    /// Cards per store transaction (and per PIN mailer file).
    pub batch: usize,
    /// Skip records whose card is in the store already (resuming a run), rather than count
    /// them failed.
    pub skip_existing: bool,
    /// Also write every stored OpenPGP token's certificate into this file (created new, whole
    /// or not at all: `gpg --import` takes it).
    pub exports: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Channel,
            jobs: default_jobs(),
            strict: false,
            batch: 500,
            skip_existing: false,
            exports: None,
        }
    }
}

/// The number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cards prepared and stored.
    pub prepared: u64,
    /// Records that failed (nothing of them stored).
    pub failed: u64,
    /// Records skipped because their card was stored already (`skip_existing`).
    pub skipped: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl Summary {
    /// Cards per second.
    pub fn rate(&self) -> f64 {
        self.prepared as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A record that could not become a card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The record itself is wrong (a field, a length, a duplicate UID…).
    #[error("{0}")]
    Record(#[from] RecordError),
    /// The card's transcripts could not be made.
    #[error("record {position}: {source}")]
    Compile {
        /// The record.
        position: Position,
        /// Why.
        source: compile::CompileError,
    },
    /// The card OS did not answer as its transcript expects (a profile the card cannot hold).
    #[error("record {position}, card {uid}: {kind} transcript: {source}")]
    Replay {
        /// The record.
        position: Position,
        /// The card.
        uid: Uid,
        /// Which transcript.
        kind: &'static str,
        /// What went wrong.
        source: Box<ReplayError>,
    },
    /// The card is already in the store (prepared by an earlier run).
    #[error("record {position}: card {uid} is already in the store")]
    AlreadyStored {
        /// The record.
        position: Position,
        /// The card.
        uid: Uid,
    },
    /// The image could not be made.
    #[error("record {position}: the image: {source}")]
    Image {
        /// The record.
        position: Position,
        /// Why.
        source: image::ImageError,
    },
}

/// What stops a whole run.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The record source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The PIN mailer could not be written.
    #[error(transparent)]
    Pins(#[from] PinsError),
    /// The random generator could not be seeded.
    #[error("random generator: {0}")]
    Random(String),
    /// The profile does not fit the source (fields missing).
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// A worker thread could not be started.
    #[error("cannot start a preparation thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A worker thread died.
    #[error("a preparation thread stopped unexpectedly")]
    Thread,
    /// The exports file could not be written.
    #[error("the exports file: {0}")]
    Exports(#[from] crate::files::FileError),
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// Cards stored so far, records failed and skipped so far.
    Progress {
        /// Cards stored.
        prepared: u64,
        /// Records failed.
        failed: u64,
        /// Records skipped (their card was stored already).
        skipped: u64,
    },
    /// A record failed; the run goes on (unless strict).
    Failed(&'a CardError),
}

/// A prepared card, on its way to the store.
#[derive(Debug)]
pub struct Prepared {
    /// What the store keeps.
    pub card: PreparedCard,
    /// What the PIN mailer gets.
    pub pins: PinRow,
    /// The record it came from.
    pub position: Position,
}

/// Prepares every record of `source` into `store`.
pub fn run(
    profile: &Profile,
    source: &mut dyn RecordSource,
    master: &MasterKey,
    store: &mut dyn Store,
    mailer: Option<&mut PinMailer>,
    options: &Options,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Summary, PrepareError> {
    run_with(
        profile,
        source,
        master,
        store,
        mailer,
        options,
        observe,
        &|_| Ok(()),
    )
}

/// Whether the system lets worker `n` start (a seam for tests: the system's own refusal is
/// hard to provoke).
type Gate<'a> = &'a (dyn Fn(usize) -> std::io::Result<()> + Sync);

#[allow(clippy::too_many_arguments)]
fn run_with(
    profile: &Profile,
    source: &mut dyn RecordSource,
    master: &MasterKey,
    store: &mut dyn Store,
    mailer: Option<&mut PinMailer>,
    options: &Options,
    observe: &mut (dyn FnMut(Event<'_>) + Send),
    gate: Gate<'_>,
) -> Result<Summary, PrepareError> {
    let started = Instant::now();
    let signer = PreparationKey::derive(master);
    let signer = &signer;
    let rng = system_rng().map_err(|e| PrepareError::Random(e.to_string()))?;
    let mut resolver = Resolver::new(profile, source.header(), rng)?;
    let deriver = MasterKeyDeriver(master);
    let jobs = options.jobs.max(1);
    let observe = Mutex::new(observe);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut exports = match &options.exports {
        Some(path) => Some(ExportsFile::create(path)?),
        None => None,
    };
    let mut read_failed = 0;

    // The next record that resolves, in order; the ones that do not are reported on the way.
    let mut next = |read_failed: &mut u64| -> Result<Option<CardContent>, PrepareError> {
        let mut record = Record::default();
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(None);
            }
            let error = match source.next_record(&mut record)? {
                Step::End => return Ok(None),
                Step::Rejected(error) => error,
                Step::Read => match resolver.resolve(&record, &deriver) {
                    Ok(content) => return Ok(Some(content)),
                    Err(error) => error,
                },
            };
            *read_failed += 1;
            report(&observe, &CardError::Record(error));
            if options.strict {
                return Ok(None);
            }
        }
    };
    let first = next(&mut read_failed)?;
    let dictionaries = match &first {
        Some(content) => dictionaries(profile, content, master, signer, options.mode, store)?,
        None => Dictionaries::default(),
    };
    let dictionaries = &dictionaries;

    // Records travel in chunks: a hand-over between threads costs about what a tenth of a card
    // does, so one per card would be a tenth more CPU.
    let (work_tx, work_rx) = sync_channel::<Vec<CardContent>>(jobs * 2);
    // Room for two batches: the workers go on while the writer syncs and commits one.
    let (done_tx, done_rx) = sync_channel::<Vec<Result<Prepared, CardError>>>(
        (2 * options.batch.max(1)).div_ceil(CHUNK),
    );
    let work_rx = Arc::new(Mutex::new(work_rx));

    let (read_result, write_result) = std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(jobs);
        for n in 0..jobs {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            let spawned = gate(n).and_then(|()| {
                std::thread::Builder::new()
                    .name("prepare-worker".into())
                    .spawn_scoped(scope, move || {
                        worker(
                            profile,
                            master,
                            signer,
                            options.mode,
                            dictionaries,
                            &work_rx,
                            &done_tx,
                        )
                    })
            });
            match spawned {
                Ok(handle) => workers.push(handle),
                // A worker the system will not start fails the run at once: the workers
                // started see the work channel close and stop.
                Err(error) => return (Err(PrepareError::Spawn(error)), Ok((0, 0, 0))),
            }
        }
        drop(done_tx);
        let writer = match std::thread::Builder::new()
            .name("prepare-writer".into())
            .spawn_scoped(scope, || {
                write(
                    store,
                    mailer,
                    exports.as_mut(),
                    options,
                    done_rx,
                    &observe,
                    &stop,
                )
            }) {
            Ok(writer) => writer,
            Err(error) => return (Err(PrepareError::Spawn(error)), Ok((0, 0, 0))),
        };

        // Read and resolve on this thread, in order.
        let read_result = (|| -> Result<(), PrepareError> {
            let mut content = first;
            let mut chunk = Vec::with_capacity(CHUNK);
            while let Some(card) = content {
                chunk.push(card);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if work_tx.send(full).is_err() {
                        return Ok(());
                    }
                }
                content = next(&mut read_failed)?;
            }
            if !chunk.is_empty() {
                let _ = work_tx.send(chunk);
            }
            Ok(())
        })();
        drop(work_tx);
        let mut write_result = writer.join().unwrap_or(Err(PrepareError::Thread));
        for worker in workers {
            if worker.join().is_err() && write_result.is_ok() {
                write_result = Err(PrepareError::Thread);
            }
        }
        (read_result, write_result)
    });
    read_result?;
    let (prepared, write_failed, skipped) = write_result?;
    if let Some(exports) = exports {
        exports.finish()?;
    }
    Ok(Summary {
        prepared,
        failed: read_failed + write_failed,
        skipped,
        elapsed: started.elapsed(),
    })
}

/// Records per hand-over from the reader to a worker, and cards per hand-over to the writer.
const CHUNK: usize = 32;

/// What a run compresses the transcripts against ([`crate::store::packing`]), one dictionary
/// per kind of transcript.
#[derive(Debug, Default, Clone)]
pub struct Dictionaries {
    /// For pre-initialization transcripts.
    pub preinit: Option<Dictionary>,
    /// For personalization transcripts.
    pub perso: Option<Dictionary>,
}

/// The dictionaries of this run: the store's for the profile, else made from the first card
/// and kept in the store now. A dictionary rests in clear, so it carries no secret:
///
/// - pre-initialization: the first card's pre-initialization transcript compiled under a
///   throwaway issuer key. A pre-initialization transcript depends on the profile, the UID and
///   the issuer key only (a card maker runs it before any holder data exists), so this one has
///   the structure of every card's and no key of any real card.
/// - personalization, through the channel: the first card's transcript itself, which rests in
///   clear anyway (everything secret in it is under secure messaging). None for `--plain`,
///   whose personalization carries PINs in clear.
///
/// A first card that cannot be made gives no dictionary (its record then fails in the
/// workers, as it would anyway).
pub fn dictionaries(
    profile: &Profile,
    first: &CardContent,
    master: &MasterKey,
    signer: &PreparationKey,
    mode: Mode,
    store: &mut dyn Store,
) -> Result<Dictionaries, PrepareError> {
    let (id, version) = (profile.id(), profile.version());
    let preinit = match store.dictionary(id, version, Kind::PreInitialization)? {
        Some(dictionary) => Some(dictionary),
        None => {
            let throwaway = MasterKey::from_bytes(&rand::random::<[u8; 32]>());
            match compile::compile_preinit(profile, first.uid, &throwaway, mode) {
                Ok(preinit) => {
                    let (text, _) = preinit.encode_signed(&PreparationKey::derive(&throwaway));
                    Some(store.add_dictionary(id, version, Kind::PreInitialization, &text)?)
                }
                Err(_) => None,
            }
        }
    };
    let perso = match mode {
        // An OpenPGP token's transcript is plain in every mode: no dictionary (below).
        Mode::Plain => None,
        Mode::Channel if profile.openpgp().is_some() || profile.piv().is_some() => None,
        Mode::Channel => match store.dictionary(id, version, Kind::Personalization)? {
            Some(dictionary) => Some(dictionary),
            // Only a protected transcript may train a dictionary, which rests in clear: a plain
            // one (an OpenPGP token's, in any mode) carries PINs and keys.
            None => match compile::compile(profile, first, master, mode) {
                Ok(compiled) if compiled.perso.header.channel == Channel::SecureMessaging => {
                    let (text, _) = compiled.perso.encode_signed(signer);
                    Some(store.add_dictionary(id, version, Kind::Personalization, &text)?)
                }
                _ => None,
            },
        },
    };
    Ok(Dictionaries { preinit, perso })
}

fn report(observe: &Mutex<&mut (dyn FnMut(Event<'_>) + Send)>, error: &CardError) {
    if let Ok(mut observe) = observe.lock() {
        observe(Event::Failed(error));
    }
}

fn worker(
    profile: &Profile,
    master: &MasterKey,
    signer: &PreparationKey,
    mode: Mode,
    dictionaries: &Dictionaries,
    work: &Mutex<Receiver<Vec<CardContent>>>,
    done: &SyncSender<Vec<Result<Prepared, CardError>>>,
) {
    loop {
        let chunk = match work.lock() {
            Ok(receiver) => match receiver.recv() {
                Ok(chunk) => chunk,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let prepared = chunk
            .iter()
            .map(|content| prepare_card(profile, content, master, signer, mode, dictionaries))
            .collect();
        if done.send(prepared).is_err() {
            return;
        }
    }
}

/// Prepares one card: compiles its transcripts, runs them on a blank card through the card OS
/// with every response checked, seals the resulting image, signs both transcripts, and
/// compresses them for the store (against the profile's `dictionaries`), sealing those that
/// carry secrets.
pub fn prepare_card(
    profile: &Profile,
    content: &CardContent,
    master: &MasterKey,
    signer: &PreparationKey,
    mode: Mode,
    dictionaries: &Dictionaries,
) -> Result<Prepared, CardError> {
    let position = content.position;
    let uid = content.uid;
    let compiled = compile::compile(profile, content, master, mode)
        .map_err(|source| CardError::Compile { position, source })?;
    let card = run_on_blank(&compiled, master).map_err(|(kind, source)| CardError::Replay {
        position,
        uid,
        kind,
        source: Box::new(source),
    })?;
    let image = image::encode(card.state(), master)
        .map_err(|source| CardError::Image { position, source })?;

    let (preinit_text, preinit_digest) = compiled.preinit.encode_signed(signer);
    let (perso_text, perso_digest) = compiled.perso.encode_signed(signer);
    // The pre-initialization transcript loads the channel keys; a plain personalization (an
    // OpenPGP token's always is) carries PINs and keys: both rest sealed.
    let perso = match compiled.perso.header.channel {
        Channel::SecureMessaging => {
            StoredTranscript::pack(&perso_text, dictionaries.perso.as_ref())
        }
        Channel::Plain => sealing::seal(master, Kind::Personalization, uid, &perso_text, None),
    };
    Ok(Prepared {
        card: PreparedCard {
            uid,
            profile_id: profile.id().to_string(),
            profile_version: profile.version(),
            image,
            preinit: sealing::seal(
                master,
                Kind::PreInitialization,
                uid,
                &preinit_text,
                dictionaries.preinit.as_ref(),
            ),
            preinit_digest: hex::encode_upper(preinit_digest.as_bytes()),
            perso,
            perso_digest: hex::encode_upper(perso_digest.as_bytes()),
            exports: compiled.exports_json(),
        },
        pins: PinRow::new(content),
        position,
    })
}

/// Runs both transcripts on a blank card, live steps computed from the issuer key `master`; the
/// personalized card, or which transcript failed.
pub fn run_on_blank(
    compiled: &Compiled,
    master: &MasterKey,
) -> Result<Card, (&'static str, ReplayError)> {
    let mut link = CardOsLink::new(Card::blank());
    for (kind, transcript) in [
        ("pre-initialization", &compiled.preinit),
        ("personalization", &compiled.perso),
    ] {
        replay::check_card(&mut link, &transcript.header).map_err(|e| (kind, e))?;
        replay::replay_live(
            &mut link,
            transcript,
            replay::Unchecked::default(),
            replay::LiveKeys::issuer(master),
            |_| {},
        )
        .map_err(|e| (kind, e))?;
        link.reset(ResetKind::Cold)
            .map_err(|e| (kind, ReplayError::Link { step: 0, cause: e }))?;
    }
    Ok(link.into_card())
}

/// The writer thread: batches into the store, PINs into the mailer first. Gives the cards
/// stored, the records failed and the records skipped.
fn write(
    store: &mut dyn Store,
    mut mailer: Option<&mut PinMailer>,
    mut exports: Option<&mut ExportsFile>,
    options: &Options,
    done: Receiver<Vec<Result<Prepared, CardError>>>,
    observe: &Mutex<&mut (dyn FnMut(Event<'_>) + Send)>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(u64, u64, u64), PrepareError> {
    let mut batch: Vec<Prepared> = Vec::with_capacity(options.batch);
    let mut counts = Counts::default();
    let mut last_report = Instant::now();
    let mut flush = |batch: &mut Vec<Prepared>, counts: &mut Counts| -> Result<(), PrepareError> {
        // Cards of an earlier run are refused (or skipped) here, before their PINs reach the
        // mailer.
        let uids: Vec<Uid> = batch.iter().map(|item| item.card.uid).collect();
        let stored = store.existing(&uids)?;
        let mut fresh = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            if !stored.contains(&item.card.uid) {
                fresh.push(item);
            } else if options.skip_existing {
                counts.skipped += 1;
            } else {
                counts.failed += 1;
                report(
                    observe,
                    &CardError::AlreadyStored {
                        position: item.position,
                        uid: item.card.uid,
                    },
                );
                if options.strict {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let file = match mailer.as_deref_mut() {
            Some(mailer) => Some(mailer.write_batch(store, fresh.iter().map(|p| &p.pins))?),
            None => None,
        };
        let cards: Vec<PreparedCard> = fresh.into_iter().map(|p| p.card).collect();
        let stored = store.insert_batch(&Batch {
            cards: &cards,
            mailer_file: file.as_deref(),
        });
        if let Err(error) = stored {
            if let (Some(mailer), Some(file)) = (mailer.as_deref_mut(), &file) {
                mailer.abandon(store, file);
            }
            return Err(error.into());
        }
        tracing::debug!(cards = cards.len(), file = ?file, "batch stored");
        if let Some(exports) = exports.as_deref_mut() {
            exports.append(&cards)?;
        }
        counts.prepared += cards.len() as u64;
        Ok(())
    };
    for result in done.into_iter().flatten() {
        match result {
            Ok(card) => {
                batch.push(card);
                if batch.len() >= options.batch {
                    flush(&mut batch, &mut counts)?;
                }
            }
            Err(error) => {
                counts.failed += 1;
                report(observe, &error);
                if options.strict {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if last_report.elapsed() > Duration::from_millis(100) {
            last_report = Instant::now();
            if let Ok(mut observe) = observe.lock() {
                observe(Event::Progress {
                    prepared: counts.prepared + batch.len() as u64,
                    failed: counts.failed,
                    skipped: counts.skipped,
                });
            }
        }
    }
    flush(&mut batch, &mut counts)?;
    if let Ok(mut observe) = observe.lock() {
        observe(Event::Progress {
            prepared: counts.prepared,
            failed: counts.failed,
            skipped: counts.skipped,
        });
    }
    Ok((counts.prepared, counts.failed, counts.skipped))
}

/// The batch file of the stored tokens' certificates (`--exports`): written as their batches
/// are stored, kept only when the run stored some.
struct ExportsFile {
    file: crate::files::AtomicFile,
    path: std::path::PathBuf,
    written: usize,
}

impl ExportsFile {
    fn create(path: &std::path::Path) -> Result<ExportsFile, PrepareError> {
        let file = crate::files::AtomicFile::create(
            path,
            crate::files::Mode::Public,
            crate::files::Overwrite::Refuse,
        )?;
        Ok(ExportsFile {
            file,
            path: path.to_path_buf(),
            written: 0,
        })
    }

    fn append(&mut self, cards: &[PreparedCard]) -> Result<(), PrepareError> {
        use std::io::Write;
        for card in cards {
            let json = card.exports.as_deref().unwrap_or_default();
            let text = if let Some(exports) = crate::compile::openpgp::Exports::from_json(json) {
                format!(
                    "Token {} ({}):\n{}{}\n",
                    card.uid,
                    exports.keys.first().map_or("", |k| k.fingerprint.as_str()),
                    exports.certificate,
                    if exports.certificate.ends_with('\n') {
                        ""
                    } else {
                        "\n"
                    }
                )
            } else if let Some(exports) = crate::compile::piv::Exports::from_json(json) {
                format!("PIV card {}:\n{}\n", card.uid, exports.certificates_pem())
            } else {
                continue;
            };
            self.file
                .write_all(text.as_bytes())
                .map_err(|source| crate::files::FileError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            self.written += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), PrepareError> {
        if self.written > 0 {
            self.file.commit()?;
        }
        Ok(())
    }
}

/// The writer's tally.
#[derive(Default)]
struct Counts {
    prepared: u64,
    failed: u64,
    skipped: u64,
}

#[cfg(test)]
mod tests;

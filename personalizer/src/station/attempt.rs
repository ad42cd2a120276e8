//! One card at a station, as a typed attempt: what happened, and the audit record it gives.

use std::ffi::CStr;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcsc::Context;
use vsc_core::card::LifeCycle;
use vsc_core::image::{self, ImageError};
use vsc_core::transcript::Kind;

use super::lease::{Claims, LeaseLost, LeasedLink};
use super::openpgp::{self, Before};
use super::piv;
use super::readback::{ReadbackError, compare_clear_side};
use super::{Config, Event, POLL};
use crate::replay::{self, CardLink, LinkError, OpenTranscriptError, PcscLink, ReplayError};
use crate::store::sealing::{self, OpenError};
use crate::store::{AuditRecord, AuditResult, ClaimRefused, Claimant, Store, StoreError, Uid};

/// How many more times a task tries to connect to a card that is not ready.
const CONNECT_TRIES: u32 = 8;

/// How one card went.
#[derive(Debug)]
pub enum Attempt {
    /// No UID could be read: nothing was claimed, nothing audited.
    Unreadable(Unreadable),
    /// The store refused the card (unknown, already personalized, claimed elsewhere).
    Refused {
        /// The card.
        uid: Uid,
        /// Why.
        refusal: ClaimRefused,
    },
    /// The store could not be reached to claim the card (locked past the timeout): the card was
    /// not touched, and no audit line could be written.
    StoreUnavailable {
        /// The card.
        uid: Uid,
        /// What the store said.
        error: StoreError,
    },
    /// The replay, the read-back or the transcript failed: the card's job is failed.
    Failed {
        /// The card.
        uid: Uid,
        /// The transcript's digest, when it was read.
        digest: Option<String>,
        /// The step (1-based) that failed, if the replay got that far.
        step: Option<usize>,
        /// What failed.
        failure: Failure,
    },
    /// Replayed and read back.
    Personalized {
        /// The card.
        uid: Uid,
        /// The transcript's digest.
        digest: String,
    },
    /// Found operational (an earlier attempt ended at or after its last step), and its
    /// read-back equals its prepared image: marked personalized without a replay.
    Confirmed {
        /// The card.
        uid: Uid,
        /// The transcript's digest.
        digest: String,
    },
    /// The attempt ended, but the store could not take its ending (locked past the timeout,
    /// or the claim was taken over): the card keeps this station's claim, and its next
    /// insertion settles it.
    NotRecorded {
        /// The card.
        uid: Uid,
        /// How the attempt itself went.
        previous: Box<Attempt>,
        /// What the store said.
        error: StoreError,
    },
}

/// Why a card's UID could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// The card could not be connected or read.
    #[error("the card cannot be read: {0}")]
    Link(#[from] LinkError),
    /// The card has no EF.UID nor an OpenPGP application (not a VSC, or blank).
    #[error(
        "the card has no readable EF.UID nor an OpenPGP AID (not a pre-initialized VSC or a token)"
    )]
    NoUid,
}

/// What failed in an attempt.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The stored transcript does not open (sealed, and no or another issuer key).
    #[error(transparent)]
    Sealed(#[from] OpenError),
    /// The transcript does not parse or is not trusted.
    #[error("the stored transcript: {0}")]
    Transcript(#[from] OpenTranscriptError),
    /// The stored image cannot be read.
    #[error("the stored image: {0}")]
    Image(#[from] ImageError),
    /// The replay stopped.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The card differs from its image after the replay.
    #[error(transparent)]
    Readback(#[from] ReadbackError),
    /// The card is operational, and differs from its prepared image: it is not this job's
    /// result (or was changed since).
    #[error("the card is already operational and differs from its prepared image: {0}")]
    OperationalDiffers(ReadbackError),
    /// An OpenPGP token refused before anything was written (its admin PIN is not the factory
    /// default, blocked, or tried), or that could not be checked.
    #[error(transparent)]
    Token(#[from] openpgp::CheckError),
    /// A PIV card refused before anything was written (its PIN, PUK or management key is not
    /// the factory one, blocked, or tried; another card's CHUID), or that could not be checked.
    #[error(transparent)]
    Piv(#[from] piv::CheckError),
    /// The claim was lost mid-card (taken over, or not renewed for its lease): the replay
    /// stopped before its next command.
    #[error("stopped before the next command: {0}")]
    LeaseLost(LeaseLost),
}

impl Attempt {
    /// The card, if its UID was read.
    pub fn uid(&self) -> Option<Uid> {
        match self {
            Attempt::Unreadable(_) => None,
            Attempt::Refused { uid, .. }
            | Attempt::StoreUnavailable { uid, .. }
            | Attempt::Failed { uid, .. }
            | Attempt::Personalized { uid, .. }
            | Attempt::Confirmed { uid, .. }
            | Attempt::NotRecorded { uid, .. } => Some(*uid),
        }
    }

    /// The audit log's result, for an attempt that gets an audit line.
    pub fn result(&self) -> Option<AuditResult> {
        match self {
            Attempt::Unreadable(_)
            | Attempt::StoreUnavailable { .. }
            | Attempt::NotRecorded { .. } => None,
            Attempt::Refused { .. } => Some(AuditResult::Refused),
            Attempt::Failed { .. } => Some(AuditResult::Failed),
            Attempt::Personalized { .. } => Some(AuditResult::Personalized),
            Attempt::Confirmed { .. } => Some(AuditResult::Confirmed),
        }
    }

    /// A short name of how it went: `personalized`, `confirmed`, `failed`, `refused`,
    /// `unreadable`, `store-unavailable`, `not-recorded`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Attempt::Unreadable(_) => "unreadable",
            Attempt::StoreUnavailable { .. } => "store-unavailable",
            Attempt::NotRecorded { .. } => "not-recorded",
            other => other.result().map_or("unknown", AuditResult::name),
        }
    }

    /// Why it failed or was refused, as shown and stored (never a secret).
    pub fn problem(&self) -> Option<String> {
        match self {
            Attempt::Unreadable(why) => Some(why.to_string()),
            Attempt::Refused { refusal, .. } => Some(refusal.to_string()),
            Attempt::StoreUnavailable { error, .. } => Some(error.to_string()),
            Attempt::Failed { failure, .. } => Some(failure.to_string()),
            Attempt::NotRecorded {
                previous, error, ..
            } => Some(format!(
                "{}, but the store did not record it: {error}",
                previous.outcome()
            )),
            Attempt::Personalized { .. } | Attempt::Confirmed { .. } => None,
        }
    }

    /// The failing step.
    pub fn step(&self) -> Option<usize> {
        match self {
            Attempt::Failed { step, .. } => *step,
            _ => None,
        }
    }

    /// The audit line of this attempt (none without a UID, or without a store to write it to).
    pub(super) fn audit_record(
        &self,
        claimant: &Claimant,
        started_at: String,
        elapsed: Duration,
    ) -> Option<AuditRecord> {
        let uid = self.uid()?;
        let result = self.result()?;
        let digest = match self {
            Attempt::Failed { digest, .. } => digest.clone(),
            Attempt::Personalized { digest, .. } | Attempt::Confirmed { digest, .. } => {
                Some(digest.clone())
            }
            _ => None,
        };
        Some(AuditRecord {
            uid,
            station: claimant.station.clone(),
            host: claimant.host.clone(),
            reader: claimant.reader.clone(),
            transcript_digest: digest,
            result,
            failed_step: self.step().map(|s| s as u32),
            reason: self.problem(),
            started_at,
            duration_ms: elapsed.as_millis() as u64,
        })
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem() {
            Some(problem) => write!(f, "{}: {problem}", self.outcome()),
            None => f.write_str(self.outcome()),
        }
    }
}

/// Runs one attempt on the card in `reader`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    reader: &CStr,
    name: &str,
    context: &Context,
    store: &mut dyn Store,
    config: &Config,
    claimant: &Claimant,
    claims: &Arc<Claims>,
    report: &(dyn Fn(Event<'_>) + Sync),
) -> Attempt {
    // A card just inserted may still be settling (pcscd sees the insertion, the reset, a
    // bounce): try a few times before giving up on it.
    let mut tries = 0;
    let (mut card, uid) = loop {
        match open_card(context, reader) {
            Ok(opened) => break opened,
            Err(_) if tries < CONNECT_TRIES => {
                tries += 1;
                std::thread::sleep(POLL);
            }
            Err(why) => return Attempt::Unreadable(why),
        }
    };
    let mut link = PcscLink::exclusive(&mut card);
    report(Event::Inserted { reader: name, uid });
    let requested = Instant::now();
    let claim = match store.claim(uid, claimant, config.lease) {
        Ok(Ok(claim)) => claim,
        Ok(Err(refusal)) => return Attempt::Refused { uid, refusal },
        Err(error) => return Attempt::StoreUnavailable { uid, error },
    };
    // Renewed by the station's keeper from now on, checked before every command.
    let guard = claims.hold(uid, requested);
    let stored = &claim.card;
    let digest = stored.card.perso_digest.clone();
    let failed = |step: Option<usize>, failure: Failure, digest: Option<&String>| Attempt::Failed {
        uid,
        digest: digest.cloned(),
        step,
        failure,
    };
    let text = match sealing::open(
        &stored.card.perso,
        Kind::Personalization,
        uid,
        config.master.as_ref(),
    ) {
        Ok(text) => text,
        Err(error) => return failed(None, error.into(), Some(&digest)),
    };
    let document = match config.trust.open(text.as_str()) {
        Ok(document) => document,
        Err(error) => return failed(None, error.into(), Some(&digest)),
    };
    drop(text);
    let transcript = &document.transcript;
    let view = match image::read_clear(&stored.card.image) {
        Ok(view) => view,
        Err(error) => return failed(None, error.into(), Some(&digest)),
    };
    let token = openpgp::is_openpgp(transcript);
    let piv_card = piv::is_piv(transcript);
    let piv_exports = stored
        .card
        .exports
        .as_deref()
        .and_then(crate::compile::piv::Exports::from_json);
    let mut token_keys = openpgp::TokenKeys::default();
    if piv_card {
        // A PIV card must still have its factory PIN, PUK and management key: checked
        // (without spending a try) before anything is written.
        match piv::check_before(&mut link, uid, piv_exports.as_ref()) {
            Ok(piv::Before::Replay) => {}
            Ok(piv::Before::Finished) => return Attempt::Confirmed { uid, digest },
            Err(error) => return failed(None, error.into(), Some(&digest)),
        }
    } else if token {
        // The public keys its read-back compares: a token whose keys the store cannot name is
        // refused before anything is written, rather than read back without them.
        token_keys =
            match openpgp::TokenKeys::from_store(transcript, stored.card.exports.as_deref()) {
                Ok(keys) => keys,
                Err(problem) => {
                    return failed(
                        None,
                        openpgp::CheckError::from(problem).into(),
                        Some(&digest),
                    );
                }
            };
        // An OpenPGP token is known by its AID, not its ATR (each product has its own), and
        // must still have its factory admin PIN: checked before anything is written.
        match openpgp::check_before(&mut link, transcript, uid) {
            Ok(Before::Replay) => {}
            Ok(Before::Finished) => {
                return match openpgp::read_back(&mut link, transcript, &view, &token_keys) {
                    Ok(_) => Attempt::Confirmed { uid, digest },
                    Err(error) => failed(None, Failure::OperationalDiffers(error), Some(&digest)),
                };
            }
            Err(error) => return failed(None, error.into(), Some(&digest)),
        }
    } else {
        // An operational card: an earlier attempt got through its last step (or the station
        // was stopped right after). It is this job's card when it reads back as its image.
        let atr = link.atr();
        if let Ok(atr) = &atr
            && replay::life_cycle(atr) == Some(LifeCycle::Operational)
            && atr.as_slice() != transcript.header.atr.as_bytes()
        {
            return match compare_clear_side(&mut link, &view.fs) {
                Ok(_) => Attempt::Confirmed { uid, digest },
                Err(error) => failed(None, Failure::OperationalDiffers(error), Some(&digest)),
            };
        }
        // The card was reset when connected and its UID is known: check both against the
        // header, then replay (plain commands since the reset left the channel unopened).
        if let Err(error) = replay::check_known_card(&mut link, &transcript.header, uid) {
            return failed(None, error.into(), Some(&digest));
        }
    }
    let mut leased = LeasedLink {
        link: &mut link,
        guard: &guard,
    };
    // Live steps' keys are derived from the issuer key before anything is sent.
    let keys = replay::LiveKeys {
        master: config.master.as_ref(),
    };
    let replayed =
        replay::replay_live(&mut leased, transcript, Default::default(), keys, |event| {
            if let replay::Event::Step { step, total, .. } = event {
                report(Event::Step {
                    reader: name,
                    step,
                    total,
                });
            }
        });
    if let Err(error) = replayed {
        let failure = match guard.check() {
            Err(lost) => Failure::LeaseLost(lost),
            Ok(()) => match (
                openpgp::refusal(&error).filter(|_| token),
                piv::refusal(&error).filter(|_| piv_card),
            ) {
                (Some(refusal), _) => openpgp::CheckError::Refused(refusal).into(),
                (None, Some(refusal)) => piv::CheckError::Refused(refusal).into(),
                (None, None) => error.clone().into(),
            },
        };
        return failed(error.step(), failure, Some(&digest));
    }
    // Read the clear side back, as any application sees it.
    let read_back = if piv_card {
        piv::read_back(&mut link, uid, piv_exports.as_ref())
    } else if token {
        openpgp::read_back(&mut link, transcript, &view, &token_keys)
    } else {
        compare_clear_side(&mut link, &view.fs)
    };
    if let Err(error) = read_back {
        return failed(Some(transcript.steps.len()), error.into(), Some(&digest));
    }
    Attempt::Personalized { uid, digest }
}

/// Connects to the card exclusively and reads its UID.
fn open_card(context: &Context, reader: &CStr) -> Result<(pcsc::Card, Uid), Unreadable> {
    let mut card = replay::connect_exclusive(context, reader)?;
    let uid = {
        let mut link = PcscLink::exclusive(&mut card);
        // A VSC by its EF.UID; an OpenPGP token (which has none) by its AID.
        match replay::read_uid(&mut link)? {
            Some(uid) => Some(uid),
            None => openpgp::token_uid(&mut link)?,
        }
    };
    match uid {
        Some(uid) => Ok((card, uid)),
        None => Err(Unreadable::NoUid),
    }
}

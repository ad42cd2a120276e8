//! The persistence hook: how the host makes the card's state durable. The card calls it before
//! a command's answer leaves whenever the command changed the card, and in the middle of a
//! password try, after the try was counted and before anything is compared, so that a host that
//! cannot save never lets a guess be compared uncounted.

use std::fmt;

use super::CardState;

/// Why the host could not make the state durable. The card answers `6581` (memory failure);
/// the cause itself is the host's to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the card's state could not be saved")]
pub struct SaveFailed;

/// Where a card's state goes. The emulator saves its image through it; in-process preparation
/// and tests keep the card in memory ([`InMemory`]).
pub trait Persistence: fmt::Debug + Send {
    /// Makes `state` durable, or fails and keeps what was durable before.
    fn save(&mut self, state: &CardState) -> Result<(), SaveFailed>;

    /// What is durable now: the card falls back to it when a save fails (`None`: nothing is
    /// kept apart from the card, so a failed save leaves the card as the command made it).
    fn durable(&self) -> Option<CardState>;
}

/// The card lives in memory only: every save succeeds at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InMemory;

impl Persistence for InMemory {
    fn save(&mut self, _state: &CardState) -> Result<(), SaveFailed> {
        Ok(())
    }

    fn durable(&self) -> Option<CardState> {
        None
    }
}

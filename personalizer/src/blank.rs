//! Pre-initialized VSCs: what a real card is when it leaves the card maker, made by running the
//! card's pre-initialization transcript on a blank card OS. The stand-in for a real card in
//! tests and demos.

use vsc_core::card::{Card, LifeCycle};
use vsc_core::crypto::MasterKey;
use vsc_core::image::{self, ImageError};

use crate::compile::{self, CompileError, Mode};
use crate::profile::Profile;
use crate::replay::{self, CardOsLink, ReplayError};
use crate::store::Uid;

/// Why a blank card could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BlankError {
    /// The pre-initialization transcript could not be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The card OS refused it (a profile the card cannot hold).
    #[error("the pre-initialization transcript: {0}")]
    Replay(#[from] ReplayError),
    /// The image could not be made.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A pre-initialized card for `uid`: its sealed image, and its life cycle state (pre-initialized
/// with the channel; still in creation for `--plain`).
pub fn make(
    profile: &Profile,
    uid: Uid,
    master: &MasterKey,
    mode: Mode,
) -> Result<(Vec<u8>, LifeCycle), BlankError> {
    let preinit = compile::compile_preinit(profile, uid, master, mode)?;
    let mut link = CardOsLink::new(Card::blank());
    replay::check_card(&mut link, &preinit.header)?;
    replay::replay(&mut link, &preinit, |_| {})?;
    let state = link.card().state();
    Ok((image::encode(state, master)?, state.life_cycle))
}

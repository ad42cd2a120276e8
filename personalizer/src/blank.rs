//! Pre-initialized VSCs: what a real card is when it leaves the card maker, made by running the
//! card's pre-initialization transcript on a blank card OS. The stand-in for a real card in
//! tests and demos. For an OpenPGP profile: a factory-fresh OpenPGP token.

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
    /// An OpenPGP token's UID must be `0000`, the manufacturer and the serial number.
    #[error(
        "an OpenPGP token's UID is 0000, the manufacturer and the serial number (a VSC's: 0000FF56 and 8 hex digits)"
    )]
    TokenUid,
}

/// A pre-initialized card for `uid`: its sealed image, and its life cycle state (pre-initialized
/// with the channel; still in creation for `--plain`). For an OpenPGP profile, a token as it
/// arrives from its factory (PW1 `123456`, PW3 `12345678`, no keys), operational.
pub fn make(
    profile: &Profile,
    uid: Uid,
    master: &MasterKey,
    mode: Mode,
) -> Result<(Vec<u8>, LifeCycle), BlankError> {
    if profile.openpgp().is_some() && uid.bytes()[..2] != [0, 0] {
        return Err(BlankError::TokenUid);
    }
    let preinit = compile::compile_preinit(profile, uid, master, mode)?;
    let mut link = CardOsLink::new(Card::blank());
    replay::check_card(&mut link, &preinit.header)?;
    replay::replay(&mut link, &preinit, |_| {})?;
    let state = link.card().state();
    Ok((image::encode(state, master)?, state.life_cycle))
}

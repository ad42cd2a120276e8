//! `vsc-core`: the virtual smart card.
//!
//! Everything that makes a VSC a card lives here, shared by the emulator, the personalizer and
//! the tests: the APDU codec and status words ([`apdu`]), BER-TLV helpers ([`tlv`]), the
//! ISO 7816-4 file system ([`fs`]), passwords and keys ([`security`]), the answer to reset
//! ([`atr`]), the card OS itself ([`card`]), the cryptography ([`crypto`]), the issuer key file
//! ([`issuer`]), the personalization channel ([`sm`]), VSC images ([`image`]) and their
//! description ([`inspect`]), and APDU transcripts ([`transcript`]). A card is named by its [`Uid`].
#![deny(missing_docs)]

pub mod apdu;
pub mod applications;
pub mod atr;
pub mod card;
pub mod commands;
pub mod crypto;
pub mod disclosure;
pub mod fs;
pub mod image;
pub mod inspect;
pub mod issuer;
pub mod sample;
pub mod security;
pub mod sm;
pub mod tlv;
pub mod transcript;
pub mod uid;

#[cfg(test)]
mod test_support;

pub use uid::Uid;

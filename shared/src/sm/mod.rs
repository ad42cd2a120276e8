//! The personalization channel: ISO 7816-4 secure messaging as ICAO Doc 9303 Part 11 defines it
//! with AES, keyed per card and deterministically.
//!
//! `K_enc` and `K_mac` (AES-256) are HKDF derivations of the issuer master key and the card's
//! UID; the 16-byte send sequence counter (SSC) starts at zero with every new channel (the card
//! makes one at power-on and reset) and is incremented before each command MAC and each response
//! MAC. So the same card and the same command sequence give the same bytes, and a transcript
//! replays verbatim. The terminal side is [`TerminalChannel`], the card side [`CardChannel`];
//! `docs/secure-messaging.md` specifies the bytes.

mod card;
mod data_objects;
mod keys;
mod session;
mod terminal;

pub use card::CardChannel;
pub use keys::ChannelKeys;
pub use terminal::TerminalChannel;

use crate::apdu::{ApduError, Status};

/// Why the terminal side could not protect a command or accept a response.
///
/// After any error from [`TerminalChannel::unwrap_response`] the channel is closed: the card
/// has closed its side too, or the two sides no longer agree on the SSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    /// The plain command's class byte already indicates secure messaging, or is not a first
    /// interindustry class (`00`..`03`, `10`..`13`), the only ones with a header-authenticated
    /// SM indication.
    #[error("class {0:02X} cannot be protected with header-authenticated secure messaging")]
    UnsupportedClass(u8),
    /// The plain command cannot be encoded, or its protected form does not fit extended length.
    #[error("cannot protect the command: {0}")]
    Apdu(#[from] ApduError),
    /// Commands and responses must alternate: a command was wrapped while the response to the
    /// previous one was still due, or a response came with no command.
    #[error("secure messaging commands and responses out of order")]
    OutOfOrder,
    /// An earlier error closed the channel; a new one starts after the card's reset.
    #[error("the secure messaging channel is closed after an earlier error")]
    Closed,
    /// The card answered with a bare status word and no SM data objects: it refused the
    /// command's secure messaging (`6987`, `6988`) or could not process it at all.
    #[error("the card answered without secure messaging: {0}")]
    Unprotected(Status),
    /// The response lacks DO`99` (status) or DO`8E` (MAC).
    #[error("the response lacks its secure messaging status or MAC")]
    MissingDataObjects,
    /// The response's data objects are malformed: TLV encoding, an unexpected tag or order, a
    /// wrong length, a padding indicator other than `01`, or invalid padding.
    #[error("the response's secure messaging data objects are malformed")]
    Malformed,
    /// The response MAC does not verify: wrong card, or the response was altered.
    #[error("the response MAC does not verify (wrong card or altered response)")]
    BadMac,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

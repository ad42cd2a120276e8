//! Cryptography for the VSC: the issuer master key, AES keys, per-card key derivation and sealing.
//!
//! Everything here is a thin, typed layer over the RustCrypto crates (`aes`, `cbc`, `cmac`,
//! `hmac`, `hkdf`, `sha2`); nothing is hand-rolled. Secrets zeroize on drop, compare in constant
//! time and never appear in `Debug` output or error messages. The key hierarchy and every
//! derivation label are specified in `docs/keys.md`.

mod aes_key;
mod derive;
mod master_key;
mod seal;
pub(crate) mod sha256;

pub use aes_key::{AesKey, AesKeySize, BLOCK_LEN};
pub use derive::{KeyLabel, Label, SealedArea, derive};
pub use master_key::{KeyCheckValue, MasterKey};
pub use seal::SealKey;

/// The length of a card UID, the per-card input of every derivation.
pub const UID_LEN: usize = 8;

/// Why a cryptographic operation failed. No variant says anything about a plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Key bytes of a length that is not an AES key length.
    #[error("{0} bytes is not an AES key length (16, 24 or 32)")]
    InvalidKeyLength(usize),
    /// Data for a mode without padding is not a whole number of 16-byte blocks.
    #[error("{0} bytes is not a whole number of AES blocks")]
    NotBlockAligned(usize),
    /// Bytes too short, or of the wrong shape, to be a sealed blob.
    #[error("{0} bytes cannot be a sealed blob")]
    InvalidSealedLength(usize),
    /// The authentication tag does not match: wrong key, wrong associated data, or the sealed
    /// bytes were changed.
    #[error("sealed data failed authentication (wrong key, wrong context, or altered)")]
    AuthenticationFailed,
    /// Authentic sealed data whose padding is invalid; only a holder of the key could have made
    /// it.
    #[error("sealed data has invalid padding")]
    InvalidPadding,
}

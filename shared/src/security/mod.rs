//! The card's security objects, which the platform keeps for every application: password
//! objects with retry counters ([`password`]), AES key objects and the personalization channel
//! keys ([`key`]), asymmetric key objects ([`asymmetric`]), block cipher keys that
//! authenticate a terminal ([`symmetric`]); and the VSC file system's password
//! and secret key areas made of them.

pub mod asymmetric;
pub mod key;
pub mod password;
pub mod symmetric;

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use asymmetric::{AsymmetricAlgorithm, AsymmetricKey, KeyOrigin, PublicKey};
pub use key::{ChannelKeyMaterial, KeyAlgorithm, KeyArea, KeyObject, KeyRef, KeyUsage};
pub use password::{Password, PasswordArea, PasswordFormat, PasswordPolicy, PasswordRef};
pub use symmetric::{BlockAlgorithm, BlockKey};

/// Secret bytes (a PIN value, a key value): wiped from memory when dropped, compared in
/// constant time, never printed.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret itself; handle with care.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in time that depends only on the lengths.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(other))
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.expose())
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = SecretBytes::new(b"123456");
        assert_eq!(format!("{secret:?}"), "SecretBytes(6 bytes)");
        assert!(secret.ct_eq(b"123456") && !secret.ct_eq(b"123457") && !secret.ct_eq(b"12345"));
    }
}

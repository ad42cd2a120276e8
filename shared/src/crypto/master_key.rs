//! The issuer master key: the one secret every per-card key is derived from.

use std::fmt;

use aes::Aes256;
use cmac::{Cmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::aes_key::BLOCK_LEN;

/// The issuer master key (256 bits).
///
/// It is never used to encrypt anything itself: it is the input keying material of the HKDF
/// derivations in [`super::derive`], and the key of its own check value.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; MasterKey::LEN]);

/// A key check value: public, short, and enough to tell two keys apart.
///
/// The first [`KeyCheckValue::LEN`] bytes of AES-CMAC (NIST SP 800-38B) under the key over one
/// block of zero bytes: the CMAC method that ANSI X9.24-1:2017 and PCI PIN require for AES keys,
/// with the 40 bits they allow at most.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCheckValue([u8; KeyCheckValue::LEN]);

impl MasterKey {
    /// The key length in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> MasterKey {
        let mut key = MasterKey([0; Self::LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// The key with these bytes (from the issuer key file or a test vector).
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> MasterKey {
        MasterKey(*bytes)
    }

    /// The key check value of this key.
    pub fn check_value(&self) -> KeyCheckValue {
        KeyCheckValue::of_aes256(&self.0)
    }

    /// The key bytes, for the derivations and the issuer key file only.
    pub(crate) fn secret_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl ConstantTimeEq for MasterKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for MasterKey {}

impl fmt::Debug for MasterKey {
    /// Shows the key check value, which is public, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(KCV {})", self.check_value())
    }
}

impl KeyCheckValue {
    /// The length of a key check value in bytes.
    pub const LEN: usize = 5;

    /// A check value as written down, e.g. in the issuer key file.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> KeyCheckValue {
        KeyCheckValue(bytes)
    }

    /// The check value bytes.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        self.0
    }

    fn of_aes256(key: &[u8; MasterKey::LEN]) -> KeyCheckValue {
        let mut mac = <Cmac<Aes256> as cmac::digest::KeyInit>::new(key.into());
        mac.update(&[0; BLOCK_LEN]);
        let tag = mac.finalize().into_bytes();
        let mut kcv = [0; Self::LEN];
        kcv.copy_from_slice(&tag[..Self::LEN]);
        KeyCheckValue(kcv)
    }
}

impl fmt::Display for KeyCheckValue {
    /// Upper-case hex, as key ceremonies write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for KeyCheckValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyCheckValue({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AES-256 key of NIST SP 800-38B, appendix D.3.
    const SP800_38B_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";

    fn sp800_38b_key() -> MasterKey {
        MasterKey::from_bytes(&hex::decode(SP800_38B_KEY).unwrap().try_into().unwrap())
    }

    #[test]
    fn check_value_is_the_cmac_of_a_zero_block() {
        // AES-256-CMAC of one zero block under the SP 800-38B D.3 key is
        // 1A0B2DF26763CFD6AFB9D3B1A2A846DA (computed independently with pycryptodome); the check
        // value is its first five bytes.
        assert_eq!(sp800_38b_key().check_value().to_string(), "1A0B2DF267");
        // The same for the key 00 01 02 .. 1F: 377822C093...
        let counting: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            MasterKey::from_bytes(&counting).check_value().to_bytes(),
            [0x37, 0x78, 0x22, 0xC0, 0x93]
        );
    }

    #[test]
    fn generated_keys_differ_and_compare() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a, b);
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a, MasterKey::from_bytes(a.secret_bytes()));
    }

    #[test]
    fn debug_shows_only_the_check_value() {
        let key = MasterKey::from_bytes(&[0xAB; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, format!("MasterKey(KCV {})", key.check_value()));
        assert!(!shown.contains("ABAB") && !shown.contains("abab"));
    }
}

//! The VSC file system's secret key area: AES key objects (references `01` to `1F`) with their allowed usage, and
//! the personalization channel keys. No command ever returns a key value.

use serde::{Deserialize, Serialize};

use super::SecretBytes;
use crate::apdu::Status;

/// A key reference, `01` to `1F`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct KeyRef(u8);

impl KeyRef {
    /// A key reference, if `value` is 1 to 31.
    pub fn new(value: u8) -> Result<KeyRef, Status> {
        match value {
            0x01..=0x1F => Ok(KeyRef(value)),
            _ => Err(Status::ReferencedDataNotFound),
        }
    }

    /// The reference as a number.
    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for KeyRef {
    type Error = Status;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        KeyRef::new(value)
    }
}

impl From<KeyRef> for u8 {
    fn from(reference: KeyRef) -> u8 {
        reference.0
    }
}

/// The algorithm of a key object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// AES with a 128-bit key (code `01`).
    Aes128,
    /// AES with a 192-bit key (code `02`).
    Aes192,
    /// AES with a 256-bit key (code `03`).
    Aes256,
}

impl KeyAlgorithm {
    /// The algorithm a code byte names.
    pub fn from_code(code: u8) -> Result<KeyAlgorithm, Status> {
        match code {
            0x01 => Ok(KeyAlgorithm::Aes128),
            0x02 => Ok(KeyAlgorithm::Aes192),
            0x03 => Ok(KeyAlgorithm::Aes256),
            _ => Err(Status::IncorrectData),
        }
    }

    /// The code byte.
    pub fn code(self) -> u8 {
        match self {
            KeyAlgorithm::Aes128 => 0x01,
            KeyAlgorithm::Aes192 => 0x02,
            KeyAlgorithm::Aes256 => 0x03,
        }
    }

    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            KeyAlgorithm::Aes128 => 16,
            KeyAlgorithm::Aes192 => 24,
            KeyAlgorithm::Aes256 => 32,
        }
    }

    /// The name, e.g. `AES-128`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Aes128 => "AES-128",
            KeyAlgorithm::Aes192 => "AES-192",
            KeyAlgorithm::Aes256 => "AES-256",
        }
    }
}

/// What a key may be used for: a set of flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyUsage(u8);

impl KeyUsage {
    /// INTERNAL AUTHENTICATE: the card proves itself with the key.
    pub const INTERNAL_AUTHENTICATE: KeyUsage = KeyUsage(0x01);
    /// EXTERNAL AUTHENTICATE: the terminal proves itself to the card with the key.
    pub const EXTERNAL_AUTHENTICATE: KeyUsage = KeyUsage(0x02);
    /// Encipherment (reserved for PERFORM SECURITY OPERATION).
    pub const ENCIPHER: KeyUsage = KeyUsage(0x04);
    /// Decipherment (PSO: DECIPHER with an RSA key; reserved for AES key objects).
    pub const DECIPHER: KeyUsage = KeyUsage(0x08);
    /// Digital signatures (PSO: COMPUTE DIGITAL SIGNATURE); asymmetric keys only.
    pub const SIGN: KeyUsage = KeyUsage(0x10);
    /// Key agreement (ECDH, X25519); asymmetric keys only.
    pub const AGREE: KeyUsage = KeyUsage(0x20);

    /// Both usages, in a constant.
    pub const fn union_const(self, other: KeyUsage) -> KeyUsage {
        KeyUsage(self.0 | other.0)
    }

    /// The usage a byte gives for an AES key object, if it sets only the four flags AES keys
    /// may have and at least one.
    pub fn from_byte(byte: u8) -> Result<KeyUsage, Status> {
        if byte != 0 && byte & !0x0F == 0 {
            Ok(KeyUsage(byte))
        } else {
            Err(Status::IncorrectData)
        }
    }

    /// The usage byte.
    pub fn byte(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is allowed.
    pub fn allows(self, other: KeyUsage) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both usages.
    pub fn union(self, other: KeyUsage) -> KeyUsage {
        KeyUsage(self.0 | other.0)
    }

    /// The flags' names, e.g. `internal-authenticate, external-authenticate`.
    pub fn names(self) -> Vec<&'static str> {
        [
            (KeyUsage::INTERNAL_AUTHENTICATE, "internal-authenticate"),
            (KeyUsage::EXTERNAL_AUTHENTICATE, "external-authenticate"),
            (KeyUsage::ENCIPHER, "encipher"),
            (KeyUsage::DECIPHER, "decipher"),
            (KeyUsage::SIGN, "sign"),
            (KeyUsage::AGREE, "key agreement"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.allows(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

/// A key object: reference, algorithm, usage and, once loaded, the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyObject {
    /// Its reference.
    pub reference: KeyRef,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// What it may be used for.
    pub usage: KeyUsage,
    value: Option<SecretBytes>,
}

impl KeyObject {
    /// A key object without a value.
    pub fn new(reference: KeyRef, algorithm: KeyAlgorithm, usage: KeyUsage) -> KeyObject {
        KeyObject {
            reference,
            algorithm,
            usage,
            value: None,
        }
    }

    /// Whether the key is loaded.
    pub fn is_loaded(&self) -> bool {
        self.value.is_some()
    }

    /// Loads the key value; its length must fit the algorithm.
    pub fn load(&mut self, value: &[u8]) -> Result<(), Status> {
        if value.len() != self.algorithm.key_len() {
            return Err(Status::WrongLength);
        }
        self.value = Some(SecretBytes::new(value));
        Ok(())
    }

    /// The key value, if `usage` is allowed and the key is loaded. Stays inside the card.
    pub(crate) fn value_for(&self, usage: KeyUsage) -> Result<&SecretBytes, Status> {
        if !self.usage.allows(usage) {
            return Err(Status::ConditionsOfUseNotSatisfied);
        }
        self.value.as_ref().ok_or(Status::ReferenceDataNotUsable)
    }
}

/// The personalization channel keys (secure messaging K_enc and K_mac), written at
/// pre-initialization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelKeyMaterial {
    /// K_enc.
    pub enc: SecretBytes,
    /// K_mac.
    pub mac: SecretBytes,
}

/// The secret key area.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyArea {
    /// The key objects, ordered by reference.
    keys: Vec<KeyObject>,
    /// The personalization channel keys, once pre-initialization wrote them.
    pub channel: Option<ChannelKeyMaterial>,
}

impl KeyArea {
    /// The key object `reference`.
    pub fn get(&self, reference: KeyRef) -> Option<&KeyObject> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    /// The key object `reference`, to change it.
    pub fn get_mut(&mut self, reference: KeyRef) -> Option<&mut KeyObject> {
        self.keys.iter_mut().find(|k| k.reference == reference)
    }

    /// Creates (or replaces) a key object without a value.
    pub fn define(&mut self, key: KeyObject) {
        match self
            .keys
            .binary_search_by_key(&key.reference, |k| k.reference)
        {
            Ok(i) => self.keys[i] = key,
            Err(i) => self.keys.insert(i, key),
        }
    }

    /// Every key object, by reference.
    pub fn iter(&self) -> impl Iterator<Item = &KeyObject> {
        self.keys.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_load_and_refuse_the_wrong_usage() {
        let mut key = KeyObject::new(
            KeyRef::new(1).unwrap(),
            KeyAlgorithm::Aes128,
            KeyUsage::INTERNAL_AUTHENTICATE,
        );
        assert_eq!(
            key.value_for(KeyUsage::INTERNAL_AUTHENTICATE).unwrap_err(),
            Status::ReferenceDataNotUsable
        );
        assert_eq!(key.load(&[0; 32]), Err(Status::WrongLength));
        key.load(&[7; 16]).unwrap();
        assert!(key.value_for(KeyUsage::INTERNAL_AUTHENTICATE).is_ok());
        assert_eq!(
            key.value_for(KeyUsage::EXTERNAL_AUTHENTICATE).unwrap_err(),
            Status::ConditionsOfUseNotSatisfied
        );
        assert!(!format!("{key:?}").contains("7, 7"));
        assert!(KeyRef::new(0).is_err() && KeyRef::new(0x20).is_err());
        assert!(KeyUsage::from_byte(0).is_err() && KeyUsage::from_byte(0x10).is_err());
    }
}

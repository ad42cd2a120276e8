//! Block cipher keys that authenticate a terminal by challenge and response: 3DES (TDEA with
//! three keys, SP 800-67) and AES-128/192/256, as PIV's card management key (9B) is. A key
//! enciphers or deciphers exactly one block (ECB over a single block, as SP 800-73-4's
//! witness and challenge exchange does); it never leaves the card and zeroizes.
//!
//! The ciphers are RustCrypto's `des` and `aes` crates; nothing here is hand-rolled.

use std::fmt;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::SecretBytes;
use crate::apdu::Status;

/// The algorithm of a block cipher key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlockAlgorithm {
    /// Three-key 3DES (TDEA, EDE), 24-byte keys, 8-byte blocks.
    Tdes,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl BlockAlgorithm {
    /// Every algorithm.
    pub const ALL: [BlockAlgorithm; 4] = [
        BlockAlgorithm::Tdes,
        BlockAlgorithm::Aes128,
        BlockAlgorithm::Aes192,
        BlockAlgorithm::Aes256,
    ];

    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            BlockAlgorithm::Tdes | BlockAlgorithm::Aes192 => 24,
            BlockAlgorithm::Aes128 => 16,
            BlockAlgorithm::Aes256 => 32,
        }
    }

    /// The block length in bytes: what a witness or a challenge is long.
    pub fn block_len(self) -> usize {
        match self {
            BlockAlgorithm::Tdes => 8,
            _ => 16,
        }
    }

    /// The name, e.g. `3DES`, `AES-128`.
    pub fn name(self) -> &'static str {
        match self {
            BlockAlgorithm::Tdes => "3DES",
            BlockAlgorithm::Aes128 => "AES-128",
            BlockAlgorithm::Aes192 => "AES-192",
            BlockAlgorithm::Aes256 => "AES-256",
        }
    }
}

/// A block cipher key object.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockKey {
    /// Its algorithm.
    pub algorithm: BlockAlgorithm,
    secret: SecretBytes,
}

impl BlockKey {
    /// A key of `algorithm` with the value `key` (`6A80` when its length is not the
    /// algorithm's).
    pub fn new(algorithm: BlockAlgorithm, key: &[u8]) -> Result<BlockKey, Status> {
        if key.len() != algorithm.key_len() {
            return Err(Status::IncorrectData);
        }
        Ok(BlockKey {
            algorithm,
            secret: SecretBytes::new(key),
        })
    }

    /// Whether the key's value is `other`, compared in constant time (to tell a factory
    /// default key; never to compare with what a terminal sent).
    pub fn has_value(&self, other: &[u8]) -> bool {
        self.secret.ct_eq(other)
    }

    /// Enciphers one block (`6A80` when `block` is not one block long).
    pub fn encrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, Status> {
        self.apply(block, true)
    }

    /// Deciphers one block (`6A80` when `block` is not one block long).
    pub fn decrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, Status> {
        self.apply(block, false)
    }

    /// Whether `response` is this key's encipherment of `block`, compared in constant time.
    pub fn verify_encryption(&self, block: &[u8], response: &[u8]) -> Result<bool, Status> {
        let expected = self.encrypt_block(block)?;
        Ok(bool::from(expected.as_slice().ct_eq(response)))
    }

    fn apply(&self, block: &[u8], encrypt: bool) -> Result<Vec<u8>, Status> {
        if block.len() != self.algorithm.block_len() {
            return Err(Status::IncorrectData);
        }
        let key = self.secret.expose();
        let mut out = block.to_vec();
        // The key lengths were checked when the key was made, so `new_from_slice` cannot fail.
        let bad = |_| Status::ReferenceDataNotUsable;
        match self.algorithm {
            BlockAlgorithm::Tdes => crypt(
                des::TdesEde3::new_from_slice(key).map_err(bad)?,
                &mut out,
                encrypt,
            ),
            BlockAlgorithm::Aes128 => crypt(
                aes::Aes128::new_from_slice(key).map_err(bad)?,
                &mut out,
                encrypt,
            ),
            BlockAlgorithm::Aes192 => crypt(
                aes::Aes192::new_from_slice(key).map_err(bad)?,
                &mut out,
                encrypt,
            ),
            BlockAlgorithm::Aes256 => crypt(
                aes::Aes256::new_from_slice(key).map_err(bad)?,
                &mut out,
                encrypt,
            ),
        }
        Ok(out)
    }
}

/// One block through `cipher`; `block` is exactly its block length (checked by the caller).
fn crypt<C: BlockEncrypt + BlockDecrypt>(cipher: C, block: &mut [u8], encrypt: bool) {
    let block = GenericArray::from_mut_slice(block);
    if encrypt {
        cipher.encrypt_block(block);
    } else {
        cipher.decrypt_block(block);
    }
}

impl fmt::Debug for BlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(algorithm: BlockAlgorithm, hex: &str) -> BlockKey {
        BlockKey::new(algorithm, &hex::decode(hex).unwrap()).unwrap()
    }

    #[test]
    fn aes_matches_fips_197_appendix_c() {
        // FIPS 197 Appendix C: plaintext 00112233…FF under the keys 000102…
        let plain = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        for (algorithm, k, cipher) in [
            (
                BlockAlgorithm::Aes128,
                "000102030405060708090a0b0c0d0e0f",
                "69c4e0d86a7b0430d8cdb78070b4c55a",
            ),
            (
                BlockAlgorithm::Aes192,
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "dda97ca4864cdfe06eaf70a0ec0d7191",
            ),
            (
                BlockAlgorithm::Aes256,
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8ea2b7ca516745bfeafc49904b496089",
            ),
        ] {
            let key = key(algorithm, k);
            assert_eq!(hex::encode(key.encrypt_block(&plain).unwrap()), cipher);
            assert_eq!(
                key.decrypt_block(&hex::decode(cipher).unwrap()).unwrap(),
                plain
            );
        }
    }

    #[test]
    fn tdes_matches_sp_800_67_example() {
        // SP 800-67 Rev. 2, Appendix B: the TDEA example's first block ("The qufc").
        let key = key(
            BlockAlgorithm::Tdes,
            "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123",
        );
        let plain = hex::decode("5468652071756663").unwrap();
        let cipher = key.encrypt_block(&plain).unwrap();
        assert_eq!(hex::encode_upper(&cipher), "A826FD8CE53B855F");
        assert_eq!(key.decrypt_block(&cipher).unwrap(), plain);
        assert!(key.verify_encryption(&plain, &cipher).unwrap());
        assert!(!key.verify_encryption(&plain, &plain).unwrap());
    }

    #[test]
    fn wrong_lengths_are_refused_and_keys_do_not_print() {
        assert_eq!(
            BlockKey::new(BlockAlgorithm::Tdes, &[0; 16]),
            Err(Status::IncorrectData)
        );
        let key = key(BlockAlgorithm::Aes128, "000102030405060708090a0b0c0d0e0f");
        assert_eq!(key.encrypt_block(&[0; 8]), Err(Status::IncorrectData));
        assert_eq!(key.decrypt_block(&[0; 17]), Err(Status::IncorrectData));
        assert!(key.has_value(&hex::decode("000102030405060708090a0b0c0d0e0f").unwrap()));
        assert_eq!(format!("{key:?}"), "BlockKey { algorithm: Aes128, .. }");
    }
}

//! AES keys of the three sizes, with their key schedule computed once: block encryption, CBC
//! without padding, and AES-CMAC.

use std::fmt;

use aes::cipher::consts::U16;
use aes::cipher::crypto_common::InnerInit;
use aes::cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, InnerIvInit, KeyInit,
};
use aes::{Aes128, Aes192, Aes256};
use cmac::digest::core_api::CoreWrapper;
use cmac::{CmacCore, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::CryptoError;

/// The AES block length in bytes.
pub const BLOCK_LEN: usize = 16;

/// The three AES key sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AesKeySize {
    /// AES-128: 16-byte key.
    Aes128,
    /// AES-192: 24-byte key.
    Aes192,
    /// AES-256: 32-byte key.
    Aes256,
}

/// An AES key, ready to use: the key schedule is computed when the key is made, never per call.
///
/// The raw key bytes are kept (zeroized on drop) for constant-time comparison and for sealing
/// key objects into an image; the key schedules zeroize themselves on drop (the `aes` crate's
/// `zeroize` feature).
#[derive(Clone)]
pub struct AesKey {
    bytes: Zeroizing<[u8; 32]>,
    cipher: Cipher,
}

#[derive(Clone)]
enum Cipher {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

impl AesKeySize {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            AesKeySize::Aes128 => 16,
            AesKeySize::Aes192 => 24,
            AesKeySize::Aes256 => 32,
        }
    }

    /// The size whose keys are `len` bytes long.
    pub fn from_key_len(len: usize) -> Option<AesKeySize> {
        match len {
            16 => Some(AesKeySize::Aes128),
            24 => Some(AesKeySize::Aes192),
            32 => Some(AesKeySize::Aes256),
            _ => None,
        }
    }

    /// The key length in bits (128, 192 or 256).
    pub fn bits(self) -> u16 {
        8 * self.key_len() as u16
    }
}

impl AesKey {
    /// An AES-128 key.
    pub fn aes128(key: &[u8; 16]) -> AesKey {
        Self::with_cipher(key, Cipher::Aes128(Aes128::new(key.into())))
    }

    /// An AES-192 key.
    pub fn aes192(key: &[u8; 24]) -> AesKey {
        Self::with_cipher(key, Cipher::Aes192(Aes192::new(key.into())))
    }

    /// An AES-256 key.
    pub fn aes256(key: &[u8; 32]) -> AesKey {
        Self::with_cipher(key, Cipher::Aes256(Aes256::new(key.into())))
    }

    /// A key from 16, 24 or 32 bytes.
    pub fn from_bytes(key: &[u8]) -> Result<AesKey, CryptoError> {
        if let Ok(key) = key.try_into() {
            Ok(Self::aes128(key))
        } else if let Ok(key) = key.try_into() {
            Ok(Self::aes192(key))
        } else if let Ok(key) = key.try_into() {
            Ok(Self::aes256(key))
        } else {
            Err(CryptoError::InvalidKeyLength(key.len()))
        }
    }

    /// A fresh random key of the given size from the operating system's generator.
    pub fn generate(size: AesKeySize) -> AesKey {
        match size {
            AesKeySize::Aes128 => Self::aes128(&random()),
            AesKeySize::Aes192 => Self::aes192(&random()),
            AesKeySize::Aes256 => Self::aes256(&random()),
        }
    }

    /// The key size.
    pub fn size(&self) -> AesKeySize {
        match self.cipher {
            Cipher::Aes128(_) => AesKeySize::Aes128,
            Cipher::Aes192(_) => AesKeySize::Aes192,
            Cipher::Aes256(_) => AesKeySize::Aes256,
        }
    }

    /// The raw key bytes. Only for sealing a key object into an image; never log or print them.
    pub fn secret_bytes(&self) -> &[u8] {
        &self.bytes[..self.size().key_len()]
    }

    /// Encrypts one block in place (AES in ECB mode on a single block).
    pub fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        let block = block.into();
        match &self.cipher {
            Cipher::Aes128(c) => c.encrypt_block(block),
            Cipher::Aes192(c) => c.encrypt_block(block),
            Cipher::Aes256(c) => c.encrypt_block(block),
        }
    }

    /// Decrypts one block in place.
    pub fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        let block = block.into();
        match &self.cipher {
            Cipher::Aes128(c) => c.decrypt_block(block),
            Cipher::Aes192(c) => c.decrypt_block(block),
            Cipher::Aes256(c) => c.decrypt_block(block),
        }
    }

    /// Encrypts `data` in place in CBC mode with the given IV, without padding: `data` must be a
    /// whole number of blocks.
    pub fn cbc_encrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), CryptoError> {
        let len = data.len();
        let (blocks, []) = data.as_chunks_mut::<BLOCK_LEN>() else {
            return Err(CryptoError::NotBlockAligned(len));
        };
        self.cbc_encrypt_blocks(iv, blocks);
        Ok(())
    }

    /// Decrypts `data` in place in CBC mode with the given IV, without padding: `data` must be a
    /// whole number of blocks.
    pub fn cbc_decrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), CryptoError> {
        let len = data.len();
        let (blocks, []) = data.as_chunks_mut::<BLOCK_LEN>() else {
            return Err(CryptoError::NotBlockAligned(len));
        };
        self.cbc_decrypt_blocks(iv, blocks);
        Ok(())
    }

    /// Encrypts whole blocks in place in CBC mode with the given IV.
    pub fn cbc_encrypt_blocks(&self, iv: &[u8; BLOCK_LEN], blocks: &mut [[u8; BLOCK_LEN]]) {
        fn run<C: BlockEncrypt + BlockCipher<BlockSize = U16>>(
            cipher: &C,
            iv: &[u8; BLOCK_LEN],
            blocks: &mut [[u8; BLOCK_LEN]],
        ) {
            let mut mode = cbc::Encryptor::<&C>::inner_iv_init(cipher, iv.into());
            for block in blocks {
                mode.encrypt_block_mut(block.into());
            }
        }
        match &self.cipher {
            Cipher::Aes128(c) => run(c, iv, blocks),
            Cipher::Aes192(c) => run(c, iv, blocks),
            Cipher::Aes256(c) => run(c, iv, blocks),
        }
    }

    /// Decrypts whole blocks in place in CBC mode with the given IV.
    pub fn cbc_decrypt_blocks(&self, iv: &[u8; BLOCK_LEN], blocks: &mut [[u8; BLOCK_LEN]]) {
        fn run<C: BlockDecrypt + BlockCipher<BlockSize = U16>>(
            cipher: &C,
            iv: &[u8; BLOCK_LEN],
            blocks: &mut [[u8; BLOCK_LEN]],
        ) {
            let mut mode = cbc::Decryptor::<&C>::inner_iv_init(cipher, iv.into());
            for block in blocks {
                mode.decrypt_block_mut(block.into());
            }
        }
        match &self.cipher {
            Cipher::Aes128(c) => run(c, iv, blocks),
            Cipher::Aes192(c) => run(c, iv, blocks),
            Cipher::Aes256(c) => run(c, iv, blocks),
        }
    }

    /// AES-CMAC (RFC 4493, NIST SP 800-38B) of `message`.
    pub fn cmac(&self, message: &[u8]) -> [u8; BLOCK_LEN] {
        self.cmac_chunks(&[message])
    }

    /// AES-CMAC of the concatenation of `chunks`, without concatenating them.
    pub fn cmac_chunks(&self, chunks: &[&[u8]]) -> [u8; BLOCK_LEN] {
        // CMAC borrows the ready key schedule instead of expanding the key again.
        fn run<C>(cipher: &C, chunks: &[&[u8]]) -> [u8; BLOCK_LEN]
        where
            C: BlockEncrypt + BlockCipher<BlockSize = U16>,
        {
            let mut mac = CoreWrapper::from_core(CmacCore::<&C>::inner_init(cipher));
            for chunk in chunks {
                mac.update(chunk);
            }
            mac.finalize().into_bytes().into()
        }
        match &self.cipher {
            Cipher::Aes128(c) => run(c, chunks),
            Cipher::Aes192(c) => run(c, chunks),
            Cipher::Aes256(c) => run(c, chunks),
        }
    }

    fn with_cipher(key: &[u8], cipher: Cipher) -> AesKey {
        let mut bytes = Zeroizing::new([0; 32]);
        bytes[..key.len()].copy_from_slice(key);
        AesKey { bytes, cipher }
    }
}

/// `N` random bytes from the operating system's generator.
fn random<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0; N]);
    OsRng.fill_bytes(&mut bytes[..]);
    bytes
}

impl ConstantTimeEq for AesKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        // The size is not secret; the bytes are compared in constant time.
        Choice::from(u8::from(self.size() == other.size())) & self.bytes[..].ct_eq(&other.bytes[..])
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for AesKey {}

impl fmt::Debug for AesKey {
    /// Shows the size, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesKey({:?})", self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> AesKey {
        AesKey::from_bytes(&hex::decode(hex).unwrap()).unwrap()
    }

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex).unwrap()
    }

    /// The four plaintext blocks used throughout NIST SP 800-38A and SP 800-38B.
    const NIST_PLAINTEXT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                                  30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const NIST_KEY_128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const NIST_KEY_192: &str = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b";
    const NIST_KEY_256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    const NIST_CBC_IV: &str = "000102030405060708090a0b0c0d0e0f";

    fn check_cbc(key_hex: &str, ciphertext_hex: &str) {
        let key = key(key_hex);
        let iv: [u8; 16] = bytes(NIST_CBC_IV).try_into().unwrap();
        let mut data = bytes(NIST_PLAINTEXT);
        key.cbc_encrypt(&iv, &mut data).unwrap();
        assert_eq!(hex::encode(&data), ciphertext_hex);
        key.cbc_decrypt(&iv, &mut data).unwrap();
        assert_eq!(hex::encode(&data), NIST_PLAINTEXT);
    }

    #[test]
    fn sp800_38a_f2_cbc_aes128() {
        // NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt and F.2.2 CBC-AES128.Decrypt.
        check_cbc(
            NIST_KEY_128,
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
             73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
        );
    }

    #[test]
    fn sp800_38a_f2_cbc_aes192() {
        // NIST SP 800-38A, F.2.3 CBC-AES192.Encrypt and F.2.4 CBC-AES192.Decrypt.
        check_cbc(
            NIST_KEY_192,
            "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a\
             571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd",
        );
    }

    #[test]
    fn sp800_38a_f2_cbc_aes256() {
        // NIST SP 800-38A, F.2.5 CBC-AES256.Encrypt and F.2.6 CBC-AES256.Decrypt.
        check_cbc(
            NIST_KEY_256,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
             39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
    }

    #[test]
    fn sp800_38a_f1_ecb_single_blocks() {
        // NIST SP 800-38A, F.1.1, F.1.3 and F.1.5: ECB encryption of the first plaintext block.
        let cases = [
            (NIST_KEY_128, "3ad77bb40d7a3660a89ecaf32466ef97"),
            (NIST_KEY_192, "bd334f1d6e45f25ff712a214571fa5cc"),
            (NIST_KEY_256, "f3eed1bdb5d2a03c064b5a7e3db181f8"),
        ];
        for (key_hex, ciphertext) in cases {
            let key = key(key_hex);
            let mut block: [u8; 16] = bytes(&NIST_PLAINTEXT[..32]).try_into().unwrap();
            key.encrypt_block(&mut block);
            assert_eq!(hex::encode(block), ciphertext);
            key.decrypt_block(&mut block);
            assert_eq!(hex::encode(block), &NIST_PLAINTEXT[..32]);
        }
    }

    #[test]
    fn rfc4493_cmac_examples() {
        // RFC 4493, section 4, examples 1 to 4 (AES-128; messages of 0, 16, 40 and 64 bytes).
        let key = key(NIST_KEY_128);
        let message = bytes(NIST_PLAINTEXT);
        let cases = [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ];
        for (len, tag) in cases {
            assert_eq!(hex::encode(key.cmac(&message[..len])), tag, "{len} bytes");
        }
    }

    #[test]
    fn sp800_38b_cmac_aes192_and_aes256() {
        // NIST SP 800-38B, appendix D.2 (CMAC-AES192) and D.3 (CMAC-AES256), examples 1 to 4.
        let message = bytes(NIST_PLAINTEXT);
        let cases = [
            (NIST_KEY_192, 0, "d17ddf46adaacde531cac483de7a9367"),
            (NIST_KEY_192, 16, "9e99a7bf31e710900662f65e617c5184"),
            (NIST_KEY_192, 40, "8a1de5be2eb31aad089a82e6ee908b0e"),
            (NIST_KEY_192, 64, "a1d5df0eed790f794d77589659f39a11"),
            (NIST_KEY_256, 0, "028962f61b7bf89efc6b551f4667d983"),
            (NIST_KEY_256, 16, "28a7023f452e8f82bd4bf28d8c37c35c"),
            (NIST_KEY_256, 40, "aaf3d8f1de5640c232f5b169b9c911e6"),
            (NIST_KEY_256, 64, "e1992190549f6ed5696a2c056c315410"),
        ];
        for (key_hex, len, tag) in cases {
            assert_eq!(hex::encode(key(key_hex).cmac(&message[..len])), tag);
        }
    }

    #[test]
    fn cmac_of_chunks_is_cmac_of_their_concatenation() {
        let key = key(NIST_KEY_256);
        let message = bytes(NIST_PLAINTEXT);
        let (a, rest) = message.split_at(7);
        let (b, c) = rest.split_at(20);
        assert_eq!(key.cmac_chunks(&[a, b, &[], c]), key.cmac(&message));
    }

    #[test]
    fn cbc_refuses_partial_blocks() {
        let key = key(NIST_KEY_128);
        let mut data = [0u8; 17];
        assert_eq!(
            key.cbc_encrypt(&[0; 16], &mut data),
            Err(CryptoError::NotBlockAligned(17))
        );
        assert_eq!(
            key.cbc_decrypt(&[0; 16], &mut data[..15]),
            Err(CryptoError::NotBlockAligned(15))
        );
    }

    #[test]
    fn key_lengths() {
        for len in [0, 1, 15, 17, 23, 25, 31, 33, 64] {
            assert_eq!(
                AesKey::from_bytes(&vec![0; len]).unwrap_err(),
                CryptoError::InvalidKeyLength(len)
            );
        }
        for size in [AesKeySize::Aes128, AesKeySize::Aes192, AesKeySize::Aes256] {
            let key = AesKey::generate(size);
            assert_ne!(key, AesKey::generate(size));
            assert_eq!(key.size(), size);
            assert_eq!(key.secret_bytes().len(), size.key_len());
            assert_eq!(AesKey::from_bytes(key.secret_bytes()).unwrap(), key);
        }
    }

    #[test]
    fn equality_needs_same_size_and_bytes() {
        let short = AesKey::from_bytes(&[7; 16]).unwrap();
        let long = AesKey::from_bytes(&[7; 32]).unwrap();
        assert_ne!(short, long);
        assert_ne!(short, AesKey::from_bytes(&[8; 16]).unwrap());
        assert_eq!(short, AesKey::from_bytes(&[7; 16]).unwrap());
    }

    #[test]
    fn debug_hides_the_key() {
        let key = AesKey::from_bytes(&[0x5A; 24]).unwrap();
        assert_eq!(format!("{key:?}"), "AesKey(Aes192)");
    }
}

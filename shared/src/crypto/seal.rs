//! Sealing data at rest: AES-256-CBC with PKCS#7 padding and a random IV, then HMAC-SHA256 over
//! the associated data, the IV and the ciphertext (encrypt-then-MAC).
//!
//! A sealed blob is `IV (16) || ciphertext (16·k, k ≥ 1) || tag (32)`, where
//! `tag = HMAC-SHA256(K_mac, AAD || IV || ciphertext || AL)` and `AL` is the bit length of the
//! AAD as a 64-bit big-endian number, the layout of draft-mcgrew-aead-aes-cbc-hmac-sha2 §2.1.
//! `AL` makes the split between AAD and IV unambiguous, so a blob bound to one UID and area
//! verifies under that associated data and no other.

use std::fmt;

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::derive::{Label, SealedArea, derive};
use super::sha256::{HMAC_LEN, hmac_sha256};
use super::{BLOCK_LEN, CryptoError, MasterKey, UID_LEN};

/// The key pair that seals one area of one card's image.
pub struct SealKey {
    enc: Aes256,
    mac: Zeroizing<[u8; 32]>,
}

impl SealKey {
    /// The keys sealing `area` on the card with this UID (label `vsc/v1/seal/...`).
    pub fn derive(master: &MasterKey, area: SealedArea, uid: &[u8; UID_LEN]) -> SealKey {
        let okm = derive(master, Label::Seal(area), uid);
        let (enc, mac) = okm.split_at(32);
        let mut enc_key = Zeroizing::new([0; 32]);
        let mut mac_key = Zeroizing::new([0; 32]);
        enc_key.copy_from_slice(enc);
        mac_key.copy_from_slice(mac);
        SealKey::from_keys(&enc_key, &mac_key)
    }

    /// The key pair with these bytes (for test vectors).
    pub fn from_keys(enc: &[u8; 32], mac: &[u8; 32]) -> SealKey {
        SealKey {
            enc: Aes256::new(enc.into()),
            mac: Zeroizing::new(*mac),
        }
    }

    /// The length of the sealed blob of a plaintext of `plaintext_len` bytes.
    pub fn sealed_len(plaintext_len: usize) -> usize {
        BLOCK_LEN + (plaintext_len / BLOCK_LEN + 1) * BLOCK_LEN + HMAC_LEN
    }

    /// Seals `plaintext`, binding it to `aad`, with a random IV from the operating system.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.seal_with_rng(&mut OsRng, aad, plaintext)
    }

    /// Seals `plaintext` with an IV drawn from `rng` (a seeded generator makes test vectors).
    pub fn seal_with_rng<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut iv = [0; BLOCK_LEN];
        rng.fill_bytes(&mut iv);
        let ciphertext = cbc::Encryptor::<&Aes256>::inner_iv_init(&self.enc, &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let tag = self.tag(aad, &iv, &ciphertext);
        let mut sealed = Vec::with_capacity(Self::sealed_len(plaintext.len()));
        sealed.extend_from_slice(&iv);
        sealed.extend_from_slice(&ciphertext);
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// Checks the tag of `sealed` against `aad` in constant time, then decrypts.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let len = sealed.len();
        let body_len = len.checked_sub(BLOCK_LEN + HMAC_LEN);
        if body_len.is_none_or(|n| n == 0 || !n.is_multiple_of(BLOCK_LEN)) {
            return Err(CryptoError::InvalidSealedLength(len));
        }
        let (iv, rest) = sealed.split_at(BLOCK_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - HMAC_LEN);
        let expected = self.tag(aad, iv, ciphertext);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(CryptoError::AuthenticationFailed);
        }
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        let plain_len = cbc::Decryptor::<&Aes256>::inner_iv_init(&self.enc, iv.into())
            .decrypt_padded_mut::<Pkcs7>(&mut plaintext)
            .map_err(|_| CryptoError::InvalidPadding)?
            .len();
        plaintext.truncate(plain_len);
        Ok(plaintext)
    }

    fn tag(&self, aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> [u8; HMAC_LEN] {
        let aad_bits = (aad.len() as u64).wrapping_mul(8).to_be_bytes();
        hmac_sha256(&*self.mac, &[aad, iv, ciphertext, &aad_bits])
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn key() -> SealKey {
        SealKey::derive(
            &MasterKey::from_bytes(&[0x42; 32]),
            SealedArea::Private,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        )
    }

    const AAD: &[u8] = b"VSC1 0102030405060708 private";

    #[test]
    fn round_trip_for_every_length_around_the_block_size() {
        let key = key();
        for len in 0..=70 {
            let plaintext: Vec<u8> = (0..len as u8).collect();
            let sealed = key.seal(AAD, &plaintext);
            assert_eq!(sealed.len(), SealKey::sealed_len(len));
            assert_eq!(*key.open(AAD, &sealed).unwrap(), plaintext);
        }
    }

    #[test]
    fn ivs_are_random() {
        let key = key();
        assert_ne!(key.seal(AAD, b"same"), key.seal(AAD, b"same"));
    }

    #[test]
    fn known_answer_from_fixed_keys_and_iv() {
        // Independently computed with pycryptodome and Python's hmac: AES-256-CBC with PKCS#7 under
        // 00 01 .. 1F, IV 10 11 .. 1F, then HMAC-SHA256 under 20 21 .. 3F over
        // AAD || IV || C || 64-bit bit length of AAD, with AAD = "aad" and plaintext "secret".
        let enc: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mac: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
        let key = SealKey::from_keys(&enc, &mac);
        let sealed = hex::decode(SEAL_VECTOR).unwrap();
        assert_eq!(*key.open(b"aad", &sealed).unwrap(), b"secret");
        let mut fixed_iv = FixedIv(std::array::from_fn(|i| 0x10 + i as u8));
        assert_eq!(
            hex::encode(key.seal_with_rng(&mut fixed_iv, b"aad", b"secret")),
            SEAL_VECTOR
        );
    }

    const SEAL_VECTOR: &str = "101112131415161718191a1b1c1d1e1f00c10748909d193222c3aaee956244bd\
                               4551c37c3a90ef31eeb04f57f08223938a0d8b8065758609f14693b3f90f534a";

    /// A "generator" that yields one fixed IV, to reproduce a known answer.
    struct FixedIv([u8; 16]);

    impl RngCore for FixedIv {
        fn next_u32(&mut self) -> u32 {
            let mut bytes = [0; 4];
            self.fill_bytes(&mut bytes);
            u32::from_le_bytes(bytes)
        }
        fn next_u64(&mut self) -> u64 {
            let mut bytes = [0; 8];
            self.fill_bytes(&mut bytes);
            u64::from_le_bytes(bytes)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.copy_from_slice(&self.0[..dest.len()]);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for FixedIv {}

    #[test]
    fn seeded_generators_give_reproducible_blobs() {
        let key = key();
        let a = key.seal_with_rng(&mut StdRng::seed_from_u64(7), AAD, b"pin 1234");
        let b = key.seal_with_rng(&mut StdRng::seed_from_u64(7), AAD, b"pin 1234");
        assert_eq!(a, b);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let key = key();
        let sealed = key.seal(AAD, b"holder private data, 38 bytes long...");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                key.open(AAD, &tampered).unwrap_err(),
                CryptoError::AuthenticationFailed,
                "byte {i}"
            );
        }
    }

    #[test]
    fn wrong_key_area_card_or_aad_fails() {
        let master = MasterKey::from_bytes(&[0x42; 32]);
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        let sealed = key().seal(AAD, b"data");
        let others = [
            SealKey::derive(&master, SealedArea::SecretKeys, &uid),
            SealKey::derive(&master, SealedArea::Passwords, &uid),
            SealKey::derive(&master, SealedArea::Private, &[1, 2, 3, 4, 5, 6, 7, 9]),
            SealKey::derive(
                &MasterKey::from_bytes(&[0x43; 32]),
                SealedArea::Private,
                &uid,
            ),
        ];
        for other in others {
            assert_eq!(
                other.open(AAD, &sealed).unwrap_err(),
                CryptoError::AuthenticationFailed
            );
        }
        for aad in [
            &b""[..],
            b"VSC1 0102030405060708 secret-keys",
            &AAD[..AAD.len() - 1],
        ] {
            assert_eq!(
                key().open(aad, &sealed).unwrap_err(),
                CryptoError::AuthenticationFailed
            );
        }
    }

    #[test]
    fn aad_and_iv_cannot_trade_bytes() {
        // With a 16-byte AAD moved in front of the blob and an empty AAD, AAD || IV || C is the
        // same byte string; only the AAD length in the tag input tells the two apart.
        let key = key();
        let aad = *b"sixteen byte aad";
        let sealed = key.seal(&aad, b"data");
        let mut moved = aad.to_vec();
        moved.extend_from_slice(&sealed);
        assert_eq!(
            key.open(b"", &moved).unwrap_err(),
            CryptoError::AuthenticationFailed
        );
    }

    #[test]
    fn truncated_or_extended_blobs_fail() {
        let key = key();
        let sealed = key.seal(AAD, b"0123456789abcdef0123");
        for len in 0..sealed.len() {
            assert!(key.open(AAD, &sealed[..len]).is_err(), "{len} bytes");
        }
        let short = [0u8; 47];
        assert_eq!(
            key.open(AAD, &short).unwrap_err(),
            CryptoError::InvalidSealedLength(47)
        );
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(key.open(AAD, &longer).is_err());
    }

    #[test]
    fn authentic_blob_with_bad_padding_is_reported_as_such() {
        // Only a key holder can make one: encrypt a block without valid PKCS#7 padding and tag
        // it properly.
        let enc = [9u8; 32];
        let key = SealKey::from_keys(&enc, &[8; 32]);
        let iv = [0u8; 16];
        let mut block = [0u8; 16];
        crate::crypto::AesKey::aes256(&enc)
            .cbc_encrypt(&iv, &mut block)
            .unwrap();
        let mut sealed = iv.to_vec();
        sealed.extend_from_slice(&block);
        let tag = key.tag(AAD, &iv, &block);
        sealed.extend_from_slice(&tag);
        assert_eq!(
            key.open(AAD, &sealed).unwrap_err(),
            CryptoError::InvalidPadding
        );
    }
}

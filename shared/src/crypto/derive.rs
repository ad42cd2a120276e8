//! Per-card key derivation: HKDF-SHA256 from the issuer master key, one typed label per purpose.
//!
//! `OKM = HKDF-SHA256(salt = none, IKM = master key, info = label || UID, L)`, where the label is
//! the ASCII text [`Label::text`] gives and `L` is [`Label::output_len`]. Every label is a
//! distinct string and the UID has a fixed length, so no two (purpose, card) pairs share an
//! `info`, and no key can stand in for another. `docs/keys.md` lists every label.

use std::fmt;

use zeroize::Zeroizing;

use super::sha256::hkdf_sha256;
use super::{AesKey, AesKeySize, MasterKey, UID_LEN};
use crate::security::BlockAlgorithm;

/// The areas of a VSC image that are sealed at rest, each under its own key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealedArea {
    /// DF.PRIVATE: its EFs and data objects.
    Private,
    /// The secret key area: the card's AES key objects.
    SecretKeys,
    /// The password area: PIN and PUK with their counters.
    Passwords,
    /// A transcript that carries secrets in clear (the pre-initialization transcript loads the
    /// channel keys), as the VSC store keeps it.
    Transcript,
}

/// What an AES key is derived for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyLabel {
    /// The personalization channel's encryption key `K_enc` (AES-256).
    SmEnc,
    /// The personalization channel's MAC key `K_mac` (AES-256).
    SmMac,
    /// A card key object "derived from the master key": its reference (`01`..`1F` on the card)
    /// and size are both in the label, so each reference and size gives an unrelated key.
    KeyObject {
        /// The key reference.
        reference: u8,
        /// The key size.
        size: AesKeySize,
    },
}

/// Every purpose a key is derived for; the label text is the HKDF `info` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// The key pair that seals one image area: 64 bytes, the AES-256 key then the HMAC-SHA256
    /// key.
    Seal(SealedArea),
    /// An AES key.
    Key(KeyLabel),
    /// The HMAC-SHA256 key that authenticates a whole VSC image: 32 bytes.
    ImageMac,
    /// The HMAC-SHA256 key that authenticates the record of the last generation of a card's
    /// image served (the rollback check): 32 bytes.
    ServedGeneration,
    /// The card's own PIV card management key (9B) of an algorithm: its key length.
    PivManagementKey(BlockAlgorithm),
}

impl Label {
    /// The label text, e.g. `vsc/v1/sm/k-enc`.
    pub fn text(self) -> String {
        match self {
            Label::Seal(SealedArea::Private) => "vsc/v1/seal/private".into(),
            Label::Seal(SealedArea::SecretKeys) => "vsc/v1/seal/secret-keys".into(),
            Label::Seal(SealedArea::Passwords) => "vsc/v1/seal/passwords".into(),
            Label::Seal(SealedArea::Transcript) => "vsc/v1/seal/transcript".into(),
            Label::ImageMac => "vsc/v1/image/mac".into(),
            Label::ServedGeneration => "vsc/v1/image/served-generation".into(),
            Label::Key(KeyLabel::SmEnc) => "vsc/v1/sm/k-enc".into(),
            Label::Key(KeyLabel::SmMac) => "vsc/v1/sm/k-mac".into(),
            Label::Key(KeyLabel::KeyObject { reference, size }) => {
                format!("vsc/v1/key-object/{reference:02X}/aes-{}", size.bits())
            }
            Label::PivManagementKey(algorithm) => format!(
                "vsc/v1/piv/management-key/{}",
                match algorithm {
                    BlockAlgorithm::Tdes => "3des",
                    BlockAlgorithm::Aes128 => "aes-128",
                    BlockAlgorithm::Aes192 => "aes-192",
                    BlockAlgorithm::Aes256 => "aes-256",
                }
            ),
        }
    }

    /// How many bytes the derivation gives.
    pub fn output_len(self) -> usize {
        match self {
            Label::Seal(_) => 64,
            Label::Key(KeyLabel::SmEnc | KeyLabel::SmMac)
            | Label::ImageMac
            | Label::ServedGeneration => 32,
            Label::Key(KeyLabel::KeyObject { size, .. }) => size.key_len(),
            Label::PivManagementKey(algorithm) => algorithm.key_len(),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// The key material for `label` on the card with this UID: [`Label::output_len`] bytes.
pub fn derive(master: &MasterKey, label: Label, uid: &[u8; UID_LEN]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0; label.output_len()]);
    let text = label.text();
    let derived = hkdf_sha256(
        None,
        master.secret_bytes(),
        &[text.as_bytes(), uid],
        &mut out,
    );
    // Every label asks for at most 64 bytes, far below HKDF-SHA256's limit of 8160.
    debug_assert!(derived, "HKDF output too long");
    out
}

impl AesKey {
    /// The AES key for `label` on the card with this UID.
    pub fn derive(master: &MasterKey, label: KeyLabel, uid: &[u8; UID_LEN]) -> AesKey {
        let bytes = derive(master, Label::Key(label), uid);
        match AesKey::from_bytes(&bytes) {
            Ok(key) => key,
            // `output_len` of a key label is always an AES key length.
            Err(_) => unreachable!("derived AES key of {} bytes", bytes.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const SIZES: [AesKeySize; 3] = [AesKeySize::Aes128, AesKeySize::Aes192, AesKeySize::Aes256];

    fn every_label() -> Vec<Label> {
        let mut labels = vec![
            Label::Seal(SealedArea::Private),
            Label::Seal(SealedArea::SecretKeys),
            Label::Seal(SealedArea::Passwords),
            Label::Seal(SealedArea::Transcript),
            Label::ImageMac,
            Label::ServedGeneration,
            Label::Key(KeyLabel::SmEnc),
            Label::Key(KeyLabel::SmMac),
        ];
        for reference in 0..=u8::MAX {
            for size in SIZES {
                labels.push(Label::Key(KeyLabel::KeyObject { reference, size }));
            }
        }
        labels.extend(BlockAlgorithm::ALL.map(Label::PivManagementKey));
        labels
    }

    #[test]
    fn labels_are_distinct() {
        let labels = every_label();
        let texts: HashSet<String> = labels.iter().map(|l| l.text()).collect();
        assert_eq!(texts.len(), labels.len());
    }

    #[test]
    fn derivation_is_hkdf_sha256_of_label_and_uid() {
        // Computed independently with Python (hmac, hashlib): HKDF-SHA256 with no salt,
        // IKM = 00 01 .. 1F, info = "vsc/v1/sm/k-enc" || 01 02 03 04 05 06 07 08, L = 32.
        let master = MasterKey::from_bytes(&std::array::from_fn(|i| i as u8));
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        let okm = derive(&master, Label::Key(KeyLabel::SmEnc), &uid);
        assert_eq!(hex::encode(&*okm), SM_ENC_VECTOR);
    }

    const SM_ENC_VECTOR: &str = "1cbcad7f8ad1a9f1a77c932ccba28912abb8f3a18adadb280b23c8e60f7270cf";

    #[test]
    fn each_label_card_and_master_gives_a_different_key() {
        let master = MasterKey::from_bytes(&[1; 32]);
        let uid = [0x11; 8];
        let mut seen = HashSet::new();
        for label in every_label() {
            let okm = derive(&master, label, &uid);
            assert_eq!(okm.len(), label.output_len());
            // Compare the first 16 bytes: AES-128 keys are no prefix of AES-256 keys.
            assert!(seen.insert(okm[..16].to_vec()), "{label}");
        }
        let label = Label::Key(KeyLabel::SmMac);
        let other_card = derive(&master, label, &[0x12; 8]);
        let other_master = derive(&MasterKey::from_bytes(&[2; 32]), label, &uid);
        assert_ne!(*derive(&master, label, &uid), *other_card);
        assert_ne!(*derive(&master, label, &uid), *other_master);
    }

    #[test]
    fn derived_aes_keys_have_the_requested_size() {
        let master = MasterKey::generate();
        for size in SIZES {
            let label = KeyLabel::KeyObject {
                reference: 0x01,
                size,
            };
            let key = AesKey::derive(&master, label, &[0; 8]);
            assert_eq!(key.size(), size);
            assert_eq!(key, AesKey::derive(&master, label, &[0; 8]));
        }
        assert_eq!(
            AesKey::derive(&master, KeyLabel::SmEnc, &[0; 8]).size(),
            AesKeySize::Aes256
        );
    }

    #[test]
    fn key_object_label_text() {
        let label = Label::Key(KeyLabel::KeyObject {
            reference: 0x1F,
            size: AesKeySize::Aes192,
        });
        assert_eq!(label.text(), "vsc/v1/key-object/1F/aes-192");
    }
}

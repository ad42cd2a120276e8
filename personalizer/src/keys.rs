//! Card keys "derived from the master key": the issuer's [`KeyDeriver`], through vsc-core's
//! HKDF labels (`vsc/v1/key-object/RR/aes-BBB`, docs/keys.md).

use vsc_core::Uid;
use vsc_core::crypto::{AesKey, AesKeySize, KeyLabel, MasterKey};
use vsc_core::security::{KeyAlgorithm, KeyRef, SecretBytes};

use crate::content::KeyDeriver;

/// Derives card keys from the issuer master key.
#[derive(Debug)]
pub struct MasterKeyDeriver<'a>(pub &'a MasterKey);

impl KeyDeriver for MasterKeyDeriver<'_> {
    fn derive_key(&self, uid: Uid, reference: KeyRef, algorithm: KeyAlgorithm) -> SecretBytes {
        let size = match algorithm {
            KeyAlgorithm::Aes128 => AesKeySize::Aes128,
            KeyAlgorithm::Aes192 => AesKeySize::Aes192,
            KeyAlgorithm::Aes256 => AesKeySize::Aes256,
        };
        let key = AesKey::derive(
            self.0,
            KeyLabel::KeyObject {
                reference: reference.value(),
                size,
            },
            uid.bytes(),
        );
        SecretBytes::new(key.secret_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_card_reference_and_size() {
        let master = MasterKey::from_bytes(&[1; 32]);
        let deriver = MasterKeyDeriver(&master);
        let r1 = KeyRef::new(1).unwrap();
        let r2 = KeyRef::new(2).unwrap();
        let a = deriver.derive_key(Uid([0; 8]), r1, KeyAlgorithm::Aes128);
        assert_eq!(a.len(), 16);
        assert_eq!(a, deriver.derive_key(Uid([0; 8]), r1, KeyAlgorithm::Aes128));
        assert_ne!(a, deriver.derive_key(Uid([1; 8]), r1, KeyAlgorithm::Aes128));
        assert_ne!(a, deriver.derive_key(Uid([0; 8]), r2, KeyAlgorithm::Aes128));
        assert_eq!(
            deriver
                .derive_key(Uid([0; 8]), r1, KeyAlgorithm::Aes256)
                .len(),
            32
        );
    }
}

//! Live steps: steps whose bytes the replayer computes at replay time because the card adds
//! randomness (a challenge-response), as `docs/transcript-format.md`, *Live steps*, specifies.
//!
//! The transcript holds only the step's definition (what to authenticate with, and a check
//! value of the key); the key is derived by whoever replays it, from the issuer master key and
//! the card's UID, or is the factory default of a new card. The digest and the signature cover
//! the definition like any other line.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::ValueError;
use crate::applications::piv::{
    DEFAULT_MANAGEMENT_KEY, management_algorithm, management_algorithm_byte,
};
use crate::crypto::{Label, MasterKey, UID_LEN, derive};
use crate::security::{BlockAlgorithm, BlockKey};

/// A live step's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiveStep {
    /// Mutual authentication with the PIV card management key (9B), SP 800-73-4 part 2
    /// §3.2.4: GENERAL AUTHENTICATE `7C { 80 }`, then `7C { 80 W, 81 C }`, the card's
    /// `7C { 82 E(K, C) }` checked.
    PivManagementKey {
        /// The key's algorithm.
        algorithm: BlockAlgorithm,
        /// Which key.
        key: ManagementKeySource,
    },
}

/// Which management key a live step authenticates with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagementKeySource {
    /// The factory default (3DES `0102…08` three times): a new card.
    Factory,
    /// The card's own key, derived from the issuer master key and the UID; `check` is
    /// [`management_key_check`] of it, so a replayer holding another issuer key stops before
    /// it sends anything.
    Card {
        /// The key's check value.
        check: [u8; 8],
    },
}

/// The keyword of a live step line.
pub(super) const KEYWORD: &str = "live";
/// The name of the PIV management key kind.
const PIV_MANAGEMENT_KEY: &str = "piv-management-key";

/// The HKDF label of a card's PIV management key of `algorithm`.
pub fn management_key_label(algorithm: BlockAlgorithm) -> Label {
    Label::PivManagementKey(algorithm)
}

/// The card's own PIV management key of `algorithm`: HKDF-SHA256 of the master key with the
/// label `vsc/v1/piv/management-key/<algorithm>` and the UID.
pub fn derive_management_key(
    master: &MasterKey,
    algorithm: BlockAlgorithm,
    uid: &[u8; UID_LEN],
) -> Zeroizing<Vec<u8>> {
    derive(master, management_key_label(algorithm), uid)
}

/// The check value of a management key: the first 8 bytes of
/// SHA-256(`vsc/v1/piv/management-key-check` ‖ key). It tells a right key from a wrong one and
/// gives nothing of it away (a 128-bit or longer key behind a hash).
pub fn management_key_check(key: &[u8]) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(b"vsc/v1/piv/management-key-check")
        .chain_update(key)
        .finalize();
    let mut check = [0; 8];
    check.copy_from_slice(&digest[..8]);
    check
}

/// Why a live step's key cannot be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiveKeyError {
    /// The step needs the card's own key and no issuer key was given.
    #[error("the step needs the card's own management key, derived from the issuer key: give it")]
    NoIssuerKey,
    /// The key derived from the issuer key given does not have the step's check value.
    #[error(
        "the management key derived from this issuer key does not match the transcript's (another \
         issuer key)"
    )]
    WrongIssuerKey,
}

impl LiveStep {
    /// The key the step authenticates with on the card `uid`, from `master` when it is the
    /// card's own.
    pub fn key(
        &self,
        master: Option<&MasterKey>,
        uid: &[u8; UID_LEN],
    ) -> Result<BlockKey, LiveKeyError> {
        let LiveStep::PivManagementKey { algorithm, key } = *self;
        let bytes = match key {
            ManagementKeySource::Factory => Zeroizing::new(DEFAULT_MANAGEMENT_KEY.to_vec()),
            ManagementKeySource::Card { check } => {
                let master = master.ok_or(LiveKeyError::NoIssuerKey)?;
                let bytes = derive_management_key(master, algorithm, uid);
                if !bool::from(management_key_check(&bytes).ct_eq(&check)) {
                    return Err(LiveKeyError::WrongIssuerKey);
                }
                bytes
            }
        };
        // The derived length is the algorithm's key length, and the factory key is 3DES's.
        BlockKey::new(algorithm, &bytes).map_err(|_| LiveKeyError::WrongIssuerKey)
    }

    /// The step for the card's own key of `algorithm`, its check value computed.
    pub fn card_management_key(
        master: &MasterKey,
        algorithm: BlockAlgorithm,
        uid: &[u8; UID_LEN],
    ) -> LiveStep {
        let bytes = derive_management_key(master, algorithm, uid);
        LiveStep::PivManagementKey {
            algorithm,
            key: ManagementKeySource::Card {
                check: management_key_check(&bytes),
            },
        }
    }

    /// The factory key step (3DES).
    pub fn factory_management_key() -> LiveStep {
        LiveStep::PivManagementKey {
            algorithm: BlockAlgorithm::Tdes,
            key: ManagementKeySource::Factory,
        }
    }

    /// Appends the line's value (after `live `).
    pub(super) fn print_into(&self, out: &mut Vec<u8>) {
        let LiveStep::PivManagementKey { algorithm, key } = self;
        out.extend_from_slice(PIV_MANAGEMENT_KEY.as_bytes());
        out.extend_from_slice(
            format!(" {:02X} ", management_algorithm_byte(*algorithm)).as_bytes(),
        );
        match key {
            ManagementKeySource::Factory => out.extend_from_slice(b"factory"),
            ManagementKeySource::Card { check } => {
                out.extend_from_slice(b"card ");
                out.extend_from_slice(hex::encode_upper(check).as_bytes());
            }
        }
    }

    /// Parses the line's value (after `live `), exactly as [`LiveStep::print_into`] writes it.
    pub(super) fn parse(value: &str) -> Result<LiveStep, ValueError> {
        let mut words = value.split(' ');
        if words.next() != Some(PIV_MANAGEMENT_KEY) {
            return Err(ValueError::LiveStep);
        }
        let algorithm = words
            .next()
            .filter(|hex| hex.len() == 2 && is_upper_hex(hex) && *hex != "00")
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .and_then(management_algorithm)
            .ok_or(ValueError::LiveStep)?;
        let key = match (words.next(), words.next(), words.next()) {
            (Some("factory"), None, None) if algorithm == BlockAlgorithm::Tdes => {
                ManagementKeySource::Factory
            }
            (Some("card"), Some(hex), None) if hex.len() == 16 && is_upper_hex(hex) => {
                let mut check = [0; 8];
                hex::decode_to_slice(hex, &mut check).map_err(|_| ValueError::LiveStep)?;
                ManagementKeySource::Card { check }
            }
            _ => return Err(ValueError::LiveStep),
        };
        Ok(LiveStep::PivManagementKey { algorithm, key })
    }

    /// What the step does, for a dry run or a message: it names no secret.
    pub fn describe(&self) -> String {
        let LiveStep::PivManagementKey { algorithm, key } = self;
        match key {
            ManagementKeySource::Factory => format!(
                "authenticate with the factory PIV management key ({})",
                algorithm.name()
            ),
            ManagementKeySource::Card { .. } => format!(
                "authenticate with this card's PIV management key ({}, derived from the issuer key)",
                algorithm.name()
            ),
        }
    }
}

fn is_upper_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl fmt::Debug for ManagementKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagementKeySource::Factory => f.write_str("Factory"),
            ManagementKeySource::Card { check } => {
                write!(f, "Card {{ check: {} }}", hex::encode_upper(check))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[7; 32])
    }

    #[test]
    fn lines_round_trip() {
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        for step in [
            LiveStep::factory_management_key(),
            LiveStep::card_management_key(&master(), BlockAlgorithm::Tdes, &uid),
            LiveStep::card_management_key(&master(), BlockAlgorithm::Aes256, &uid),
        ] {
            let mut out = Vec::new();
            step.print_into(&mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(LiveStep::parse(&text), Ok(step), "{text}");
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            "",
            "piv-management-key",
            "piv-management-key 03",
            "piv-management-key 00 factory",
            "piv-management-key 08 factory",
            "piv-management-key 03 factory x",
            "piv-management-key 04 card 0011223344556677",
            "piv-management-key 03 card 00112233445566",
            "piv-management-key 03 card 00112233445566aa",
            "piv-management-key 03  card 0011223344556677",
            "gp-scp03 03 factory",
        ] {
            assert_eq!(LiveStep::parse(bad), Err(ValueError::LiveStep), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_derived_per_card_and_checked() {
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        let other_uid = [1, 2, 3, 4, 5, 6, 7, 9];
        let step = LiveStep::card_management_key(&master(), BlockAlgorithm::Tdes, &uid);
        let key = step.key(Some(&master()), &uid).unwrap();
        assert_eq!(key.algorithm, BlockAlgorithm::Tdes);
        assert!(key.has_value(&derive_management_key(
            &master(),
            BlockAlgorithm::Tdes,
            &uid
        )));
        assert!(!key.has_value(&DEFAULT_MANAGEMENT_KEY));
        assert_eq!(
            step.key(Some(&MasterKey::from_bytes(&[8; 32])), &uid).err(),
            Some(LiveKeyError::WrongIssuerKey)
        );
        assert_eq!(
            step.key(Some(&master()), &other_uid).err(),
            Some(LiveKeyError::WrongIssuerKey)
        );
        assert_eq!(step.key(None, &uid).err(), Some(LiveKeyError::NoIssuerKey));
        let factory = LiveStep::factory_management_key().key(None, &uid).unwrap();
        assert!(factory.has_value(&DEFAULT_MANAGEMENT_KEY));
    }

    #[test]
    fn debug_and_description_name_no_key() {
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        let bytes = derive_management_key(&master(), BlockAlgorithm::Tdes, &uid);
        let step = LiveStep::card_management_key(&master(), BlockAlgorithm::Tdes, &uid);
        let shown = format!("{step:?} {}", step.describe());
        assert!(!shown.contains(&hex::encode_upper(&bytes[..4])), "{shown}");
    }
}

//! The rollback check: the last generation of a card's image that was served, kept in a small
//! authenticated record beside the image (`NAME.served` for the image `NAME`), so that copying
//! back an older image (with its old PIN counters) is noticed. docs/image-format.md
//! ("Rollback") says what this does and does not protect against.
//!
//! A record is 58 bytes: `VSCSERVD` (8), version `00 01` (2), the card's UID (8), the
//! generation (8, big-endian), and HMAC-SHA256 over the 26 bytes before it (32) under
//! `HKDF(master, "vsc/v1/image/served-generation" ‖ UID)`.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::crypto::sha256::hmac_sha256;
use crate::crypto::{Label, MasterKey, derive};

/// The first 8 bytes of a record.
pub const MAGIC: [u8; 8] = *b"VSCSERVD";
/// The record's format version.
pub const VERSION: u16 = 1;
/// A record's length.
pub const LEN: usize = 8 + 2 + 8 + 8 + 32;

/// Why serving an image is refused, or its record cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The image is older than one already served.
    #[error(
        "the image is generation {image}, older than generation {served} already served from it \
         ({record}): an older copy of the card was put back; serve it only with --allow-rollback"
    )]
    Older {
        /// The image's generation.
        image: u64,
        /// The last generation served.
        served: u64,
        /// The record.
        record: PathBuf,
    },
    /// The record does not verify: damaged, edited, of another card or another issuer key.
    #[error(
        "{}: the record of the generations served does not verify (damaged, edited, or of another card or issuer key); serve only with --allow-rollback, which writes it anew", .0.display()
    )]
    BadRecord(PathBuf),
    /// Reading or writing the record failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The record.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The record of the image at `image`: `NAME.served` beside it.
pub fn record_path(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap_or_default().to_os_string();
    name.push(".served");
    image.with_file_name(name)
}

/// The record of `generation` served for the card `uid`.
pub fn encode(uid: [u8; 8], generation: u64, master: &MasterKey) -> [u8; LEN] {
    let mut out = [0; LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_be_bytes());
    out[10..18].copy_from_slice(&uid);
    out[18..26].copy_from_slice(&generation.to_be_bytes());
    let mac = hmac_sha256(
        &derive(master, Label::ServedGeneration, &uid),
        &[&out[..26]],
    );
    out[26..].copy_from_slice(&mac);
    out
}

/// The generation a record holds for the card `uid`, if it is one and verifies.
pub fn decode(bytes: &[u8], uid: [u8; 8], master: &MasterKey) -> Option<u64> {
    if bytes.len() != LEN || bytes[..8] != MAGIC || bytes[8..10] != VERSION.to_be_bytes() {
        return None;
    }
    if bytes[10..18] != uid {
        return None;
    }
    let mac = hmac_sha256(
        &derive(master, Label::ServedGeneration, &uid),
        &[&bytes[..26]],
    );
    if !bool::from(mac.ct_eq(&bytes[26..])) {
        return None;
    }
    let mut generation = [0; 8];
    generation.copy_from_slice(&bytes[18..26]);
    Some(u64::from_be_bytes(generation))
}

/// What the check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The image is at least as new as every generation served.
    Current,
    /// No record yet: the first serve of this image (or its record was removed).
    FirstServe,
    /// An older image, or a bad record, served anyway (`--allow-rollback`).
    RolledBack,
}

/// Checks the image at `image` (of card `uid`, at `generation`) against its record, and writes
/// the record for `generation` (atomically) when serving may go on. With `allow_rollback`, an
/// older image or a bad record is accepted and the record starts again from `generation`.
pub fn check_and_record(
    image: &Path,
    uid: [u8; 8],
    generation: u64,
    master: &MasterKey,
    allow_rollback: bool,
) -> Result<Check, RollbackError> {
    let path = record_path(image);
    let check = match std::fs::read(&path) {
        Ok(bytes) => match decode(&bytes, uid, master) {
            Some(served) if generation >= served => Check::Current,
            _ if allow_rollback => Check::RolledBack,
            Some(served) => {
                return Err(RollbackError::Older {
                    image: generation,
                    served,
                    record: path,
                });
            }
            None => return Err(RollbackError::BadRecord(path)),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Check::FirstServe,
        Err(source) => return Err(RollbackError::Io { path, source }),
    };
    record(image, uid, generation, master)?;
    Ok(check)
}

/// Writes the record of `generation` beside the image at `image`.
pub fn record(
    image: &Path,
    uid: [u8; 8],
    generation: u64,
    master: &MasterKey,
) -> Result<(), RollbackError> {
    let path = record_path(image);
    super::write_atomic(&path, &encode(uid, generation, master))
        .map_err(|source| RollbackError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_verify_only_for_their_card_and_key() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let uid = [1, 2, 3, 4, 5, 6, 7, 8];
        let bytes = encode(uid, 42, &master);
        assert_eq!(decode(&bytes, uid, &master), Some(42));
        assert_eq!(decode(&bytes, [1, 2, 3, 4, 5, 6, 7, 9], &master), None);
        assert_eq!(decode(&bytes, uid, &MasterKey::from_bytes(&[8; 32])), None);
        for i in 0..LEN {
            let mut flipped = bytes;
            flipped[i] ^= 1;
            assert_eq!(decode(&flipped, uid, &master), None, "byte {i}");
        }
        assert_eq!(decode(&bytes[..LEN - 1], uid, &master), None);
    }

    #[test]
    fn older_images_are_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("card.vsc");
        let master = MasterKey::from_bytes(&[7; 32]);
        let uid = [1; 8];
        assert_eq!(
            check_and_record(&image, uid, 5, &master, false).unwrap(),
            Check::FirstServe
        );
        assert!(record_path(&image).ends_with("card.vsc.served"));
        assert_eq!(
            check_and_record(&image, uid, 5, &master, false).unwrap(),
            Check::Current
        );
        assert_eq!(
            check_and_record(&image, uid, 9, &master, false).unwrap(),
            Check::Current
        );
        let error = check_and_record(&image, uid, 8, &master, false).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("generation 8, older than generation 9"),
            "{error}"
        );
        assert_eq!(
            check_and_record(&image, uid, 8, &master, true).unwrap(),
            Check::RolledBack
        );
        assert_eq!(
            check_and_record(&image, uid, 8, &master, false).unwrap(),
            Check::Current
        );
        std::fs::write(record_path(&image), b"garbage").unwrap();
        assert!(matches!(
            check_and_record(&image, uid, 8, &master, false),
            Err(RollbackError::BadRecord(_))
        ));
    }
}

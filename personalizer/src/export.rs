//! What `export` writes of a stored card: its image, its transcripts (verified against the
//! trusted keys before they leave the store), a pcsc-tools scriptor script, or an OpenPGP
//! token's certificate, public keys and fingerprints. What carries
//! secrets in clear (the pre-initialization transcript loads the channel keys; everything of a
//! `--plain` card) is written encrypted to an age recipient, or in clear (mode 0600) only when
//! asked.

use std::io::Write;
use std::path::Path;

use vsc_core::crypto::MasterKey;
use vsc_core::transcript::{self, Kind};

use crate::compile::openpgp::Exports;
use crate::files::{AtomicFile, FileError, Mode, Overwrite};
use crate::prepare::Recipient;
use crate::replay::{OpenTranscriptError, Trust};
use crate::store::StoredCard;
use crate::store::sealing::{self, OpenError};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The personalized VSC image.
    Image,
    /// The personalization transcript (`.vsct`).
    Transcript,
    /// The pre-initialization transcript (`.vsct`, secret-bearing).
    Preinit,
    /// The personalization transcript as a scriptor script.
    Scriptor,
    /// An OpenPGP token's certificate, armored (for `gpg --import`); a PIV card's certificates
    /// in PEM, each after a line naming its slot.
    Certificate,
    /// An OpenPGP token's or a PIV card's public keys in PEM.
    PublicKeys,
    /// An OpenPGP token's fingerprints: one `slot algorithm fingerprint created` line per key; a
    /// PIV card's: one `slot algorithm SHA-256-of-certificate` line per certificate.
    Fingerprints,
}

/// How secret-bearing exports are protected.
#[derive(Debug, Clone)]
pub enum Protection {
    /// Encrypted to an age recipient.
    Encrypt(Recipient),
    /// In clear, mode 0600 (tests only).
    Clear,
    /// Neither was given: a secret-bearing export is refused.
    Refuse,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Whether it carries secrets.
    pub secret: bool,
    /// Whether it was encrypted.
    pub encrypted: bool,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The stored transcript does not open.
    #[error(transparent)]
    Sealed(#[from] OpenError),
    /// It does not parse or verify.
    #[error("the stored transcript: {0}")]
    Transcript(#[from] OpenTranscriptError),
    /// It carries secrets, and no protection was chosen.
    #[error(
        "this export carries card secrets: give --recipient age1… to encrypt it (or --clear, for tests)"
    )]
    NeedsProtection,
    /// The transcript has a live step, which a scriptor script cannot carry.
    #[error("no scriptor export: {0}")]
    LiveStep(#[from] vsc_core::transcript::LiveStepInScript),
    /// The file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// age refused.
    #[error("age: {0}")]
    Encrypt(String),
    /// The card has no OpenPGP or PIV keys to export.
    #[error(
        "the card has no certificate or keys to export (not an OpenPGP token with keys or a PIV card)"
    )]
    NoExports,
}

/// Writes `what` of `stored` to `path`.
pub fn export(
    stored: &StoredCard,
    what: What,
    path: &Path,
    master: Option<&MasterKey>,
    trust: &Trust,
    protection: &Protection,
    overwrite: Overwrite,
) -> Result<Exported, ExportError> {
    let uid = stored.card.uid;
    let (bytes, secret) = match what {
        What::Image => (stored.card.image.clone().into(), false),
        What::Certificate | What::PublicKeys | What::Fingerprints => {
            let json = stored.card.exports.as_deref().unwrap_or_default();
            let text = match (
                Exports::from_json(json),
                crate::compile::piv::Exports::from_json(json),
            ) {
                (Some(exports), _) => match what {
                    What::Certificate => exports.certificate,
                    What::PublicKeys => exports.public_keys_pem(),
                    _ => exports.fingerprints(),
                },
                (None, Some(exports)) => match what {
                    What::Certificate => exports.certificates_pem(),
                    What::PublicKeys => exports.public_keys_pem(),
                    _ => exports.fingerprints(),
                },
                (None, None) => return Err(ExportError::NoExports),
            };
            (text.into_bytes().into(), false)
        }
        What::Transcript | What::Scriptor | What::Preinit => {
            let (kind, source) = match what {
                What::Preinit => (Kind::PreInitialization, &stored.card.preinit),
                _ => (Kind::Personalization, &stored.card.perso),
            };
            let opened = sealing::open(source, kind, uid, master)?;
            let document = trust.open(opened.as_str())?;
            let secret = opened.sealed;
            let bytes: zeroize::Zeroizing<Vec<u8>> = match what {
                What::Scriptor => transcript::to_scriptor(&document.transcript)?
                    .into_bytes()
                    .into(),
                _ => opened.as_str().as_bytes().to_vec().into(),
            };
            (bytes, secret)
        }
    };
    if !secret {
        // An image's areas are sealed; a channel transcript carries ciphertext only.
        let mode = if what == What::Image {
            Mode::Private
        } else {
            Mode::Public
        };
        crate::files::write_new(path, &bytes, mode, overwrite)?;
        return Ok(Exported {
            secret,
            encrypted: false,
        });
    }
    let recipient = match protection {
        Protection::Refuse => return Err(ExportError::NeedsProtection),
        Protection::Encrypt(recipient) => Some(recipient),
        Protection::Clear => None,
    };
    let mut file = AtomicFile::create(path, Mode::Private, overwrite)?;
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    match recipient {
        Some(recipient) => {
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                    .map_err(|e| ExportError::Encrypt(e.to_string()))?;
            let mut writer = encryptor.wrap_output(file).map_err(io)?;
            writer.write_all(&bytes).map_err(io)?;
            writer.finish().map_err(io)?.commit()?;
        }
        None => {
            file.write_all(&bytes).map_err(io)?;
            file.commit()?;
        }
    }
    Ok(Exported {
        secret,
        encrypted: recipient.is_some(),
    })
}

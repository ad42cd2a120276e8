//! Transcripts at rest: sealing those that carry secrets in clear before they enter a store,
//! and opening every stored form again (text, compressed, sealed). The one place that knows the
//! sealing key and its associated data; preparation seals, export, replay and the station open.
//! A transcript is compressed ([`packing`]) before it is sealed: sealed bytes do not compress.

use std::fmt;

use vsc_core::crypto::{MasterKey, SealKey, SealedArea};
use vsc_core::transcript::Kind;
use zeroize::Zeroizing;

use super::packing::{self, UnpackError};
use super::{Dictionary, SealedTranscript, StoredTranscript, Uid};

/// Why a stored transcript does not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It is sealed and no issuer key was given.
    #[error("the {0} transcript is sealed in the store (it carries secrets): give --key-file")]
    NeedsKey(Kind),
    /// The seal does not open: another issuer key, another card, or altered bytes.
    #[error(
        "the sealed {0} transcript does not open with this issuer key (another key, or altered)"
    )]
    Seal(Kind),
    /// The opened text is not UTF-8.
    #[error("the stored {0} transcript is not text")]
    NotText(Kind),
    /// The compressed transcript does not unpack.
    #[error("the stored {0} transcript: {1}")]
    Unpack(Kind, UnpackError),
}

/// The associated data a stored transcript is sealed with: `vsc-store/transcript/`, its kind,
/// `/` and the UID's 8 bytes.
pub fn transcript_aad(kind: Kind, uid: Uid) -> Vec<u8> {
    let mut aad = b"vsc-store/transcript/".to_vec();
    aad.extend_from_slice(kind.label().as_bytes());
    aad.push(b'/');
    aad.extend_from_slice(uid.bytes());
    aad
}

/// Seals the text of card `uid`'s transcript of `kind`, compressed first (against
/// `dictionary` when given: one that carries no secret, since it rests in clear).
pub fn seal(
    master: &MasterKey,
    kind: Kind,
    uid: Uid,
    text: &str,
    dictionary: Option<&Dictionary>,
) -> StoredTranscript {
    let packed = Zeroizing::new(packing::pack(text.as_bytes(), dictionary));
    StoredTranscript::Sealed(SealedTranscript {
        bytes: SealKey::derive(master, SealedArea::Transcript, uid.bytes())
            .seal(&transcript_aad(kind, uid), &packed),
        dictionary: dictionary.cloned(),
    })
}

/// The text of opened or unpacked bytes; wiped if they are not text.
fn text(kind: Kind, bytes: Vec<u8>) -> Result<Zeroizing<String>, OpenError> {
    String::from_utf8(bytes)
        .map(Zeroizing::new)
        .map_err(|error| {
            let mut bytes = error.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            OpenError::NotText(kind)
        })
}

/// A transcript's text as opened: wiped when dropped, for it may carry PINs and keys.
pub struct OpenedText {
    text: Zeroizing<String>,
    /// Whether it rested sealed (and so carries secrets in clear).
    pub sealed: bool,
}

impl OpenedText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for OpenedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenedText({} bytes, sealed: {})",
            self.text.len(),
            self.sealed
        )
    }
}

/// Opens the stored transcript of `kind` of card `uid`: a clear one as it is, a sealed one with
/// the issuer key.
pub fn open(
    stored: &StoredTranscript,
    kind: Kind,
    uid: Uid,
    master: Option<&MasterKey>,
) -> Result<OpenedText, OpenError> {
    match stored {
        StoredTranscript::Clear(text) => Ok(OpenedText {
            text: Zeroizing::new(text.clone()),
            sealed: false,
        }),
        StoredTranscript::Packed(packed) => {
            let bytes = packing::unpack(&packed.bytes, packed.dictionary.as_ref())
                .map_err(|e| OpenError::Unpack(kind, e))?;
            Ok(OpenedText {
                text: text(kind, bytes)?,
                sealed: false,
            })
        }
        StoredTranscript::Sealed(sealed) => {
            let master = master.ok_or(OpenError::NeedsKey(kind))?;
            let bytes = SealKey::derive(master, SealedArea::Transcript, uid.bytes())
                .open(&transcript_aad(kind, uid), &sealed.bytes)
                .map_err(|_| OpenError::Seal(kind))?;
            // Stores of schema version 2 sealed the text itself; later ones its compression.
            let bytes = if packing::is_packed(&bytes) {
                let unpacked = packing::unpack(&bytes, sealed.dictionary.as_ref());
                drop(bytes);
                unpacked.map_err(|e| OpenError::Unpack(kind, e))?
            } else {
                bytes.to_vec()
            };
            Ok(OpenedText {
                text: text(kind, bytes)?,
                sealed: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_transcript_opens_only_for_its_card_and_kind() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let uid = Uid([1; 8]);
        let sealed = seal(
            &master,
            Kind::PreInitialization,
            uid,
            "VSC-TRANSCRIPT 1\n",
            None,
        );
        let opened = open(&sealed, Kind::PreInitialization, uid, Some(&master)).unwrap();
        assert_eq!(opened.as_str(), "VSC-TRANSCRIPT 1\n");
        assert!(opened.sealed);
        assert_eq!(
            open(&sealed, Kind::Personalization, uid, Some(&master)).unwrap_err(),
            OpenError::Seal(Kind::Personalization)
        );
        assert_eq!(
            open(&sealed, Kind::PreInitialization, Uid([2; 8]), Some(&master)).unwrap_err(),
            OpenError::Seal(Kind::PreInitialization)
        );
        assert_eq!(
            open(&sealed, Kind::PreInitialization, uid, None).unwrap_err(),
            OpenError::NeedsKey(Kind::PreInitialization)
        );
        let other = MasterKey::from_bytes(&[8; 32]);
        assert!(open(&sealed, Kind::PreInitialization, uid, Some(&other)).is_err());
    }

    #[test]
    fn text_sealed_by_schema_version_2_still_opens() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let uid = Uid([1; 8]);
        let old = StoredTranscript::Sealed(SealedTranscript::new(
            SealKey::derive(&master, SealedArea::Transcript, uid.bytes()).seal(
                &transcript_aad(Kind::PreInitialization, uid),
                b"VSC-TRANSCRIPT 1\n",
            ),
        ));
        let dictionary = Dictionary::new(3, b"VSC-TRANSCRIPT 1\n# channel keys".to_vec());
        let with = seal(
            &master,
            Kind::PreInitialization,
            uid,
            "VSC-TRANSCRIPT 1\n# x",
            Some(&dictionary),
        );
        let opened = open(&with, Kind::PreInitialization, uid, Some(&master)).unwrap();
        assert_eq!(opened.as_str(), "VSC-TRANSCRIPT 1\n# x");
        let opened = open(&old, Kind::PreInitialization, uid, Some(&master)).unwrap();
        assert_eq!(opened.as_str(), "VSC-TRANSCRIPT 1\n");
        let packed = StoredTranscript::pack("VSC-TRANSCRIPT 1\n", None);
        let opened = open(&packed, Kind::Personalization, uid, None).unwrap();
        assert_eq!(opened.as_str(), "VSC-TRANSCRIPT 1\n");
        assert!(!opened.sealed);
    }
}

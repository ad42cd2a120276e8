//! Signed transcripts (format version 2): an Ed25519 signature by the issuer's *preparation
//! key* over the transcript's digest, so that a station or a replay, holding only the public
//! *verification key*, knows that a transcript is exactly what data preparation made: an edited
//! step with a recomputed digest, or a removed step, does not verify.
//!
//! The preparation key is derived from the issuer master key (HKDF-SHA256, info
//! `vsc/v1/transcript/ed25519`, no UID: one key for the issuer), so it needs no storage of its
//! own; the verification key travels as a small text file ([`VerifyKey::encode`]). Specified
//! in `docs/transcript-format.md` and `docs/keys.md`.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{Digest, Transcript, TranscriptError, parse, print};
use crate::crypto::MasterKey;

/// The HKDF `info` of the preparation key.
pub const PREPARATION_KEY_LABEL: &str = "vsc/v1/transcript/ed25519";

/// What is signed: this prefix, then the transcript's 32-byte SHA-256 digest.
pub const SIGNED_PREFIX: &[u8] = b"vsc/v1/transcript-signature";

/// The first line of a verification key file.
const KEY_FILE_MAGIC: &str = "vsc-transcript-key 1";

/// The issuer's preparation key: signs every transcript that data preparation makes.
pub struct PreparationKey(SigningKey);

/// The public half: what stations and replays trust.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyKey(VerifyingKey);

/// A verification key's short name: the first 8 bytes of SHA-256 of its 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

/// A transcript's signature line: which key, and the signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    key_id: KeyId,
    bytes: [u8; 64],
}

/// A transcript read with what vouches for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The transcript.
    pub transcript: Transcript,
    /// Its format version (1: unsigned; 2: signed).
    pub version: u8,
    /// The digest of its text (the trailer's, checked).
    pub digest: Digest,
    /// The signature, for version 2.
    pub signature: Option<Signature>,
}

/// Why a transcript is not authentic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A version-1 transcript: digested, not signed.
    #[error(
        "the transcript is not signed (format version 1): it may have been edited; only a \
         transcript signed by data preparation is replayed (or allow unsigned ones explicitly)"
    )]
    Unsigned,
    /// Signed by a key that is not trusted.
    #[error("the transcript is signed by key {0}, which is not a trusted verification key")]
    UnknownKey(KeyId),
    /// The signature does not verify: the transcript was changed after it was signed.
    #[error("the transcript's signature by key {0} does not verify: it was changed after signing")]
    Invalid(KeyId),
}

/// Why a verification key file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Not the three lines of the format.
    #[error("not a VSC verification key file (line {0})")]
    Malformed(usize),
    /// The bytes are not an Ed25519 public key.
    #[error("the key is not an Ed25519 public key")]
    NotAKey,
    /// The `key-id` line does not belong to the key.
    #[error("the key id does not match the key (the file is corrupt or was edited)")]
    IdMismatch,
}

impl PreparationKey {
    /// The preparation key of the issuer whose master key is `master`.
    pub fn derive(master: &MasterKey) -> PreparationKey {
        let mut seed = Zeroizing::new([0u8; 32]);
        let derived = crate::crypto::sha256::hkdf_sha256(
            None,
            master.secret_bytes(),
            &[PREPARATION_KEY_LABEL.as_bytes()],
            seed.as_mut(),
        );
        // 32 bytes is far below HKDF-SHA256's limit.
        debug_assert!(derived, "HKDF output too long");
        PreparationKey(SigningKey::from_bytes(&seed))
    }

    /// The verification key.
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey(self.0.verifying_key())
    }

    /// Signs a transcript's digest.
    pub fn sign(&self, digest: &Digest) -> Signature {
        let signature = self.0.sign(&signed_message(digest));
        Signature {
            key_id: self.verify_key().id(),
            bytes: signature.to_bytes(),
        }
    }
}

impl fmt::Debug for PreparationKey {
    /// The key id, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreparationKey({})", self.verify_key().id())
    }
}

fn signed_message(digest: &Digest) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNED_PREFIX.len() + 32);
    message.extend_from_slice(SIGNED_PREFIX);
    message.extend_from_slice(digest.as_bytes());
    message
}

impl VerifyKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<VerifyKey, KeyFileError> {
        VerifyingKey::from_bytes(bytes)
            .map(VerifyKey)
            .map_err(|_| KeyFileError::NotAKey)
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        let hash = Sha256::digest(self.0.as_bytes());
        let mut id = [0; 8];
        id.copy_from_slice(&hash[..8]);
        KeyId(id)
    }

    /// Whether `signature` is this key's over `digest` (strict verification: no malleable or
    /// weak-key signatures).
    pub fn verifies(&self, digest: &Digest, signature: &Signature) -> bool {
        signature.key_id == self.id()
            && self
                .0
                .verify_strict(
                    &signed_message(digest),
                    &ed25519_dalek::Signature::from_bytes(&signature.bytes),
                )
                .is_ok()
    }

    /// The key file: three lines, `vsc-transcript-key 1`, `ed25519 <64 hex digits>`, `key-id
    /// <16 hex digits>`.
    pub fn encode(&self) -> String {
        format!(
            "{KEY_FILE_MAGIC}\ned25519 {}\nkey-id {}\n",
            hex::encode_upper(self.to_bytes()),
            self.id()
        )
    }

    /// Reads a key file (exactly what [`VerifyKey::encode`] writes; hex in either case).
    pub fn decode(text: &str) -> Result<VerifyKey, KeyFileError> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let line = |n: usize, key: &str| -> Result<&str, KeyFileError> {
            lines
                .get(n)
                .and_then(|l| l.strip_suffix('\n'))
                .and_then(|l| l.strip_prefix(key))
                .ok_or(KeyFileError::Malformed(n + 1))
        };
        if !line(0, KEY_FILE_MAGIC)?.is_empty() {
            return Err(KeyFileError::Malformed(1));
        }
        if lines.len() != 3 {
            return Err(KeyFileError::Malformed(lines.len().min(4)));
        }
        let bytes: [u8; 32] = hex::decode(line(1, "ed25519 ")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyFileError::Malformed(2))?;
        let id: [u8; 8] = hex::decode(line(2, "key-id ")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyFileError::Malformed(3))?;
        let key = VerifyKey::from_bytes(&bytes)?;
        if key.id() != KeyId(id) {
            return Err(KeyFileError::IdMismatch);
        }
        Ok(key)
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({})", self.id())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl Signature {
    /// The signing key's id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub(super) fn from_parts(key_id: &[u8], bytes: &[u8]) -> Option<Signature> {
        Some(Signature {
            key_id: KeyId(key_id.try_into().ok()?),
            bytes: bytes.try_into().ok()?,
        })
    }

    /// Appends the signature line.
    pub(super) fn line_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ed25519 ");
        out.extend_from_slice(self.key_id.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(hex::encode_upper(self.bytes).as_bytes());
        out.push(b'\n');
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(by {})", self.key_id)
    }
}

impl Transcript {
    /// The canonical text of version 2, signed by `key`, and its digest.
    pub fn encode_signed(&self, key: &PreparationKey) -> (String, Digest) {
        let mut out = Vec::with_capacity(400 + 160 * self.steps.len());
        print::header_with_magic_into(print::MAGIC_LINE_SIGNED, &self.header, &mut out);
        for step in &self.steps {
            print::step_into(step, &mut out);
        }
        let digest = print::digest(&out);
        print::trailer_into(&digest, &mut out);
        key.sign(&digest).line_into(&mut out);
        // Every byte comes from hex digits, keywords and `String`s: always UTF-8.
        let text = String::from_utf8(out)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        (text, digest)
    }
}

impl Document {
    /// Parses a finished transcript of either version.
    pub fn parse(text: &str) -> Result<Document, TranscriptError> {
        let parsed = parse::parse_full(text, parse::Mode::Finished)?;
        match (parsed.recovered, parsed.digest) {
            (super::Recovered::Finished(transcript), Some(digest)) => Ok(Document {
                transcript,
                version: parsed.version,
                digest,
                signature: parsed.signature,
            }),
            // The finished mode always ends in a trailer, or fails.
            _ => Err(TranscriptError::DigestMissing {
                line: text.lines().count() + 1,
            }),
        }
    }

    /// Checks the signature against the trusted keys; the signing key's id when it verifies.
    pub fn verify(&self, trusted: &[VerifyKey]) -> Result<KeyId, SignatureError> {
        let signature = self.signature.as_ref().ok_or(SignatureError::Unsigned)?;
        let key = trusted
            .iter()
            .find(|key| key.id() == signature.key_id)
            .ok_or(SignatureError::UnknownKey(signature.key_id))?;
        if key.verifies(&self.digest, signature) {
            Ok(signature.key_id)
        } else {
            Err(SignatureError::Invalid(signature.key_id))
        }
    }
}

//! APDU transcripts (`.vsct`): the pre-initialization and personalization scripts of a card and
//! recorded sessions, as specified in `docs/transcript-format.md`.
//!
//! A [`Transcript`] prints to one canonical text ([`fmt::Display`],
//! [`Transcript::encode_into`]) ending in a SHA-256 trailer, and [`Transcript::parse`] accepts
//! exactly that text back. [`TranscriptWriter`] writes one step at a time for recordings;
//! [`Transcript::recover`] reads a recording cut off before its trailer. [`to_scriptor`] and
//! [`from_scriptor`] convert to and from pcsc-tools' `scriptor` scripts. Version 2 adds an
//! Ed25519 signature line by the issuer's preparation key ([`Transcript::encode_signed`],
//! [`Document::verify`]).

mod error;
mod expectation;
mod header;
mod hexdigits;
mod live;
mod parse;
mod print;
mod scriptor;
mod signature;
mod step;
mod writer;

use std::fmt;

pub use error::{Inconsistency, TranscriptError, ValueError, WriteError};
pub use expectation::Expectation;
pub use header::{Atr, Channel, Extension, Header, Kind, ProfileId, ProfileRef, Uid};
pub use live::{
    LiveKeyError, LiveStep, ManagementKeySource, derive_management_key, management_key_check,
    management_key_label,
};
pub use scriptor::{
    LiveStepInScript, ScriptorError, ScriptorHeader, from_scriptor, scriptor_header, to_scriptor,
};
pub use signature::{
    Document, KeyFileError, KeyId, PREPARATION_KEY_LABEL, PreparationKey, SIGNED_PREFIX, Signature,
    SignatureError, VerifyKey,
};
pub use step::{CommandApdu, Comment, ResetKind, Step};
pub use writer::TranscriptWriter;

/// A transcript: a header and the steps to replay in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// Which card, which profile, what kind of transcript.
    pub header: Header,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A SHA-256 digest, printed as 64 uppercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

/// What [`Transcript::recover`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// A complete transcript with a matching trailer.
    Finished(Transcript),
    /// A recording without its trailer: the writer never reached `finish`.
    Unfinished(Unfinished),
}

/// A recording cut off before its trailer: nothing vouches for it beyond its syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// The header and every complete step.
    pub transcript: Transcript,
    /// How many bytes at the end were ignored: a line without its LF, a comment without its
    /// step, a command without its response.
    pub ignored_tail: usize,
}

impl Transcript {
    /// Parses a complete transcript in canonical form, trailer included.
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        match parse::parse(text, parse::Mode::Finished)? {
            Recovered::Finished(transcript) => Ok(transcript),
            // The finished mode never gives this: it reports a missing trailer as an error.
            Recovered::Unfinished(_) => Err(TranscriptError::DigestMissing {
                line: text.lines().count() + 1,
            }),
        }
    }

    /// Like [`Transcript::parse`], from bytes that must be UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Transcript, TranscriptError> {
        Transcript::parse(utf8(bytes)?)
    }

    /// Reads a recording that may have been cut off: without a trailer, the complete steps are
    /// returned as [`Recovered::Unfinished`]. Every complete line must still be valid, and a
    /// trailer, when present, must match.
    pub fn recover(text: &str) -> Result<Recovered, TranscriptError> {
        parse::parse(text, parse::Mode::MaybeUnfinished)
    }

    /// Appends the canonical text to `out` and returns its digest (the one in the trailer).
    /// The text is UTF-8.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Digest {
        let start = out.len();
        print::header_into(&self.header, out);
        for step in &self.steps {
            print::step_into(step, out);
        }
        let digest = print::digest(&out[start..]);
        print::trailer_into(&digest, out);
        digest
    }

    /// The canonical text and its digest, built in one buffer (`to_string` copies it once
    /// more through the formatter).
    pub fn encode(&self) -> (String, Digest) {
        let mut out = Vec::with_capacity(256 + 160 * self.steps.len());
        let digest = self.encode_into(&mut out);
        // Every byte comes from hex digits, keywords and `String`s: always UTF-8.
        let text = String::from_utf8(out)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        (text, digest)
    }

    /// Whether the transcript keeps the rules that parsing enforces across fields: a profile
    /// exactly for non-session kinds, unchecked responses only in sessions. A transcript that
    /// breaks them still prints, but its text does not parse.
    pub fn check(&self) -> Result<(), Inconsistency> {
        self.header.check()?;
        for (index, step) in self.steps.iter().enumerate() {
            check_step(self.header.kind, index, step)?;
        }
        Ok(())
    }
}

impl Header {
    /// Whether a profile is named exactly when the kind needs one.
    pub fn check(&self) -> Result<(), Inconsistency> {
        match (self.kind, &self.profile) {
            (Kind::Session, Some(_)) => Err(Inconsistency::ProfileInSession),
            (Kind::Session, None) | (_, Some(_)) => Ok(()),
            (kind, None) => Err(Inconsistency::ProfileMissing(kind.label())),
        }
    }
}

fn check_step(kind: Kind, index: usize, step: &Step) -> Result<(), Inconsistency> {
    match step {
        Step::Command { expect, .. } if expect.is_any() && kind != Kind::Session => {
            Err(Inconsistency::UncheckedStep { step: index })
        }
        Step::Live { .. } if kind != Kind::Personalization => {
            Err(Inconsistency::LiveStepOutOfPlace { step: index })
        }
        _ => Ok(()),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, TranscriptError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        TranscriptError::NotUtf8 {
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
        }
    })
}

impl fmt::Display for Transcript {
    /// The canonical text, trailer included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(256 + 160 * self.steps.len());
        self.encode_into(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl Digest {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(64);
        hexdigits::encode_into(&self.0, &mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests;

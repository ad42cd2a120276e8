//! What `replay` reads, and whether it may be replayed: a VSC transcript (which must verify
//! against a trusted key), or a pcsc-tools scriptor script (only when asked for: `--scriptor`
//! or the `.scr` extension), never "anything else read as a script".

use std::path::Path;

use vsc_core::crypto::MasterKey;
use vsc_core::transcript::{
    Document, KeyId, PreparationKey, ScriptorError, ScriptorHeader, SignatureError, Step,
    TranscriptError, VerifyKey, from_scriptor, scriptor_header,
};

/// A replay's input.
#[derive(Debug)]
pub enum Input {
    /// A VSC transcript.
    Transcript(Document),
    /// A scriptor script.
    Script(Script),
}

/// A scriptor script: unchecked steps, and the card it names if it came from `export
/// scriptor`.
#[derive(Debug)]
pub struct Script {
    /// The steps (responses unchecked).
    pub steps: Vec<Step>,
    /// The card the script's header comment names.
    pub header: Option<ScriptorHeader>,
}

/// Why the input cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file is not a transcript, and scriptor input was not asked for.
    #[error(
        "not a VSC transcript (its first line is not `VSC-TRANSCRIPT …`); for a pcsc-tools \
         scriptor script give --scriptor (or name it *.scr)"
    )]
    NotATranscript,
    /// A transcript that does not parse.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// A scriptor script that does not parse.
    #[error(transparent)]
    Scriptor(#[from] ScriptorError),
    /// A scriptor script without a single command.
    #[error("the scriptor script has no command to send")]
    EmptyScript,
}

/// Reads `text`: a transcript when it starts like one, a scriptor script when `scriptor` says
/// so (or `path` ends in `.scr`).
pub fn read(text: &str, path: Option<&Path>, scriptor: bool) -> Result<Input, InputError> {
    if text.starts_with("VSC-TRANSCRIPT") {
        return Ok(Input::Transcript(Document::parse(text)?));
    }
    let scr = path
        .and_then(Path::extension)
        .is_some_and(|ext| ext.eq_ignore_ascii_case("scr"));
    if !scriptor && !scr {
        return Err(InputError::NotATranscript);
    }
    let steps = from_scriptor(text)?;
    if !steps
        .iter()
        .any(|step| matches!(step, Step::Command { .. }))
    {
        return Err(InputError::EmptyScript);
    }
    Ok(Input::Script(Script {
        steps,
        header: scriptor_header(text),
    }))
}

impl Input {
    /// Reads `text` (see [`read`]).
    pub fn read(text: &str, path: Option<&Path>, scriptor: bool) -> Result<Input, InputError> {
        read(text, path, scriptor)
    }
}

/// Which transcripts may be replayed: those signed by a trusted verification key, and unsigned
/// (version 1) ones only when explicitly allowed.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<VerifyKey>,
    allow_unsigned: bool,
}

/// Why a transcript is not replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// It does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// It is signed, and no key to check it against was given.
    #[error(
        "the transcript is signed by key {0}: give the issuer's verification key to check it \
         (--trusted-key FILE, written by `vsc-personalizer keys public-key`)"
    )]
    NoKey(KeyId),
}

impl Trust {
    /// Trusts `keys`.
    pub fn new(keys: Vec<VerifyKey>) -> Trust {
        Trust {
            keys,
            allow_unsigned: false,
        }
    }

    /// Also trusts the preparation key of the issuer `master` (a station or replay that has
    /// the issuer key anyway).
    pub fn with_issuer(mut self, master: &MasterKey) -> Trust {
        let key = PreparationKey::derive(master).verify_key();
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        self
    }

    /// Also accepts unsigned (version 1) transcripts.
    pub fn allowing_unsigned(mut self, allow: bool) -> Trust {
        self.allow_unsigned = allow;
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }

    /// Whether `document` may be replayed: the key that signed it, `None` for an allowed
    /// unsigned one.
    pub fn check(&self, document: &Document) -> Result<Option<KeyId>, TrustError> {
        match (&document.signature, self.allow_unsigned) {
            (None, true) => Ok(None),
            (None, false) => Err(TrustError::Signature(SignatureError::Unsigned)),
            (Some(signature), _) if self.keys.is_empty() => {
                Err(TrustError::NoKey(signature.key_id()))
            }
            (Some(_), _) => Ok(Some(document.verify(&self.keys)?)),
        }
    }

    /// Parses `text` as a transcript and checks it.
    pub fn open(&self, text: &str) -> Result<Document, OpenTranscriptError> {
        let document = Document::parse(text)?;
        self.check(&document)?;
        Ok(document)
    }
}

/// Why a transcript's text is not replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenTranscriptError {
    /// It does not parse.
    #[error(transparent)]
    Parse(#[from] TranscriptError),
    /// It is not trusted.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transcripts_or_asked_for_scripts_are_read() {
        for text in ["", "# a comment\n", "00 A4 00 0C 02 3F 00\n"] {
            assert!(
                matches!(read(text, None, false), Err(InputError::NotATranscript)),
                "{text:?}"
            );
        }
        for text in ["", "# just a comment\n\n", "reset\n"] {
            assert!(
                matches!(read(text, None, true), Err(InputError::EmptyScript)),
                "{text:?}"
            );
        }
        let script = "# select\n00 A4 00 0C 02 3F 00\n";
        assert!(matches!(read(script, None, true), Ok(Input::Script(_))));
        assert!(matches!(
            read(script, Some(Path::new("card.SCR")), false),
            Ok(Input::Script(_))
        ));
        assert!(matches!(
            read("VSC-TRANSCRIPT 1\n", None, true),
            Err(InputError::Transcript(_))
        ));
    }

    #[test]
    fn trust_takes_signed_transcripts_and_unsigned_ones_only_when_allowed() {
        use vsc_core::transcript::Transcript;
        let master = MasterKey::from_bytes(&[5; 32]);
        let transcript = Transcript {
            header: vsc_core::transcript::Header {
                kind: vsc_core::transcript::Kind::Session,
                uid: vsc_core::Uid([1; 8]),
                atr: vsc_core::transcript::Atr::new(vec![0x3B, 0]).unwrap(),
                profile: None,
                channel: vsc_core::transcript::Channel::Plain,
                extensions: Vec::new(),
            },
            steps: Vec::new(),
        };
        let (unsigned, _) = transcript.encode();
        let (signed, _) = transcript.encode_signed(&PreparationKey::derive(&master));
        let none = Trust::default();
        assert!(matches!(
            none.open(&signed),
            Err(OpenTranscriptError::Trust(TrustError::NoKey(_)))
        ));
        assert!(matches!(
            none.open(&unsigned),
            Err(OpenTranscriptError::Trust(TrustError::Signature(
                SignatureError::Unsigned
            )))
        ));
        assert!(none.clone().allowing_unsigned(true).open(&unsigned).is_ok());
        let issuer = Trust::default().with_issuer(&master);
        assert!(issuer.open(&signed).is_ok());
        let other = Trust::default().with_issuer(&MasterKey::from_bytes(&[6; 32]));
        assert!(matches!(
            other.open(&signed),
            Err(OpenTranscriptError::Trust(TrustError::Signature(
                SignatureError::UnknownKey(_)
            )))
        ));
    }
}

//! Transcript and scriptor parsing (`vsc_core::transcript`): parse∘print = id.
//!
//! - A transcript that parses prints back to the very same text (the format has one canonical
//!   text), keeps the cross-field rules, and signs to a version 2 text that parses to it again
//!   and verifies.
//! - A recording cut off before its trailer recovers to steps that print to a transcript that
//!   parses back to them.
//! - A scriptor script that imports exports to a script that imports to the same steps.

use std::sync::OnceLock;

use vsc_core::transcript::{
    self, Atr, Channel, Document, Header, Kind, PreparationKey, Recovered, Transcript, Uid,
};
use vsc_tests::catalogue::test_master_key;

/// The target's body.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(
            Transcript::parse_bytes(data).is_err(),
            "a transcript is UTF-8"
        );
        return;
    };
    if let Ok(document) = Document::parse(text) {
        let parsed = &document.transcript;
        assert_eq!(Transcript::parse(text).as_ref(), Ok(parsed));
        assert!(
            parsed.check().is_ok(),
            "what parses keeps the cross-field rules"
        );
        let key = key();
        match document.version {
            1 => assert_eq!(parsed.encode().0, text, "parse∘print = id"),
            // A signed text prints back when it was signed by the key at hand (Ed25519
            // signatures are deterministic).
            _ if document.verify(&[key.verify_key()]).is_ok() => {
                assert_eq!(parsed.encode_signed(key).0, text, "parse∘print = id");
            }
            _ => {}
        }
        let (signed, digest) = parsed.encode_signed(key);
        match Document::parse(&signed) {
            Ok(again) => {
                assert_eq!(&again.transcript, parsed);
                assert_eq!(again.digest, digest);
                assert!(again.verify(&[key.verify_key()]).is_ok());
            }
            Err(error) => panic!("a signed transcript does not parse: {error}"),
        }
    }
    match Transcript::recover(text) {
        Ok(Recovered::Finished(finished)) => {
            assert_eq!(
                Transcript::parse(&finished.encode().0).as_ref(),
                Ok(&finished)
            );
        }
        Ok(Recovered::Unfinished(unfinished)) => {
            assert!(unfinished.ignored_tail <= text.len());
            let printed = unfinished.transcript.encode().0;
            assert_eq!(
                Transcript::parse(&printed).as_ref(),
                Ok(&unfinished.transcript),
                "recovered steps print to a transcript"
            );
        }
        Err(_) => {}
    }

    let _ = transcript::scriptor_header(text);
    if let Ok(steps) = transcript::from_scriptor(text) {
        let exported = transcript::to_scriptor(&Transcript {
            header: session_header(),
            steps: steps.clone(),
        })
        .expect("scriptor imports have no live steps");
        assert_eq!(
            transcript::from_scriptor(&exported).as_ref(),
            Ok(&steps),
            "import∘export∘import = import"
        );
        assert!(transcript::scriptor_header(&exported).is_some());
    }
}

fn key() -> &'static PreparationKey {
    static KEY: OnceLock<PreparationKey> = OnceLock::new();
    KEY.get_or_init(|| PreparationKey::derive(&test_master_key()))
}

fn session_header() -> Header {
    Header {
        kind: Kind::Session,
        uid: Uid(vsc_core::sample::UID),
        atr: Atr::new(vsc_core::atr::atr(0x05)).expect("the sample card's ATR is an ATR"),
        profile: None,
        channel: Channel::Plain,
        extensions: Vec::new(),
    }
}

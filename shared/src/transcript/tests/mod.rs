//! Tests of the whole format: shared fixtures, the canonical text, and one module per concern.

mod errors;
mod properties;
mod recovery;
mod scriptor;
mod signature;
mod tampering;
mod writer;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::*;
use crate::apdu::{ApduError, Command, MAX_NE};

const HEAD: &str = "VSC-TRANSCRIPT 1\n\
kind personalization\n\
uid 0102030405060708\n\
atr 3B8880015653432D4341524476\n\
profile eid-demo 3\n\
channel secure-messaging\n";

const SESSION_HEAD: &str = "VSC-TRANSCRIPT 1\n\
kind session\n\
uid 0102030405060708\n\
atr 3B8880015653432D4341524476\n\
channel plain\n";

/// `body` with its correct trailer, so that a test's error is never a digest mismatch.
fn seal(body: &str) -> String {
    format!("{body}sha256 {}\n", hex::encode_upper(Sha256::digest(body)))
}

fn error(text: &str) -> TranscriptError {
    Transcript::parse(text).unwrap_err()
}

fn sealed_error(body: &str) -> TranscriptError {
    error(&seal(body))
}

fn step(comment: Option<&str>, command: &str, expect: &str) -> Step {
    Step::Command {
        comment: comment.map(|text| Comment::new(text).unwrap()),
        command: CommandApdu::new(hex::decode(command).unwrap()).unwrap(),
        expect: Expectation::parse(expect).unwrap(),
    }
}

fn header(kind: Kind) -> Header {
    Header {
        kind,
        uid: Uid([1, 2, 3, 4, 5, 6, 7, 8]),
        atr: Atr::new(hex::decode("3B8880015653432D4341524476").unwrap()).unwrap(),
        profile: (kind != Kind::Session).then(|| ProfileRef {
            id: ProfileId::new("eid-demo").unwrap(),
            version: 3,
        }),
        channel: Channel::SecureMessaging,
        extensions: vec![Extension::new("x-batch", "2024-07 run 2").unwrap()],
    }
}

fn sample() -> Transcript {
    Transcript {
        header: header(Kind::Personalization),
        steps: vec![
            step(Some("select MF"), "00A4000C023F00", "9000"),
            step(Some("get challenge"), "0084000008", "????????????????9000"),
            step(None, "00B0000000", "4A616E659000"),
            Step::Reset {
                comment: Some(Comment::new("power cycle").unwrap()),
                kind: ResetKind::Cold,
            },
            step(
                Some("verify: wrong PIN (tries left vary)"),
                "00200001083132333435FFFFFF",
                "63C?",
            ),
            Step::Reset {
                comment: None,
                kind: ResetKind::Warm,
            },
        ],
    }
}

const SAMPLE_BODY: &str = "VSC-TRANSCRIPT 1\n\
kind personalization\n\
uid 0102030405060708\n\
atr 3B8880015653432D4341524476\n\
profile eid-demo 3\n\
channel secure-messaging\n\
x-batch 2024-07 run 2\n\
# select MF\n\
> 00A4000C023F00\n\
< 9000\n\
# get challenge\n\
> 0084000008\n\
< ????????????????9000\n\
> 00B0000000\n\
< 4A616E659000\n\
# power cycle\n\
reset cold\n\
# verify: wrong PIN (tries left vary)\n\
> 00200001083132333435FFFFFF\n\
< 63C?\n\
reset warm\n";

#[test]
fn prints_the_canonical_text() {
    let text = sample().to_string();
    assert_eq!(text, seal(SAMPLE_BODY));
    let mut bytes = b"prefix".to_vec();
    let digest = sample().encode_into(&mut bytes);
    assert_eq!(&bytes[6..], text.as_bytes());
    assert_eq!(digest.0[..], Sha256::digest(SAMPLE_BODY)[..]);
    assert_eq!(sample().encode(), (text, digest));
}

#[test]
fn parses_the_canonical_text() {
    assert_eq!(Transcript::parse(&seal(SAMPLE_BODY)), Ok(sample()));
    assert_eq!(
        Transcript::parse_bytes(seal(SAMPLE_BODY).as_bytes()),
        Ok(sample())
    );
}

#[test]
fn a_transcript_may_have_no_step() {
    let text = seal(HEAD);
    let transcript = Transcript::parse(&text).unwrap();
    assert!(transcript.steps.is_empty());
    assert_eq!(transcript.to_string(), text);
}

//! The examples of docs/transcript-format.md are valid: each `vsct` block parses and prints
//! back unchanged, the unfinished one recovers, the scriptor one imports to the steps shown.

// A test: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use vsc_core::crypto::MasterKey;
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Document, Expectation, Extension, Header, Kind,
    PreparationKey, ProfileId, ProfileRef, Recovered, ResetKind, Step, Transcript, Uid, VerifyKey,
    from_scriptor,
};

const DOC: &str = include_str!("../../docs/transcript-format.md");

/// The fenced blocks with the given info string, each line with its LF.
fn blocks(info: &str) -> Vec<String> {
    let fence = format!("```{info}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        match &mut current {
            None if line == fence => current = Some(String::new()),
            Some(block) if line == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_example_parses_and_prints_back() {
    let examples = blocks("vsct");
    assert_eq!(examples.len(), 5);
    for example in examples {
        let transcript = Transcript::parse(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        assert_eq!(transcript.to_string(), example);
    }
}

fn command(comment: &str, apdu: &str, response: &str) -> Step {
    Step::Command {
        comment: Some(Comment::new(comment).unwrap()),
        command: CommandApdu::new(hex::decode(apdu).unwrap()).unwrap(),
        expect: Expectation::exact(hex::decode(response).unwrap()).unwrap(),
    }
}

/// The first example, built in code: the printer's known answer.
#[test]
fn the_first_example_is_what_the_printer_writes() {
    let transcript = Transcript {
        header: Header {
            kind: Kind::Personalization,
            uid: Uid([1, 2, 3, 4, 5, 6, 7, 8]),
            atr: Atr::new(hex::decode("3B8880015653432D4341524476").unwrap()).unwrap(),
            profile: Some(ProfileRef {
                id: ProfileId::new("eid-demo").unwrap(),
                version: 3,
            }),
            channel: Channel::SecureMessaging,
            extensions: vec![Extension::new("x-prepared-by", "vsc-personalizer 0.1.0").unwrap()],
        },
        steps: vec![
            command("select DF.PUBLIC 5000", "00A4000C025000", "9000"),
            command("select EF 5001 holder name", "00A4020C025001", "9000"),
            command(
                "write EF 5001 holder name",
                "0CD600001D871101A54DCA182530BB1D6D132CDED6237B2E8E08D91E3F721FCB197100",
                "990290008E08174494D6493C9D5C9000",
            ),
            command(
                "set user PIN (reference 01)",
                "0C2C02011D8711013460BE31201E69FEDAA0EEE8B9997F5C8E087C2999FDAFE5932500",
                "990290008E083CD654AF4DFAD7149000",
            ),
            command(
                "activate MF",
                "0C44000A0A8E0827A0AEB3FEE9232F00",
                "990290008E088AF2211F9EE491C59000",
            ),
        ],
    };
    assert_eq!(transcript.to_string(), blocks("vsct")[0]);
}

#[test]
fn the_unfinished_example_recovers_three_steps() {
    let [block] = &blocks("vsct-unfinished")[..] else {
        panic!("one unfinished example");
    };
    // The code block ends the last line; the recording did not.
    let recording = block.strip_suffix('\n').unwrap();
    assert!(Transcript::parse(recording).is_err());
    let Ok(Recovered::Unfinished(unfinished)) = Transcript::recover(recording) else {
        panic!("not unfinished");
    };
    assert_eq!(unfinished.transcript.steps.len(), 3);
    let tail = &recording[recording.find("# verify a wrong user PIN").unwrap()..];
    assert_eq!(unfinished.ignored_tail, tail.len());
}

#[test]
fn the_scriptor_example_imports_to_the_session_shown() {
    let [script] = &blocks("scriptor")[..] else {
        panic!("one scriptor example");
    };
    let steps = from_scriptor(script).unwrap();
    let session = blocks("vsct")
        .into_iter()
        .map(|text| Transcript::parse(&text).unwrap())
        .find(|t| t.header.kind == Kind::Session && t.steps.first().is_some_and(is_warm_reset))
        .unwrap();
    assert_eq!(steps, session.steps);
}

fn is_warm_reset(step: &Step) -> bool {
    matches!(
        step,
        Step::Reset {
            kind: ResetKind::Warm,
            ..
        }
    )
}

/// The signed vector: it verifies under the documented key, signing its transcript again gives
/// the same text, and it is the first example signed.
#[test]
fn the_signed_vector_verifies_and_is_reproduced() {
    let signed = &blocks("vsct-signed")[0];
    let key_file = &blocks("vsct-key")[0];
    let master = MasterKey::from_bytes(&std::array::from_fn(|i| i as u8));
    let key = PreparationKey::derive(&master);
    assert_eq!(&key.verify_key().encode(), key_file);
    let verify = VerifyKey::decode(key_file).unwrap();
    let document = Document::parse(signed).unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.verify(&[verify]), Ok(verify.id()));
    assert_eq!(&document.transcript.encode_signed(&key).0, signed);
    assert_eq!(
        document.transcript,
        Transcript::parse(&blocks("vsct")[0]).unwrap()
    );
}

/// The live step example's check value is the one the documented derivation gives for the
/// master key `00 01 .. 1F` (computed independently with Python's hmac and hashlib).
#[test]
fn the_live_step_example_checks_its_key() {
    use vsc_core::security::BlockAlgorithm;
    use vsc_core::transcript::LiveStep;
    let master = MasterKey::from_bytes(&core::array::from_fn(|i| i as u8));
    let uid = [1, 2, 3, 4, 5, 6, 7, 8];
    let example = blocks("vsct")
        .into_iter()
        .find(|block| block.contains("live piv-management-key 03 card"))
        .expect("the live step example");
    let transcript = Transcript::parse(&example).unwrap();
    let live: Vec<_> = transcript
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Live { live, .. } => Some(*live),
            _ => None,
        })
        .collect();
    assert_eq!(
        live,
        [
            LiveStep::factory_management_key(),
            LiveStep::card_management_key(&master, BlockAlgorithm::Tdes, &uid)
        ]
    );
    live[1].key(Some(&master), &uid).unwrap();
}

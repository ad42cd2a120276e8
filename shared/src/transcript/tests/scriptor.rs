//! Export to and import from pcsc-tools' scriptor.

use super::properties::arb_transcript;
use super::*;

#[test]
fn scriptor_export() {
    let script = to_scriptor(&sample()).unwrap();
    let expected = "\
# VSC transcript for scriptor (pcsc-tools); responses are not checked
# kind personalization, uid 0102030405060708, atr 3B8880015653432D4341524476, profile eid-demo 3, channel secure-messaging

# select MF
00 A4 00 0C 02 3F 00

# get challenge
00 84 00 00 08

00 B0 00 00 00

# power cycle
# cold reset in the transcript; scriptor resets warm
reset

# verify: wrong PIN (tries left vary)
00 20 00 01 08 31 32 33 34 35 FF FF FF

reset
";
    assert_eq!(script, expected);
}

#[test]
fn scriptor_export_never_writes_exit() {
    let mut transcript = sample();
    transcript.steps[0] = step(Some("EXIT code, then exit"), "00A4000C023F00", "9000");
    let script = to_scriptor(&transcript).unwrap();
    assert!(script.contains("# EX-IT code, then ex-it\n"), "{script}");
    assert!(!script.to_ascii_lowercase().contains("exit"));
    assert_eq!(
        from_scriptor(&script).unwrap().len(),
        transcript.steps.len()
    );
}

fn unchecked(comment: Option<&str>, command: &str) -> Step {
    Step::Command {
        comment: comment.map(|text| Comment::new(text).unwrap()),
        command: CommandApdu::new(hex::decode(command).unwrap()).unwrap(),
        expect: Expectation::any(),
    }
}

fn warm(comment: Option<&str>) -> Step {
    Step::Reset {
        comment: comment.map(|text| Comment::new(text).unwrap()),
        kind: ResetKind::Warm,
    }
}

#[test]
fn scriptor_import_reads_what_scriptor_runs() {
    let script = "\
# reset the card
RESET

# Select MF 3F00
a0 a4 00 00 02 3F 00   

#  two lines,
#\tone comment
00A4000C023F00

# separated by a blank line, so dropped

00 D6 00 00 \\
03 01 02\\
03
Reset the card now
00b0000000\r
exit
00 A4 00 00
";
    assert_eq!(
        from_scriptor(script),
        Ok(vec![
            warm(Some("reset the card")),
            unchecked(Some("Select MF 3F00"), "A0A40000023F00"),
            unchecked(Some("two lines, one comment"), "00A4000C023F00"),
            unchecked(None, "00D6000003010203"),
            warm(None),
            unchecked(None, "00B0000000"),
        ])
    );
}

#[test]
fn scriptor_import_stops_at_exit_even_in_a_comment() {
    let script = "00 A4 00 00\n# on Exit, nothing more is sent\n00 B0 00 00 00\n";
    assert_eq!(from_scriptor(script), Ok(vec![unchecked(None, "00A40000")]));
}

#[test]
fn scriptor_import_errors() {
    let bad_byte = |script: &str, line, token: &str| {
        assert_eq!(
            from_scriptor(script),
            Err(ScriptorError::BadByte {
                line,
                token: token.into()
            }),
            "{script:?}"
        );
    };
    bad_byte("00 A4  00 00\n", 1, "");
    bad_byte("# ok\n 00 A4 00 00\n", 2, "");
    bad_byte("00 A4 00 00 # select\n", 1, "#");
    bad_byte("00\tA4 00 00\n", 1, "00\tA4");
    bad_byte("00A4000\n", 1, "0");
    bad_byte("00 A4 00 0G\n", 1, "0G");
    bad_byte("00 A4 00 000\n", 1, "000");
    assert_eq!(
        from_scriptor("00 A4 00 0C 02 3F\n"),
        Err(ScriptorError::ApduMalformed {
            line: 1,
            source: ApduError::LengthMismatch { nc: 2, body: 1 }
        })
    );
    assert_eq!(
        from_scriptor("00 A4 \\\nreset\n"),
        Err(ScriptorError::ResetInContinuation { line: 2 })
    );
    assert_eq!(
        from_scriptor("# a\n00 A4 \\\n00 00 \\\n"),
        Err(ScriptorError::UnterminatedContinuation { line: 2 })
    );
}

proptest! {
    #[test]
    fn scriptor_round_trip_keeps_commands_and_comments(transcript in arb_transcript()) {
        // `exit` in a comment is respelled on export; scriptor_export_never_writes_exit covers it.
        prop_assume!(!transcript.steps.iter().any(|step| {
            step.comment().is_some_and(|c| c.as_str().to_ascii_lowercase().contains("exit"))
        }));
        let note = "cold reset in the transcript; scriptor resets warm";
        let expected: Vec<Step> = transcript
            .steps
            .iter()
            .map(|step| match step {
                Step::Command { comment, command, .. } => Step::Command {
                    comment: comment.clone(),
                    command: command.clone(),
                    expect: Expectation::any(),
                },
                Step::Reset { comment, kind } => Step::Reset {
                    comment: match (kind, comment) {
                        (ResetKind::Cold, Some(comment)) => {
                            Some(Comment::new(format!("{comment} {note}")).unwrap())
                        }
                        (ResetKind::Cold, None) => Some(Comment::new(note).unwrap()),
                        (ResetKind::Warm, comment) => comment.clone(),
                    },
                    kind: ResetKind::Warm,
                },
                Step::Live { .. } => unreachable!("arb_transcript makes no live step"),
            })
            .collect();
        prop_assert_eq!(from_scriptor(&to_scriptor(&transcript).unwrap()), Ok(expected));
    }

    #[test]
    fn no_string_panics_the_scriptor_reader(text in "\\PC*") {
        let _ = from_scriptor(&text);
    }
}

#[test]
fn the_scriptor_header_names_the_card() {
    let header = scriptor_header(&to_scriptor(&sample()).unwrap()).unwrap();
    assert_eq!(header.kind, Kind::Personalization);
    assert_eq!(header.uid, sample().header.uid);
    assert_eq!(header.atr, sample().header.atr);
    assert_eq!(header.channel, Channel::SecureMessaging);
    // A script from elsewhere names no card.
    assert_eq!(
        scriptor_header("# reset the card\nreset\n00 A4 00 00 02 3F 00\n"),
        None
    );
    assert_eq!(
        scriptor_header("00 A4 00 00 02 3F 00\n# kind session, uid 01, atr 3B00, channel plain\n"),
        None
    );
}

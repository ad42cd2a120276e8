//! The streaming writer, and the rules it shares with parsing.

use super::*;

#[test]
fn the_writer_writes_what_display_prints() {
    let sample = sample();
    let mut writer = TranscriptWriter::new(Vec::new(), &sample.header).unwrap();
    for step in &sample.steps {
        writer.write_step(step).unwrap();
    }
    assert_eq!(writer.steps_written(), sample.steps.len());
    let (bytes, digest) = writer.finish().unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), sample.to_string());
    assert_eq!(digest, sample.encode_into(&mut Vec::new()));
}

#[test]
fn a_dropped_writer_leaves_an_unfinished_recording() {
    let sample = sample();
    let mut out = Vec::new();
    {
        let mut writer = TranscriptWriter::new(&mut out, &sample.header).unwrap();
        writer.write_step(&sample.steps[0]).unwrap();
        writer.write_step(&sample.steps[1]).unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        Transcript::parse(&text),
        Err(TranscriptError::DigestMissing { line: 14 })
    );
    let Ok(Recovered::Unfinished(unfinished)) = Transcript::recover(&text) else {
        panic!("not unfinished");
    };
    assert_eq!(unfinished.transcript.steps, sample.steps[..2]);
    assert_eq!(unfinished.ignored_tail, 0);
}

#[test]
fn the_writer_refuses_what_parse_would_refuse() {
    let mut writer = TranscriptWriter::new(Vec::new(), &header(Kind::Personalization)).unwrap();
    let unchecked = Step::Command {
        comment: None,
        command: CommandApdu::new(vec![0, 0xA4, 0, 0]).unwrap(),
        expect: Expectation::any(),
    };
    assert!(matches!(
        writer.write_step(&unchecked),
        Err(WriteError::Inconsistent(Inconsistency::UncheckedStep {
            step: 0
        }))
    ));
    let (bytes, _) = writer.finish().unwrap();
    assert!(Transcript::parse_bytes(&bytes).unwrap().steps.is_empty());

    let mut no_profile = header(Kind::Personalization);
    no_profile.profile = None;
    assert!(matches!(
        TranscriptWriter::new(Vec::new(), &no_profile),
        Err(WriteError::Inconsistent(Inconsistency::ProfileMissing(
            "personalization"
        )))
    ));
}

#[test]
fn check_matches_what_parse_enforces() {
    assert_eq!(sample().check(), Ok(()));
    let mut session = sample();
    session.header.kind = Kind::Session;
    assert_eq!(session.check(), Err(Inconsistency::ProfileInSession));
    assert!(Transcript::parse(&session.to_string()).is_err());
    session.header.profile = None;
    assert_eq!(session.check(), Ok(()));
    let mut unchecked = sample();
    unchecked.steps.push(Step::Command {
        comment: None,
        command: CommandApdu::new(vec![0, 0xA4, 0, 0]).unwrap(),
        expect: Expectation::any(),
    });
    assert_eq!(
        unchecked.check(),
        Err(Inconsistency::UncheckedStep { step: 6 })
    );
    assert_eq!(
        Transcript::parse(&unchecked.to_string()),
        Err(TranscriptError::UncheckedNotAllowed { line: 23 })
    );
}

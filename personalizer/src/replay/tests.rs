//! The replay engine on the card OS in-process: order, mismatches, the UID guard, and what a
//! failure shows.

use vsc_core::card::{Card, LifeCycle};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Expectation, ProfileId, ProfileRef, Uid,
};

use super::*;

/// The sample card's making as a transcript of `kind`, all answers `9000`.
fn sample_transcript(kind: Kind) -> Transcript {
    let steps = vsc_core::sample::script()
        .into_iter()
        .map(|(what, command)| Step::Command {
            comment: Some(Comment::new(what).unwrap()),
            command: CommandApdu::new(command).unwrap(),
            expect: Expectation::exact(vec![0x90, 0x00]).unwrap(),
        })
        .collect();
    Transcript {
        header: Header {
            kind,
            uid: Uid(vsc_core::sample::UID),
            atr: Atr::new(Card::blank().atr()).unwrap(),
            profile: Some(ProfileRef {
                id: ProfileId::new("sample").unwrap(),
                version: 1,
            }),
            channel: Channel::Plain,
            extensions: Vec::new(),
        },
        steps,
    }
}

#[test]
fn a_transcript_replays_and_then_the_card_is_refused() {
    let transcript = sample_transcript(Kind::PreInitialization);
    let mut link = CardOsLink::new(Card::blank());
    check_card(&mut link, &transcript.header).unwrap();
    let mut seen = 0;
    replay(&mut link, &transcript, |event| {
        if let Event::Step { step, total, .. } = event {
            seen = step;
            assert_eq!(total, transcript.steps.len());
        }
    })
    .unwrap();
    assert_eq!(seen, transcript.steps.len());
    assert_eq!(link.card().state().life_cycle, LifeCycle::Operational);
    let error = check_card(&mut link, &transcript.header).unwrap_err();
    assert!(error.to_string().contains("already operational"), "{error}");
}

#[test]
fn the_first_mismatch_stops_names_the_step_and_decodes_the_status() {
    let mut transcript = sample_transcript(Kind::PreInitialization);
    if let Step::Command { expect, .. } = &mut transcript.steps[4] {
        *expect = Expectation::exact(vec![0x6A, 0x82]).unwrap();
    }
    let mut link = CardOsLink::new(Card::blank());
    let error = replay(&mut link, &transcript, |_| {}).unwrap_err();
    assert_eq!(error.step(), Some(5));
    assert_eq!(error.status(), Some(Status::Success));
    let text = error.to_string();
    assert!(
        text.starts_with("step 5 (create EF 5001 (holder name)): unexpected response"),
        "{text}"
    );
    assert!(
        text.contains("expected  6A82") && text.contains("received  9000 (success)"),
        "{text}"
    );
}

/// A plain transcript whose PIN step fails: the message shows the PIN's length, never the PIN.
#[test]
fn a_failing_secret_bearing_step_is_masked() {
    let pin = b"924713\xFF\xFF";
    let verify = vsc_core::commands::set_reference_data(0x01, pin)
        .to_vec()
        .unwrap();
    let step = Step::Command {
        comment: Some(Comment::new("set the user PIN (01)").unwrap()),
        command: CommandApdu::new(verify.clone()).unwrap(),
        expect: Expectation::exact(vec![0x90, 0x00]).unwrap(),
    };
    let mut transcript = sample_transcript(Kind::Personalization);
    transcript.steps = vec![step];
    let mut link = CardOsLink::new(Card::blank());
    let error = replay(&mut link, &transcript, |_| {}).unwrap_err();
    let text = error.to_string();
    let debug = format!("{error:?}");
    for shown in [&text, &debug] {
        assert!(!shown.contains("393234373133"), "{shown}");
        assert!(!shown.contains(&hex::encode_upper(&verify)), "{shown}");
    }
    assert!(text.contains("00240101 (8 data bytes masked)"), "{text}");
    assert!(text.contains("received  6"), "{text}");
}

#[test]
fn an_unchecked_error_status_stops_unless_accepted() {
    let mut transcript = sample_transcript(Kind::Session);
    transcript.header.profile = None;
    transcript.steps = vec![Step::Command {
        comment: None,
        command: CommandApdu::new(hex::decode("00A4000C026F6F").unwrap()).unwrap(),
        expect: Expectation::any(),
    }];
    let mut link = CardOsLink::new(vsc_core::sample::card());
    let error = replay(&mut link, &transcript, |_| {}).unwrap_err();
    assert!(
        matches!(error, ReplayError::ErrorStatus { step: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("6A82 (file not found)"),
        "{error}"
    );
    replay_with(&mut link, &transcript, Unchecked::AcceptAll, |_| {}).unwrap();
}

#[test]
fn the_uid_is_checked() {
    let mut transcript = sample_transcript(Kind::Personalization);
    let mut card = vsc_core::sample::card();
    transcript.header.atr = Atr::new(card.atr()).unwrap();
    let mut link = CardOsLink::new(card);
    check_card(&mut link, &transcript.header).unwrap();
    transcript.header.uid = Uid([9; 8]);
    card = link.into_card();
    let error = check_card(&mut CardOsLink::new(card), &transcript.header).unwrap_err();
    assert_eq!(
        error,
        ReplayError::UidMismatch {
            expected: Uid([9; 8]),
            received: Some(Uid(vsc_core::sample::UID))
        }
    );
}

#[test]
fn life_cycles_are_read_from_vsc_atrs() {
    assert_eq!(life_cycle(&Card::blank().atr()), Some(LifeCycle::Creation));
    assert_eq!(
        life_cycle(&vsc_core::sample::card().atr()),
        Some(LifeCycle::Operational)
    );
    assert_eq!(life_cycle(&[0x3B, 0x00]), None);
}

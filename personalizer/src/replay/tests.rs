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

mod live_steps {
    //! Live steps on a PIV token in-process: the factory key, then the card's own key set by a
    //! verbatim step, the wrong keys refused with nothing sent.

    use vsc_core::applications::piv::DEFAULT_MANAGEMENT_KEY;
    use vsc_core::crypto::MasterKey;
    use vsc_core::security::BlockAlgorithm;
    use vsc_core::transcript::{LiveKeyError, LiveStep, derive_management_key};

    use super::*;

    const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x50, 0x49, 0x56, 0x00, 0x01];

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[0x42; 32])
    }

    fn command(comment: &str, hex: &str) -> Step {
        Step::Command {
            comment: Some(Comment::new(comment).unwrap()),
            command: CommandApdu::new(hex::decode(hex).unwrap()).unwrap(),
            expect: Expectation::exact(vec![0x90, 0x00]).unwrap(),
        }
    }

    fn transcript(card: &Card, steps: Vec<Step>) -> Transcript {
        Transcript {
            header: Header {
                kind: Kind::Personalization,
                uid: Uid(UID),
                atr: Atr::new(card.atr()).unwrap(),
                profile: Some(ProfileRef {
                    id: ProfileId::new("piv-test").unwrap(),
                    version: 1,
                }),
                channel: Channel::Plain,
                extensions: Vec::new(),
            },
            steps,
        }
    }

    fn live(step: LiveStep) -> Step {
        Step::Live {
            comment: Some(Comment::new(step.describe()).unwrap()),
            live: step,
        }
    }

    fn select() -> Step {
        command("select PIV", "00A4040005A000000308")
    }

    /// Printed information (`5FC109`), a harmless write that needs the management key.
    fn put_printed() -> Step {
        command(
            "write printed information",
            "00DB3FFF0B5C035FC109530453049000",
        )
    }

    fn set_card_key() -> Step {
        let key = derive_management_key(&master(), BlockAlgorithm::Tdes, &UID);
        let mut hex = String::from("00FFFFFF1B039B18");
        hex.push_str(&hex::encode_upper(&key[..]));
        command("set the card's own management key", &hex)
    }

    #[test]
    fn the_factory_key_then_the_cards_own_key() {
        let card = vsc_core::sample::piv_token(UID);
        let first = transcript(
            &card,
            vec![
                select(),
                live(LiveStep::factory_management_key()),
                put_printed(),
                set_card_key(),
            ],
        );
        first.check().unwrap();
        let text = first.to_string();
        assert!(
            text.contains("\nlive piv-management-key 03 factory\n"),
            "{text}"
        );
        assert_eq!(Transcript::parse(&text).unwrap(), first);
        let mut link = CardOsLink::new(card);
        replay_live(
            &mut link,
            &first,
            Unchecked::default(),
            LiveKeys::default(),
            |_| {},
        )
        .unwrap();

        // The factory key no longer authenticates: the card answers 6982.
        let again = transcript(
            link.card(),
            vec![select(), live(LiveStep::factory_management_key())],
        );
        let error = replay_live(
            &mut link,
            &again,
            Unchecked::default(),
            LiveKeys::default(),
            |_| {},
        )
        .unwrap_err();
        assert_eq!(error.step(), Some(2), "{error}");
        assert_eq!(
            error.status(),
            Some(Status::SecurityStatusNotSatisfied),
            "{error}"
        );
        let shown = error.to_string();
        assert!(!shown.contains("0102030405060708"), "{shown}");

        // The card's own key does, derived from the issuer key.
        let own = LiveStep::card_management_key(&master(), BlockAlgorithm::Tdes, &UID);
        let second = transcript(link.card(), vec![select(), live(own), put_printed()]);
        assert_eq!(Transcript::parse(&second.to_string()).unwrap(), second);
        replay_live(
            &mut link,
            &second,
            Unchecked::default(),
            LiveKeys::issuer(&master()),
            |_| {},
        )
        .unwrap();
        // Without the issuer key, or with another, nothing is sent at all.
        for (keys, cause) in [
            (LiveKeys::default(), LiveKeyError::NoIssuerKey),
            (
                LiveKeys::issuer(&MasterKey::from_bytes(&[0x43; 32])),
                LiveKeyError::WrongIssuerKey,
            ),
        ] {
            let mut counting = Counting {
                inner: &mut link,
                sent: 0,
            };
            let error = replay_live(&mut counting, &second, Unchecked::default(), keys, |_| {})
                .unwrap_err();
            assert!(
                matches!(&error, ReplayError::LiveKey { step: 2, cause: c, .. } if *c == cause),
                "{error}"
            );
            assert!(error.to_string().contains("nothing was sent"), "{error}");
            assert_eq!(counting.sent, 0);
        }
        let _ = DEFAULT_MANAGEMENT_KEY;
    }

    #[test]
    fn a_card_that_answers_anything_is_found_out() {
        struct Yes;
        impl CardLink for Yes {
            fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
                Ok(vsc_core::sample::piv_token(UID).atr())
            }
            fn transmit(
                &mut self,
                command: &[u8],
                response: &mut Vec<u8>,
            ) -> Result<(), LinkError> {
                response.clear();
                if command.get(7) == Some(&0x80) && command.len() == 10 {
                    response.extend_from_slice(&[0x7C, 0x0A, 0x80, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
                } else {
                    response.extend_from_slice(&[0x7C, 0x0A, 0x82, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);
                }
                response.extend_from_slice(&[0x90, 0x00]);
                Ok(())
            }
            fn reset(&mut self, _: ResetKind) -> Result<(), LinkError> {
                Ok(())
            }
        }
        let card = vsc_core::sample::piv_token(UID);
        let transcript = transcript(&card, vec![live(LiveStep::factory_management_key())]);
        let error = replay_live(
            &mut Yes,
            &transcript,
            Unchecked::default(),
            LiveKeys::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ReplayError::Live {
                    cause: LiveFailure::CardNotAuthenticated,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn live_steps_only_in_personalization_transcripts() {
        let card = vsc_core::sample::piv_token(UID);
        let mut transcript = transcript(&card, vec![live(LiveStep::factory_management_key())]);
        transcript.header.kind = Kind::PreInitialization;
        assert!(transcript.check().is_err());
        let text = transcript.to_string();
        assert!(Transcript::parse(&text).is_err(), "{text}");
    }

    #[test]
    fn scriptor_export_refuses_live_steps() {
        let card = vsc_core::sample::piv_token(UID);
        let transcript = transcript(
            &card,
            vec![select(), live(LiveStep::factory_management_key())],
        );
        let error = vsc_core::transcript::to_scriptor(&transcript).unwrap_err();
        assert_eq!(error.step, 2);
        assert!(error.to_string().contains("live step"), "{error}");
    }

    struct Counting<'a, L> {
        inner: &'a mut L,
        sent: usize,
    }

    impl<L: CardLink> CardLink for Counting<'_, L> {
        fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
            self.inner.atr()
        }
        fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
            self.sent += 1;
            self.inner.transmit(command, response)
        }
        fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError> {
            self.inner.reset(kind)
        }
    }
}

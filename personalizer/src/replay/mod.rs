//! Replaying a transcript onto a card: the card's ATR and UID checked against the transcript's
//! header first, then every command sent byte for byte and its response compared with the
//! expectation; the first mismatch stops the replay and names the step.
//!
//! The engine talks to a card through a [`CardLink`]: [`PcscLink`] for real readers (and
//! virtual ones), [`CardOsLink`] for the card OS in-process (data preparation runs both
//! transcripts through it and checks every response just as a station would).

mod card_os;
mod pcsc_link;

use std::fmt;

pub use card_os::CardOsLink;
pub use pcsc_link::{PcscLink, connect_exclusive};
use vsc_core::transcript::{Header, Kind, ResetKind, Step, Transcript};

/// A card, as the replay engine sees it.
pub trait CardLink {
    /// The card's ATR now.
    fn atr(&mut self) -> Result<Vec<u8>, LinkError>;
    /// Sends a command APDU; the response APDU replaces `response`'s content.
    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError>;
    /// Resets the card: cold (power cycled) or warm.
    fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError>;
}

/// The link to the card failed (PC/SC error, card removed, reader gone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

impl From<pcsc::Error> for LinkError {
    fn from(error: pcsc::Error) -> LinkError {
        LinkError(format!("PC/SC: {error}"))
    }
}

/// Why a replay stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The card or reader failed; `step` is where (0: before the first step).
    #[error("{}: {cause}", at_step(*step))]
    Link {
        /// The step (1-based) being sent, or 0.
        step: usize,
        /// What failed.
        cause: LinkError,
    },
    /// The card's ATR is not the one the transcript was made for.
    #[error(
        "the card's ATR {} is not the transcript's {}{}",
        hex::encode_upper(received),
        hex::encode_upper(expected),
        hint(received, expected)
    )]
    AtrMismatch {
        /// The transcript's ATR.
        expected: Vec<u8>,
        /// The card's.
        received: Vec<u8>,
    },
    /// The card's UID (EF.UID) is not the transcript's.
    #[error("the card's UID is {}, the transcript is for {}", received.map_or_else(|| "unreadable".to_string(), hex::encode_upper), hex::encode_upper(expected))]
    UidMismatch {
        /// The transcript's UID.
        expected: [u8; 8],
        /// The card's, if it could be read.
        received: Option<[u8; 8]>,
    },
    /// A response differs from the expectation.
    #[error("{}", mismatch(*step, comment.as_deref(), command, expected, received))]
    Mismatch {
        /// The step (1-based).
        step: usize,
        /// Its comment.
        comment: Option<String>,
        /// The command sent.
        command: Vec<u8>,
        /// The expectation, as the transcript writes it.
        expected: String,
        /// The response received.
        received: Vec<u8>,
    },
}

impl ReplayError {
    /// The step that failed, if a step did.
    pub fn step(&self) -> Option<usize> {
        match self {
            ReplayError::Link { step, .. } if *step > 0 => Some(*step),
            ReplayError::Mismatch { step, .. } => Some(*step),
            _ => None,
        }
    }
}

fn at_step(step: usize) -> String {
    if step == 0 {
        "before the first step".into()
    } else {
        format!("at step {step}")
    }
}

fn hint(received: &[u8], expected: &[u8]) -> &'static str {
    // The ATR's last historical bytes carry the life cycle (81 xx): say what it means.
    match (
        received.len() == expected.len(),
        received.iter().rev().nth(1),
    ) {
        (true, Some(0x05)) => " (the card is already operational: personalized)",
        (true, Some(0x01)) => " (the card is blank: not pre-initialized)",
        _ => "",
    }
}

fn mismatch(
    step: usize,
    comment: Option<&str>,
    command: &[u8],
    expected: &str,
    received: &[u8],
) -> String {
    let name = comment.map(|c| format!(" ({c})")).unwrap_or_default();
    format!(
        "step {step}{name}: unexpected response\n  command   {}\n  expected  {expected}\n  received  {}",
        hex::encode_upper(command),
        hex::encode_upper(received)
    )
}

/// What a replay reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Step `step` (1-based) of `total` is about to be sent.
    Step {
        /// The step.
        step: usize,
        /// How many there are.
        total: usize,
        /// Its comment.
        comment: Option<&'a str>,
    },
    /// A step's response, for steps whose response is not checked (scriptor scripts).
    Unchecked {
        /// The step.
        step: usize,
        /// The command.
        command: &'a [u8],
        /// The response.
        response: &'a [u8],
    },
}

/// Checks that the card is the one `header` names: its ATR and (except for a
/// pre-initialization transcript, whose card has no UID yet) its UID from EF.UID. Resets the
/// card afterwards, so the transcript starts from a fresh session.
pub fn check_card(link: &mut impl CardLink, header: &Header) -> Result<(), ReplayError> {
    let link_error = |source| ReplayError::Link {
        step: 0,
        cause: source,
    };
    check_atr(link, header.atr.as_bytes()).map_err(|e| e.at(0))?;
    if header.kind == Kind::PreInitialization {
        return Ok(());
    }
    let mut response = Vec::new();
    let mut read = |command: &[u8], response: &mut Vec<u8>| -> Result<bool, ReplayError> {
        link.transmit(command, response).map_err(link_error)?;
        Ok(response.ends_with(&[0x90, 0x00]))
    };
    let uid = if read(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00], &mut response)?
        && read(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x02], &mut response)?
        && read(&[0x00, 0xB0, 0x00, 0x00, 0x08], &mut response)?
    {
        response.get(..8).and_then(|uid| uid.try_into().ok())
    } else {
        None
    };
    if uid != Some(header.uid.0) {
        return Err(ReplayError::UidMismatch {
            expected: header.uid.0,
            received: uid,
        });
    }
    link.reset(ResetKind::Warm).map_err(link_error)?;
    Ok(())
}

/// Replays every step of `transcript`; `observe` hears of each step as it goes.
pub fn replay(
    link: &mut impl CardLink,
    transcript: &Transcript,
    mut observe: impl FnMut(Event<'_>),
) -> Result<(), ReplayError> {
    let total = transcript.steps.len();
    let mut response = Vec::with_capacity(512);
    for (index, step) in transcript.steps.iter().enumerate() {
        let number = index + 1;
        observe(Event::Step {
            step: number,
            total,
            comment: step.comment().map(|c| c.as_str()),
        });
        match step {
            Step::Reset { kind, .. } => {
                link.reset(*kind).map_err(|source| ReplayError::Link {
                    step: number,
                    cause: source,
                })?;
                check_atr(link, transcript.header.atr.as_bytes()).map_err(|e| e.at(number))?;
            }
            Step::Command {
                comment,
                command,
                expect,
            } => {
                link.transmit(command.as_bytes(), &mut response)
                    .map_err(|source| ReplayError::Link {
                        step: number,
                        cause: source,
                    })?;
                if expect.is_any() {
                    observe(Event::Unchecked {
                        step: number,
                        command: command.as_bytes(),
                        response: &response,
                    });
                } else if !expect.matches(&response) {
                    return Err(ReplayError::Mismatch {
                        step: number,
                        comment: comment.as_ref().map(|c| c.as_str().to_string()),
                        command: command.as_bytes().to_vec(),
                        expected: expect.to_string(),
                        received: response,
                    });
                }
            }
        }
    }
    Ok(())
}

/// An ATR check's failure, placed at a step later.
struct AtrError(ReplayError);

impl AtrError {
    fn at(self, step: usize) -> ReplayError {
        match self.0 {
            ReplayError::Link { cause, .. } => ReplayError::Link { step, cause },
            other => other,
        }
    }
}

fn check_atr(link: &mut impl CardLink, expected: &[u8]) -> Result<(), AtrError> {
    let received = link.atr().map_err(|source| {
        AtrError(ReplayError::Link {
            step: 0,
            cause: source,
        })
    })?;
    if received == expected {
        Ok(())
    } else {
        Err(AtrError(ReplayError::AtrMismatch {
            expected: expected.to_vec(),
            received,
        }))
    }
}

impl fmt::Debug for AtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsc_core::card::{Card, LifeCycle};
    use vsc_core::transcript::{
        Atr, Channel, CommandApdu, Comment, Expectation, ProfileId, ProfileRef, Uid,
    };

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
    fn the_first_mismatch_stops_and_names_the_step() {
        let mut transcript = sample_transcript(Kind::PreInitialization);
        if let Step::Command { expect, .. } = &mut transcript.steps[4] {
            *expect = Expectation::exact(vec![0x6A, 0x82]).unwrap();
        }
        let mut link = CardOsLink::new(Card::blank());
        let error = replay(&mut link, &transcript, |_| {}).unwrap_err();
        assert_eq!(error.step(), Some(5));
        let text = error.to_string();
        assert!(
            text.starts_with("step 5 (create EF 5001 (holder name)): unexpected response"),
            "{text}"
        );
        assert!(
            text.contains("expected  6A82") && text.contains("received  9000"),
            "{text}"
        );
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
                expected: [9; 8],
                received: Some(vsc_core::sample::UID)
            }
        );
    }
}

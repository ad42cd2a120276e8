//! Replaying a transcript onto a card: the card's ATR and UID checked against the transcript's
//! header first, then every command sent byte for byte and its response compared with the
//! expectation; the first mismatch stops the replay and names the step.
//!
//! The engine talks to a card through a [`CardLink`]: [`PcscLink`] for real readers (and
//! virtual ones), [`CardOsLink`] for the card OS in-process (data preparation runs both
//! transcripts through it and checks every response just as a station would). What a failure
//! shows of an APDU goes through `vsc_core::disclosure`: a plain transcript's PINs and keys
//! never reach a message, and status words are decoded.

mod card_os;
mod input;
mod live;
mod pcsc_link;

use std::fmt;

pub use card_os::CardOsLink;
pub use input::{Input, InputError, OpenTranscriptError, Script, Trust, TrustError};
pub use live::{LiveFailure, LiveKeys, run as run_live_step};
pub use pcsc_link::{PcscLink, connect_exclusive};
use vsc_core::apdu::{Command, Status};
use vsc_core::commands;
use vsc_core::disclosure::{self, Context, Disclosure, MaskedCommand};
use vsc_core::fs::Fid;
use vsc_core::transcript::{Channel, Expectation, Header, Kind, ResetKind, Step, Transcript};

use crate::store::Uid;

/// A card, as the replay engine sees it.
pub trait CardLink {
    /// The card's ATR now.
    fn atr(&mut self) -> Result<Vec<u8>, LinkError>;
    /// Sends a command APDU; the response APDU replaces `response`'s content.
    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError>;
    /// Resets the card: cold (power cycled) or warm.
    fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError>;
}

/// The link to the card failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// PC/SC failed (card removed, reader gone, pcscd stopped…), its error kept whole.
    #[error("PC/SC: {0}")]
    Pcsc(#[source] pcsc::Error),
    /// The card answered nothing: no status word (a card side that died mid-command makes
    /// PC/SC return an empty response).
    #[error("the card gave no response (no status word)")]
    NoResponse,
}

impl From<pcsc::Error> for LinkError {
    fn from(error: pcsc::Error) -> LinkError {
        LinkError::Pcsc(error)
    }
}

impl LinkError {
    /// The PC/SC error, if PC/SC failed.
    pub fn pcsc(&self) -> Option<pcsc::Error> {
        match self {
            LinkError::Pcsc(error) => Some(*error),
            LinkError::NoResponse => None,
        }
    }
}

/// A command and its response, shown only as the disclosure rule allows: its `Debug` and
/// `Display` never print a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Exchange {
    command: Vec<u8>,
    response: Vec<u8>,
    context: Context,
}

impl Exchange {
    /// The exchange of `command` and `response` in a transcript on `channel`.
    pub fn new(command: &[u8], response: &[u8], channel: Channel) -> Exchange {
        Exchange {
            command: command.to_vec(),
            response: response.to_vec(),
            context: context_of(channel),
        }
    }

    /// The command as sent (may be secret: show it through [`Exchange::shown_command`]).
    pub fn command(&self) -> &[u8] {
        &self.command
    }

    /// The response as received.
    pub fn response(&self) -> &[u8] {
        &self.response
    }

    /// The response's status word.
    pub fn status(&self) -> Option<Status> {
        match self.response.as_slice() {
            [.., sw1, sw2] => Some(Status::from(u16::from_be_bytes([*sw1, *sw2]))),
            _ => None,
        }
    }

    /// The command as it may be shown.
    pub fn shown_command(&self) -> String {
        MaskedCommand::new(&self.command, self.context).to_string()
    }

    /// The response as it may be shown, its status word decoded:
    /// `6988 (incorrect SM data objects)`, `(8 data bytes masked) 9000 (success)`.
    pub fn shown_response(&self) -> String {
        describe_response(&self.command, &self.response, self.context)
    }

    fn response_disclosure(&self) -> Disclosure {
        Command::parse(&self.command).map_or(Disclosure::Mask, |command| {
            disclosure::response_data(&command, self.context)
        })
    }

    /// An expected response pattern as it may be shown: masked like the response would be.
    pub fn shown_expectation(&self, expect: &Expectation) -> String {
        let pattern = expect.to_string();
        if self.response_disclosure() == Disclosure::Show || pattern.len() <= 4 {
            return pattern;
        }
        let (data, sw) = pattern.split_at(pattern.len() - 4);
        format!("({} data bytes masked) {sw}", data.len() / 2)
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Exchange({} -> {})",
            self.shown_command(),
            self.shown_response()
        )
    }
}

/// The disclosure context of a transcript's steps: genuine secure messaging when its header
/// says the steps go through the channel, nothing known otherwise (which masks the most).
pub fn context_of(channel: Channel) -> Context {
    match channel {
        Channel::SecureMessaging => Context::protected(),
        Channel::Plain => Context::default(),
    }
}

/// A response for a message: its data as the rule allows, its status word decoded.
pub fn describe_response(command: &[u8], response: &[u8], context: Context) -> String {
    let [data @ .., sw1, sw2] = response else {
        return if response.is_empty() {
            "(no response)".into()
        } else {
            format!("({} bytes, no status word)", response.len())
        };
    };
    let status = Status::from(u16::from_be_bytes([*sw1, *sw2]));
    if data.is_empty() {
        return status.to_string();
    }
    let shown = Command::parse(command).map_or(Disclosure::Mask, |command| {
        disclosure::response_data(&command, context)
    });
    match shown {
        Disclosure::Show => format!("{} {status}", hex::encode_upper(data)),
        Disclosure::Mask => format!("({} data bytes masked) {status}", data.len()),
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
        #[source]
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
    #[error("the card's UID is {}, the transcript is for {expected}", received.map_or_else(|| "unreadable".to_string(), |uid| uid.to_string()))]
    UidMismatch {
        /// The transcript's UID.
        expected: Uid,
        /// The card's, if it could be read.
        received: Option<Uid>,
    },
    /// A response differs from the expectation.
    #[error(
        "step {step}{}: unexpected response\n  command   {}\n  expected  {}\n  received  {}",
        named(comment.as_deref()),
        exchange.shown_command(),
        exchange.shown_expectation(expected),
        exchange.shown_response()
    )]
    Mismatch {
        /// The step (1-based).
        step: usize,
        /// Its comment.
        comment: Option<String>,
        /// The expectation.
        expected: Box<Expectation>,
        /// The command and the response received.
        exchange: Box<Exchange>,
    },
    /// A live step's key cannot be had (no issuer key, or another one): found before the
    /// first command is sent, so nothing was written.
    #[error(
        "step {step}{}: live step: {cause}; nothing was sent to the card",
        named(comment.as_deref())
    )]
    LiveKey {
        /// The live step (1-based).
        step: usize,
        /// Its comment.
        comment: Option<String>,
        /// Why.
        #[source]
        cause: vsc_core::transcript::LiveKeyError,
    },
    /// A live step failed on the card.
    #[error("step {step}{}: live step: {cause}", named(comment.as_deref()))]
    Live {
        /// The live step (1-based).
        step: usize,
        /// Its comment.
        comment: Option<String>,
        /// What failed.
        #[source]
        cause: LiveFailure,
    },
    /// An unchecked step (a scriptor script) answered an error status word.
    #[error(
        "step {step}{}: the card answered an error\n  command   {}\n  received  {}",
        named(comment.as_deref()),
        exchange.shown_command(),
        exchange.shown_response()
    )]
    ErrorStatus {
        /// The step (1-based).
        step: usize,
        /// Its comment.
        comment: Option<String>,
        /// The command and the response.
        exchange: Box<Exchange>,
    },
}

impl ReplayError {
    /// The step that failed, if a step did.
    pub fn step(&self) -> Option<usize> {
        match self {
            ReplayError::Link { step, .. } if *step > 0 => Some(*step),
            ReplayError::Mismatch { step, .. }
            | ReplayError::ErrorStatus { step, .. }
            | ReplayError::LiveKey { step, .. }
            | ReplayError::Live { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// The status word the card answered, for a mismatch or an error status.
    pub fn status(&self) -> Option<Status> {
        match self {
            ReplayError::Mismatch { exchange, .. } | ReplayError::ErrorStatus { exchange, .. } => {
                exchange.status()
            }
            ReplayError::Live {
                cause: LiveFailure::Refused(exchange),
                ..
            } => exchange.status(),
            _ => None,
        }
    }
}

fn named(comment: Option<&str>) -> String {
    comment.map(|c| format!(" ({c})")).unwrap_or_default()
}

fn at_step(step: usize) -> String {
    if step == 0 {
        "before the first step".into()
    } else {
        format!("at step {step}")
    }
}

fn hint(received: &[u8], expected: &[u8]) -> &'static str {
    use vsc_core::card::LifeCycle;
    match (life_cycle(received), life_cycle(expected)) {
        (Some(LifeCycle::Operational), Some(_)) => {
            " (the card is already operational: personalized)"
        }
        (Some(LifeCycle::Creation), Some(LifeCycle::Initialisation)) => {
            " (the card is blank: not pre-initialized)"
        }
        (Some(LifeCycle::Initialisation), Some(LifeCycle::Creation)) => {
            " (the card is pre-initialized: the transcript is for a blank card or a --plain one)"
        }
        _ => "",
    }
}

/// The life cycle a VSC's ATR advertises; `None` for any other card's ATR.
pub fn life_cycle(atr: &[u8]) -> Option<vsc_core::card::LifeCycle> {
    use vsc_core::card::LifeCycle;
    [
        LifeCycle::Creation,
        LifeCycle::Initialisation,
        LifeCycle::Operational,
        LifeCycle::Terminated,
    ]
    .into_iter()
    .find(|state| vsc_core::atr::atr(state.byte()) == atr)
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
    /// A step's response, for steps whose response is not checked (scriptor scripts); show it
    /// through [`describe_response`].
    Unchecked {
        /// The step.
        step: usize,
        /// The command.
        command: &'a [u8],
        /// The response.
        response: &'a [u8],
    },
}

/// How unchecked steps (scriptor scripts) are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unchecked {
    /// Any status word but `9000` and `61xx` stops the replay.
    #[default]
    StopOnError,
    /// Every response is accepted (`--unchecked`).
    AcceptAll,
}

/// Reads the card's UID from EF.UID with plain commands (the personalization channel is not
/// opened): `None` when the card has no readable EF.UID.
pub fn read_uid(link: &mut impl CardLink) -> Result<Option<Uid>, LinkError> {
    let mut response = Vec::new();
    let mut send = |command: commands::CommandBuf, response: &mut Vec<u8>| {
        let bytes = command.to_vec().map_err(|_| LinkError::NoResponse)?;
        link.transmit(&bytes, response)?;
        if response.is_empty() {
            return Err(LinkError::NoResponse);
        }
        Ok(response.ends_with(&[0x90, 0x00]))
    };
    let found = send(commands::select_mf(), &mut response)?
        && send(commands::select_ef(Fid::EF_UID), &mut response)?
        && send(commands::read_binary(0, Uid::LEN), &mut response)?;
    Ok(found
        .then(|| response.get(..Uid::LEN))
        .flatten()
        .filter(|_| response.len() == Uid::LEN + 2)
        .and_then(|bytes| Uid::try_from(bytes).ok()))
}

/// Checks that the card is the one `header` names: its ATR and (except for a
/// pre-initialization transcript, whose card has no UID yet) its UID from EF.UID. Resets the
/// card afterwards, so the transcript starts from a fresh session.
pub fn check_card(link: &mut impl CardLink, header: &Header) -> Result<(), ReplayError> {
    let link_error = |cause| ReplayError::Link { step: 0, cause };
    check_atr(link, header.atr.as_bytes(), 0)?;
    if header.kind == Kind::PreInitialization {
        return Ok(());
    }
    let uid = read_uid(link).map_err(link_error)?;
    if uid != Some(header.uid) {
        return Err(ReplayError::UidMismatch {
            expected: header.uid,
            received: uid,
        });
    }
    link.reset(ResetKind::Warm).map_err(link_error)?;
    Ok(())
}

/// Checks the card's ATR and a UID already read against `header` (the station reads the UID
/// to find the card's job, before the transcript is known).
pub fn check_known_card(
    link: &mut impl CardLink,
    header: &Header,
    uid: Uid,
) -> Result<(), ReplayError> {
    check_atr(link, header.atr.as_bytes(), 0)?;
    if uid != header.uid {
        return Err(ReplayError::UidMismatch {
            expected: header.uid,
            received: Some(uid),
        });
    }
    Ok(())
}

/// Replays every step of `transcript`; `observe` hears of each step as it goes.
pub fn replay(
    link: &mut impl CardLink,
    transcript: &Transcript,
    observe: impl FnMut(Event<'_>),
) -> Result<(), ReplayError> {
    replay_with(link, transcript, Unchecked::default(), observe)
}

/// Like [`replay`], judging unchecked steps as `unchecked` says.
pub fn replay_with(
    link: &mut impl CardLink,
    transcript: &Transcript,
    unchecked: Unchecked,
    observe: impl FnMut(Event<'_>),
) -> Result<(), ReplayError> {
    replay_live(link, transcript, unchecked, LiveKeys::default(), observe)
}

/// Like [`replay_with`], computing live steps with `keys`. Every live step's key is derived
/// before the first command is sent: a key that cannot be had stops the replay with nothing
/// written.
pub fn replay_live(
    link: &mut impl CardLink,
    transcript: &Transcript,
    unchecked: Unchecked,
    keys: LiveKeys<'_>,
    mut observe: impl FnMut(Event<'_>),
) -> Result<(), ReplayError> {
    let live_keys =
        live::keys_of(transcript, keys).map_err(|(index, cause)| ReplayError::LiveKey {
            step: index + 1,
            comment: transcript.steps[index]
                .comment()
                .map(|c| c.as_str().to_string()),
            cause,
        })?;
    let total = transcript.steps.len();
    let channel = transcript.header.channel;
    let mut response = Vec::with_capacity(512);
    for (index, step) in transcript.steps.iter().enumerate() {
        let number = index + 1;
        observe(Event::Step {
            step: number,
            total,
            comment: step.comment().map(|c| c.as_str()),
        });
        match step {
            Step::Live { comment, live } => {
                // `keys_of` gave a key for every live step.
                let Some(key) = &live_keys[index] else {
                    continue;
                };
                live::run(link, live, key, &mut response).map_err(|cause| ReplayError::Live {
                    step: number,
                    comment: comment.as_ref().map(|c| c.as_str().to_string()),
                    cause,
                })?;
            }
            Step::Reset { kind, .. } => {
                link.reset(*kind).map_err(|cause| ReplayError::Link {
                    step: number,
                    cause,
                })?;
                check_atr(link, transcript.header.atr.as_bytes(), number)?;
            }
            Step::Command {
                comment,
                command,
                expect,
            } => {
                let comment = || comment.as_ref().map(|c| c.as_str().to_string());
                link.transmit(command.as_bytes(), &mut response)
                    .map_err(|cause| ReplayError::Link {
                        step: number,
                        cause,
                    })?;
                if response.is_empty() {
                    return Err(ReplayError::Link {
                        step: number,
                        cause: LinkError::NoResponse,
                    });
                }
                if expect.is_any() {
                    observe(Event::Unchecked {
                        step: number,
                        command: command.as_bytes(),
                        response: &response,
                    });
                    let exchange = Box::new(Exchange::new(command.as_bytes(), &response, channel));
                    let failed = exchange.status().is_none_or(|status| {
                        !matches!(status, Status::Success | Status::MoreData(_))
                    });
                    if failed && unchecked == Unchecked::StopOnError {
                        return Err(ReplayError::ErrorStatus {
                            step: number,
                            comment: comment(),
                            exchange,
                        });
                    }
                } else if !expect.matches(&response) {
                    return Err(ReplayError::Mismatch {
                        step: number,
                        comment: comment(),
                        expected: Box::new(expect.clone()),
                        exchange: Box::new(Exchange::new(command.as_bytes(), &response, channel)),
                    });
                }
            }
        }
    }
    Ok(())
}

fn check_atr(link: &mut impl CardLink, expected: &[u8], step: usize) -> Result<(), ReplayError> {
    let received = link
        .atr()
        .map_err(|cause| ReplayError::Link { step, cause })?;
    if received == expected {
        Ok(())
    } else {
        Err(ReplayError::AtrMismatch {
            expected: expected.to_vec(),
            received,
        })
    }
}

#[cfg(test)]
mod tests;

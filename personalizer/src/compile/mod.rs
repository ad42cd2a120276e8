//! The transcript compiler: one holder's card content and the profile become the card's
//! pre-initialization transcript (what a card maker runs on a blank chip) and its
//! personalization transcript (what the station replays onto the pre-initialized card).
//!
//! Pre-initialization, in plain: EF.UID and the UID, EF.DIR and its application templates,
//! DF.PUBLIC and DF.PRIVATE with every EF (a record EF gets one record reserved per record
//! value the profile gives it, so that personalization only ever *updates*), the password and
//! key objects, and last the channel keys, which make the card pre-initialized. It depends on
//! the profile and the UID only.
//!
//! Personalization, through the personalization channel (or in plain for cards without it):
//! every EF's content, the data objects, the PIN and PUK, the key values, and last ACTIVATE
//! FILE on the MF. Every step before the activation is idempotent, so an interrupted replay
//! restarts from the first step; no step has a random answer, so every expected response is
//! exact: for secure messaging the terminal side of the channel computes the protected answer a
//! correct card gives (`TerminalChannel::expect_response`).

mod file_system;
pub mod openpgp;
pub mod piv;

use vsc_core::Uid;
use vsc_core::apdu::Status;
use vsc_core::card::Card;
use vsc_core::commands::{self, CommandBuf};
use vsc_core::crypto::MasterKey;
use vsc_core::fs::fcp::ef_fcp;
use vsc_core::sm::{ChannelKeys, SmError, TerminalChannel};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Expectation, Header, Kind, ProfileId, ProfileRef, Step,
    Transcript,
};

use crate::content::CardContent;
use crate::profile::Profile;

/// How personalization reaches the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Through the personalization channel (secure messaging); secrets never travel in clear.
    Channel,
    /// In plain, for cards without the channel: PINs, keys and private data travel in clear.
    Plain,
}

/// A card's two transcripts.
#[derive(Debug)]
pub struct Compiled {
    /// What the card maker runs on the blank chip.
    pub preinit: Transcript,
    /// What the station replays onto the pre-initialized card.
    pub perso: Transcript,
    /// For an OpenPGP card: its certificate, public keys and fingerprints.
    pub exports: Option<openpgp::Exports>,
    /// For a PIV card: its certificates and public keys.
    pub piv_exports: Option<piv::Exports>,
}

impl Compiled {
    /// What preparation exports of the card, as the store keeps it (JSON), if anything.
    pub fn exports_json(&self) -> Option<String> {
        match (&self.exports, &self.piv_exports) {
            (Some(exports), _) => Some(exports.to_json()),
            (None, Some(exports)) => Some(exports.to_json()),
            (None, None) => None,
        }
    }
}

/// Why a card's transcripts cannot be made. These are program or profile limits, not bad
/// records: a record that resolved always compiles unless a value exceeds APDU limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A command cannot be encoded (too long even for extended length).
    #[error("step {step} ({comment}): the command cannot be encoded")]
    Encoding {
        /// The step (1-based).
        step: usize,
        /// What it does.
        comment: String,
    },
    /// Secure messaging refused a command.
    #[error("step {step} ({comment}): secure messaging: {source}")]
    SecureMessaging {
        /// The step (1-based).
        step: usize,
        /// What it does.
        comment: String,
        /// Why.
        source: SmError,
    },
    /// A header value is out of the transcript format's bounds.
    #[error("the transcript header: {0}")]
    Header(String),
    /// The reference card OS refused a step (a profile the card cannot hold).
    #[error("step {step} ({comment}): the card answers {status}")]
    Refused {
        /// The step (1-based).
        step: usize,
        /// What it does.
        comment: String,
        /// What the card answered.
        status: Status,
    },
    /// A key could not be made or used.
    #[error(transparent)]
    Key(#[from] openpgp::key::KeyError),
    /// A PIV certificate could not be issued.
    #[error(transparent)]
    Issue(#[from] piv::IssueError),
    /// The profile fills nothing this compiler knows.
    #[error("the profile fills no application")]
    Empty,
}

/// Compiles `content` for the card it names. `master` gives the channel keys. An OpenPGP
/// card is personalized with the application's own commands, in plain (`mode` does not apply).
pub fn compile(
    profile: &Profile,
    content: &CardContent,
    master: &MasterKey,
    mode: Mode,
) -> Result<Compiled, CompileError> {
    let preinit = compile_preinit(profile, content.uid, master, mode)?;
    if let (Some(_), Some(openpgp)) = (profile.openpgp(), &content.openpgp) {
        let (steps, exports) = openpgp::personalize(openpgp, content.uid)?;
        let header = header(
            profile,
            content.uid,
            Kind::Personalization,
            &openpgp::token_atr(),
            Channel::Plain,
        )?;
        return Ok(Compiled {
            preinit,
            perso: Transcript { header, steps },
            exports,
            piv_exports: None,
        });
    }
    if let (Some(spec), Some(piv)) = (profile.piv(), &content.piv) {
        let (steps, exports) = piv::personalize(spec, content, piv, master)?;
        let header = header(
            profile,
            content.uid,
            Kind::Personalization,
            &openpgp::token_atr(),
            Channel::Plain,
        )?;
        return Ok(Compiled {
            preinit,
            perso: Transcript { header, steps },
            exports: None,
            piv_exports: Some(exports),
        });
    }
    let fs = profile.file_system().ok_or(CompileError::Empty)?;
    let blank_atr = Card::blank().atr();
    let (mut perso, atr, channel) = match mode {
        Mode::Channel => {
            let preinitialized_atr =
                vsc_core::atr::atr(vsc_core::card::LifeCycle::Initialisation.byte());
            let keys = ChannelKeys::derive(master, content.uid.bytes());
            (
                Builder::protected(keys),
                preinitialized_atr,
                Channel::SecureMessaging,
            )
        }
        Mode::Plain => (Builder::plain(), blank_atr, Channel::Plain),
    };
    file_system::personalize(&mut perso, fs, content)?;
    let header = header(profile, content.uid, Kind::Personalization, &atr, channel)?;
    Ok(Compiled {
        preinit,
        perso: perso.finish(header),
        exports: None,
        piv_exports: None,
    })
}

/// Compiles the pre-initialization of the card `uid`. It depends on the profile and the UID
/// only, never on the holder, so a card maker (or `vsc-personalizer blank`) runs it before the
/// holder's data exists. For an OpenPGP token it makes the token as it arrives from its
/// factory.
pub fn compile_preinit(
    profile: &Profile,
    uid: Uid,
    master: &MasterKey,
    mode: Mode,
) -> Result<Transcript, CompileError> {
    let mut builder = Builder::plain();
    if profile.openpgp().is_some() {
        openpgp::preinitialize(&mut builder, uid)?;
    } else if profile.piv().is_some() {
        piv::preinitialize(&mut builder, uid)?;
    } else {
        let fs = profile.file_system().ok_or(CompileError::Empty)?;
        let channel_keys =
            (mode == Mode::Channel).then(|| ChannelKeys::derive(master, uid.bytes()));
        file_system::preinitialize(&mut builder, fs, uid, channel_keys.as_ref())?;
    }
    let blank_atr = Card::blank().atr();
    let header = header(
        profile,
        uid,
        Kind::PreInitialization,
        &blank_atr,
        Channel::Plain,
    )?;
    Ok(builder.finish(header))
}

/// EF.UID created under the MF, read-only, and the UID written: how every card starts.
fn write_uid(b: &mut Builder, uid: Uid) -> Result<(), CompileError> {
    use vsc_core::fs::{AccessRules, Condition, Ef, EfBody, Fid, FileState, Operation};
    let read_only = AccessRules::uniform(Condition::NEVER)
        .with(Operation::ReadOrDeleteChild, Condition::ALWAYS);
    let ef_uid = Ef {
        fid: Fid::EF_UID,
        sfi: None,
        state: FileState::Activated,
        rules: read_only,
        body: EfBody::Transparent(vec![0; 8]),
    };
    b.step(
        "create EF.UID (2F02)",
        commands::create_file(&ef_fcp(&ef_uid)),
    )?;
    b.step("write the UID", commands::update_binary(0, uid.bytes()))
}

fn header(
    profile: &Profile,
    uid: Uid,
    kind: Kind,
    atr: &[u8],
    channel: Channel,
) -> Result<Header, CompileError> {
    let bad = |e: &dyn std::fmt::Display| CompileError::Header(e.to_string());
    Ok(Header {
        kind,
        uid,
        atr: Atr::new(atr.to_vec()).map_err(|e| bad(&e))?,
        profile: Some(ProfileRef {
            id: ProfileId::new(profile.id()).map_err(|e| bad(&e))?,
            version: profile.version(),
        }),
        channel,
        extensions: Vec::new(),
    })
}

/// Collects steps, protecting them through the channel when there is one.
struct Builder {
    steps: Vec<Step>,
    channel: Option<TerminalChannel>,
    encoded: Vec<u8>,
}

impl Builder {
    fn plain() -> Builder {
        Builder {
            steps: Vec::with_capacity(48),
            channel: None,
            encoded: Vec::with_capacity(512),
        }
    }

    fn protected(keys: ChannelKeys) -> Builder {
        Builder {
            channel: Some(TerminalChannel::new(keys)),
            ..Builder::plain()
        }
    }

    /// Adds a step sending `command`, which must succeed (`9000`) on the card.
    fn step(
        &mut self,
        comment: impl Into<String>,
        command: CommandBuf,
    ) -> Result<(), CompileError> {
        let command = command.command();
        let comment = comment.into();
        let step = self.steps.len() + 1;
        let encoding = || CompileError::Encoding {
            step,
            comment: comment.clone(),
        };
        let (sent, expected) = match &mut self.channel {
            None => {
                self.encoded.clear();
                command
                    .encode_into(&mut self.encoded)
                    .map_err(|_| encoding())?;
                (self.encoded.clone(), vec![0x90, 0x00])
            }
            Some(terminal) => {
                let sm = |source| CompileError::SecureMessaging {
                    step,
                    comment: comment.clone(),
                    source,
                };
                let wrapped = terminal.wrap_command(&command).map_err(sm)?;
                // What a correct card answers: no data, 9000, protected under the next SSC.
                let answer = terminal.expect_response(&[], Status::Success).map_err(sm)?;
                (wrapped, answer)
            }
        };
        let command = CommandApdu::new(sent).map_err(|_| encoding())?;
        let expect = Expectation::exact(expected).map_err(|_| encoding())?;
        let comment = Comment::new(comment.replace(['\n', '\r'], " ")).ok();
        self.steps.push(Step::Command {
            comment,
            command,
            expect,
        });
        Ok(())
    }

    fn finish(self, header: Header) -> Transcript {
        Transcript {
            header,
            steps: self.steps,
        }
    }
}

#[cfg(test)]
mod tests;

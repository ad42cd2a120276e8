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

use vsc_core::Uid;
use vsc_core::apdu::Status;
use vsc_core::card::Card;
use vsc_core::commands::{self, CommandBuf};
use vsc_core::crypto::MasterKey;
use vsc_core::fs::fcp::{df_fcp, ef_fcp};
use vsc_core::security::PasswordRef;
use vsc_core::sm::{ChannelKeys, SmError, TerminalChannel};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Expectation, Header, Kind, ProfileId, ProfileRef, Step,
    Transcript,
};
use zeroize::Zeroizing;

use crate::content::{CardContent, DfContent, EfContent};
use crate::profile::{DfSpec, EfPlan, EfStructure, Profile};

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
}

/// Compiles `content` for the card it names. `master` gives the channel keys.
pub fn compile(
    profile: &Profile,
    content: &CardContent,
    master: &MasterKey,
    mode: Mode,
) -> Result<Compiled, CompileError> {
    let preinit = compile_preinit(profile, content.uid, master, mode)?;
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
    personalize(&mut perso, profile, content)?;
    let header = header(profile, content.uid, Kind::Personalization, &atr, channel)?;
    Ok(Compiled {
        preinit,
        perso: perso.finish(header),
    })
}

/// Compiles the pre-initialization of the card `uid`. It depends on the profile and the UID
/// only, never on the holder, so a card maker (or `vsc-personalizer blank`) runs it before the
/// holder's data exists.
pub fn compile_preinit(
    profile: &Profile,
    uid: Uid,
    master: &MasterKey,
    mode: Mode,
) -> Result<Transcript, CompileError> {
    let channel_keys = (mode == Mode::Channel).then(|| ChannelKeys::derive(master, uid.bytes()));
    let mut builder = Builder::plain();
    preinitialize(&mut builder, profile, uid, channel_keys.as_ref())?;
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

fn preinitialize(
    b: &mut Builder,
    profile: &Profile,
    uid: Uid,
    channel_keys: Option<&ChannelKeys>,
) -> Result<(), CompileError> {
    use vsc_core::fs::{
        AccessRules, Condition, Ef, EfBody, Fid, FileState, Operation, RecordFile, RecordKind,
    };
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
    b.step("write the UID", commands::update_binary(0, uid.bytes()))?;

    let dir_records: Vec<Vec<u8>> = profile.dfs().iter().map(|df| df.dir_record()).collect();
    let dir_len = dir_records.iter().map(Vec::len).max().unwrap_or(1) as u16;
    let ef_dir = Ef {
        fid: Fid::EF_DIR,
        sfi: None,
        state: FileState::Activated,
        rules: read_only,
        body: EfBody::Records(RecordFile {
            kind: RecordKind::LinearVariable,
            max_len: dir_len,
            max_records: dir_records.len() as u8,
            records: vec![],
        }),
    };
    b.step(
        "create EF.DIR (2F00)",
        commands::create_file(&ef_fcp(&ef_dir)),
    )?;
    for (df, record) in profile.dfs().iter().zip(&dir_records) {
        b.step(
            format!(
                "EF.DIR: the application template of DF.{}",
                df.area.to_uppercase()
            ),
            commands::append_record(record),
        )?;
    }

    for df in profile.dfs() {
        b.step("select the MF", commands::select_mf())?;
        b.step(
            format!("create DF.{} ({})", df.area.to_uppercase(), df.fid),
            commands::create_file(&df_fcp(&df.to_df(), 0x05)),
        )?;
        for ef in &df.efs {
            b.step(
                format!("create EF {} {}", ef.fid, ef.name),
                commands::create_file(&ef_fcp(&ef.to_ef())),
            )?;
            if let (
                EfPlan::Records(plans),
                EfStructure::Records {
                    kind, record_len, ..
                },
            ) = (&ef.content, ef.structure)
            {
                // One record per record value the profile gives, reserved now, so that
                // personalization only ever updates (and replays from its start).
                let placeholder = match kind {
                    RecordKind::LinearFixed => vec![0; usize::from(record_len)],
                    RecordKind::LinearVariable => vec![0],
                };
                for n in 1..=plans.len() {
                    b.step(
                        format!("EF {} {}: reserve record {n}", ef.fid, ef.name),
                        commands::append_record(&placeholder),
                    )?;
                }
            }
        }
    }

    b.step("select the MF", commands::select_mf())?;
    for spec in [profile.pin(), profile.puk()] {
        let p = spec.policy;
        let data = [
            0x83,
            1,
            spec.reference.byte(),
            0xC1,
            1,
            p.min_len,
            0xC2,
            1,
            p.max_len,
            0xC3,
            1,
            p.max_tries,
        ];
        b.step(
            format!("define the {}", password_name(spec.reference)),
            commands::put_data(0x0101, &data),
        )?;
    }
    for key in profile.keys() {
        let data = [
            0x83,
            1,
            key.reference.value(),
            0x80,
            1,
            key.algorithm.code(),
            0x95,
            1,
            key.usage.byte(),
        ];
        b.step(
            format!(
                "define key {:02X} ({}, {})",
                key.reference.value(),
                key.algorithm.name(),
                key.name
            ),
            commands::put_data(0x0102, &data),
        )?;
    }
    if let Some(keys) = channel_keys {
        let mut data = Zeroizing::new(Vec::with_capacity(68));
        vsc_core::tlv::push_primitive(&mut data, &[0xC0], keys.enc().secret_bytes());
        vsc_core::tlv::push_primitive(&mut data, &[0xC1], keys.mac().secret_bytes());
        b.step(
            "load the personalization channel keys: the card is pre-initialized",
            commands::put_data(0x0103, &data),
        )?;
    }
    Ok(())
}

fn personalize(
    b: &mut Builder,
    profile: &Profile,
    content: &CardContent,
) -> Result<(), CompileError> {
    for (df, df_content) in profile
        .dfs()
        .into_iter()
        .zip([&content.public, &content.private])
    {
        write_df(b, df, df_content)?;
    }
    b.step("select the MF", commands::select_mf())?;
    for (spec, value) in [(profile.pin(), &content.pin), (profile.puk(), &content.puk)] {
        let padded = Zeroizing::new(spec.policy.pad(value.expose()));
        b.step(
            format!("set the {}", password_name(spec.reference)),
            commands::set_reference_data(spec.reference.byte(), &padded),
        )?;
    }
    for ((reference, value), spec) in content.keys.iter().zip(profile.keys()) {
        let mut data = Zeroizing::new(Vec::with_capacity(40));
        vsc_core::tlv::push_primitive(&mut data, &[0x83], &[reference.value()]);
        vsc_core::tlv::push_primitive(&mut data, &[0x8F], value.expose());
        b.step(
            format!("load key {:02X} ({})", reference.value(), spec.name),
            commands::put_data(0x0104, &data),
        )?;
    }
    b.step(
        "activate the card: it becomes operational",
        commands::activate_mf(),
    )?;
    Ok(())
}

/// Writes a DF's EFs and data objects.
fn write_df(b: &mut Builder, df: &DfSpec, content: &DfContent) -> Result<(), CompileError> {
    b.step(
        format!("select DF.{} ({})", df.area.to_uppercase(), df.fid),
        commands::select_path(&[df.fid]),
    )?;
    for (ef, ef_content) in df.efs.iter().zip(&content.files) {
        let select = |b: &mut Builder| {
            b.step(
                format!("select EF {} {}", ef.fid, ef.name),
                commands::select_ef(ef.fid),
            )
        };
        match ef_content {
            EfContent::Empty => {}
            EfContent::Binary(bytes) if bytes.is_empty() => {}
            EfContent::Binary(bytes) => {
                let comment = format!("write EF {} {}", ef.fid, ef.name);
                match ef.sfi {
                    Some(sfi) => b.step(comment, commands::update_binary_sfi(sfi, bytes))?,
                    None => {
                        select(b)?;
                        b.step(comment, commands::update_binary(0, bytes))?;
                    }
                }
            }
            EfContent::Records(records) => {
                if ef.sfi.is_none() {
                    select(b)?;
                }
                let fixed_len = match ef.structure {
                    EfStructure::Records {
                        kind: vsc_core::fs::RecordKind::LinearFixed,
                        record_len,
                        ..
                    } => Some(usize::from(record_len)),
                    _ => None,
                };
                for (n, record) in records.iter().filter(|r| !r.is_empty()).enumerate() {
                    let mut data = Zeroizing::new(record.to_vec());
                    if let Some(len) = fixed_len {
                        data.resize(len, 0);
                    }
                    let number = (n + 1) as u8;
                    b.step(
                        format!("EF {} {}: record {number}", ef.fid, ef.name),
                        commands::update_record(number, ef.sfi, &data),
                    )?;
                }
            }
        }
    }
    for (object, value) in df.data_objects.iter().zip(&content.data_objects) {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            b.step(
                format!("data object {:X} {}", object.tag.value(), object.name),
                commands::put_data(object.tag.value(), value),
            )?;
        }
    }
    Ok(())
}

fn password_name(reference: PasswordRef) -> &'static str {
    match reference {
        PasswordRef::UserPin => "user PIN (01)",
        PasswordRef::Puk => "PUK (02)",
    }
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

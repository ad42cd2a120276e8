//! The card OS: `Card::transmit` takes a command APDU and answers as a real ISO 7816-4 card
//! does, with the VSC layout's files, passwords, keys and life cycle.
//!
//! The card is a platform hosting applications (docs/platform.md): it owns the UID, the life
//! cycle, the session (selected application, security status, pending response, chaining, the
//! personalization channel), persistence and the security objects; the VSC file system under
//! the MF is the default application, and the others ([`crate::applications`]) answer when
//! selected by their AID.
//!
//! A command goes through the class checks, GET RESPONSE and command chaining, then (for secure
//! messaging) the personalization channel, then the selected application's handler; the
//! handler's data is cut to Ne with `61xx` when there is more. Every handler checks everything
//! before it changes anything, so an error leaves the card as it was. A command that changed the
//! card is made durable through the host's [`Persistence`] before its answer leaves; when that
//! fails the card falls back to what is durable and answers `6581`.

mod admin;
mod auth;
mod binary;
mod data;
mod password;
mod persist;
mod record;
mod select;
mod session;
mod state;

use zeroize::Zeroizing;

pub use persist::{InMemory, Persistence, SaveFailed};
pub use state::{CardState, LifeCycle};

use crate::apdu::{ClassKind, Command, Ins, LengthForm, SmIndication, Status};
use crate::crypto::AesKey;
use crate::fs::{Condition, Df, Ef, Fid, SecurityStatus};
use crate::security::password::Verification;
use crate::security::{ChannelKeyMaterial, Password};
use crate::sm::{CardChannel, ChannelKeys};
use session::Chain;
pub(crate) use session::Session;

/// How many bytes of files and data objects the card holds at most.
pub const MEMORY: usize = 256 * 1024;
/// The longest command data a chain may gather.
pub const MAX_CHAIN: usize = 0xFFFF;

/// A handler's result: `Ok` with `9000` or a warning (the data is in the output), or `Err` with
/// the error status (no data).
type Outcome = Result<Status, Status>;

/// How a command reached the card.
#[derive(Clone, Copy, Debug, Default)]
struct Context {
    /// Through the personalization channel (secure messaging, verified).
    channel: bool,
}

/// A smart card: persistent state plus the session since the last reset.
#[derive(Debug)]
pub struct Card {
    pub(crate) state: CardState,
    pub(crate) session: Session,
    persistence: Box<dyn Persistence>,
    /// The state changed and is not durable yet.
    unsaved: bool,
    /// The state changed since the host last asked ([`Card::take_changed`]).
    changed: bool,
    /// The last command came through the personalization channel and was answered under it.
    last_protected: bool,
    /// What the selected application said of the object the last command addressed: public
    /// (`Some(true)`), not public, or not known.
    pub(crate) last_public: Option<bool>,
}

/// A password object, wherever it lives: the VSC file system's, or an application's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PasswordId {
    /// The user PIN or the PUK of the VSC file system.
    Vsc(crate::security::PasswordRef),
    /// A password of the application at this index.
    Application(usize, crate::applications::AppPassword),
}

impl Card {
    /// A blank chip, as the card maker receives it.
    pub fn blank() -> Card {
        Card::from_state(CardState::blank())
    }

    /// A card with `state`, just powered on.
    pub fn from_state(state: CardState) -> Card {
        Card::with_persistence(state, Box::new(InMemory))
    }

    /// A card with `state`, just powered on, whose changes are made durable through
    /// `persistence`.
    pub fn with_persistence(state: CardState, persistence: Box<dyn Persistence>) -> Card {
        Card {
            state,
            session: Session::new(),
            persistence,
            unsaved: false,
            changed: false,
            last_protected: false,
            last_public: None,
        }
    }

    /// Puts the card back to `state` (a power-on of a card served fresh), keeping its
    /// persistence.
    pub fn replace_state(&mut self, state: CardState) {
        self.state = state;
        self.session = Session::new();
        self.unsaved = false;
    }

    /// The persistent state.
    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// The persistent state, the card put away.
    pub fn into_state(self) -> CardState {
        self.state
    }

    /// The answer to reset; it shows the life cycle.
    pub fn atr(&self) -> Vec<u8> {
        crate::atr::atr(self.state.life_cycle.byte())
    }

    /// Power-on or reset: the session (current files, security status, challenge, pending
    /// response, chain, channel) starts over.
    pub fn reset(&mut self) {
        self.session = Session::new();
    }

    /// Whether the current DF is DF.PRIVATE or lies under it: what the last command read or
    /// wrote there is private data (recorders mask it).
    pub fn in_private_area(&self) -> bool {
        self.session.df.fids().first() == Some(&Fid::DF_PRIVATE)
    }

    /// What an observer of the last exchange knows beyond its bytes, for the disclosure rule
    /// ([`crate::disclosure`]): whether it was genuine secure messaging, and whether the file it
    /// addressed is public (the current DF outside DF.PRIVATE).
    pub fn disclosure_context(&self) -> crate::disclosure::Context {
        let public_target = match self.session.application {
            None => Some(!self.in_private_area()),
            Some(_) => self.last_public,
        };
        crate::disclosure::Context {
            protected: self.last_protected,
            public_target,
        }
    }

    /// Whether the persistent state changed since the last call (and forget it did). Every
    /// change is already durable through the card's [`Persistence`] when the answer leaves.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Processes one command APDU and returns the response APDU.
    pub fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let mut response = Vec::new();
        self.transmit_into(command, &mut response);
        response
    }

    /// Processes one command APDU, appending the response APDU to `response`.
    pub fn transmit_into(&mut self, command: &[u8], response: &mut Vec<u8>) {
        let start = response.len();
        self.last_protected = false;
        self.last_public = None;
        let status = match Command::parse(command) {
            Ok(command) => self.process(&command, response, start),
            Err(error) => {
                self.session.pending.clear();
                self.session.chain = None;
                error.status()
            }
        };
        response.extend_from_slice(&status.to_bytes());
        if self.unsaved && self.save_now().is_err() {
            response.truncate(start);
            response.extend_from_slice(&Status::MemoryFailure.to_bytes());
        }
    }

    /// Makes the state durable now. When the host cannot, the card falls back to what is
    /// durable, forgets the session's security status, and the command answers `6581`.
    fn save_now(&mut self) -> Result<(), Status> {
        self.unsaved = false;
        self.state.generation = self.state.generation.wrapping_add(1);
        match self.persistence.save(&self.state) {
            Ok(()) => {
                self.changed = true;
                Ok(())
            }
            Err(SaveFailed) => {
                match self.persistence.durable() {
                    Some(durable) => self.state = durable,
                    None => self.state.generation = self.state.generation.wrapping_sub(1),
                }
                self.session.forget_security();
                Err(Status::MemoryFailure)
            }
        }
    }

    /// Presents `presented` to a password object: the try is counted and made durable first,
    /// and only then compared (in constant time). When the counted try cannot be saved, nothing
    /// is compared and the answer is `6581`: a host that cannot save never becomes an oracle.
    pub(crate) fn try_password(
        &mut self,
        id: PasswordId,
        presented: &[u8],
    ) -> Result<Verification, Status> {
        self.password_mut(id)?.begin_try(presented)?;
        self.save_now()?;
        let verification = self.password_mut(id)?.finish_try(presented);
        if verification == Verification::Matched {
            // The counter is back at its maximum.
            self.touch();
        }
        Ok(verification)
    }

    fn password_mut(&mut self, id: PasswordId) -> Result<&mut Password, Status> {
        match id {
            PasswordId::Vsc(reference) => self.state.passwords.get_mut(reference),
            PasswordId::Application(index, which) => self
                .state
                .applications
                .get_mut(index)
                .and_then(|application| application.password_mut(which)),
        }
        .ok_or(Status::ReferencedDataNotFound)
    }

    /// Class checks, GET RESPONSE, chaining, then the instruction.
    fn process(&mut self, command: &Command, out: &mut Vec<u8>, start: usize) -> Status {
        if self.state.life_cycle == LifeCycle::Terminated {
            return Status::ConditionsOfUseNotSatisfied;
        }
        match command.class.kind() {
            ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry => {}
            ClassKind::Proprietary | ClassKind::Invalid => return Status::ClassNotSupported,
        }
        if command.class.channel() != 0 {
            return Status::LogicalChannelNotSupported;
        }
        if command.ins == Ins::GetResponse.byte()
            && command.class.secure_messaging() == SmIndication::None
        {
            return self.get_response(command, out);
        }
        self.session.pending.clear();

        let chained;
        let command = match self.chain(command) {
            Chaining::Single => command,
            Chaining::Continue => return Status::Success,
            Chaining::Done(data) => {
                chained = data;
                &Command {
                    data: &chained,
                    form: LengthForm::Extended,
                    ..*command
                }
            }
            Chaining::Refused(status) => return status,
        };

        match command.class.secure_messaging() {
            SmIndication::None => {
                let outcome = self.dispatch(command, Context::default(), out);
                self.finish(command, outcome, out, start)
            }
            SmIndication::HeaderAuthenticated => self.secure(command, out),
            SmIndication::Proprietary | SmIndication::HeaderNotAuthenticated => {
                Status::SecureMessagingNotSupported
            }
        }
    }

    /// The personalization channel: a pre-initialized card unwraps the command (MAC checked
    /// before anything else), runs it with the channel's authority and wraps the answer. The
    /// channel starts at power-on and reset; after a secure messaging error it stays closed.
    fn secure(&mut self, command: &Command, out: &mut Vec<u8>) -> Status {
        match self.state.life_cycle {
            LifeCycle::Initialisation => {}
            LifeCycle::Creation => return Status::SecureMessagingNotSupported,
            LifeCycle::Operational | LifeCycle::Terminated => {
                return Status::ConditionsOfUseNotSatisfied;
            }
        }
        let mut channel = match self.session.channel.take() {
            Some(channel) => channel,
            None => match self.state.keys.channel.as_ref().map(open_channel) {
                Some(Ok(channel)) => channel,
                _ => return Status::SecureMessagingNotSupported,
            },
        };
        let status = match channel.unwrap_command(command) {
            Err(status) => status,
            Ok(plain) => {
                let mut data = Zeroizing::new(Vec::new());
                let status = match Command::parse(&plain) {
                    Err(error) => error.status(),
                    Ok(inner) if inner.class.byte() != 0x00 => Status::ClassNotSupported,
                    Ok(inner) => {
                        let outcome = self.dispatch(&inner, Context { channel: true }, &mut data);
                        let status = self.finish(&inner, outcome, &mut data, 0);
                        // What did not fit stays protected: nothing is left for a plain GET
                        // RESPONSE.
                        self.session.pending.clear();
                        status
                    }
                };
                let wrapped = channel.wrap_response(&data, status);
                self.last_protected = true;
                let (body, sw) = wrapped.split_at(wrapped.len().saturating_sub(2));
                out.extend_from_slice(body);
                match sw {
                    [sw1, sw2] => Status::from([*sw1, *sw2]),
                    _ => Status::NoPreciseDiagnosis,
                }
            }
        };
        self.session.channel = Some(channel);
        status
    }

    /// Calls the selected application's handler: SELECT is the platform's, everything else the
    /// application's (the VSC file system when none is selected).
    fn dispatch(&mut self, command: &Command, ctx: Context, out: &mut Vec<u8>) -> Outcome {
        if command.ins == Ins::Select.byte() {
            return self.select(command, ctx, out);
        }
        if let Some(index) = self.session.application.as_ref().map(|s| s.index) {
            if ctx.channel {
                // The personalization channel is the VSC file system's.
                return Err(Status::ConditionsOfUseNotSatisfied);
            }
            return crate::applications::dispatch(self, index, command, out);
        }
        self.dispatch_file_system(command, ctx, out)
    }

    /// Whether the selected application knows the instruction (a chain of an unknown one is
    /// refused at its first command).
    fn knows_instruction(&self, ins: u8) -> bool {
        if ins == Ins::Select.byte() {
            return true;
        }
        match &self.session.application {
            Some(selected) => self
                .state
                .applications
                .get(selected.index)
                .is_some_and(|application| application.knows_instruction(ins)),
            None => Ins::from_byte(ins).is_some_and(file_system_instruction),
        }
    }

    /// The VSC file system's instructions.
    fn dispatch_file_system(
        &mut self,
        command: &Command,
        ctx: Context,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Some(ins) = Ins::from_byte(command.ins) else {
            return Err(Status::InstructionNotSupported);
        };
        match ins {
            Ins::ReadBinary | Ins::ReadBinaryOdd => self.read_binary(command, ctx, out),
            Ins::UpdateBinary | Ins::UpdateBinaryOdd => self.update_binary(command, ctx),
            Ins::EraseBinary | Ins::EraseBinaryOdd => self.erase_binary(command, ctx),
            Ins::ReadRecord => self.read_record(command, ctx, out),
            Ins::UpdateRecord => self.update_record(command, ctx),
            Ins::AppendRecord => self.append_record(command, ctx),
            Ins::GetData | Ins::GetDataOdd => self.get_data(command, ctx, out),
            Ins::PutData | Ins::PutDataOdd => self.put_data(command, ctx),
            Ins::Verify => self.verify(command),
            Ins::ChangeReferenceData => self.change_reference_data(command, ctx),
            Ins::ResetRetryCounter => self.reset_retry_counter(command, ctx),
            Ins::GetChallenge => self.get_challenge(command, out),
            Ins::InternalAuthenticate => self.internal_authenticate(command, out),
            Ins::ExternalAuthenticate => self.external_authenticate(command),
            Ins::CreateFile => self.create_file(command, ctx),
            Ins::DeleteFile => self.delete_file(command, ctx),
            Ins::ActivateFile => self.activate_file(command, ctx),
            Ins::DeactivateFile => self.deactivate_file(command, ctx),
            Ins::TerminateDf | Ins::TerminateEf => self.terminate_file(command, ctx),
            Ins::TerminateCardUsage => self.terminate_card(command, ctx),
            _ => Err(Status::InstructionNotSupported),
        }
    }

    /// Cuts the handler's data to Ne, keeping the rest for GET RESPONSE (`61xx`).
    fn finish(
        &mut self,
        command: &Command,
        outcome: Outcome,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Status {
        let status = match outcome {
            Ok(status) => status,
            Err(status) => {
                out.truncate(start);
                return status;
            }
        };
        let produced = out.len() - start;
        let ne = match command.ne {
            // Applications that answer commands without Le as if Le were there (PIV, as
            // YubiKeys do and yubico-piv-tool expects): up to the largest Ne of the form.
            None if self.selected_answers_without_le() => match command.form {
                LengthForm::Extended => 65_536,
                _ => 256,
            },
            _ => command.expected_len(),
        };
        if produced <= ne {
            return status;
        }
        self.session.pending.clear();
        self.session.pending.extend_from_slice(&out[start + ne..]);
        out.truncate(start + ne);
        more_data(self.session.pending.len())
    }

    /// Whether the selected application answers data to a command without Le.
    fn selected_answers_without_le(&self) -> bool {
        self.session.application.as_ref().is_some_and(|selected| {
            self.state
                .applications
                .get(selected.index)
                .is_some_and(crate::applications::Application::answers_without_le)
        })
    }

    /// GET RESPONSE: the next part of a response that did not fit Ne.
    fn get_response(&mut self, command: &Command, out: &mut Vec<u8>) -> Status {
        if command.p1 != 0 || command.p2 != 0 {
            return Status::IncorrectP1P2;
        }
        if !command.data.is_empty() {
            return Status::WrongLength;
        }
        if self.session.pending.is_empty() {
            return Status::ConditionsOfUseNotSatisfied;
        }
        let ne = command.expected_len().min(self.session.pending.len());
        out.extend_from_slice(&self.session.pending[..ne]);
        self.session.pending.drain(..ne);
        if self.session.pending.is_empty() {
            Status::Success
        } else {
            more_data(self.session.pending.len())
        }
    }

    /// Gathers chained commands (CLA bit `10`) into one.
    fn chain(&mut self, command: &Command) -> Chaining {
        let header = [
            command.class.with_chaining(false).byte(),
            command.ins,
            command.p1,
            command.p2,
        ];
        let same = self
            .session
            .chain
            .as_ref()
            .is_some_and(|chain| chain.header == header);
        if self.session.chain.is_some() && !same {
            self.session.chain = None;
            return Chaining::Refused(Status::LastCommandOfChainExpected);
        }
        if !command.class.chained() && self.session.chain.is_none() {
            return Chaining::Single;
        }
        if self.session.chain.is_none() && !self.knows_instruction(command.ins) {
            return Chaining::Refused(Status::InstructionNotSupported);
        }
        if command.class.chained() && command.class.secure_messaging() != SmIndication::None {
            return Chaining::Refused(Status::CommandChainingNotSupported);
        }
        let chain = self.session.chain.get_or_insert_with(|| Chain {
            header,
            data: Zeroizing::new(Vec::new()),
        });
        if chain.data.len() + command.data.len() > MAX_CHAIN {
            self.session.chain = None;
            return Chaining::Refused(Status::WrongLength);
        }
        chain.data.extend_from_slice(command.data);
        if command.class.chained() {
            return Chaining::Continue;
        }
        match self.session.chain.take() {
            Some(chain) => Chaining::Done(chain.data),
            None => Chaining::Single,
        }
    }

    /// What the current command may do, as access checks see it.
    fn security_status(&self, ctx: Context) -> SecurityStatus {
        SecurityStatus {
            channel: ctx.channel && self.state.life_cycle == LifeCycle::Initialisation,
            user_pin: self.session.user_pin,
            authenticated_keys: self.session.authenticated_keys,
        }
    }

    /// Whether an operation needing `condition` is allowed. `writes` says whether it changes
    /// the card: before personalization ends those go through the channel only.
    fn authorize(&self, condition: Condition, writes: bool, ctx: Context) -> Result<(), Status> {
        match self.state.life_cycle {
            LifeCycle::Creation => Ok(()),
            LifeCycle::Initialisation if ctx.channel => Ok(()),
            LifeCycle::Initialisation if writes => Err(Status::SecurityStatusNotSatisfied),
            LifeCycle::Terminated => Err(Status::ConditionsOfUseNotSatisfied),
            LifeCycle::Initialisation | LifeCycle::Operational => {
                if condition.is_met(&self.security_status(ctx)) {
                    Ok(())
                } else {
                    Err(Status::SecurityStatusNotSatisfied)
                }
            }
        }
    }

    /// The current DF.
    fn current_df(&self) -> Result<&Df, Status> {
        self.state
            .fs
            .df(&self.session.df)
            .ok_or(Status::NoPreciseDiagnosis)
    }

    /// The current DF, to change it.
    fn current_df_mut(&mut self) -> Result<&mut Df, Status> {
        self.state
            .fs
            .df_mut(&self.session.df)
            .ok_or(Status::NoPreciseDiagnosis)
    }

    /// The EF a command names: by short identifier in the current DF (which makes it the current
    /// EF), or the current EF.
    fn target_ef(&mut self, sfi: Option<u8>) -> Result<Fid, Status> {
        match sfi {
            None | Some(0) => self.session.ef.ok_or(Status::NoCurrentEf),
            Some(sfi) => {
                let sfi = crate::fs::Sfi::new(sfi).map_err(|_| Status::IncorrectP1P2)?;
                let fid = self
                    .current_df()?
                    .ef_by_sfi(sfi)
                    .ok_or(Status::FileNotFound)?
                    .fid;
                if self.session.ef != Some(fid) {
                    self.session.ef = Some(fid);
                    self.session.record = None;
                }
                Ok(fid)
            }
        }
    }

    /// The EF `fid` of the current DF.
    fn ef(&self, fid: Fid) -> Result<&Ef, Status> {
        self.current_df()?.child_ef(fid).ok_or(Status::NoCurrentEf)
    }

    /// The EF `fid` of the current DF, to change it.
    fn ef_mut(&mut self, fid: Fid) -> Result<&mut Ef, Status> {
        self.current_df_mut()?
            .child_ef_mut(fid)
            .ok_or(Status::NoCurrentEf)
    }

    /// Checks that `extra` more bytes fit the card's memory.
    fn check_memory(&self, extra: usize) -> Result<(), Status> {
        if self.state.fs.capacity() + extra > MEMORY {
            Err(Status::NotEnoughMemory)
        } else {
            Ok(())
        }
    }

    /// Marks the persistent state as changed: it is made durable before the answer leaves.
    pub(crate) fn touch(&mut self) {
        self.unsaved = true;
    }
}

/// Whether the VSC file system handles `ins` (the list [`Card::dispatch_file_system`] serves).
fn file_system_instruction(ins: Ins) -> bool {
    matches!(
        ins,
        Ins::Select
            | Ins::ReadBinary
            | Ins::ReadBinaryOdd
            | Ins::UpdateBinary
            | Ins::UpdateBinaryOdd
            | Ins::EraseBinary
            | Ins::EraseBinaryOdd
            | Ins::ReadRecord
            | Ins::UpdateRecord
            | Ins::AppendRecord
            | Ins::GetData
            | Ins::GetDataOdd
            | Ins::PutData
            | Ins::PutDataOdd
            | Ins::Verify
            | Ins::ChangeReferenceData
            | Ins::ResetRetryCounter
            | Ins::GetChallenge
            | Ins::InternalAuthenticate
            | Ins::ExternalAuthenticate
            | Ins::CreateFile
            | Ins::DeleteFile
            | Ins::ActivateFile
            | Ins::DeactivateFile
            | Ins::TerminateDf
            | Ins::TerminateEf
            | Ins::TerminateCardUsage
    )
}

/// What chaining made of a command.
enum Chaining {
    /// Not part of a chain.
    Single,
    /// A chain continues; answer `9000`.
    Continue,
    /// The last command of a chain: all the data gathered.
    Done(Zeroizing<Vec<u8>>),
    /// The chain broke.
    Refused(Status),
}

/// The card side of the personalization channel, keyed with the card's channel keys.
fn open_channel(keys: &ChannelKeyMaterial) -> Result<CardChannel, Status> {
    let enc = AesKey::from_bytes(keys.enc.expose()).map_err(|_| Status::ReferenceDataNotUsable)?;
    let mac = AesKey::from_bytes(keys.mac.expose()).map_err(|_| Status::ReferenceDataNotUsable)?;
    Ok(CardChannel::new(ChannelKeys::from_keys(enc, mac)))
}

/// `61xx` for `remaining` bytes (`6100` for 256 or more).
fn more_data(remaining: usize) -> Status {
    Status::MoreData(if remaining >= 256 { 0 } else { remaining as u8 })
}

/// Whether Ne is the largest its form can say (short `00`, extended `0000`): "all there is".
fn ne_is_maximum(command: &Command) -> bool {
    matches!(
        (command.ne, command.form),
        (Some(256), LengthForm::Short) | (Some(65_536), _)
    )
}

#[cfg(test)]
mod tests;

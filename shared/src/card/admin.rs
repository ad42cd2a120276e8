//! The file life cycle: CREATE FILE, DELETE FILE, ACTIVATE FILE, DEACTIVATE FILE, TERMINATE DF,
//! TERMINATE EF and TERMINATE CARD USAGE. ACTIVATE FILE on the MF ends personalization.

use super::select::fid_of;
use super::{Card, Context, LifeCycle, Outcome};
use crate::apdu::{Command, Status};
use crate::fs::fcp::{self, FileSpec};
use crate::fs::{AccessRules, DfPath, Fid, FileState, Node, Operation};

/// A file a life cycle command names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileRef {
    Mf,
    Df(DfPath),
    Ef(DfPath, Fid),
}

impl Card {
    pub(super) fn create_file(&mut self, command: &Command, ctx: Context) -> Outcome {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let here = self.session.df;
        let df = self.current_df()?;
        df.state.usable()?;
        // Refuse the unauthorized before reading what they send.
        let may_create_ef = self.authorize(df.rules.get(Operation::UpdateOrCreateEf), true, ctx);
        let may_create_df = self.authorize(df.rules.get(Operation::AppendOrCreateDf), true, ctx);
        if let (Err(status), Err(_)) = (may_create_ef, may_create_df) {
            return Err(status);
        }
        if let Some(kind) = crate::applications::parse_install(command.data)? {
            return self.install_application(kind, ctx);
        }
        let spec = fcp::parse_create(command.data)?;
        let (operation, fid, size) = match &spec {
            FileSpec::Ef(ef) => (Operation::UpdateOrCreateEf, ef.fid, ef.capacity() + 16),
            FileSpec::Df(child) => (Operation::AppendOrCreateDf, child.fid, 32),
        };
        self.authorize(df.rules.get(operation), true, ctx)?;
        if df.child(fid).is_some() || fid == here.fid() {
            return Err(Status::FileAlreadyExists);
        }
        match &spec {
            FileSpec::Ef(ef) => {
                if ef.sfi.is_some_and(|sfi| df.ef_by_sfi(sfi).is_some()) {
                    return Err(Status::FileAlreadyExists);
                }
            }
            FileSpec::Df(child) => {
                if let Some(aid) = &child.aid
                    && self
                        .state
                        .fs
                        .dfs()
                        .iter()
                        .any(|(_, other)| other.aid.as_ref() == Some(aid))
                {
                    return Err(Status::DfNameAlreadyExists);
                }
                if here.child(fid).is_none() {
                    return Err(Status::NotEnoughMemory);
                }
            }
        }
        self.check_memory(size)?;
        let node = match spec {
            FileSpec::Ef(ef) => Node::Ef(ef),
            FileSpec::Df(df) => Node::Df(df),
        };
        self.current_df_mut()?.children.push(node);
        // The new file becomes the current file.
        match self.current_df()?.child(fid) {
            Some(Node::Ef(_)) => self.session.ef = Some(fid),
            _ => {
                self.session.df = here.child(fid).unwrap_or(here);
                self.session.ef = None;
            }
        }
        self.session.record = None;
        self.touch();
        Ok(Status::Success)
    }

    /// CREATE FILE of an application DF on the MF: the application, in its factory state.
    fn install_application(
        &mut self,
        kind: crate::applications::ApplicationKind,
        ctx: Context,
    ) -> Outcome {
        if !self.session.df.is_mf() {
            return Err(Status::ConditionsOfUseNotSatisfied);
        }
        let rule = self.state.fs.mf.rules.get(Operation::AppendOrCreateDf);
        self.authorize(rule, true, ctx)?;
        if self.state.applications.iter().any(|a| a.kind() == kind) {
            return Err(Status::DfNameAlreadyExists);
        }
        self.state
            .applications
            .push(crate::applications::Application::install(
                kind,
                self.state.uid(),
            ));
        self.touch();
        Ok(Status::Success)
    }

    pub(super) fn delete_file(&mut self, command: &Command, ctx: Context) -> Outcome {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let (parent, fid) = match self.file_ref(command.data)? {
            FileRef::Mf => return Err(Status::ConditionsOfUseNotSatisfied),
            FileRef::Df(path) => (path.parent(), path.fid()),
            FileRef::Ef(path, fid) => (path, fid),
        };
        let parent_df = self.state.fs.df(&parent).ok_or(Status::FileNotFound)?;
        let own = self.rules_of(parent, fid)?.get(Operation::Delete);
        let by_parent = parent_df.rules.get(Operation::ReadOrDeleteChild);
        if self.authorize(own, true, ctx).is_err() {
            self.authorize(by_parent, true, ctx)?;
        }
        let parent_df = self.state.fs.df_mut(&parent).ok_or(Status::FileNotFound)?;
        parent_df.children.retain(|node| node.fid() != fid);
        let current = self.session.df;
        let deleted_dir = parent.child(fid);
        if deleted_dir.is_some_and(|dir| current.fids().starts_with(dir.fids())) {
            self.session.df = parent;
            self.session.ef = None;
        } else if current == parent && self.session.ef == Some(fid) {
            self.session.ef = None;
        }
        self.session.record = None;
        self.touch();
        Ok(Status::Success)
    }

    pub(super) fn activate_file(&mut self, command: &Command, ctx: Context) -> Outcome {
        self.change_state(command, ctx, Operation::Activate, FileState::Activated)
    }

    pub(super) fn deactivate_file(&mut self, command: &Command, ctx: Context) -> Outcome {
        self.change_state(command, ctx, Operation::Deactivate, FileState::Deactivated)
    }

    /// TERMINATE DF (`E6`) or TERMINATE EF (`E8`).
    pub(super) fn terminate_file(&mut self, command: &Command, ctx: Context) -> Outcome {
        let wants_df = command.ins == 0xE6;
        match self.file_ref(command.data)? {
            FileRef::Df(_) if wants_df => {}
            FileRef::Ef(..) if !wants_df => {}
            FileRef::Mf => return Err(Status::ConditionsOfUseNotSatisfied),
            _ => return Err(Status::FileNotFound),
        }
        self.change_state(command, ctx, Operation::Terminate, FileState::Terminated)
    }

    /// TERMINATE CARD USAGE: the card refuses everything from now on.
    pub(super) fn terminate_card(&mut self, command: &Command, ctx: Context) -> Outcome {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        if !command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        self.authorize(self.state.fs.mf.rules.get(Operation::Terminate), true, ctx)?;
        self.state.life_cycle = LifeCycle::Terminated;
        self.touch();
        Ok(Status::Success)
    }

    fn change_state(
        &mut self,
        command: &Command,
        ctx: Context,
        operation: Operation,
        to: FileState,
    ) -> Outcome {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let (parent, fid) = match self.file_ref(command.data)? {
            FileRef::Mf if to == FileState::Activated => return self.activate_card(ctx),
            FileRef::Mf => return Err(Status::ConditionsOfUseNotSatisfied),
            FileRef::Df(path) => (path.parent(), path.fid()),
            FileRef::Ef(path, fid) => (path, fid),
        };
        let state = self.state_of(parent, fid)?;
        if state == FileState::Terminated {
            return Err(Status::ConditionsOfUseNotSatisfied);
        }
        self.authorize(self.rules_of(parent, fid)?.get(operation), true, ctx)?;
        let df = self.state.fs.df_mut(&parent).ok_or(Status::FileNotFound)?;
        match df.child_mut(fid) {
            Some(Node::Ef(ef)) => ef.state = to,
            Some(Node::Df(child)) => child.state = to,
            None => return Err(Status::FileNotFound),
        }
        self.touch();
        Ok(Status::Success)
    }

    /// ACTIVATE FILE on the MF: a pre-initialized card becomes operational (through the
    /// channel); a card without the channel, from the creation state, in plain.
    fn activate_card(&mut self, ctx: Context) -> Outcome {
        match self.state.life_cycle {
            LifeCycle::Creation => {}
            LifeCycle::Initialisation if ctx.channel => {}
            LifeCycle::Initialisation => return Err(Status::SecurityStatusNotSatisfied),
            LifeCycle::Operational => return Ok(Status::Success),
            LifeCycle::Terminated => return Err(Status::ConditionsOfUseNotSatisfied),
        }
        self.state.life_cycle = LifeCycle::Operational;
        self.touch();
        Ok(Status::Success)
    }

    /// The file the data names: nothing for the current file, `3F00`, or a child of the
    /// current DF.
    fn file_ref(&self, data: &[u8]) -> Result<FileRef, Status> {
        let here = self.session.df;
        if data.is_empty() {
            return Ok(match self.session.ef {
                Some(fid) => FileRef::Ef(here, fid),
                None if here.is_mf() => FileRef::Mf,
                None => FileRef::Df(here),
            });
        }
        let fid = fid_of(data)?;
        if fid == Fid::MF {
            return Ok(FileRef::Mf);
        }
        match self.current_df()?.child(fid) {
            Some(Node::Ef(_)) => Ok(FileRef::Ef(here, fid)),
            Some(Node::Df(_)) => here.child(fid).map(FileRef::Df).ok_or(Status::FileNotFound),
            None => Err(Status::FileNotFound),
        }
    }

    fn rules_of(&self, parent: DfPath, fid: Fid) -> Result<AccessRules, Status> {
        match self.state.fs.df(&parent).and_then(|df| df.child(fid)) {
            Some(Node::Ef(ef)) => Ok(ef.rules),
            Some(Node::Df(df)) => Ok(df.rules),
            None => Err(Status::FileNotFound),
        }
    }

    fn state_of(&self, parent: DfPath, fid: Fid) -> Result<FileState, Status> {
        match self.state.fs.df(&parent).and_then(|df| df.child(fid)) {
            Some(Node::Ef(ef)) => Ok(ef.state),
            Some(Node::Df(df)) => Ok(df.state),
            None => Err(Status::FileNotFound),
        }
    }
}

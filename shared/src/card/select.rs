//! SELECT: by file identifier, child DF, EF, parent, DF name (first, last, next, previous
//! occurrence), and path from the MF or the current DF; answering with FCI, FCP, FMD or nothing.

use super::{Card, Context, Outcome, session::SelectedApplication};
use crate::apdu::{Command, Status};
use crate::fs::{DfPath, Fid, FileState, Node, fcp};
use crate::tlv;

/// What SELECT makes current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Df(DfPath),
    Ef(DfPath, Fid),
}

/// What SELECT answers with (P2 b4-b3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Fci,
    Fcp,
    Fmd,
    Nothing,
}

impl Card {
    /// SELECT: an application by (the start of) its AID, or else a file of the VSC file
    /// system, which then is the selected application again.
    pub(super) fn select(&mut self, command: &Command, ctx: Context, out: &mut Vec<u8>) -> Outcome {
        if command.p1 == 0x04
            && !command.data.is_empty()
            && command.p2 & 0x03 == 0
            && !ctx.channel
            && let Some(index) =
                crate::applications::find(&self.state.applications, self.state.uid(), command.data)
        {
            let again = self
                .session
                .application
                .as_ref()
                .is_some_and(|selected| selected.index == index);
            if !(again && self.state.applications[index].keeps_session_when_selected_again()) {
                let session = self.state.applications[index].new_session();
                self.session.application = Some(SelectedApplication { index, session });
            }
            self.last_public = Some(true);
            return crate::applications::select(self, index, command, out);
        }
        let status = self.select_file(command, out)?;
        self.session.application = None;
        Ok(status)
    }

    fn select_file(&mut self, command: &Command, out: &mut Vec<u8>) -> Outcome {
        let p2 = command.p2;
        if p2 & 0xF0 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let answer = match p2 & 0x0C {
            0x00 => Answer::Fci,
            0x04 => Answer::Fcp,
            0x08 => Answer::Fmd,
            _ => Answer::Nothing,
        };
        let occurrence = p2 & 0x03;
        if occurrence != 0 && command.p1 != 0x04 {
            return Err(Status::IncorrectP1P2);
        }
        let data = command.data;
        let target = match command.p1 {
            0x00 => self.by_fid(data)?,
            0x01 => {
                let fid = fid_of(data)?;
                match self.current_df()?.child(fid) {
                    Some(Node::Df(_)) => {
                        Target::Df(self.session.df.child(fid).ok_or(Status::FileNotFound)?)
                    }
                    _ => return Err(Status::FileNotFound),
                }
            }
            0x02 => {
                let fid = fid_of(data)?;
                match self.current_df()?.child(fid) {
                    Some(Node::Ef(_)) => Target::Ef(self.session.df, fid),
                    _ => return Err(Status::FileNotFound),
                }
            }
            0x03 if data.is_empty() => Target::Df(self.session.df.parent()),
            0x03 => return Err(Status::NcInconsistentWithP1P2),
            0x04 => self.by_name(data, occurrence)?,
            0x08 => self.by_path(DfPath::MF, data.strip_prefix(&[0x3F, 0x00]).unwrap_or(data))?,
            0x09 => self.by_path(self.session.df, data)?,
            _ => return Err(Status::IncorrectP1P2),
        };

        let (state, fcp) = self.describe(target)?;
        match target {
            Target::Df(path) => {
                self.session.df = path;
                self.session.ef = None;
            }
            Target::Ef(path, fid) => {
                self.session.df = path;
                self.session.ef = Some(fid);
            }
        }
        self.session.record = None;

        match answer {
            Answer::Fcp => out.extend_from_slice(&fcp),
            Answer::Fci => {
                // The FCI template carries the same objects under tag 6F.
                let at = out.len();
                out.extend_from_slice(&fcp);
                out[at] = 0x6F;
            }
            Answer::Fmd => {
                let aid = match target {
                    Target::Df(path) => self.state.fs.df(&path).and_then(|df| df.aid.clone()),
                    Target::Ef(..) => None,
                };
                tlv::push_constructed(out, &[0x64], |out| {
                    if let Some(aid) = aid {
                        tlv::push_primitive(out, &[0x84], aid.as_bytes());
                    }
                });
            }
            Answer::Nothing => {}
        }
        Ok(match state {
            FileState::Activated => Status::Success,
            FileState::Deactivated => Status::FileDeactivated,
            FileState::Terminated => Status::FileTerminated,
        })
    }

    /// P1 = 00: the MF, or a file whose FID is unique among the current DF, its children, its
    /// parent and the parent's children (ISO 7816-4 §7.1.1).
    fn by_fid(&self, data: &[u8]) -> Result<Target, Status> {
        if data.is_empty() {
            return Ok(Target::Df(DfPath::MF));
        }
        let fid = fid_of(data)?;
        if fid == Fid::MF {
            return Ok(Target::Df(DfPath::MF));
        }
        let current = self.session.df;
        if let Some(target) = self.child_target(current, fid) {
            return Ok(target);
        }
        if current.fid() == fid {
            return Ok(Target::Df(current));
        }
        let parent = current.parent();
        if !current.is_mf() && parent.fid() == fid {
            return Ok(Target::Df(parent));
        }
        self.child_target(parent, fid).ok_or(Status::FileNotFound)
    }

    /// P1 = 04: a DF by (the start of) its name.
    fn by_name(&self, name: &[u8], occurrence: u8) -> Result<Target, Status> {
        if name.is_empty() {
            return if occurrence == 0 {
                Ok(Target::Df(DfPath::MF))
            } else {
                Err(Status::FileNotFound)
            };
        }
        if name.len() > 16 {
            return Err(Status::WrongLength);
        }
        let matches: Vec<DfPath> = self
            .state
            .fs
            .dfs()
            .into_iter()
            .filter(|(_, df)| {
                df.aid
                    .as_ref()
                    .is_some_and(|aid| aid.as_bytes().starts_with(name))
            })
            .map(|(path, _)| path)
            .collect();
        let current = matches.iter().position(|path| *path == self.session.df);
        let chosen = match (occurrence, current) {
            (0b00, _) | (0b10, None) => matches.first(),
            (0b10, Some(i)) => matches.get(i + 1),
            (0b11, Some(i)) => i.checked_sub(1).and_then(|i| matches.get(i)),
            // Last occurrence, or previous with no current match to start from.
            _ => matches.last(),
        };
        chosen
            .map(|path| Target::Df(*path))
            .ok_or(Status::FileNotFound)
    }

    /// P1 = 08 / 09: a path of FIDs from `start`; every FID but the last names a DF.
    fn by_path(&self, start: DfPath, data: &[u8]) -> Result<Target, Status> {
        if data.is_empty() || !data.len().is_multiple_of(2) {
            return Err(Status::NcInconsistentWithP1P2);
        }
        let mut fids = data.chunks_exact(2).map(fid_of).peekable();
        let mut path = start;
        while let Some(fid) = fids.next() {
            let fid = fid?;
            let last = fids.peek().is_none();
            match self.child_target(path, fid) {
                Some(Target::Df(child)) => path = child,
                Some(target @ Target::Ef(..)) if last => return Ok(target),
                _ => return Err(Status::FileNotFound),
            }
        }
        Ok(Target::Df(path))
    }

    /// The child `fid` of the DF at `path`.
    fn child_target(&self, path: DfPath, fid: Fid) -> Option<Target> {
        match self.state.fs.df(&path)?.child(fid)? {
            Node::Df(_) => path.child(fid).map(Target::Df),
            Node::Ef(_) => Some(Target::Ef(path, fid)),
        }
    }

    /// The target's life cycle state and FCP.
    fn describe(&self, target: Target) -> Result<(FileState, Vec<u8>), Status> {
        match target {
            Target::Df(path) => {
                let df = self.state.fs.df(&path).ok_or(Status::FileNotFound)?;
                let lcs = if path.is_mf() {
                    self.state.life_cycle.byte()
                } else {
                    df.state.byte()
                };
                Ok((df.state, fcp::df_fcp(df, lcs)))
            }
            Target::Ef(path, fid) => {
                let ef = self
                    .state
                    .fs
                    .df(&path)
                    .and_then(|df| df.child_ef(fid))
                    .ok_or(Status::FileNotFound)?;
                Ok((ef.state, fcp::ef_fcp(ef)))
            }
        }
    }
}

/// A FID from two data bytes (`6A87` for another length, `6A82` for a reserved value).
pub(super) fn fid_of(data: &[u8]) -> Result<Fid, Status> {
    match data {
        [_, _] => Fid::from_bytes(data).map_err(|_| Status::FileNotFound),
        _ => Err(Status::NcInconsistentWithP1P2),
    }
}

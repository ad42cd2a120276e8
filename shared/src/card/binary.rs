//! Transparent EFs: READ BINARY, UPDATE BINARY and ERASE BINARY, in their even forms (offset in
//! P1-P2, or a short EF identifier in P1) and odd forms (offset data object `54`, data in `53`).

use super::{Card, Context, Outcome, ne_is_maximum};
use crate::apdu::{Command, Status};
use crate::fs::{EfBody, Fid, Node, Operation};
use crate::tlv;

impl Card {
    pub(super) fn read_binary(
        &mut self,
        command: &Command,
        ctx: Context,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let odd = command.ins & 1 == 1;
        let (fid, offset) = if odd {
            let fid = self.odd_target(command)?;
            let objects = tlv::parse_all(command.data)?;
            let offset = offset_of(tlv::find_primitive(&objects, 0x54))?;
            (fid, offset)
        } else {
            if !command.data.is_empty() {
                return Err(Status::WrongLength);
            }
            self.even_target(command)?
        };
        let ne = command.ne.ok_or(Status::WrongLength)?;
        let ef = self.ef(fid)?;
        ef.state.usable()?;
        self.authorize(ef.rules.get(Operation::ReadOrDeleteChild), false, ctx)?;
        let EfBody::Transparent(bytes) = &ef.body else {
            return Err(Status::IncompatibleFileStructure);
        };
        let available = bytes
            .get(offset..)
            .filter(|rest| !rest.is_empty())
            .ok_or(Status::WrongP1P2)?;
        let room = if odd { data_room(ne) } else { ne };
        let chunk = &available[..available.len().min(room)];
        if odd {
            tlv::push_primitive(out, &[0x53], chunk);
        } else {
            out.extend_from_slice(chunk);
        }
        if chunk.len() < room && !ne_is_maximum(command) {
            Ok(Status::EndOfFile)
        } else {
            Ok(Status::Success)
        }
    }

    pub(super) fn update_binary(&mut self, command: &Command, ctx: Context) -> Outcome {
        let objects;
        let (fid, offset, data) = if command.ins & 1 == 1 {
            let fid = self.odd_target(command)?;
            objects = tlv::parse_all(command.data)?;
            let offset = offset_of(tlv::find_primitive(&objects, 0x54))?;
            let data = tlv::find_primitive(&objects, 0x53).ok_or(Status::IncorrectData)?;
            (fid, offset, data)
        } else {
            let (fid, offset) = self.even_target(command)?;
            (fid, offset, command.data)
        };
        if data.is_empty() {
            return Err(Status::WrongLength);
        }
        let ef = self.ef(fid)?;
        ef.state.usable()?;
        self.authorize(ef.rules.get(Operation::UpdateOrCreateEf), true, ctx)?;
        let EfBody::Transparent(bytes) = &ef.body else {
            return Err(Status::IncompatibleFileStructure);
        };
        if offset > bytes.len() {
            return Err(Status::WrongP1P2);
        }
        if offset + data.len() > bytes.len() {
            return Err(Status::NotEnoughMemory);
        }
        if let EfBody::Transparent(bytes) = &mut self.ef_mut(fid)?.body {
            bytes[offset..offset + data.len()].copy_from_slice(data);
        }
        self.touch();
        Ok(Status::Success)
    }

    pub(super) fn erase_binary(&mut self, command: &Command, ctx: Context) -> Outcome {
        let (fid, start, end) = if command.ins & 1 == 1 {
            let fid = self.odd_target(command)?;
            let objects = tlv::parse_all(command.data)?;
            let mut offsets = objects.iter().filter(|o| tlv::tag_number(o.tag()) == 0x54);
            let start = offset_of(offsets.next().and_then(tlv::primitive))?;
            let end = offsets
                .next()
                .map(|o| offset_of(tlv::primitive(o)))
                .transpose()?;
            if objects.len() > 2 || offsets.next().is_some() {
                return Err(Status::IncorrectData);
            }
            (fid, start, end)
        } else {
            let (fid, start) = self.even_target(command)?;
            let end = match command.data {
                [] => None,
                [hi, lo] => Some(usize::from(u16::from_be_bytes([*hi, *lo]))),
                _ => return Err(Status::WrongLength),
            };
            (fid, start, end)
        };
        let ef = self.ef(fid)?;
        ef.state.usable()?;
        self.authorize(ef.rules.get(Operation::UpdateOrCreateEf), true, ctx)?;
        let EfBody::Transparent(bytes) = &ef.body else {
            return Err(Status::IncompatibleFileStructure);
        };
        let end = end.unwrap_or(bytes.len());
        if start > end || end > bytes.len() {
            return Err(Status::WrongP1P2);
        }
        if let EfBody::Transparent(bytes) = &mut self.ef_mut(fid)?.body {
            bytes[start..end].fill(0);
        }
        self.touch();
        Ok(Status::Success)
    }

    /// Even INS: P1 b8 set, a short EF identifier in b5-b1 and the offset in P2; otherwise the
    /// current EF and a 15-bit offset in P1-P2.
    fn even_target(&mut self, command: &Command) -> Result<(Fid, usize), Status> {
        if command.p1 & 0x80 != 0 {
            if command.p1 & 0x60 != 0 || command.p1 & 0x1F == 0 {
                return Err(Status::IncorrectP1P2);
            }
            let fid = self.target_ef(Some(command.p1 & 0x1F))?;
            Ok((fid, usize::from(command.p2)))
        } else {
            let fid = self.target_ef(None)?;
            Ok((
                fid,
                usize::from(u16::from_be_bytes([command.p1, command.p2])),
            ))
        }
    }

    /// Odd INS: P1-P2 `0000` is the current EF, `00xx` a short EF identifier, anything else
    /// the FID of an EF in the current DF (which becomes the current EF).
    fn odd_target(&mut self, command: &Command) -> Result<Fid, Status> {
        match (command.p1, command.p2) {
            (0, 0) => self.target_ef(None),
            (0, sfi) if sfi & 0xE0 == 0 => self.target_ef(Some(sfi)),
            (hi, lo) => {
                let fid =
                    Fid::new(u16::from_be_bytes([hi, lo])).map_err(|_| Status::FileNotFound)?;
                match self.current_df()?.child(fid) {
                    Some(Node::Ef(_)) => {
                        if self.session.ef != Some(fid) {
                            self.session.ef = Some(fid);
                            self.session.record = None;
                        }
                        Ok(fid)
                    }
                    _ => Err(Status::FileNotFound),
                }
            }
        }
    }
}

/// The offset an offset data object (`54`) holds: 1 to 3 bytes, big-endian.
fn offset_of(value: Option<&[u8]>) -> Result<usize, Status> {
    match value {
        Some(bytes @ [_, ..]) if bytes.len() <= 3 => {
            Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | usize::from(*b)))
        }
        _ => Err(Status::IncorrectData),
    }
}

/// How many data bytes fit in a `53` object of at most `ne` bytes.
fn data_room(ne: usize) -> usize {
    match ne {
        0..=2 => 0,
        3..=129 => ne - 2,
        130..=258 => (ne - 3).min(255),
        _ => ne - 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_53_object_never_exceeds_ne() {
        for ne in 0..=70_000 {
            let room = data_room(ne);
            let mut out = Vec::new();
            tlv::push_primitive(&mut out, &[0x53], &vec![0; room.min(0xFFFF)]);
            assert!(out.len() <= ne.max(2), "ne {ne}: {} bytes", out.len());
        }
    }
}

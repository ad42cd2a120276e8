//! Record EFs: READ RECORD(S), UPDATE RECORD and APPEND RECORD, by record number, in the
//! current EF or one named by its short identifier (P2 b8-b4).

use super::{Card, Context, Outcome};
use crate::apdu::{Command, Status};
use crate::fs::{EfBody, Fid, Operation, RecordFile};

/// P2 b3-b1 of READ RECORD(S) and UPDATE RECORD.
const RECORD_P1: u8 = 0b100;
const FROM_P1_TO_LAST: u8 = 0b101;
const FROM_LAST_TO_P1: u8 = 0b110;

impl Card {
    pub(super) fn read_record(
        &mut self,
        command: &Command,
        ctx: Context,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if !command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        let ne = command.ne.ok_or(Status::WrongLength)?;
        let (fid, mode) = self.record_target(command.p2)?;
        let records = self.records(fid, Operation::ReadOrDeleteChild, false, ctx)?;
        let number = self.record_number(command.p1)?;
        records.get(number)?;
        let count = records.records.len() as u8;
        let numbers: Vec<u8> = match mode {
            RECORD_P1 => vec![number],
            FROM_P1_TO_LAST => (number..=count).collect(),
            FROM_LAST_TO_P1 => (number..=count).rev().collect(),
            0b000..=0b011 => return Err(Status::FunctionNotSupported),
            _ => return Err(Status::IncorrectP1P2),
        };
        if let [single] = numbers[..] {
            let record = records.get(single)?;
            if record.len() > ne {
                return Err(Status::WrongLe(record.len().min(255) as u8));
            }
            out.extend_from_slice(record);
        } else {
            for n in &numbers {
                out.extend_from_slice(records.get(*n)?);
            }
        }
        self.session.record = numbers.last().copied();
        Ok(Status::Success)
    }

    pub(super) fn update_record(&mut self, command: &Command, ctx: Context) -> Outcome {
        let (fid, mode) = self.record_target(command.p2)?;
        if mode != RECORD_P1 {
            return Err(if mode < RECORD_P1 {
                Status::FunctionNotSupported
            } else {
                Status::IncorrectP1P2
            });
        }
        let number = self.record_number(command.p1)?;
        let records = self.records(fid, Operation::UpdateOrCreateEf, true, ctx)?;
        records.get(number)?;
        records.check_len(command.data)?;
        self.records_mut(fid)?.update(number, command.data)?;
        self.session.record = Some(number);
        self.touch();
        Ok(Status::Success)
    }

    pub(super) fn append_record(&mut self, command: &Command, ctx: Context) -> Outcome {
        if command.p1 != 0 || command.p2 & 0x07 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let (fid, _) = self.record_target(command.p2)?;
        let records = self.records(fid, Operation::AppendOrCreateDf, true, ctx)?;
        records.check_len(command.data)?;
        let number = self.records_mut(fid)?.append(command.data)?;
        self.session.record = Some(number);
        self.touch();
        Ok(Status::Success)
    }

    /// The EF (P2 b8-b4: a short identifier, or 0 for the current EF) and the mode (b3-b1).
    fn record_target(&mut self, p2: u8) -> Result<(Fid, u8), Status> {
        let sfi = p2 >> 3;
        if sfi == 0x1F {
            return Err(Status::IncorrectP1P2);
        }
        Ok((self.target_ef(Some(sfi))?, p2 & 0x07))
    }

    /// P1: a record number, or 0 for the current record.
    fn record_number(&self, p1: u8) -> Result<u8, Status> {
        match p1 {
            0 => self.session.record.ok_or(Status::RecordNotFound),
            0xFF => Err(Status::IncorrectP1P2),
            n => Ok(n),
        }
    }

    /// The records of EF `fid`, if it is a usable record EF and `operation` is allowed.
    fn records(
        &self,
        fid: Fid,
        operation: Operation,
        writes: bool,
        ctx: Context,
    ) -> Result<&RecordFile, Status> {
        let ef = self.ef(fid)?;
        ef.state.usable()?;
        self.authorize(ef.rules.get(operation), writes, ctx)?;
        match &ef.body {
            EfBody::Records(records) => Ok(records),
            EfBody::Transparent(_) => Err(Status::IncompatibleFileStructure),
        }
    }

    fn records_mut(&mut self, fid: Fid) -> Result<&mut RecordFile, Status> {
        match &mut self.ef_mut(fid)?.body {
            EfBody::Records(records) => Ok(records),
            EfBody::Transparent(_) => Err(Status::IncompatibleFileStructure),
        }
    }
}

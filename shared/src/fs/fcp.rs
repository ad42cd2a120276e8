//! File control parameters (FCP, tag `62`): what SELECT returns about a file, and what CREATE
//! FILE is given to make one.

use iso7816_tlv::ber::Tlv;

use super::access::{AccessRules, Condition, DataObjectRules};
use super::file::{Df, Ef, EfBody, FileState, MAX_EF_SIZE, RecordFile, RecordKind};
use super::id::{Aid, Fid, Sfi};
use crate::apdu::Status;
use crate::tlv;

/// File descriptor byte of a transparent (working) EF.
pub const FDB_TRANSPARENT: u8 = 0x01;
/// File descriptor byte of a linear fixed record EF.
pub const FDB_LINEAR_FIXED: u8 = 0x02;
/// File descriptor byte of a linear variable record EF.
pub const FDB_LINEAR_VARIABLE: u8 = 0x04;
/// File descriptor byte of a DF.
pub const FDB_DF: u8 = 0x38;
/// Data coding byte: proprietary write behaviour, one-byte data units (as in
/// the ATR's card capabilities).
pub const DATA_CODING: u8 = 0x21;

/// What CREATE FILE asks for, read from its FCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSpec {
    /// An EF, empty.
    Ef(Ef),
    /// A DF, empty.
    Df(Df),
}

/// The FCP template of an EF.
pub fn ef_fcp(ef: &Ef) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    tlv::push_constructed(&mut out, &[0x62], |out| {
        let size = ef.capacity().min(0xFFFF) as u16;
        tlv::push_primitive(out, &[0x80], &size.to_be_bytes());
        match &ef.body {
            EfBody::Transparent(_) => tlv::push_primitive(out, &[0x82], &[FDB_TRANSPARENT]),
            EfBody::Records(records) => {
                let fdb = match records.kind {
                    RecordKind::LinearFixed => FDB_LINEAR_FIXED,
                    RecordKind::LinearVariable => FDB_LINEAR_VARIABLE,
                };
                let [hi, lo] = records.max_len.to_be_bytes();
                tlv::push_primitive(
                    out,
                    &[0x82],
                    &[fdb, DATA_CODING, hi, lo, records.max_records],
                );
            }
        }
        tlv::push_primitive(out, &[0x83], &ef.fid.to_bytes());
        if let Some(sfi) = ef.sfi {
            tlv::push_primitive(out, &[0x88], &[sfi.value() << 3]);
        }
        tlv::push_primitive(out, &[0x8A], &[ef.state.byte()]);
        tlv::push_primitive(out, &[0x8C], &ef.rules.to_compact());
    });
    out
}

/// The FCP template of a DF; `lcs` is the MF's card life cycle byte, or the DF's own state.
pub fn df_fcp(df: &Df, lcs: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    tlv::push_constructed(&mut out, &[0x62], |out| {
        tlv::push_primitive(out, &[0x82], &[FDB_DF]);
        tlv::push_primitive(out, &[0x83], &df.fid.to_bytes());
        if let Some(aid) = &df.aid {
            tlv::push_primitive(out, &[0x84], aid.as_bytes());
        }
        tlv::push_primitive(out, &[0x8A], &[lcs]);
        tlv::push_primitive(out, &[0x8C], &df.rules.to_compact());
        tlv::push_primitive(out, &[0x86], &df.data_rules.to_bytes());
    });
    out
}

/// Reads the FCP template CREATE FILE carries. Access rules default to "never" where the FCP
/// gives none; the file starts activated unless tag `8A` says otherwise.
pub fn parse_create(data: &[u8]) -> Result<FileSpec, Status> {
    let template = tlv::parse_one(data)?;
    if tlv::tag_number(template.tag()) != 0x62 {
        return Err(Status::IncorrectData);
    }
    let objects: &[Tlv] = match template.value() {
        iso7816_tlv::ber::Value::Constructed(objects) => objects,
        iso7816_tlv::ber::Value::Primitive(_) => return Err(Status::IncorrectData),
    };
    let get = |tag| tlv::find_primitive(objects, tag);

    let descriptor = get(0x82).ok_or(Status::IncorrectData)?;
    let fid = Fid::from_bytes(get(0x83).ok_or(Status::IncorrectData)?)?;
    if fid == Fid::MF {
        return Err(Status::IncorrectData);
    }
    let state = match get(0x8A) {
        None => FileState::Activated,
        Some([lcs]) => FileState::from_byte(*lcs).ok_or(Status::IncorrectData)?,
        Some(_) => return Err(Status::IncorrectData),
    };
    let rules = match get(0x8C) {
        Some(compact) => AccessRules::from_compact(compact)?,
        None => AccessRules::uniform(Condition::NEVER),
    };

    match descriptor {
        [FDB_DF] => {
            let aid = get(0x84).map(Aid::new).transpose()?;
            let data_rules = match get(0x86) {
                Some(bytes) => DataObjectRules::from_bytes(bytes)?,
                None => DataObjectRules {
                    get: Condition::NEVER,
                    put: Condition::NEVER,
                },
            };
            let mut df = Df::new(fid, aid, rules, data_rules);
            df.state = state;
            Ok(FileSpec::Df(df))
        }
        [FDB_TRANSPARENT] | [FDB_TRANSPARENT, _] => {
            let size = match get(0x80) {
                Some([n]) => usize::from(*n),
                Some([hi, lo]) => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => return Err(Status::IncorrectData),
            };
            if size == 0 || size > MAX_EF_SIZE {
                return Err(Status::IncorrectData);
            }
            let sfi = parse_sfi(get(0x88))?;
            Ok(FileSpec::Ef(Ef {
                fid,
                sfi,
                state,
                rules,
                body: EfBody::Transparent(vec![0; size]),
            }))
        }
        [
            fdb @ (FDB_LINEAR_FIXED | FDB_LINEAR_VARIABLE),
            _,
            hi,
            lo,
            max_records,
        ] => {
            let max_len = u16::from_be_bytes([*hi, *lo]);
            if max_len == 0 || !(1..=254).contains(max_records) {
                return Err(Status::IncorrectData);
            }
            let kind = if *fdb == FDB_LINEAR_FIXED {
                RecordKind::LinearFixed
            } else {
                RecordKind::LinearVariable
            };
            let body = EfBody::Records(RecordFile {
                kind,
                max_len,
                max_records: *max_records,
                records: Vec::new(),
            });
            let sfi = parse_sfi(get(0x88))?;
            Ok(FileSpec::Ef(Ef {
                fid,
                sfi,
                state,
                rules,
                body,
            }))
        }
        // Known structures this card does not implement (cyclic, TLV-structured).
        [0x03 | 0x05 | 0x06 | 0x07, ..] | [0x39, ..] => Err(Status::FunctionNotSupported),
        _ => Err(Status::IncorrectData),
    }
}

fn parse_sfi(value: Option<&[u8]>) -> Result<Option<Sfi>, Status> {
    match value {
        None | Some([]) => Ok(None),
        Some([byte]) if byte & 0x07 == 0 => Ok(Some(Sfi::new(byte >> 3)?)),
        Some(_) => Err(Status::IncorrectData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_fcp_round_trips_through_create() {
        let ef = Ef {
            fid: Fid::new(0x5001).unwrap(),
            sfi: Some(Sfi::new(1).unwrap()),
            state: FileState::Activated,
            rules: AccessRules::uniform(Condition::NEVER).with(
                super::super::access::Operation::ReadOrDeleteChild,
                Condition::ALWAYS,
            ),
            body: EfBody::Transparent(vec![0; 64]),
        };
        let fcp = ef_fcp(&ef);
        assert_eq!(
            hex::encode_upper(&fcp),
            "621B80020040820101830250018801088A01058C087FFFFFFFFFFFFF00"
        );
        assert_eq!(parse_create(&fcp), Ok(FileSpec::Ef(ef)));
    }

    #[test]
    fn record_and_df_fcps_round_trip() {
        let ef = Ef {
            fid: Fid::new(0x5002).unwrap(),
            sfi: None,
            state: FileState::Deactivated,
            rules: AccessRules::uniform(Condition::USER_PIN),
            body: EfBody::Records(RecordFile {
                kind: RecordKind::LinearVariable,
                max_len: 40,
                max_records: 4,
                records: vec![],
            }),
        };
        assert_eq!(parse_create(&ef_fcp(&ef)), Ok(FileSpec::Ef(ef)));

        let df = Df::new(
            Fid::DF_PUBLIC,
            Some(Aid::new(&[0xF0, 0x56, 0x53, 0x43, 0x00, 0x01]).unwrap()),
            AccessRules::uniform(Condition::CHANNEL),
            DataObjectRules {
                get: Condition::ALWAYS,
                put: Condition::CHANNEL,
            },
        );
        assert_eq!(parse_create(&df_fcp(&df, 0x05)), Ok(FileSpec::Df(df)));
    }

    #[test]
    fn bad_fcps_are_refused() {
        for (hex, status) in [
            ("6203820101", Status::IncorrectData),                 // no FID
            ("62088202010183023F00", Status::IncorrectData),       // the MF's FID
            ("620B820101830250018002FFFF", Status::IncorrectData), // too large
            ("6209820101830250018001", Status::IncorrectData),     // truncated
            ("63068201018302500180", Status::IncorrectData),       // not a 62 template
            ("6208820106830250018001", Status::IncorrectData),     // value cut off
            ("620B82020601830250018001 10", Status::FunctionNotSupported),
            ("620B820106830250018002000A", Status::FunctionNotSupported), // cyclic
        ] {
            let bytes = hex::decode(hex.replace(' ', "")).unwrap_or_default();
            assert_eq!(parse_create(&bytes), Err(status), "{hex}");
        }
    }
}

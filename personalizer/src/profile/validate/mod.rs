//! Validation: the TOML as written ([`super::raw`]) becomes a [`Profile`], every rule checked
//! once, each failure naming the item and the rule. Value plans are compiled in [`value`].

mod openpgp;
mod piv;
mod value;

use std::collections::HashMap;

use vsc_core::card::MEMORY;
use vsc_core::fs::MAX_EF_SIZE;
use vsc_core::fs::{AccessRules, Aid, DataObjectRules, Fid, Operation, RecordKind, Sfi};
use vsc_core::security::password::{MAX_LEN, MAX_TRIES};
use vsc_core::security::{KeyAlgorithm, KeyRef, KeyUsage, PasswordPolicy, PasswordRef};

use super::access::parse_condition;
use super::raw::{RawDf, RawEf, RawKey, RawPassword, RawProfile, RawUid};
use super::{
    DEFAULT_DATA_OBJECT_MAX, DEFAULT_PRIVATE_AID, DEFAULT_PUBLIC_AID, DataObjectSpec, DfSpec,
    EfPlan, EfSpec, EfStructure, FieldKind, FieldUse, FileSystemSpec, KeySource, KeySpec,
    MAX_DATA_OBJECT, PasswordSource, PasswordSpec, Profile, ProfileError, UidSource,
};
use value::{Room, check_tag_form, parse_tag};

/// FIDs that no EF of a profile may take: the fixed layout's files and ISO 7816-4's reserved
/// values.
const RESERVED_FIDS: [u16; 7] = [0x3F00, 0x2F00, 0x2F02, 0x5000, 0x6000, 0x3FFF, 0xFFFF];
/// The longest application label in EF.DIR.
const MAX_LABEL: usize = 16;
/// The longest record and the most records a record EF may have (card.md).
const MAX_RECORD_LEN: u32 = 0xFFFF;
const MAX_RECORDS: u32 = 254;

pub(super) fn validate(raw: RawProfile, base: &std::path::Path) -> Result<Profile, ProfileError> {
    let mut compiler = Compiler::default();
    if raw.id.trim().is_empty() || raw.id.chars().any(char::is_control) || raw.id.len() > 64 {
        return Err(ProfileError::invalid(
            "id",
            "must be 1 to 64 characters, no control characters",
        ));
    }
    let uid = compiler.uid(&raw.uid, raw.openpgp.is_some())?;
    let file_system = match (raw.public, raw.private, raw.pin, raw.puk) {
        (None, None, None, None) => {
            if !raw.key.is_empty() {
                return Err(ProfileError::invalid(
                    "[[key]]",
                    "AES keys belong to the VSC file system: give [public], [private], [pin] and [puk]",
                ));
            }
            None
        }
        (Some(public), Some(private), Some(pin), Some(puk)) => {
            Some(compiler.file_system(&public, &private, &pin, &puk, &raw.key)?)
        }
        _ => {
            return Err(ProfileError::invalid(
                "profile",
                "[public], [private], [pin] and [puk] go together (the VSC file system): give all four or none",
            ));
        }
    };
    let openpgp = match &raw.openpgp {
        Some(section) => Some(compiler.openpgp(section)?),
        None => None,
    };
    let piv = match &raw.piv {
        Some(section) => Some(compiler.piv(section, base)?),
        None => None,
    };
    match (file_system.is_some(), openpgp.is_some(), piv.is_some()) {
        (false, false, false) => {
            return Err(ProfileError::invalid(
                "profile",
                "it fills nothing: give the VSC file system ([public], [private], [pin], [puk]), [openpgp] or [piv]",
            ));
        }
        (true, false, false) | (false, true, false) | (false, false, true) => {}
        _ => {
            return Err(ProfileError::invalid(
                "profile",
                "a card with more than one of the VSC file system, [openpgp] and [piv] cannot be personalized yet (docs/profile.md)",
            ));
        }
    }
    Ok(Profile {
        id: raw.id,
        version: raw.version,
        description: raw.description,
        uid,
        file_system,
        openpgp,
        piv,
        fields: compiler.fields,
    })
}

#[derive(Default)]
struct Compiler {
    fields: Vec<FieldUse>,
    field_index: HashMap<String, usize>,
    /// Every FID taken so far, with the item that took it.
    fids: HashMap<u16, String>,
}

impl Compiler {
    fn file_system(
        &mut self,
        public: &RawDf,
        private: &RawDf,
        pin: &RawPassword,
        puk: &RawPassword,
        raw_keys: &[RawKey],
    ) -> Result<FileSystemSpec, ProfileError> {
        let public = self.df(public, "public", Fid::DF_PUBLIC, &DEFAULT_PUBLIC_AID)?;
        let private = self.df(private, "private", Fid::DF_PRIVATE, &DEFAULT_PRIVATE_AID)?;
        if public.aid == private.aid {
            return Err(ProfileError::invalid(
                "private DF",
                "its AID is the public DF's; each DF needs its own",
            ));
        }
        let pin = self.password(pin, "[pin]", PasswordRef::UserPin)?;
        let puk = self.password(puk, "[puk]", PasswordRef::Puk)?;
        let mut keys: Vec<KeySpec> = Vec::with_capacity(raw_keys.len());
        for raw_key in raw_keys {
            let key = compile_key(raw_key)?;
            if keys.iter().any(|k| k.reference == key.reference) {
                return Err(ProfileError::DuplicateKey {
                    item: key_item(raw_key),
                    reference: raw_key.reference,
                });
            }
            keys.push(key);
        }
        check_memory(&public, &private)?;
        Ok(FileSystemSpec {
            public,
            private,
            pin,
            puk,
            keys,
        })
    }

    fn uid(&mut self, raw: &RawUid, token: bool) -> Result<UidSource, ProfileError> {
        let item = "[uid]";
        let only = |allowed: &str, given: bool, key: &str| {
            if given {
                Err(ProfileError::invalid(
                    item,
                    format!("`{key}` does not apply to source = \"{allowed}\""),
                ))
            } else {
                Ok(())
            }
        };
        match raw.source.as_str() {
            "field" => {
                only("field", raw.prefix.is_some(), "prefix")?;
                only("field", raw.first.is_some(), "first")?;
                let name = raw.field.as_deref().ok_or_else(|| {
                    ProfileError::invalid(item, "source = \"field\" needs `field`")
                })?;
                let kind = if token {
                    FieldKind::TokenUid
                } else {
                    FieldKind::Uid
                };
                Ok(UidSource::Field(self.use_field(name, item, kind)?))
            }
            "random" => {
                only("random", raw.field.is_some(), "field")?;
                only("random", raw.prefix.is_some(), "prefix")?;
                only("random", raw.first.is_some(), "first")?;
                if token {
                    return Err(ProfileError::invalid(
                        item,
                        "an OpenPGP token's UID is its AID's manufacturer and serial: use source = \"field\" or \"serial\"",
                    ));
                }
                Ok(UidSource::Random)
            }
            "serial" => {
                only("serial", raw.field.is_some(), "field")?;
                let prefix = match &raw.prefix {
                    Some(text) => parse_hex(text).ok_or_else(|| {
                        ProfileError::invalid(item, "prefix must be hexadecimal bytes")
                    })?,
                    None => Vec::new(),
                };
                if prefix.len() > 7 {
                    return Err(ProfileError::OutOfRange {
                        item: item.to_string(),
                        what: "prefix length",
                        value: prefix.len() as u64,
                        min: 0,
                        max: 7,
                    });
                }
                if token && (prefix.len() < 4 || prefix[..2] != [0, 0]) {
                    return Err(ProfileError::invalid(
                        item,
                        "an OpenPGP token's UID is 0000, the manufacturer and the serial: the prefix must be 0000 and the manufacturer (e.g. 0000FF56)",
                    ));
                }
                let first = raw.first.unwrap_or(1);
                let serial_bits = 8 * (8 - prefix.len()) as u32;
                if serial_bits < 64 && first >> serial_bits != 0 {
                    return Err(ProfileError::invalid(
                        item,
                        "first does not fit in the bytes the prefix leaves",
                    ));
                }
                Ok(UidSource::Serial { prefix, first })
            }
            other => Err(ProfileError::invalid(
                item,
                format!("source `{other}`: must be field, random or serial"),
            )),
        }
    }

    fn df(
        &mut self,
        raw: &RawDf,
        area: &'static str,
        fid: Fid,
        default_aid: &[u8],
    ) -> Result<DfSpec, ProfileError> {
        let item = format!("{area} DF");
        let aid_bytes = match &raw.aid {
            Some(text) => parse_hex(text)
                .ok_or_else(|| ProfileError::invalid(&item, "aid must be hexadecimal bytes"))?,
            None => default_aid.to_vec(),
        };
        let aid = Aid::new(&aid_bytes)
            .map_err(|_| ProfileError::invalid(&item, "aid must be 5 to 16 bytes"))?;
        let label_ok = (1..=MAX_LABEL).contains(&raw.label.len())
            && raw.label.bytes().all(|b| (0x20..=0x7E).contains(&b));
        if !label_ok {
            return Err(ProfileError::invalid(
                &item,
                format!("label must be 1 to {MAX_LABEL} printable ASCII characters"),
            ));
        }
        let data_rules = DataObjectRules {
            get: rule(&item, "data_access.get", &raw.data_access.get)?,
            put: rule(&item, "data_access.put", &raw.data_access.put)?,
        };
        let access = &raw.access;
        let rules = rules(
            &item,
            &[
                (Operation::Delete, "access.delete", &access.delete),
                (Operation::Terminate, "access.terminate", &access.terminate),
                (Operation::Activate, "access.activate", &access.activate),
                (
                    Operation::Deactivate,
                    "access.deactivate",
                    &access.deactivate,
                ),
                (
                    Operation::AppendOrCreateDf,
                    "access.create_df",
                    &access.create_df,
                ),
                (
                    Operation::UpdateOrCreateEf,
                    "access.create_ef",
                    &access.create_ef,
                ),
                (
                    Operation::ReadOrDeleteChild,
                    "access.delete_child",
                    &access.delete_child,
                ),
            ],
        )?;
        let mut sfis: HashMap<u8, String> = HashMap::new();
        let mut efs = Vec::with_capacity(raw.ef.len());
        for raw_ef in &raw.ef {
            efs.push(self.ef(raw_ef, area, &mut sfis)?);
        }
        let mut data_objects: Vec<DataObjectSpec> = Vec::with_capacity(raw.data_object.len());
        for raw_do in &raw.data_object {
            let tag_text = raw_do.tag.trim().to_ascii_uppercase();
            let item = match &raw_do.name {
                Some(name) => format!("{area} data object {tag_text} \"{name}\""),
                None => format!("{area} data object {tag_text}"),
            };
            let tag = parse_tag(&item, &raw_do.tag)?;
            if data_objects.iter().any(|d| d.tag == tag) {
                return Err(ProfileError::DuplicateTag {
                    item: format!("{area} DF"),
                    tag: tag_text,
                });
            }
            let max_length = match raw_do.max_length {
                Some(max) => in_range(&item, "max_length", max, 1, MAX_DATA_OBJECT)?,
                None => DEFAULT_DATA_OBJECT_MAX,
            };
            check_tag_form(&item, tag, &raw_do.value)?;
            let value = self.value(&raw_do.value, &item, Room::part(max_length), false, 0)?;
            data_objects.push(DataObjectSpec {
                name: raw_do.name.clone().unwrap_or(tag_text),
                tag,
                max_length,
                value,
            });
        }
        Ok(DfSpec {
            area,
            fid,
            aid,
            label: raw.label.clone(),
            rules,
            data_rules,
            efs,
            data_objects,
        })
    }

    fn ef(
        &mut self,
        raw: &RawEf,
        area: &str,
        sfis: &mut HashMap<u8, String>,
    ) -> Result<EfSpec, ProfileError> {
        let fid_text = raw.fid.trim().to_ascii_uppercase();
        let item = format!("{area} EF {fid_text} \"{}\"", raw.name);
        let fid_value = (fid_text.len() == 4)
            .then(|| u16::from_str_radix(&fid_text, 16).ok())
            .flatten()
            .ok_or_else(|| ProfileError::invalid(&item, "fid must be 4 hexadecimal digits"))?;
        if RESERVED_FIDS.contains(&fid_value) {
            return Err(ProfileError::ReservedFid {
                item,
                fid: fid_text,
            });
        }
        let fid = Fid::new(fid_value).map_err(|_| ProfileError::ReservedFid {
            item: item.clone(),
            fid: fid_text.clone(),
        })?;
        if let Some(other) = self.fids.get(&fid_value) {
            return Err(ProfileError::DuplicateFid {
                item,
                other: other.clone(),
                fid: fid_text,
            });
        }
        self.fids.insert(fid_value, item.clone());
        let sfi = match raw.sfi {
            Some(value) => {
                let sfi = u8::try_from(value)
                    .ok()
                    .and_then(|v| Sfi::new(v).ok())
                    .ok_or_else(|| ProfileError::OutOfRange {
                        item: item.clone(),
                        what: "sfi",
                        value: u64::from(value),
                        min: 1,
                        max: 30,
                    })?;
                if let Some(other) = sfis.get(&sfi.value()) {
                    return Err(ProfileError::SfiClash {
                        item,
                        other: other.clone(),
                        sfi: value,
                    });
                }
                sfis.insert(sfi.value(), item.clone());
                Some(sfi)
            }
            None => None,
        };
        let structure = structure(&item, raw)?;
        let is_records = matches!(structure, EfStructure::Records { .. });
        if raw.append.is_some() && !is_records {
            return Err(ProfileError::invalid(
                &item,
                "append applies to record EFs only",
            ));
        }
        let rules = rules(
            &item,
            &[
                (Operation::Delete, "delete", &raw.delete),
                (Operation::Terminate, "terminate", &raw.terminate),
                (Operation::Activate, "activate", &raw.activate),
                (Operation::Deactivate, "deactivate", &raw.deactivate),
                (Operation::AppendOrCreateDf, "append", &raw.append),
                (
                    Operation::UpdateOrCreateEf,
                    "update",
                    &Some(raw.update.clone()),
                ),
                (
                    Operation::ReadOrDeleteChild,
                    "read",
                    &Some(raw.read.clone()),
                ),
            ],
        )?;
        let content = match structure {
            EfStructure::Transparent { size } => {
                if raw.records.is_some() {
                    return Err(ProfileError::invalid(
                        &item,
                        "a transparent EF takes `value`, not `records`",
                    ));
                }
                match &raw.value {
                    Some(value) => {
                        let size = usize::from(size);
                        let room = Room {
                            max: size,
                            pad_target: Some(size),
                            fixed: None,
                        };
                        EfPlan::Bytes(self.value(value, &item, room, false, 0)?)
                    }
                    None => EfPlan::Nothing,
                }
            }
            EfStructure::Records {
                kind,
                record_len,
                count,
            } => {
                if raw.value.is_some() {
                    return Err(ProfileError::invalid(
                        &item,
                        "a record EF takes `records`, not `value`",
                    ));
                }
                let list = raw.records.as_deref().unwrap_or_default();
                if list.len() > usize::from(count) {
                    return Err(ProfileError::invalid(
                        &item,
                        format!("{} records given, the EF holds {count}", list.len()),
                    ));
                }
                let len = usize::from(record_len);
                let room = match kind {
                    RecordKind::LinearFixed => Room {
                        max: len,
                        pad_target: Some(len),
                        fixed: Some(len),
                    },
                    RecordKind::LinearVariable => Room::part(len),
                };
                let mut plans = Vec::with_capacity(list.len());
                for (i, value) in list.iter().enumerate() {
                    let record_item = format!("{item} record {}", i + 1);
                    plans.push(self.value(value, &record_item, room, false, 0)?);
                }
                if plans.is_empty() {
                    EfPlan::Nothing
                } else {
                    EfPlan::Records(plans)
                }
            }
        };
        Ok(EfSpec {
            name: raw.name.clone(),
            fid,
            sfi,
            rules,
            structure,
            content,
        })
    }

    fn password(
        &mut self,
        raw: &RawPassword,
        item: &str,
        reference: PasswordRef,
    ) -> Result<PasswordSpec, ProfileError> {
        let (min, max) = (raw.min_length, raw.max_length);
        if !(1 <= min && min <= max && max <= u32::from(MAX_LEN)) {
            return Err(ProfileError::PasswordLength {
                item: item.to_string(),
                min,
                max,
            });
        }
        if !(1..=u32::from(MAX_TRIES)).contains(&raw.tries) {
            return Err(ProfileError::Tries {
                item: item.to_string(),
                tries: raw.tries,
            });
        }
        // Checked above: all three fit in a byte.
        let (min8, max8, tries8) = (min as u8, max as u8, raw.tries as u8);
        let policy = PasswordPolicy::new(min8, max8, tries8)
            .map_err(|_| ProfileError::invalid(item, "the card refuses these limits"))?;
        let source = match (&raw.field, raw.generate) {
            (Some(name), None) => {
                let kind = FieldKind::Password {
                    min: min8,
                    max: max8,
                };
                PasswordSource::Field(self.use_field(name, item, kind)?)
            }
            (None, Some(length)) => PasswordSource::Generated {
                length: in_range(item, "generate", length, min as usize, max as usize)? as u8,
            },
            _ => {
                return Err(ProfileError::invalid(
                    item,
                    "give exactly one of field and generate",
                ));
            }
        };
        Ok(PasswordSpec {
            reference,
            policy,
            source,
        })
    }
}

fn structure(item: &str, raw: &RawEf) -> Result<EfStructure, ProfileError> {
    let forbid = |given: bool, key: &str, kind: &str| {
        if given {
            Err(ProfileError::invalid(
                item,
                format!("`{key}` does not apply to a {kind} EF"),
            ))
        } else {
            Ok(())
        }
    };
    let kind = match raw.kind.as_str() {
        "transparent" => {
            forbid(raw.record_length.is_some(), "record_length", "transparent")?;
            forbid(raw.record_count.is_some(), "record_count", "transparent")?;
            let size = raw
                .size
                .ok_or_else(|| ProfileError::invalid(item, "a transparent EF needs `size`"))?;
            let size = in_range(item, "size", size, 1, MAX_EF_SIZE)?;
            return Ok(EfStructure::Transparent { size: size as u16 });
        }
        "linear-fixed" => RecordKind::LinearFixed,
        "linear-variable" => RecordKind::LinearVariable,
        other => {
            return Err(ProfileError::invalid(
                item,
                format!("type `{other}`: must be transparent, linear-fixed or linear-variable"),
            ));
        }
    };
    forbid(raw.size.is_some(), "size", "record")?;
    let need = |value: Option<u32>, key: &str| {
        value.ok_or_else(|| ProfileError::invalid(item, format!("a record EF needs `{key}`")))
    };
    let record_len = need(raw.record_length, "record_length")?;
    let record_len = in_range(
        item,
        "record_length",
        record_len,
        1,
        MAX_RECORD_LEN as usize,
    )?;
    let count = need(raw.record_count, "record_count")?;
    let count = in_range(item, "record_count", count, 1, MAX_RECORDS as usize)?;
    Ok(EfStructure::Records {
        kind,
        record_len: record_len as u16,
        count: count as u8,
    })
}

fn compile_key(raw: &RawKey) -> Result<KeySpec, ProfileError> {
    let item = key_item(raw);
    let reference = u8::try_from(raw.reference)
        .ok()
        .and_then(|r| KeyRef::new(r).ok())
        .ok_or_else(|| ProfileError::KeyReference {
            item: item.clone(),
            reference: raw.reference,
        })?;
    let algorithm = match raw.algorithm.to_ascii_lowercase().as_str() {
        "aes-128" => KeyAlgorithm::Aes128,
        "aes-192" => KeyAlgorithm::Aes192,
        "aes-256" => KeyAlgorithm::Aes256,
        other => {
            return Err(ProfileError::invalid(
                &item,
                format!("algorithm `{other}`: must be aes-128, aes-192 or aes-256"),
            ));
        }
    };
    let mut usage: Option<KeyUsage> = None;
    for name in &raw.usage {
        let flag = match name.as_str() {
            "internal-authenticate" => KeyUsage::INTERNAL_AUTHENTICATE,
            "external-authenticate" => KeyUsage::EXTERNAL_AUTHENTICATE,
            "encipher" => KeyUsage::ENCIPHER,
            "decipher" => KeyUsage::DECIPHER,
            other => {
                return Err(ProfileError::invalid(
                    &item,
                    format!(
                        "usage `{other}`: must be internal-authenticate, \
                         external-authenticate, encipher or decipher"
                    ),
                ));
            }
        };
        usage = Some(usage.map_or(flag, |u| u.union(flag)));
    }
    let usage = usage.ok_or_else(|| ProfileError::invalid(&item, "usage is empty"))?;
    let source = match raw.source.as_str() {
        "generated" => KeySource::Generated,
        "derived" => KeySource::Derived,
        other => {
            return Err(ProfileError::invalid(
                &item,
                format!("source `{other}`: must be generated or derived"),
            ));
        }
    };
    Ok(KeySpec {
        reference,
        name: raw.name.clone().unwrap_or_default(),
        algorithm,
        usage,
        source,
    })
}

fn key_item(raw: &RawKey) -> String {
    match &raw.name {
        Some(name) => format!("key {} \"{name}\"", raw.reference),
        None => format!("key {}", raw.reference),
    }
}

fn rule(item: &str, key: &str, text: &str) -> Result<vsc_core::fs::Condition, ProfileError> {
    parse_condition(text).map_err(|reason| ProfileError::AccessRule {
        item: format!("{item}, {key}"),
        rule: text.to_string(),
        reason,
    })
}

/// Access rules from (operation, key, rule) triples; an absent rule is never.
fn rules(
    item: &str,
    given: &[(Operation, &str, &Option<String>)],
) -> Result<AccessRules, ProfileError> {
    let mut rules = AccessRules::uniform(vsc_core::fs::Condition::NEVER);
    for (operation, key, text) in given {
        if let Some(text) = text {
            rules = rules.with(*operation, rule(item, key, text)?);
        }
    }
    Ok(rules)
}

fn in_range(
    item: &str,
    what: &'static str,
    value: u32,
    min: usize,
    max: usize,
) -> Result<usize, ProfileError> {
    let value = value as usize;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ProfileError::OutOfRange {
            item: item.to_string(),
            what,
            value: value as u64,
            min: min as u64,
            max: max as u64,
        })
    }
}

/// Hexadecimal bytes; spaces and colons between them are allowed.
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(digits).ok()
}

/// The card's memory check, counted as the card counts (`Df::capacity`): each EF its size plus
/// 16, each DF 32, each data object its longest value plus 4; EF.UID and EF.DIR included.
fn check_memory(public: &DfSpec, private: &DfSpec) -> Result<(), ProfileError> {
    let dir_record = public.dir_record().len().max(private.dir_record().len());
    let fixed = (8 + 16) + (2 * dir_record + 16);
    let per_df = |df: &DfSpec| {
        32 + df.efs.iter().map(|ef| ef.capacity() + 16).sum::<usize>()
            + df.data_objects
                .iter()
                .map(|d| d.max_length + 4)
                .sum::<usize>()
    };
    let needed = fixed + per_df(public) + per_df(private);
    if needed > MEMORY {
        return Err(ProfileError::Memory {
            needed,
            available: MEMORY,
        });
    }
    Ok(())
}

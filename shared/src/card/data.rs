//! GET DATA and PUT DATA: the BER-TLV data objects of the current DF, and (P1-P2 `0101` to
//! `0104`, proprietary) the definitions of password and key objects, the channel keys and key
//! values that pre-initialization and personalization write.

use iso7816_tlv::ber::{Tlv, Value};

use super::{Card, Context, LifeCycle, Outcome};
use crate::apdu::{Command, Status};
use crate::fs::DoTag;
use crate::security::key::ChannelKeyMaterial;
use crate::security::{
    KeyAlgorithm, KeyObject, KeyRef, KeyUsage, PasswordPolicy, PasswordRef, SecretBytes,
};
use crate::tlv;

/// PUT DATA: define a password object (`83` reference, `C1` min length, `C2` max length, `C3`
/// tries). GET DATA: every password object's parameters and tries left.
pub const PASSWORD_OBJECTS: u16 = 0x0101;
/// PUT DATA: define a key object (`83` reference, `80` algorithm, `95` usage). GET DATA: every
/// key object's reference, algorithm, usage and whether it is loaded (never its value).
pub const KEY_OBJECTS: u16 = 0x0102;
/// PUT DATA: the personalization channel keys (`C0` K_enc, `C1` K_mac); ends the creation state.
pub const CHANNEL_KEYS: u16 = 0x0103;
/// PUT DATA: a key value (`83` reference, `8F` value).
pub const KEY_VALUE: u16 = 0x0104;

impl Card {
    pub(super) fn get_data(
        &mut self,
        command: &Command,
        ctx: Context,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if command.ins == 0xCB {
            return self.get_data_list(command, ctx, out);
        }
        if !command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        match u16::from_be_bytes([command.p1, command.p2]) {
            PASSWORD_OBJECTS => {
                self.describe_passwords(out);
                Ok(Status::Success)
            }
            KEY_OBJECTS => {
                self.describe_keys(out);
                Ok(Status::Success)
            }
            0x0100..=0x01FF => Err(Status::ReferencedDataNotFound),
            value => {
                let tag = DoTag::new(value)?;
                let df = self.current_df()?;
                df.state.usable()?;
                self.authorize(df.data_rules.get, false, ctx)?;
                out.extend_from_slice(df.data_object(tag).ok_or(Status::ReferencedDataNotFound)?);
                Ok(Status::Success)
            }
        }
    }

    /// GET DATA (odd): P1-P2 `3FFF`, a tag list `5C`; answers each listed object present, whole.
    fn get_data_list(&mut self, command: &Command, ctx: Context, out: &mut Vec<u8>) -> Outcome {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(Status::IncorrectP1P2);
        }
        let list = tlv::parse_one(command.data)?;
        if tlv::tag_number(list.tag()) != 0x5C {
            return Err(Status::IncorrectData);
        }
        let tags = split_tags(tlv::primitive(&list).ok_or(Status::IncorrectData)?)?;
        let df = self.current_df()?;
        df.state.usable()?;
        self.authorize(df.data_rules.get, false, ctx)?;
        let start = out.len();
        for tag in tags {
            if let Some(value) = df.data_object(tag) {
                tlv::push_primitive(out, &tag.to_bytes(), value);
            }
        }
        if out.len() == start {
            Err(Status::ReferencedDataNotFound)
        } else {
            Ok(Status::Success)
        }
    }

    pub(super) fn put_data(&mut self, command: &Command, ctx: Context) -> Outcome {
        if command.ins == 0xDB {
            return self.put_data_list(command, ctx);
        }
        match u16::from_be_bytes([command.p1, command.p2]) {
            PASSWORD_OBJECTS => self.define_password(command.data),
            KEY_OBJECTS => self.define_key(command.data),
            CHANNEL_KEYS => self.load_channel_keys(command.data),
            KEY_VALUE => self.load_key(command.data, ctx),
            0x0100..=0x01FF => Err(Status::ReferencedDataNotFound),
            value => {
                let tag = DoTag::new(value)?;
                self.put_objects(&[(tag, command.data)], ctx)
            }
        }
    }

    /// PUT DATA (odd): P1-P2 `3FFF`, one or more whole data objects.
    fn put_data_list(&mut self, command: &Command, ctx: Context) -> Outcome {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(Status::IncorrectP1P2);
        }
        if command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        let objects = tlv::parse_all(command.data)?;
        let values: Vec<(DoTag, Vec<u8>)> = objects
            .iter()
            .map(|object| {
                let tag =
                    DoTag::new(tlv::tag_number(object.tag())).map_err(|_| Status::IncorrectData)?;
                Ok((tag, value_bytes(object)))
            })
            .collect::<Result<_, Status>>()?;
        let borrowed: Vec<(DoTag, &[u8])> =
            values.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        self.put_objects(&borrowed, ctx)
    }

    /// Sets data objects of the current DF, all or none.
    fn put_objects(&mut self, objects: &[(DoTag, &[u8])], ctx: Context) -> Outcome {
        let df = self.current_df()?;
        df.state.usable()?;
        self.authorize(df.data_rules.put, true, ctx)?;
        let mut growth = 0;
        for (tag, value) in objects {
            if tag.is_constructed() && !value.is_empty() {
                tlv::parse_all(value)?;
            }
            let old = df.data_object(*tag).map_or(0, <[u8]>::len);
            growth += value.len().saturating_sub(old);
        }
        self.check_memory(growth)?;
        let df = self.current_df_mut()?;
        for (tag, value) in objects {
            df.put_data_object(*tag, value);
        }
        self.touch();
        Ok(Status::Success)
    }

    fn define_password(&mut self, data: &[u8]) -> Outcome {
        self.in_creation()?;
        let objects = tlv::parse_all(data)?;
        let byte = |tag| match tlv::find_primitive(&objects, tag) {
            Some([b]) => Ok(*b),
            _ => Err(Status::IncorrectData),
        };
        let reference = PasswordRef::from_p2(byte(0x83)?).map_err(|_| Status::IncorrectData)?;
        let policy = PasswordPolicy::new(byte(0xC1)?, byte(0xC2)?, byte(0xC3)?)?;
        self.state.passwords.define(reference, policy);
        self.touch();
        Ok(Status::Success)
    }

    fn define_key(&mut self, data: &[u8]) -> Outcome {
        self.in_creation()?;
        let objects = tlv::parse_all(data)?;
        let byte = |tag| match tlv::find_primitive(&objects, tag) {
            Some([b]) => Ok(*b),
            _ => Err(Status::IncorrectData),
        };
        let reference = KeyRef::new(byte(0x83)?).map_err(|_| Status::IncorrectData)?;
        let algorithm = KeyAlgorithm::from_code(byte(0x80)?)?;
        let usage = KeyUsage::from_byte(byte(0x95)?)?;
        self.state
            .keys
            .define(KeyObject::new(reference, algorithm, usage));
        self.touch();
        Ok(Status::Success)
    }

    /// Loads K_enc and K_mac; the card is pre-initialized from now on.
    fn load_channel_keys(&mut self, data: &[u8]) -> Outcome {
        self.in_creation()?;
        let objects = tlv::parse_all(data)?;
        let key = |tag| match tlv::find_primitive(&objects, tag) {
            Some(value) if matches!(value.len(), 16 | 24 | 32) => Ok(SecretBytes::new(value)),
            _ => Err(Status::IncorrectData),
        };
        let material = ChannelKeyMaterial {
            enc: key(0xC0)?,
            mac: key(0xC1)?,
        };
        self.state.keys.channel = Some(material);
        self.state.life_cycle = LifeCycle::Initialisation;
        self.touch();
        Ok(Status::Success)
    }

    /// Loads a key value: in the creation state, or through the channel while pre-initialized.
    fn load_key(&mut self, data: &[u8], ctx: Context) -> Outcome {
        match self.state.life_cycle {
            LifeCycle::Creation => {}
            LifeCycle::Initialisation if ctx.channel => {}
            LifeCycle::Initialisation => return Err(Status::SecurityStatusNotSatisfied),
            LifeCycle::Operational | LifeCycle::Terminated => {
                return Err(Status::ConditionsOfUseNotSatisfied);
            }
        }
        let objects = tlv::parse_all(data)?;
        let reference = match tlv::find_primitive(&objects, 0x83) {
            Some([r]) => KeyRef::new(*r).map_err(|_| Status::IncorrectData)?,
            _ => return Err(Status::IncorrectData),
        };
        let value = tlv::find_primitive(&objects, 0x8F).ok_or(Status::IncorrectData)?;
        let key = self
            .state
            .keys
            .get_mut(reference)
            .ok_or(Status::ReferencedDataNotFound)?;
        key.load(value)?;
        self.touch();
        Ok(Status::Success)
    }

    /// Structure (password and key objects, channel keys) is made only on a blank chip.
    fn in_creation(&self) -> Result<(), Status> {
        if self.state.life_cycle == LifeCycle::Creation {
            Ok(())
        } else {
            Err(Status::ConditionsOfUseNotSatisfied)
        }
    }

    /// `E1` per password: `83` reference, `C1` min, `C2` max, `C3` tries, `C4` tries left, `C5`
    /// 01 when set.
    fn describe_passwords(&self, out: &mut Vec<u8>) {
        for reference in [PasswordRef::UserPin, PasswordRef::Puk] {
            if let Some(password) = self.state.passwords.get(reference) {
                let p = password.policy;
                tlv::push_constructed(out, &[0xE1], |out| {
                    tlv::push_primitive(out, &[0x83], &[reference.byte()]);
                    tlv::push_primitive(out, &[0xC1], &[p.min_len]);
                    tlv::push_primitive(out, &[0xC2], &[p.max_len]);
                    tlv::push_primitive(out, &[0xC3], &[p.max_tries]);
                    tlv::push_primitive(out, &[0xC4], &[password.tries_left]);
                    tlv::push_primitive(out, &[0xC5], &[u8::from(password.is_set())]);
                });
            }
        }
    }

    /// `E2` per key: `83` reference, `80` algorithm, `95` usage, `C5` 01 when loaded.
    fn describe_keys(&self, out: &mut Vec<u8>) {
        for key in self.state.keys.iter() {
            tlv::push_constructed(out, &[0xE2], |out| {
                tlv::push_primitive(out, &[0x83], &[key.reference.value()]);
                tlv::push_primitive(out, &[0x80], &[key.algorithm.code()]);
                tlv::push_primitive(out, &[0x95], &[key.usage.byte()]);
                tlv::push_primitive(out, &[0xC5], &[u8::from(key.is_loaded())]);
            });
        }
    }
}

/// The tags of a tag list (`5C` value): one- or two-byte tags one after the other.
fn split_tags(mut bytes: &[u8]) -> Result<Vec<DoTag>, Status> {
    let mut tags = Vec::new();
    while let Some(&first) = bytes.first() {
        let len = if first & 0x1F == 0x1F { 2 } else { 1 };
        let tag = bytes.get(..len).ok_or(Status::IncorrectData)?;
        let value = tag.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b));
        tags.push(DoTag::new(value).map_err(|_| Status::IncorrectData)?);
        bytes = &bytes[len..];
    }
    if tags.is_empty() {
        Err(Status::IncorrectData)
    } else {
        Ok(tags)
    }
}

/// The value field of a parsed object, as bytes.
fn value_bytes(object: &Tlv) -> Vec<u8> {
    match object.value() {
        Value::Primitive(bytes) => bytes.clone(),
        Value::Constructed(children) => children.iter().flat_map(Tlv::to_vec).collect(),
    }
}

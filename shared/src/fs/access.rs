//! Access rules: the security condition each operation on a file needs, and their encoding as
//! ISO 7816-4 compact security attributes (FCP tag `8C`).
//!
//! A security condition is one SC byte (see docs/card.md): `00` always, `FF` never, otherwise
//! b8 = all conditions (1) or at least one (0), b7 = the personalization channel, b6 = external
//! authentication with the key whose reference is b4-b1, b5 = the user PIN verified.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::apdu::Status;

/// What must hold for an operation to be allowed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Condition(u8);

const ALL: u8 = 0x80;
const CHANNEL: u8 = 0x40;
const KEY: u8 = 0x20;
const PIN: u8 = 0x10;

impl Condition {
    /// Always allowed.
    pub const ALWAYS: Condition = Condition(0x00);
    /// Never allowed.
    pub const NEVER: Condition = Condition(0xFF);
    /// Allowed through the personalization channel (secure messaging), which exists only while
    /// the card is pre-initialized.
    pub const CHANNEL: Condition = Condition(CHANNEL);
    /// Allowed once the user PIN is verified.
    pub const USER_PIN: Condition = Condition(PIN);

    /// Allowed once the terminal authenticated with key `reference` (1 to 15; keys 16 to 31
    /// cannot guard files) by EXTERNAL AUTHENTICATE.
    pub const fn key(reference: u8) -> Result<Condition, InvalidCondition> {
        match reference {
            1..=15 => Ok(Condition(KEY | reference)),
            _ => Err(InvalidCondition(KEY | reference)),
        }
    }

    /// A condition from its SC byte.
    pub const fn from_byte(byte: u8) -> Result<Condition, InvalidCondition> {
        let key_nibble = byte & 0x0F;
        match byte {
            0x00 | 0xFF => Ok(Condition(byte)),
            _ if byte & (CHANNEL | KEY | PIN) == 0 => Err(InvalidCondition(byte)),
            // The key reference nibble is present exactly when external authentication is.
            _ if (byte & KEY != 0) != (key_nibble != 0) => Err(InvalidCondition(byte)),
            _ => Ok(Condition(byte)),
        }
    }

    /// The SC byte.
    pub const fn byte(self) -> u8 {
        self.0
    }

    /// Both `self` and `other` must hold.
    pub fn and(self, other: Condition) -> Result<Condition, InvalidCondition> {
        self.combine(other, true)
    }

    /// At least one of `self` and `other` must hold.
    pub fn or(self, other: Condition) -> Result<Condition, InvalidCondition> {
        self.combine(other, false)
    }

    fn combine(self, other: Condition, all: bool) -> Result<Condition, InvalidCondition> {
        let (a, b) = (self.0, other.0);
        // Each side is a single condition, or already combined the same way.
        let fits = |c: u8| {
            c != 0xFF && c & 0x70 != 0 && ((c & 0x70).count_ones() == 1 || (c & ALL != 0) == all)
        };
        let key_clash = a & KEY != 0 && b & KEY != 0 && a & 0x0F != b & 0x0F;
        if !fits(a) || !fits(b) || key_clash {
            return Err(InvalidCondition(a | b));
        }
        Condition::from_byte(a | b | if all { ALL } else { 0 })
    }

    /// Whether the condition holds in `status`.
    pub fn is_met(self, status: &SecurityStatus) -> bool {
        match self.0 {
            0x00 => true,
            0xFF => false,
            byte => {
                let mut required = 0;
                let mut met = 0;
                let mut check = |bit: u8, ok: bool| {
                    if byte & bit != 0 {
                        required += 1;
                        met += u8::from(ok);
                    }
                };
                check(CHANNEL, status.channel);
                check(PIN, status.user_pin);
                check(KEY, status.authenticated_keys & (1 << (byte & 0x0F)) != 0);
                if byte & ALL != 0 {
                    met == required
                } else {
                    met > 0
                }
            }
        }
    }
}

impl TryFrom<u8> for Condition {
    type Error = InvalidCondition;
    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        Condition::from_byte(byte)
    }
}

impl From<Condition> for u8 {
    fn from(condition: Condition) -> u8 {
        condition.0
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({self})")
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x00 => return f.write_str("always"),
            0xFF => return f.write_str("never"),
            _ => {}
        }
        let mut parts = Vec::new();
        if self.0 & CHANNEL != 0 {
            parts.push("channel".to_string());
        }
        if self.0 & PIN != 0 {
            parts.push("pin".to_string());
        }
        if self.0 & KEY != 0 {
            parts.push(format!("key {:02X}", self.0 & 0x0F));
        }
        f.write_str(&parts.join(if self.0 & ALL != 0 { " and " } else { " or " }))
    }
}

/// An SC byte that this card does not define.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:02X} is not a security condition this card knows")]
pub struct InvalidCondition(pub u8);

impl From<InvalidCondition> for Status {
    fn from(_: InvalidCondition) -> Status {
        Status::IncorrectData
    }
}

/// What the card knows of the terminal in the current command: the input of every access check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecurityStatus {
    /// The command came through the personalization channel.
    pub channel: bool,
    /// The user PIN is verified.
    pub user_pin: bool,
    /// Bit `k` set: key `k` authenticated the terminal.
    pub authenticated_keys: u32,
}

/// An operation governed by an access rule. The first four are the same for EFs and DFs; the
/// last three differ (ISO 7816-4 access mode byte, b3 to b1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// DELETE FILE of the file itself (AM b7).
    Delete,
    /// TERMINATE DF / TERMINATE EF (AM b6).
    Terminate,
    /// ACTIVATE FILE (AM b5).
    Activate,
    /// DEACTIVATE FILE (AM b4).
    Deactivate,
    /// EF: APPEND RECORD (AM b3). DF: CREATE FILE of a DF.
    AppendOrCreateDf,
    /// EF: UPDATE BINARY, UPDATE RECORD, ERASE BINARY (AM b2). DF: CREATE FILE of an EF.
    UpdateOrCreateEf,
    /// EF: READ BINARY, READ RECORD (AM b1). DF: DELETE FILE of a child.
    ReadOrDeleteChild,
}

impl Operation {
    /// All operations, in access mode byte order (b7 to b1).
    pub const ALL: [Operation; 7] = [
        Operation::Delete,
        Operation::Terminate,
        Operation::Activate,
        Operation::Deactivate,
        Operation::AppendOrCreateDf,
        Operation::UpdateOrCreateEf,
        Operation::ReadOrDeleteChild,
    ];

    /// The operation's bit in the access mode byte.
    pub const fn bit(self) -> u8 {
        match self {
            Operation::Delete => 0x40,
            Operation::Terminate => 0x20,
            Operation::Activate => 0x10,
            Operation::Deactivate => 0x08,
            Operation::AppendOrCreateDf => 0x04,
            Operation::UpdateOrCreateEf => 0x02,
            Operation::ReadOrDeleteChild => 0x01,
        }
    }

    /// Whether the operation only reads (everything else changes the card).
    pub const fn is_read(self) -> bool {
        matches!(self, Operation::ReadOrDeleteChild)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The access rules of one file: a condition per operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessRules([Condition; 7]);

impl AccessRules {
    /// Every operation needs `condition`.
    pub const fn uniform(condition: Condition) -> AccessRules {
        AccessRules([condition; 7])
    }

    /// The same rules with `operation` needing `condition`.
    pub fn with(mut self, operation: Operation, condition: Condition) -> AccessRules {
        self.0[operation.index()] = condition;
        self
    }

    /// The condition `operation` needs.
    pub fn get(&self, operation: Operation) -> Condition {
        self.0[operation.index()]
    }

    /// The compact format: the access mode byte (every bit set) and one SC byte per operation.
    pub fn to_compact(&self) -> [u8; 8] {
        let mut out = [0x7F, 0, 0, 0, 0, 0, 0, 0];
        for (slot, condition) in out[1..].iter_mut().zip(self.0) {
            *slot = condition.byte();
        }
        out
    }

    /// Reads the compact format. An operation whose AM bit is clear is never allowed.
    pub fn from_compact(bytes: &[u8]) -> Result<AccessRules, InvalidCondition> {
        let Some((&am, mut scs)) = bytes.split_first() else {
            return Err(InvalidCondition(0));
        };
        if am & 0x80 != 0 {
            return Err(InvalidCondition(am));
        }
        let mut rules = AccessRules::uniform(Condition::NEVER);
        for operation in Operation::ALL {
            if am & operation.bit() != 0 {
                let Some((&sc, rest)) = scs.split_first() else {
                    return Err(InvalidCondition(am));
                };
                rules.0[operation.index()] = Condition::from_byte(sc)?;
                scs = rest;
            }
        }
        if scs.is_empty() {
            Ok(rules)
        } else {
            Err(InvalidCondition(am))
        }
    }
}

impl fmt::Debug for AccessRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| format!("{c}")))
            .finish()
    }
}

/// The rules for the BER-TLV data objects of a DF: GET DATA and PUT DATA (FCP tag `86`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataObjectRules {
    /// What GET DATA needs.
    pub get: Condition,
    /// What PUT DATA needs.
    pub put: Condition,
}

impl DataObjectRules {
    /// The two SC bytes: GET DATA, then PUT DATA.
    pub fn to_bytes(self) -> [u8; 2] {
        [self.get.byte(), self.put.byte()]
    }

    /// Reads the two SC bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<DataObjectRules, InvalidCondition> {
        match bytes {
            [get, put] => Ok(DataObjectRules {
                get: Condition::from_byte(*get)?,
                put: Condition::from_byte(*put)?,
            }),
            _ => Err(InvalidCondition(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sc_bytes() {
        assert_eq!(Condition::from_byte(0x00), Ok(Condition::ALWAYS));
        assert_eq!(Condition::from_byte(0x10), Ok(Condition::USER_PIN));
        assert_eq!(Condition::from_byte(0x23).map(Condition::byte), Ok(0x23));
        assert!(Condition::from_byte(0x20).is_err(), "key bit without a key");
        assert!(
            Condition::from_byte(0x13).is_err(),
            "key nibble without the key bit"
        );
        assert!(Condition::from_byte(0x80).is_err(), "no condition at all");
        assert!(Condition::key(16).is_err());
        assert_eq!(
            Condition::USER_PIN
                .or(Condition::key(3).unwrap())
                .unwrap()
                .byte(),
            0x33
        );
        assert_eq!(
            Condition::USER_PIN
                .and(Condition::key(3).unwrap())
                .unwrap()
                .byte(),
            0xB3
        );
    }

    #[test]
    fn conditions_are_checked() {
        let nothing = SecurityStatus::default();
        let pin = SecurityStatus {
            user_pin: true,
            ..nothing
        };
        let key3 = SecurityStatus {
            authenticated_keys: 1 << 3,
            ..nothing
        };
        let both = SecurityStatus {
            user_pin: true,
            authenticated_keys: 1 << 3,
            ..nothing
        };
        let pin_or_key = Condition::USER_PIN.or(Condition::key(3).unwrap()).unwrap();
        let pin_and_key = Condition::USER_PIN.and(Condition::key(3).unwrap()).unwrap();
        assert!(Condition::ALWAYS.is_met(&nothing));
        assert!(!Condition::NEVER.is_met(&both));
        assert!(!Condition::USER_PIN.is_met(&nothing) && Condition::USER_PIN.is_met(&pin));
        assert!(pin_or_key.is_met(&pin) && pin_or_key.is_met(&key3));
        assert!(!pin_and_key.is_met(&pin) && !pin_and_key.is_met(&key3));
        assert!(pin_and_key.is_met(&both));
        assert!(!Condition::CHANNEL.is_met(&both));
    }

    #[test]
    fn compact_format_round_trips() {
        let rules = AccessRules::uniform(Condition::NEVER)
            .with(Operation::ReadOrDeleteChild, Condition::USER_PIN)
            .with(Operation::UpdateOrCreateEf, Condition::CHANNEL);
        let bytes = rules.to_compact();
        assert_eq!(bytes, [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x10]);
        assert_eq!(AccessRules::from_compact(&bytes), Ok(rules));
        // Only READ given: everything else is never.
        let read_only = AccessRules::from_compact(&[0x01, 0x00]).unwrap();
        assert_eq!(
            read_only.get(Operation::ReadOrDeleteChild),
            Condition::ALWAYS
        );
        assert_eq!(read_only.get(Operation::UpdateOrCreateEf), Condition::NEVER);
        assert!(
            AccessRules::from_compact(&[0x03, 0x00]).is_err(),
            "SC byte missing"
        );
        assert!(
            AccessRules::from_compact(&[0x01, 0x00, 0x00]).is_err(),
            "SC byte extra"
        );
        assert!(AccessRules::from_compact(&[]).is_err());
    }
}

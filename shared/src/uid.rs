//! The card's unique identifier: 8 bytes, the content of EF.UID, the key of everything the
//! bureau keeps about a card. One type for the whole workspace.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A card's UID: 8 bytes, written as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Uid(pub [u8; 8]);

/// Why text or bytes are not a UID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// Not 8 bytes.
    #[error("a UID is 8 bytes, not {0}")]
    Length(usize),
    /// Not hex digits.
    #[error("{0:?} is not a UID: 16 hex digits, optionally grouped with spaces")]
    NotHex(String),
}

impl Uid {
    /// The length of a UID in bytes.
    pub const LEN: usize = 8;

    /// The UID's bytes.
    pub fn bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// Reads 16 hex digits, in either case, optionally grouped with spaces
    /// (`5653434400001001`, `56 53 43 44 00 00 10 01`), as profiles and tools write them.
    pub fn parse(text: &str) -> Result<Uid, UidError> {
        let digits: String = text.chars().filter(|c| *c != ' ').collect();
        let bytes = hex::decode(&digits).map_err(|_| UidError::NotHex(text.to_string()))?;
        Uid::try_from(bytes.as_slice()).map_err(|_| UidError::NotHex(text.to_string()))
    }
}

impl From<[u8; 8]> for Uid {
    fn from(bytes: [u8; 8]) -> Self {
        Uid(bytes)
    }
}

impl TryFrom<&[u8]> for Uid {
    type Error = UidError;

    fn try_from(bytes: &[u8]) -> Result<Self, UidError> {
        <[u8; 8]>::try_from(bytes)
            .map(Uid)
            .map_err(|_| UidError::Length(bytes.len()))
    }
}

impl FromStr for Uid {
    type Err = UidError;

    fn from_str(text: &str) -> Result<Self, UidError> {
        Uid::parse(text)
    }
}

impl AsRef<[u8]> for Uid {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Uid {
    /// 16 uppercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_people_write() {
        let uid = Uid([0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x10, 0x01]);
        for text in [
            "5653434400001001",
            "56 53 43 44 00 00 10 01",
            "565343440000100a",
        ] {
            assert!(Uid::parse(text).is_ok(), "{text}");
        }
        assert_eq!(Uid::parse("56 53 43 44 00 00 10 01").unwrap(), uid);
        assert_eq!(uid.to_string(), "5653434400001001");
        assert_eq!(format!("{uid:?}"), "Uid(5653434400001001)");
    }

    #[test]
    fn refuses_what_is_not_a_uid() {
        for text in [
            "",
            "56534344000010",
            "565343440000100101",
            "56534344000010zz",
            "0x56534344",
        ] {
            assert!(Uid::parse(text).is_err(), "{text:?}");
        }
        assert_eq!(Uid::try_from(&[1u8, 2][..]), Err(UidError::Length(2)));
    }

    proptest! {
        #[test]
        fn display_parses_back(bytes in any::<[u8; 8]>()) {
            let uid = Uid(bytes);
            prop_assert_eq!(Uid::parse(&uid.to_string()).unwrap(), uid);
        }
    }
}

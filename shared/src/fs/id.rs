//! Identifiers of the file system: file IDs, short EF identifiers and application identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::apdu::Status;

/// A file identifier (FID): two bytes naming an EF or a DF within its parent.
///
/// `3F00` is reserved for the MF, `3FFF` (current DF in paths) and `FFFF` are never file IDs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Fid(u16);

impl Fid {
    /// The master file, `3F00`.
    pub const MF: Fid = Fid(0x3F00);
    /// EF.DIR, the application directory, `2F00`.
    pub const EF_DIR: Fid = Fid(0x2F00);
    /// EF.UID, the card's unique identifier, `2F02`.
    pub const EF_UID: Fid = Fid(0x2F02);
    /// DF.PUBLIC, the public area, `5000`.
    pub const DF_PUBLIC: Fid = Fid(0x5000);
    /// DF.PRIVATE, the PIN-protected private area, `6000`.
    pub const DF_PRIVATE: Fid = Fid(0x6000);

    /// A file identifier, if `value` can name a file (`3FFF` and `FFFF` cannot).
    pub const fn new(value: u16) -> Result<Fid, InvalidId> {
        match value {
            0x3FFF | 0xFFFF => Err(InvalidId::Fid(value)),
            _ => Ok(Fid(value)),
        }
    }

    /// Reads a file identifier from exactly two bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Fid, InvalidId> {
        match bytes {
            [hi, lo] => Fid::new(u16::from_be_bytes([*hi, *lo])),
            _ => Err(InvalidId::FidLength(bytes.len())),
        }
    }

    /// The identifier as a number.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// The two bytes, big-endian.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl TryFrom<u16> for Fid {
    type Error = InvalidId;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Fid::new(value)
    }
}

impl From<Fid> for u16 {
    fn from(fid: Fid) -> u16 {
        fid.0
    }
}

impl fmt::Debug for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fid({:04X})", self.0)
    }
}

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A short EF identifier (SFI), 1 to 30, usable in READ BINARY, READ RECORD and friends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Sfi(u8);

impl Sfi {
    /// A short EF identifier, if `value` is 1 to 30.
    pub const fn new(value: u8) -> Result<Sfi, InvalidId> {
        match value {
            1..=30 => Ok(Sfi(value)),
            _ => Err(InvalidId::Sfi(value)),
        }
    }

    /// The identifier as a number.
    pub const fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Sfi {
    type Error = InvalidId;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Sfi::new(value)
    }
}

impl From<Sfi> for u8 {
    fn from(sfi: Sfi) -> u8 {
        sfi.0
    }
}

impl fmt::Debug for Sfi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sfi({:02X})", self.0)
    }
}

/// An application identifier (DF name): 5 to 16 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Aid(Vec<u8>);

impl Aid {
    /// The shortest and longest DF names ISO 7816-4 allows.
    pub const LEN: std::ops::RangeInclusive<usize> = 5..=16;

    /// An application identifier, if `bytes` is 5 to 16 bytes long.
    pub fn new(bytes: &[u8]) -> Result<Aid, InvalidId> {
        if Aid::LEN.contains(&bytes.len()) {
            Ok(Aid(bytes.to_vec()))
        } else {
            Err(InvalidId::AidLength(bytes.len()))
        }
    }

    /// The bytes of the name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for Aid {
    type Error = InvalidId;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Aid::new(&bytes)
    }
}

impl From<Aid> for Vec<u8> {
    fn from(aid: Aid) -> Vec<u8> {
        aid.0
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({})", hex::encode_upper(&self.0))
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

/// Why a value is not a valid identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// `3FFF` and `FFFF` are reserved and name no file.
    #[error("{0:04X} is reserved and cannot be a file identifier")]
    Fid(u16),
    /// A file identifier is two bytes.
    #[error("a file identifier is 2 bytes, not {0}")]
    FidLength(usize),
    /// A short EF identifier is 1 to 30.
    #[error("a short EF identifier is 1 to 30, not {0}")]
    Sfi(u8),
    /// An AID is 5 to 16 bytes.
    #[error("an application identifier is 5 to 16 bytes, not {0}")]
    AidLength(usize),
}

impl From<InvalidId> for Status {
    fn from(_: InvalidId) -> Status {
        Status::IncorrectData
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_values_are_refused() {
        assert_eq!(Fid::new(0x3FFF), Err(InvalidId::Fid(0x3FFF)));
        assert_eq!(Fid::new(0xFFFF), Err(InvalidId::Fid(0xFFFF)));
        assert_eq!(Fid::from_bytes(&[0x50, 0x01]).map(Fid::value), Ok(0x5001));
        assert_eq!(Fid::from_bytes(&[0x50]), Err(InvalidId::FidLength(1)));
        assert!(Sfi::new(0).is_err() && Sfi::new(31).is_err() && Sfi::new(30).is_ok());
        assert!(Aid::new(&[1, 2, 3, 4]).is_err() && Aid::new(&[0; 17]).is_err());
        assert!(Aid::new(&[0xF0, 0x56, 0x53, 0x43, 0x01]).is_ok());
    }
}

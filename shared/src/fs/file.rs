//! Files: elementary files (transparent and record EFs), dedicated files with their BER-TLV data
//! objects, and file life cycle states.

use serde::{Deserialize, Serialize};

use super::access::{AccessRules, DataObjectRules};
use super::id::{Aid, Fid, Sfi};
use crate::apdu::Status;

/// The largest EF: offsets are 15 bits in READ BINARY, 16 in its odd form.
pub const MAX_EF_SIZE: usize = 0x7FFF;

/// The life cycle state of a file (ISO 7816-4 §5.3.3.2, LCS byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileState {
    /// Operational, activated (`05`).
    Activated,
    /// Operational, deactivated (`04`): only ACTIVATE, DELETE and TERMINATE apply.
    Deactivated,
    /// Terminated (`0C`): nothing applies any more.
    Terminated,
}

impl FileState {
    /// The LCS byte.
    pub fn byte(self) -> u8 {
        match self {
            FileState::Activated => 0x05,
            FileState::Deactivated => 0x04,
            FileState::Terminated => 0x0C,
        }
    }

    /// The state an LCS byte gives a file created by CREATE FILE.
    pub fn from_byte(byte: u8) -> Option<FileState> {
        match byte {
            0x05 | 0x07 => Some(FileState::Activated),
            0x04 | 0x06 => Some(FileState::Deactivated),
            0x0C..=0x0F => Some(FileState::Terminated),
            _ => None,
        }
    }

    /// The status a command on a file in this state gets, if it cannot proceed.
    pub fn usable(self) -> Result<(), Status> {
        match self {
            FileState::Activated => Ok(()),
            FileState::Deactivated | FileState::Terminated => {
                Err(Status::ConditionsOfUseNotSatisfied)
            }
        }
    }
}

/// An elementary file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ef {
    /// Its file identifier.
    pub fid: Fid,
    /// Its short EF identifier, if it has one.
    pub sfi: Option<Sfi>,
    /// Its life cycle state.
    pub state: FileState,
    /// Its access rules.
    pub rules: AccessRules,
    /// Its contents.
    pub body: EfBody,
}

/// The structure and contents of an EF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EfBody {
    /// A transparent EF: a fixed number of bytes, erased to `00`. Serialized as its size and
    /// its bytes up to the last non-zero one, so that a large, mostly empty EF costs an image
    /// only what it holds.
    Transparent(#[serde(with = "trimmed")] Vec<u8>),
    /// A record EF.
    Records(RecordFile),
}

/// How the records of a record EF are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// Every record has exactly `max_len` bytes.
    LinearFixed,
    /// Records have 1 to `max_len` bytes.
    LinearVariable,
}

/// The records of a record EF, numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFile {
    /// Fixed or variable length.
    pub kind: RecordKind,
    /// The record length (fixed) or the longest record (variable), 1 to 65 535.
    pub max_len: u16,
    /// How many records the EF can hold (1 to 254).
    pub max_records: u8,
    /// The records written so far.
    pub records: Vec<Vec<u8>>,
}

impl RecordFile {
    /// The record `number` (1-based).
    pub fn get(&self, number: u8) -> Result<&[u8], Status> {
        usize::from(number)
            .checked_sub(1)
            .and_then(|i| self.records.get(i))
            .map(Vec::as_slice)
            .ok_or(Status::RecordNotFound)
    }

    /// Whether `record` has a length this EF accepts.
    pub fn check_len(&self, record: &[u8]) -> Result<(), Status> {
        let ok = match self.kind {
            RecordKind::LinearFixed => record.len() == usize::from(self.max_len),
            RecordKind::LinearVariable => (1..=usize::from(self.max_len)).contains(&record.len()),
        };
        if ok { Ok(()) } else { Err(Status::WrongLength) }
    }

    /// Replaces record `number`.
    pub fn update(&mut self, number: u8, record: &[u8]) -> Result<(), Status> {
        self.check_len(record)?;
        let slot = usize::from(number)
            .checked_sub(1)
            .and_then(|i| self.records.get_mut(i))
            .ok_or(Status::RecordNotFound)?;
        slot.clear();
        slot.extend_from_slice(record);
        Ok(())
    }

    /// Appends a record; returns its number.
    pub fn append(&mut self, record: &[u8]) -> Result<u8, Status> {
        self.check_len(record)?;
        if self.records.len() >= usize::from(self.max_records) {
            return Err(Status::NotEnoughMemory);
        }
        self.records.push(record.to_vec());
        Ok(self.records.len() as u8)
    }

    /// The bytes the EF reserves on the card.
    pub fn capacity(&self) -> usize {
        usize::from(self.max_len) * usize::from(self.max_records)
    }
}

impl Ef {
    /// The bytes the EF reserves on the card.
    pub fn capacity(&self) -> usize {
        match &self.body {
            EfBody::Transparent(bytes) => bytes.len(),
            EfBody::Records(records) => records.capacity(),
        }
    }
}

/// A BER-TLV tag of one or two bytes, as the number its bytes spell (`0x42`, `0x5F20`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct DoTag(u16);

impl DoTag {
    /// A data object tag, if `value` spells a valid one- or two-byte BER-TLV tag.
    pub fn new(value: u16) -> Result<DoTag, Status> {
        let [hi, lo] = value.to_be_bytes();
        let valid = match hi {
            // One byte: not 00, not FF, and not the first byte of a longer tag.
            0 => lo != 0 && lo != 0xFF && lo & 0x1F != 0x1F,
            // Two bytes: the first says "more follows", the second is the last (b8 clear) and
            // above 1E (lower numbers fit in one byte).
            _ => hi & 0x1F == 0x1F && lo & 0x80 == 0 && lo >= 0x1F,
        };
        if valid {
            Ok(DoTag(value))
        } else {
            Err(Status::ReferencedDataNotFound)
        }
    }

    /// The tag as a number.
    pub fn value(self) -> u16 {
        self.0
    }

    /// The tag's bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        match self.0.to_be_bytes() {
            [0, lo] => vec![lo],
            [hi, lo] => vec![hi, lo],
        }
    }

    /// Whether the object's value is itself BER-TLV (constructed encoding, b6 of the first byte).
    pub fn is_constructed(self) -> bool {
        let first = match self.0.to_be_bytes() {
            [0, lo] => lo,
            [hi, _] => hi,
        };
        first & 0x20 != 0
    }
}

impl TryFrom<u16> for DoTag {
    type Error = Status;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        DoTag::new(value)
    }
}

impl From<DoTag> for u16 {
    fn from(tag: DoTag) -> u16 {
        tag.0
    }
}

/// A dedicated file: its children, and its BER-TLV data objects (GET DATA / PUT DATA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Df {
    /// Its file identifier.
    pub fid: Fid,
    /// Its DF name, if it has one.
    pub aid: Option<Aid>,
    /// Its life cycle state.
    pub state: FileState,
    /// Its access rules.
    pub rules: AccessRules,
    /// The rules for its data objects.
    pub data_rules: DataObjectRules,
    /// Its EFs and DFs, in creation order.
    pub children: Vec<Node>,
    /// Its data objects, ordered by tag.
    pub data_objects: Vec<(DoTag, Vec<u8>)>,
}

/// A file under a DF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    /// An elementary file.
    Ef(Ef),
    /// A dedicated file.
    Df(Df),
}

impl Node {
    /// Its file identifier.
    pub fn fid(&self) -> Fid {
        match self {
            Node::Ef(ef) => ef.fid,
            Node::Df(df) => df.fid,
        }
    }
}

impl Df {
    /// An empty DF.
    pub fn new(fid: Fid, aid: Option<Aid>, rules: AccessRules, data_rules: DataObjectRules) -> Df {
        Df {
            fid,
            aid,
            state: FileState::Activated,
            rules,
            data_rules,
            children: Vec::new(),
            data_objects: Vec::new(),
        }
    }

    /// The child with `fid`.
    pub fn child(&self, fid: Fid) -> Option<&Node> {
        self.children.iter().find(|node| node.fid() == fid)
    }

    /// The child with `fid`, to change it.
    pub fn child_mut(&mut self, fid: Fid) -> Option<&mut Node> {
        self.children.iter_mut().find(|node| node.fid() == fid)
    }

    /// The child DF with `fid`.
    pub fn child_df(&self, fid: Fid) -> Option<&Df> {
        match self.child(fid) {
            Some(Node::Df(df)) => Some(df),
            _ => None,
        }
    }

    /// The child DF with `fid`, to change it.
    pub fn child_df_mut(&mut self, fid: Fid) -> Option<&mut Df> {
        match self.child_mut(fid) {
            Some(Node::Df(df)) => Some(df),
            _ => None,
        }
    }

    /// The child EF with `fid`.
    pub fn child_ef(&self, fid: Fid) -> Option<&Ef> {
        match self.child(fid) {
            Some(Node::Ef(ef)) => Some(ef),
            _ => None,
        }
    }

    /// The child EF with `fid`, to change it.
    pub fn child_ef_mut(&mut self, fid: Fid) -> Option<&mut Ef> {
        match self.child_mut(fid) {
            Some(Node::Ef(ef)) => Some(ef),
            _ => None,
        }
    }

    /// The child EF with short identifier `sfi`.
    pub fn ef_by_sfi(&self, sfi: Sfi) -> Option<&Ef> {
        self.children.iter().find_map(|node| match node {
            Node::Ef(ef) if ef.sfi == Some(sfi) => Some(ef),
            _ => None,
        })
    }

    /// The data object with `tag`.
    pub fn data_object(&self, tag: DoTag) -> Option<&[u8]> {
        self.data_objects
            .binary_search_by_key(&tag, |(t, _)| *t)
            .ok()
            .map(|i| self.data_objects[i].1.as_slice())
    }

    /// Sets the data object with `tag`; an empty value deletes it.
    pub fn put_data_object(&mut self, tag: DoTag, value: &[u8]) {
        match self.data_objects.binary_search_by_key(&tag, |(t, _)| *t) {
            Ok(i) if value.is_empty() => {
                self.data_objects.remove(i);
            }
            Ok(i) => {
                self.data_objects[i].1.clear();
                self.data_objects[i].1.extend_from_slice(value);
            }
            Err(_) if value.is_empty() => {}
            Err(i) => self.data_objects.insert(i, (tag, value.to_vec())),
        }
    }

    /// The bytes this DF and everything under it reserve on the card.
    pub fn capacity(&self) -> usize {
        let objects: usize = self.data_objects.iter().map(|(_, v)| v.len() + 4).sum();
        let children: usize = self
            .children
            .iter()
            .map(|node| match node {
                Node::Ef(ef) => ef.capacity() + 16,
                Node::Df(df) => df.capacity() + 32,
            })
            .sum();
        objects + children
    }
}

/// The serialized form of a transparent EF's bytes: `(size, bytes up to the last non-zero)`.
mod trimmed {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::MAX_EF_SIZE;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let used = bytes
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |last| last + 1);
        (bytes.len() as u32, &bytes[..used]).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let (size, mut bytes) = <(u32, Vec<u8>)>::deserialize(deserializer)?;
        let size = size as usize;
        if size > MAX_EF_SIZE || bytes.len() > size {
            return Err(D::Error::custom(
                "a transparent EF larger than the card allows",
            ));
        }
        bytes.resize(size, 0);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mostly_empty_efs_serialize_small() {
        let mut bytes = vec![0u8; 4096];
        bytes[..3].copy_from_slice(b"abc");
        let body = EfBody::Transparent(bytes);
        let encoded = postcard::to_allocvec(&body).unwrap();
        assert!(encoded.len() < 10, "{} bytes", encoded.len());
        assert_eq!(postcard::from_bytes::<EfBody>(&encoded).unwrap(), body);
        let too_big = postcard::to_allocvec(&(0u32, (40_000u32, vec![1u8]))).unwrap();
        assert!(postcard::from_bytes::<EfBody>(&too_big).is_err());
    }

    #[test]
    fn do_tags() {
        assert!(
            DoTag::new(0x42).is_ok() && DoTag::new(0x5F20).is_ok() && DoTag::new(0x7F21).is_ok()
        );
        assert!(
            DoTag::new(0x00).is_err() && DoTag::new(0x5F).is_err() && DoTag::new(0xFF).is_err()
        );
        assert!(DoTag::new(0x5F80).is_err(), "second byte says more follows");
        assert!(
            DoTag::new(0x4220).is_err(),
            "first byte does not announce a second"
        );
        assert!(DoTag::new(0x5F1E).is_err(), "fits in one byte");
        assert!(DoTag::new(0x7F21).unwrap().is_constructed());
        assert!(!DoTag::new(0x5F20).unwrap().is_constructed());
        assert_eq!(DoTag::new(0x5F20).unwrap().to_bytes(), [0x5F, 0x20]);
    }

    #[test]
    fn records() {
        let mut file = RecordFile {
            kind: RecordKind::LinearVariable,
            max_len: 4,
            max_records: 2,
            records: vec![],
        };
        assert_eq!(file.append(&[1, 2]), Ok(1));
        assert_eq!(file.append(&[]), Err(Status::WrongLength));
        assert_eq!(file.append(&[1, 2, 3, 4, 5]), Err(Status::WrongLength));
        assert_eq!(file.append(&[3]), Ok(2));
        assert_eq!(file.append(&[4]), Err(Status::NotEnoughMemory));
        assert_eq!(file.update(2, &[9, 9, 9]), Ok(()));
        assert_eq!(file.get(2), Ok(&[9, 9, 9][..]));
        assert_eq!(file.get(3), Err(Status::RecordNotFound));
        assert_eq!(file.get(0), Err(Status::RecordNotFound));
    }
}

//! Profiles: the card's data set as a TOML file (docs/profile.md), loaded once into validated
//! types.
//!
//! A [`Profile`] holds typed identifiers ([`Fid`], [`Sfi`], [`Aid`], [`DoTag`], [`KeyRef`]),
//! access conditions ([`AccessRules`]) and compiled value plans, so nothing behind it re-checks the text.
//! The record fields it reads are numbered ([`FieldRef`]); [`Profile::bind`] resolves them to a
//! record source's columns once per run.

mod access;
mod error;
pub mod openpgp;
pub mod piv;
mod raw;
mod validate;
pub(crate) mod value;

use std::path::Path;

use time::format_description::OwnedFormatItem;
use vsc_core::fs::{
    AccessRules, Aid, DataObjectRules, Df, DoTag, Ef, EfBody, Fid, FileState, RecordFile,
    RecordKind, Sfi,
};
use vsc_core::security::{KeyAlgorithm, KeyRef, KeyUsage, PasswordPolicy, PasswordRef};
use vsc_core::tlv;

use crate::records::Header;

pub use access::parse_condition;
pub use error::{MissingField, ProfileError};
pub use value::FieldRef;
pub(crate) use value::ValuePlan;

/// The AID of DF.PUBLIC when the profile names none.
pub const DEFAULT_PUBLIC_AID: [u8; 6] = [0xF0, 0x56, 0x53, 0x43, 0x00, 0x01];
/// The AID of DF.PRIVATE when the profile names none.
pub const DEFAULT_PRIVATE_AID: [u8; 6] = [0xF0, 0x56, 0x53, 0x43, 0x00, 0x02];
/// The longest data object a profile may declare (`max_length`), as long as the longest EF.
pub const MAX_DATA_OBJECT: usize = 0x7FFF;
/// A data object's `max_length` when the profile gives none.
pub const DEFAULT_DATA_OBJECT_MAX: usize = 1024;

/// A validated profile.
#[derive(Debug)]
pub struct Profile {
    id: String,
    version: u32,
    description: Option<String>,
    uid: UidSource,
    file_system: Option<FileSystemSpec>,
    openpgp: Option<openpgp::OpenPgpSpec>,
    piv: Option<piv::PivSpec>,
    fields: Vec<FieldUse>,
}

/// The VSC file system a profile fills: `[public]`, `[private]`, `[pin]`, `[puk]`, `[[key]]`.
#[derive(Debug)]
pub struct FileSystemSpec {
    public: DfSpec,
    private: DfSpec,
    pin: PasswordSpec,
    puk: PasswordSpec,
    keys: Vec<KeySpec>,
}

impl FileSystemSpec {
    /// DF.PUBLIC.
    pub fn public(&self) -> &DfSpec {
        &self.public
    }

    /// DF.PRIVATE.
    pub fn private(&self) -> &DfSpec {
        &self.private
    }

    /// Both DFs, public first (the order of EF.DIR).
    pub fn dfs(&self) -> [&DfSpec; 2] {
        [&self.public, &self.private]
    }

    /// The user PIN (reference 01).
    pub fn pin(&self) -> &PasswordSpec {
        &self.pin
    }

    /// The PUK (reference 02).
    pub fn puk(&self) -> &PasswordSpec {
        &self.puk
    }

    /// The AES key objects, in the profile's order.
    pub fn keys(&self) -> &[KeySpec] {
        &self.keys
    }
}

impl Profile {
    /// Loads and validates the profile in `path`.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::from_toml_in(&text, path.parent().unwrap_or(Path::new("")))
    }

    /// Parses and validates a profile; files it names (a PIV CA's) are relative to the
    /// working folder.
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        Profile::from_toml_in(text, Path::new(""))
    }

    /// Parses and validates a profile whose files (a PIV CA's) are relative to `base`.
    pub fn from_toml_in(text: &str, base: &Path) -> Result<Profile, ProfileError> {
        let raw: raw::RawProfile = toml::from_str(text)?;
        validate::validate(raw, base)
    }

    /// The profile's identifier (e.g. `vsc-demo-id`), as transcripts name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The profile's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// What the profile says it is for.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Where each card's UID comes from.
    pub fn uid(&self) -> &UidSource {
        &self.uid
    }

    /// The VSC file system it fills, if any (an OpenPGP token's profile has none).
    pub fn file_system(&self) -> Option<&FileSystemSpec> {
        self.file_system.as_ref()
    }

    /// The OpenPGP application it fills, if any.
    pub fn openpgp(&self) -> Option<&openpgp::OpenPgpSpec> {
        self.openpgp.as_ref()
    }

    /// The PIV application it fills, if any.
    pub fn piv(&self) -> Option<&piv::PivSpec> {
        self.piv.as_ref()
    }

    /// Whether some key is derived from the issuer master key (a [`crate::content::KeyDeriver`]
    /// is then needed).
    pub fn derives_keys(&self) -> bool {
        self.file_system
            .as_ref()
            .is_some_and(|fs| fs.keys.iter().any(|k| k.source == KeySource::Derived))
    }

    /// The record fields the profile reads, each once, in the order the profile first names
    /// them; [`FieldRef::index`] points into this list.
    pub fn fields(&self) -> &[FieldUse] {
        &self.fields
    }

    /// The name of a field the profile reads.
    pub fn field_name(&self, field: FieldRef) -> &str {
        self.fields.get(field.0).map_or("", |f| f.name.as_str())
    }

    /// Checks that a record source has every field the profile reads, and resolves each to its
    /// column. Fails, naming every missing field and the item that reads it, before the first
    /// record is read.
    pub fn bind(&self, header: &Header) -> Result<Binding, ProfileError> {
        let mut columns = Vec::with_capacity(self.fields.len());
        let mut missing = Vec::new();
        for field in &self.fields {
            match header.column(&field.name) {
                Some(column) => columns.push(column),
                None => missing.push(MissingField {
                    field: field.name.clone(),
                    item: field.item.clone(),
                }),
            }
        }
        if missing.is_empty() {
            Ok(Binding {
                columns,
                width: header.len(),
            })
        } else {
            Err(ProfileError::MissingFields(missing))
        }
    }
}

/// A profile's fields resolved to the columns of one record source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub(crate) columns: Vec<usize>,
    pub(crate) width: usize,
}

impl Binding {
    /// The column of `field`.
    pub fn column(&self, field: FieldRef) -> Option<usize> {
        self.columns.get(field.0).copied()
    }

    /// The number of columns of the source's records.
    pub fn width(&self) -> usize {
        self.width
    }
}

/// A record field the profile reads.
#[derive(Clone, Debug)]
pub struct FieldUse {
    /// The field's name in the records.
    pub name: String,
    /// The first profile item that reads it.
    pub item: String,
    /// What values fit every use of the field (for synthetic records).
    pub kind: FieldKind,
}

/// What values of a field fit every place the profile puts them.
#[derive(Clone, Debug)]
pub enum FieldKind {
    /// The card's UID: 16 hexadecimal digits.
    Uid,
    /// An OpenPGP token's UID: `0000`, the AID's manufacturer and serial number (16 hex digits).
    TokenUid,
    /// The name of a file (an escrowed key, a certificate).
    File,
    /// A passphrase: any text.
    Passphrase,
    /// A point in time: RFC 3339 or a date.
    Timestamp,
    /// A salutation: `M`, `F`, `X` (or ISO 5218's digits).
    Salutation,
    /// A PIN or PUK: decimal digits.
    Password {
        /// The fewest digits.
        min: u8,
        /// The most digits.
        max: u8,
    },
    /// Text of `min` to `max` bytes.
    Text {
        /// Only printable ASCII fits.
        ascii: bool,
        /// The fewest bytes (above 1 only where an exact length is required).
        min: usize,
        /// The most bytes.
        max: usize,
    },
    /// Hexadecimal digit pairs for `min` to `max` bytes.
    Hex {
        /// The fewest bytes.
        min: usize,
        /// The most bytes.
        max: usize,
    },
    /// Decimal digits, `min` to `max` of them.
    Digits {
        /// The fewest digits.
        min: usize,
        /// The most digits.
        max: usize,
    },
    /// A date in this input format.
    Date(OwnedFormatItem),
}

/// Where a card's UID comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UidSource {
    /// A record field holding 16 hexadecimal digits.
    Field(FieldRef),
    /// Eight random bytes per card (drawn again should two cards of a run collide).
    Random,
    /// The prefix bytes, then a big-endian serial number filling the rest of the eight bytes:
    /// `first` for the source's first record, plus one for each record after it.
    Serial {
        /// The fixed leading bytes (0 to 7).
        prefix: Vec<u8>,
        /// The serial of the first record.
        first: u64,
    },
}

/// A DF of the fixed layout, with the EFs and data objects the profile gives it.
#[derive(Debug)]
pub struct DfSpec {
    /// `public` or `private`.
    pub area: &'static str,
    /// `5000` or `6000`.
    pub fid: Fid,
    /// Its AID (DF name), listed in EF.DIR.
    pub aid: Aid,
    /// Its application label, listed in EF.DIR.
    pub label: String,
    /// Its own access rules (DELETE, CREATE FILE, …).
    pub rules: AccessRules,
    /// GET DATA and PUT DATA conditions for its data objects.
    pub data_rules: DataObjectRules,
    /// Its EFs, in the profile's order.
    pub efs: Vec<EfSpec>,
    /// Its data objects, in the profile's order.
    pub data_objects: Vec<DataObjectSpec>,
}

impl DfSpec {
    /// The DF as the card holds it when created: empty, activated (for its FCP).
    pub fn to_df(&self) -> Df {
        Df::new(
            self.fid,
            Some(self.aid.clone()),
            self.rules,
            self.data_rules,
        )
    }

    /// Its EF.DIR record: the application template `61 {4F AID, 50 label}`.
    pub fn dir_record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.aid.as_bytes().len() + self.label.len());
        tlv::push_constructed(&mut out, &[0x61], |out| {
            tlv::push_primitive(out, &[0x4F], self.aid.as_bytes());
            tlv::push_primitive(out, &[0x50], self.label.as_bytes());
        });
        out
    }
}

/// An EF of a DF.
#[derive(Debug)]
pub struct EfSpec {
    /// The profile's name for it.
    pub name: String,
    /// Its FID.
    pub fid: Fid,
    /// Its SFI, if it has one.
    pub sfi: Option<Sfi>,
    /// Its access rules.
    pub rules: AccessRules,
    /// Its structure and size.
    pub structure: EfStructure,
    /// What each card holds in it.
    pub(crate) content: EfPlan,
}

impl EfSpec {
    /// The EF as the card holds it when created: empty, activated (for its FCP).
    pub fn to_ef(&self) -> Ef {
        let body = match self.structure {
            EfStructure::Transparent { size } => EfBody::Transparent(vec![0; usize::from(size)]),
            EfStructure::Records {
                kind,
                record_len,
                count,
            } => EfBody::Records(RecordFile {
                kind,
                max_len: record_len,
                max_records: count,
                records: Vec::new(),
            }),
        };
        Ef {
            fid: self.fid,
            sfi: self.sfi,
            state: FileState::Activated,
            rules: self.rules,
            body,
        }
    }

    /// The bytes the EF reserves on the card.
    pub fn capacity(&self) -> usize {
        match self.structure {
            EfStructure::Transparent { size } => usize::from(size),
            EfStructure::Records {
                record_len, count, ..
            } => usize::from(record_len) * usize::from(count),
        }
    }
}

/// The structure of an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EfStructure {
    /// A transparent EF of `size` bytes (1 to 32 767).
    Transparent {
        /// Its size.
        size: u16,
    },
    /// A record EF.
    Records {
        /// Linear fixed or linear variable.
        kind: RecordKind,
        /// The record length (fixed) or longest record (variable), 1 to 65 535.
        record_len: u16,
        /// How many records it holds, 1 to 254.
        count: u8,
    },
}

/// What goes into an EF per card.
#[derive(Debug)]
pub(crate) enum EfPlan {
    /// Nothing: the EF is created empty.
    Nothing,
    /// The bytes of a transparent EF, written from offset 0.
    Bytes(ValuePlan),
    /// The records of a record EF, in order.
    Records(Vec<ValuePlan>),
}

/// A BER-TLV data object of a DF (GET DATA / PUT DATA).
#[derive(Debug)]
pub struct DataObjectSpec {
    /// The profile's name for it (the tag in hex when it has none).
    pub name: String,
    /// Its tag.
    pub tag: DoTag,
    /// The longest value it may hold.
    pub max_length: usize,
    pub(crate) value: ValuePlan,
}

/// The user PIN or the PUK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSpec {
    /// Which password.
    pub reference: PasswordRef,
    /// Its length limits and tries.
    pub policy: PasswordPolicy,
    /// Where each card's value comes from.
    pub source: PasswordSource,
}

/// Where a PIN or PUK comes from. Either way it is decimal digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// A record field.
    Field(FieldRef),
    /// Random digits, this many.
    Generated {
        /// The number of digits.
        length: u8,
    },
}

/// An AES key object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Its reference, 01 to 1F.
    pub reference: KeyRef,
    /// The profile's name for it.
    pub name: String,
    /// AES-128, -192 or -256.
    pub algorithm: KeyAlgorithm,
    /// What the card lets it be used for.
    pub usage: KeyUsage,
    /// Where each card's value comes from.
    pub source: KeySource,
}

/// Where a key value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Random per card.
    Generated,
    /// Derived from the issuer master key and the card's UID (see
    /// [`crate::content::KeyDeriver`]).
    Derived,
}

//! Why a profile cannot be used. Each error names the profile item (e.g. `public EF 5001
//! "document"`) and the rule it breaks.

use std::fmt;
use std::path::PathBuf;

/// A profile that does not load, or does not fit a record source.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("cannot read profile {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the profile's shape: a syntax error, a wrong type, a missing or
    /// an unknown key (the message gives the line and column).
    #[error("profile: {0}")]
    Toml(#[from] toml::de::Error),
    /// Two files with the same FID.
    #[error("{item}: FID {fid} is already used by {other}")]
    DuplicateFid {
        /// The second file.
        item: String,
        /// The first file.
        other: String,
        /// The FID.
        fid: String,
    },
    /// An EF with a FID the card's fixed layout (or ISO 7816-4) reserves.
    #[error(
        "{item}: FID {fid} is reserved (3F00, 2F00, 2F02, 5000, 6000, 3FFF and FFFF are not EFs of a profile)"
    )]
    ReservedFid {
        /// The EF.
        item: String,
        /// The FID.
        fid: String,
    },
    /// Two EFs of one DF with the same SFI.
    #[error("{item}: SFI {sfi} is already used by {other}")]
    SfiClash {
        /// The second EF.
        item: String,
        /// The first EF.
        other: String,
        /// The SFI.
        sfi: u32,
    },
    /// An encoding the profile format does not know.
    #[error("{item}: unknown encoding `{encoding}` (known: utf8, ascii, hex, bcd, date)")]
    UnknownEncoding {
        /// The value.
        item: String,
        /// The name given.
        encoding: String,
    },
    /// A number outside what the card allows.
    #[error("{item}: {what} {value} is out of range ({min} to {max})")]
    OutOfRange {
        /// The item.
        item: String,
        /// What the number is (e.g. `size`).
        what: &'static str,
        /// The number given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// An access rule that does not parse.
    #[error(
        "{item}: access rule `{rule}`: {reason} (write e.g. always, never, pin, key 3, pin or key 3, pin and key 3)"
    )]
    AccessRule {
        /// The item and operation.
        item: String,
        /// The rule given.
        rule: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A data object tag that is not a valid BER-TLV tag of one or two bytes.
    #[error("{item}: `{tag}` is not a BER-TLV tag of 1 or 2 bytes")]
    BadTag {
        /// The data object or template item.
        item: String,
        /// The tag given.
        tag: String,
    },
    /// Two data objects (or template items at one level) with the same tag.
    #[error("{item}: tag {tag} is given twice")]
    DuplicateTag {
        /// The data object or template.
        item: String,
        /// The tag.
        tag: String,
    },
    /// PIN or PUK length limits outside 1 to 16, or min above max.
    #[error("{item}: lengths {min} to {max} are not allowed (1 ≤ min_length ≤ max_length ≤ 16)")]
    PasswordLength {
        /// `[pin]` or `[puk]`.
        item: String,
        /// The minimum given.
        min: u32,
        /// The maximum given.
        max: u32,
    },
    /// A retry counter outside 1 to 15.
    #[error("{item}: tries {tries} is out of range (1 to 15)")]
    Tries {
        /// `[pin]` or `[puk]`.
        item: String,
        /// The number given.
        tries: u32,
    },
    /// A key reference outside 1 to 31.
    #[error("{item}: key reference {reference} is out of range (1 to 31)")]
    KeyReference {
        /// The key.
        item: String,
        /// The reference given.
        reference: u32,
    },
    /// Two keys with the same reference.
    #[error("{item}: key reference {reference} is given twice")]
    DuplicateKey {
        /// The second key.
        item: String,
        /// The reference.
        reference: u32,
    },
    /// A constant that does not fit where it goes.
    #[error("{item}: the constant is {len} bytes encoded, at most {max} fit")]
    ConstantTooLong {
        /// The value.
        item: String,
        /// Its encoded length.
        len: usize,
        /// The room there is.
        max: usize,
    },
    /// The files and data objects need more memory than the card has.
    #[error("the profile's files and data objects need {needed} bytes, the card holds {available}")]
    Memory {
        /// Bytes needed.
        needed: usize,
        /// Bytes the card has.
        available: usize,
    },
    /// Fields the profile reads that the record source does not have.
    #[error("the records lack {}", list_missing(.0))]
    MissingFields(Vec<MissingField>),
    /// Any other rule: the message says which.
    #[error("{item}: {reason}")]
    Invalid {
        /// The item.
        item: String,
        /// The rule broken.
        reason: String,
    },
}

/// A field a profile item reads that the record source lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingField {
    /// The field's name.
    pub field: String,
    /// The first profile item that reads it.
    pub item: String,
}

fn list_missing(missing: &[MissingField]) -> String {
    struct List<'a>(&'a [MissingField]);
    impl fmt::Display for List<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, m) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "field `{}` (read by {})", m.field, m.item)?;
            }
            Ok(())
        }
    }
    List(missing).to_string()
}

impl ProfileError {
    pub(crate) fn invalid(item: &str, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            item: item.to_string(),
            reason: reason.into(),
        }
    }
}

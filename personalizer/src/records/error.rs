//! What can go wrong reading records: a bad record (the stream goes on) or a failing source (the
//! run stops). No message ever quotes a record's value, since values may be PINs or private data.

use std::fmt;
use std::path::PathBuf;

use super::{HeaderError, Position};

/// A record that cannot become a card: where it is, which field, and which rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RecordError {
    /// Where the record is in its source.
    pub position: Position,
    /// The record field at fault, if one is.
    pub field: Option<String>,
    /// The profile item the value was meant for, if any (e.g. `public EF 5001 "document"`).
    pub item: Option<String>,
    /// The rule broken.
    pub problem: Problem,
}

impl RecordError {
    /// An error about the record as a whole.
    pub fn record(position: Position, problem: Problem) -> RecordError {
        RecordError {
            position,
            field: None,
            item: None,
            problem,
        }
    }

    /// An error about one field of the record.
    pub fn field(position: Position, field: &str, problem: Problem) -> RecordError {
        RecordError {
            position,
            field: Some(field.to_string()),
            item: None,
            problem,
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        if let Some(item) = &self.item {
            write!(f, " (for {item})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The rule a record or one of its values breaks. None carries the value itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A CSV row with another number of columns than the header.
    #[error("has {found} columns, the header has {expected}")]
    ColumnCount {
        /// The header's columns.
        expected: usize,
        /// The row's columns.
        found: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("is not valid UTF-8")]
    InvalidUtf8,
    /// A JSON Lines line that is not JSON.
    #[error("is not valid JSON (at column {column})")]
    InvalidJson {
        /// Where the JSON parser stopped, 1-based.
        column: usize,
    },
    /// A JSON Lines line that is JSON but not an object.
    #[error("is not a JSON object")]
    NotAnObject,
    /// A line longer than a JSON Lines source reads.
    #[error("is longer than {max} bytes")]
    LineTooLong {
        /// The longest line read.
        max: usize,
    },
    /// A JSON value that is not a string, a number or null.
    #[error("must be a string or a number")]
    NotTextOrNumber,
    /// A SQLite value that is a BLOB.
    #[error("is a BLOB; only text and numbers are read")]
    Blob,
    /// A field of the header that the record lacks.
    #[error("is missing")]
    MissingField,
    /// A field the header does not have.
    #[error("is not one of the header's fields")]
    UnexpectedField,
    /// A field given twice.
    #[error("is given twice")]
    DuplicateField,
    /// An empty value where the profile needs one.
    #[error("is empty")]
    Empty,
    /// A value that, encoded, does not fit where it goes.
    #[error("is {len} bytes encoded, at most {max} fit")]
    TooLong {
        /// The encoded length.
        len: usize,
        /// The room there is.
        max: usize,
    },
    /// A value that must have an exact length and has another.
    #[error("is {len} bytes encoded, it must be exactly {expected}")]
    WrongLength {
        /// The encoded length.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// A value that is not a date of the profile's input format.
    #[error("is not a date of the form {format}")]
    NotADate {
        /// The input format, as the profile gives it.
        format: String,
    },
    /// A date whose year BCD cannot hold (0 to 9999).
    #[error("has a year outside 0 to 9999, which BCD cannot hold")]
    YearOutOfRange,
    /// A value that is not hexadecimal digits in pairs.
    #[error("is not hexadecimal (pairs of 0-9, a-f, A-F)")]
    NotHex,
    /// A value that is not decimal digits.
    #[error("must be decimal digits")]
    NotDigits,
    /// A value that is not printable ASCII.
    #[error("must be printable ASCII")]
    NotAscii,
    /// A PIN or PUK of the wrong form.
    #[error("must be {min} to {max} digits")]
    Password {
        /// The fewest digits.
        min: u8,
        /// The most digits.
        max: u8,
    },
    /// A UID that another record of the run already has.
    #[error("gives a UID that {first} already has")]
    DuplicateUid {
        /// The record that had it first.
        first: Position,
    },
    /// A serial UID past the largest the prefix leaves room for.
    #[error("needs a UID serial beyond the largest the prefix leaves room for")]
    SerialExhausted,
    /// A derived key of the wrong length (a fault of the key deriver, not of the record).
    #[error("the key deriver gave {len} bytes for key {reference:02X}, {expected} needed")]
    DerivedKeyLength {
        /// The key's reference.
        reference: u8,
        /// What the deriver gave.
        len: usize,
        /// What the algorithm needs.
        expected: usize,
    },
    /// An OpenPGP token's UID that is not `0000`, the manufacturer and the serial number.
    #[error("must be 0000, the OpenPGP manufacturer and the serial number (0000MMMMSSSSSSSS)")]
    NotTokenUid,
    /// A value that is not a point in time.
    #[error("is not a time (RFC 3339, 2026-01-01T00:00:00Z, or a date, 2026-01-01; 1970 to 2106)")]
    NotATime,
    /// A salutation that names none.
    #[error("is not a salutation (M, F, X, or ISO 5218's 0, 1, 2, 9)")]
    NotASalutation,
    /// A file named by the field cannot be read (the reason never quotes the file).
    #[error("names a file that cannot be read: {0}")]
    File(String),
    /// An escrowed key that cannot be imported.
    #[error("{0}")]
    KeyFile(String),
}

/// A source that cannot go on: the whole run stops.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A spec string that names no source.
    #[error("record source `{spec}`: {reason}")]
    Spec {
        /// The spec given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A header that is not one.
    #[error("{}: the header: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// Why.
        source: HeaderError,
    },
    /// A header row that is not UTF-8.
    #[error("{}: the header row is not valid UTF-8", path.display())]
    HeaderUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A JSON Lines file whose first record is not a JSON object (it gives the field names).
    #[error("{}: {position}: the first record must be a JSON object; its keys are the field names", path.display())]
    FirstLine {
        /// The file.
        path: PathBuf,
        /// Where the first record is.
        position: Position,
    },
    /// A file with no records and no header.
    #[error("{}: no header (the file is empty)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A CSV reader failure.
    #[error("{}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A SQLite failure.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A SQLite query that would change the database.
    #[error("{}: the query must only read", path.display())]
    QueryWrites {
        /// The database.
        path: PathBuf,
    },
}

//! Card holder records: read one at a time from CSV, JSON Lines or SQLite, each with its position
//! in the source so that an error can name it.
//!
//! A source is opened from a spec string (see [`open`]); its [`Header`] (the field names) is
//! known before the first record, so a profile can be checked against it once. Records stream:
//! memory does not grow with their number. A bad record is [`Step::Rejected`] with an error
//! naming its line (or row), field and rule, and the stream goes on; only a failure of the source
//! itself (I/O, a broken database) ends it with a [`SourceError`].
//!
//! Record values may be secrets (PINs) or private data: [`Record`] wipes its buffer when
//! dropped, prints no value in `Debug`, and no error ever quotes a value.

mod csv_source;
mod error;
mod jsonl;

mod sqlite;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

pub use csv_source::CsvSource;
pub use error::{Problem, RecordError, SourceError};
pub use jsonl::JsonLinesSource;
pub use sqlite::{Selection, SqliteSource};

/// A stream of card holder records.
pub trait RecordSource: Send {
    /// The field names, known before the first record.
    fn header(&self) -> &Header;

    /// Reads the next record into `record` (reusing its buffers).
    fn next_record(&mut self, record: &mut Record) -> Result<Step, SourceError>;
}

/// What [`RecordSource::next_record`] found.
#[derive(Debug)]
pub enum Step {
    /// A record, now in the caller's [`Record`].
    Read,
    /// A record that could not be read; the stream goes on after it.
    Rejected(RecordError),
    /// No more records.
    End,
}

/// Opens the record source `spec` names:
///
/// - `PATH.csv` or `csv:PATH`: CSV with a header row;
/// - `PATH.jsonl`, `PATH.ndjson` or `jsonl:PATH`: JSON Lines, one object per line;
/// - `sqlite:PATH?table=NAME`: every row of a table, in rowid order;
/// - `sqlite:PATH?query=SELECT …`: the rows of a query (everything after `query=` is SQL).
pub fn open(spec: &str) -> Result<Box<dyn RecordSource>, SourceError> {
    if let Some(rest) = spec.strip_prefix("sqlite:") {
        return Ok(Box::new(SqliteSource::open_spec(spec, rest)?));
    }
    if let Some(path) = spec.strip_prefix("csv:") {
        return Ok(Box::new(CsvSource::open(Path::new(path))?));
    }
    if let Some(path) = spec.strip_prefix("jsonl:") {
        return Ok(Box::new(JsonLinesSource::open(Path::new(path))?));
    }
    let path = Path::new(spec);
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Ok(Box::new(CsvSource::open(path)?)),
        Some(ext) if ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson") => {
            Ok(Box::new(JsonLinesSource::open(path)?))
        }
        _ => Err(SourceError::Spec {
            spec: spec.to_string(),
            reason: "give a .csv, .jsonl or .ndjson file, csv:PATH, jsonl:PATH, \
                     sqlite:PATH?table=NAME or sqlite:PATH?query=SQL"
                .to_string(),
        }),
    }
}

/// The field names of a source, in column order; each name appears once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    /// A header, if every name is non-empty and unique.
    pub fn new(names: Vec<String>) -> Result<Header, HeaderError> {
        let mut index = HashMap::with_capacity(names.len());
        for (column, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(HeaderError::EmptyName(column + 1));
            }
            if index.insert(name.clone(), column).is_some() {
                return Err(HeaderError::Duplicate(name.clone()));
            }
        }
        if names.is_empty() {
            return Err(HeaderError::NoFields);
        }
        Ok(Header { names, index })
    }

    /// The names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no fields (never true for a header made by [`Header::new`]).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The column of field `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Why a list of names is not a header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// There are no field names at all.
    #[error("there are no field names")]
    NoFields,
    /// A column has no name.
    #[error("column {0} has no name")]
    EmptyName(usize),
    /// Two columns have the same name.
    #[error("the field name `{0}` appears twice")]
    Duplicate(String),
}

/// Where a record is in its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// The line (1-based) where a CSV record starts, or a JSON Lines line.
    Line(u64),
    /// The row (1-based) of a SQLite table or query.
    Row(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(line) => write!(f, "line {line}"),
            Position::Row(row) => write!(f, "row {row}"),
        }
    }
}

/// One card holder record: a value per header field, by column.
///
/// The values live in one buffer that is wiped when the record is dropped.
pub struct Record {
    position: Position,
    ordinal: u64,
    text: Zeroizing<String>,
    spans: Vec<(usize, usize)>,
}

impl Record {
    /// An empty record, to be filled by [`RecordSource::next_record`].
    pub fn new() -> Record {
        Record {
            position: Position::Line(0),
            ordinal: 0,
            text: Zeroizing::new(String::new()),
            spans: Vec::new(),
        }
    }

    /// A record with `fields` in column order (for tests and callers with their own sources).
    pub fn from_fields(position: Position, ordinal: u64, fields: &[&str]) -> Record {
        let mut record = Record::new();
        record.start(position, ordinal);
        for field in fields {
            record.push(field);
        }
        record
    }

    /// Where the record is in its source.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The record's number in its source (1-based, counting rejected records too).
    pub fn ordinal(&self) -> u64 {
        self.ordinal
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the record has no values.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The value in `column`.
    pub fn get(&self, column: usize) -> Option<&str> {
        let (start, end) = *self.spans.get(column)?;
        self.text.get(start..end)
    }

    /// Empties the record for the next one.
    pub(crate) fn start(&mut self, position: Position, ordinal: u64) {
        self.position = position;
        self.ordinal = ordinal;
        self.text.clear();
        self.spans.clear();
    }

    /// Appends the value of the next column.
    pub(crate) fn push(&mut self, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.spans.push((start, self.text.len()));
    }

    /// Appends the value of the next column, written by `write`.
    pub(crate) fn set_next(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        self.spans.push((start, self.text.len()));
    }

    /// Gives every one of `columns` an empty value, to be set in any order by [`Record::set`].
    pub(crate) fn reserve_columns(&mut self, columns: usize) {
        self.spans.resize(columns, (0, 0));
    }

    /// Sets the value of `column` (one reserved by [`Record::reserve_columns`]).
    pub(crate) fn set(&mut self, column: usize, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        if let Some(span) = self.spans.get_mut(column) {
            *span = (start, self.text.len());
        }
    }
}

impl Default for Record {
    fn default() -> Record {
        Record::new()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("position", &self.position)
            .field("ordinal", &self.ordinal)
            .field("values", &self.spans.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_refuse_duplicates_and_blanks() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let header = Header::new(names(&["a", "b"])).unwrap();
        assert_eq!(header.column("b"), Some(1));
        assert_eq!(header.column("c"), None);
        assert_eq!(
            Header::new(names(&["a", "a"])),
            Err(HeaderError::Duplicate("a".into()))
        );
        assert_eq!(
            Header::new(names(&["a", " "])),
            Err(HeaderError::EmptyName(2))
        );
        assert_eq!(Header::new(vec![]), Err(HeaderError::NoFields));
    }

    #[test]
    fn records_hold_values_by_column_and_hide_them() {
        let mut record = Record::from_fields(Position::Line(2), 1, &["Zoë", "", "123456"]);
        assert_eq!(record.get(0), Some("Zoë"));
        assert_eq!(record.get(1), Some(""));
        assert_eq!(record.get(3), None);
        assert!(!format!("{record:?}").contains("123456"));
        record.start(Position::Row(1), 1);
        record.reserve_columns(2);
        record.set(1, |text| text.push('b'));
        record.set(0, |text| text.push('a'));
        assert_eq!((record.get(0), record.get(1)), (Some("a"), Some("b")));
    }
}

//! Records from a JSON Lines file: one JSON object per line, values strings or numbers (`null`
//! reads as empty). The first object's keys are the header; every later line must have exactly
//! those keys, in any order. Blank lines are skipped.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Header, Position, Problem, Record, RecordError, RecordSource, SourceError, Step};

/// The longest line read; a longer one is rejected (and skipped) without being held in memory.
pub const MAX_LINE: usize = 1 << 20;

/// A JSON Lines file read one line at a time.
pub struct JsonLinesSource {
    path: PathBuf,
    reader: BufReader<File>,
    header: Header,
    line: Vec<u8>,
    line_number: u64,
    ordinal: u64,
    /// The first record's line, read to learn the header and not yet handed out.
    first: Option<(Vec<u8>, u64)>,
    /// Which header fields the current line has given.
    seen: Vec<bool>,
}

impl JsonLinesSource {
    /// Opens `path` and learns the header from its first non-blank line.
    pub fn open(path: &Path) -> Result<JsonLinesSource, SourceError> {
        let io_error = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io_error)?);
        let mut line = Vec::new();
        let mut line_number = 0;
        loop {
            match read_line(&mut reader, &mut line).map_err(io_error)? {
                LineRead::End => {
                    return Err(SourceError::Empty {
                        path: path.to_path_buf(),
                    });
                }
                LineRead::TooLong => {
                    line_number += 1;
                    return Err(SourceError::FirstLine {
                        path: path.to_path_buf(),
                        position: Position::Line(line_number),
                    });
                }
                LineRead::Line => line_number += 1,
            }
            if !is_blank(&line) {
                break;
            }
        }
        let first_line = SourceError::FirstLine {
            path: path.to_path_buf(),
            position: Position::Line(line_number),
        };
        let mut deserializer = serde_json::Deserializer::from_slice(&line);
        let names = KeyNames
            .deserialize(&mut deserializer)
            .and_then(|names| deserializer.end().map(|()| names))
            .map_err(|_| first_line)?;
        let header = Header::new(names).map_err(|source| SourceError::Header {
            path: path.to_path_buf(),
            source,
        })?;
        let columns = header.len();
        Ok(JsonLinesSource {
            path: path.to_path_buf(),
            reader,
            header,
            line: Vec::new(),
            line_number,
            ordinal: 0,
            first: Some((line, line_number)),
            seen: vec![false; columns],
        })
    }

    fn parse(&mut self, line: &[u8], record: &mut Record) -> Result<(), RecordError> {
        let position = record.position();
        let Ok(text) = std::str::from_utf8(line) else {
            return Err(RecordError::record(position, Problem::InvalidUtf8));
        };
        record.reserve_columns(self.header.len());
        self.seen.iter_mut().for_each(|seen| *seen = false);
        let mut fault = None;
        let filler = Filler {
            header: &self.header,
            record,
            seen: &mut self.seen,
            fault: &mut fault,
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = filler
            .deserialize(&mut deserializer)
            .and_then(|()| deserializer.end());
        if let Some(fault) = fault {
            return Err(fault.into_error(position));
        }
        if let Err(error) = parsed {
            // serde_json's messages may quote a value; only the category and column are kept.
            let problem = match error.classify() {
                serde_json::error::Category::Data => Problem::NotAnObject,
                _ => Problem::InvalidJson {
                    column: error.column(),
                },
            };
            return Err(RecordError::record(position, problem));
        }
        if let Some(missing) = self.seen.iter().position(|seen| !seen) {
            let field = &self.header.names()[missing];
            return Err(RecordError::field(position, field, Problem::MissingField));
        }
        Ok(())
    }
}

impl RecordSource for JsonLinesSource {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_record(&mut self, record: &mut Record) -> Result<Step, SourceError> {
        let (line, line_number) = match self.first.take() {
            Some(first) => first,
            None => loop {
                let read = read_line(&mut self.reader, &mut self.line).map_err(|source| {
                    SourceError::Io {
                        path: self.path.clone(),
                        source,
                    }
                })?;
                match read {
                    LineRead::End => return Ok(Step::End),
                    LineRead::TooLong => {
                        self.line_number += 1;
                        self.ordinal += 1;
                        let position = Position::Line(self.line_number);
                        record.start(position, self.ordinal);
                        let problem = Problem::LineTooLong { max: MAX_LINE };
                        return Ok(Step::Rejected(RecordError::record(position, problem)));
                    }
                    LineRead::Line => self.line_number += 1,
                }
                if !is_blank(&self.line) {
                    break (std::mem::take(&mut self.line), self.line_number);
                }
            },
        };
        self.ordinal += 1;
        record.start(Position::Line(line_number), self.ordinal);
        let outcome = self.parse(&line, record);
        // Hand the buffer back for the next line; it may hold a PIN, so wipe it first.
        let mut line = line;
        zeroize::Zeroize::zeroize(&mut line);
        self.line = line;
        match outcome {
            Ok(()) => Ok(Step::Read),
            Err(error) => Ok(Step::Rejected(error)),
        }
    }
}

impl fmt::Debug for JsonLinesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSource")
            .field("path", &self.path)
            .field("header", &self.header.names())
            .field("line", &self.line_number)
            .finish_non_exhaustive()
    }
}

enum LineRead {
    Line,
    TooLong,
    End,
}

/// Reads one line (without its end) into `line`, never holding more than [`MAX_LINE`] bytes.
fn read_line(reader: &mut BufReader<File>, line: &mut Vec<u8>) -> std::io::Result<LineRead> {
    line.clear();
    let limit = MAX_LINE as u64 + 1;
    let read = reader.by_ref().take(limit).read_until(b'\n', line)?;
    if read == 0 {
        return Ok(LineRead::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Ok(LineRead::Line);
    }
    if line.len() <= MAX_LINE {
        return Ok(LineRead::Line); // the last line, without an end
    }
    // Skip the rest of the over-long line.
    line.clear();
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(LineRead::TooLong);
        }
        match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(LineRead::TooLong);
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A record-level fault found while filling a record, kept apart from serde's error (whose
/// message might quote a value).
enum Fault {
    Field(String, Problem),
    Record(Problem),
}

impl Fault {
    fn into_error(self, position: Position) -> RecordError {
        match self {
            Fault::Field(field, problem) => RecordError::field(position, &field, problem),
            Fault::Record(problem) => RecordError::record(position, problem),
        }
    }
}

/// Reads the keys of one JSON object, in order (the header of a JSON Lines file).
struct KeyNames;

impl<'de> DeserializeSeed<'de> for KeyNames {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeyNames {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            names.push(name);
        }
        Ok(names)
    }
}

/// Fills a [`Record`] from one JSON object, straight from the parser (no intermediate map).
struct Filler<'a> {
    header: &'a Header,
    record: &'a mut Record,
    seen: &'a mut [bool],
    fault: &'a mut Option<Fault>,
}

impl<'de> DeserializeSeed<'de> for Filler<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Filler<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeyColumn(self.header))? {
            let column = match key {
                Key::Column(column) => column,
                Key::Unknown(name) => {
                    *self.fault = Some(Fault::Field(name, Problem::UnexpectedField));
                    return Err(de::Error::custom("unexpected field"));
                }
            };
            let name = &self.header.names()[column];
            if std::mem::replace(&mut self.seen[column], true) {
                *self.fault = Some(Fault::Field(name.clone(), Problem::DuplicateField));
                return Err(de::Error::custom("duplicate field"));
            }
            let mut kind_ok = true;
            map.next_value_seed(ValueText {
                record: self.record,
                column,
                kind_ok: &mut kind_ok,
            })?;
            if !kind_ok {
                *self.fault = Some(Fault::Field(name.clone(), Problem::NotTextOrNumber));
                return Err(de::Error::custom("not text"));
            }
        }
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        *self.fault = Some(Fault::Record(Problem::NotAnObject));
        Err(de::Error::custom("not an object"))
    }
}

enum Key {
    Column(usize),
    Unknown(String),
}

/// Maps a key to its header column without allocating (unless it is unknown).
struct KeyColumn<'a>(&'a Header);

impl<'de> DeserializeSeed<'de> for KeyColumn<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyColumn<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match self.0.column(name) {
            Some(column) => Key::Column(column),
            None => Key::Unknown(name.to_string()),
        })
    }
}

/// Reads one value into the record's `column`; anything but a string, a number or null sets
/// `kind_ok` to false.
struct ValueText<'r> {
    record: &'r mut Record,
    column: usize,
    kind_ok: &'r mut bool,
}

impl ValueText<'_> {
    fn put(self, value: impl fmt::Display) {
        self.record
            .set(self.column, |text| _ = write!(text, "{value}"));
    }
}

impl<'de> DeserializeSeed<'de> for ValueText<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.record.set(self.column, |text| text.push_str(value));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.put(value);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.put(value);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.put(value);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        *self.kind_ok = false;
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        *self.kind_ok = false;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        *self.kind_ok = false;
        Ok(())
    }
}

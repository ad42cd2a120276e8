//! Records from a CSV file whose first row names the fields (RFC 4180 through the `csv` crate).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Header, Position, Problem, Record, RecordError, RecordSource, SourceError, Step};

/// A CSV file read one row at a time. Rows with another number of columns than the header, or
/// with bytes that are not UTF-8, are rejected one by one.
pub struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<File>,
    header: Header,
    row: csv::ByteRecord,
    ordinal: u64,
}

impl CsvSource {
    /// Opens `path` and reads its header row.
    pub fn open(path: &Path) -> Result<CsvSource, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            // Rows of the wrong width are the caller's to reject one by one, not a reader error.
            .flexible(true)
            .from_reader(file);
        let csv_error = |source| SourceError::Csv {
            path: path.to_path_buf(),
            source,
        };
        let raw = reader.byte_headers().map_err(csv_error)?;
        if raw.is_empty() {
            return Err(SourceError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut names = Vec::with_capacity(raw.len());
        for (column, name) in raw.iter().enumerate() {
            // A byte order mark, as spreadsheet programs write, is not part of the first name.
            let name = match column {
                0 => name.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(name),
                _ => name,
            };
            let name = std::str::from_utf8(name).map_err(|_| SourceError::HeaderUtf8 {
                path: path.to_path_buf(),
            })?;
            names.push(name.to_string());
        }
        let header = Header::new(names).map_err(|source| SourceError::Header {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(CsvSource {
            path: path.to_path_buf(),
            reader,
            header,
            row: csv::ByteRecord::new(),
            ordinal: 0,
        })
    }
}

impl RecordSource for CsvSource {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_record(&mut self, record: &mut Record) -> Result<Step, SourceError> {
        let more = self
            .reader
            .read_byte_record(&mut self.row)
            .map_err(|source| SourceError::Csv {
                path: self.path.clone(),
                source,
            })?;
        if !more {
            return Ok(Step::End);
        }
        self.ordinal += 1;
        let line = self.row.position().map_or(0, |p| p.line());
        let position = Position::Line(line);
        record.start(position, self.ordinal);
        if self.row.len() != self.header.len() {
            return Ok(Step::Rejected(RecordError::record(
                position,
                Problem::ColumnCount {
                    expected: self.header.len(),
                    found: self.row.len(),
                },
            )));
        }
        for (column, bytes) in self.row.iter().enumerate() {
            match std::str::from_utf8(bytes) {
                Ok(value) => record.push(value),
                Err(_) => {
                    let field = &self.header.names()[column];
                    return Ok(Step::Rejected(RecordError::field(
                        position,
                        field,
                        Problem::InvalidUtf8,
                    )));
                }
            }
        }
        Ok(Step::Read)
    }
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("header", &self.header.names())
            .finish_non_exhaustive()
    }
}

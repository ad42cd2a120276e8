//! Records from a SQLite table or query.
//!
//! Spec: `sqlite:PATH?table=NAME` (every row of the table) or `sqlite:PATH?query=SQL` (the rows
//! of a read-only query; everything after `query=` is the SQL, `?`, `&` and `=` included). The
//! database is opened read-only. Column names are the header. Text and numbers are read as text,
//! NULL as empty; a BLOB is rejected.
//!
//! `rusqlite`'s rows borrow their statement, which borrows its connection, so the query runs on
//! a thread of its own and hands records over through a small bounded channel: memory stays
//! flat however many rows there are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{Header, Position, Problem, Record, RecordError, RecordSource, SourceError, Step};

/// How many records may wait in the channel.
const QUEUE: usize = 64;

/// What to read from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every row of a table.
    Table(String),
    /// The rows of a read-only query.
    Query(String),
}

/// A SQLite table or query read one row at a time.
pub struct SqliteSource {
    path: PathBuf,
    header: Header,
    rows: Option<Receiver<Message>>,
    reader: Option<JoinHandle<()>>,
}

enum Message {
    Header(Header),
    Row(Record),
    Rejected(RecordError),
    Failed(SourceError),
}

impl SqliteSource {
    /// Opens the source a spec names; `rest` is what follows `sqlite:`.
    pub(super) fn open_spec(spec: &str, rest: &str) -> Result<SqliteSource, SourceError> {
        let bad = |reason: &str| SourceError::Spec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (path, params) = rest
            .split_once('?')
            .ok_or_else(|| bad("add ?table=NAME or ?query=SQL after the database path"))?;
        if path.is_empty() {
            return Err(bad("the database path is empty"));
        }
        let selection = if let Some(table) = params.strip_prefix("table=") {
            if table.is_empty() {
                return Err(bad("the table name is empty"));
            }
            Selection::Table(table.to_string())
        } else if let Some(query) = params.strip_prefix("query=") {
            if query.trim().is_empty() {
                return Err(bad("the query is empty"));
            }
            Selection::Query(query.to_string())
        } else {
            return Err(bad("add ?table=NAME or ?query=SQL after the database path"));
        };
        SqliteSource::open(Path::new(path), selection)
    }

    /// Opens `path` read-only and starts reading `selection`.
    pub fn open(path: &Path, selection: Selection) -> Result<SqliteSource, SourceError> {
        let (sender, rows) = sync_channel(QUEUE);
        let thread_path = path.to_path_buf();
        let reader = std::thread::Builder::new()
            .name("sqlite-records".to_string())
            .spawn(move || read_rows(&thread_path, &selection, &sender))
            .map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let header = match rows.recv() {
            Ok(Message::Header(header)) => header,
            Ok(Message::Failed(error)) => return Err(error),
            // The reader sends a header or a failure first; anything else means it died.
            _ => {
                return Err(SourceError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other("the SQLite reader stopped"),
                });
            }
        };
        Ok(SqliteSource {
            path: path.to_path_buf(),
            header,
            rows: Some(rows),
            reader: Some(reader),
        })
    }
}

impl RecordSource for SqliteSource {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_record(&mut self, record: &mut Record) -> Result<Step, SourceError> {
        let Some(rows) = &self.rows else {
            return Ok(Step::End);
        };
        match rows.recv() {
            Ok(Message::Row(row)) => {
                *record = row;
                Ok(Step::Read)
            }
            Ok(Message::Rejected(error)) => Ok(Step::Rejected(error)),
            Ok(Message::Failed(error)) => {
                self.rows = None;
                Err(error)
            }
            Ok(Message::Header(_)) | Err(_) => {
                self.rows = None;
                Ok(Step::End)
            }
        }
    }
}

impl Drop for SqliteSource {
    fn drop(&mut self) {
        // Closing the channel makes the reader's next send fail, and the reader end.
        self.rows = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl std::fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSource")
            .field("path", &self.path)
            .field("header", &self.header.names())
            .finish_non_exhaustive()
    }
}

/// The reader thread: a header (or a failure), then the rows, then it hangs up.
fn read_rows(path: &Path, selection: &Selection, out: &SyncSender<Message>) {
    if let Err(error) = try_read_rows(path, selection, out) {
        let _ = out.send(Message::Failed(error));
    }
}

fn try_read_rows(
    path: &Path,
    selection: &Selection,
    out: &SyncSender<Message>,
) -> Result<(), SourceError> {
    let sqlite = |source| SourceError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    let sql = match selection {
        Selection::Table(table) => format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")),
        Selection::Query(query) => query.clone(),
    };
    let mut statement = connection.prepare(&sql).map_err(sqlite)?;
    if !statement.readonly() {
        return Err(SourceError::QueryWrites {
            path: path.to_path_buf(),
        });
    }
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let header = Header::new(names).map_err(|source| SourceError::Header {
        path: path.to_path_buf(),
        source,
    })?;
    let columns = header.len();
    let names = header.names().to_vec();
    if out.send(Message::Header(header)).is_err() {
        return Ok(());
    }
    let mut rows = statement.query([]).map_err(sqlite)?;
    let mut number = 0u64;
    while let Some(row) = rows.next().map_err(sqlite)? {
        number += 1;
        let position = Position::Row(number);
        let mut record = Record::new();
        record.start(position, number);
        let mut rejected = None;
        for (column, name) in names.iter().enumerate().take(columns) {
            let value = row.get_ref(column).map_err(sqlite)?;
            match value {
                ValueRef::Null => record.push(""),
                ValueRef::Integer(n) => record.set_next(|text| _ = write!(text, "{n}")),
                ValueRef::Real(x) => record.set_next(|text| _ = write!(text, "{x}")),
                ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => record.push(text),
                    Err(_) => {
                        rejected = Some(RecordError::field(position, name, Problem::InvalidUtf8));
                        break;
                    }
                },
                ValueRef::Blob(_) => {
                    rejected = Some(RecordError::field(position, name, Problem::Blob));
                    break;
                }
            }
        }
        let message = match rejected {
            Some(error) => Message::Rejected(error),
            None => Message::Row(record),
        };
        if out.send(message).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

//! Output files, written whole or not at all: into a temporary file in the same folder, synced,
//! then moved to their name without replacing anything there (unless told to), and the folder
//! synced. A command that fails half-way, or is killed, leaves the old file (or none), never a
//! truncated one; an existing file is never overwritten without [`Overwrite::Replace`].

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Whether an existing file may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Never: an existing file is an error (the default of every command).
    Refuse,
    /// Yes (`--force`): the old file is replaced in one rename.
    Replace,
}

impl Overwrite {
    /// `Replace` when `force`.
    pub fn forced(force: bool) -> Overwrite {
        if force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        }
    }
}

/// Who may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `0600`: secrets (PIN mailer files, clear secret exports), images, keys.
    Private,
    /// `0644`: public things (a verification key, a clear transcript).
    Public,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// Why a file was not written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file is there and `--force` was not given.
    #[error("{}: the file exists (give --force to replace it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The system refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// A file being written; it appears under its name only at [`AtomicFile::commit`]. Dropped
/// without a commit, it leaves nothing.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temporary: NamedTempFile,
    overwrite: Overwrite,
}

impl AtomicFile {
    /// Starts writing `path`. Refuses at once (before any work) if the file exists and may not
    /// be replaced.
    pub fn create(path: &Path, mode: Mode, overwrite: Overwrite) -> Result<AtomicFile, FileError> {
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if overwrite == Overwrite::Refuse && std::fs::symlink_metadata(path).is_ok() {
            return Err(FileError::Exists {
                path: path.to_path_buf(),
            });
        }
        let folder = folder_of(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode.bits()))
            .tempfile_in(folder)
            .map_err(io)?;
        // The umask may have narrowed the mode asked for; set it exactly.
        temporary
            .as_file()
            .set_permissions(Permissions::from_mode(mode.bits()))
            .map_err(io)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temporary,
            overwrite,
        })
    }

    /// The file's final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the content and moves it to its name; then syncs the folder.
    pub fn commit(self) -> Result<(), FileError> {
        let path = self.path;
        let io = |source| FileError::Io {
            path: path.clone(),
            source,
        };
        self.temporary.as_file().sync_all().map_err(io)?;
        match self.overwrite {
            Overwrite::Refuse => self.temporary.persist_noclobber(&path).map_err(|e| {
                if e.error.kind() == io::ErrorKind::AlreadyExists {
                    FileError::Exists { path: path.clone() }
                } else {
                    io(e.error)
                }
            })?,
            Overwrite::Replace => self.temporary.persist(&path).map_err(|e| io(e.error))?,
        };
        sync_folder(folder_of(&path)).map_err(io)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.temporary.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temporary.flush()
    }
}

/// Writes `bytes` to `path` whole (see the module).
pub fn write_new(
    path: &Path,
    bytes: &[u8],
    mode: Mode,
    overwrite: Overwrite,
) -> Result<(), FileError> {
    let mut file = AtomicFile::create(path, mode, overwrite)?;
    file.write_all(bytes).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    file.commit()
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn sync_folder(folder: &Path) -> io::Result<()> {
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_appears_whole_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_new(&path, b"whole", Mode::Private, Overwrite::Refuse).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["out.bin"], "no temporary file left");
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let error = write_new(&path, b"new", Mode::Public, Overwrite::Refuse).unwrap_err();
        assert!(matches!(error, FileError::Exists { .. }), "{error}");
        assert!(error.to_string().contains("--force"));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_new(&path, b"new", Mode::Public, Overwrite::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn a_file_created_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut file = AtomicFile::create(&path, Mode::Public, Overwrite::Refuse).unwrap();
        file.write_all(b"mine").unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        assert!(matches!(file.commit(), Err(FileError::Exists { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn an_abandoned_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut file = AtomicFile::create(&path, Mode::Private, Overwrite::Refuse).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty());
    }
}

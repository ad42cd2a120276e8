//! Atomic file writes and the lock that keeps one process serving a file.
//!
//! A write goes to a temporary file in the same folder (a random name, created exclusively),
//! is fsynced, then renamed over the old file (or, for a new file that must not clobber
//! anything, hard-linked to its name), and the folder is fsynced. A crash at any point leaves
//! the old file or the new one, and at worst a temporary file that
//! [`remove_stale_temporaries`] recognises by its name and removes.
//!
//! A replaced file keeps the old file's permission bits; a new one is created 0600.
//!
//! [`FileLock`] is an exclusive `flock` on a file. Because a replacement is a new inode, a lock
//! on the old one would stop protecting the file at the first save; so the lock follows the
//! file: while this process holds a [`FileLock`] on a path, [`write_atomic`] locks the
//! temporary file before it renames it, and the lock moves to the new inode with no moment in
//! between when another process could take it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rand::RngCore;
use rand::rngs::OsRng;

/// The permission bits of a file created here: its owner only, as images and keys require.
pub const NEW_FILE_MODE: u32 = 0o600;

/// How many random names to try before giving up (a collision of 64 random bits is not
/// expected even once; a second try only guards against a name planted on purpose).
const NAME_TRIES: usize = 16;

/// Hex digits of the random part of a temporary name.
const RANDOM_DIGITS: usize = 16;

/// Replaces the file at `path` with `bytes`, atomically and durably.
///
/// The new file keeps the permission bits of the file it replaces, or is 0600 if there was
/// none. If this process holds a [`FileLock`] on `path`, the lock moves to the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mode = match fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o7777,
        Err(error) if error.kind() == io::ErrorKind::NotFound => NEW_FILE_MODE,
        Err(error) => return Err(error),
    };
    let held = held_lock_key(path);
    let (temporary, file) = write_temporary(path, bytes, mode, held.is_some())?;
    if let Err(error) = fs::rename(&temporary, path) {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    // The new inode has the name now: it must carry the lock before anything else can fail.
    if let Some(key) = held {
        move_held_lock(&key, file);
    }
    File::open(folder_of(path))?.sync_all()
}

/// Writes a new file at `path` with `bytes`, atomically and durably, and never over anything:
/// if `path` exists (a file, a link, anything), the error is [`io::ErrorKind::AlreadyExists`]
/// and nothing is changed.
///
/// For output files that must not clobber a user's file (`--force` aside): the content is
/// complete and synced in a temporary file before it gets its name, in one `link` that fails
/// if the name is taken, so no other writer can slip in between a check and the write. The new
/// file is 0600.
pub fn write_atomic_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (temporary, file) = write_temporary(path, bytes, NEW_FILE_MODE, false)?;
    drop(file);
    let linked = fs::hard_link(&temporary, path);
    let removed = fs::remove_file(&temporary);
    linked.map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ),
        _ => error,
    })?;
    removed?;
    File::open(folder_of(path))?.sync_all()
}

/// Removes the temporary files that writes of `path` left behind when they were killed (ours,
/// `.NAME.<16 hex digits>.tmp`, and those of earlier versions, `.NAME.<pid>.<n>.tmp`); returns
/// the files removed. Nothing else in the folder is touched.
///
/// Call it only while no write of `path` can be under way: while holding its [`FileLock`].
pub fn remove_stale_temporaries(path: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in fs::read_dir(folder_of(path))? {
        let entry = entry?;
        let Some(candidate) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_temporary_of(name, &candidate) || !entry.file_type()?.is_file() {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed.push(entry.path()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

/// Whether `candidate` is the name of a temporary file of a write of the file named `name`.
pub fn is_temporary_of(name: &str, candidate: &str) -> bool {
    let Some(middle) = candidate
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let random = middle.len() == RANDOM_DIGITS
        && middle
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let old_style = middle
        .split_once('.')
        .is_some_and(|(pid, n)| digits(pid) && digits(n));
    random || old_style
}

/// An exclusive lock on a file, held until dropped, that follows the file across this
/// process's [`write_atomic`] replacements.
#[derive(Debug)]
pub struct FileLock {
    key: PathBuf,
}

/// Why a [`FileLock`] could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another lock in this one) holds the file.
    #[error("{} is in use{}", path.display(), holder.map(|pid| format!(" by process {pid}")).unwrap_or_default())]
    InUse {
        /// The file.
        path: PathBuf,
        /// The process holding the lock, when the system says (`/proc/locks`).
        holder: Option<u32>,
    },
    /// Opening, locking or checking the file failed.
    #[error("cannot lock {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// The locks this process holds: path (absolute) and the open file carrying the lock.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// How often to try again when the file is replaced between opening and locking it.
const LOCK_TRIES: usize = 8;

impl FileLock {
    /// Takes an exclusive lock on the file at `path` at once, or says who holds it.
    pub fn try_exclusive(path: &Path) -> Result<FileLock, LockError> {
        let io_error = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let key = std::path::absolute(path).map_err(io_error)?;
        for _ in 0..LOCK_TRIES {
            let file = File::open(path).map_err(io_error)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::InUse {
                        path: path.to_path_buf(),
                        holder: file.metadata().ok().and_then(|m| lock_holder(&m)),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(io_error(source)),
            }
            // A writer may have renamed a new file over the path between the open and the
            // lock: then the lock is on a file nobody serves any more. Take it again.
            let locked = file.metadata().map_err(io_error)?;
            let current = fs::metadata(path).map_err(io_error)?;
            if (locked.dev(), locked.ino()) == (current.dev(), current.ino()) {
                let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
                held.push((key.clone(), file));
                return Ok(FileLock { key });
            }
        }
        Err(io_error(io::Error::other(
            "the file keeps being replaced while it is being locked",
        )))
    }

    /// The locked path, as given (made absolute).
    pub fn path(&self) -> &Path {
        &self.key
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = held.iter().position(|(key, _)| *key == self.key) {
            held.swap_remove(index);
        }
    }
}

/// The key under which a lock on `path` is held by this process, if one is.
fn held_lock_key(path: &Path) -> Option<PathBuf> {
    let key = std::path::absolute(path).ok()?;
    let held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.iter().any(|(k, _)| *k == key).then_some(key)
}

/// After a replacement: the lock now lives on `file`, the new inode (already locked); the old
/// handle is dropped, releasing the lock on the old inode, which no name points to any more.
fn move_held_lock(key: &Path, file: File) {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, old)) = held.iter_mut().find(|(k, _)| k == key) {
        *old = file;
    }
}

/// Creates a temporary file beside `path` with a fresh random name and writes `bytes` into it,
/// synced, with permission bits `mode`; locked exclusively first when `lock` is set.
fn write_temporary(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    lock: bool,
) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut tries = 0;
    let (temporary, mut file) = loop {
        let temporary = path.with_file_name(format!(
            ".{name}.{:0width$x}.tmp",
            OsRng.next_u64(),
            width = RANDOM_DIGITS
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&temporary)
        {
            Ok(file) => break (temporary, file),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && tries < NAME_TRIES => {
                tries += 1;
            }
            Err(error) => return Err(error),
        }
    };
    let written = (|| {
        if lock {
            file.try_lock().map_err(io::Error::from)?;
        }
        // Set on the open file, so the umask does not narrow it and no other file is touched.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok((temporary, file)),
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(error)
        }
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    }
}

/// The process holding a `flock` on the file with `metadata`, from `/proc/locks`.
///
/// Its lines read `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`: pid, then the device's
/// major and minor number in hex and the inode. Waiting requests (`1: -> FLOCK …`) are skipped.
fn lock_holder(metadata: &fs::Metadata) -> Option<u32> {
    let dev = metadata.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let inode = metadata.ino();
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, _, pid, id, ..] = fields[..] else {
            return None;
        };
        let mut parts = id.split(':');
        let matches = u64::from_str_radix(parts.next()?, 16).ok()? == major
            && u64::from_str_radix(parts.next()?, 16).ok()? == minor
            && parts.next()?.parse::<u64>().ok()? == inode;
        matches
            .then(|| pid.parse().ok())
            .flatten()
            .filter(|pid| *pid != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["card.vsc"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("card.vsc");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(write_atomic_new(&path, b"x").is_err());
    }

    #[test]
    fn new_files_are_0600_and_replacements_keep_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(mode(&path), 0o640);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"three").unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn write_new_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.vsct");
        write_atomic_new(&path, b"first").unwrap();
        assert_eq!(mode(&path), 0o600);
        let error = write_atomic_new(&path, b"second").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            error.to_string().contains("out.vsct already exists"),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["out.vsct"], "no temporary file left");
        // A dangling symbolic link is something too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let error = write_atomic_new(&link, b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn temporary_names_of_a_file() {
        assert!(is_temporary_of(
            "card.vsc",
            ".card.vsc.0123456789abcdef.tmp"
        ));
        assert!(
            is_temporary_of("card.vsc", ".card.vsc.1.0.tmp"),
            "the old fixed name"
        );
        assert!(is_temporary_of("card.vsc", ".card.vsc.4711.12.tmp"));
        for other in [
            "card.vsc",
            ".card.vsc.tmp",
            ".card.vsc..tmp",
            ".card.vsc.0123456789ABCDEF.tmp",
            ".card.vsc.0123456789abcde.tmp",
            ".card.vsc.x.1.tmp",
            ".other.vsc.0123456789abcdef.tmp",
            ".card.vsc.0123456789abcdef.tmp.keep",
            "card.vsc.0123456789abcdef.tmp",
        ] {
            assert!(!is_temporary_of("card.vsc", other), "{other}");
        }
    }

    #[test]
    fn the_holder_of_a_lock_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        write_atomic(&path, b"x").unwrap();
        let lock = FileLock::try_exclusive(&path).unwrap();
        let error = FileLock::try_exclusive(&path).unwrap_err();
        let LockError::InUse { holder, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(*holder, Some(std::process::id()), "{error}");
        assert!(error.to_string().ends_with(&format!(
            "card.vsc is in use by process {}",
            std::process::id()
        )));
        drop(lock);
        drop(FileLock::try_exclusive(&path).unwrap());
    }

    #[test]
    fn a_lock_follows_the_file_across_replacements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        write_atomic(&path, b"0").unwrap();
        let _lock = FileLock::try_exclusive(&path).unwrap();
        for generation in 1..4u8 {
            write_atomic(&path, &[generation]).unwrap();
            // Another open file description of the new file cannot lock it.
            let other = File::open(&path).unwrap();
            assert!(
                matches!(other.try_lock(), Err(TryLockError::WouldBlock)),
                "generation {generation}"
            );
        }
    }
}

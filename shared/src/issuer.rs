//! The issuer key file: the master key at rest, with its check value, readable by its owner only.
//!
//! The format is three lines of ASCII, specified byte by byte in `docs/keys.md`:
//!
//! ```text
//! vsc-issuer-key 1
//! master-key <64 hex digits>
//! kcv <10 hex digits>
//! ```

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::crypto::{KeyCheckValue, MasterKey};

/// The first word of the file.
const MAGIC: &str = "vsc-issuer-key";
/// The format version this code writes and reads.
const VERSION: u32 = 1;
/// A valid file is 108 bytes; anything much longer is not one.
const MAX_FILE_LEN: usize = 256;
/// Permission bits for group and others: none may be set.
const GROUP_OTHER_BITS: u32 = 0o077;

/// The issuer key file's content: the master key.
#[derive(Debug)]
pub struct IssuerKeyFile {
    master: MasterKey,
}

/// Why the content of a file is not a valid issuer key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The first line does not start with `vsc-issuer-key `.
    #[error("not an issuer key file (no `{MAGIC}` line)")]
    NotAnIssuerKeyFile,
    /// A format version this code does not know.
    #[error("issuer key file format version {0} is not supported (this program reads {VERSION})")]
    UnsupportedVersion(u32),
    /// A line is missing, malformed or unexpected; the line's content is never repeated, since
    /// it may hold key material.
    #[error("line {line}: {problem}")]
    Malformed {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The key does not have the check value written next to it.
    #[error("the key check value does not match the key: the file is corrupt or was edited")]
    CheckValueMismatch,
}

/// Why the issuer key file could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IssuerKeyError {
    /// There is no file at the path.
    #[error("issuer key file {} not found", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// `create_new` found a file (or anything else) at the path and left it alone.
    #[error("{} already exists; refusing to overwrite an issuer key file", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// Group or others have some access to the file.
    #[error(
        "issuer key file {} is accessible by group or others (mode {mode:04o}); \
         restrict it with `chmod 600`",
        path.display()
    )]
    Permissions {
        /// The path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The file's content is not a valid issuer key file.
    #[error("issuer key file {}: {source}", path.display())]
    Content {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeyFileError,
    },
    /// Reading, writing or syncing failed.
    #[error("issuer key file {}: {source}", path.display())]
    Io {
        /// The path of the file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl IssuerKeyFile {
    /// Generates a fresh master key and writes it to a new file at `path`, mode 0600.
    ///
    /// Never overwrites anything: the key is written completely and fsynced to a temporary file
    /// in the same folder, which is then hard-linked to `path` (the link fails if `path` exists,
    /// with no window for a race), removed, and the folder fsynced. A crash leaves either no
    /// file at `path` or the complete one.
    pub fn create_new(path: &Path) -> Result<IssuerKeyFile, IssuerKeyError> {
        if fs::symlink_metadata(path).is_ok() {
            return Err(IssuerKeyError::AlreadyExists { path: path.into() });
        }
        let key_file = IssuerKeyFile {
            master: MasterKey::generate(),
        };
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temporary = folder.join(format!(".vsc-issuer-key.{:016x}.tmp", OsRng.next_u64()));
        let written = write_synced(&temporary, key_file.encode().as_bytes())
            .and_then(|()| link_new(&temporary, path));
        let removed = fs::remove_file(&temporary);
        written?;
        removed.map_err(|source| io_error(&temporary, source))?;
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| io_error(folder, source))?;
        Ok(key_file)
    }

    /// Loads and checks the issuer key file at `path`.
    ///
    /// Refuses a file that group or others can access in any way, before reading it.
    pub fn load(path: &Path) -> Result<IssuerKeyFile, IssuerKeyError> {
        let mut file = File::open(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => IssuerKeyError::NotFound { path: path.into() },
            _ => io_error(path, source),
        })?;
        let mode = file
            .metadata()
            .map_err(|source| io_error(path, source))?
            .permissions()
            .mode();
        if mode & GROUP_OTHER_BITS != 0 {
            return Err(IssuerKeyError::Permissions {
                path: path.into(),
                mode: mode & 0o7777,
            });
        }
        // Sized up front so that reading never reallocates and leaves key copies behind.
        let mut content = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN + 1));
        (&mut file)
            .take(MAX_FILE_LEN as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|source| io_error(path, source))?;
        IssuerKeyFile::decode(&content).map_err(|source| IssuerKeyError::Content {
            path: path.into(),
            source,
        })
    }

    /// The file for an existing master key (to write it with [`IssuerKeyFile::encode`]).
    pub fn from_master_key(master: MasterKey) -> IssuerKeyFile {
        IssuerKeyFile { master }
    }

    /// The master key.
    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// The master key's check value, for `keys check` and key ceremonies.
    pub fn check_value(&self) -> KeyCheckValue {
        self.master.check_value()
    }

    /// The file content.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(MAX_FILE_LEN));
        text.push_str(MAGIC);
        text.push(' ');
        text.push_str(&VERSION.to_string());
        text.push_str("\nmaster-key ");
        // Formatted straight into the zeroizing buffer: `hex::encode` would leave a copy in a
        // plain String. Writing to a String cannot fail.
        for byte in self.master.secret_bytes() {
            let _ = write!(text, "{byte:02X}");
        }
        text.push_str("\nkcv ");
        text.push_str(&self.check_value().to_string());
        text.push('\n');
        text
    }

    /// Parses file content: every line in place, nothing after the last one, and the key
    /// matching its check value.
    pub fn decode(content: &[u8]) -> Result<IssuerKeyFile, KeyFileError> {
        let malformed = |line, problem| KeyFileError::Malformed { line, problem };
        if content.len() > MAX_FILE_LEN {
            return Err(malformed(
                1,
                "the file is far longer than an issuer key file",
            ));
        }
        let Some(body) = content.strip_suffix(b"\n") else {
            return Err(if content.starts_with(MAGIC.as_bytes()) {
                malformed(
                    content.split(|&b| b == b'\n').count(),
                    "incomplete last line",
                )
            } else {
                KeyFileError::NotAnIssuerKeyFile
            });
        };
        let mut lines = body.split(|&b| b == b'\n');

        let header = lines.next().unwrap_or_default();
        let version = header
            .strip_prefix(MAGIC.as_bytes())
            .and_then(|rest| rest.strip_prefix(b" "))
            .ok_or(KeyFileError::NotAnIssuerKeyFile)?;
        let version = std::str::from_utf8(version)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(malformed(1, "the version is not a number"))?;
        if version != VERSION {
            return Err(KeyFileError::UnsupportedVersion(version));
        }

        let mut key = Zeroizing::new([0u8; MasterKey::LEN]);
        let key_hex = lines
            .next()
            .and_then(|line| line.strip_prefix(b"master-key "))
            .ok_or(malformed(2, "expected `master-key` and the key"))?;
        hex::decode_to_slice(key_hex, &mut key[..])
            .map_err(|_| malformed(2, "the key is not 64 hex digits"))?;

        let mut kcv = [0u8; KeyCheckValue::LEN];
        let kcv_hex = lines
            .next()
            .and_then(|line| line.strip_prefix(b"kcv "))
            .ok_or(malformed(3, "expected `kcv` and the key check value"))?;
        hex::decode_to_slice(kcv_hex, &mut kcv)
            .map_err(|_| malformed(3, "the key check value is not 10 hex digits"))?;

        if lines.next().is_some() {
            return Err(malformed(4, "unexpected line after the key check value"));
        }
        let master = MasterKey::from_bytes(&key);
        if master.check_value() != KeyCheckValue::from_bytes(kcv) {
            return Err(KeyFileError::CheckValueMismatch);
        }
        Ok(IssuerKeyFile { master })
    }
}

/// Writes `content` to a new file at `path` (mode 0600) and syncs it to disk.
fn write_synced(path: &Path, content: &[u8]) -> Result<(), IssuerKeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| io_error(path, source))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(path, source))
}

/// Gives the complete file at `from` a second name `to`, failing if `to` exists.
fn link_new(from: &Path, to: &Path) -> Result<(), IssuerKeyError> {
    fs::hard_link(from, to).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => IssuerKeyError::AlreadyExists { path: to.into() },
        _ => io_error(to, source),
    })
}

fn io_error(path: &Path, source: io::Error) -> IssuerKeyError {
    IssuerKeyError::Io {
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file for the key 00 01 .. 1F, whose check value is 377822C093.
    const COUNTING_KEY_FILE: &str = "vsc-issuer-key 1\n\
        master-key 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n\
        kcv 377822C093\n";

    fn counting_key() -> MasterKey {
        MasterKey::from_bytes(&std::array::from_fn(|i| i as u8))
    }

    fn write_with_mode(path: &Path, content: &str, mode: u32) {
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn encodes_the_specified_format() {
        let file = IssuerKeyFile::from_master_key(counting_key());
        assert_eq!(*file.encode(), COUNTING_KEY_FILE);
        assert_eq!(COUNTING_KEY_FILE.len(), 108);
    }

    #[test]
    fn decodes_the_committed_example() {
        let file = IssuerKeyFile::decode(COUNTING_KEY_FILE.as_bytes()).unwrap();
        assert_eq!(*file.master_key(), counting_key());
        assert_eq!(file.check_value().to_string(), "377822C093");
        // Lower-case hex is read too.
        let lower = COUNTING_KEY_FILE.replace("0A0B0C0D0E0F", "0a0b0c0d0e0f");
        assert!(IssuerKeyFile::decode(lower.as_bytes()).is_ok());
    }

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.key");
        let created = IssuerKeyFile::create_new(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = IssuerKeyFile::load(&path).unwrap();
        assert_eq!(loaded.master_key(), created.master_key());
        assert_eq!(loaded.check_value(), created.check_value());
        // Only the key file is left in the folder: the temporary file is gone.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.key");
        fs::write(&path, "precious").unwrap();
        let error = IssuerKeyFile::create_new(&path).unwrap_err();
        assert!(
            matches!(error, IssuerKeyError::AlreadyExists { .. }),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn link_step_refuses_an_existing_target() {
        // The race-free guard behind the early check: a file appearing between the check and
        // the link is not overwritten.
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("new");
        let to = dir.path().join("existing");
        fs::write(&from, "new").unwrap();
        fs::write(&to, "old").unwrap();
        assert!(matches!(
            link_new(&from, &to).unwrap_err(),
            IssuerKeyError::AlreadyExists { .. }
        ));
        assert_eq!(fs::read_to_string(&to).unwrap(), "old");
    }

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = IssuerKeyFile::load(&dir.path().join("none.key")).unwrap_err();
        assert!(matches!(error, IssuerKeyError::NotFound { .. }), "{error}");
    }

    #[test]
    fn files_open_to_group_or_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.key");
        for mode in [0o640, 0o604, 0o644, 0o620, 0o660, 0o601] {
            write_with_mode(&path, COUNTING_KEY_FILE, mode);
            let error = IssuerKeyFile::load(&path).unwrap_err();
            assert!(
                matches!(error, IssuerKeyError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {error}"
            );
            assert!(error.to_string().contains("chmod 600"));
        }
        for mode in [0o600, 0o400] {
            write_with_mode(&path, COUNTING_KEY_FILE, mode);
            assert!(IssuerKeyFile::load(&path).is_ok(), "{mode:o}");
        }
    }

    #[test]
    fn wrong_magic() {
        for content in [
            "",
            "\n",
            "vsc-image 1\nmaster-key 00\nkcv 00\n",
            "VSC-ISSUER-KEY 1\n",
            "vsc-issuer-key1\n",
        ] {
            assert_eq!(
                IssuerKeyFile::decode(content.as_bytes()).unwrap_err(),
                KeyFileError::NotAnIssuerKeyFile,
                "{content:?}"
            );
        }
    }

    #[test]
    fn versions() {
        let v2 = COUNTING_KEY_FILE.replace("vsc-issuer-key 1", "vsc-issuer-key 2");
        assert_eq!(
            IssuerKeyFile::decode(v2.as_bytes()).unwrap_err(),
            KeyFileError::UnsupportedVersion(2)
        );
        for bad in ["vsc-issuer-key x", "vsc-issuer-key ", "vsc-issuer-key +1"] {
            let content = COUNTING_KEY_FILE.replace("vsc-issuer-key 1", bad);
            assert!(matches!(
                IssuerKeyFile::decode(content.as_bytes()).unwrap_err(),
                KeyFileError::Malformed { line: 1, .. }
            ));
        }
    }

    #[test]
    fn bad_hex() {
        let cases = [
            // A non-hex digit in the key.
            (COUNTING_KEY_FILE.replace("0A0B", "0G0B"), 2),
            // A key one digit short or long.
            (COUNTING_KEY_FILE.replace("1E1F\n", "1E1\n"), 2),
            (COUNTING_KEY_FILE.replace("1E1F\n", "1E1F0\n"), 2),
            // A line ending edited to CRLF.
            (COUNTING_KEY_FILE.replace("1E1F\n", "1E1F\r\n"), 2),
            (COUNTING_KEY_FILE.replace("master-key ", "masterkey "), 2),
            (COUNTING_KEY_FILE.replace("377822C093", "377822C09"), 3),
            (COUNTING_KEY_FILE.replace("377822C093", "377822C0 3"), 3),
            (COUNTING_KEY_FILE.replace("kcv ", "kcv: "), 3),
        ];
        for (content, line) in cases {
            let error = IssuerKeyFile::decode(content.as_bytes()).unwrap_err();
            assert!(
                matches!(error, KeyFileError::Malformed { line: l, .. } if l == line),
                "{content:?}: {error}"
            );
            // Errors never repeat the content.
            assert!(!error.to_string().contains("0102030405"));
        }
    }

    #[test]
    fn truncated_or_extended_files() {
        // Every proper prefix of a valid file (a half-written file) is refused.
        for len in 0..COUNTING_KEY_FILE.len() {
            assert!(
                IssuerKeyFile::decode(&COUNTING_KEY_FILE.as_bytes()[..len]).is_err(),
                "{len} bytes"
            );
        }
        let extra = format!("{COUNTING_KEY_FILE}note\n");
        assert!(matches!(
            IssuerKeyFile::decode(extra.as_bytes()).unwrap_err(),
            KeyFileError::Malformed { line: 4, .. }
        ));
        let long = format!("{COUNTING_KEY_FILE}{}", "x".repeat(300));
        assert!(matches!(
            IssuerKeyFile::decode(long.as_bytes()).unwrap_err(),
            KeyFileError::Malformed { .. }
        ));
    }

    #[test]
    fn wrong_check_value_is_corrupt_or_edited() {
        let edited_key = COUNTING_KEY_FILE.replace("1E1F\n", "1E1E\n");
        let edited_kcv = COUNTING_KEY_FILE.replace("377822C093", "377822C094");
        for content in [edited_key, edited_kcv] {
            assert_eq!(
                IssuerKeyFile::decode(content.as_bytes()).unwrap_err(),
                KeyFileError::CheckValueMismatch
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.key");
        write_with_mode(&path, &COUNTING_KEY_FILE.replace("C093", "C099"), 0o600);
        let error = IssuerKeyFile::load(&path).unwrap_err();
        assert!(
            error.to_string().contains("corrupt or was edited"),
            "{error}"
        );
        assert!(matches!(
            error,
            IssuerKeyError::Content {
                source: KeyFileError::CheckValueMismatch,
                ..
            }
        ));
    }
}

//! The PIN mailer: each holder's PIN and PUK, encrypted to the issuer's age recipients, never in
//! clear on disk. One file per stored batch, `<run start>-<run id>-<n>.csv.age`, reconciled with
//! the store so that every stored card has exactly one mailer entry:
//!
//! 1. the store is told of the file and the cards it will name (the file is *pending*);
//! 2. the file is written whole (temporary file, sync, no-clobber rename, folder sync): never
//!    over another file, whatever the names;
//! 3. the batch's cards and the file's *stored* state are committed in one transaction.
//!
//! A run stopped between 1 and 3 leaves a pending file: the next run finds it (its run is dead:
//! the run's lock file in the folder is no longer locked), renames it `….csv.age.orphan` and
//! names its entries, which belong to no stored card. Decrypted, a file is CSV:
//! `uid,record,pin,puk`, one line per card.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use vsc_core::security::SecretBytes;
use zeroize::Zeroizing;

use crate::content::CardContent;
use crate::files::{AtomicFile, Mode, Overwrite};
use crate::records::Position;
use crate::store::{MailerFile, MailerState, Store, StoreError, Uid};

/// An age X25519 recipient (`age1…`).
pub type Recipient = age::x25519::Recipient;

/// One holder's line.
pub struct PinRow {
    uid: Uid,
    position: Position,
    pin: SecretBytes,
    puk: SecretBytes,
    /// An OpenPGP token's: `pin` is PW1, `puk` PW3, and this the resetting code.
    openpgp: Option<Option<SecretBytes>>,
}

/// The header of a PIN mailer file of VSC file system cards.
const VSC_HEADER: &[u8] = b"uid,record,pin,puk\n";
/// The header of a PIN mailer file of OpenPGP tokens.
const OPENPGP_HEADER: &[u8] = b"uid,record,pin,admin_pin,resetting_code\n";

impl PinRow {
    /// The PIN and PUK of a card's content (PW1, PW3 and the resetting code of an OpenPGP
    /// token).
    pub fn new(content: &CardContent) -> PinRow {
        match &content.openpgp {
            Some(openpgp) => PinRow {
                uid: content.uid,
                position: content.position,
                pin: openpgp.pw1.clone(),
                puk: openpgp.pw3.clone(),
                openpgp: Some(openpgp.resetting_code.clone()),
            },
            None => PinRow {
                uid: content.uid,
                position: content.position,
                pin: content.pin.clone(),
                puk: content.puk.clone(),
                openpgp: None,
            },
        }
    }

    /// The card.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// A row with a made-up PIN and PUK, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(uid: Uid) -> PinRow {
        PinRow {
            uid,
            position: Position::Line(2),
            pin: SecretBytes::new(b"123456"),
            puk: SecretBytes::new(b"12345678"),
            openpgp: None,
        }
    }
}

impl std::fmt::Debug for PinRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinRow({}, {})", self.uid, self.position)
    }
}

/// Why the PIN mailer cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    /// Not an age X25519 recipient (`age1…`).
    #[error("{0:?} is not an age recipient (age1…; make one with age-keygen)")]
    Recipient(String),
    /// No recipient given.
    #[error("no age recipient given")]
    NoRecipient,
    /// Writing failed.
    #[error("PIN mailer {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be made.
    #[error("PIN mailer: {0}")]
    File(#[from] crate::files::FileError),
    /// age refused to encrypt.
    #[error("PIN mailer: age: {0}")]
    Encrypt(String),
    /// The store could not take the file's state.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads an age recipient.
pub fn parse_recipient(text: &str) -> Result<Recipient, PinsError> {
    Recipient::from_str(text.trim()).map_err(|_| PinsError::Recipient(text.to_string()))
}

/// A PIN mailer file whose batch never reached the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The file's name.
    pub name: String,
    /// Where it is now (renamed `.orphan`), if it was written at all.
    pub path: Option<PathBuf>,
    /// The cards its entries name: none of these entries is a stored card's PIN.
    pub uids: Vec<Uid>,
}

/// Writes PIN mailer files into a folder.
pub struct PinMailer {
    folder: PathBuf,
    recipients: Vec<Recipient>,
    run: String,
    started: String,
    files: Vec<PathBuf>,
    lock: Option<(PathBuf, File)>,
}

impl PinMailer {
    /// A mailer writing into `folder` (made with mode 0700 at the first file) for
    /// `recipients`.
    pub fn new(folder: &Path, recipients: Vec<Recipient>) -> Result<PinMailer, PinsError> {
        if recipients.is_empty() {
            return Err(PinsError::NoRecipient);
        }
        let now = time::OffsetDateTime::now_utc();
        let started = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        Ok(PinMailer {
            folder: folder.to_path_buf(),
            recipients,
            run: format!("{:08x}", rand::random::<u32>()),
            started,
            files: Vec::new(),
            lock: None,
        })
    }

    /// This run's id (random, in every file name).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The files written so far.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PinsError + '_ {
        move |source| PinsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Finds the pending files of runs that died (their lock is free): renames each
    /// `….orphan`, tells the store, and removes stale temporary files and locks.
    pub fn reconcile(&mut self, store: &mut dyn Store) -> Result<Vec<Orphan>, PinsError> {
        let mut orphans = Vec::new();
        for file in store.mailer_files(MailerState::Pending)? {
            if file.run == self.run {
                continue;
            }
            let folder = PathBuf::from(&file.folder);
            let lock = folder.join(lock_name(&file.run));
            if run_alive(&lock) {
                continue;
            }
            let written = folder.join(&file.name);
            let path = if written.exists() {
                let renamed = folder.join(format!("{}.orphan", file.name));
                fs::rename(&written, &renamed).map_err(Self::io(&written))?;
                Some(renamed)
            } else {
                None
            };
            store.mark_orphan(&file.name)?;
            let _ = fs::remove_file(&lock);
            orphans.push(Orphan {
                name: file.name,
                path,
                uids: file.uids,
            });
        }
        // Temporary files of killed runs: `.<name>.<random>.tmp` (see files.rs).
        if let Ok(entries) = fs::read_dir(&self.folder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.contains(".csv.age.") && name.ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(orphans)
    }

    /// Makes the folder (0700) and takes this run's lock, once.
    fn ready(&mut self) -> Result<(), PinsError> {
        if self.lock.is_some() {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.folder)
            .map_err(Self::io(&self.folder))?;
        let path = self.folder.join(lock_name(&self.run));
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(Self::io(&path))?;
        file.lock().map_err(Self::io(&path))?;
        self.lock = Some((path, file));
        Ok(())
    }

    /// Writes one batch: announced to the store, then the whole file; the caller then commits
    /// the batch with the file's name ([`PinMailer::abandon`] if that fails).
    pub fn write_batch<'a>(
        &mut self,
        store: &mut dyn Store,
        rows: impl Iterator<Item = &'a PinRow> + Clone,
    ) -> Result<String, PinsError> {
        self.ready()?;
        let name = format!(
            "{}-{}-{:05}.csv.age",
            self.started,
            self.run,
            self.files.len() + 1
        );
        store.announce_mailer_file(&MailerFile {
            name: name.clone(),
            run: self.run.clone(),
            folder: self.folder.to_string_lossy().into_owned(),
            state: MailerState::Pending,
            uids: rows.clone().map(PinRow::uid).collect(),
        })?;
        let path = self.folder.join(&name);
        match self.write_file(&path, rows) {
            Ok(()) => {
                self.files.push(path);
                Ok(name)
            }
            Err(error) => {
                let _ = store.mark_orphan(&name);
                Err(error)
            }
        }
    }

    fn write_file<'a>(
        &self,
        path: &Path,
        rows: impl Iterator<Item = &'a PinRow>,
    ) -> Result<(), PinsError> {
        let mut rows = rows.peekable();
        let token = rows.peek().is_some_and(|row| row.openpgp.is_some());
        let mut plain = Zeroizing::new(if token { OPENPGP_HEADER } else { VSC_HEADER }.to_vec());
        for row in rows {
            let record = match row.position {
                Position::Line(n) | Position::Row(n) => n,
            };
            plain.extend_from_slice(format!("{},{record},", row.uid).as_bytes());
            plain.extend_from_slice(row.pin.expose());
            plain.push(b',');
            plain.extend_from_slice(row.puk.expose());
            if let Some(code) = &row.openpgp {
                plain.push(b',');
                if let Some(code) = code {
                    plain.extend_from_slice(code.expose());
                }
            }
            plain.push(b'\n');
        }
        let recipients = self.recipients.iter().map(|r| r as &dyn age::Recipient);
        let encryptor = age::Encryptor::with_recipients(recipients)
            .map_err(|e| PinsError::Encrypt(e.to_string()))?;
        let file = AtomicFile::create(path, Mode::Private, Overwrite::Refuse)?;
        let mut writer = encryptor.wrap_output(file).map_err(Self::io(path))?;
        writer.write_all(&plain).map_err(Self::io(path))?;
        let file = writer.finish().map_err(Self::io(path))?;
        file.commit()?;
        Ok(())
    }

    /// The batch of file `name` did not reach the store: the file is an orphan now.
    pub fn abandon(&mut self, store: &mut dyn Store, name: &str) {
        let written = self.folder.join(name);
        if self.files.last() == Some(&written) {
            self.files.pop();
        }
        let _ = fs::rename(&written, self.folder.join(format!("{name}.orphan")));
        let _ = store.mark_orphan(name);
    }
}

impl Drop for PinMailer {
    fn drop(&mut self) {
        if let Some((path, file)) = self.lock.take() {
            let _ = fs::remove_file(&path);
            drop(file);
        }
    }
}

fn lock_name(run: &str) -> String {
    format!(".run-{run}.lock")
}

/// Whether the run owning `lock` is still running: it holds the lock as long as it lives (the
/// kernel releases it when the process dies, even killed).
fn run_alive(lock: &Path) -> bool {
    match File::open(lock) {
        Ok(file) => match file.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

impl std::fmt::Debug for PinMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinMailer")
            .field("folder", &self.folder)
            .field("run", &self.run)
            .field("files", &self.files.len())
            .finish()
    }
}

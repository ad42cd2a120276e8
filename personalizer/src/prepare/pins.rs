//! The PIN mailer: each holder's PIN and PUK, encrypted to the issuer's age recipients, never in
//! clear on disk. One file per stored batch (`<run>-<n>.csv.age`), each complete and synced
//! before its cards enter the store, so a crash never leaves a stored card without its PINs.
//!
//! Decrypted, a file is CSV: `uid,record,pin,puk`, one line per card.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use vsc_core::security::SecretBytes;
use zeroize::Zeroizing;

use crate::content::CardContent;
use crate::records::Position;

/// One holder's line.
pub struct PinRow {
    uid: [u8; 8],
    position: Position,
    pin: SecretBytes,
    puk: SecretBytes,
}

impl PinRow {
    /// The PIN and PUK of a card's content.
    pub fn new(content: &CardContent) -> PinRow {
        PinRow {
            uid: content.uid,
            position: content.position,
            pin: content.pin.clone(),
            puk: content.puk.clone(),
        }
    }
}

impl std::fmt::Debug for PinRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PinRow({}, {})",
            hex::encode_upper(self.uid),
            self.position
        )
    }
}

/// Why the PIN mailer cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    /// Not an age X25519 recipient (`age1…`).
    #[error("{0:?} is not an age recipient (age1…)")]
    Recipient(String),
    /// No recipient given.
    #[error("no age recipient given")]
    NoRecipient,
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// age refused to encrypt.
    #[error("age: {0}")]
    Encrypt(String),
}

/// Writes PIN mailer files into a folder.
pub struct PinMailer {
    folder: PathBuf,
    recipients: Vec<age::x25519::Recipient>,
    run: String,
    files: Vec<PathBuf>,
}

impl PinMailer {
    /// A mailer writing into `folder` (made with mode 0700 if missing) for `recipients`.
    pub fn new(folder: &Path, recipients: &[String]) -> Result<PinMailer, PinsError> {
        if recipients.is_empty() {
            return Err(PinsError::NoRecipient);
        }
        let recipients = recipients
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r.trim())
                    .map_err(|_| PinsError::Recipient(r.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(|source| PinsError::Io {
                path: folder.to_path_buf(),
                source,
            })?;
        let now = time::OffsetDateTime::now_utc();
        let run = format!(
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
            run,
            files: Vec::new(),
        })
    }

    /// The files written so far.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Writes one batch as one complete, synced file.
    pub fn write_batch<'a>(
        &mut self,
        rows: impl Iterator<Item = &'a PinRow>,
    ) -> Result<PathBuf, PinsError> {
        let mut plain = Zeroizing::new(b"uid,record,pin,puk\n".to_vec());
        for row in rows {
            let record = match row.position {
                Position::Line(n) | Position::Row(n) => n,
            };
            plain.extend_from_slice(format!("{},{record},", hex::encode_upper(row.uid)).as_bytes());
            plain.extend_from_slice(row.pin.expose());
            plain.push(b',');
            plain.extend_from_slice(row.puk.expose());
            plain.push(b'\n');
        }
        let path = self
            .folder
            .join(format!("{}-{:05}.csv.age", self.run, self.files.len() + 1));
        let temporary = self
            .folder
            .join(format!(".{}-{:05}.tmp", self.run, self.files.len() + 1));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PinsError::Io { path, source }
        };
        let recipients = self.recipients.iter().map(|r| r as &dyn age::Recipient);
        let encryptor = age::Encryptor::with_recipients(recipients)
            .map_err(|e| PinsError::Encrypt(e.to_string()))?;
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io(&temporary))?;
        let mut writer = encryptor.wrap_output(file).map_err(io(&temporary))?;
        writer.write_all(&plain).map_err(io(&temporary))?;
        let file = writer.finish().map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        drop(file);
        fs::rename(&temporary, &path).map_err(io(&path))?;
        File::open(&self.folder)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.folder))?;
        self.files.push(path.clone());
        Ok(path)
    }
}

impl std::fmt::Debug for PinMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinMailer")
            .field("folder", &self.folder)
            .field("files", &self.files.len())
            .finish()
    }
}

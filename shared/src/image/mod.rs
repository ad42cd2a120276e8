//! VSC images (`.vsc`): a card's persistent state in one file, the UID and public area in clear,
//! the private, secret key and password areas each sealed under a key derived from the issuer
//! master key and the UID, the whole file authenticated. `docs/image-format.md` specifies it
//! byte by byte; old versions keep loading through the committed vectors in `tests/vectors/`.
//! Version 2 adds the applications (each one's objects filed under the same areas) and the
//! generation, which every save counts up.

mod atomic;
mod format;
pub mod served;

pub use atomic::{
    FileLock, LockError, NEW_FILE_MODE, is_temporary_of, remove_stale_temporaries, write_atomic,
    write_atomic_new,
};
pub use format::{
    ClearView, FORMAT_VERSION, MAGIC, OLDEST_VERSION, Opened, decode, encode, encode_with_rng,
    open, read_clear,
};

use std::path::{Path, PathBuf};

use crate::card::CardState;
use crate::crypto::{KeyCheckValue, MasterKey};

/// The areas of an image, by section tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// `01`: life cycle and every file but DF.PRIVATE, in clear.
    Clear,
    /// `02`: DF.PRIVATE, sealed.
    Private,
    /// `03`: the secret key area, sealed.
    SecretKeys,
    /// `04`: the password area, sealed.
    Passwords,
}

impl Area {
    /// The section tag.
    pub fn tag(self) -> u8 {
        match self {
            Area::Clear => 0x01,
            Area::Private => 0x02,
            Area::SecretKeys => 0x03,
            Area::Passwords => 0x04,
        }
    }

    /// The area's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Area::Clear => "clear area",
            Area::Private => "private area",
            Area::SecretKeys => "secret key area",
            Area::Passwords => "password area",
        }
    }
}

/// Why an image cannot be loaded or written. Every way a file can be wrong has its own
/// variant; none of them says anything about the sealed contents.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file does not start with the image magic.
    #[error("not a VSC image (no VSCIMAGE magic)")]
    NotAnImage,
    /// A format version this program does not read.
    #[error(
        "VSC image format version {0} is not supported (this program reads versions {OLDEST_VERSION} to {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u16),
    /// The file ends before its header, sections or MAC do.
    #[error("the image is truncated (it ends before its {0} does)")]
    Truncated(&'static str),
    /// The image was made under another issuer master key.
    #[error(
        "the image was sealed under the issuer key with check value {image}, not this one ({key})"
    )]
    WrongIssuerKey {
        /// The check value the image names.
        image: KeyCheckValue,
        /// The check value of the key given.
        key: KeyCheckValue,
    },
    /// A sealed area of another card was put into this image.
    #[error("the {} belongs to card {}, not to this card {}", area.name(), hex::encode_upper(found), hex::encode_upper(uid))]
    ForeignArea {
        /// Which area.
        area: Area,
        /// The card the image is for.
        uid: [u8; 8],
        /// The card the area was sealed for.
        found: [u8; 8],
    },
    /// The image's MAC does not verify: a byte was changed or damaged.
    #[error("the image was altered or damaged: its MAC does not verify")]
    Tampered,
    /// The authenticated content cannot be decoded (a program and format mismatch).
    #[error("the image's {0} cannot be decoded")]
    Malformed(&'static str),
    /// Without the issuer key, the clear part does not read: nothing is verified, so the file
    /// may be damaged or altered, or written by another program.
    #[error(
        "the image's {0} cannot be read; without the issuer key nothing in it is verified (damaged, altered, or not written by this program)"
    )]
    Unverified(&'static str),
    /// A card without EF.UID cannot be an image.
    #[error("the card has no UID yet (EF.UID is missing)")]
    NoUid,
}

/// Writes `state` as an image at `path`, atomically: the file holds the old image or the new
/// one, whatever happens.
pub fn save(path: &Path, state: &CardState, master: &MasterKey) -> Result<(), ImageError> {
    let bytes = encode(state, master)?;
    write_atomic(path, &bytes).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and opens the image at `path`, also saying its format version.
pub fn load_opened(path: &Path, master: &MasterKey) -> Result<Opened, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    open(&bytes, master)
}

/// Reads and opens the image at `path`.
pub fn load(path: &Path, master: &MasterKey) -> Result<CardState, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes, master)
}

#[cfg(test)]
mod tests;

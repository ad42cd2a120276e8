//! A VSC image served as a live card: the card OS, with every change to the card saved
//! atomically before the response leaves, and the session optionally recorded. The image is
//! locked while it is served.

use std::path::{Path, PathBuf};

use vsc_core::apdu::Status;
use vsc_core::card::{Card, CardState};
use vsc_core::crypto::MasterKey;
use vsc_core::image::{self, FileLock, ImageError, LockError};

use crate::card::VirtualCard;
use crate::record::Recorder;

/// A VSC in a slot.
pub struct VscCard {
    card: Card,
    persistence: Persistence,
    recorder: Option<Recorder>,
    /// The image's lock, held while the card is served (none for a card made in memory).
    _lock: Option<FileLock>,
}

/// Why an image cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process serves the image: it holds the image's lock.
    #[error(
        "{} is in use{}: an image is served by one emulator at a time",
        path.display(),
        holder_text(*holder, holder_name.as_deref())
    )]
    InUse {
        /// The image.
        path: PathBuf,
        /// The process that holds it, when the system says.
        holder: Option<u32>,
        /// That process's name.
        holder_name: Option<String>,
    },
    /// The image cannot be opened, locked or cleaned up.
    #[error("{}", path.display())]
    Io {
        /// The image.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The image does not load.
    #[error("{}", path.display())]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        source: ImageError,
    },
}

fn holder_text(pid: Option<u32>, name: Option<&str>) -> String {
    match (pid, name) {
        (Some(pid), Some(name)) => format!(" by process {pid} ({name})"),
        (Some(pid), None) => format!(" by process {pid}"),
        _ => " by another process".into(),
    }
}

impl OpenError {
    fn from_image(path: &Path, error: ImageError) -> OpenError {
        match error {
            ImageError::Io { path, source } => OpenError::Io { path, source },
            source => OpenError::Image {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    fn from_lock(error: LockError) -> OpenError {
        match error {
            LockError::InUse { path, holder } => OpenError::InUse {
                holder_name: holder.and_then(process_name),
                path,
                holder,
            },
            LockError::Io { path, source } => OpenError::Io { path, source },
        }
    }
}

/// A process's name, from `/proc`.
fn process_name(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().to_owned()).filter(|name| !name.is_empty())
}

/// What happens to the changes a command makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saving {
    /// Saved into the image before the answer leaves.
    Image,
    /// Kept in memory until the emulator stops (`--read-only`).
    ReadOnly,
    /// Forgotten at every power-on: the card is what its image holds each time it is powered
    /// (`--fresh`, for rigs that personalize the same blank card again and again).
    Fresh,
}

/// Where the card's state goes after a change.
enum Persistence {
    /// Served from memory only (`--read-only`, or a card made in a test).
    None,
    /// Served from memory, and back to `initial` at every power-on.
    Fresh { initial: Box<CardState> },
    /// Saved into its image file; `saved` is what the file holds, to fall back on when a save
    /// fails.
    Image {
        path: PathBuf,
        master: MasterKey,
        saved: Box<CardState>,
    },
}

impl VscCard {
    /// Opens the image at `path` for serving, its changes going where `saving` says.
    ///
    /// The image is locked first (exclusively, whatever `saving` says: a card served twice would
    /// answer from two states), and the temporary files that a killed save of it left behind are
    /// removed.
    pub fn open(path: &Path, master: MasterKey, saving: Saving) -> Result<VscCard, OpenError> {
        let lock = FileLock::try_exclusive(path).map_err(OpenError::from_lock)?;
        let removed = image::remove_stale_temporaries(path).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !removed.is_empty() {
            tracing::info!(
                "{}: removed {} temporary file(s) left by an interrupted save",
                path.display(),
                removed.len()
            );
        }
        let state =
            image::load(path, &master).map_err(|error| OpenError::from_image(path, error))?;
        let persistence = match saving {
            Saving::ReadOnly => Persistence::None,
            Saving::Fresh => Persistence::Fresh {
                initial: Box::new(state.clone()),
            },
            Saving::Image => Persistence::Image {
                path: path.to_path_buf(),
                master,
                saved: Box::new(state.clone()),
            },
        };
        Ok(VscCard {
            card: Card::from_state(state),
            persistence,
            recorder: None,
            _lock: Some(lock),
        })
    }

    /// Serves `card` from memory.
    pub fn in_memory(card: Card) -> VscCard {
        VscCard {
            card,
            persistence: Persistence::None,
            recorder: None,
            _lock: None,
        }
    }

    /// Records the session from now on into a transcript at `path`.
    pub fn record_into(&mut self, path: &Path) -> std::io::Result<()> {
        self.recorder = Some(Recorder::create(path, &self.card)?);
        Ok(())
    }

    /// The card's state now.
    pub fn state(&self) -> &CardState {
        self.card.state()
    }

    /// Ends the recording, if any, writing its digest trailer; returns the number of steps.
    pub fn finish_recording(&mut self) -> std::io::Result<Option<usize>> {
        match self.recorder.take() {
            Some(recorder) => recorder.finish().map(Some),
            None => Ok(None),
        }
    }

    /// Saves a changed card before its response leaves. When the save fails, the card falls
    /// back to what its image holds and the command answers `6581` (memory failure): the
    /// terminal never learns the outcome of a change that did not last.
    fn persist(&mut self, response: &mut Vec<u8>) {
        if !self.card.take_changed() {
            return;
        }
        let Persistence::Image {
            path,
            master,
            saved,
        } = &mut self.persistence
        else {
            return;
        };
        match image::save(path, self.card.state(), master) {
            Ok(()) => **saved = self.card.state().clone(),
            Err(error) => {
                tracing::error!(
                    "cannot save the card, answering 6581 and undoing the change: {error}"
                );
                self.card = Card::from_state((**saved).clone());
                response.clear();
                response.extend_from_slice(&Status::MemoryFailure.to_bytes());
            }
        }
    }
}

impl VirtualCard for VscCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        self.card.transmit_into(command, response);
        self.persist(response);
        if let Some(recorder) = &mut self.recorder {
            recorder.exchange(command, response, self.card.disclosure_context());
        }
    }

    fn reset(&mut self) {
        self.card.reset();
        if let Some(recorder) = &mut self.recorder {
            recorder.reset(false);
        }
    }

    fn power_on(&mut self) {
        match &self.persistence {
            Persistence::Fresh { initial } => self.card = Card::from_state((**initial).clone()),
            _ => self.card.reset(),
        }
        if let Some(recorder) = &mut self.recorder {
            recorder.reset(true);
        }
    }

    fn power_off(&mut self) {
        self.card.reset();
    }
}

impl std::fmt::Debug for VscCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VscCard")
            .field("uid", &self.card.state().uid())
            .field(
                "saves",
                &matches!(self.persistence, Persistence::Image { .. }),
            )
            .field("records", &self.recorder.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[3; 32])
    }

    fn verify_wrong(card: &mut VscCard) -> Vec<u8> {
        let mut response = Vec::new();
        card.transmit(b"\x00\x20\x00\x01\x08999999\xFF\xFF", &mut response);
        response
    }

    #[test]
    fn a_pin_try_is_saved_before_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        let on_disk = image::load(&path, &master()).unwrap();
        assert_eq!(
            on_disk
                .passwords
                .get(vsc_core::security::PasswordRef::UserPin)
                .unwrap()
                .tries_left,
            2
        );
    }

    #[test]
    fn read_only_cards_change_in_memory_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::ReadOnly).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn fresh_cards_are_their_image_again_at_every_power_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::Fresh).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        card.reset();
        assert_eq!(
            verify_wrong(&mut card),
            [0x63, 0xC1],
            "a warm reset keeps the card's state"
        );
        card.power_on();
        assert_eq!(
            verify_wrong(&mut card),
            [0x63, 0xC2],
            "a power-on brings the image back"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn an_image_is_served_once_and_its_stale_temporary_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        let stale = [".card.vsc.0123456789abcdef.tmp", ".card.vsc.1.0.tmp"];
        for name in stale {
            std::fs::write(dir.path().join(name), b"left by a kill").unwrap();
        }
        std::fs::write(dir.path().join(".other.vsc.1.0.tmp"), b"not ours").unwrap();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        for name in stale {
            assert!(!dir.path().join(name).exists(), "{name}");
        }
        assert!(dir.path().join(".other.vsc.1.0.tmp").exists());

        // Saving keeps the image locked: a second open fails, before and after a save.
        for _ in 0..2 {
            let error = VscCard::open(&path, master(), Saving::ReadOnly).unwrap_err();
            assert!(matches!(error, OpenError::InUse { .. }), "{error}");
            assert!(
                error.to_string().contains(&format!(
                    "card.vsc is in use by process {}",
                    std::process::id()
                )),
                "{error}"
            );
            assert_eq!(verify_wrong(&mut card)[0], 0x63);
        }
        drop(card);
        VscCard::open(&path, master(), Saving::ReadOnly).unwrap();
    }

    #[test]
    fn a_failed_save_undoes_the_change_and_answers_6581() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        // The folder disappears: the next save cannot happen.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x65, 0x81]);
        assert_eq!(
            card.state()
                .passwords
                .get(vsc_core::security::PasswordRef::UserPin)
                .unwrap()
                .tries_left,
            3,
            "the try did not last, so it did not count"
        );
        std::fs::rename(&moved, dir.path()).unwrap();
    }
}

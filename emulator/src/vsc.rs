//! A VSC image served as a live card: the card OS, with every change to the card saved
//! atomically into its image through the card's persistence hook before the response leaves
//! (and every password try saved before it is compared), and the session optionally recorded.
//! The image is locked while it is served.

use std::path::{Path, PathBuf};

use vsc_core::card::{Card, CardState, Persistence, SaveFailed};
use vsc_core::crypto::MasterKey;
use vsc_core::image::served::{self, Check, RollbackError};
use vsc_core::image::{self, FileLock, ImageError, LockError};

use crate::card::VirtualCard;
use crate::record::Recorder;

/// A VSC in a slot.
pub struct VscCard {
    card: Card,
    /// The state to give the card at every power-on (`--fresh`).
    fresh: Option<Box<CardState>>,
    saves: bool,
    recorder: Option<Recorder>,
    /// The image's lock, held while the card is served (none for a card made in memory).
    _lock: Option<FileLock>,
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
    /// The image is older than one served before, or its record does not verify.
    #[error("{}", path.display())]
    Rollback {
        /// The image.
        path: PathBuf,
        /// Why.
        source: RollbackError,
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

/// The persistence hook that saves a card into its image file, then the record of the
/// generation served beside it (the rollback check); `saved` is what the file holds, for the
/// card to fall back on when a save fails.
pub struct ImageFile {
    path: PathBuf,
    master: MasterKey,
    saved: Box<CardState>,
}

impl ImageFile {
    /// Saves into the image at `path`, which holds `saved` now.
    pub fn new(path: &Path, master: MasterKey, saved: CardState) -> ImageFile {
        ImageFile {
            path: path.to_path_buf(),
            master,
            saved: Box::new(saved),
        }
    }
}

impl Persistence for ImageFile {
    fn save(&mut self, state: &CardState) -> Result<(), SaveFailed> {
        match image::save(&self.path, state, &self.master) {
            Ok(()) => {
                *self.saved = state.clone();
                // The image is durable: a record that lags behind only weakens the rollback
                // check, while failing here would undo a counted PIN try in memory.
                let uid = state.uid().unwrap_or_default().0;
                if let Err(error) = served::record(&self.path, uid, state.generation, &self.master)
                {
                    tracing::error!("the rollback record lags behind the image: {error}");
                }
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    "cannot save the card, answering 6581 and undoing the change: {error}"
                );
                Err(SaveFailed)
            }
        }
    }

    fn durable(&self) -> Option<CardState> {
        Some((*self.saved).clone())
    }
}

impl std::fmt::Debug for ImageFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VscCard {
    /// Opens the image at `path` for serving, its changes going where `saving` says; an image
    /// older than one served before is refused.
    ///
    /// The image is locked first (exclusively, whatever `saving` says: a card served twice would
    /// answer from two states), and the temporary files that a killed save of it left behind are
    /// removed.
    pub fn open(path: &Path, master: MasterKey, saving: Saving) -> Result<VscCard, OpenError> {
        VscCard::serve(path, master, saving, false).map(|(card, _)| card)
    }

    /// Opens the image at `path` as [`VscCard::open`] does; with `allow_rollback`, an older
    /// image (or a bad record) is served anyway and the record starts again from it.
    pub fn serve(
        path: &Path,
        master: MasterKey,
        saving: Saving,
        allow_rollback: bool,
    ) -> Result<(VscCard, Check), OpenError> {
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
        let uid = state.uid().unwrap_or_default().0;
        let check = served::check_and_record(path, uid, state.generation, &master, allow_rollback)
            .map_err(|source| OpenError::Rollback {
                path: path.to_path_buf(),
                source,
            })?;
        let mut card = VscCard::with_saving(state, path, master, saving);
        card._lock = Some(lock);
        Ok((card, check))
    }

    /// Serves `state`, read from the image at `path`, its changes going where `saving` says.
    pub fn with_saving(
        state: CardState,
        path: &Path,
        master: MasterKey,
        saving: Saving,
    ) -> VscCard {
        let (card, fresh) = match saving {
            Saving::ReadOnly => (Card::from_state(state), None),
            Saving::Fresh => (Card::from_state(state.clone()), Some(Box::new(state))),
            Saving::Image => {
                let hook = ImageFile::new(path, master, state.clone());
                (Card::with_persistence(state, Box::new(hook)), None)
            }
        };
        VscCard {
            card,
            fresh,
            saves: saving == Saving::Image,
            recorder: None,
            _lock: None,
        }
    }

    /// Serves `card` as it is (in memory, unless its persistence says otherwise).
    pub fn in_memory(card: Card) -> VscCard {
        VscCard {
            card,
            fresh: None,
            saves: false,
            recorder: None,
            _lock: None,
        }
    }

    /// Serves a card whose changes go through `persistence`.
    pub fn with_persistence(state: CardState, persistence: Box<dyn Persistence>) -> VscCard {
        VscCard::in_memory(Card::with_persistence(state, persistence))
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
}

impl VirtualCard for VscCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        self.card.transmit_into(command, response);
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
        match &self.fresh {
            Some(initial) => self.card.replace_state((**initial).clone()),
            None => self.card.reset(),
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
            .field("saves", &self.saves)
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

    /// The sample card saved as `card.vsc` in a new folder: the folder (removed when dropped)
    /// and the image.
    fn sample_image() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.vsc");
        image::save(&path, &vsc_core::sample::card().into_state(), &master()).unwrap();
        (dir, path)
    }

    /// The user PIN's tries left in `state`.
    fn user_pin_tries(state: &CardState) -> u8 {
        state
            .passwords
            .get(vsc_core::security::PasswordRef::UserPin)
            .unwrap()
            .tries_left
    }

    /// The user PIN's tries left in the image at `path`, as the disk holds it.
    fn user_pin_tries_on_disk(path: &Path) -> u8 {
        user_pin_tries(&image::load(path, &master()).unwrap())
    }

    fn verify_wrong(card: &mut VscCard) -> Vec<u8> {
        let mut response = Vec::new();
        card.transmit(b"\x00\x20\x00\x01\x08999999\xFF\xFF", &mut response);
        response
    }

    #[test]
    fn a_pin_try_is_saved_before_the_answer() {
        let (_dir, path) = sample_image();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        assert_eq!(user_pin_tries_on_disk(&path), 2);
    }

    #[test]
    fn read_only_cards_change_in_memory_only() {
        let (_dir, path) = sample_image();
        let before = std::fs::read(&path).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::ReadOnly).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn fresh_cards_are_their_image_again_at_every_power_on() {
        let (_dir, path) = sample_image();
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
        let (dir, path) = sample_image();
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
        let (dir, path) = sample_image();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        // The folder disappears: the next save cannot happen.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x65, 0x81]);
        assert_eq!(
            user_pin_tries(card.state()),
            3,
            "the try did not last, so it did not count"
        );
        std::fs::rename(&moved, dir.path()).unwrap();
    }

    #[test]
    fn a_right_pin_whose_try_cannot_be_saved_unlocks_nothing() {
        // Issue 9, defect 1: with the image unsavable, a right PIN answered 9000 and unlocked
        // the private data while wrong ones were rolled back uncounted (an unlimited oracle).
        let (dir, path) = sample_image();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        let mut response = Vec::new();
        card.transmit(b"\x00\x20\x00\x01\x08123456\xFF\xFF", &mut response);
        assert_eq!(response, [0x65, 0x81], "the right PIN");
        response.clear();
        card.transmit(&hex::decode("00A4080C0460006001").unwrap(), &mut response);
        response.clear();
        card.transmit(&hex::decode("00B0000004").unwrap(), &mut response);
        assert_eq!(response, [0x69, 0x82], "nothing unlocked");
        assert_eq!(verify_wrong(&mut card), [0x65, 0x81], "a wrong PIN");
        std::fs::rename(&moved, dir.path()).unwrap();
        assert_eq!(user_pin_tries_on_disk(&path), 3);
    }

    #[test]
    fn an_older_copy_of_the_image_is_refused_and_a_pin_try_is_not_undone() {
        // Issue 9, rollback: copying back an older image restored its PIN tries.
        let (_dir, path) = sample_image();
        let old = std::fs::read(&path).unwrap();
        let mut card = VscCard::open(&path, master(), Saving::Image).unwrap();
        assert_eq!(verify_wrong(&mut card), [0x63, 0xC2]);
        drop(card);
        std::fs::write(&path, &old).unwrap();
        let error = VscCard::open(&path, master(), Saving::Image).unwrap_err();
        assert!(
            matches!(
                error,
                OpenError::Rollback {
                    source: RollbackError::Older { .. },
                    ..
                }
            ),
            "{error}"
        );
        let (mut card, check) = VscCard::serve(&path, master(), Saving::Image, true).unwrap();
        assert_eq!(check, Check::RolledBack);
        assert_eq!(
            verify_wrong(&mut card),
            [0x63, 0xC2],
            "the old image, as asked"
        );
    }
}

//! A card as the stock clients meet it: saved as a VSC image under a new issuer key, served by
//! the `vsc-emulator` binary in vpcd's slot 0, behind a pcscd started for it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vsc_core::card::Card;
use vsc_core::issuer::IssuerKeyFile;

use crate::{
    HarnessError, Machine, Pcscd, Process, Readers, Result, wait_for_card, workspace_binary,
};

/// The reader of vpcd's slot 0 (Debian's vpcd entry), where [`serve_image`] puts the card.
pub const SLOT_0_READER: &str = "Virtual PCD 00 00";

/// Starts `vsc-emulator serve IMAGE --key-file KEY_FILE` (slot 0; its log in `log_dir`) and
/// waits up to `timeout` until pcscd sees the card in [`SLOT_0_READER`].
pub fn serve_image(
    image: &Path,
    key_file: &Path,
    log_dir: &Path,
    timeout: Duration,
) -> Result<Process> {
    let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator")?);
    command
        .arg("serve")
        .arg(image)
        .arg("--key-file")
        .arg(key_file);
    let emulator = Process::spawn("vsc-emulator", &command, log_dir)?;
    drop(wait_for_card(SLOT_0_READER, timeout)?);
    Ok(emulator)
}

/// A card saved as an image and served in slot 0 of the system readers, with pcscd running;
/// both are stopped when it is dropped.
#[derive(Debug)]
pub struct ServedCard<'m> {
    // Dropped in this order: pcscd first, then the emulator.
    _pcscd: Pcscd<'m>,
    emulator: Process,
    folder: PathBuf,
}

impl<'m> ServedCard<'m> {
    /// Starts pcscd with the system readers, saves `card` as `token.vsc` in the scratch folder
    /// `name` under a new issuer key (`issuer.key` beside it), serves it and waits up to
    /// `timeout` for the card in [`SLOT_0_READER`].
    pub fn start(
        machine: &'m Machine,
        name: &str,
        card: Card,
        timeout: Duration,
    ) -> Result<ServedCard<'m>> {
        let pcscd = machine.start_pcscd(&Readers::system())?;
        let folder = machine.scratch().join(name);
        std::fs::create_dir_all(&folder)
            .map_err(HarnessError::io(format!("creating {}", folder.display())))?;
        let key_file = folder.join("issuer.key");
        let key = IssuerKeyFile::create_new(&key_file).map_err(|cause| HarnessError::Failed {
            what: format!("creating {}", key_file.display()),
            detail: cause.to_string(),
        })?;
        let image = folder.join("token.vsc");
        vsc_core::image::save(&image, &card.into_state(), key.master_key()).map_err(|cause| {
            HarnessError::Failed {
                what: format!("saving {}", image.display()),
                detail: cause.to_string(),
            }
        })?;
        let emulator = serve_image(&image, &key_file, machine.scratch(), timeout)?;
        Ok(ServedCard {
            _pcscd: pcscd,
            emulator,
            folder,
        })
    }

    /// The card's folder: its image, its key file, and room for the tools' files.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The file `name` in the card's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }

    /// What the emulator printed so far.
    pub fn emulator_log(&self) -> String {
        self.emulator.output()
    }
}

//! vicc, vsmartcard's Python card emulator, as Debian packages it (the peer to measure against).
//!
//! Debian's `python3-virtualsmartcard` sits one folder too deep and imports `Crypto`, while
//! Debian ships PyCryptodome as `Cryptodome`: a folder with a `Crypto` symlink on PYTHONPATH,
//! and the package's own folder, make it run.

use std::path::Path;
use std::process::Command;

use crate::{HarnessError, Result};

const CRYPTODOME: &str = "/usr/lib/python3/dist-packages/Cryptodome";
const VIRTUALSMARTCARD: &str = "/usr/lib/python3/site-packages/virtualsmartcard";

/// The command that runs vicc's ISO 7816 card, connecting to vpcd on `port`; the symlink
/// folder is made under `scratch`.
pub fn vicc_command(port: u16, scratch: &Path) -> Result<Command> {
    let shim = scratch.join("vicc-python");
    let link = shim.join("Crypto");
    if !link.exists() {
        std::fs::create_dir_all(&shim)
            .map_err(HarnessError::io(format!("creating {}", shim.display())))?;
        std::os::unix::fs::symlink(CRYPTODOME, &link)
            .map_err(HarnessError::io(format!("linking {}", link.display())))?;
    }
    let mut command = Command::new("vicc");
    command
        .args(["-t", "iso7816", "--hostname", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .env(
            "PYTHONPATH",
            format!("{}:{VIRTUALSMARTCARD}", shim.display()),
        );
    Ok(command)
}

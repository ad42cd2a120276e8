//! A throwaway GnuPG home for tests with the stock `gpg`, `gpg-agent` and `scdaemon`: scdaemon
//! talks to pcscd (`disable-ccid`, as shared/FACTS.md says), PINs come through the loopback
//! pinentry, and every daemon of the home is stopped when it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::tools::{ToolOutput, run_command};
use crate::{HarnessError, Result};

/// A GnuPG home folder whose agent and scdaemon end with it.
#[derive(Debug)]
pub struct GnupgHome {
    dir: TempDir,
}

impl GnupgHome {
    /// A new, empty home under `parent` (mode 0700, as gpg wants it).
    pub fn new(parent: &Path) -> Result<GnupgHome> {
        let dir = tempfile::Builder::new()
            .prefix("gnupg.")
            .tempdir_in(parent)
            .map_err(HarnessError::io("creating a GnuPG home"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .map_err(HarnessError::io("making the GnuPG home private"))?;
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .map_err(HarnessError::io(format!("writing {name}")))
        };
        write("scdaemon.conf", "disable-ccid\n")?;
        write("gpg-agent.conf", "allow-loopback-pinentry\n")?;
        write("gpg.conf", "pinentry-mode loopback\nno-tty\n")?;
        Ok(GnupgHome { dir })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `gpg` with `args` in this home, `stdin` as its input (and as `--command-fd 0`
    /// answers when the arguments ask for it), killed after `timeout`.
    pub fn gpg(&self, args: &[&str], stdin: &str, timeout: Duration) -> Result<ToolOutput> {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", self.path()).args(args);
        run_command(command, stdin, timeout)
    }

    /// Runs `gpg --batch` with `args` for an operation with a card key (signing, decrypting),
    /// the card's `pin` given through the loopback pinentry.
    pub fn gpg_with_pin(&self, pin: &str, args: &[&str], timeout: Duration) -> Result<ToolOutput> {
        let mut all = vec![
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            pin,
        ];
        all.extend_from_slice(args);
        self.gpg(&all, "", timeout)
    }

    /// Runs `gpg --batch --verify` of `files`: a signed file, or a detached signature and its
    /// data. gpg names the signer on its standard error (`Good signature from "…"`).
    pub fn verify(&self, files: &[&Path], timeout: Duration) -> Result<ToolOutput> {
        let mut command = Command::new("gpg");
        command
            .env("GNUPGHOME", self.path())
            .args(["--batch", "--verify"])
            .args(files);
        run_command(command, "", timeout)
    }

    /// Runs `gpg-connect-agent` with `commands` (e.g. `SCD SERIALNO`).
    pub fn agent(&self, commands: &[&str], timeout: Duration) -> Result<ToolOutput> {
        let mut command = Command::new("gpg-connect-agent");
        command
            .env("GNUPGHOME", self.path())
            .args(commands)
            .arg("/bye");
        run_command(command, "", timeout)
    }

    /// Stops the home's gpg-agent and scdaemon.
    pub fn stop_daemons(&self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The file `name` in the home.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        self.stop_daemons();
    }
}

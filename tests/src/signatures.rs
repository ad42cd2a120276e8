//! Checks with the `openssl` command line tool of what a card made: its signatures verify under
//! its public key, and only for the data it signed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::tools::{ToolOutput, run_command};
use crate::{HarnessError, Result};

/// The format of a public key file that openssl reads (`-keyform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// PEM (`-----BEGIN PUBLIC KEY-----`), openssl's default.
    Pem,
    /// DER, as [`crate::Pkcs11Slot::read_object`] writes a public key.
    Der,
}

/// Checks with `openssl dgst -sha256 -verify` that `signature` is a signature of `data` under
/// the public key in `public`, and that it is not one of other data (written beside `data`, as
/// `data` with `.other` appended): so the check can fail. An error says which half failed,
/// with openssl's output.
pub fn check_sha256_signature(
    public: &Path,
    form: KeyForm,
    signature: &Path,
    data: &Path,
    timeout: Duration,
) -> Result<()> {
    let verified = openssl_verify_sha256(public, form, signature, data, timeout)?;
    if !(verified.status.success() && verified.stdout == "Verified OK\n") {
        return Err(HarnessError::Failed {
            what: format!("verifying {} with openssl", signature.display()),
            detail: format!("{verified:?}"),
        });
    }
    let mut other = data.as_os_str().to_owned();
    other.push(".other");
    let other = Path::new(&other);
    std::fs::write(other, "something else\n")
        .map_err(HarnessError::io(format!("writing {}", other.display())))?;
    let forged = openssl_verify_sha256(public, form, signature, other, timeout)?;
    if forged.status.success() {
        return Err(HarnessError::Failed {
            what: format!(
                "openssl verified {} for other data too",
                signature.display()
            ),
            detail: format!("{forged:?}"),
        });
    }
    Ok(())
}

/// `openssl dgst -sha256 [-keyform DER] -verify PUBLIC -signature SIGNATURE DATA`.
fn openssl_verify_sha256(
    public: &Path,
    form: KeyForm,
    signature: &Path,
    data: &Path,
    timeout: Duration,
) -> Result<ToolOutput> {
    let mut command = Command::new("openssl");
    command.args(["dgst", "-sha256"]);
    if form == KeyForm::Der {
        command.args(["-keyform", "DER"]);
    }
    command
        .arg("-verify")
        .arg(public)
        .arg("-signature")
        .arg(signature)
        .arg(data);
    run_command(command, "", timeout)
}

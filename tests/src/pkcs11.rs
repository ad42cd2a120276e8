//! OpenSC's PKCS#11 module driven through `pkcs11-tool`: signing with a card's private key and
//! reading its public objects, as a PKCS#11 application would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Result;
use crate::tools::{ToolOutput, run_command};

/// OpenSC's PKCS#11 module (Debian 12, package `opensc-pkcs11`).
pub const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// The kinds of object [`Pkcs11Slot::read_object`] reads (`pkcs11-tool --type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs11Object {
    /// A public key, written as DER SubjectPublicKeyInfo (`pubkey`).
    PublicKey,
    /// An X.509 certificate, written as DER (`cert`).
    Certificate,
}

impl Pkcs11Object {
    fn tool_name(self) -> &'static str {
        match self {
            Pkcs11Object::PublicKey => "pubkey",
            Pkcs11Object::Certificate => "cert",
        }
    }
}

/// A slot of OpenSC's PKCS#11 module, as `pkcs11-tool` picks it: the first with a token, or
/// one by its index in the module's slot list (OpenSC gives an OpenPGP card one slot per PIN,
/// so its signature key, under "User PIN (sig)", is in slot index 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkcs11Slot {
    index: Option<usize>,
}

impl Pkcs11Slot {
    /// pkcs11-tool's default: the first slot with a token.
    pub fn first() -> Pkcs11Slot {
        Pkcs11Slot { index: None }
    }

    /// The slot at `index` in the module's slot list (`--slot-index`).
    pub fn at_index(index: usize) -> Pkcs11Slot {
        Pkcs11Slot { index: Some(index) }
    }

    /// Signs `input` with mechanism `SHA256-RSA-PKCS` and the private key whose `CKA_ID` is
    /// `key_id` (hex), writing the signature to `output`. With `pin`, logs in with it first
    /// (`--login --pin`); without, signs without logging in.
    pub fn sign_sha256_rsa(
        &self,
        key_id: &str,
        pin: Option<&str>,
        input: &Path,
        output: &Path,
        timeout: Duration,
    ) -> Result<ToolOutput> {
        self.sign(
            &["--mechanism", "SHA256-RSA-PKCS"],
            key_id,
            pin,
            input,
            output,
            timeout,
        )
    }

    /// Signs `input` with mechanism `ECDSA-SHA256` and the private key whose `CKA_ID` is
    /// `key_id` (hex), writing the signature to `output` as DER (`--signature-format openssl`,
    /// what `openssl dgst -verify` reads). With `pin`, logs in with it first.
    pub fn sign_ecdsa_sha256(
        &self,
        key_id: &str,
        pin: Option<&str>,
        input: &Path,
        output: &Path,
        timeout: Duration,
    ) -> Result<ToolOutput> {
        self.sign(
            &[
                "--mechanism",
                "ECDSA-SHA256",
                "--signature-format",
                "openssl",
            ],
            key_id,
            pin,
            input,
            output,
            timeout,
        )
    }

    /// `pkcs11-tool --sign` with the mechanism arguments `how`, logging in with `pin` first
    /// when there is one.
    fn sign(
        &self,
        how: &[&str],
        key_id: &str,
        pin: Option<&str>,
        input: &Path,
        output: &Path,
        timeout: Duration,
    ) -> Result<ToolOutput> {
        let mut command = self.command();
        if let Some(pin) = pin {
            command.args(["--login", "--pin", pin]);
        }
        command
            .arg("--sign")
            .args(how)
            .args(["--id", key_id])
            .arg("--input-file")
            .arg(input)
            .arg("--output-file")
            .arg(output);
        run_command(command, "", timeout)
    }

    /// Reads the `kind` object whose `CKA_ID` is `id` (hex) into `output`, as DER.
    pub fn read_object(
        &self,
        kind: Pkcs11Object,
        id: &str,
        output: &Path,
        timeout: Duration,
    ) -> Result<ToolOutput> {
        let mut command = self.command();
        command
            .args(["--read-object", "--type", kind.tool_name(), "--id", id])
            .arg("--output-file")
            .arg(output);
        run_command(command, "", timeout)
    }

    /// `pkcs11-tool --module OPENSC_PKCS11 [--slot-index N]`.
    fn command(&self) -> Command {
        let mut command = Command::new("pkcs11-tool");
        command.args(["--module", OPENSC_PKCS11]);
        if let Some(index) = self.index {
            command.args(["--slot-index", &index.to_string()]);
        }
        command
    }
}

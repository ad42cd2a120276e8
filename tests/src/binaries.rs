//! The workspace's own binaries, for tests in another package.
//!
//! `CARGO_BIN_EXE_<name>` exists only in the binary's own package, and cargo builds another
//! package's binaries only when asked. So the harness asks: it builds the binary with the
//! profile the test itself was built with, into the same target folder, once per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use crate::{HarnessError, Result};

static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// The path of binary `name` of workspace package `package`, built (or found up to date) first.
pub fn workspace_binary(package: &str, name: &str) -> Result<PathBuf> {
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return Ok(path.clone());
    }
    let profile_dir = profile_dir()?;
    let target_dir = profile_dir.parent().unwrap_or(&profile_dir).to_owned();
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--package",
            package,
            "--bin",
            name,
            "--profile",
            &profile,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .map_err(HarnessError::io(format!("running cargo to build {name}")))?;
    if !output.status.success() {
        return Err(HarnessError::Failed {
            what: format!("building {name}"),
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let path = profile_dir.join(name);
    built.insert(name.to_owned(), path.clone());
    Ok(path)
}

/// `target/<profile>`: the test executable lives in its `deps` folder.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(HarnessError::io("locating the test executable"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .ok_or_else(|| HarnessError::Failed {
            what: "locating the target folder".into(),
            detail: format!("{} has no grandparent folder", exe.display()),
        })
}

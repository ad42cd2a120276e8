//! The `vsc-personalizer` command line: keys, and prepare's errors and exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vsc-personalizer");

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn profiles(file: &str) -> String {
    format!("{}/profiles/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn keys_init_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(&["keys", "init", "--out", "issuer.key"], dir.path());
    assert!(first.status.success());
    let mode = std::fs::metadata(dir.path().join("issuer.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let kcv = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key check value: "))
        .unwrap()
        .to_string();
    let check = run(&["keys", "check", "--key-file", "issuer.key"], dir.path());
    assert!(String::from_utf8_lossy(&check.stdout).contains(&kcv));
    let again = run(&["keys", "init", "--out", "issuer.key"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
}

#[test]
fn prepare_reports_bad_records_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(&["keys", "init", "--out", "issuer.key"], dir.path())
            .status
            .success()
    );
    let records = std::fs::read_to_string(profiles("demo-records.csv")).unwrap();
    let mut lines: Vec<String> = records.lines().take(4).map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let pin = header.iter().position(|h| *h == "pin").unwrap();
    let mut fields: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    fields[pin] = "12".into();
    lines[3] = fields.join(",");
    std::fs::write(dir.path().join("records.csv"), lines.join("\n") + "\n").unwrap();
    let profile = profiles("demo.toml");
    let base = [
        "prepare",
        "--profile",
        &profile,
        "--records",
        "records.csv",
        "--key-file",
        "issuer.key",
    ];

    let no_mailer = run(&base, dir.path());
    assert_eq!(no_mailer.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&no_mailer.stderr).contains("--recipient"));

    let output = run(&[&base[..], &["--no-pin-mailer"]].concat(), dir.path());
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("pin"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\"12\""),
        "the value itself is never shown"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("prepared 2 cards, 1 failed"));
}

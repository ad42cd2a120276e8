//! The PIN mailer against the real binary: two runs in the same second keep both their files,
//! and a `prepare` killed at any moment then run again leaves every stored card with exactly one
//! mailer entry, the orphans named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_vsc-personalizer");

fn command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("VSC_STORE")
        .env_remove("RUST_LOG");
    command
}

fn run(args: &[&str], dir: &Path) -> Output {
    command(args, dir).output().unwrap()
}

fn profile() -> String {
    format!("{}/profiles/demo.toml", env!("CARGO_MANIFEST_DIR"))
}

fn prepare_args<'a>(records: &'a str, recipient: &'a str, profile: &'a str) -> Vec<&'a str> {
    vec![
        "prepare",
        "--profile",
        profile,
        "--records",
        records,
        "--key-file",
        "issuer.key",
        "--recipient",
        recipient,
        "--batch",
        "20",
        "-q",
    ]
}

/// Every entry of the mailer files (`*.csv.age`, not orphans): UID → how many times.
fn entries(dir: &Path, identity: &age::x25519::Identity) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let Ok(files) = std::fs::read_dir(dir.join("pin-mailer")) else {
        return seen;
    };
    for file in files {
        let path = file.unwrap().path();
        if !path.to_string_lossy().ends_with(".csv.age") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut text = String::new();
        age::Decryptor::new(&bytes[..])
            .unwrap()
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines().skip(1) {
            *seen
                .entry(line.split(',').next().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    seen
}

/// The UIDs in the store.
fn stored(dir: &Path) -> Vec<String> {
    if !dir.join("vsc.db").exists() {
        return Vec::new();
    }
    let connection = rusqlite::Connection::open(dir.join("vsc.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT uid FROM cards ORDER BY uid")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn setup(count: u64) -> (tempfile::TempDir, age::x25519::Identity) {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(&["keys", "init", "--out", "issuer.key"], dir.path())
            .status
            .success()
    );
    let sample = run(
        &[
            "records",
            "sample",
            "--profile",
            &profile(),
            "--count",
            &count.to_string(),
            "--out",
            "all.csv",
        ],
        dir.path(),
    );
    assert!(sample.status.success(), "{sample:?}");
    (dir, age::x25519::Identity::generate())
}

#[test]
fn two_runs_started_in_the_same_second_keep_their_files() {
    let (dir, identity) = setup(60);
    let text = std::fs::read_to_string(dir.path().join("all.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (name, part) in [("a.csv", &lines[1..31]), ("b.csv", &lines[31..])] {
        std::fs::write(
            dir.path().join(name),
            format!("{}\n{}\n", lines[0], part.join("\n")),
        )
        .unwrap();
    }
    let recipient = identity.to_public().to_string();
    let profile = profile();
    // Start both just after a second begins.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    std::thread::sleep(
        Duration::from_millis(1_050) - Duration::from_nanos(u64::from(now.subsec_nanos())),
    );
    let children: Vec<_> = ["a.csv", "b.csv"]
        .iter()
        .map(|records| {
            command(&prepare_args(records, &recipient, &profile), dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    let seen = entries(dir.path(), &identity);
    let stored = stored(dir.path());
    assert_eq!(stored.len(), 60);
    for uid in &stored {
        assert_eq!(seen.get(uid), Some(&1), "card {uid}: {seen:?}");
    }
    assert_eq!(seen.len(), 60);
    // The folder and its files are private.
    use std::os::unix::fs::PermissionsExt;
    let folder = dir.path().join("pin-mailer");
    assert_eq!(
        std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for file in std::fs::read_dir(&folder).unwrap() {
        let file = file.unwrap();
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", file.file_name());
    }
}

#[test]
fn a_killed_prepare_then_a_rerun_leave_exactly_one_entry_per_stored_card() {
    let (dir, identity) = setup(400);
    let recipient = identity.to_public().to_string();
    let profile = profile();
    let mut orphans_named = 0;
    // Kill at spread moments; each time run again at once, resuming.
    for (round, delay_ms) in [40u64, 150, 90, 260, 10, 200].into_iter().enumerate() {
        let mut args = prepare_args("all.csv", &recipient, &profile);
        args.push("--skip-existing");
        let mut child = command(&args, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no cleanup of any kind.
        let _ = child.kill();
        let _ = child.wait();
        let rerun = run(&args, dir.path());
        assert!(
            matches!(rerun.status.code(), Some(0)),
            "round {round}: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        orphans_named += String::from_utf8_lossy(&rerun.stderr)
            .matches("is an orphan")
            .count();
        let stored = stored(dir.path());
        assert_eq!(
            stored.len(),
            400,
            "round {round}: the rerun completes the run"
        );
        let seen = entries(dir.path(), &identity);
        for uid in &stored {
            assert_eq!(seen.get(uid), Some(&1), "round {round}: card {uid}");
        }
        assert_eq!(
            seen.len(),
            stored.len(),
            "round {round}: no entry for a card not stored"
        );
        // The next round starts from scratch, so that each kill lands mid-run.
        std::fs::remove_dir_all(dir.path().join("pin-mailer")).ok();
        for suffix in ["", "-wal", "-shm"] {
            std::fs::remove_file(dir.path().join(format!("vsc.db{suffix}"))).ok();
        }
    }
    // Kills between a batch's file and its commit leave orphans, and reruns name them; this
    // count only shows the test reached that case at least sometimes.
    eprintln!("orphans named by the reruns: {orphans_named}");
}

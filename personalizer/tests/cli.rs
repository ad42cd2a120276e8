//! The `vsc-personalizer` command line, through the real binary: exit codes, errors printed
//! once, stores never created by readers, files never truncated or overwritten unasked, `--json`
//! parsed back, signed transcripts, replay's input rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{init_issuer_key, prepare_demo, profile_arg, run, stderr, stdout};

/// The first `count` demo records in `dir/records.csv`.
fn records(dir: &Path, count: usize) -> Vec<String> {
    let text = std::fs::read_to_string(profile_arg("demo-records.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(count + 1).collect();
    std::fs::write(dir.join("records.csv"), lines.join("\n") + "\n").unwrap();
    lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// A key, a verification key, and `count` demo cards prepared into `vsc.db` without a mailer.
fn prepared(count: usize) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let uids = records(dir.path(), count);
    init_issuer_key(dir.path());
    let public = run(
        &[
            "keys",
            "public-key",
            "--key-file",
            "issuer.key",
            "--out",
            "prep.pub",
        ],
        dir.path(),
    );
    assert!(public.status.success(), "{}", stderr(&public));
    let output = prepare_demo(dir.path(), &[]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    (dir, uids)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keys_init_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(&["keys", "init", "--out", "issuer.key"], dir.path());
    assert!(first.status.success());
    assert_eq!(mode(&dir.path().join("issuer.key")), 0o600);
    let kcv = stdout(&first)
        .lines()
        .find_map(|l| l.strip_prefix("key check value: ").map(str::to_string))
        .unwrap();
    let check = run(&["keys", "check", "--key-file", "issuer.key"], dir.path());
    assert!(stdout(&check).contains(&kcv));
    let again = run(&["keys", "init", "--out", "issuer.key"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("refusing to overwrite"));
}

#[test]
fn each_cause_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bad.key");
    std::fs::write(&key, "vsc-issuer-key 1\nmaster-key zz\nkcv 00\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = run(&["keys", "check", "--key-file", "bad.key"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let line = stderr(&output);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(line.matches("key file").count(), 1, "{line}");
    assert_eq!(line.matches("line 2").count(), 1, "{line}");
}

#[test]
fn exit_statuses_are_distinct_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let help = run(&["--help"], dir.path());
    assert_eq!(help.status.code(), Some(0));
    for line in ["0  done", "1  error", "2  usage", "3  some cards"] {
        assert!(stdout(&help).contains(line), "{}", stdout(&help));
    }
    assert!(stdout(&run(&["prepare", "--help"], dir.path())).contains("Exit status:"));
    // A flag that does not exist, a missing argument: usage, 2.
    assert_eq!(
        run(&["prepare", "--nope"], dir.path()).status.code(),
        Some(2)
    );
    assert_eq!(run(&["export"], dir.path()).status.code(), Some(2));
    // Arguments that parse but cannot work together: usage too.
    let profile = profile_arg("demo.toml");
    let no_mailer = run(
        &[
            "prepare",
            "--profile",
            &profile,
            "--records",
            "r.csv",
            "--key-file",
            "k",
        ],
        dir.path(),
    );
    assert_eq!(no_mailer.status.code(), Some(2), "{}", stderr(&no_mailer));
    assert!(stderr(&no_mailer).contains("--recipient"));
    // A command that cannot do its work: 1.
    assert_eq!(
        run(&["keys", "check", "--key-file", "missing.key"], dir.path())
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn prepare_reports_bad_records_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    init_issuer_key(dir.path());
    let records = std::fs::read_to_string(profile_arg("demo-records.csv")).unwrap();
    let mut lines: Vec<String> = records.lines().take(4).map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let pin = header.iter().position(|h| *h == "pin").unwrap();
    let mut fields: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    fields[pin] = "12".into();
    lines[3] = fields.join(",");
    std::fs::write(dir.path().join("records.csv"), lines.join("\n") + "\n").unwrap();
    let output = prepare_demo(dir.path(), &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = stderr(&output);
    assert!(
        stderr.contains("line 4") && stderr.contains("pin"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\"12\""),
        "the value itself is never shown"
    );
    assert!(stdout(&output).contains("prepared 2 cards, 1 failed"));
    // The store is private.
    assert_eq!(mode(&dir.path().join("vsc.db")), 0o600);
}

#[test]
fn a_prepare_that_stores_nothing_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    init_issuer_key(dir.path());
    let identity = age::x25519::Identity::generate().to_public().to_string();
    let profile = profile_arg("demo.toml");
    std::fs::write(
        dir.path().join("bad.csv"),
        "uid,nothing\n0102030405060708,x\n",
    )
    .unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    for records in ["bad.csv", "missing.csv"] {
        let output = run(
            &[
                "prepare",
                "--profile",
                &profile,
                "--records",
                records,
                "--key-file",
                "issuer.key",
                "--recipient",
                &identity,
            ],
            dir.path(),
        );
        assert_ne!(output.status.code(), Some(0), "{records}");
        assert!(
            !dir.path().join("vsc.db").exists(),
            "{records}: {}",
            stderr(&output)
        );
        assert!(!dir.path().join("pin-mailer").exists(), "{records}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before.len());
}

#[test]
fn a_command_that_reads_a_store_never_creates_it() {
    let (dir, uids) = prepared(1);
    for args in [
        vec![
            "export", "image", "--uid", &uids[0], "--out", "x.vsc", "--store", "typo.db",
        ],
        vec!["store", "status", "--store", "typo.db"],
        vec!["store", "audit", "--store", "typo.db"],
        vec![
            "station",
            "--once",
            "--store",
            "typo.db",
            "--trusted-key",
            "prep.pub",
        ],
        vec![
            "replay",
            "--uid",
            &uids[0],
            "--store",
            "typo.db",
            "--trusted-key",
            "prep.pub",
        ],
    ] {
        let output = run(&args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("no store at typo.db"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!dir.path().join("typo.db").exists(), "{args:?}");
        assert!(!dir.path().join("x.vsc").exists());
    }
    // A PostgreSQL database is never created either: one that is not there is said so.
    let output = run(
        &[
            "store",
            "status",
            "--store",
            "host=/var/run/postgresql user=postgres dbname=vsc_no_such_database",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("database \"vsc_no_such_database\" does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn output_files_are_never_truncated_or_overwritten_unasked() {
    let (dir, uids) = prepared(1);
    let uid = &uids[0];
    let keep = dir.path().join("keep.vsct");
    std::fs::write(&keep, "precious").unwrap();
    // A bad recipient: refused before anything is written.
    let bad = run(
        &[
            "export",
            "preinit",
            "--uid",
            uid,
            "--out",
            "keep.vsct",
            "--key-file",
            "issuer.key",
            "--recipient",
            "bad",
            "--force",
        ],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "precious");
    let fresh = run(
        &[
            "export",
            "preinit",
            "--uid",
            uid,
            "--out",
            "new.vsct",
            "--key-file",
            "issuer.key",
            "--recipient",
            "bad",
        ],
        dir.path(),
    );
    assert_eq!(fresh.status.code(), Some(2));
    assert!(!dir.path().join("new.vsct").exists(), "no 0-byte file");
    // An existing file is kept without --force, replaced with it.
    for args in [
        vec![
            "export",
            "transcript",
            "--uid",
            uid,
            "--out",
            "keep.vsct",
            "--trusted-key",
            "prep.pub",
        ],
        vec![
            "blank",
            "--profile",
            &profile_arg("demo.toml"),
            "--uid",
            uid,
            "--key-file",
            "issuer.key",
            "--out",
            "keep.vsct",
        ],
        vec![
            "keys",
            "public-key",
            "--key-file",
            "issuer.key",
            "--out",
            "keep.vsct",
        ],
    ] {
        let output = run(&args, dir.path());
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("exists (give --force"),
            "{}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_to_string(&keep).unwrap(),
            "precious",
            "{args:?}"
        );
    }
    let forced = run(
        &[
            "export",
            "transcript",
            "--uid",
            uid,
            "--out",
            "keep.vsct",
            "--trusted-key",
            "prep.pub",
            "--force",
        ],
        dir.path(),
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(
        std::fs::read_to_string(&keep)
            .unwrap()
            .starts_with("VSC-TRANSCRIPT 2\n")
    );
    // A secret-bearing export in clear is private.
    let clear = run(
        &[
            "export",
            "preinit",
            "--uid",
            uid,
            "--out",
            "pre.vsct",
            "--key-file",
            "issuer.key",
            "--clear",
        ],
        dir.path(),
    );
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert_eq!(mode(&dir.path().join("pre.vsct")), 0o600);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn uids_are_accepted_with_spaces() {
    let (dir, uids) = prepared(1);
    let spaced: String = uids[0]
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let output = run(
        &["export", "image", "--uid", &spaced, "--out", "card.vsc"],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&uids[0]));
}

#[test]
fn json_output_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    records(dir.path(), 3);
    init_issuer_key(dir.path());
    let identity = age::x25519::Identity::generate().to_public().to_string();
    let output = run(
        &[
            "prepare",
            "--profile",
            &profile_arg("demo.toml"),
            "--records",
            "records.csv",
            "--key-file",
            "issuer.key",
            "--recipient",
            &identity,
            "--json",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let events: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["prepared"], 3);
    assert_eq!(summary["mailer_files"].as_array().unwrap().len(), 1);
    let status = run(&["store", "status", "--json"], dir.path());
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["schema_version"], 4);
    assert_eq!(status["cards"][0], serde_json::json!(["prepared", 3]));
    assert_eq!(status["mailer_files"][0], serde_json::json!(["stored", 1]));
    let audit = run(&["store", "audit", "--csv"], dir.path());
    assert!(stdout(&audit).starts_with("started_at,uid,station"));
}

#[test]
fn a_locked_store_is_waited_for_named_and_given_up_on() {
    let (dir, _) = prepared(1);
    let holder = rusqlite::Connection::open(dir.path().join("vsc.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let text = std::fs::read_to_string(profile_arg("demo-records.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        dir.path().join("more.csv"),
        format!("{}\n{}\n", lines[0], lines[5]),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = run(
        &[
            "prepare",
            "--profile",
            &profile_arg("demo.toml"),
            "--records",
            "more.csv",
            "--key-file",
            "issuer.key",
            "--no-pin-mailer",
            "--lock-timeout",
            "1.5",
        ],
        dir.path(),
    );
    assert!(started.elapsed().as_secs_f64() >= 1.5);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("waiting for the lock on vsc.db"),
        "{stderr}"
    );
    let error = stderr.lines().last().unwrap();
    assert!(
        error.contains("store vsc.db is locked by another process"),
        "{stderr}"
    );
    assert_eq!(error.matches("locked").count(), 1, "{stderr}");
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn transcripts_must_verify() {
    let (dir, uids) = prepared(1);
    let uid = &uids[0];
    let export = run(
        &[
            "export",
            "transcript",
            "--uid",
            uid,
            "--out",
            "card.vsct",
            "--trusted-key",
            "prep.pub",
        ],
        dir.path(),
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let text = std::fs::read_to_string(dir.path().join("card.vsct")).unwrap();
    let dry = |file: &str, extra: &[&str]| {
        let mut args = vec!["replay", "--dry-run", file];
        args.extend_from_slice(extra);
        run(&args, dir.path())
    };
    assert!(
        dry("card.vsct", &["--trusted-key", "prep.pub"])
            .status
            .success()
    );
    // Without a key to check against: a usage error, nothing sent.
    assert_eq!(dry("card.vsct", &[]).status.code(), Some(2));

    // Tampered: a step edited, or the ACTIVATE step removed, digest recomputed.
    let reseal = |body: &str| {
        use sha2::Digest as _;
        let signature = text.lines().last().unwrap();
        format!(
            "{body}sha256 {}\n{signature}\n",
            hex::encode_upper(sha2::Sha256::digest(body.as_bytes()))
        )
    };
    let body = &text[..text.find("sha256 ").unwrap()];
    let activate = body.rfind("# activate").unwrap();
    let without_activate = reseal(&body[..activate]);
    let last_command = body.rfind("\n> ").unwrap() + 3;
    let mut edited = body.to_string();
    edited.replace_range(last_command..last_command + 2, "00");
    for (name, tampered) in [
        ("no-activate.vsct", without_activate),
        ("edited.vsct", reseal(&edited)),
    ] {
        std::fs::write(dir.path().join(name), tampered).unwrap();
        let output = dry(name, &["--trusted-key", "prep.pub"]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            stderr(&output).contains("does not verify"),
            "{name}: {}",
            stderr(&output)
        );
    }
    // Another issuer's key is not trusted.
    assert!(
        run(&["keys", "init", "--out", "other.key"], dir.path())
            .status
            .success()
    );
    let other = dry("card.vsct", &["--key-file", "other.key"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("not a trusted verification key"),
        "{}",
        stderr(&other)
    );
    // An unsigned (version 1) transcript only with --allow-unsigned.
    let unsigned =
        "VSC-TRANSCRIPT 1\nkind session\nuid 0102030405060708\natr 3B00\nchannel plain\n";
    std::fs::write(dir.path().join("old.vsct"), {
        use sha2::Digest as _;
        format!(
            "{unsigned}sha256 {}\n",
            hex::encode_upper(sha2::Sha256::digest(unsigned))
        )
    })
    .unwrap();
    let refused = dry("old.vsct", &["--trusted-key", "prep.pub"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not signed"),
        "{}",
        stderr(&refused)
    );
    assert!(dry("old.vsct", &["--allow-unsigned"]).status.success());
}

#[test]
fn replay_reads_scriptor_scripts_only_when_asked_and_never_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.txt", ""), ("comments.txt", "# just a comment\n")] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let output = run(
            &["replay", "--dry-run", "--allow-unsigned", name],
            dir.path(),
        );
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            stderr(&output).contains("--scriptor"),
            "{}",
            stderr(&output)
        );
        let asked = run(&["replay", "--dry-run", "--scriptor", name], dir.path());
        assert_eq!(asked.status.code(), Some(1), "{name}");
        assert!(stderr(&asked).contains("no command"), "{}", stderr(&asked));
    }
    std::fs::write(
        dir.path().join("pin.scr"),
        "# verify\n00 20 00 01 08 31 32 33 34 35 36 FF FF\n",
    )
    .unwrap();
    let dry = run(&["replay", "--dry-run", "pin.scr"], dir.path());
    assert!(dry.status.success(), "{}", stderr(&dry));
    // The PIN of a plain script is masked, even in a dry run.
    assert!(!stdout(&dry).contains("313233343536"), "{}", stdout(&dry));
    assert!(
        stdout(&dry).contains("(8 data bytes masked)"),
        "{}",
        stdout(&dry)
    );
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run(&["completions", "bash"], dir.path());
    assert!(bash.status.success());
    assert!(stdout(&bash).contains("--skip-existing"));
    let man = run(&["manpages", "--out", "man"], dir.path());
    assert!(man.status.success(), "{}", stderr(&man));
    for page in [
        "vsc-personalizer.1",
        "vsc-personalizer-prepare.1",
        "vsc-personalizer-store-status.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn quiet_and_verbose_set_what_goes_to_standard_error() {
    let dir = tempfile::tempdir().unwrap();
    records(dir.path(), 1);
    init_issuer_key(dir.path());
    let prepare = |extra: &[&str], store: &str| {
        let mut args = vec!["--plain", "--store", store];
        args.extend_from_slice(extra);
        prepare_demo(dir.path(), &args).output().unwrap()
    };
    let normal = prepare(&[], "a.db");
    assert!(
        stderr(&normal).contains("warning: --plain"),
        "{}",
        stderr(&normal)
    );
    let quiet = prepare(&["-q"], "b.db");
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "", "quiet");
    assert!(stdout(&quiet).contains("prepared 1 cards"));
    let verbose = prepare(&["-vv"], "c.db");
    assert!(
        stderr(&verbose).contains("batch stored"),
        "{}",
        stderr(&verbose)
    );
}

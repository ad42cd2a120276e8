//! Progress without a terminal, through the real binary: plain lines with whole-number counts
//! and rates that fit 80 columns, at the interval `VSC_PROGRESS_EVERY` gives, none when quiet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{init_issuer_key, personalizer, prepare_demo, profile_arg, stderr};

/// Runs `command` with progress lines every `every` seconds (`VSC_PROGRESS_EVERY`), or at the
/// binary's default interval.
fn with_progress(mut command: Command, every: Option<&str>) -> Output {
    command.env_remove("VSC_PROGRESS_EVERY");
    if let Some(every) = every {
        command.env("VSC_PROGRESS_EVERY", every);
    }
    command.output().unwrap()
}

/// A key and 1,200 synthetic holders in `dir`.
fn setup(dir: &Path) {
    init_issuer_key(dir);
    let profile = profile_arg("demo.toml");
    let sample = personalizer(
        &[
            "records",
            "sample",
            "--profile",
            &profile,
            "--count",
            "1200",
            "--out",
            "records.csv",
        ],
        dir,
    );
    let sample = with_progress(sample, None);
    assert!(sample.status.success(), "{}", stderr(&sample));
}

fn prepare(dir: &Path, store: &str, extra: &[&str], every: Option<&str>) -> Output {
    let mut args = vec!["--store", store, "--batch", "100"];
    args.extend_from_slice(extra);
    with_progress(prepare_demo(dir, &args), every)
}

/// The plain progress lines of `stderr`: `prepare: N of 1200, …/s, … s`.
fn progress_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|line| line.starts_with("prepare: ") && line.contains(" of 1200"))
        .map(str::to_string)
        .collect()
}

#[test]
fn without_a_terminal_prepare_prints_plain_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let output = prepare(dir.path(), "every.db", &[], Some("0"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines = progress_lines(&stderr);
    assert!(
        lines.len() >= 2,
        "expected several progress lines:\n{stderr}"
    );
    let mut last = 0u64;
    for line in &lines {
        assert!(line.len() <= 80, "wider than 80 columns: {line}");
        // No control characters, no bar: a line a log file keeps as it is.
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let count: u64 = line["prepare: ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(count >= last && count <= 1200, "{line}");
        last = count;
        let rate = line.split(", ").find(|part| part.ends_with("/s")).unwrap();
        assert!(
            rate.trim_end_matches("/s").parse::<u64>().is_ok(),
            "the rate is a whole number: {line}"
        );
    }
}

#[test]
fn a_long_interval_prints_no_line_and_quiet_prints_none() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let output = prepare(dir.path(), "hourly.db", &[], Some("3600"));
    assert!(output.status.success());
    assert_eq!(
        progress_lines(&String::from_utf8_lossy(&output.stderr)),
        Vec::<String>::new()
    );
    let quiet = prepare(dir.path(), "quiet.db", &["-q"], Some("0"));
    assert!(quiet.status.success());
    assert_eq!(
        progress_lines(&String::from_utf8_lossy(&quiet.stderr)),
        Vec::<String>::new()
    );
}

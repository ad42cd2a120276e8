//! The harness itself: processes it starts do not outlive their handle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vsc_tests::Process;

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; the supervisor reaps its child before it exits.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_dropped_process_is_stopped_and_reaped() {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new("sleep");
    command.arg("300");
    let process = Process::spawn("sleep", &command, scratch.path()).unwrap();
    let pid = process.pid();
    assert!(alive(pid));
    drop(process);
    assert!(!alive(pid));
}

#[test]
fn a_stopped_process_reports_its_status_and_output() {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new("sh");
    command
        .args(["-c", "echo \"hello $GREETING\"; exit 3"])
        .env("GREETING", "harness");
    let mut process = Process::spawn("sh", &command, scratch.path()).unwrap();
    let status = process.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(process.output(), "hello harness\n");
}

#[test]
fn a_signalled_process_reports_128_plus_the_signal() {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new("sleep");
    command.arg("300");
    let mut process = Process::spawn("sleep", &command, scratch.path()).unwrap();
    process.signal("TERM").unwrap();
    let status = process.wait(Duration::from_secs(10)).unwrap();
    // The supervisor reports a signalled command as 128 + the signal number (SIGTERM is 15).
    assert_eq!(status.code(), Some(143));
}

//! The `vsc-null-card` binary: errors as one line with a non-zero exit, and a clean stop on
//! SIGINT and SIGTERM. No pcscd is needed: a slot that cannot reach vpcd keeps trying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NULL_CARD: &str = env!("CARGO_BIN_EXE_vsc-null-card");

fn stderr_of(args: &[&str]) -> (i32, String) {
    let output = Command::new(NULL_CARD).args(args).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_taken_listen_port_is_one_line_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (code, stderr) = stderr_of(&["--listen", &addr.to_string()]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!("vsc-null-card: cannot listen on {addr}: Address already in use (os error 98)\n")
    );
}

#[test]
fn an_address_not_of_this_machine_is_one_line_and_a_failure() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine's own address.
    let (code, stderr) = stderr_of(&["--listen", "192.0.2.1:35963"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("vsc-null-card: cannot listen on 192.0.2.1:35963: "));
}

#[test]
fn a_malformed_address_is_refused() {
    let (code, stderr) = stderr_of(&["--listen", "nowhere"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid value 'nowhere' for '--listen <ADDR>'"),
        "{stderr}"
    );
}

#[test]
fn sigint_and_sigterm_stop_it_cleanly() {
    for signal in ["INT", "TERM"] {
        // Port 9 (discard) on the loopback: nothing listens, so the slots back off and retry.
        let mut child = Command::new(NULL_CARD)
            .args(["--slots", "2", "--connect", "127.0.0.1:9"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(status.success(), "SIG{signal}: {status}\n{stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal}: stopping")),
            "{stderr}"
        );
    }
}

//! The `vsc-emulator` binary's command line: its messages (slot numbers that agree, no Debug
//! text, hints when vpcd is missing, busy or never powers the card on), the image lock, `-v`,
//! `-q` and `RUST_LOG`, `readers-conf`, completions and man pages. A fake vpcd over TCP stands
//! in for pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{EMULATOR, Images, Stderr, accept, free_port, kill, port_pair};

/// Long enough for every hint (they come after 3 and 5 s).
const HINT_WAIT: Duration = Duration::from_secs(12);

/// Before: the log said `(Connect(127.0.0.1:35964))` and numbered the slot 0 where the user's
/// `--slot 1` was meant.
#[test]
fn messages_name_slots_as_the_user_does_and_show_no_debug_text() {
    let images = Images::new();
    let card = images.sample(1);
    let (_slot0, slot1, port) = port_pair();
    let mut emulator = images.serve(
        &[&card],
        &["--slot", "1", "--connect", &format!("127.0.0.1:{port}")],
    );
    let stderr = Stderr::of(&mut emulator);
    let next = port + 1;
    let mut vpcd = accept(&slot1);
    vpcd.power_on();
    drop(vpcd);
    let text = stderr
        .wait_for("closed the connection", common::LIMIT)
        .unwrap_or_else(|text| panic!("{text}"));
    kill(emulator);
    assert!(
        text.contains(&format!(
            "slot 1: {} (vpcd at 127.0.0.1:{next})",
            card.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("slot 1: connected to vpcd at 127.0.0.1:{next}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "slot 1: vpcd at 127.0.0.1:{next} closed the connection"
        )),
        "{text}"
    );
    for debug in ["Connect(", "slot=", "slot 0"] {
        assert!(!text.contains(debug), "{debug:?} in {text}");
    }
}

/// Before: only "vpcd not reachable yet; retrying", with no hint at what to do.
#[test]
fn a_vpcd_port_that_never_answers_is_explained() {
    let images = Images::new();
    let card = images.sample(2);
    let port = free_port();
    let mut emulator = images.serve(&[&card], &["--connect", &format!("127.0.0.1:{port}")]);
    let stderr = Stderr::of(&mut emulator);
    let text = stderr.wait_for("no vpcd reader", HINT_WAIT);
    kill(emulator);
    let text = text.unwrap_or_else(|text| panic!("{text}"));
    assert!(
        text.contains(&format!(
            "slot 0: no vpcd reader on 127.0.0.1:{port} (Connection refused (os error 111)): \
             is pcscd running with the vpcd driver"
        )),
        "{text}"
    );
    assert_eq!(
        text.matches("no vpcd reader").count(),
        1,
        "said once: {text}"
    );
}

/// vpcd keeps a second card side of a slot it serves in its listen backlog: the connection
/// succeeds, and nothing comes. Before, that went unnoticed.
#[test]
fn a_busy_slot_is_reported() {
    let images = Images::new();
    let card = images.sample(3);
    // Accepted by the kernel (the backlog), never by anyone: what vpcd does with a second card
    // side (seen with Debian's vpcd 3.3, see docs/emulator.md).
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let mut emulator = images.serve(&[&card], &["--connect", &addr.to_string()]);
    let stderr = Stderr::of(&mut emulator);
    let text = stderr.wait_for("has sent nothing", HINT_WAIT);
    kill(emulator);
    let text = text.unwrap_or_else(|text| panic!("{text}"));
    assert!(
        text.contains(&format!(
            "slot 0: vpcd at {addr} accepted the connection but has sent nothing for 3 s: \
             another card side (a second emulator?) is serving this reader already"
        )),
        "{text}"
    );
}

#[test]
fn a_slot_polled_but_never_powered_on_gets_a_hint() {
    let images = Images::new();
    let card = images.sample(4);
    let (listener, addr) = common::vpcd_listener();
    let mut emulator = images.serve(&[&card], &["--connect", &addr.to_string()]);
    let stderr = Stderr::of(&mut emulator);
    let mut vpcd = accept(&listener);
    let polling = std::thread::spawn(move || {
        // GET ATR polls, as pcscd sends them, and never a power-on.
        for _ in 0..25 {
            if vpcd.exchange(&[0x04]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    let text = stderr.wait_for("has not powered the card on", HINT_WAIT);
    kill(emulator);
    polling.join().unwrap();
    let text = text.unwrap_or_else(|text| panic!("{text}"));
    assert!(
        text.contains(&format!(
            "slot 0: vpcd at {addr} polls this slot but has not powered the card on in 5 s"
        )),
        "{text}"
    );
    assert!(text.contains("opensc-tool --list-readers"), "{text}");
    assert!(!text.contains("has sent nothing"), "{text}");
}

/// Before: two emulators served one image, each from its own copy of the state, and the last
/// save won.
#[test]
fn an_image_served_by_one_emulator_is_refused_by_another() {
    let images = Images::new();
    let card = images.sample(5);
    let (listener, addr) = common::vpcd_listener();
    let first = images.serve(&[&card], &["--connect", &addr.to_string()]);
    // Connected: the first one holds the image.
    let mut vpcd = accept(&listener);
    vpcd.power_on();
    let second = images
        .serve(&[&card], &["--connect", &addr.to_string()])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "vsc-emulator: {} is in use by process {} (vsc-emulator): an image is served by one \
             emulator at a time\n",
            card.display(),
            first.id()
        )
    );
    // The first one saves, and still holds the image after its save replaced the file.
    assert_eq!(vpcd.apdu(common::VERIFY_WRONG), "63C2");
    let third = images
        .serve(&[&card], &["--connect", &addr.to_string()])
        .wait_with_output()
        .unwrap();
    assert_eq!(third.status.code(), Some(1));
    kill(first);
    // Once it is gone, the image is free.
    let mut fourth = images.serve(&[&card], &["--connect", &addr.to_string()]);
    let mut vpcd = accept(&listener);
    assert_eq!(vpcd.power_on(), vsc_core::atr::atr(0x05));
    assert!(fourth.try_wait().unwrap().is_none());
    kill(fourth);
}

/// Serves one image until the fake vpcd powered it on; returns standard error.
fn stderr_with(args: &[&str], rust_log: Option<&str>) -> String {
    let images = Images::new();
    let card = images.sample(6);
    let (listener, addr) = common::vpcd_listener();
    let mut command = Command::new(EMULATOR);
    command
        .arg("serve")
        .arg(&card)
        .arg("--key-file")
        .arg(&images.key_file)
        .args(["--connect", &addr.to_string()])
        .args(args)
        .stderr(std::process::Stdio::piped());
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let mut emulator = command.spawn().unwrap();
    let stderr = Stderr::of(&mut emulator);
    let mut vpcd = accept(&listener);
    vpcd.power_on();
    vpcd.apdu("00A4040C06F05653430001");
    drop(vpcd);
    // The close is logged at info; give it a moment either way.
    let _ = stderr.wait_for("closed the connection", Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(100));
    kill(emulator);
    stderr.text()
}

#[test]
fn verbosity_flags_and_rust_log() {
    let default = stderr_with(&[], None);
    assert!(default.contains("INFO"), "{default}");
    assert!(!default.contains("DEBUG"), "{default}");

    let quiet = stderr_with(&["-q"], None);
    assert_eq!(quiet, "", "errors only");

    let verbose = stderr_with(&["-v"], None);
    assert!(verbose.contains("DEBUG"), "{verbose}");
    assert!(verbose.contains("slot 0: power on"), "{verbose}");

    let from_env = stderr_with(&[], Some("debug"));
    assert!(from_env.contains("slot 0: power on"), "{from_env}");

    let flags_win = stderr_with(&["-q"], Some("debug"));
    assert_eq!(flags_win, "", "-q overrides RUST_LOG");

    let traced = stderr_with(&["-q", "--trace"], None);
    assert!(traced.contains("SELECT 00A4040C"), "{traced}");
}

#[test]
fn readers_conf_writes_entries_with_their_own_driver_copies() {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir.path().join("libifdvpcd.so");
    std::fs::write(&driver, b"a driver").unwrap();
    let out = dir.path().join("readers");
    let output = Command::new(EMULATOR)
        .args(["readers-conf", "--slots", "3", "--out"])
        .arg(&out)
        .arg("--driver")
        .arg(&driver)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.starts_with(
            "slot 0: port 35963, reader \"Virtual PCD 00 00\"\n\
             slot 1: port 35964, reader \"Virtual PCD 00 01\"\n\
             slot 2: port 35965, reader \"Virtual PCD 1 00 00\"\n"
        ),
        "{stdout}"
    );
    let drivers = dir.path().join("readers-drivers").canonicalize().unwrap();
    let entry = std::fs::read_to_string(out.join("vpcd-1")).unwrap();
    assert_eq!(
        entry,
        format!(
            "FRIENDLYNAME \"Virtual PCD 1\"\nDEVICENAME   /dev/null:35965\n\
             LIBPATH      {}\nCHANNELID    35965\n",
            drivers.join("libifdvpcd-1.so").display()
        )
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(&drivers).unwrap().count(), 2);

    // A folder with other files in it is refused: pcscd would read them as entries.
    std::fs::write(out.join("README"), b"x").unwrap();
    let refused = Command::new(EMULATOR)
        .args(["readers-conf", "--slots", "2", "--out"])
        .arg(&out)
        .arg("--driver")
        .arg(&driver)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("which is no reader entry of ours"),
        "{stderr}"
    );
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(EMULATOR)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in ["serve", "inspect", "readers-conf", "key-file", "slots"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    let bash = Command::new(EMULATOR)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete -F _vsc__emulator"));
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let status = Command::new(EMULATOR)
        .args(["manpages", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "vsc-emulator-completions.1",
            "vsc-emulator-inspect.1",
            "vsc-emulator-readers-conf.1",
            "vsc-emulator-serve.1",
            "vsc-emulator.1"
        ]
    );
    let serve = std::fs::read_to_string(out.join("vsc-emulator-serve.1")).unwrap();
    assert!(serve.starts_with(".ie \\n(.g .ds Aq"), "roff");
    assert!(serve.contains(".TH vsc-emulator-serve 1"), "{serve}");
    assert!(serve.contains("Troubleshooting"), "{serve}");
    assert!(serve.contains("key\\-file"), "{serve}");
    let top = std::fs::read_to_string(out.join("vsc-emulator.1")).unwrap();
    assert!(top.contains("vsc\\-emulator\\-serve(1)"), "{top}");
}

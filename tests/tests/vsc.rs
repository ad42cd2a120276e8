//! `vsc-emulator serve` with real VSC images, through the real pcscd and vpcd: PC/SC sessions
//! with the `pcsc` crate and `opensc-tool`, PIN counters that survive restarts, two cards in two
//! slots, a SIGKILL in the middle of writes, and the errors that end the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vsc_core::card::CardState;
use vsc_core::crypto::MasterKey;
use vsc_core::fs::{EfBody, Fid, Node};
use vsc_core::image;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::security::PasswordRef;
use vsc_tests::{
    Machine, Pcscd, Process, Readers, run_tool, transmit, wait_for_card, wait_for_empty_reader,
    workspace_binary,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn hexs(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// An issuer key and VSC images in the machine's scratch folder.
struct Images {
    key_file: PathBuf,
    master: MasterKey,
    folder: PathBuf,
}

impl Images {
    fn new(scratch: &Path, name: &str) -> Images {
        let folder = scratch.join(name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let key_file = folder.join("issuer.key");
        let key = IssuerKeyFile::create_new(&key_file).unwrap();
        Images {
            key_file,
            master: key.master_key().clone(),
            folder,
        }
    }

    /// The sample card, with its UID's last byte set to `n`.
    fn sample(&self, n: u8) -> PathBuf {
        let mut state = vsc_core::sample::card().into_state();
        if let Some(ef) = state.fs.mf.child_ef_mut(Fid::EF_UID)
            && let EfBody::Transparent(uid) = &mut ef.body
        {
            uid[7] = n;
        }
        let path = self.folder.join(format!("card-{n}.vsc"));
        image::save(&path, &state, &self.master).unwrap();
        path
    }

    fn load(&self, path: &Path) -> CardState {
        image::load(path, &self.master).unwrap()
    }
}

/// `vsc-emulator serve` of `images` from slot 0, with `extra` arguments.
fn serve(machine: &Machine, images: &Images, cards: &[&Path], extra: &[&str]) -> Process {
    let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    command
        .arg("serve")
        .args(cards)
        .arg("--key-file")
        .arg(&images.key_file)
        .args(extra);
    Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap()
}

fn user_pin_tries(state: &CardState) -> u8 {
    state
        .passwords
        .get(PasswordRef::UserPin)
        .unwrap()
        .tries_left
}

/// Waits until pcscd has seen the card leave reader 0. An emulator stopped and started again
/// within one of pcscd's polls (about 400 ms) is never seen as a new card (a failed transmit
/// marks the reader empty, but pcscd's own poll must see the card absent once too).
fn card_removed(pcscd: &Pcscd<'_>) {
    wait_for_empty_reader(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
}

const VERIFY_WRONG: &str = "0020000108 393939393939FFFF";
const VERIFY_RIGHT: &str = "0020000108 313233343536FFFF";

#[test]
fn a_pcsc_session_with_a_vsc() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "session");
    let card_path = images.sample(1);
    let mut emulator = serve(&machine, &images, &[&card_path], &[]);
    let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    let send = |apdu: &str| hexs(&transmit(&card, &hex(apdu)).unwrap());

    assert_eq!(vsc_tests::atr(&card).unwrap(), vsc_core::atr::atr(0x05));
    assert_eq!(send("00A4040C06F05653430001"), "9000");
    assert_eq!(
        send("00B0810010"),
        format!("{}9000", hexs(b"ERIKA MUSTERMANN"))
    );
    assert_eq!(send("00A4080C0460006001"), "9000");
    assert_eq!(send("00B0000004"), "6982", "private data before VERIFY");
    assert_eq!(send("00200001"), "63C3");
    assert_eq!(send(VERIFY_WRONG), "63C2");
    assert_eq!(send(VERIFY_WRONG), "63C1");
    assert_eq!(send(VERIFY_RIGHT), "9000");
    assert_eq!(send("00B0000004"), format!("{}9000", hexs(b"Heid")));
    drop(card);
    emulator.stop().unwrap();
    // The right PIN put the counter back; the image says so.
    assert_eq!(user_pin_tries(&images.load(&card_path)), 3);
    drop(pcscd);
}

#[test]
fn a_blocked_pin_stays_blocked_after_a_restart() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "blocked");
    let card_path = images.sample(2);
    let mut emulator = serve(&machine, &images, &[&card_path], &[]);
    {
        let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
        let send = |apdu: &str| hexs(&transmit(&card, &hex(apdu)).unwrap());
        assert_eq!(send(VERIFY_WRONG), "63C2");
        assert_eq!(send(VERIFY_WRONG), "63C1");
        assert_eq!(send(VERIFY_WRONG), "63C0");
        assert_eq!(send(VERIFY_RIGHT), "6983");
    }
    emulator.stop().unwrap();
    assert_eq!(user_pin_tries(&images.load(&card_path)), 0);
    card_removed(&pcscd);

    let mut emulator = serve(&machine, &images, &[&card_path], &[]);
    let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(hexs(&transmit(&card, &hex("00200001")).unwrap()), "6983");
    assert_eq!(hexs(&transmit(&card, &hex(VERIFY_RIGHT)).unwrap()), "6983");
    drop(card);
    emulator.stop().unwrap();
}

#[test]
fn opensc_tool_reads_the_atr_and_sends_apdus() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "opensc");
    let card_path = images.sample(3);
    let mut emulator = serve(&machine, &images, &[&card_path], &[]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());

    let atr = run_tool("opensc-tool", &["--reader", "0", "--atr"], "", TOOL_TIMEOUT).unwrap();
    assert!(atr.status.success(), "{atr:?}");
    assert!(
        atr.stdout
            .contains("3b:8b:81:31:fe:45:80:73:f6:21:c0:53:56:53:43:81:05:f5"),
        "{}",
        atr.stdout
    );

    let args = [
        "--reader",
        "0",
        "-s",
        "00A4040C06F05653430001",
        "-s",
        "00B0810010",
        "-s",
        "00A4080C0460006001",
        "-s",
        "00B0000004",
    ];
    let session = run_tool("opensc-tool", &args, "", TOOL_TIMEOUT).unwrap();
    assert!(session.status.success(), "{session:?}");
    assert!(
        session.stdout.contains("ERIKA MUSTERMANN"),
        "{}",
        session.stdout
    );
    assert!(
        session.stdout.contains("Received (SW1=0x69, SW2=0x82)"),
        "{}",
        session.stdout
    );
    emulator.stop().unwrap();
}

#[test]
fn the_atr_passes_pcsc_tools_analysis() {
    let atr = hexs(&vsc_core::atr::atr(0x05));
    let analysis = run_tool("ATR_analysis", &[&atr], "", TOOL_TIMEOUT).unwrap();
    assert!(
        analysis.stdout.contains("TCK = F5 (correct checksum)"),
        "{}",
        analysis.stdout
    );
    assert!(
        analysis.stdout.contains("Extended Lc and Le fields"),
        "{}",
        analysis.stdout
    );
    assert!(
        analysis.stdout.contains("Command chaining"),
        "{}",
        analysis.stdout
    );
    for complaint in ["ERROR", "Error", "error", "!!"] {
        assert!(!analysis.stdout.contains(complaint), "{}", analysis.stdout);
    }
}

#[test]
fn two_cards_in_two_slots_at_once() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "two");
    let (a, b) = (images.sample(0x0A), images.sample(0x0B));
    let mut emulator = serve(&machine, &images, &[&a, &b], &[]);
    let uid_of = |reader: &str| {
        let card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
        assert_eq!(
            hexs(&transmit(&card, &hex("00A4000C022F02")).unwrap()),
            "9000"
        );
        hexs(&transmit(&card, &hex("00B0000008")).unwrap())
    };
    let threads = [pcscd.reader(0).to_string(), pcscd.reader(1).to_string()]
        .map(|reader| std::thread::spawn(move || uid_of(&reader)));
    let uids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(uids, ["565343000000000A9000", "565343000000000B9000"]);
    emulator.stop().unwrap();
}

/// Writes one of two values into the private EF until the emulator dies; the image left must
/// load and hold one of them.
#[test]
fn a_sigkill_in_a_write_loop_leaves_a_whole_image() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "sigkill");
    let card_path = images.sample(4);
    let values = [[0xAA; 16], [0x55; 16]];
    for round in 0..3 {
        let mut emulator = serve(&machine, &images, &[&card_path], &[]);
        let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
        for setup in ["00A4080C0460006001", VERIFY_RIGHT] {
            assert_eq!(transmit(&card, &hex(setup)).unwrap(), [0x90, 0x00]);
        }
        let killer = {
            let pid = emulator.pid();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150 + 70 * round));
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            })
        };
        let mut written = 0;
        for i in 0.. {
            let mut update = hex("00D6000010");
            update.extend_from_slice(&values[i % 2]);
            match transmit(&card, &update) {
                Ok(response) if response == [0x90, 0x00] => written += 1,
                _ => break,
            }
        }
        killer.join().unwrap();
        let _ = emulator.wait(Duration::from_secs(5));
        drop(card);
        assert!(written > 5, "the loop ran ({written} writes)");
        let state = images.load(&card_path);
        let Some(Node::Df(private)) = state.fs.mf.child(Fid::DF_PRIVATE) else {
            panic!()
        };
        let Some(ef) = private.child_ef(Fid::new(0x6001).unwrap()) else {
            panic!()
        };
        let EfBody::Transparent(bytes) = &ef.body else {
            panic!()
        };
        assert!(
            values.iter().any(|v| bytes[..16] == v[..]),
            "round {round}: {:02X?}",
            &bytes[..16]
        );
        card_removed(&pcscd);
    }
    drop(pcscd);
}

#[test]
fn errors_end_the_emulator_with_one_clear_line() {
    let scratch = tempfile::tempdir().unwrap();
    let images = Images::new(scratch.path(), "errors");
    let card = images.sample(5);
    let binary = workspace_binary("vsc-emulator", "vsc-emulator").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(&binary).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let key = images.key_file.to_str().unwrap();

    let (code, stderr) = run(&["serve", "/nonexistent/card.vsc", "--key-file", key]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/card.vsc"), "{stderr}");

    let other = images.folder.join("other.key");
    IssuerKeyFile::create_new(&other).unwrap();
    let (code, stderr) = run(&[
        "serve",
        card.to_str().unwrap(),
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("sealed under the issuer key with check value"),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run(&[
        "serve",
        card.to_str().unwrap(),
        "--key-file",
        key,
        "--listen",
        &address,
    ]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.lines().last().unwrap_or("").contains(&address),
        "{stderr}"
    );
}

#[test]
fn a_recorded_session_is_a_transcript_without_secrets() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch(), "record");
    let card_path = images.sample(6);
    let record = images.folder.join("session.vsct");
    let mut emulator = serve(
        &machine,
        &images,
        &[&card_path],
        &["--record", record.to_str().unwrap()],
    );
    {
        let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
        for apdu in ["00A4080C0460006001", VERIFY_RIGHT, "00B0000004"] {
            transmit(&card, &hex(apdu)).unwrap();
        }
    }
    emulator.signal("INT").unwrap();
    emulator.wait(Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    let transcript = vsc_core::transcript::Transcript::parse(&text).unwrap();
    assert_eq!(transcript.header.kind, vsc_core::transcript::Kind::Session);
    assert!(text.contains("> 00A4080C0460006001\n< 9000"), "{text}");
    assert!(!text.contains("313233343536"), "the PIN is masked");
    assert!(!text.contains(&hexs(b"Heid")), "private data is masked");
    let _: &Pcscd = &pcscd;
}

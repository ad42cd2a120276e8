//! `vsc-emulator` through the real pcscd and vpcd: an application's 1-byte commands answered at
//! once and the reader working on, a second emulator on a busy slot reported (and served when
//! the first leaves), and four readers from `vsc-emulator readers-conf`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vsc_core::fs::{EfBody, Fid};
use vsc_core::image;
use vsc_core::issuer::IssuerKeyFile;
use vsc_emulator::readers_conf;
use vsc_tests::{Machine, Process, Readers, transmit, wait_for_card, workspace_binary};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const VERIFY_RIGHT: &str = "0020000108313233343536FFFF";

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// An issuer key and sample images (UID ending in `n`) in a folder of the scratch space.
struct Images {
    key_file: PathBuf,
    key: IssuerKeyFile,
    folder: PathBuf,
}

impl Images {
    fn new(scratch: &Path) -> Images {
        let folder = scratch.join("images");
        std::fs::create_dir_all(&folder).unwrap();
        let key_file = folder.join("issuer.key");
        let key = IssuerKeyFile::create_new(&key_file).unwrap();
        Images {
            key_file,
            key,
            folder,
        }
    }

    fn sample(&self, n: u8) -> PathBuf {
        let mut state = vsc_core::sample::card().into_state();
        if let Some(ef) = state.fs.mf.child_ef_mut(Fid::EF_UID)
            && let EfBody::Transparent(uid) = &mut ef.body
        {
            uid[7] = n;
        }
        let path = self.folder.join(format!("card-{n}.vsc"));
        image::save(&path, &state, self.key.master_key()).unwrap();
        path
    }

    fn serve(&self, machine: &Machine, cards: &[&Path], args: &[&str]) -> Process {
        let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
        command
            .arg("serve")
            .args(cards)
            .arg("--key-file")
            .arg(&self.key_file)
            .args(args);
        Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap()
    }
}

/// The UID of the card in `reader`, read through PC/SC.
fn uid_in(reader: &str) -> String {
    let card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
    assert_eq!(
        transmit(&card, &hex("00A4000C022F02")).unwrap(),
        hex("9000")
    );
    hex::encode_upper(transmit(&card, &hex("00B0000008")).unwrap())
}

fn wait_for_log(process: &Process, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = process.output();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Before: vpcd passed the 1-byte command on, the emulator gave no answer (or took `01` for a
/// power-on), and SCardTransmit hung; the reader stayed stuck.
#[test]
fn one_byte_commands_get_6700_at_once_and_the_reader_works_on() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch());
    let card_path = images.sample(1);
    let _emulator = images.serve(&machine, &[&card_path], &[]);
    let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    let send = |apdu: &[u8]| -> (Vec<u8>, Duration) {
        let started = Instant::now();
        let response = transmit(&card, apdu).unwrap();
        (response, started.elapsed())
    };
    assert_eq!(send(&hex("00A4080C0460006001")).0, hex("9000"));
    assert_eq!(send(&hex(VERIFY_RIGHT)).0, hex("9000"));
    let address = [b"Heid".as_slice(), &[0x90, 0x00]].concat();
    for command in [[0x03], [0x01], [0x02], [0xFF]] {
        let (response, took) = send(&command);
        assert_eq!(response, hex("6700"), "{command:02X?}");
        // Idle, an answer comes within 300 ms (01 and 02 wait 250 ms for a GET ATR); the
        // bound leaves room for a loaded machine and is far below the 15 s hang it catches.
        assert!(
            took < Duration::from_secs(5),
            "{command:02X?} took {took:?}"
        );
        // The card was left as it was: no power-on or reset ended the session.
        assert_eq!(send(&hex("00B0000004")).0, address, "after {command:02X?}");
    }
    // `04` is vpcd's GET ATR on the wire: it gets the ATR, at once.
    let (response, took) = send(&[0x04]);
    assert_eq!(response, vsc_core::atr::atr(0x05));
    assert!(took < Duration::from_millis(600), "{took:?}");

    // `00` may be a real power-off: answered, and the session ends with the connection.
    let (response, took) = send(&[0x00]);
    assert_eq!(response, hex("6700"));
    assert!(took < Duration::from_secs(1), "{took:?}");
    drop(card);
    let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(
        transmit(&card, &hex("00A4080C0460006001")).unwrap(),
        hex("9000")
    );
    assert_eq!(
        transmit(&card, &hex("00B0000004")).unwrap(),
        hex("6982"),
        "a new session: the PIN is no longer verified"
    );
}

/// vpcd accepts one card side per slot and keeps a second one waiting in its listen backlog:
/// the second connects, and hears nothing.
#[test]
fn a_second_emulator_on_a_busy_slot_is_reported_and_waits_its_turn() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let images = Images::new(machine.scratch());
    let (first_card, second_card) = (images.sample(0x0A), images.sample(0x0B));
    let mut first = images.serve(&machine, &[&first_card], &[]);
    assert_eq!(uid_in(pcscd.reader(0)), "565343000000000A9000");

    let second = images.serve(&machine, &[&second_card], &[]);
    let log = wait_for_log(&second, "has sent nothing", Duration::from_secs(10));
    assert!(
        log.contains(
            "slot 0: vpcd at 127.0.0.1:35963 accepted the connection but has sent nothing for \
             3 s: another card side (a second emulator?) is serving this reader already"
        ),
        "{log}"
    );
    assert_eq!(
        uid_in(pcscd.reader(0)),
        "565343000000000A9000",
        "the first one serves on"
    );

    first.stop().unwrap();
    let log = wait_for_log(&second, "serves this slot now", CARD_TIMEOUT);
    assert!(
        log.contains("slot 0: vpcd at 127.0.0.1:35963 serves this slot now"),
        "{log}"
    );
    let deadline = Instant::now() + CARD_TIMEOUT;
    while uid_in(pcscd.reader(0)) != "565343000000000B9000" {
        assert!(Instant::now() < deadline, "the second one was never served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn four_readers_from_readers_conf_each_serve_a_card() {
    let machine = Machine::lock().unwrap();
    let config = machine.scratch().join("readers");
    let output = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap())
        .args(["readers-conf", "--slots", "4", "--out"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let names = readers_conf::reader_names(&readers_conf::entries_for_slots(4, 35963).unwrap());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for (slot, name) in names.iter().enumerate() {
        assert!(
            stdout.contains(&format!(
                "slot {slot}: port {}, reader \"{name}\"",
                35963 + slot
            )),
            "{stdout}"
        );
    }
    let pcscd = machine
        .start_pcscd(&Readers::folder(&config, names.clone()))
        .unwrap();
    assert_eq!(
        pcscd.readers(),
        [
            "Virtual PCD 00 00",
            "Virtual PCD 00 01",
            "Virtual PCD 1 00 00",
            "Virtual PCD 1 00 01"
        ]
    );
    let images = Images::new(machine.scratch());
    let cards: Vec<PathBuf> = (1..=4).map(|n| images.sample(n)).collect();
    let card_refs: Vec<&Path> = cards.iter().map(PathBuf::as_path).collect();
    let _emulator = images.serve(&machine, &card_refs, &[]);
    let uids: Vec<String> = std::thread::scope(|scope| {
        let readers: Vec<_> = pcscd
            .readers()
            .iter()
            .map(|reader| scope.spawn(move || uid_in(reader)))
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        uids,
        (1..=4)
            .map(|n| format!("56534300000000{n:02X}9000"))
            .collect::<Vec<_>>()
    );
}

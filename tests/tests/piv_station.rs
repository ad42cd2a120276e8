//! PIV cards personalized through the real stack: `vsc-personalizer prepare` of the demo PIV
//! profile, a factory-fresh PIV VSC (`blank`) served by `vsc-emulator`, `station` through pcscd
//! and vpcd, then the stock clients: `yubico-piv-tool -a status` shows the certificates,
//! OpenSC's PKCS#11 module signs with 9C under the mailer's PIN and `openssl` verifies it
//! against the exported certificate, the factory management key fails and the card's own one
//! (derived from the issuer key) authenticates with `piv-tool`; and the card's transcript,
//! replayed onto a second factory-fresh card, stops before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use vsc_core::issuer::IssuerKeyFile;
use vsc_core::security::BlockAlgorithm;
use vsc_tests::{
    KeyForm, Machine, Pkcs11Slot, Process, Readers, SLOT_0_READER as READER, ToolOutput,
    check_sha256_signature, run_command, serve_image, transmit_hex, wait_for_card,
    wait_for_empty_reader,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST: &str = "5653434400005001";
const SECOND: &str = "5653434400005002";
/// The factory management key in the text form piv-tool reads (`PIV_EXT_AUTH_KEY`).
const FACTORY_KEY_TEXT: &str =
    "01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08";

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalizer/profiles")
}

fn binary(name: &str) -> Command {
    Command::new(vsc_tests::workspace_binary(name, name).unwrap())
}

#[track_caller]
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
fn succeeded(output: &ToolOutput) -> String {
    assert!(output.status.success(), "{output:#?}");
    format!("{}{}", output.stdout, output.stderr)
}

#[track_caller]
fn failed(output: &ToolOutput) -> String {
    assert!(!output.status.success(), "{output:#?}");
    format!("{}{}", output.stdout, output.stderr)
}

/// A bureau: an issuer key, its verification key, a PIN mailer key, and a store of prepared
/// PIV cards.
struct Bureau {
    folder: PathBuf,
    key_file: PathBuf,
    trusted_key: PathBuf,
    mailer_key: PathBuf,
    store: PathBuf,
}

impl Bureau {
    fn prepare(scratch: &Path, name: &str) -> Bureau {
        let folder = scratch.join(name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let key_file = folder.join("issuer.key");
        let trusted_key = folder.join("preparation.pub");
        let mailer_key = folder.join("mailer.agekey");
        let store = folder.join("vsc.db");
        ok(&binary("vsc-personalizer")
            .args(["keys", "init", "--out"])
            .arg(&key_file)
            .output()
            .unwrap());
        ok(&binary("vsc-personalizer")
            .args(["keys", "public-key", "--key-file"])
            .arg(&key_file)
            .arg("--out")
            .arg(&trusted_key)
            .output()
            .unwrap());
        ok(&Command::new("age-keygen")
            .arg("-o")
            .arg(&mailer_key)
            .output()
            .unwrap());
        let recipient = ok(&Command::new("age-keygen")
            .arg("-y")
            .arg(&mailer_key)
            .output()
            .unwrap());
        let records = std::fs::read_to_string(profiles().join("piv-records.csv")).unwrap();
        let records: String = records.lines().take(3).map(|l| format!("{l}\n")).collect();
        let records_file = folder.join("records.csv");
        std::fs::write(&records_file, records).unwrap();
        let prepared = ok(&binary("vsc-personalizer")
            .current_dir(&folder)
            .arg("prepare")
            .arg("--profile")
            .arg(profiles().join("piv.toml"))
            .arg("--records")
            .arg(&records_file)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--store")
            .arg(&store)
            .args(["--recipient", recipient.trim()])
            .output()
            .unwrap());
        assert!(
            prepared.contains("prepared 2 cards, 0 failed"),
            "{prepared}"
        );
        Bureau {
            folder,
            key_file,
            trusted_key,
            mailer_key,
            store,
        }
    }

    /// The card's PIN and PUK from the PIN mailer.
    fn pins(&self, uid: &str) -> (String, String) {
        for entry in std::fs::read_dir(self.folder.join("pin-mailer")).unwrap() {
            let file = entry.unwrap().path();
            if !file.to_string_lossy().ends_with(".csv.age") {
                continue;
            }
            let plain = ok(&Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(&self.mailer_key)
                .arg(&file)
                .output()
                .unwrap());
            assert!(plain.starts_with("uid,record,pin,puk\n"), "{plain}");
            for line in plain.lines() {
                let fields: Vec<&str> = line.split(',').collect();
                if fields[0] == uid {
                    return (fields[2].to_string(), fields[3].to_string());
                }
            }
        }
        panic!("no PIN mailer entry for {uid}");
    }

    /// A factory-fresh PIV VSC, as `blank` makes it.
    fn blank(&self, uid: &str) -> PathBuf {
        let out = self.folder.join(format!("card-{uid}.vsc"));
        let made = ok(&binary("vsc-personalizer")
            .arg("blank")
            .arg("--profile")
            .arg(profiles().join("piv.toml"))
            .args(["--uid", uid, "--key-file"])
            .arg(&self.key_file)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        assert!(made.contains("factory-fresh PIV card"), "{made}");
        out
    }

    fn serve(&self, machine: &Machine, image: &Path) -> Process {
        serve_image(image, &self.key_file, machine.scratch(), CARD_TIMEOUT).unwrap()
    }

    /// `station --once` on reader 0: its exit code and its whole output.
    fn station(&self) -> (Option<i32>, String) {
        let output = binary("vsc-personalizer")
            .args(["station", "--once", "--reader", "0", "--station-id", "test"])
            .arg("--store")
            .arg(&self.store)
            .arg("--key-file")
            .arg(&self.key_file)
            .arg("--trusted-key")
            .arg(&self.trusted_key)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    }

    /// `export <what>` of a card, into the bureau's folder.
    fn export(&self, what: &str, uid: &str, extra: &[&str]) -> PathBuf {
        let out = self.folder.join(format!("{uid}.{what}"));
        ok(&binary("vsc-personalizer")
            .args(["export", what, "--uid", uid, "--force", "--store"])
            .arg(&self.store)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        out
    }

    /// Runs `program` in the bureau's folder.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, &Path)]) -> ToolOutput {
        let mut command = Command::new(program);
        command.args(args).current_dir(&self.folder);
        for (name, value) in env {
            command.env(name, value);
        }
        run_command(command, "", TOOL_TIMEOUT).unwrap()
    }

    /// The card's own management key as piv-tool reads it: derived from the issuer key.
    fn card_key_text(&self, uid: &str) -> String {
        let key = IssuerKeyFile::load(&self.key_file).unwrap();
        let mut bytes = [0u8; 8];
        hex::decode_to_slice(uid, &mut bytes).unwrap();
        let derived = vsc_core::transcript::derive_management_key(
            key.master_key(),
            BlockAlgorithm::Aes256,
            &bytes,
        );
        derived
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// The PEM after the `slot <slot> (…)` line of an export.
fn slot_pem(export: &str, slot: &str) -> String {
    let mut lines = export
        .lines()
        .skip_while(|l| !l.starts_with(&format!("slot {slot} ")));
    lines.next().expect("the slot");
    let mut pem = String::new();
    for line in lines {
        pem.push_str(line);
        pem.push('\n');
        if line.starts_with("-----END") {
            break;
        }
    }
    pem
}

fn send(card: &pcsc::Card, apdu: &str) -> String {
    transmit_hex(card, apdu).unwrap()
}

#[test]
fn the_station_personalizes_a_factory_fresh_piv_card_that_the_stock_clients_then_use() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let bureau = Bureau::prepare(machine.scratch(), "piv-station");
    let image = bureau.blank(FIRST);
    let mut emulator = bureau.serve(&machine, &image);
    let (code, output) = bureau.station();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("1 personalized, 0 failed, 0 refused"),
        "{output}"
    );
    let (pin, puk) = bureau.pins(FIRST);
    assert_eq!((pin.len(), puk.len()), (6, 8));
    for secret in [&pin, &puk] {
        assert!(!output.contains(secret.as_str()), "a PIN in the output");
    }

    // yubico-piv-tool shows the four certificates the CA issued.
    let status = succeeded(&bureau.run(
        "yubico-piv-tool",
        &["--reader", READER, "-a", "status"],
        &[],
    ));
    for slot in ["9a", "9c", "9d", "9e"] {
        assert!(status.contains(&format!("Slot {slot}:")), "{status}");
    }
    assert!(
        status.contains("Subject DN:\tO=VSC demo, CN=Zoe Hartmann"),
        "{status}"
    );
    assert!(
        status
            .contains("Issuer DN:\tO=VSC demo, CN=VSC PIV demo CA (TEST KEY, NOT FOR PRODUCTION)"),
        "{status}"
    );
    assert!(status.contains("PIN tries left:\t3"), "{status}");

    // pkcs11-tool signs with 9C (OpenSC's id 02) under the mailer's PIN; openssl verifies the
    // signature with the exported certificate, and not for other data.
    let certificates = std::fs::read_to_string(bureau.export("certificate", FIRST, &[])).unwrap();
    std::fs::write(bureau.folder.join("9c.pem"), slot_pem(&certificates, "9C")).unwrap();
    std::fs::write(
        bureau.folder.join("ca.pem"),
        std::fs::read(profiles().join("piv-demo-ca.pem")).unwrap(),
    )
    .unwrap();
    succeeded(&bureau.run("openssl", &["verify", "-CAfile", "ca.pem", "9c.pem"], &[]));
    succeeded(&bureau.run(
        "openssl",
        &[
            "x509", "-in", "9c.pem", "-pubkey", "-noout", "-out", "9c.pub",
        ],
        &[],
    ));
    let data = bureau.folder.join("data.txt");
    std::fs::write(&data, "signed by a personalized PIV card\n").unwrap();
    let sign = |pin: &str, out: &str| {
        Pkcs11Slot::first()
            .sign_ecdsa_sha256(
                "02",
                Some(pin),
                &data,
                &bureau.folder.join(out),
                TOOL_TIMEOUT,
            )
            .unwrap()
    };
    failed(&sign("123456", "factory.sig"));
    succeeded(&sign(&pin, "data.sig"));
    check_sha256_signature(
        &bureau.folder.join("9c.pub"),
        KeyForm::Pem,
        &bureau.folder.join("data.sig"),
        &data,
        TOOL_TIMEOUT,
    )
    .unwrap();

    // The factory management key fails (yubico-piv-tool's default, piv-tool's 3DES); the
    // card's own AES-256 key, derived from the issuer key, authenticates.
    let set_ccc = bureau.run(
        "yubico-piv-tool",
        &["--reader", READER, "-a", "set-ccc"],
        &[],
    );
    assert!(
        failed(&set_ccc).contains("Failed authentication with the application"),
        "{set_ccc:#?}"
    );
    std::fs::write(bureau.folder.join("factory.key"), FACTORY_KEY_TEXT).unwrap();
    std::fs::write(bureau.folder.join("card.key"), bureau.card_key_text(FIRST)).unwrap();
    let factory = bureau.run(
        "piv-tool",
        &["--reader", "0", "--admin", "M:9B:03"],
        &[("PIV_EXT_AUTH_KEY", &bureau.folder.join("factory.key"))],
    );
    assert!(
        failed(&factory).contains("admin_mode failed"),
        "{factory:#?}"
    );
    let own = bureau.run(
        "piv-tool",
        &["--reader", "0", "--admin", "M:9B:0C"],
        &[("PIV_EXT_AUTH_KEY", &bureau.folder.join("card.key"))],
    );
    assert!(!succeeded(&own).contains("admin_mode failed"), "{own:#?}");
    emulator.stop().unwrap();
    wait_for_empty_reader(READER, CARD_TIMEOUT).unwrap();

    // The first card's transcript, replayed onto a second factory-fresh card: stopped at the
    // first check (its UID), nothing written.
    let transcript = bureau.export(
        "transcript",
        FIRST,
        &["--clear", "--key-file", bureau.key_file.to_str().unwrap()],
    );
    let second = bureau.blank(SECOND);
    let mut emulator = bureau.serve(&machine, &second);
    let replayed = binary("vsc-personalizer")
        .arg("replay")
        .arg(&transcript)
        .args(["--reader", "0", "--key-file"])
        .arg(&bureau.key_file)
        .arg("--trusted-key")
        .arg(&bureau.trusted_key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&replayed.stdout),
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(!replayed.status.success(), "{text}");
    assert!(text.contains(FIRST) && text.contains(SECOND), "{text}");
    // Read back: the PIN, PUK and management key are the factory ones, no slot holds a key,
    // no certificate was written.
    let card = wait_for_card(READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040005A000000308"), "9000");
    for reference in ["80", "81", "9B"] {
        let answer = send(&card, &format!("00F700{reference}00"));
        assert!(answer.contains("050101"), "{reference}: {answer}");
    }
    for slot in ["9A", "9C", "9D", "9E"] {
        assert_eq!(send(&card, &format!("00F700{slot}00")), "6A88");
    }
    assert_eq!(send(&card, "00CB3FFF055C035FC10A00"), "6A82");
    drop(card);
    // A card whose PIN is not the factory one is refused by the station before anything is
    // written, without a try of its PIN.
    succeeded(&bureau.run(
        "yubico-piv-tool",
        &[
            "--reader",
            READER,
            "-a",
            "change-pin",
            "-P",
            "123456",
            "-N",
            "111111",
        ],
        &[],
    ));
    let (code, output) = bureau.station();
    assert_ne!(code, Some(0), "{output}");
    assert!(
        output.contains(
            "the PIV card is refused, nothing was written: its PIN is not the factory value"
        ),
        "{output}"
    );
    let card = wait_for_card(READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040005A000000308"), "9000");
    assert_eq!(send(&card, "0020008000"), "63C3");
    for slot in ["9A", "9C", "9D", "9E"] {
        assert_eq!(send(&card, &format!("00F700{slot}00")), "6A88");
    }
    drop(card);
    emulator.stop().unwrap();
}

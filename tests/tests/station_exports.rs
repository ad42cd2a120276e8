//! A station refuses an OpenPGP token whose keys the store cannot name: a job prepared with keys
//! whose stored exports are missing (or lack a key) is failed before anything is written to the
//! token, rather than replayed and read back without comparing its public keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use vsc_tests::{Machine, Process, Readers, transmit, wait_for_card};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const UID: &str = "0000FF5600003001";

fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalizer/profiles/openpgp.toml")
}

fn personalizer() -> Command {
    Command::new(vsc_tests::workspace_binary("vsc-personalizer", "vsc-personalizer").unwrap())
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

fn send(card: &pcsc::Card, apdu: &str) -> String {
    hex::encode_upper(transmit(card, &hex::decode(apdu).unwrap()).unwrap())
}

/// `station --once` on reader 0: its exit code and its whole output.
fn station(folder: &Path) -> (Option<i32>, String) {
    let output = personalizer()
        .args(["station", "--once", "--reader", "0", "--station-id", "test"])
        .arg("--store")
        .arg(folder.join("vsc.db"))
        .arg("--key-file")
        .arg(folder.join("issuer.key"))
        .arg("--trusted-key")
        .arg(folder.join("preparation.pub"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// The token still as it left its factory: no name, no fingerprints, PW3 the default with
/// every try left.
fn assert_untouched(card: &pcsc::Card) {
    assert_eq!(send(card, "00A4040006D27600012401"), "9000");
    assert_eq!(send(card, "00CA005B00"), "9000", "no name written");
    assert_eq!(send(card, "00CA00C500"), format!("{}9000", "00".repeat(60)));
    assert_eq!(send(card, "00200083"), "63C3", "no try of PW3 spent");
}

#[test]
fn a_token_whose_stored_exports_lack_its_keys_is_refused_before_anything_is_written() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let folder = machine.scratch().join("station-exports");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let key_file = folder.join("issuer.key");
    ok(&personalizer()
        .args(["keys", "init", "--out"])
        .arg(&key_file)
        .output()
        .unwrap());
    ok(&personalizer()
        .args(["keys", "public-key", "--key-file"])
        .arg(&key_file)
        .arg("--out")
        .arg(folder.join("preparation.pub"))
        .output()
        .unwrap());
    let records = std::fs::read_to_string(profile().with_file_name("openpgp-records.csv")).unwrap();
    let records_file = folder.join("records.csv");
    std::fs::write(
        &records_file,
        records.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    assert!(records.lines().nth(1).unwrap().starts_with(UID));
    let prepared = ok(&personalizer()
        .current_dir(&folder)
        .arg("prepare")
        .arg("--profile")
        .arg(profile())
        .arg("--records")
        .arg(&records_file)
        .arg("--key-file")
        .arg(&key_file)
        .arg("--store")
        .arg(folder.join("vsc.db"))
        .arg("--no-pin-mailer")
        .output()
        .unwrap());
    assert!(
        prepared.contains("prepared 1 cards, 0 failed"),
        "{prepared}"
    );
    let token = folder.join("token.vsc");
    ok(&personalizer()
        .arg("blank")
        .arg("--profile")
        .arg(profile())
        .args(["--uid", UID, "--key-file"])
        .arg(&key_file)
        .arg("--out")
        .arg(&token)
        .output()
        .unwrap());
    let mut serve =
        Command::new(vsc_tests::workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    serve
        .arg("serve")
        .arg(&token)
        .arg("--key-file")
        .arg(&key_file);
    let mut emulator = Process::spawn("vsc-emulator", &serve, machine.scratch()).unwrap();
    drop(wait_for_card("Virtual PCD 00 00", CARD_TIMEOUT).unwrap());

    let store = rusqlite::Connection::open(folder.join("vsc.db")).unwrap();
    let exports: String = store
        .query_row("SELECT exports FROM cards", [], |row| row.get(0))
        .unwrap();

    // No exports at all (a store written by another tool, or edited).
    store
        .execute("UPDATE cards SET exports = NULL", [])
        .unwrap();
    let (code, output) = station(&folder);
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("nothing was written"), "{output}");
    assert!(
        output.contains("holds no exports of this token"),
        "{output}"
    );
    assert_untouched(&wait_for_card("Virtual PCD 00 00", CARD_TIMEOUT).unwrap());

    // Exports without the decryption key.
    let mut partial: serde_json::Value = serde_json::from_str(&exports).unwrap();
    partial["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|key| key["slot"] != "decryption");
    store
        .execute("UPDATE cards SET exports = ?1", [partial.to_string()])
        .unwrap();
    let (code, output) = station(&folder);
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("no decryption public key"), "{output}");
    assert_untouched(&wait_for_card("Virtual PCD 00 00", CARD_TIMEOUT).unwrap());

    // With its exports back, the same job personalizes the token and reads its keys back.
    store
        .execute("UPDATE cards SET exports = ?1", [&exports])
        .unwrap();
    let (code, output) = station(&folder);
    assert_eq!(code, Some(0), "{output}");
    let card = wait_for_card("Virtual PCD 00 00", CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
    assert_ne!(
        send(&card, "00CA00C500"),
        format!("{}9000", "00".repeat(60)),
        "the fingerprints written"
    );
    drop(card);
    emulator.stop().unwrap();
}

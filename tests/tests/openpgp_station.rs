//! OpenPGP tokens personalized through the real stack: `vsc-personalizer prepare` of an OpenPGP
//! profile, a factory-fresh token VSC (`blank`) served by `vsc-emulator`, `station` through
//! pcscd and vpcd, then the stock clients: `gpg --card-status`, `gpg --import` of the exported
//! certificate and signing with the card, the PINs of the PIN mailer, and OpenSC's PKCS#11
//! module signing with the card's signature key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use vsc_tests::{
    GnupgHome, KeyForm, Machine, Pkcs11Slot, Process, Readers, SLOT_0_READER, TestDatabase,
    check_sha256_signature, run_tool, serve_image, transmit_hex, wait_for_card,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A bureau: an issuer key, its verification key, a PIN mailer key, and a store of prepared
/// tokens.
struct Bureau {
    folder: PathBuf,
    key_file: PathBuf,
    trusted_key: PathBuf,
    mailer_key: PathBuf,
    /// The store's location: an SQLite file in the folder, or a PostgreSQL database.
    store: String,
}

/// A token's PINs from the PIN mailer.
#[derive(Debug)]
struct Pins {
    pw1: String,
    pw3: String,
    resetting_code: String,
}

impl Bureau {
    fn prepare(scratch: &Path, name: &str, profile: &Path, records: &str) -> Bureau {
        Bureau::prepare_in(scratch, name, profile, records, None)
    }

    /// As [`Bureau::prepare`], into the store at `store` (default: `vsc.db` in its folder).
    fn prepare_in(
        scratch: &Path,
        name: &str,
        profile: &Path,
        records: &str,
        store: Option<String>,
    ) -> Bureau {
        let folder = scratch.join(name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let key_file = folder.join("issuer.key");
        let trusted_key = folder.join("preparation.pub");
        let mailer_key = folder.join("mailer.agekey");
        let store = store.unwrap_or_else(|| folder.join("vsc.db").to_string_lossy().into_owned());
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
        let records_file = folder.join("records.csv");
        std::fs::write(&records_file, records).unwrap();
        let prepared = ok(&binary("vsc-personalizer")
            .current_dir(&folder)
            .arg("prepare")
            .arg("--profile")
            .arg(profile)
            .arg("--records")
            .arg(&records_file)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--store")
            .arg(&store)
            .args(["--recipient", recipient.trim()])
            .output()
            .unwrap());
        assert!(prepared.contains("0 failed"), "{prepared}");
        Bureau {
            folder,
            key_file,
            trusted_key,
            mailer_key,
            store,
        }
    }

    fn pins(&self, uid: &str) -> Pins {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.folder.join("pin-mailer"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".csv.age"))
            .collect();
        files.sort();
        for file in files {
            let plain = ok(&Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(&self.mailer_key)
                .arg(&file)
                .output()
                .unwrap());
            assert!(plain.starts_with("uid,record,pin,admin_pin,resetting_code\n"));
            for line in plain.lines() {
                let fields: Vec<&str> = line.split(',').collect();
                if fields[0] == uid {
                    return Pins {
                        pw1: fields[2].to_string(),
                        pw3: fields[3].to_string(),
                        resetting_code: fields[4].to_string(),
                    };
                }
            }
        }
        panic!("no PIN mailer entry for {uid}");
    }

    /// A factory-fresh token VSC, as `blank` makes it.
    fn blank(&self, profile: &Path, uid: &str) -> PathBuf {
        let out = self.folder.join(format!("token-{uid}.vsc"));
        let made = ok(&binary("vsc-personalizer")
            .arg("blank")
            .arg("--profile")
            .arg(profile)
            .args(["--uid", uid, "--key-file"])
            .arg(&self.key_file)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        assert!(made.contains("factory-fresh OpenPGP token"), "{made}");
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

    fn export(&self, what: &str, uid: &str) -> PathBuf {
        let out = self.folder.join(format!("{uid}.{what}"));
        ok(&binary("vsc-personalizer")
            .args(["export", what, "--uid", uid, "--force", "--store"])
            .arg(&self.store)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        out
    }

    fn fingerprints(&self, uid: &str) -> Vec<String> {
        std::fs::read_to_string(self.export("fingerprints", uid))
            .unwrap()
            .lines()
            .map(|line| line.split(' ').nth(2).unwrap().to_string())
            .collect()
    }
}

fn send(card: &pcsc::Card, apdu: &str) -> String {
    transmit_hex(card, apdu).unwrap()
}

fn verify(reference: &str, pin: &str) -> String {
    format!(
        "002000{reference}{:02X}{}",
        pin.len(),
        hex::encode_upper(pin)
    )
}

fn demo_records(count: usize) -> String {
    let text = std::fs::read_to_string(profiles().join("openpgp-records.csv")).unwrap();
    text.lines()
        .take(count + 1)
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_station_personalizes_a_factory_fresh_token_that_gnupg_then_uses() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let profile = profiles().join("openpgp.toml");
    let bureau = Bureau::prepare(machine.scratch(), "gpg-token", &profile, &demo_records(2));
    let uid = "0000FF5600003001";
    let token = bureau.blank(&profile, uid);
    let mut emulator = bureau.serve(&machine, &token);
    let (code, output) = bureau.station();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("1 personalized, 0 failed, 0 refused"),
        "{output}"
    );
    let pins = bureau.pins(uid);
    for secret in [&pins.pw1, &pins.pw3, &pins.resetting_code] {
        assert!(
            !output.contains(secret.as_str()),
            "a PIN in the output: {output}"
        );
    }

    // gpg --card-status shows the holder's data and the exported certificate's fingerprints.
    let gnupg = GnupgHome::new(machine.scratch()).unwrap();
    let certificate = bureau.export("certificate", uid);
    let import = gnupg
        .gpg(
            &["--batch", "--import", certificate.to_str().unwrap()],
            "",
            TOOL_TIMEOUT,
        )
        .unwrap();
    assert!(import.status.success(), "{import:#?}");
    assert!(
        import
            .stderr
            .contains("\"Zoe Hartmann <zoe.hartmann@example.org>\" imported"),
        "{import:#?}"
    );
    let status = gnupg.gpg(&["--card-status"], "", TOOL_TIMEOUT).unwrap();
    let text = &status.stdout;
    assert!(status.status.success(), "{status:#?}");
    assert!(text.contains("Name of cardholder: Zoe Hartmann"), "{text}");
    assert!(
        text.contains("URL of public key : https://keys.example.org/zhartmann.asc"),
        "{text}"
    );
    assert!(text.contains("Login data .......: zhartmann"), "{text}");
    assert!(text.contains("Serial number ....: 00003001"), "{text}");
    assert!(
        text.contains("Key attributes ...: ed25519 cv25519 ed25519"),
        "{text}"
    );
    let on_card: Vec<String> = text
        .lines()
        .filter(|line| {
            line.starts_with("Signature key")
                || line.starts_with("Encryption key")
                || line.starts_with("Authentication key")
        })
        .map(|line| line.split_once(':').unwrap().1.replace(' ', ""))
        .collect();
    assert_eq!(on_card, bureau.fingerprints(uid), "{text}");
    let listed = gnupg
        .gpg(
            &["--batch", "--with-colons", "--list-keys"],
            "",
            TOOL_TIMEOUT,
        )
        .unwrap();
    let exported: Vec<String> = listed
        .stdout
        .lines()
        .filter(|line| line.starts_with("fpr:"))
        .map(|line| line.split(':').nth(9).unwrap().to_string())
        .collect();
    assert_eq!(exported, on_card, "{listed:#?}");

    // gpg signs with the card under the mailer's PW1; the signature verifies against the
    // certificate, and not for other data.
    let message = gnupg.file("message.txt");
    std::fs::write(&message, "Signed by a personalized token\n").unwrap();
    let signature = gnupg.file("message.txt.sig");
    let sign = gnupg
        .gpg_with_pin(
            &pins.pw1,
            &[
                "--local-user",
                "zoe.hartmann@example.org",
                "--output",
                signature.to_str().unwrap(),
                "--detach-sign",
                message.to_str().unwrap(),
            ],
            TOOL_TIMEOUT,
        )
        .unwrap();
    assert!(sign.status.success(), "{sign:#?}");
    let check = |data: &Path| gnupg.verify(&[&signature, data], TOOL_TIMEOUT).unwrap();
    let verified = check(&message);
    assert!(verified.status.success(), "{verified:#?}");
    assert!(
        verified
            .stderr
            .contains("Good signature from \"Zoe Hartmann <zoe.hartmann@example.org>\""),
        "{verified:#?}"
    );
    let other = gnupg.file("other.txt");
    std::fs::write(&other, "Something else\n").unwrap();
    assert!(!check(&other).status.success());
    gnupg.stop_daemons();

    // The mailer's PW1, PW3 and resetting code work; the factory defaults no longer do.
    let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
    assert_eq!(send(&card, &verify("82", "123456")), "6982");
    assert_eq!(send(&card, &verify("82", &pins.pw1)), "9000");
    assert_eq!(send(&card, &verify("83", "12345678")), "6982");
    assert_eq!(send(&card, &verify("83", &pins.pw3)), "9000");
    let reset = format!(
        "002C0081{:02X}{}{}",
        pins.resetting_code.len() + 6,
        hex::encode_upper(&pins.resetting_code),
        hex::encode_upper("654321")
    );
    assert_eq!(
        send(&card, &reset),
        "9000",
        "the resetting code sets a new PW1"
    );
    assert_eq!(send(&card, &verify("82", "654321")), "9000");
    drop(card);
    emulator.stop().unwrap();
    drop(gnupg);
}

#[test]
fn a_token_whose_admin_pin_is_not_the_default_is_refused_before_anything_is_written() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let profile = profiles().join("openpgp.toml");
    let bureau = Bureau::prepare(machine.scratch(), "used-token", &profile, &demo_records(2));
    let uid = "0000FF5600003002";
    let token = bureau.blank(&profile, uid);
    let mut emulator = bureau.serve(&machine, &token);
    {
        // Someone changed the admin PIN of the token before it reached the station.
        let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
        assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
        let change = format!(
            "00240083 10 {}{}",
            hex::encode_upper("12345678"),
            hex::encode_upper("87654321")
        )
        .replace(' ', "");
        assert_eq!(send(&card, &change), "9000");
    }
    let (code, output) = bureau.station();
    assert_eq!(code, Some(3), "{output}");
    assert!(
        output.contains("admin PIN (PW3) is not the factory default"),
        "{output}"
    );
    assert!(output.contains("nothing was written"), "{output}");
    let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
    assert_eq!(send(&card, "00CA005B00"), "9000", "no name written");
    assert_eq!(
        send(&card, "00CA00C500"),
        format!("{}9000", "00".repeat(60))
    );
    // The one try the check cost: two left, not blocked.
    assert_eq!(send(&card, "00200083"), "63C2");
    drop(card);
    // A second station run refuses it without trying again (its tries are no longer full).
    let (code, output) = bureau.station();
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("has 2 of 3 tries left"), "{output}");
    let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
    assert_eq!(send(&card, "00200083"), "63C2", "no try spent");
    drop(card);
    emulator.stop().unwrap();
}

/// A profile with an RSA-2048 signature key generated at preparation and an authentication
/// key imported from an escrowed PKCS #8 file named by a record field.
const RSA_PROFILE: &str = r#"
id = "rsa-token"
version = 1
[uid]
source = "field"
field = "token"
[openpgp]
name = { surname = "family_name", given = "given_name" }
user_id = { concat = [{ field = "given_name" }, { constant = " <" }, { field = "email" }, { constant = ">" }] }
created = "2026-01-01T00:00:00Z"
[openpgp.signature]
algorithm = "rsa2048"
source = "generated"
[openpgp.authentication]
algorithm = "ed25519"
source = "imported"
format = "pkcs8"
field = "auth_key"
[openpgp.pw1]
generate = 6
[openpgp.pw3]
generate = 8
[openpgp.resetting_code]
generate = 8
"#;

#[test]
fn opensc_pkcs11_signs_with_the_signature_key_of_a_personalized_rsa_token() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let scratch = machine.scratch().join("rsa-token-inputs");
    std::fs::create_dir_all(&scratch).unwrap();
    let profile = scratch.join("rsa.toml");
    std::fs::write(&profile, RSA_PROFILE).unwrap();
    let escrowed = scratch.join("auth.pem");
    let _ = std::fs::remove_file(&escrowed);
    let made = run_tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            escrowed.to_str().unwrap(),
        ],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap();
    assert!(made.status.success(), "{made:#?}");
    let uid = "0000FF5600004001";
    let records = format!(
        "token,family_name,given_name,email,auth_key\n{uid},Mustermann,Erika,erika@example.org,{}\n",
        escrowed.display()
    );
    let bureau = Bureau::prepare(machine.scratch(), "rsa-token", &profile, &records);
    let token = bureau.blank(&profile, uid);
    let mut emulator = bureau.serve(&machine, &token);
    let (code, output) = bureau.station();
    assert_eq!(code, Some(0), "{output}");
    let pins = bureau.pins(uid);

    // The imported key is the escrowed one: the card's authentication public key is the PEM's.
    let public = bureau.export("public-keys", uid);
    let pem = std::fs::read_to_string(&public).unwrap();
    let derived = run_tool(
        "openssl",
        &["pkey", "-in", escrowed.to_str().unwrap(), "-pubout"],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap();
    assert!(pem.contains(derived.stdout.trim()), "{pem}");
    let signature_pem = scratch.join("signature.pem");
    let first = pem
        .split_inclusive("-----END PUBLIC KEY-----\n")
        .next()
        .unwrap();
    assert!(first.starts_with("signature key, rsa2048"), "{pem}");
    std::fs::write(&signature_pem, first).unwrap();

    let data = scratch.join("data.txt");
    std::fs::write(&data, "signed through PKCS#11\n").unwrap();
    let signature = scratch.join("data.sig");
    let slot = Pkcs11Slot::at_index(1);
    let sign = slot
        .sign_sha256_rsa("01", Some(&pins.pw1), &data, &signature, TOOL_TIMEOUT)
        .unwrap();
    assert!(sign.status.success(), "{sign:#?}");
    check_sha256_signature(
        &signature_pem,
        KeyForm::Pem,
        &signature,
        &data,
        TOOL_TIMEOUT,
    )
    .unwrap();
    // The factory PW1 does not log in.
    let refused = slot
        .sign_sha256_rsa("01", Some("123456"), &data, &signature, TOOL_TIMEOUT)
        .unwrap();
    assert!(!refused.status.success(), "{refused:#?}");
    emulator.stop().unwrap();
}

/// The token path with the PostgreSQL store: prepared into a database, claimed under a lease,
/// replayed, read back against the stored exports, and audited there; the card's fingerprints
/// are those exported from the database.
#[test]
fn the_station_personalizes_a_token_from_a_postgresql_store() {
    let machine = Machine::lock().unwrap();
    let _pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let db = TestDatabase::create("openpgp_station").unwrap();
    let profile = profiles().join("openpgp.toml");
    let bureau = Bureau::prepare_in(
        machine.scratch(),
        "pg-token",
        &profile,
        &demo_records(2),
        Some(db.location()),
    );
    let uid = "0000FF5600003001";
    let token = bureau.blank(&profile, uid);
    let mut emulator = bureau.serve(&machine, &token);
    let (code, output) = bureau.station();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("1 personalized, 0 failed, 0 refused"),
        "{output}"
    );
    let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
    assert_eq!(send(&card, "00A4040006D27600012401"), "9000");
    assert_eq!(
        send(&card, "00CA00C500"),
        format!("{}9000", bureau.fingerprints(uid).concat())
    );
    drop(card);
    let mut sql = db.client().unwrap();
    let row = sql
        .query_one(
            "SELECT c.status, a.result, a.station FROM vsc.cards c JOIN vsc.audit a \
             ON a.uid = c.uid WHERE c.uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        ("personalized".into(), "personalized".into(), "test".into())
    );
    emulator.stop().unwrap();
}

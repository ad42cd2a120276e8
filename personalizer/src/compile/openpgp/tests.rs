//! The OpenPGP backend: transcripts the card OS takes, certificates rPGP reads back and
//! verifies, the same bytes for the same card, the masked read-back, and escrowed keys refused
//! with the record and field named.

use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;
use rand::SeedableRng;
use vsc_core::card::Card;
use vsc_core::crypto::MasterKey;
use vsc_core::transcript::Transcript;

use crate::compile::{Mode, compile};
use crate::content::{CardContent, Resolver};
use crate::keys::MasterKeyDeriver;
use crate::prepare::run_on_blank;
use crate::profile::Profile;
use crate::records::{self, Record, RecordError, Step as RecordStep};

fn resolve(profile: &Profile, records: &Path) -> Vec<Result<CardContent, RecordError>> {
    let mut source = records::open(records.to_str().unwrap()).unwrap();
    let rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut resolver = Resolver::new(profile, source.header(), rng).unwrap();
    let master = MasterKey::from_bytes(&[5; 32]);
    let mut record = Record::default();
    let mut out = Vec::new();
    while let RecordStep::Read = source.next_record(&mut record).unwrap() {
        out.push(resolver.resolve(&record, &MasterKeyDeriver(&master)));
    }
    out
}

fn demo() -> (Profile, Vec<CardContent>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let profile = Profile::load(&dir.join("openpgp.toml")).unwrap();
    let contents = resolve(&profile, &dir.join("openpgp-records.csv"))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    (profile, contents)
}

fn send(card: &mut Card, apdu: &str) -> String {
    hex::encode_upper(card.transmit(&hex::decode(apdu.replace(' ', "")).unwrap()))
}

#[test]
fn the_demo_tokens_personalize_on_the_card_os_and_their_certificates_verify() {
    let (profile, contents) = demo();
    let master = MasterKey::from_bytes(&[5; 32]);
    for (n, content) in contents.iter().enumerate().take(4) {
        let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
        assert_eq!(
            compiled.perso.header.channel,
            vsc_core::transcript::Channel::Plain
        );
        let mut card = run_on_blank(&compiled, &master).unwrap();
        let exports = compiled.exports.unwrap();
        // The certificate parses, its self-signatures verify, and its fingerprints are the
        // card's C7–C9.
        let (certificate, _) =
            SignedPublicKey::from_armor_single(exports.certificate.as_bytes()).unwrap();
        certificate.verify_bindings().unwrap();
        let mut fingerprints = vec![hex::encode_upper(
            certificate.primary_key.fingerprint().as_bytes(),
        )];
        for subkey in &certificate.public_subkeys {
            fingerprints.push(hex::encode_upper(subkey.key.fingerprint().as_bytes()));
        }
        let exported: Vec<String> = exports.keys.iter().map(|k| k.fingerprint.clone()).collect();
        assert_eq!(fingerprints, exported);
        assert_eq!(send(&mut card, "00A4040006D27600012401"), "9000");
        // The exported public keys are what the self-checked card answers (47 81).
        for (key, crt) in exports.keys.iter().zip(["B600", "B800", "A400"]) {
            let answer = send(&mut card, &format!("00478100000002{crt}0000"));
            assert_eq!(
                answer,
                format!("{}9000", key.card_public_key),
                "{}",
                key.slot
            );
        }
        let c5 = send(&mut card, "00CA00C500");
        assert_eq!(c5, format!("{}9000", exported.concat()));
        let name = send(&mut card, "00CA005B00");
        let expected = [
            "Hartmann<<Zoe",
            "Kowalski<<Lukasz",
            "Andersen<<Soren",
            "Garcia<Lopez<<Jose<Maria",
        ][n];
        assert_eq!(name, format!("{}9000", hex::encode_upper(expected)));
        // PW1 and PW3 are the mailer's, not the factory ones; a resetting code is set.
        let c4 = send(&mut card, "00CA00C400");
        assert!(
            c4.ends_with("0303039000"),
            "{c4}: every counter full, the code set"
        );
        assert_eq!(send(&mut card, "0020008206 313233343536"), "6982");
        let pw3 = content.openpgp.as_ref().unwrap().pw3.expose().to_vec();
        let verify = format!("00200083{:02X}{}", pw3.len(), hex::encode_upper(&pw3));
        assert_eq!(send(&mut card, &verify), "9000");
        let pw1 = content.openpgp.as_ref().unwrap().pw1.expose().to_vec();
        let verify = format!("00200082{:02X}{}", pw1.len(), hex::encode_upper(&pw1));
        assert_eq!(send(&mut card, &verify), "9000");
    }
}

/// A profile importing every key from escrowed files, with fixed creation times: nothing is
/// random but the PINs, which come from a field.
fn imported_profile(dir: &Path) -> Profile {
    let text = r#"
id = "imported"
version = 1
[uid]
source = "field"
field = "token"
[openpgp]
name = { surname = "name" }
user_id = { field = "name" }
created = "2026-01-01"
[openpgp.signature]
algorithm = "nistp256"
source = "imported"
format = "pkcs8"
field = "sig"
[openpgp.decryption]
algorithm = "cv25519"
source = "imported"
format = "pkcs8"
field = "dec"
passphrase_field = "secret"
[openpgp.authentication]
algorithm = "ed25519"
source = "imported"
format = "pkcs8"
field = "aut"
[openpgp.pw1]
field = "pw1"
[openpgp.pw3]
field = "pw3"
"#;
    let _ = dir;
    Profile::from_toml(text).unwrap()
}

fn pem(key: &openssl::pkey::PKey<openssl::pkey::Private>, passphrase: Option<&[u8]>) -> Vec<u8> {
    match passphrase {
        Some(passphrase) => key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), passphrase)
            .unwrap(),
        None => key.private_key_to_pem_pkcs8().unwrap(),
    }
}

struct Escrow {
    dir: tempfile::TempDir,
}

impl Escrow {
    fn new() -> Escrow {
        let dir = tempfile::tempdir().unwrap();
        let p256 = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let write =
            |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        write(
            "sig.pem",
            &pem(&openssl::pkey::PKey::from_ec_key(p256).unwrap(), None),
        );
        write(
            "dec.pem",
            &pem(
                &openssl::pkey::PKey::generate_x25519().unwrap(),
                Some(b"open sesame"),
            ),
        );
        write(
            "aut.pem",
            &pem(&openssl::pkey::PKey::generate_ed25519().unwrap(), None),
        );
        write(
            "rsa.pem",
            &pem(
                &openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
                None,
            ),
        );
        Escrow { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A records file with one line per (sig, dec, aut, passphrase) given.
    fn records(&self, lines: &[[&str; 4]]) -> std::path::PathBuf {
        let mut text = "token,name,sig,dec,aut,secret,pw1,pw3\n".to_string();
        for (n, [sig, dec, aut, secret]) in lines.iter().enumerate() {
            let file = |name: &str| {
                if name.is_empty() {
                    String::new()
                } else {
                    self.path(name)
                }
            };
            text.push_str(&format!(
                "0000FF56000050{n:02},Holder {n},{},{},{},{secret},123123,12341234\n",
                file(sig),
                file(dec),
                file(aut)
            ));
        }
        let path = self.dir.path().join("records.csv");
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[test]
fn the_same_card_gives_the_same_bytes() {
    let escrow = Escrow::new();
    let profile = imported_profile(escrow.dir.path());
    let records = escrow.records(&[["sig.pem", "dec.pem", "aut.pem", "open sesame"]]);
    let master = MasterKey::from_bytes(&[5; 32]);
    let first = resolve(&profile, &records).pop().unwrap().unwrap();
    let second = resolve(&profile, &records).pop().unwrap().unwrap();
    let a = compile(&profile, &first, &master, Mode::Channel).unwrap();
    let b = compile(&profile, &second, &master, Mode::Channel).unwrap();
    assert_eq!(a.perso.to_string(), b.perso.to_string());
    assert_eq!(a.preinit.to_string(), b.preinit.to_string());
    let (a, b) = (a.exports.unwrap(), b.exports.unwrap());
    assert_eq!(a.keys, b.keys);
    // ECDSA signatures are randomized: the certificates differ in their signatures only, and
    // both verify.
    for certificate in [&a.certificate, &b.certificate] {
        let (certificate, _) = SignedPublicKey::from_armor_single(certificate.as_bytes()).unwrap();
        certificate.verify_bindings().unwrap();
    }
    assert_eq!(a.keys[0].created, 1_767_225_600, "2026-01-01T00:00:00Z");
}

#[test]
fn the_read_back_checks_fingerprints_and_masks_what_products_differ_in() {
    let escrow = Escrow::new();
    let profile = imported_profile(escrow.dir.path());
    let records = escrow.records(&[["sig.pem", "dec.pem", "aut.pem", "open sesame"]]);
    let master = MasterKey::from_bytes(&[5; 32]);
    let content = resolve(&profile, &records).pop().unwrap().unwrap();
    let compiled = compile(&profile, &content, &master, Mode::Channel).unwrap();
    let Some(vsc_core::transcript::Step::Command {
        command, expect, ..
    }) = compiled.perso.steps.last()
    else {
        panic!()
    };
    assert_eq!(hex::encode_upper(command.as_bytes()), "00CA006E000000");
    let mut card = run_on_blank(&compiled, &master).unwrap();
    assert_eq!(send(&mut card, "00A4040006D27600012401"), "9000");
    let answer = card.transmit(command.as_bytes());
    assert!(expect.matches(&answer));
    let text = expect.to_string();
    // The AID's version and RFU bytes, the historical bytes and the extended capabilities are
    // masked; the manufacturer and serial are not.
    assert!(
        text.contains(
            "4F10D2760001240 1????FF560000500 0????"
                .replace(' ', "")
                .as_str()
        ),
        "{text}"
    );
    let fingerprint = &answer
        .windows(2)
        .position(|w| w == [0xC5, 0x3C])
        .map(|at| at + 2)
        .unwrap();
    let mut changed = answer.clone();
    changed[*fingerprint] ^= 1;
    assert!(!expect.matches(&changed), "a fingerprint differs");
    let historical = answer
        .windows(3)
        .position(|w| w == [0x5F, 0x52, 0x08])
        .unwrap()
        + 3;
    let mut other_product = answer.clone();
    other_product[historical + 2] ^= 0xFF;
    assert!(expect.matches(&other_product), "other historical bytes");
}

#[test]
fn bad_escrowed_keys_name_the_record_and_the_field_and_show_nothing_of_the_key() {
    let escrow = Escrow::new();
    let profile = imported_profile(escrow.dir.path());
    std::fs::write(
        escrow.dir.path().join("truncated.pem"),
        &std::fs::read(escrow.dir.path().join("aut.pem")).unwrap()[..60],
    )
    .unwrap();
    let records = escrow.records(&[
        ["rsa.pem", "dec.pem", "aut.pem", "open sesame"],
        ["sig.pem", "dec.pem", "aut.pem", ""],
        ["sig.pem", "dec.pem", "aut.pem", "wrong"],
        ["sig.pem", "dec.pem", "truncated.pem", "open sesame"],
        ["sig.pem", "dec.pem", "missing.pem", "open sesame"],
        ["sig.pem", "dec.pem", "", "open sesame"],
        ["sig.pem", "dec.pem", "aut.pem", "open sesame"],
    ]);
    let results = resolve(&profile, &records);
    let messages: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(_) => "ok".to_string(),
            Err(error) => error.to_string(),
        })
        .collect();
    let expected = [
        "line 2, field `sig` (for [openpgp.signature]): the key file holds a rsa2048 key, the slot takes nistp256",
        "line 3, field `dec` (for [openpgp.decryption]): the key file is encrypted and the profile names no passphrase_field",
        "line 4, field `dec` (for [openpgp.decryption]): the passphrase does not open the key file",
        "line 5, field `aut` (for [openpgp.authentication]): the key file is not a PKCS #8 key (truncated or another format)",
        "line 6, field `aut` (for [openpgp.authentication]): names a file that cannot be read: entity not found",
        "line 7, field `aut` (for [openpgp.authentication]): is empty",
        "ok",
    ];
    for (message, expected) in messages.iter().zip(expected) {
        assert!(
            message.starts_with(expected) || message == expected,
            "{message}\n{expected}"
        );
    }
    let key = std::fs::read_to_string(escrow.dir.path().join("aut.pem")).unwrap();
    let body: String = key.lines().nth(1).unwrap().to_string();
    for message in &messages {
        assert!(
            !message.contains(&body) && !message.contains("open sesame"),
            "{message}"
        );
    }
}

#[test]
fn every_algorithm_of_every_slot_personalizes() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.csv");
    std::fs::write(&records, "token,name\n0000FF5600006001,Holder\n").unwrap();
    let master = MasterKey::from_bytes(&[5; 32]);
    for (sig, dec, aut) in [
        ("rsa2048", "rsa2048", "rsa2048"),
        ("nistp256", "nistp256", "nistp256"),
        ("nistp384", "nistp384", "nistp384"),
        ("ed25519", "cv25519", "ed25519"),
        ("rsa3072", "cv25519", "nistp256"),
    ] {
        let text = format!(
            r#"
id = "every"
version = 1
[uid]
source = "field"
field = "token"
[openpgp]
user_id = {{ field = "name" }}
signature = {{ algorithm = "{sig}", source = "generated" }}
decryption = {{ algorithm = "{dec}", source = "generated" }}
authentication = {{ algorithm = "{aut}", source = "generated" }}
pw1 = {{ generate = 6 }}
pw3 = {{ generate = 8 }}
"#
        );
        let profile = Profile::from_toml(&text).unwrap();
        let content = resolve(&profile, &records).pop().unwrap().unwrap();
        let compiled = compile(&profile, &content, &master, Mode::Channel).unwrap();
        run_on_blank(&compiled, &master).unwrap();
        let exports = compiled.exports.unwrap();
        let (certificate, _) =
            SignedPublicKey::from_armor_single(exports.certificate.as_bytes()).unwrap();
        certificate.verify_bindings().unwrap();
        assert_eq!(exports.keys.len(), 3, "{sig} {dec} {aut}");
        let reparsed = Transcript::parse(&compiled.perso.to_string());
        assert!(reparsed.is_ok() || compiled.perso.to_string().starts_with("VSC-TRANSCRIPT"));
    }
}

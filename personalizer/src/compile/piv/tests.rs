//! The PIV backend: the demo cards personalize on the card OS with their live steps, their
//! certificates verify against the CA and certify the imported keys, the factory credentials no
//! longer work and the holder's do, another card refuses the transcript before anything is
//! written, and bad certificate or key files are refused naming the record and the field.

use std::path::Path;

use openssl::x509::X509;
use rand::SeedableRng;
use vsc_core::card::Card;
use vsc_core::crypto::MasterKey;
use vsc_core::transcript::Step;

use crate::compile::{Mode, compile};
use crate::content::{CardContent, Resolver};
use crate::keys::MasterKeyDeriver;
use crate::prepare::run_on_blank;
use crate::profile::Profile;
use crate::records::{self, Record, RecordError, Step as RecordStep};
use crate::replay::{self, CardOsLink, LiveKeys, ReplayError};

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

fn profiles() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

fn demo() -> (Profile, Vec<CardContent>) {
    let profile = Profile::load(&profiles().join("piv.toml")).unwrap();
    let contents = resolve(&profile, &profiles().join("piv-records.csv"))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    (profile, contents)
}

fn send(card: &mut Card, apdu: &str) -> String {
    hex::encode_upper(card.transmit(&hex::decode(apdu.replace(' ', "")).unwrap()))
}

fn padded(value: &[u8]) -> String {
    let mut out = value.to_vec();
    out.resize(8, 0xFF);
    hex::encode_upper(out)
}

#[test]
fn the_demo_cards_personalize_on_the_card_os_with_their_live_steps() {
    let (profile, contents) = demo();
    let master = MasterKey::from_bytes(&[5; 32]);
    let ca = X509::from_pem(&std::fs::read(profiles().join("piv-demo-ca.pem")).unwrap()).unwrap();
    let ca_key = ca.public_key().unwrap();
    for content in contents.iter().take(2) {
        let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
        let perso = &compiled.perso;
        assert_eq!(perso.header.channel, vsc_core::transcript::Channel::Plain);
        let live: Vec<usize> = perso
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::Live { .. }))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(live, vec![4, perso.steps.len()], "the two live steps");
        let (text, _) = perso.encode();
        assert!(
            text.contains("live piv-management-key 03 factory"),
            "{text}"
        );
        assert!(text.contains("live piv-management-key 0C card "), "{text}");

        let mut card = run_on_blank(&compiled, &master).unwrap();
        let exports = compiled.piv_exports.as_ref().unwrap();
        assert_eq!(exports.piv.len(), 4);
        for slot in &exports.piv {
            let pem = slot.certificate_pem.as_ref().unwrap();
            let certificate = X509::from_pem(pem.as_bytes()).unwrap();
            assert!(certificate.verify(&ca_key).unwrap(), "{}", slot.slot);
            let public =
                openssl::pkey::PKey::public_key_from_pem(slot.public_pem.as_bytes()).unwrap();
            assert!(certificate.public_key().unwrap().public_eq(&public));
            let subject = format!("{:?}", certificate.subject_name());
            assert!(subject.contains("VSC demo"), "{subject}");
            // The card holds the certificate object the exports name.
            let tag = match slot.slot.as_str() {
                "9A" => 0x5FC105,
                "9C" => 0x5FC10A,
                "9D" => 0x5FC10B,
                _ => 0x5FC101,
            };
            assert_eq!(send(&mut card, "00A4040005A000000308"), "9000");
            let get = vsc_core::commands::piv::get_data(tag).to_vec().unwrap();
            let answer = hex::encode_upper(card.transmit(&get));
            assert_eq!(
                answer,
                format!("{}9000", slot.certificate_object.as_ref().unwrap())
            );
        }
        // The holder's PIN works, the factory one does not; the PUK likewise.
        assert_eq!(send(&mut card, "00A4040005A000000308"), "9000");
        assert_eq!(
            send(&mut card, &format!("0020008008{}", padded(b"123456"))),
            "63C2"
        );
        assert_eq!(
            send(
                &mut card,
                &format!("0020008008{}", padded(content.pin.expose()))
            ),
            "9000"
        );
        // GET METADATA: the PIN, PUK and management key are no longer the factory ones.
        for reference in ["80", "81", "9B"] {
            let answer = send(&mut card, &format!("00F700{reference}00"));
            assert!(answer.contains("050100"), "{reference}: {answer}");
        }
    }
}

#[test]
fn the_factory_key_no_longer_authenticates_and_the_card_key_does() {
    let (profile, contents) = demo();
    let master = MasterKey::from_bytes(&[5; 32]);
    let compiled = compile(&profile, &contents[0], &master, Mode::Channel).unwrap();
    let card = run_on_blank(&compiled, &master).unwrap();
    let mut link = CardOsLink::new(card);
    let uid = contents[0].uid.0;
    let mut response = Vec::new();
    let select = hex::decode("00A4040005A000000308").unwrap();
    replay::CardLink::transmit(&mut link, &select, &mut response).unwrap();
    let factory = vsc_core::transcript::LiveStep::factory_management_key();
    let key = factory.key(None, &uid).unwrap();
    assert!(replay::run_live_step(&mut link, &factory, &key, &mut response).is_err());
    let own = vsc_core::transcript::LiveStep::card_management_key(
        &master,
        vsc_core::security::BlockAlgorithm::Aes256,
        &uid,
    );
    let key = own.key(Some(&master), &uid).unwrap();
    replay::run_live_step(&mut link, &own, &key, &mut response).unwrap();
}

#[test]
fn another_cards_transcript_stops_before_anything_is_written() {
    let (profile, contents) = demo();
    let master = MasterKey::from_bytes(&[5; 32]);
    let compiled = compile(&profile, &contents[0], &master, Mode::Channel).unwrap();
    // The second card, factory-fresh, given the first card's transcript directly (no header
    // check, as for a card without EF.UID): GET SERIAL, step 2, stops it.
    let mut link = CardOsLink::new(vsc_core::sample::piv_token(contents[1].uid.0));
    let error = replay::replay_live(
        &mut link,
        &compiled.perso,
        replay::Unchecked::default(),
        LiveKeys::issuer(&master),
        |_| {},
    )
    .unwrap_err();
    assert_eq!(error.step(), Some(2), "{error}");
    // Nothing was written: its PIN, PUK and management key are the factory ones, and it holds
    // no key.
    let mut card = link.into_card();
    assert_eq!(send(&mut card, "00A4040005A000000308"), "9000");
    for reference in ["80", "81", "9B"] {
        let answer = send(&mut card, &format!("00F700{reference}00"));
        assert!(answer.contains("050101"), "{reference}: {answer}");
    }
    for slot in ["9A", "9C", "9D", "9E"] {
        assert_eq!(send(&mut card, &format!("00F700{slot}00")), "6A88");
    }
    // And the header check, which replay and station make first, names the UID.
    let mut link = CardOsLink::new(vsc_core::sample::piv_token(contents[1].uid.0));
    let checked = replay::check_card(&mut link, &compiled.perso.header);
    assert!(
        matches!(checked, Err(ReplayError::UidMismatch { .. })),
        "{checked:?}"
    );
}

#[test]
fn same_card_same_bytes_apart_from_generated_keys() {
    let (profile, contents) = demo();
    let master = MasterKey::from_bytes(&[5; 32]);
    let a = compile(&profile, &contents[0], &master, Mode::Channel).unwrap();
    let b = compile(&profile, &contents[0], &master, Mode::Channel).unwrap();
    assert_eq!(a.preinit.encode().0, b.preinit.encode().0);
    // Steps that do not carry a key or certificate are the same bytes.
    let fixed = |t: &vsc_core::transcript::Transcript| -> Vec<Vec<u8>> {
        t.steps
            .iter()
            .filter_map(|s| match s {
                Step::Command { command, .. } if !matches!(command.as_bytes()[1], 0xFE | 0xDB) => {
                    Some(command.as_bytes().to_vec())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(fixed(&a.perso), fixed(&b.perso));
}

fn imported_profile(dir: &Path) -> Profile {
    let ca = profiles().join("piv-demo-ca.pem");
    let ca_key = profiles().join("piv-demo-ca.TEST-KEY.pem");
    let text = format!(
        r#"
id = "piv-imported"
version = 1
[uid]
source = "field"
field = "card"
[piv.ca]
certificate = "{}"
key = "{}"
[[piv.subject]]
attribute = "CN"
value = {{ field = "name" }}
[piv.authentication]
algorithm = "nistp256"
source = "imported"
field = "key"
certificate = "record"
certificate_field = "cert"
[piv.signature]
algorithm = "nistp256"
source = "generated"
certificate = "issued"
[piv.pin]
field = "pin"
[piv.puk]
generate = 8
"#,
        ca.display(),
        ca_key.display()
    );
    Profile::from_toml_in(&text, dir).unwrap()
}

#[test]
fn record_certificates_must_certify_the_record_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let pkey = openssl::pkey::PKey::from_ec_key(key).unwrap();
    let other = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let self_signed = |key: &openssl::pkey::PKey<openssl::pkey::Private>| {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "test").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
        b.build()
    };
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let good = dir.path().join("good.der");
    std::fs::write(&good, self_signed(&pkey).to_der().unwrap()).unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, self_signed(&other).to_pem().unwrap()).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let records = dir.path().join("records.csv");
    std::fs::write(
        &records,
        format!(
            "card,name,key,cert,pin\n\
             5653434400006001,A,{k},{good},123987\n\
             5653434400006002,B,{k},{wrong},123987\n\
             5653434400006003,C,{k},{garbage},123987\n\
             5653434400006004,D,,{good},123987\n",
            k = key_file.display(),
            good = good.display(),
            wrong = wrong.display(),
            garbage = garbage.display(),
        ),
    )
    .unwrap();
    let profile = imported_profile(dir.path());
    let results = resolve(&profile, &records);
    let master = MasterKey::from_bytes(&[5; 32]);
    let first = results[0].as_ref().unwrap();
    let compiled = compile(&profile, first, &master, Mode::Channel).unwrap();
    run_on_blank(&compiled, &master).unwrap();
    let exports = compiled.piv_exports.unwrap();
    assert_eq!(
        X509::from_pem(exports.piv[0].certificate_pem.as_ref().unwrap().as_bytes())
            .unwrap()
            .to_der()
            .unwrap(),
        std::fs::read(&good).unwrap()
    );
    for (n, expected) in [
        (1, "does not certify the slot's key"),
        (2, "not an X.509 certificate"),
        (3, "is empty"),
    ] {
        let error = results[n].as_ref().unwrap_err().to_string();
        assert!(error.contains(expected), "{n}: {error}");
        assert!(error.contains(&format!("line {}", n + 2)), "{n}: {error}");
        let field = if n == 3 { "`key`" } else { "`cert`" };
        assert!(error.contains(field), "{n}: {error}");
    }
}

#[test]
fn an_rsa_key_of_another_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
    let key_file = dir.path().join("rsa1024.pem");
    std::fs::write(
        &key_file,
        openssl::pkey::PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let text = r#"
id = "x"
version = 1
[uid]
source = "field"
field = "card"
[piv.key_management]
algorithm = "rsa2048"
source = "imported"
field = "key"
[piv.pin]
generate = 6
[piv.puk]
generate = 8
"#;
    let profile = Profile::from_toml(text).unwrap();
    let records = dir.path().join("records.csv");
    std::fs::write(
        &records,
        format!("card,key\n5653434400007001,{}\n", key_file.display()),
    )
    .unwrap();
    let error = resolve(&profile, &records)
        .remove(0)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "line 2, field `key` (for [piv.key_management]): the key file holds a RSA-1024 key, the slot takes rsa2048"
        ),
        "{error}"
    );
}

#[test]
fn a_record_certificate_needs_an_imported_key() {
    let text = r#"
id = "x"
version = 1
[uid]
source = "random"
[piv.authentication]
algorithm = "nistp256"
source = "generated"
certificate = "record"
certificate_field = "cert"
[piv.pin]
generate = 6
[piv.puk]
generate = 8
"#;
    let error = Profile::from_toml(text).unwrap_err().to_string();
    assert!(error.contains("must certify the record's key"), "{error}");
    let no_ca = text.replace(
        "certificate = \"record\"\ncertificate_field = \"cert\"",
        "certificate = \"issued\"",
    );
    let error = Profile::from_toml(&no_ca).unwrap_err().to_string();
    assert!(error.contains("[piv.ca]"), "{error}");
    let puk = text.replace("generate = 8", "generate = 7");
    assert!(Profile::from_toml(&puk).is_err());
}

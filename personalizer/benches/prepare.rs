//! What one card costs data preparation, per step: compiling its two transcripts, running them
//! on a blank card through the card OS with every response checked, and sealing the image and
//! the stored transcripts. `prepare` targets 10,000 cards/s on 2 cores: 200 µs a card a core,
//! store included (scripts/bench measures the whole run).

// A benchmark that cannot set up has nothing to measure: unwrapping is its way to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vsc_core::crypto::MasterKey;
use vsc_personalizer::compile::openpgp::key::PrivateKey;
use vsc_personalizer::compile::openpgp::packets::{self, CertificateInput, KeyPacket, Role};
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::content::{Resolver, system_rng};
use vsc_personalizer::keys::MasterKeyDeriver;
use vsc_personalizer::prepare;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::profile::openpgp::OpenPgpAlgorithm;
use vsc_personalizer::records::{self, Record, Step};
use vsc_personalizer::store::Dictionary;

fn prepare_one(c: &mut Criterion) {
    let profile =
        Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml")).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo-records.csv");
    let mut source = records::open(demo.to_str().unwrap()).unwrap();
    let master = MasterKey::from_bytes(&[7; 32]);
    let mut resolver = Resolver::new(&profile, source.header(), system_rng().unwrap()).unwrap();
    let mut record = Record::new();
    assert!(matches!(
        source.next_record(&mut record).unwrap(),
        Step::Read
    ));
    let content = resolver
        .resolve(&record, &MasterKeyDeriver(&master))
        .unwrap();
    let compiled = compile::compile(&profile, &content, &master, Mode::Channel).unwrap();

    let mut group = c.benchmark_group("prepare");
    group.throughput(Throughput::Elements(1));
    group.bench_function("compile both transcripts", |b| {
        b.iter(|| compile::compile(&profile, &content, &master, Mode::Channel).unwrap())
    });
    group.bench_function("run both on a blank card", |b| {
        b.iter(|| prepare::run_on_blank(&compiled, &master).unwrap())
    });
    let signer = vsc_core::transcript::PreparationKey::derive(&master);
    // As in a run: the personalization transcript is compressed against another card's.
    assert!(matches!(
        source.next_record(&mut record).unwrap(),
        Step::Read
    ));
    let other = resolver
        .resolve(&record, &MasterKeyDeriver(&master))
        .unwrap();
    let (perso, _) = compile::compile(&profile, &other, &master, Mode::Channel)
        .unwrap()
        .perso
        .encode_signed(&signer);
    let throwaway = MasterKey::from_bytes(&[9; 32]);
    let (preinit, _) = compile::compile_preinit(&profile, other.uid, &throwaway, Mode::Channel)
        .unwrap()
        .encode_signed(&vsc_core::transcript::PreparationKey::derive(&throwaway));
    let dictionaries = prepare::Dictionaries {
        preinit: Some(Dictionary::new(1, preinit.into_bytes())),
        perso: Some(Dictionary::new(2, perso.into_bytes())),
    };
    group.bench_function(
        "a whole card (compile, run, seal, sign, print, compress)",
        |b| {
            b.iter(|| {
                prepare::prepare_card(
                    &profile,
                    &content,
                    &master,
                    &signer,
                    Mode::Channel,
                    &dictionaries,
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

/// The OpenPGP demo profile without its keys: the same token, the same data objects and PINs.
fn without_keys(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("[openpgp.signature]")
            || line.starts_with("[openpgp.decryption]")
            || line.starts_with("[openpgp.authentication]")
        {
            skipping = true;
        } else if line.starts_with('[') {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One OpenPGP token, a whole card (compile with its keys generated, run on a blank card,
/// seal, sign), with and without keys; and RSA-2048 key generation alone, against which
/// scripts/bench sets `openssl genpkey`.
fn prepare_token(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let text = std::fs::read_to_string(dir.join("openpgp.toml")).unwrap();
    let master = MasterKey::from_bytes(&[7; 32]);
    let signer = vsc_core::transcript::PreparationKey::derive(&master);
    let records = dir.join("openpgp-records.csv");
    let mut group = c.benchmark_group("prepare token");
    group.throughput(Throughput::Elements(1));
    for (name, profile) in [
        (
            "without keys",
            Profile::from_toml(&without_keys(&text)).unwrap(),
        ),
        (
            "with Ed25519 and X25519 keys generated",
            Profile::from_toml(&text).unwrap(),
        ),
    ] {
        let mut source = records::open(records.to_str().unwrap()).unwrap();
        let mut resolver = Resolver::new(&profile, source.header(), system_rng().unwrap()).unwrap();
        let mut record = Record::new();
        assert!(matches!(
            source.next_record(&mut record).unwrap(),
            Step::Read
        ));
        let content = resolver
            .resolve(&record, &MasterKeyDeriver(&master))
            .unwrap();
        // As in a run: the pre-initialization transcript is compressed against a throwaway
        // card's; a token's personalization (plain, with PINs and keys) has no dictionary.
        let throwaway = MasterKey::from_bytes(&[9; 32]);
        let (preinit, _) =
            compile::compile_preinit(&profile, content.uid, &throwaway, Mode::Channel)
                .unwrap()
                .encode_signed(&vsc_core::transcript::PreparationKey::derive(&throwaway));
        let dictionaries = prepare::Dictionaries {
            preinit: Some(Dictionary::new(1, preinit.into_bytes())),
            perso: None,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                prepare::prepare_card(
                    &profile,
                    &content,
                    &master,
                    &signer,
                    Mode::Channel,
                    &dictionaries,
                )
                .unwrap()
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("token keys");
    group.throughput(Throughput::Elements(1));
    // The floor under "with keys": what the keys cost however the rest is done, the three key
    // pairs generated (each a base point multiplication) and the certificate's three Ed25519
    // signatures (each another), nothing else.
    group.bench_function(
        "Ed25519/X25519 floor (3 key pairs, 3 certificate signatures)",
        |b| {
            b.iter(|| {
                let keys = [
                    (OpenPgpAlgorithm::Ed25519, Role::Primary),
                    (OpenPgpAlgorithm::Cv25519, Role::Encryption),
                    (OpenPgpAlgorithm::Ed25519, Role::Authentication),
                ]
                .map(|(algorithm, role)| {
                    let key = PrivateKey::generate(algorithm).unwrap();
                    let packet = KeyPacket::new(algorithm, role, &key.public().unwrap(), 1);
                    (key, packet)
                });
                packets::certificate(&CertificateInput {
                    primary: &keys[0].1,
                    signer: &keys[0].0,
                    subkeys: vec![
                        (&keys[1].1, Role::Encryption),
                        (&keys[2].1, Role::Authentication),
                    ],
                    user_id: b"Zoe Hartmann <zoe@example.org>",
                })
                .unwrap()
            })
        },
    );
    group.sample_size(20);
    group.bench_function("RSA-2048 key generation", |b| {
        b.iter(|| PrivateKey::generate(OpenPgpAlgorithm::Rsa2048).unwrap())
    });
    group.finish();
}

criterion_group!(benches, prepare_one, prepare_token);
criterion_main!(benches);

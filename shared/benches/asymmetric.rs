//! Asymmetric keys: the card OS's PSO: COMPUTE DIGITAL SIGNATURE (Ed25519, P-256, RSA-2048) and
//! on-card RSA-2048 key generation in-process, beside the raw backends it could use, measured in
//! one run: OpenSSL through the `openssl` crate (the libcrypto `openssl speed` measures) and the
//! RustCrypto crates (`rsa`, `p256`, `p384`, `ed25519-dalek`, `x25519-dalek`). scripts/bench
//! puts `openssl speed` beside these figures; docs/platform.md has the choice they led to.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failure should panic

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vsc_core::card::Card;

fn apdu(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(' ', "")).unwrap()
}

/// A token whose signature key has `attributes` (hex of C1), generated, with PW1 valid for
/// several signatures and verified.
fn signing_token(attributes: &str) -> Card {
    let mut card = vsc_core::sample::openpgp_token([1, 2, 3, 4, 5, 6, 7, 8]);
    for command in [
        "00A4040006D27600012401".to_string(),
        "00200083083132333435363738".to_string(),
        format!("00DA00C1{:02X}{attributes}", attributes.len() / 2),
        "00DA00C40101".to_string(),
        "00478000000002B6000000".to_string(),
        "0020008106313233343536".to_string(),
    ] {
        let response = card.transmit(&apdu(&command));
        assert_eq!(&response[response.len() - 2..], [0x90, 0x00], "{command}");
    }
    card
}

fn card_signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("asymmetric card OS");
    group.throughput(Throughput::Elements(1));
    let sha256_digest_info =
        "3031300D060960864801650304020105000420".to_string() + &"AB".repeat(32);
    for (name, attributes, input) in [
        (
            "Ed25519 signature (PSO)",
            "162B06010401DA470F01",
            "AB".repeat(32),
        ),
        (
            "P-256 ECDSA signature (PSO)",
            "132A8648CE3D030107",
            "AB".repeat(32),
        ),
        (
            "RSA-2048 signature (PSO)",
            "010800002000",
            sha256_digest_info,
        ),
    ] {
        let mut card = signing_token(attributes);
        let command = apdu(&format!("002A9E9A00{:04X}{input}0000", input.len() / 2));
        let mut response = Vec::with_capacity(600);
        card.transmit_into(&command, &mut response);
        assert_eq!(&response[response.len() - 2..], [0x90, 0x00], "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                response.clear();
                card.transmit_into(&command, &mut response);
                std::hint::black_box(&response);
            })
        });
    }
    group.finish();
}

fn card_key_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("asymmetric key generation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let mut card = signing_token("010800002000");
    let command = apdu("00478000000002B6000000");
    group.bench_function("card OS RSA-2048 (GENERATE ASYMMETRIC KEY PAIR)", |b| {
        b.iter(|| std::hint::black_box(card.transmit(&command)))
    });
    group.bench_function("openssl crate RSA-2048", |b| {
        b.iter(|| std::hint::black_box(openssl::rsa::Rsa::generate(2048).unwrap()))
    });
    group.bench_function("RustCrypto rsa RSA-2048", |b| {
        b.iter(|| {
            std::hint::black_box(rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
        })
    });
    group.finish();
}

fn backends(c: &mut Criterion) {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let mut group = c.benchmark_group("asymmetric backends");
    group.throughput(Throughput::Elements(1));
    let hash = [0xABu8; 32];

    let rsa_key = openssl::rsa::Rsa::generate(2048).unwrap();
    let mut out = vec![0; 256];
    let digest_info = [
        &[
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ][..],
        &hash,
    ]
    .concat();
    group.bench_function("openssl crate RSA-2048 sign", |b| {
        b.iter(|| {
            rsa_key
                .private_encrypt(&digest_info, &mut out, openssl::rsa::Padding::PKCS1)
                .unwrap()
        })
    });
    let rc_rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    group.bench_function("RustCrypto rsa RSA-2048 sign", |b| {
        b.iter(|| {
            rc_rsa
                .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
                .unwrap()
        })
    });

    for (name, nid, rc) in [
        ("P-256", openssl::nid::Nid::X9_62_PRIME256V1, 256),
        ("P-384", openssl::nid::Nid::SECP384R1, 384),
    ] {
        let group_ = openssl::ec::EcGroup::from_curve_name(nid).unwrap();
        let key = openssl::ec::EcKey::generate(&group_).unwrap();
        group.bench_function(format!("openssl crate {name} ECDSA sign"), |b| {
            b.iter(|| openssl::ecdsa::EcdsaSig::sign(&hash, &key).unwrap())
        });
        if rc == 256 {
            use p256::ecdsa::signature::hazmat::PrehashSigner;
            let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            group.bench_function("RustCrypto p256 ECDSA sign", |b| {
                b.iter(|| -> p256::ecdsa::Signature { key.sign_prehash(&hash).unwrap() })
            });
        } else {
            use p384::ecdsa::signature::hazmat::PrehashSigner;
            let key = p384::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            group.bench_function("RustCrypto p384 ECDSA sign", |b| {
                b.iter(|| -> p384::ecdsa::Signature { key.sign_prehash(&hash).unwrap() })
            });
        }
    }

    let ed = PKey::generate_ed25519().unwrap();
    group.bench_function("openssl crate Ed25519 sign", |b| {
        b.iter(|| {
            let mut signer = Signer::new_without_digest(&ed).unwrap();
            signer.sign_oneshot_to_vec(&hash).unwrap()
        })
    });
    let dalek = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    group.bench_function("ed25519-dalek sign", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&dalek, &hash))
    });
    let x = PKey::generate_x25519().unwrap();
    let peer = PKey::generate_x25519().unwrap();
    let peer_public =
        PKey::public_key_from_raw_bytes(&peer.raw_public_key().unwrap(), openssl::pkey::Id::X25519)
            .unwrap();
    group.bench_function("openssl crate X25519", |b| {
        b.iter(|| {
            let mut deriver = openssl::derive::Deriver::new(&x).unwrap();
            deriver.set_peer(&peer_public).unwrap();
            deriver.derive_to_vec().unwrap()
        })
    });
    let secret = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(
        rand::rngs::OsRng,
    ));
    group.bench_function("x25519-dalek X25519", |b| {
        b.iter(|| secret.diffie_hellman(&public))
    });
    let _ = MessageDigest::sha256();
    group.finish();
}

criterion_group!(benches, card_signatures, backends, card_key_generation);
criterion_main!(benches);

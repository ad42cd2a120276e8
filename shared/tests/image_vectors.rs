//! Committed image vectors: images written by earlier versions keep loading, with their
//! contents intact. Regenerate (only when adding a vector for a new format version) with
//! `VSC_WRITE_VECTORS=1 cargo test -p vsc-core --test image_vectors -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use rand::SeedableRng;
use vsc_core::card::{Card, LifeCycle};
use vsc_core::crypto::MasterKey;
use vsc_core::image;

/// The test master key `00 01 .. 1F`: never use it for anything real.
fn master() -> MasterKey {
    MasterKey::from_bytes(&std::array::from_fn(|i| i as u8))
}

fn transmit(card: &mut Card, hex: &str) -> String {
    hex::encode_upper(card.transmit(&hex::decode(hex.replace(' ', "")).unwrap()))
}

#[test]
fn format_1_sample_card_loads_with_its_contents() {
    let bytes = include_bytes!("vectors/sample-card-v1.vsc");
    let state = image::decode(bytes, &master()).unwrap();
    assert_eq!(
        state.uid(),
        Some(vsc_core::Uid([0x56, 0x53, 0x43, 0, 0, 0, 0, 1]))
    );
    assert_eq!(state.life_cycle, LifeCycle::Operational);
    let mut card = Card::from_state(state);
    // Public data, private data behind the PIN, the PIN and PUK counters, the key.
    assert_eq!(transmit(&mut card, "00A4080C0450005001"), "9000");
    assert_eq!(
        transmit(&mut card, "00B0000010"),
        format!("{}9000", hex::encode_upper("ERIKA MUSTERMANN"))
    );
    assert_eq!(transmit(&mut card, "00A4080C0460006001"), "9000");
    assert_eq!(transmit(&mut card, "00B0000010"), "6982");
    assert_eq!(transmit(&mut card, "00200001"), "63C3");
    assert_eq!(transmit(&mut card, "0020000108 313233343536FFFF"), "9000");
    let address = "Heidestraße 17, 51147 Köln";
    assert_eq!(
        transmit(&mut card, &format!("00B00000{:02X}", address.len())),
        format!("{}9000", hex::encode_upper(address))
    );
    assert_eq!(transmit(&mut card, "00200002"), "63CA");
    assert_eq!(
        transmit(&mut card, "00880001 10 6BC1BEE22E409F96E93D7E117393172A 00"),
        "070A16B46B4D4144F79BDD9DD04A287C9000"
    );
}

/// RFC 8032 §7.1, test 2: the Ed25519 secret key, its public key, the message and signature.
const ED25519_SEED: &str = "4CCD089B28FF96DA9DB6C346EC114E0F5B8A319F35ABA624DA8CF6ED4FB8A6FB";
const ED25519_PUBLIC: &str = "3D4017C3E843895A92B70AA74D1B7EBC9C982CCF2EC4968CC0CD55F12AF4660C";
const ED25519_MESSAGE: &str = "72";
const ED25519_SIGNATURE: &str = "92A009A9F0D4CAB8720E820B5F642540A2B27B5416503F8FB3762223EBDB69DA\
                                 085AC1E43E15996E458F3613D0F11D8C387B2EAEB4302AEEB00D291612BB0C00";

/// The sample card with OpenPGP, its cardholder name set, RFC 8032's test key imported as the
/// signature key, and one wrong PW1 try.
fn sample_v2() -> vsc_core::card::Card {
    let mut card = vsc_core::sample::card_with_openpgp();
    let import = format!("00DB3FFF2C4D2AB6007F480292205F4820{ED25519_SEED}").replace(' ', "");
    for (command, expected) in [
        ("00A4040006D27600012401", "9000"),
        ("00200083083132333435363738", "9000"),
        ("00DA005B0A4D75737465726D616E6E", "9000"),
        ("00DA00C10A162B06010401DA470F01", "9000"),
        (import.as_str(), "9000"),
        ("0020008106303030303030", "6982"),
    ] {
        assert_eq!(transmit(&mut card, command), expected, "{command}");
    }
    card.reset();
    card
}

#[test]
fn format_2_sample_card_loads_with_its_applications() {
    let bytes = include_bytes!("vectors/sample-card-v2.vsc");
    let opened = image::open(bytes, &master()).unwrap();
    assert_eq!(opened.version, 2);
    let expected = sample_v2().into_state();
    assert_eq!(opened.state.generation, expected.generation);
    assert!(opened.state.generation > 0);
    let mut card = Card::from_state(opened.state);
    // The VSC file system as in version 1.
    assert_eq!(transmit(&mut card, "00A4080C0450005001"), "9000");
    assert_eq!(
        transmit(&mut card, "00B0000010"),
        format!("{}9000", hex::encode_upper("ERIKA MUSTERMANN"))
    );
    // OpenPGP: the name, the counted try, the key by a known answer (Ed25519 is deterministic).
    assert_eq!(transmit(&mut card, "00A4040006D27600012401"), "9000");
    assert_eq!(
        transmit(&mut card, "00CA005B00"),
        format!("{}9000", hex::encode_upper("Mustermann"))
    );
    assert_eq!(
        transmit(&mut card, "00CA00C400"),
        "007F7F7F020003 9000".replace(' ', "")
    );
    assert_eq!(
        transmit(&mut card, "0047810002B60000"),
        format!("7F4922862 0{ED25519_PUBLIC}9000").replace(' ', "")
    );
    assert_eq!(transmit(&mut card, "0020008106313233343536"), "9000");
    assert_eq!(
        transmit(&mut card, &format!("002A9E9A01{ED25519_MESSAGE}00")),
        format!("{ED25519_SIGNATURE}9000").replace(' ', "")
    );
}

#[test]
fn a_format_1_image_is_written_again_as_format_2() {
    let state = image::decode(include_bytes!("vectors/sample-card-v1.vsc"), &master()).unwrap();
    assert_eq!(state.generation, 0);
    let bytes = image::encode(&state, &master()).unwrap();
    assert_eq!(&bytes[8..10], &[0, 2]);
    assert_eq!(image::decode(&bytes, &master()).unwrap(), state);
}

#[test]
#[ignore = "writes the committed vectors"]
fn write_vectors() {
    if std::env::var_os("VSC_WRITE_VECTORS").is_none() {
        return;
    }
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    // Version 1 was written by the program of that version; its vector stays as it is.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let state = sample_v2().into_state();
    let bytes = image::encode_with_rng(&state, &master(), &mut rng).unwrap();
    std::fs::write(folder.join("sample-card-v2.vsc"), bytes).unwrap();
}

/// The PIV vector's management key (AES-128) and 9D key (a P-256 scalar): test values only.
const PIV_MANAGEMENT_KEY: [u8; 16] = *b"VSC PIV test key";
const PIV_SCALAR: [u8; 32] = [0x11; 32];

/// Mutual authentication with `key` (docs/piv.md): `9000` on success.
fn piv_authenticate(card: &mut Card, key: &vsc_core::security::BlockKey, algorithm: u8) -> String {
    let block = key.algorithm.block_len();
    let witness =
        card.transmit(&[&[0x00, 0x87, algorithm, 0x9B, 4][..], &[0x7C, 2, 0x80, 0]].concat());
    if witness.len() == 2 {
        return hex::encode_upper(&witness);
    }
    let plain = key.decrypt_block(&witness[4..4 + block]).unwrap();
    let mut data = vec![0x7C, 2 * block as u8 + 4, 0x80, block as u8];
    data.extend_from_slice(&plain);
    data.extend_from_slice(&[0x81, block as u8]);
    data.extend(std::iter::repeat_n(0x42, block));
    let mut command = vec![0x00, 0x87, algorithm, 0x9B, data.len() as u8];
    command.extend_from_slice(&data);
    let response = card.transmit(&command);
    hex::encode_upper(&response[response.len() - 2..])
}

/// The sample card with OpenPGP and PIV; PIV with an AES-128 management key, a P-256 key
/// imported into 9D, printed information, and one wrong PIN try.
fn piv_v2() -> Card {
    use vsc_core::security::{BlockAlgorithm, BlockKey};
    let mut card = vsc_core::sample::card_with_openpgp_and_piv();
    assert_eq!(transmit(&mut card, "00A4040005A000000308"), "9000");
    let factory = BlockKey::new(
        BlockAlgorithm::Tdes,
        &vsc_core::applications::piv::DEFAULT_MANAGEMENT_KEY,
    )
    .unwrap();
    assert_eq!(piv_authenticate(&mut card, &factory, 0x03), "9000");
    let scalar = hex::encode_upper(PIV_SCALAR);
    let key = hex::encode_upper(PIV_MANAGEMENT_KEY);
    for (command, expected) in [
        (format!("00FE119D25 0620 {scalar} AA0101"), "9000"),
        (
            "00DB3FFF0E 5C035FC109 5307 4D555354455221".to_string(),
            "9000",
        ),
        (format!("00FFFFFF13 089B10 {key}"), "9000"),
        ("0020008008 393939393939FFFF".to_string(), "63C2"),
    ] {
        assert_eq!(transmit(&mut card, &command), expected, "{command}");
    }
    card.reset();
    card
}

#[test]
fn format_2_piv_card_loads_with_its_objects_keys_and_passwords() {
    use vsc_core::security::{BlockAlgorithm, BlockKey};
    let bytes = include_bytes!("vectors/piv-card-v2.vsc");
    let opened = image::open(bytes, &master()).unwrap();
    assert_eq!(opened.version, 2);
    let mut card = Card::from_state(opened.state);
    assert_eq!(transmit(&mut card, "00A4040005A000000308"), "9000");
    // The CHUID derived from the UID, the counted PIN try, the printed information behind it.
    let guid = hex::encode_upper(vsc_core::applications::piv::objects::guid(vsc_core::Uid([
        0x56, 0x53, 0x43, 0, 0, 0, 0, 1,
    ])));
    assert!(transmit(&mut card, "00CB3FFF05 5C035FC102 00").contains(&format!("3410{guid}")));
    assert_eq!(transmit(&mut card, "00200080"), "63C2");
    assert_eq!(transmit(&mut card, "00CB3FFF05 5C035FC109 00"), "6982");
    assert_eq!(transmit(&mut card, "0020008008 313233343536FFFF"), "9000");
    assert_eq!(
        transmit(&mut card, "00CB3FFF05 5C035FC109 00"),
        format!("5307{}9000", hex::encode_upper("MUSTER!"))
    );
    // The management key is the AES-128 one; the factory key no longer authenticates.
    let factory = BlockKey::new(
        BlockAlgorithm::Tdes,
        &vsc_core::applications::piv::DEFAULT_MANAGEMENT_KEY,
    )
    .unwrap();
    assert_eq!(piv_authenticate(&mut card, &factory, 0x03), "6A86");
    let key = BlockKey::new(BlockAlgorithm::Aes128, &PIV_MANAGEMENT_KEY).unwrap();
    assert_eq!(piv_authenticate(&mut card, &key, 0x08), "9000");
    // The imported key: its public point is the scalar's, and it signs (PIN policy never).
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let mut point = openssl::ec::EcPoint::new(&group).unwrap();
    point
        .mul_generator2(
            &group,
            &openssl::bn::BigNum::from_slice(&PIV_SCALAR).unwrap(),
            &mut ctx,
        )
        .unwrap();
    let encoded = point
        .to_bytes(
            &group,
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )
        .unwrap();
    assert_eq!(
        transmit(&mut card, "00F7009D00"),
        format!(
            "010111 02020101 030102 0443 8641 {} 9000",
            hex::encode_upper(&encoded)
        )
        .replace(' ', "")
    );
    card.reset();
    assert_eq!(transmit(&mut card, "00A4040005A000000308"), "9000");
    let signed = card.transmit(
        &hex::decode(format!("0087119D26 7C24 8200 8120 {}00", "AB".repeat(32)).replace(' ', ""))
            .unwrap(),
    );
    assert_eq!(signed[signed.len() - 2..], [0x90, 0x00]);
    let der = &signed[4..signed.len() - 2];
    let public = openssl::ec::EcKey::from_public_key(&group, &point).unwrap();
    assert!(
        openssl::ecdsa::EcdsaSig::from_der(der)
            .unwrap()
            .verify(&[0xAB; 32], &public)
            .unwrap()
    );
}

#[test]
#[ignore = "writes the committed PIV vector"]
fn write_piv_vector() {
    if std::env::var_os("VSC_WRITE_VECTORS").is_none() {
        return;
    }
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let bytes = image::encode_with_rng(&piv_v2().into_state(), &master(), &mut rng).unwrap();
    std::fs::write(folder.join("piv-card-v2.vsc"), bytes).unwrap();
}

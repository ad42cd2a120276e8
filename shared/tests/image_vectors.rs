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

#[test]
#[ignore = "writes the committed vectors"]
fn write_vectors() {
    if std::env::var_os("VSC_WRITE_VECTORS").is_none() {
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let state = vsc_core::sample::card().into_state();
    let bytes = image::encode_with_rng(&state, &master(), &mut rng).unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sample-card-v1.vsc");
    std::fs::write(path, bytes).unwrap();
}

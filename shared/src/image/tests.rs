//! Image round trips and every way an image file can be wrong.

use proptest::prelude::*;

use super::*;
use crate::card::{Card, LifeCycle};
use crate::fs::{EfBody, Fid};
use crate::sample;

fn master() -> MasterKey {
    MasterKey::from_bytes(&[7; 32])
}

fn sample_state() -> CardState {
    sample::card().into_state()
}

#[test]
fn round_trip() {
    let state = sample_state();
    let bytes = encode(&state, &master()).unwrap();
    assert_eq!(&bytes[..8], b"VSCIMAGE");
    assert_eq!(decode(&bytes, &master()).unwrap(), state);
    // The private area's content is nowhere in clear.
    let address = "Heidestraße 17".as_bytes();
    assert!(!bytes.windows(address.len()).any(|w| w == address));
    assert!(
        bytes.windows(16).any(|w| w == b"ERIKA MUSTERMANN"),
        "the public area is in clear"
    );
}

#[test]
fn a_card_without_uid_is_no_image() {
    assert!(matches!(
        encode(&Card::blank().into_state(), &master()),
        Err(ImageError::NoUid)
    ));
}

#[test]
fn the_wrong_issuer_key() {
    let bytes = encode(&sample_state(), &master()).unwrap();
    let other = MasterKey::from_bytes(&[8; 32]);
    assert!(matches!(
        decode(&bytes, &other),
        Err(ImageError::WrongIssuerKey { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&sample_state(), &master()).unwrap();
    for len in 0..bytes.len() {
        let error = decode(&bytes[..len], &master()).unwrap_err();
        assert!(
            matches!(error, ImageError::Truncated(_)),
            "cut at {len}: {error}"
        );
    }
}

#[test]
fn every_flipped_bit_is_an_error() {
    let bytes = encode(&sample_state(), &master()).unwrap();
    let header = 24;
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut flipped = bytes.clone();
            flipped[at] ^= bit;
            let error = decode(&flipped, &master()).unwrap_err();
            let expected = match at {
                0..8 => matches!(error, ImageError::NotAnImage),
                8..10 => matches!(error, ImageError::UnsupportedVersion(_)),
                18..23 => matches!(error, ImageError::WrongIssuerKey { .. }),
                // Section lengths may claim more than there is.
                _ if at >= header => {
                    matches!(error, ImageError::Tampered | ImageError::Truncated(_))
                }
                _ => matches!(error, ImageError::Tampered),
            };
            assert!(expected, "byte {at} bit {bit:02X}: {error}");
        }
    }
}

#[test]
fn another_cards_sealed_area_pasted_in() {
    let mine = sample_state();
    let mut theirs = mine.clone();
    if let Some(EfBody::Transparent(uid)) = theirs
        .fs
        .mf
        .child_ef_mut(Fid::EF_UID)
        .map(|ef| &mut ef.body)
    {
        uid[7] = 0x99;
    }
    let mine = encode(&mine, &master()).unwrap();
    let theirs = encode(&theirs, &master()).unwrap();
    // Both images have the same layout: swap the password sections.
    let section = |image: &[u8], tag: u8| -> std::ops::Range<usize> {
        let mut at = 32;
        loop {
            let len = u32::from_be_bytes(image[at + 1..at + 5].try_into().unwrap()) as usize;
            if image[at] == tag {
                return at..at + 5 + len;
            }
            at += 5 + len;
        }
    };
    let mut pasted = mine.clone();
    let ours = section(&mine, 0x04);
    let other = section(&theirs, 0x04);
    assert_eq!(ours.len(), other.len());
    pasted[ours].copy_from_slice(&theirs[other]);
    match decode(&pasted, &master()) {
        Err(ImageError::ForeignArea {
            area: Area::Passwords,
            found,
            ..
        }) => assert_eq!(found[7], 0x99),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_version() {
    let mut bytes = encode(&sample_state(), &master()).unwrap();
    bytes[8..10].copy_from_slice(&3u16.to_be_bytes());
    assert!(matches!(
        decode(&bytes, &master()),
        Err(ImageError::UnsupportedVersion(3))
    ));
    assert!(matches!(
        decode(b"PK\x03\x04 a zip file", &master()),
        Err(ImageError::NotAnImage)
    ));
}

#[test]
fn clear_view_without_the_key() {
    let bytes = encode(&sample_state(), &master()).unwrap();
    let view = read_clear(&bytes).unwrap();
    assert_eq!(view.uid, sample::UID);
    assert_eq!(view.life_cycle, LifeCycle::Operational);
    assert_eq!(view.issuer_kcv, master().check_value());
    assert!(view.fs.mf.child_df(Fid::DF_PUBLIC).is_some());
    assert!(view.fs.mf.child_df(Fid::DF_PRIVATE).is_none(), "sealed");
    assert_eq!(view.sealed.len(), 3);
}

#[test]
fn save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.vsc");
    save(&path, &sample_state(), &master()).unwrap();
    assert_eq!(load(&path, &master()).unwrap(), sample_state());
    assert!(matches!(
        load(&dir.path().join("missing.vsc"), &master()),
        Err(ImageError::Io { .. })
    ));
}

proptest! {
    #[test]
    fn no_bytes_panic_the_loader(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes, &master());
        let _ = read_clear(&bytes);
    }

    #[test]
    fn no_header_followed_by_anything_panics(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let good = encode(&sample_state(), &master()).unwrap();
        let mut bytes = good[..32].to_vec();
        bytes.extend(tail);
        prop_assert!(decode(&bytes, &master()).is_err());
        let _ = read_clear(&bytes);
    }
}

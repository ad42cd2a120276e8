//! Image decoding (`vsc_core::image`): no panic on any bytes, with or without the key, and
//! decode∘encode = id on every image that decodes.
//!
//! Random bytes never pass the image's MAC, so the input is read two ways. An even first byte:
//! the rest is an image file as it is (what `serve` and `inspect` meet). An odd first byte: the
//! rest is an image's *plaintext* — version, UID, generation and the four areas' serialized
//! contents — which this target seals and authenticates under the test issuer key exactly as
//! docs/image-format.md says, so that what lies behind the MAC (the areas' deserialization,
//! putting the state together) is fuzzed too. [`unseal`] makes such inputs from real images
//! (the seeds).

use hmac::{Hmac, Mac};
use rand::SeedableRng;
use sha2::Sha256;
use vsc_core::card::CardState;
use vsc_core::crypto::{Label, MasterKey, SealKey, SealedArea, derive};
use vsc_core::image::{self, MAGIC};
use vsc_tests::catalogue::test_master_key;

const SEALED: [(u8, SealedArea); 3] = [
    (0x02, SealedArea::Private),
    (0x03, SealedArea::SecretKeys),
    (0x04, SealedArea::Passwords),
];

/// The target's body.
pub fn run(data: &[u8]) {
    let master = test_master_key();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = image::read_clear(rest);
    if mode % 2 == 0 {
        if let Ok(opened) = image::open(rest, &master) {
            round_trip(&opened.state, &master);
        }
        return;
    }
    if let Some(bytes) = seal(rest, &master)
        && let Ok(opened) = image::open(&bytes, &master)
    {
        round_trip(&opened.state, &master);
    }
}

fn round_trip(state: &CardState, master: &MasterKey) {
    let encoded = match image::encode(state, master) {
        Ok(encoded) => encoded,
        Err(error) => panic!("a decoded state does not encode: {error}"),
    };
    match image::open(&encoded, master) {
        Ok(again) => {
            assert_eq!(&again.state, state, "decode∘encode = id");
            assert_eq!(again.state.generation, state.generation);
            assert_eq!(again.version, image::FORMAT_VERSION);
        }
        Err(error) => panic!("an encoded state does not decode: {error}"),
    }
}

/// The plaintext input's fields: version (2 bytes), UID (8), generation (8, version 2 only),
/// then the clear, private, secret key and password areas, each as a 2-byte big-endian length
/// and its bytes.
fn seal(plain: &[u8], master: &MasterKey) -> Option<Vec<u8>> {
    let (version, rest) = plain.split_at_checked(2)?;
    let version = u16::from_be_bytes([version[0], version[1]]);
    let (uid, mut rest) = rest.split_at_checked(8)?;
    let uid: [u8; 8] = uid.try_into().ok()?;
    let mut generation = None;
    if version != 1 {
        let (bytes, tail) = rest.split_at_checked(8)?;
        generation = Some(bytes);
        rest = tail;
    }
    let mut areas = Vec::new();
    for _ in 0..4 {
        let (len, tail) = rest.split_at_checked(2)?;
        let (area, tail) =
            tail.split_at_checked(usize::from(u16::from_be_bytes([len[0], len[1]])))?;
        areas.push(area);
        rest = tail;
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&uid);
    out.extend_from_slice(&master.check_value().to_bytes());
    if let Some(generation) = generation {
        out.extend_from_slice(generation);
    }
    out.push(4);
    push_section(&mut out, 0x01, areas[0]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for ((tag, area), plaintext) in SEALED.into_iter().zip(&areas[1..]) {
        let sealed = SealKey::derive(master, area, &uid).seal_with_rng(
            &mut rng,
            &aad(version, tag, &uid),
            plaintext,
        );
        let mut body = uid.to_vec();
        body.extend_from_slice(&sealed);
        push_section(&mut out, tag, &body);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&derive(master, Label::ImageMac, &uid)).ok()?;
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Some(out)
}

/// The plaintext input (after the mode byte) of a real image, for seeds; `None` when it does
/// not open under `master`.
pub fn unseal(image: &[u8], master: &MasterKey) -> Option<Vec<u8>> {
    let version = u16::from_be_bytes([*image.get(8)?, *image.get(9)?]);
    let uid: [u8; 8] = image.get(10..18)?.try_into().ok()?;
    let header_len = if version == 1 { 24 } else { 32 };
    let mut out = version.to_be_bytes().to_vec();
    out.extend_from_slice(&uid);
    if version != 1 {
        out.extend_from_slice(image.get(23..31)?);
    }
    let mut at = header_len;
    for tag in 1..=4u8 {
        let len = u32::from_be_bytes(image.get(at + 1..at + 5)?.try_into().ok()?) as usize;
        let body = image.get(at + 5..at + 5 + len)?;
        let plaintext = match SEALED.iter().find(|(t, _)| *t == tag) {
            None => body.to_vec(),
            Some((_, area)) => SealKey::derive(master, *area, &uid)
                .open(&aad(version, tag, &uid), body.get(8..)?)
                .ok()?
                .to_vec(),
        };
        out.extend_from_slice(&u16::try_from(plaintext.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&plaintext);
        at += 5 + len;
    }
    Some(out)
}

fn push_section(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// The associated data of a sealed area: magic, version, area tag, UID.
fn aad(version: u16, tag: u8, uid: &[u8; 8]) -> Vec<u8> {
    let mut aad = MAGIC.to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad.push(tag);
    aad.extend_from_slice(uid);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_image_unseals_and_seals_back_to_an_image_that_opens() {
        let master = test_master_key();
        for vector in [
            &include_bytes!("../../shared/tests/vectors/sample-card-v1.vsc")[..],
            &include_bytes!("../../shared/tests/vectors/sample-card-v2.vsc")[..],
        ] {
            let expected = image::open(vector, &master).unwrap();
            let plain = unseal(vector, &master).unwrap();
            let sealed = seal(&plain, &master).unwrap();
            assert_eq!(image::open(&sealed, &master).unwrap(), expected);
        }
    }
}

//! The demo profile's content fits the card OS: a minimal plain-mode build of three demo cards
//! (not the transcript compiler, which secure messaging belongs to) answers `9000` at every step,
//! and reading back gives the resolved bytes.

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{demo_profile, demo_records, resolve_all};
use vsc_core::apdu::Command;
use vsc_core::card::Card;
use vsc_core::fs::fcp::{df_fcp, ef_fcp};
use vsc_core::security::password::PAD;
use vsc_personalizer::content::{CardContent, EfContent};
use vsc_personalizer::profile::{PasswordSpec, Profile};
use vsc_personalizer::records::CsvSource;

/// Sends one command; returns the response data after checking `9000`.
fn send(card: &mut Card, what: &str, header: [u8; 4], data: &[u8], ne: Option<usize>) -> Vec<u8> {
    let command = Command::new(header[0], header[1], header[2], header[3])
        .with_data(data)
        .with_ne(ne)
        .to_vec()
        .unwrap();
    let mut response = card.transmit(&command);
    let status = response.split_off(response.len() - 2);
    assert_eq!(hex::encode(&status), "9000", "{what}");
    response
}

fn build(profile: &Profile, content: &CardContent) -> Card {
    let mut card = Card::blank();
    let create = [0x00, 0xE0, 0x00, 0x00];
    let mf = [0x00, 0xA4, 0x00, 0x0C];
    for (spec, df) in [
        (profile.file_system().unwrap().public(), &content.public),
        (profile.file_system().unwrap().private(), &content.private),
    ] {
        send(&mut card, "MF", mf, &[0x3F, 0x00], None);
        send(
            &mut card,
            spec.area,
            create,
            &df_fcp(&spec.to_df(), 0x05),
            None,
        );
        for (ef, file) in spec.efs.iter().zip(&df.files) {
            send(&mut card, &ef.name, create, &ef_fcp(&ef.to_ef()), None);
            match file {
                EfContent::Empty => {}
                EfContent::Binary(bytes) => {
                    send(&mut card, &ef.name, [0x00, 0xD6, 0, 0], bytes, None);
                }
                EfContent::Records(records) => {
                    for record in records {
                        send(&mut card, &ef.name, [0x00, 0xE2, 0, 0], record, None);
                    }
                }
            }
        }
        for (object, value) in spec.data_objects.iter().zip(&df.data_objects) {
            if let Some(value) = value {
                let [p1, p2] = object.tag.value().to_be_bytes();
                send(&mut card, &object.name, [0x00, 0xDA, p1, p2], value, None);
            }
        }
    }
    send(&mut card, "MF", mf, &[0x3F, 0x00], None);
    for (spec, value) in [
        (profile.file_system().unwrap().pin(), &content.pin),
        (profile.file_system().unwrap().puk(), &content.puk),
    ] {
        let PasswordSpec {
            policy, reference, ..
        } = spec;
        let define = [
            0x83,
            1,
            reference.byte(),
            0xC1,
            1,
            policy.min_len,
            0xC2,
            1,
            policy.max_len,
            0xC3,
            1,
            policy.max_tries,
        ];
        send(
            &mut card,
            "password object",
            [0x00, 0xDA, 0x01, 0x01],
            &define,
            None,
        );
        let padded = policy.pad(value.expose());
        assert!(padded[value.len()..].iter().all(|b| *b == PAD));
        send(
            &mut card,
            "password",
            [0x00, 0x24, 0x01, reference.byte()],
            &padded,
            None,
        );
    }
    for (key, (reference, value)) in profile
        .file_system()
        .unwrap()
        .keys()
        .iter()
        .zip(&content.keys)
    {
        assert_eq!(key.reference, *reference);
        let define = [
            0x83,
            1,
            reference.value(),
            0x80,
            1,
            key.algorithm.code(),
            0x95,
            1,
            key.usage.byte(),
        ];
        send(
            &mut card,
            &key.name,
            [0x00, 0xDA, 0x01, 0x02],
            &define,
            None,
        );
        let mut load = vec![0x83, 1, reference.value(), 0x8F, value.len() as u8];
        load.extend_from_slice(value.expose());
        send(&mut card, &key.name, [0x00, 0xDA, 0x01, 0x04], &load, None);
    }
    send(
        &mut card,
        "activate",
        [0x00, 0x44, 0x00, 0x00],
        &[0x3F, 0x00],
        None,
    );
    card
}

#[test]
fn demo_cards_build_and_read_back() {
    let profile = demo_profile();
    let mut source = CsvSource::open(&demo_records()).unwrap();
    let cards = resolve_all(&profile, &mut source, 4);
    for content in cards.iter().take(5).map(|c| c.as_ref().unwrap()) {
        let mut card = build(&profile, content);
        card.reset();
        let public = profile.file_system().unwrap().public();
        send(
            &mut card,
            "select public",
            [0x00, 0xA4, 0x04, 0x0C],
            public.aid.as_bytes(),
            None,
        );
        for (ef, file) in public.efs.iter().zip(&content.public.files) {
            let sfi = ef.sfi.unwrap().value();
            match file {
                EfContent::Binary(bytes) => {
                    let read = send(
                        &mut card,
                        &ef.name,
                        [0x00, 0xB0, 0x80 | sfi, 0],
                        &[],
                        Some(bytes.len()),
                    );
                    assert_eq!(read, bytes.as_slice(), "{}", ef.name);
                }
                EfContent::Records(records) => {
                    for (number, record) in records.iter().enumerate() {
                        let p2 = sfi << 3 | 0b100;
                        let read = send(
                            &mut card,
                            &ef.name,
                            [0x00, 0xB2, number as u8 + 1, p2],
                            &[],
                            Some(256),
                        );
                        assert_eq!(read, record.as_slice(), "{}", ef.name);
                    }
                }
                EfContent::Empty => {}
            }
        }
        for (object, value) in public.data_objects.iter().zip(&content.public.data_objects) {
            let [p1, p2] = object.tag.value().to_be_bytes();
            let read = send(
                &mut card,
                &object.name,
                [0x00, 0xCA, p1, p2],
                &[],
                Some(256),
            );
            assert_eq!(Some(read.as_slice()), value.as_ref().map(|v| v.as_slice()));
        }
        // The private DF's data objects need the PIN.
        let private = profile.file_system().unwrap().private();
        send(
            &mut card,
            "select private",
            [0x00, 0xA4, 0x04, 0x0C],
            private.aid.as_bytes(),
            None,
        );
        let padded = profile
            .file_system()
            .unwrap()
            .pin()
            .policy
            .pad(content.pin.expose());
        send(&mut card, "verify", [0x00, 0x20, 0x00, 0x01], &padded, None);
        let [p1, p2] = private.data_objects[0].tag.value().to_be_bytes();
        let read = send(
            &mut card,
            "address DO",
            [0x00, 0xCA, p1, p2],
            &[],
            Some(256),
        );
        assert_eq!(
            Some(read.as_slice()),
            content.private.data_objects[0]
                .as_ref()
                .map(|v| v.as_slice())
        );
    }
}

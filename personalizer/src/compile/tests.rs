//! The demo profile's transcripts, run on blank cards.

use vsc_core::card::{Card, LifeCycle};
use vsc_core::transcript::{Kind, Transcript};

use super::*;
use crate::content::{EfContent, Resolver, system_rng};
use crate::keys::MasterKeyDeriver;
use crate::records::{self, Record, Step as RecordStep};
use crate::replay::{self, CardLink, CardOsLink, ReplayError};

fn demo() -> (Profile, Vec<CardContent>, MasterKey) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
    let profile = Profile::load(std::path::Path::new(&format!("{dir}/demo.toml"))).unwrap();
    let mut source = records::open(&format!("{dir}/demo-records.csv")).unwrap();
    let master = MasterKey::from_bytes(&[9; 32]);
    let mut resolver = Resolver::new(&profile, source.header(), system_rng().unwrap()).unwrap();
    let mut record = Record::default();
    let mut contents = Vec::new();
    while let RecordStep::Read = source.next_record(&mut record).unwrap() {
        contents.push(
            resolver
                .resolve(&record, &MasterKeyDeriver(&master))
                .unwrap(),
        );
    }
    drop(resolver);
    (profile, contents, master)
}

fn run(link: &mut CardOsLink, transcript: &Transcript) -> Result<(), ReplayError> {
    replay::check_card(link, &transcript.header)?;
    replay::replay(link, transcript, |_| {})
}

fn transmit(link: &mut CardOsLink, hex: &str) -> String {
    let mut response = Vec::new();
    link.transmit(&hex::decode(hex).unwrap(), &mut response)
        .unwrap();
    hex::encode_upper(response)
}

#[test]
fn every_demo_card_personalizes_through_the_channel() {
    let (profile, contents, master) = demo();
    assert!(contents.len() >= 20);
    for content in &contents {
        let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
        assert_eq!(compiled.preinit.header.kind, Kind::PreInitialization);
        assert_eq!(compiled.perso.header.kind, Kind::Personalization);
        for transcript in [&compiled.preinit, &compiled.perso] {
            let (text, _) = transcript.encode();
            assert_eq!(
                &Transcript::parse(&text).unwrap(),
                transcript,
                "prints and parses back"
            );
        }
        let mut link = CardOsLink::new(Card::blank());
        run(&mut link, &compiled.preinit).unwrap();
        assert_eq!(link.card().state().life_cycle, LifeCycle::Initialisation);
        link.reset(vsc_core::transcript::ResetKind::Cold).unwrap();
        run(&mut link, &compiled.perso).unwrap();
        assert_eq!(link.card().state().life_cycle, LifeCycle::Operational);
        assert_eq!(link.card().state().uid(), Some(content.uid));
    }
}

#[test]
fn the_card_holds_the_holders_data() {
    let (profile, contents, master) = demo();
    let content = &contents[0];
    let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
    let mut link = CardOsLink::new(Card::blank());
    run(&mut link, &compiled.preinit).unwrap();
    run(&mut link, &compiled.perso).unwrap();
    link.reset(vsc_core::transcript::ResetKind::Cold).unwrap();
    let EfContent::Binary(document) = &content.public.files[0] else {
        panic!("document number")
    };
    assert_eq!(transmit(&mut link, "00A4080C0450005001"), "9000");
    assert_eq!(
        transmit(&mut link, &format!("00B00000{:02X}", document.len())),
        format!("{}9000", hex::encode_upper(&document[..]))
    );
    // The private area wants the PIN, and the PIN is the holder's.
    assert_eq!(transmit(&mut link, "00A4080C0460006001"), "9000");
    assert_eq!(transmit(&mut link, "00B2010400"), "6982");
    let pin = hex::encode_upper(
        profile
            .file_system()
            .unwrap()
            .pin()
            .policy
            .pad(content.pin.expose()),
    );
    assert_eq!(transmit(&mut link, &format!("0020000108{pin}")), "9000");
    assert!(transmit(&mut link, "00B2010400").ends_with("9000"));
    // The channel is closed now.
    assert_eq!(transmit(&mut link, "0CB0000000"), "6985");
}

#[test]
fn card_a_transcript_fails_on_card_b_at_the_first_channel_command() {
    let (profile, contents, master) = demo();
    let a = compile(&profile, &contents[0], &master, Mode::Channel).unwrap();
    let b = compile(&profile, &contents[1], &master, Mode::Channel).unwrap();
    let mut card_b = CardOsLink::new(Card::blank());
    run(&mut card_b, &b.preinit).unwrap();
    let before = card_b.card().state().clone();
    // Skip the UID check to show the channel itself refuses.
    let error = replay::replay(&mut card_b, &a.perso, |_| {}).unwrap_err();
    match error {
        ReplayError::Mismatch {
            step: 1, exchange, ..
        } => {
            assert_eq!(exchange.response(), [0x69, 0x88]);
            assert_eq!(
                exchange.shown_response(),
                "6988 (SM data objects incorrect)"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(card_b.card().state(), &before, "nothing written");
    // With the check, the UID stops it before anything is sent.
    card_b.reset(vsc_core::transcript::ResetKind::Cold).unwrap();
    assert!(matches!(
        replay::check_card(&mut card_b, &a.perso.header),
        Err(ReplayError::UidMismatch { .. })
    ));
}

#[test]
fn transcripts_are_deterministic_and_replay_again_after_an_interruption() {
    let (profile, contents, master) = demo();
    let content = &contents[2];
    let first = compile(&profile, content, &master, Mode::Channel).unwrap();
    let again = compile(&profile, content, &master, Mode::Channel).unwrap();
    assert_eq!(
        first.perso, again.perso,
        "the same card gives the same bytes"
    );
    let mut link = CardOsLink::new(Card::blank());
    run(&mut link, &first.preinit).unwrap();
    // Half the personalization, then the card is pulled.
    let mut half = first.perso.clone();
    half.steps.truncate(first.perso.steps.len() / 2);
    run(&mut link, &half).unwrap();
    link.reset(vsc_core::transcript::ResetKind::Cold).unwrap();
    run(&mut link, &first.perso).unwrap();
    assert_eq!(link.card().state().life_cycle, LifeCycle::Operational);
}

#[test]
fn plain_transcripts_for_cards_without_the_channel() {
    let (profile, contents, master) = demo();
    let compiled = compile(&profile, &contents[0], &master, Mode::Plain).unwrap();
    assert!(!compiled.preinit.steps.iter().any(|s| {
        s.comment()
            .is_some_and(|c| c.as_str().contains("channel keys"))
    }));
    let mut link = CardOsLink::new(Card::blank());
    run(&mut link, &compiled.preinit).unwrap();
    assert_eq!(link.card().state().life_cycle, LifeCycle::Creation);
    run(&mut link, &compiled.perso).unwrap();
    assert_eq!(link.card().state().life_cycle, LifeCycle::Operational);
}

#[test]
fn no_secret_in_the_personalization_transcript() {
    let (profile, contents, master) = demo();
    let content = &contents[0];
    let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
    let (text, _) = compiled.perso.encode();
    let pin = hex::encode_upper(
        profile
            .file_system()
            .unwrap()
            .pin()
            .policy
            .pad(content.pin.expose()),
    );
    assert!(!text.contains(&pin));
    for (_, key) in &content.keys {
        assert!(!text.contains(&hex::encode_upper(key.expose())));
    }
    let EfContent::Records(address) = &content.private.files[0] else {
        panic!("address")
    };
    assert!(!text.contains(&hex::encode_upper(&address[0][..])));
}

#[test]
fn pre_initialization_depends_on_the_uid_only() {
    let (profile, contents, master) = demo();
    for content in &contents {
        let compiled = compile(&profile, content, &master, Mode::Channel).unwrap();
        let blank = compile_preinit(&profile, content.uid, &master, Mode::Channel).unwrap();
        assert_eq!(compiled.preinit, blank);
    }
}

/// The demo profile's transcripts, every record, both modes, with a seeded generator: the
/// digest of all their text. Computed before the per-application backends came, so that they
/// are known to give the VSC file system byte for byte what they gave.
#[test]
fn the_demo_transcripts_are_byte_for_byte_what_they_were() {
    use rand::SeedableRng;
    use sha2::Digest;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
    let profile = Profile::load(std::path::Path::new(&format!("{dir}/demo.toml"))).unwrap();
    let mut source = records::open(&format!("{dir}/demo-records.csv")).unwrap();
    let master = MasterKey::from_bytes(&[9; 32]);
    let rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut resolver = Resolver::new(&profile, source.header(), rng).unwrap();
    let mut record = Record::default();
    let mut digest = sha2::Sha256::new();
    while let RecordStep::Read = source.next_record(&mut record).unwrap() {
        let content = resolver
            .resolve(&record, &MasterKeyDeriver(&master))
            .unwrap();
        for mode in [Mode::Channel, Mode::Plain] {
            let compiled = compile(&profile, &content, &master, mode).unwrap();
            digest.update(compiled.preinit.to_string());
            digest.update(compiled.perso.to_string());
        }
    }
    assert_eq!(
        hex::encode_upper(digest.finalize()),
        "A4F54CDD5DAC57654894FA0CFBB56CB766FAD7F38BE3C925D1844960EB2CEDEE"
    );
}

//! Secrets: generated PINs have the profile's form, and no PIN, key or private value appears in
//! any error message or `Debug` output.

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{StubDeriver, demo_profile, demo_records, resolve_all};
use rand::SeedableRng;
use rand::rngs::StdRng;
use vsc_personalizer::content::{Resolver, system_rng};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{self, CsvSource, Position, Record, RecordSource};

fn demo_text() -> String {
    std::fs::read_to_string(common::profiles_dir().join("demo.toml")).unwrap()
}

#[test]
fn generated_pins_have_the_right_length_and_digits() {
    let text = demo_text().replacen("field = \"pin\"", "generate = 7", 1);
    let profile = Profile::from_toml(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holders.csv");
    vsc_personalizer::synthetic::write(
        &profile,
        300,
        &path,
        5,
        vsc_personalizer::files::Overwrite::Refuse,
    )
    .unwrap();
    let mut source = CsvSource::open(&path).unwrap();
    assert!(
        source.header().column("pin").is_none(),
        "a generated PIN reads no field"
    );
    let mut resolver = Resolver::new(&profile, source.header(), system_rng().unwrap()).unwrap();
    let mut record = Record::new();
    let mut pins = std::collections::HashSet::new();
    while let records::Step::Read = source.next_record(&mut record).unwrap() {
        let card = resolver.resolve(&record, &StubDeriver).unwrap();
        assert_eq!(card.pin.len(), 7);
        assert!(card.pin.expose().iter().all(u8::is_ascii_digit));
        assert_eq!(card.puk.len(), 8);
        assert!(card.puk.expose().iter().all(u8::is_ascii_digit));
        pins.insert(card.pin.expose().to_vec());
    }
    assert!(
        pins.len() > 250,
        "300 random 7-digit PINs are nearly all distinct"
    );
}

#[test]
fn no_secret_in_errors_or_debug() {
    let profile = demo_profile();
    let mut source = CsvSource::open(&demo_records()).unwrap();
    let header = source.header().clone();
    let mut resolver = Resolver::new(&profile, &header, StdRng::seed_from_u64(9)).unwrap();
    let mut record = Record::new();
    source.next_record(&mut record).unwrap();
    let values: Vec<String> = (0..record.len())
        .map(|i| record.get(i).unwrap().to_string())
        .collect();
    let column = |name: &str| header.column(name).unwrap();

    // A good card: its Debug shows lengths, never the PIN, PUK, keys or private data.
    let card = resolver.resolve(&record, &StubDeriver).unwrap();
    let debug = format!("{card:?}");
    let mut secrets: Vec<String> = vec![
        "483920".into(),
        String::from_utf8(card.puk.expose().to_vec()).unwrap(),
        "Heidestraße".into(),
        "+49 221".into(),
    ];
    for (_, key) in &card.keys {
        secrets.push(hex::encode(key.expose()));
        secrets.push(hex::encode_upper(key.expose()));
        secrets.push(format!("{:?}", &key.expose()[8..12]));
    }
    for secret in &secrets {
        assert!(!debug.contains(secret.as_str()), "{secret} in {debug}");
    }
    assert!(debug.contains("SecretBytes(6 bytes)"), "{debug}");
    assert!(!format!("{record:?}").contains("483920"));
    assert!(!format!("{resolver:?}").contains("483920"));

    // Bad values: the messages name field and rule, never the value.
    let bad = |name: &str, value: &str| {
        let mut fields = values.clone();
        fields[column("uid")] = "56534344FFFFFFFF".to_string();
        fields[column(name)] = value.to_string();
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        Record::from_fields(Position::Line(99), 99, &refs)
    };
    for (name, value) in [
        ("pin", "98a765"),
        ("pin", "987654321"),
        ("address_line1", &"Geheimweg 1 ".repeat(10)),
        ("phone", "+49 secret ☎"),
        ("date_of_birth", "1999-13-99"),
        ("photo", "FFD8SECRET"),
        ("uid", "not-a-uid-at-all"),
    ] {
        let record = bad(name, value);
        let Err(error) = resolver.resolve(&record, &StubDeriver) else {
            panic!("{name} = {value:?} resolved");
        };
        assert_eq!(error.position, Position::Line(99));
        let message = error.to_string();
        let debug = format!("{error:?}");
        for shown in [&message, &debug] {
            assert!(!shown.contains(value), "{value:?} shown: {shown}");
        }
        assert!(message.contains(&format!("field `{name}`")), "{message}");
    }
}

#[test]
fn a_failed_record_does_not_take_its_uid() {
    let profile = demo_profile();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.csv");
    let text = std::fs::read_to_string(demo_records()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let first = lines[1].to_string();
    let broken = first.replace("1985-03-07", "1985-02-30");
    lines.insert(1, &broken);
    std::fs::write(&path, lines.join("\n")).unwrap();
    let mut source = records::open(path.to_str().unwrap()).unwrap();
    let cards = resolve_all(&profile, source.as_mut(), 1);
    assert!(cards[0].is_err(), "the bad date");
    assert!(
        cards[1].is_ok(),
        "the same UID, now valid, is the run's first"
    );
}

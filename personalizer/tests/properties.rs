//! Property tests: whatever a CSV cell holds, resolution answers a card or an error, never a
//! panic, and a card always fits the profile's files.

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{StubDeriver, demo_profile, resolve_all};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use vsc_personalizer::content::{CardContent, EfContent, Resolver};
use vsc_personalizer::profile::{EfStructure, Profile};
use vsc_personalizer::records::{CsvSource, Header, Position, Record};

fn profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(demo_profile)
}

fn header() -> Vec<String> {
    profile().fields().iter().map(|f| f.name.clone()).collect()
}

/// Every value a card holds fits the EF or data object it goes to.
fn assert_fits(profile: &Profile, card: &CardContent) {
    for (spec, content) in [
        (profile.file_system().unwrap().public(), &card.public),
        (profile.file_system().unwrap().private(), &card.private),
    ] {
        assert_eq!(spec.efs.len(), content.files.len());
        for (ef, file) in spec.efs.iter().zip(&content.files) {
            match (ef.structure, file) {
                (_, EfContent::Empty) => {}
                (EfStructure::Transparent { size }, EfContent::Binary(bytes)) => {
                    assert!(!bytes.is_empty() && bytes.len() <= usize::from(size));
                }
                (
                    EfStructure::Records {
                        record_len, count, ..
                    },
                    EfContent::Records(records),
                ) => {
                    assert!(records.len() <= usize::from(count));
                    for record in records {
                        assert!(!record.is_empty() && record.len() <= usize::from(record_len));
                    }
                }
                (structure, file) => panic!("{structure:?} got {file:?}"),
            }
        }
        for (object, value) in spec.data_objects.iter().zip(&content.data_objects) {
            if let Some(value) = value {
                assert!(!value.is_empty() && value.len() <= object.max_length);
                if object.tag.is_constructed() {
                    vsc_core::tlv::parse_all(value).expect("a template is BER-TLV");
                }
            }
        }
    }
}

/// Cells of any bytes: quotes, separators, line ends, invalid UTF-8, long runs.
fn cell() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        "[0-9A-Fa-f]{0,20}".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(String::into_bytes),
        "\\PC{0,90}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_csv_cells_never_panic(rows in proptest::collection::vec(
        proptest::collection::vec(cell(), 12), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cells.csv");
        let mut writer = csv::Writer::from_path(&path).unwrap();
        writer.write_record(header()).unwrap();
        for row in &rows {
            writer.write_record(row).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let mut source = CsvSource::open(&path).unwrap();
        let cards = resolve_all(profile(), &mut source, 1);
        prop_assert_eq!(cards.len(), rows.len());
        for card in cards.iter().flatten() {
            assert_fits(profile(), card);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_values_resolve_or_fail_cleanly(values in proptest::collection::vec("\\PC{0,70}|[0-9A-F]{16}|[0-9]{6,8}", 12)) {
        let header = Header::new(header()).unwrap();
        let mut resolver = Resolver::new(profile(), &header, StdRng::seed_from_u64(2)).unwrap();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let record = Record::from_fields(Position::Row(1), 1, &refs);
        if let Ok(card) = resolver.resolve(&record, &StubDeriver) {
            assert_fits(profile(), &card);
        }
        // A record of the wrong width is an error, not a panic.
        let short = Record::from_fields(Position::Row(2), 2, &refs[..5]);
        prop_assert!(resolver.resolve(&short, &StubDeriver).is_err());
    }
}

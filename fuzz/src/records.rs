//! CSV and JSON Lines records (`vsc_personalizer::records`): any file is read to its end
//! without a panic, every record either read or rejected with an error naming its position, and
//! every record read is resolved against the demo profile (a record's values are the holder's:
//! any text at all).
//!
//! Input: the first byte's low bit picks CSV (0) or JSON Lines (1); the rest is the file.

use std::sync::OnceLock;

use rand::SeedableRng;
use vsc_personalizer::content::Resolver;
use vsc_personalizer::keys::MasterKeyDeriver;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{CsvSource, JsonLinesSource, Record, RecordSource, Step};
use vsc_tests::catalogue::test_master_key;

/// At most this many records a run.
pub const MAX_RECORDS: usize = 64;

const DEMO_PROFILE: &str = include_str!("../../personalizer/profiles/demo.toml");

/// The target's body.
pub fn run(data: &[u8]) {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    let jsonl = kind & 1 == 1;
    let path = crate::scratch_file(if jsonl {
        "records.jsonl"
    } else {
        "records.csv"
    });
    if std::fs::write(&path, file).is_err() {
        return;
    }
    let source: Result<Box<dyn RecordSource>, _> = if jsonl {
        JsonLinesSource::open(&path).map(|s| Box::new(s) as Box<dyn RecordSource>)
    } else {
        CsvSource::open(&path).map(|s| Box::new(s) as Box<dyn RecordSource>)
    };
    let _ = std::fs::remove_file(&path);
    let Ok(mut source) = source else {
        return;
    };
    let master = test_master_key();
    let mut resolver = Resolver::new(
        demo_profile(),
        source.header(),
        rand::rngs::StdRng::seed_from_u64(1),
    )
    .ok();
    let mut record = Record::new();
    for _ in 0..MAX_RECORDS {
        match source.next_record(&mut record) {
            Ok(Step::Read) => {
                assert_eq!(record.len(), source.header().len());
                if let Some(resolver) = &mut resolver {
                    let _ = resolver.resolve(&record, &MasterKeyDeriver(&master));
                }
            }
            Ok(Step::Rejected(error)) => {
                assert!(!error.to_string().is_empty());
            }
            Ok(Step::End) | Err(_) => break,
        }
    }
}

fn demo_profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| match Profile::from_toml(DEMO_PROFILE) {
        Ok(profile) => profile,
        Err(error) => panic!("the demo profile does not load: {error}"),
    })
}

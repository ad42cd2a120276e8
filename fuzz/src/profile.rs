//! Profiles (`vsc_personalizer::profile`): any TOML text is parsed and validated without a
//! panic, and a profile that validates goes through the whole preparation without one: a
//! synthetic holder for it is written and read back, resolved, both transcripts are compiled
//! (and print to text that parses back to them) and run on a blank card OS.
//!
//! A valid profile may still describe a card the card OS cannot hold (more than its memory):
//! that is an error, not a crash.

use rand::SeedableRng;
use vsc_core::transcript::Transcript;
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::content::Resolver;
use vsc_personalizer::files::Overwrite;
use vsc_personalizer::keys::MasterKeyDeriver;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{CsvSource, Record, RecordSource, Step};
use vsc_tests::catalogue::test_master_key;

/// The target's body.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = Profile::from_toml(text) else {
        return;
    };
    let records = crate::scratch_file("holders.csv");
    let written = vsc_personalizer::synthetic::write(&profile, 1, &records, 7, Overwrite::Replace);
    let source = CsvSource::open(&records);
    let _ = std::fs::remove_file(&records);
    if let Err(error) = written {
        panic!("no synthetic holder for a valid profile: {error}");
    }
    let mut source = match source {
        Ok(source) => source,
        Err(error) => panic!("the synthetic holders do not read back: {error}"),
    };
    let rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut resolver = match Resolver::new(&profile, source.header(), rng) {
        Ok(resolver) => resolver,
        Err(error) => panic!("a valid profile does not bind its synthetic holders: {error}"),
    };
    let mut record = Record::new();
    if !matches!(source.next_record(&mut record), Ok(Step::Read)) {
        panic!("the synthetic holder does not read back");
    }
    let master = test_master_key();
    let content = match resolver.resolve(&record, &MasterKeyDeriver(&master)) {
        Ok(content) => content,
        Err(error) => panic!("a synthetic holder does not resolve: {error}"),
    };
    for mode in [Mode::Channel, Mode::Plain] {
        let Ok(compiled) = compile::compile(&profile, &content, &master, mode) else {
            continue;
        };
        for transcript in [&compiled.preinit, &compiled.perso] {
            let (printed, _) = transcript.encode();
            assert_eq!(
                Transcript::parse(&printed).as_ref(),
                Ok(transcript),
                "a compiled transcript prints to text that parses back"
            );
        }
        let _ = vsc_personalizer::prepare::run_on_blank(&compiled, &master);
    }
}

//! What one card costs data preparation, per step: compiling its two transcripts, running them
//! on a blank card through the card OS with every response checked, and sealing the image and
//! the stored transcripts. `prepare` targets 10,000 cards/s on 2 cores: 200 µs a card a core,
//! store included (scripts/bench measures the whole run).

// A benchmark that cannot set up has nothing to measure: unwrapping is its way to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vsc_core::crypto::MasterKey;
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::content::{Resolver, system_rng};
use vsc_personalizer::keys::MasterKeyDeriver;
use vsc_personalizer::prepare;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{self, Record, Step};
use vsc_personalizer::store::Dictionary;

fn prepare_one(c: &mut Criterion) {
    let profile =
        Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml")).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo-records.csv");
    let mut source = records::open(demo.to_str().unwrap()).unwrap();
    let master = MasterKey::from_bytes(&[7; 32]);
    let mut resolver = Resolver::new(&profile, source.header(), system_rng().unwrap()).unwrap();
    let mut record = Record::new();
    assert!(matches!(
        source.next_record(&mut record).unwrap(),
        Step::Read
    ));
    let content = resolver
        .resolve(&record, &MasterKeyDeriver(&master))
        .unwrap();
    let compiled = compile::compile(&profile, &content, &master, Mode::Channel).unwrap();

    let mut group = c.benchmark_group("prepare");
    group.throughput(Throughput::Elements(1));
    group.bench_function("compile both transcripts", |b| {
        b.iter(|| compile::compile(&profile, &content, &master, Mode::Channel).unwrap())
    });
    group.bench_function("run both on a blank card", |b| {
        b.iter(|| prepare::run_on_blank(&compiled).unwrap())
    });
    let signer = vsc_core::transcript::PreparationKey::derive(&master);
    // As in a run: the personalization transcript is compressed against another card's.
    assert!(matches!(
        source.next_record(&mut record).unwrap(),
        Step::Read
    ));
    let other = resolver
        .resolve(&record, &MasterKeyDeriver(&master))
        .unwrap();
    let (perso, _) = compile::compile(&profile, &other, &master, Mode::Channel)
        .unwrap()
        .perso
        .encode_signed(&signer);
    let throwaway = MasterKey::from_bytes(&[9; 32]);
    let (preinit, _) = compile::compile_preinit(&profile, other.uid, &throwaway, Mode::Channel)
        .unwrap()
        .encode_signed(&vsc_core::transcript::PreparationKey::derive(&throwaway));
    let dictionaries = prepare::Dictionaries {
        preinit: Some(Dictionary::new(1, preinit.into_bytes())),
        perso: Some(Dictionary::new(2, perso.into_bytes())),
    };
    group.bench_function(
        "a whole card (compile, run, seal, sign, print, compress)",
        |b| {
            b.iter(|| {
                prepare::prepare_card(
                    &profile,
                    &content,
                    &master,
                    &signer,
                    Mode::Channel,
                    &dictionaries,
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, prepare_one);
criterion_main!(benches);

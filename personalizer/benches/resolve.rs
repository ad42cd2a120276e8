//! How fast records become card content: resolving one record, and streaming a CSV or JSON
//! Lines file through a resolver. `prepare` needs 10,000 cards/s on 2 cores for everything, so
//! this step must stay at a few microseconds a card.

// A benchmark that cannot set up has nothing to measure: unwrapping is its way to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use vsc_core::security::{KeyAlgorithm, KeyRef, SecretBytes};
use vsc_personalizer::content::{KeyDeriver, Resolver};
use vsc_personalizer::files::Overwrite;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{self, Record, RecordSource, Step};
use vsc_personalizer::synthetic;

/// Stands in for the issuer's master key derivation (which costs its own HKDF on top).
struct StubDeriver;

impl KeyDeriver for StubDeriver {
    fn derive_key(
        &self,
        uid: vsc_core::Uid,
        reference: KeyRef,
        algorithm: KeyAlgorithm,
    ) -> SecretBytes {
        let mut value = [reference.value(); 32];
        value[..8].copy_from_slice(uid.bytes());
        SecretBytes::new(&value[..algorithm.key_len()])
    }
}

fn demo_profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml");
    Profile::load(&path).unwrap()
}

fn read_all(source: &mut dyn RecordSource) -> Vec<Record> {
    let mut out = Vec::new();
    loop {
        let mut record = Record::new();
        match source.next_record(&mut record).unwrap() {
            Step::Read => out.push(record),
            Step::Rejected(error) => panic!("{error}"),
            Step::End => return out,
        }
    }
}

fn resolve(c: &mut Criterion) {
    let profile = demo_profile();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("holders.csv");
    let jsonl = dir.path().join("holders.jsonl");
    const COUNT: u64 = 10_000;
    synthetic::write(&profile, COUNT, &csv, 1, Overwrite::Replace).unwrap();
    synthetic::write(&profile, COUNT, &jsonl, 1, Overwrite::Replace).unwrap();

    // The demo holders (accented names, portraits), in memory.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo-records.csv");
    let mut demo_source = records::open(demo.to_str().unwrap()).unwrap();
    let header = demo_source.header().clone();
    let demo_records = read_all(demo_source.as_mut());

    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one demo record", |b| {
        b.iter_custom(|iterations| {
            let mut resolver = Resolver::new(&profile, &header, StdRng::seed_from_u64(1)).unwrap();
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < iterations {
                // Each pass needs a fresh resolver: the demo's UIDs are refused the second time.
                let start = Instant::now();
                for record in demo_records.iter().take((iterations - done) as usize) {
                    std::hint::black_box(resolver.resolve(record, &StubDeriver).unwrap());
                }
                elapsed += start.elapsed();
                done += (demo_records.len() as u64).min(iterations - done);
                resolver = Resolver::new(&profile, &header, StdRng::seed_from_u64(1)).unwrap();
            }
            elapsed
        });
    });
    group.finish();

    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(20);
    for (name, path) in [("csv 10k", &csv), ("jsonl 10k", &jsonl)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut source = records::open(path.to_str().unwrap()).unwrap();
                let mut resolver =
                    Resolver::new(&profile, source.header(), StdRng::seed_from_u64(1)).unwrap();
                let mut record = Record::new();
                let mut cards = 0;
                while let Step::Read = source.next_record(&mut record).unwrap() {
                    std::hint::black_box(resolver.resolve(&record, &StubDeriver).unwrap());
                    cards += 1;
                }
                assert_eq!(cards, COUNT);
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sample");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("write 100k csv", |b| {
        let out = dir.path().join("sample.csv");
        b.iter(|| synthetic::write(&profile, 100_000, &out, 3, Overwrite::Replace).unwrap());
    });
    group.finish();
}

criterion_group!(benches, resolve);
criterion_main!(benches);

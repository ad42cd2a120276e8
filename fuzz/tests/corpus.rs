//! Every committed corpus input and every seed, run through the same target bodies libFuzzer
//! runs: the check that works without the nightly toolchain, and the regression test for every
//! crash once found (its input is kept in the corpus).
//!
//! `cargo test --no-default-features -- --ignored write_seeds` writes the seeds into
//! `corpus/<target>/seed-N`.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(corpus(target)) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("a corpus input reads");
                inputs.push((path.display().to_string(), bytes));
            }
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn every_corpus_input_and_seed_passes_its_target() {
    let seeds = vsc_fuzz::seeds::all();
    let mut total = 0;
    for (target, run) in vsc_fuzz::TARGETS {
        let mut count = 0;
        for (name, bytes) in inputs(target) {
            eprintln!("{target}: {name}");
            run(&bytes);
            count += 1;
        }
        for (_, bytes) in seeds.iter().filter(|(t, _)| *t == target) {
            run(bytes);
            count += 1;
        }
        assert!(count > 0, "{target} has neither a corpus nor a seed");
        eprintln!("{target}: {count} inputs passed");
        total += count;
    }
    eprintln!("{total} inputs passed");
}

#[test]
#[ignore = "writes the seeds into the corpus folders"]
fn write_seeds() {
    for (n, (target, bytes)) in vsc_fuzz::seeds::all().into_iter().enumerate() {
        let folder = corpus(target);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("seed-{n:03}")), bytes).unwrap();
    }
}

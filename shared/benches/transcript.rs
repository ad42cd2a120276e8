//! Transcript printing (with its SHA-256 trailer) and parsing, on a personalization-sized
//! transcript: 60 steps, 40-byte commands, a comment per step, 16-byte responses.
//!
//! Data preparation prints two transcripts per card at 10,000 cards per second on 2 cores, so
//! one print must stay well under 20 µs.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Expectation, Header, Kind, ProfileId, ProfileRef, Step,
    Transcript, TranscriptWriter, Uid,
};

fn typical() -> Result<Transcript, Box<dyn std::error::Error>> {
    let header = Header {
        kind: Kind::Personalization,
        uid: Uid([0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
        atr: Atr::new(hex::decode("3B8880015653432D4341524476")?)?,
        profile: Some(ProfileRef {
            id: ProfileId::new("eid-demo")?,
            version: 3,
        }),
        channel: Channel::SecureMessaging,
        extensions: Vec::new(),
    };
    let mut steps = Vec::new();
    for index in 0..60u8 {
        // 4 header bytes, Lc, 34 data bytes, Le: 40 bytes.
        let mut command = vec![0x0C, 0xD6, 0x00, index, 34];
        command.extend((0..34).map(|i| index.wrapping_mul(31).wrapping_add(i)));
        command.push(0x00);
        let mut response = vec![0x99, 0x02, 0x90, 0x00, 0x8E, 0x08];
        response.extend((0..8).map(|i| index ^ i));
        response.extend([0x90, 0x00]);
        steps.push(Step::Command {
            comment: Some(Comment::new(format!(
                "write EF 50{index:02X} holder data part"
            ))?),
            command: CommandApdu::new(command)?,
            expect: Expectation::exact(response)?,
        });
    }
    Ok(Transcript { header, steps })
}

fn bench(c: &mut Criterion) {
    let Ok(transcript) = typical() else {
        return;
    };
    let text = transcript.to_string();
    let mut group = c.benchmark_group("transcript 60 steps");
    group.throughput(Throughput::Bytes(text.len() as u64));

    let mut buffer = Vec::with_capacity(text.len());
    group.bench_function("print + digest, reused buffer", |b| {
        b.iter(|| {
            buffer.clear();
            black_box(black_box(&transcript).encode_into(&mut buffer));
        })
    });
    group.bench_function("encode (new String + digest)", |b| {
        b.iter(|| black_box(black_box(&transcript).encode()))
    });
    group.bench_function("to_string", |b| {
        b.iter(|| black_box(black_box(&transcript).to_string()))
    });
    group.bench_function("writer, step by step", |b| {
        b.iter(|| {
            let mut writer =
                TranscriptWriter::new(Vec::with_capacity(text.len()), &transcript.header).ok()?;
            for step in &transcript.steps {
                writer.write_step(step).ok()?;
            }
            writer.finish().ok()
        })
    });
    // For scale: the part of printing that is the digest alone.
    group.bench_function("sha256 of the text alone", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(text.as_bytes()))))
    });
    group.bench_function("parse", |b| {
        b.iter(|| black_box(Transcript::parse(black_box(&text))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The seeds of every target's corpus: real APDUs (the sample cards' scripts, the demo card's
//! transcripts, the OpenPGP commands GnuPG sends), the committed image vectors, the demo profile
//! and its records. `scripts/fuzz seeds` writes them into `corpus/<target>/`; the corpus replay
//! test runs them whether or not they are written.

use vsc_core::sample;
use vsc_core::transcript::{Step, Transcript};
use vsc_tests::catalogue::{self, test_master_key};

use crate::session::{self, Op};

/// Every seed: the target it is for, and its bytes.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let demo = catalogue::demo().ok();
    let scripts = scripts(demo.as_ref());

    for (_, commands) in &scripts {
        for command in commands {
            seeds.push(("apdu", command.clone()));
            seeds.push(("tlv", command.get(5..).unwrap_or_default().to_vec()));
        }
    }
    seeds.push(("apdu", hex("6182")));
    seeds.push(("apdu", hex("00B00000000000")));
    seeds.push(("apdu", hex("00D6000000000201020100")));
    seeds.push((
        "tlv",
        vsc_core::applications::install_fcp(vsc_core::applications::ApplicationKind::OpenPgp),
    ));
    seeds.push(("tlv", hex("7F49820109 8182010000 820103")));

    let cards = session::cards();
    for (card, commands) in &scripts {
        let Some(index) = cards.iter().position(|entry| entry.name == *card) else {
            continue;
        };
        let ops: Vec<Op<'_>> = commands.iter().map(|c| Op::Command(c)).collect();
        seeds.push(("session", session::encode(index as u8, &ops)));
        let mut stream = Vec::new();
        for control in [[0x01], [0x04]] {
            push_frame(&mut stream, &control);
        }
        for command in commands.iter().take(40) {
            push_frame(&mut stream, command);
        }
        push_frame(&mut stream, &[0x00]);
        let mut vpcd = vec![index as u8];
        vpcd.extend(stream);
        seeds.push(("vpcd", vpcd));
    }

    let master = test_master_key();
    for vector in [
        &include_bytes!("../../shared/tests/vectors/sample-card-v1.vsc")[..],
        &include_bytes!("../../shared/tests/vectors/sample-card-v2.vsc")[..],
    ] {
        let mut raw = vec![0];
        raw.extend_from_slice(vector);
        seeds.push(("image", raw));
        if let Some(plain) = crate::image::unseal(vector, &master) {
            let mut sealed = vec![1];
            sealed.extend(plain);
            seeds.push(("image", sealed));
        }
    }

    if let Some(demo) = &demo {
        for transcript in [&demo.pre_initialization, &demo.personalization] {
            seeds.push(("transcript", transcript.encode().0.into_bytes()));
            let key = vsc_core::transcript::PreparationKey::derive(&master);
            seeds.push(("transcript", transcript.encode_signed(&key).0.into_bytes()));
            seeds.push((
                "transcript",
                vsc_core::transcript::to_scriptor(transcript)
                    .expect("the seed transcripts have no live steps")
                    .into_bytes(),
            ));
        }
    }
    seeds.push((
        "transcript",
        b"# a scriptor script\nreset\n00A4000C023F00\n00 B0 00 00 \\\n 10\nexit\n".to_vec(),
    ));

    seeds.push((
        "profile",
        include_bytes!("../../personalizer/profiles/demo.toml").to_vec(),
    ));
    let csv = include_bytes!("../../personalizer/profiles/demo-records.csv");
    let mut records = vec![0];
    records.extend_from_slice(csv);
    seeds.push(("records", records));
    seeds.push(("records", jsonl(csv)));
    seeds
}

/// The command scripts of the seeds, each with the catalogue card it runs on.
fn scripts(demo: Option<&catalogue::Demo>) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut scripts = vec![
        (
            "blank chip",
            sample::script_with_openpgp()
                .into_iter()
                .map(|(_, command)| command)
                .collect(),
        ),
        (
            "sample, operational",
            [
                "00A4040C06F05653430001",
                "00B0810010",
                "00A4080C0460006001",
                "00B0000004",
                "0020000108313233343536FFFF",
                "00B0000020",
                "0088000110000102030405060708090A0B0C0D0E0F00",
                "0084000008",
                "002C000208313233343536373808313233343536FFFF",
                "00CA010100",
                "10D6000002AABB",
                "00D6000002CCDD",
                "0020000108393939393939FFFF",
            ]
            .into_iter()
            .map(hex)
            .collect(),
        ),
        (
            "OpenPGP token, operational",
            [
                "00A4040006D27600012401",
                "00CA004F00",
                "00CA5F5200",
                "00CA006E00",
                "00CA00C400",
                "00200081 06 313233343536",
                "00200082 06 313233343536",
                "00200083 08 3132333435363738",
                "00DA00C1 0A 162B06010401DA470F01",
                "00DA00C2 0A 162B06010401DA470F01",
                "0047800002 B600 00",
                "0047810002 B800 00",
                "002A9E9A 20 000102030405060708090A0B0C0D0E0F000102030405060708090A0B0C0D0E0F 00",
                "00DA005B 06 4D5553544552",
                "10DA0065 02 5B00",
                "00DA0065 01 00",
                "0024000106 313233343536 363534333231",
                "002C0281 06 363534333231",
                "00440000",
                "00E60000",
            ]
            .into_iter()
            .map(hex)
            .collect(),
        ),
        (
            "PIV token, operational",
            [
                "00A4040009A00000030800001000",
                "00CB3FFF055C035FC10200",
                "00CB3FFF055C035FC10700",
                "00CB3FFF03 5C017E 00",
                "00FD000000",
                "00F7008000",
                "00200080",
                "00200081",
                "00CB3FFF055C035FC10900",
                "0020008008 313233343536FFFF",
                "00CB3FFF055C035FC10900",
                "00CB3FFF055C035FC10800",
                "0087039B047C02800000",
                "0087119A08 7C06820081020102 00",
                "00200080 08 393939393939FFFF",
                "002C0080 10 3132333435363738 313233343536FFFF",
                "00240080 10 313233343536FFFF 363534333231FFFF",
                "0020FF80",
                "00DB3FFF 09 5C035FC109 5302AABB",
            ]
            .into_iter()
            .map(hex)
            .collect(),
        ),
    ];
    if let Some(demo) = demo {
        scripts.push((
            "demo profile, pre-initialized",
            commands(&demo.personalization),
        ));
    }
    scripts
}

fn commands(transcript: &Transcript) -> Vec<Vec<u8>> {
    transcript
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Command { command, .. } => Some(command.as_bytes().to_vec()),
            Step::Reset { .. } | Step::Live { .. } => None,
        })
        .collect()
}

fn push_frame(stream: &mut Vec<u8>, body: &[u8]) {
    let _ = vsc_emulator::vpcd::encode(body, stream);
}

/// The demo records as JSON Lines (every value a string), with the target's mode byte.
fn jsonl(csv: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(csv);
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut out = vec![1];
    for line in lines {
        let fields = line
            .split(',')
            .zip(&names)
            .map(|(value, name)| format!("{name:?}: {value:?}"));
        out.extend_from_slice(
            format!("{{{}}}\n", fields.collect::<Vec<_>>().join(", ")).as_bytes(),
        );
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap_or_default()
}

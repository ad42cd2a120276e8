//! PIV personalization's live step, measured:
//!
//! - `piv_live_step`: the station's CPU for one card's live step (the card's own management key
//!   derived from the issuer key and checked, the witness deciphered, a challenge drawn from the
//!   OS, the card's answer checked) against an in-process stub card that answers at once. The
//!   stub's own work (one block encipherment per step) is inside the figure, so it is an upper
//!   bound. Target: at most 1 ms per card.
//! - `piv_replay`: a PIV personalization transcript (SELECT, the live step with the factory
//!   key, PUT DATA of three certificate-sized objects and printed information, SET MANAGEMENT
//!   KEY) replayed onto a factory-fresh PIV VSC through pcscd and vpcd, against a bare
//!   `SCardTransmit` loop over the same APDUs in the same run, the live step's two round trips
//!   included (sent with a stale witness, so the card answers `6982` from there on: the same
//!   round trips and sizes, less card work, which favours the bare loop). Target: at most 1.05×.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use vsc_core::crypto::MasterKey;
use vsc_core::security::{BlockAlgorithm, BlockKey};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Comment, Expectation, Header, Kind, LiveStep, ProfileId, ProfileRef,
    ResetKind, Step, Transcript, Uid, derive_management_key,
};
use vsc_personalizer::replay::{self, CardLink, LinkError, LiveKeys, PcscLink, Unchecked};
use vsc_tests::{Machine, Process, Readers, wait_for_card, workspace_binary};

const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x50, 0x49, 0x56, 0xBE, 0x01];
const CARD_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let master = MasterKey::from_bytes(&[0x5A; 32]);
    live_step_cpu(&mut criterion, &master);
    replay_against_bare_loop(&mut criterion, &master);
    criterion.final_summary();
}

/// A card that holds `key` and answers the mutual authentication at once.
struct Stub {
    key: BlockKey,
}

impl CardLink for Stub {
    fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
        Ok(vsc_core::atr::atr(0x0F))
    }
    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
        response.clear();
        if command.len() == 10 {
            // A fixed encrypted witness: what the station deciphers is its business.
            response.extend_from_slice(&[0x7C, 0x0A, 0x80, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
        } else {
            let answer = self.key.encrypt_block(&command[19..27]).unwrap();
            response.extend_from_slice(&[0x7C, 0x0A, 0x82, 0x08]);
            response.extend_from_slice(&answer);
        }
        response.extend_from_slice(&[0x90, 0x00]);
        Ok(())
    }
    fn reset(&mut self, _: ResetKind) -> Result<(), LinkError> {
        Ok(())
    }
}

fn header(atr: Vec<u8>) -> Header {
    Header {
        kind: Kind::Personalization,
        uid: Uid(UID),
        atr: Atr::new(atr).unwrap(),
        profile: Some(ProfileRef {
            id: ProfileId::new("piv-bench").unwrap(),
            version: 1,
        }),
        channel: Channel::Plain,
        extensions: Vec::new(),
    }
}

fn live_step_cpu(criterion: &mut Criterion, master: &MasterKey) {
    let own = LiveStep::card_management_key(master, BlockAlgorithm::Tdes, &UID);
    let transcript = Transcript {
        header: header(vsc_core::atr::atr(0x0F)),
        steps: vec![Step::Live {
            comment: None,
            live: own,
        }],
    };
    let key = derive_management_key(master, BlockAlgorithm::Tdes, &UID);
    let mut stub = Stub {
        key: BlockKey::new(BlockAlgorithm::Tdes, &key).unwrap(),
    };
    let mut group = criterion.benchmark_group("piv_live_step");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "station CPU per card (3DES card key, stub card)",
        |bencher| {
            bencher.iter(|| {
                replay::replay_live(
                    &mut stub,
                    &transcript,
                    Unchecked::default(),
                    LiveKeys::issuer(master),
                    |_| {},
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

fn command(comment: &str, bytes: Vec<u8>) -> Step {
    Step::Command {
        comment: Some(Comment::new(comment).unwrap()),
        command: CommandApdu::new(bytes).unwrap(),
        expect: Expectation::exact(vec![0x90, 0x00]).unwrap(),
    }
}

/// PUT DATA of `tag` (3 bytes) with `len` bytes of value in `53`, chained in 255-byte pieces.
fn put_data(tag: [u8; 3], len: usize) -> Vec<Vec<u8>> {
    let mut data = vec![0x5C, 0x03, tag[0], tag[1], tag[2], 0x53, 0x82];
    data.extend_from_slice(&(len as u16).to_be_bytes());
    data.extend((0..len).map(|i| i as u8));
    let chunks: Vec<&[u8]> = data.chunks(255).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let class = if i + 1 < chunks.len() { 0x10 } else { 0x00 };
            let mut apdu = vec![class, 0xDB, 0x3F, 0xFF, chunk.len() as u8];
            apdu.extend_from_slice(chunk);
            apdu
        })
        .collect()
}

fn piv_transcript(atr: Vec<u8>, master: &MasterKey) -> Transcript {
    let mut steps = vec![
        command("select PIV", hex::decode("00A4040005A000000308").unwrap()),
        Step::Live {
            comment: Some(Comment::new("authenticate with the factory management key").unwrap()),
            live: LiveStep::factory_management_key(),
        },
    ];
    for (name, tag) in [
        ("9A", [0x5F, 0xC1, 0x05]),
        ("9C", [0x5F, 0xC1, 0x0A]),
        ("9D", [0x5F, 0xC1, 0x0B]),
    ] {
        for apdu in put_data(tag, 700) {
            steps.push(command(&format!("write the {name} certificate"), apdu));
        }
    }
    steps.push(command(
        "write printed information",
        hex::decode("00DB3FFF0B5C035FC109530453049000").unwrap(),
    ));
    let key = derive_management_key(master, BlockAlgorithm::Tdes, &UID);
    let mut set = hex::decode("00FFFFFF1B039B18").unwrap();
    set.extend_from_slice(&key);
    steps.push(command("set the card's own management key", set));
    Transcript {
        header: header(atr),
        steps,
    }
}

/// The transcript's APDUs for a bare loop: the live step as its two commands with a fixed
/// witness and challenge.
fn bare_commands(transcript: &Transcript) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for step in &transcript.steps {
        match step {
            Step::Command { command, .. } => out.push(command.as_bytes().to_vec()),
            Step::Live { .. } => {
                out.push(hex::decode("0087039B047C02800000").unwrap());
                let mut second = hex::decode("0087039B167C148008").unwrap();
                second.extend_from_slice(&[0x11; 8]);
                second.extend_from_slice(&[0x81, 0x08]);
                second.extend_from_slice(&[0x22; 8]);
                second.push(0x00);
                out.push(second);
            }
            Step::Reset { .. } => {}
        }
    }
    out
}

fn replay_against_bare_loop(criterion: &mut Criterion, master: &MasterKey) {
    let machine = Machine::lock().expect("the machine's pcscd lock");
    let pcscd = machine
        .start_pcscd(&Readers::system())
        .expect("a private pcscd");
    let folder = machine.scratch().join("bench-piv");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let key_file = folder.join("issuer.key");
    let issuer = vsc_core::issuer::IssuerKeyFile::from_master_key(master.clone());
    std::fs::write(&key_file, issuer.encode().as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let card = vsc_core::sample::piv_token(UID);
    let atr = card.atr();
    let image = folder.join("piv.vsc");
    vsc_core::image::save(&image, &card.into_state(), master).unwrap();
    let mut serve =
        std::process::Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    serve
        .arg("serve")
        .arg(&image)
        .arg("--key-file")
        .arg(&key_file)
        .arg("--fresh");
    let mut emulator = Process::spawn("vsc-emulator", &serve, machine.scratch()).unwrap();
    let reader = CString::new(pcscd.readers()[0].as_str()).unwrap();
    drop(wait_for_card(&pcscd.readers()[0], CARD_TIMEOUT).unwrap());
    let context = Context::establish(Scope::User).unwrap();
    let refresh = || {
        let mut card = context
            .connect(&reader, ShareMode::Shared, Protocols::ANY)
            .unwrap();
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::UnpowerCard)
            .unwrap();
    };
    let transcript = piv_transcript(atr, master);
    let commands = bare_commands(&transcript);

    let mut group = criterion.benchmark_group("piv_replay");
    group.throughput(Throughput::Elements(commands.len() as u64));
    group.bench_function("bare SCardTransmit loop", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                refresh();
                let mut card = replay::connect_exclusive(&context, &reader).unwrap();
                let mut link = PcscLink::begin(&mut card).unwrap();
                let mut response = Vec::new();
                let start = Instant::now();
                for command in &commands {
                    link.transmit(command, &mut response).unwrap();
                }
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.bench_function("replay engine, live step included", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                refresh();
                let mut card = replay::connect_exclusive(&context, &reader).unwrap();
                let mut link = PcscLink::begin(&mut card).unwrap();
                let start = Instant::now();
                replay::replay_live(
                    &mut link,
                    &transcript,
                    Unchecked::default(),
                    LiveKeys::issuer(master),
                    |_| {},
                )
                .unwrap();
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.finish();
    emulator.stop().unwrap();
    drop(pcscd);
}

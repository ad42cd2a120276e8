//! The status-word sweep: every INS (`00`–`FF`) × a set of P1-P2 values × every data shape (no
//! data, short data, 255 bytes, extended lengths, Le present or absent), a set of class bytes
//! × every INS, and bodies shorter than a header (1 to 3 bytes), on every card of the harness's
//! catalogue (a blank chip, pre-initialized, operational and terminated cards), in each
//! application the card carries (the VSC file system, and each application selected by its
//! AID), each once as it is and once with its passwords verified where their values are known;
//! served by the emulator's slots through the real pcscd and vpcd.
//!
//! Each command must get a status word (a response of at least 2 bytes) within a second: never
//! silence, never a hang. No response may hold a window of the card's secrets (PINs, PUKs, key
//! values, private key components: `vsc_tests::secrets`). A card whose persistent state a
//! command changed (a PIN try, a file written, a card terminated) is powered off and on before
//! the next INS, and given back its state: every INS meets the card in its catalogue state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pcsc::{Card as PcscCard, Disposition, Protocols, ShareMode};
use vsc_core::apdu::Command;
use vsc_core::card::CardState;
use vsc_emulator::vsc::{Saving, VscCard};
use vsc_emulator::{Endpoint, VirtualCard, readers_conf};
use vsc_tests::catalogue::{self, CatalogueCard, test_master_key};
use vsc_tests::secrets::SecretScan;
use vsc_tests::{CardSide, Machine, Readers, wait_for_card};

const CARD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one command may take, through pcscd and vpcd, before it counts as silence.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// P1-P2: zero, the usual selectors and references, the high bits, all ones.
const P1P2: [[u8; 2]; 7] = [
    [0x00, 0x00],
    [0x00, 0x01],
    [0x01, 0x02],
    [0x04, 0x0C],
    [0x80, 0x81],
    [0x3F, 0x00],
    [0xFF, 0xFF],
];

/// Class bytes beside `00`, each with every INS in one shape: secure messaging, chaining, a
/// logical channel, further interindustry, proprietary, invalid.
const CLASSES: [u8; 6] = [0x0C, 0x10, 0x01, 0x40, 0x80, 0xFF];

/// The data shapes: (data length, Ne, extended form).
const SHAPES: [(usize, Option<usize>, bool); 8] = [
    (0, None, false),          // case 1
    (0, Some(256), false),     // case 2S, Le 00
    (8, None, false),          // case 3S, short data
    (8, Some(256), false),     // case 4S
    (255, None, false),        // case 3S, the longest short data
    (300, None, true),         // case 3E
    (0, Some(65_536), true),   // case 2E, Le 0000
    (300, Some(65_536), true), // case 4E
];

/// A served card that gives its catalogue state back at every power-on and says when a
/// command changed it.
struct SweptCard {
    card: VscCard,
    initial: CardState,
    drifted: Arc<AtomicBool>,
}

impl VirtualCard for SweptCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        self.card.transmit(command, response);
        if *self.card.state() != self.initial {
            self.drifted.store(true, Ordering::SeqCst);
        }
    }

    fn reset(&mut self) {
        self.card.reset();
    }

    fn power_on(&mut self) {
        self.card.power_on();
        self.drifted.store(false, Ordering::SeqCst);
    }

    fn power_off(&mut self) {
        self.card.power_off();
    }
}

/// The commands of one INS: every P1-P2 in every shape, every class in one, and the bodies
/// shorter than a header (the INS alone, after a class byte, with a P1).
///
/// The lone byte `00` is left out: it is vpcd's power-off, which the slot cannot tell from a
/// command; it answers it `6700` when nothing follows and ends the connection, as
/// docs/emulator.md says and the emulator's session tests check. `04` is vpcd's GET ATR and is
/// answered with the ATR; `01` and `02` get `6700` once no GET ATR follows them within 250 ms,
/// so they are sent in a card's first context only (`first`).
fn commands(ins: u8, first: bool) -> Vec<Vec<u8>> {
    let mut out = vec![vec![0x00, ins], vec![0x00, ins, 0x00]];
    if ins != 0x00 && (first || !matches!(ins, 0x01 | 0x02)) {
        out.push(vec![ins]);
    }
    for [p1, p2] in P1P2 {
        for (len, ne, extended) in SHAPES {
            out.push(command(0x00, ins, p1, p2, len, ne, extended));
        }
    }
    for class in CLASSES {
        out.push(command(class, ins, 0x00, 0x00, 8, Some(256), false));
    }
    out
}

fn command(
    class: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    len: usize,
    ne: Option<usize>,
    extended: bool,
) -> Vec<u8> {
    let data = pattern(len);
    let mut command = Command::new(class, ins, p1, p2)
        .with_data(&data)
        .with_ne(ne);
    if extended {
        command = command.extended();
    }
    command.to_vec().unwrap()
}

/// Command data: a path to the MF, then a byte ramp.
fn pattern(len: usize) -> Vec<u8> {
    [0x3F, 0x00]
        .into_iter()
        .chain((0..).map(|i: u32| (i * 7 + 0x31) as u8))
        .take(len)
        .collect()
}

/// What one card's sweep counted.
#[derive(Debug, Default)]
struct Swept {
    apdus: usize,
    power_cycles: usize,
    slowest: Duration,
}

/// Sweeps `entry` in reader `reader`, in the VSC file system and in each application.
fn sweep_card(entry: &CatalogueCard, reader: &str, drifted: &AtomicBool) -> Swept {
    let mut card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
    let mut scan = SecretScan::of(&entry.state);
    assert!(
        scan.secrets() > 0 || entry.state.life_cycle == vsc_core::card::LifeCycle::Creation,
        "{}: a card with nothing to keep secret proves nothing",
        entry.name
    );
    for (len, _, _) in SHAPES {
        scan.excuse(&pattern(len));
    }
    let mut swept = Swept::default();
    for (n, (context, unlock)) in contexts(entry).iter().enumerate() {
        for ins in 0..=u8::MAX {
            if drifted.load(Ordering::SeqCst) {
                power_cycle(&mut card, reader);
                swept.power_cycles += 1;
            }
            // Every INS starts in its context: the MF, or the application selected.
            let select = match context {
                None => Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(&[0x3F, 0x00]),
                Some(aid) => Command::new(0x00, 0xA4, 0x04, 0x00).with_data(aid),
            };
            let select = select.to_vec().unwrap();
            send(&mut swept, &scan, &card, &entry.name, &select);
            for command in unlock {
                send(&mut swept, &scan, &card, &entry.name, command);
            }
            for command in commands(ins, n == 0) {
                send(&mut swept, &scan, &card, &entry.name, &command);
            }
        }
    }
    swept
}

fn send(swept: &mut Swept, scan: &SecretScan, card: &PcscCard, name: &str, command: &[u8]) {
    let mut buffer = [0; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let started = Instant::now();
    let response = card
        .transmit(command, &mut buffer)
        .unwrap_or_else(|e| panic!("{name}: {} got no answer: {e}", header(command)));
    let took = started.elapsed();
    swept.apdus += 1;
    swept.slowest = swept.slowest.max(took);
    assert!(
        response.len() >= 2,
        "{name}: {} got {} bytes, no status word",
        header(command),
        response.len()
    );
    assert!(
        took < ANSWER_WITHIN,
        "{name}: {} took {took:?}",
        header(command)
    );
    if let Some(leak) = scan.leak(response) {
        panic!(
            "{name}: the response to {} holds {} bytes of a secret at offset {}",
            header(command),
            leak.len,
            leak.at
        );
    }
}

/// A context: the application selected (`None`: the VSC file system), and the commands that
/// verify its passwords (none: as it is).
type Context = (Option<Vec<u8>>, Vec<Vec<u8>>);

/// The contexts a card is swept in: the VSC file system, then each application; each once as
/// it is and once with its passwords verified (where their values are known), with the
/// commands that verify them.
fn contexts(entry: &CatalogueCard) -> Vec<Context> {
    let mut out = Vec::new();
    let aids = entry.application_aids().into_iter().map(Some);
    for aid in std::iter::once(None).chain(aids) {
        let unlock = entry.unlock(aid.as_deref());
        out.push((aid.clone(), Vec::new()));
        if !unlock.is_empty() {
            out.push((aid, unlock));
        }
    }
    out
}

/// Powers the card off and on: the served card takes its catalogue state again.
fn power_cycle(card: &mut PcscCard, reader: &str) {
    if card
        .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::UnpowerCard)
        .is_err()
    {
        *card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
    }
}

fn header(command: &[u8]) -> String {
    format!(
        "{} ({} bytes)",
        hex::encode_upper(&command[..command.len().min(4)]),
        command.len()
    )
}

#[test]
fn every_instruction_gets_a_status_word_and_no_secret_on_every_card() {
    let cards = catalogue::catalogue().unwrap();
    assert!(
        catalogue::life_cycles(&cards).len() == 4,
        "every life cycle"
    );
    let machine = Machine::lock().unwrap();
    let entries = readers_conf::entries_for_slots(cards.len(), 35963).unwrap();
    let pcscd = machine.start_pcscd(&Readers::custom(entries)).unwrap();
    let drifted: Vec<Arc<AtomicBool>> = cards
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let slots = cards
        .iter()
        .zip(&drifted)
        .enumerate()
        .map(|(slot, (entry, drifted))| {
            let card = VscCard::with_saving(
                entry.state.clone(),
                std::path::Path::new("unused"),
                test_master_key(),
                Saving::Fresh,
            );
            let swept = SweptCard {
                card,
                initial: entry.state.clone(),
                drifted: Arc::clone(drifted),
            };
            (Endpoint::vpcd_default().slot(slot).unwrap(), swept)
        })
        .collect();
    let _card_side = CardSide::start(slots).unwrap();
    let readers: Vec<String> = (0..cards.len())
        .map(|i| pcscd.reader(i).to_string())
        .collect();

    let started = Instant::now();
    // Two cards at a time (the machine has two cores); each thread takes the next card.
    let next = AtomicUsize::new(0);
    let results: Vec<(usize, Swept)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(entry) = cards.get(index) else {
                            return done;
                        };
                        let reader = &readers[index];
                        done.push((index, sweep_card(entry, reader, &drifted[index])));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    let mut total = 0;
    for (index, swept) in &results {
        eprintln!(
            "sweep: {}: {} APDUs, {} power cycles, slowest answer {:?}",
            cards[*index].name, swept.apdus, swept.power_cycles, swept.slowest
        );
        total += swept.apdus;
    }
    eprintln!(
        "sweep: {total} APDUs on {} cards in {elapsed:?} ({:.0} APDU/s)",
        cards.len(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(results.len(), cards.len());
    // Each context: 256 INS × (3 short bodies, but the lone `00`, and `01` and `02` but in the
    // first context; 7 P1-P2 × 8 shapes; 6 classes; the SELECT and the VERIFYs before them).
    let expected: usize = cards
        .iter()
        .flat_map(|card| contexts(card).into_iter().enumerate())
        .map(|(n, (_, unlock))| {
            let lone_left_out = if n == 0 { 1 } else { 3 };
            256 * (3 + P1P2.len() * SHAPES.len() + CLASSES.len() + 1 + unlock.len()) - lone_left_out
        })
        .sum();
    assert_eq!(total, expected);
    let unlocked = cards
        .iter()
        .flat_map(contexts)
        .filter(|(_, u)| !u.is_empty())
        .count();
    assert!(
        unlocked >= 6,
        "contexts with their passwords verified: {unlocked}"
    );
}

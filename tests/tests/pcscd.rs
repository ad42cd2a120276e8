//! Through the real stack: PC/SC clients, a private pcscd, Debian's vpcd driver, and card sides
//! served by `vsc-emulator` (in process, or the null card binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use pcsc::{Disposition, Protocols, ShareMode};
use vsc_emulator::{Endpoint, NULL_CARD_ATR, VPCD_PORT};
use vsc_tests::{
    CardEvent, CardLog, CardSide, Machine, Process, ReaderEntry, Readers, TableCard, atr, run_tool,
    transmit, wait_for_card, wait_for_empty_reader, workspace_binary,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(10);
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
const ATR_A: [u8; 6] = [0x3B, 0x84, 0x80, 0x01, 0x41, 0x41];
const ATR_B: [u8; 6] = [0x3B, 0x84, 0x80, 0x01, 0x42, 0x42];

fn slot(index: usize) -> Endpoint {
    Endpoint::vpcd_default().slot(index).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// Waits until `log` holds `event` (pcscd and the slot work on their own threads).
fn wait_for_event(log: &CardLog, event: &CardEvent) -> bool {
    let deadline = Instant::now() + CARD_TIMEOUT;
    while Instant::now() < deadline {
        if log.count(event) > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn null_card(machine: &Machine, args: &[&str]) -> Process {
    let binary = workspace_binary("vsc-emulator", "vsc-null-card").unwrap();
    let mut command = Command::new(binary);
    command.args(args);
    Process::spawn("vsc-null-card", &command, machine.scratch()).unwrap()
}

#[test]
fn pcsc_client_gets_the_atr_and_the_table_answers() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let card = TableCard::new(&ATR_A).answering(&hex("00A4040C02F001"), &hex("9000"));
    let log = card.log();
    let side = CardSide::start(vec![(slot(0), card)]).unwrap();

    let connection = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(atr(&connection).unwrap(), ATR_A);
    assert_eq!(
        transmit(&connection, &hex("00A4040C02F001")).unwrap(),
        hex("9000")
    );
    assert_eq!(
        transmit(&connection, &hex("00B0000000")).unwrap(),
        hex("6D00")
    );

    drop(connection);
    side.stop().unwrap();
    let events = log.events();
    let first_apdu = events
        .iter()
        .position(|event| matches!(event, CardEvent::Apdu(_)));
    let power_on = events.iter().position(|event| *event == CardEvent::PowerOn);
    assert!(power_on < first_apdu && power_on.is_some(), "{events:?}");
    assert_eq!(log.count(&CardEvent::Apdu(hex("00B0000000"))), 1);
}

#[test]
fn opensc_tool_and_scriptor_talk_to_the_null_card_binary() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let _null_card = null_card(&machine, &["--slots", "1"]);
    drop(wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap());

    let atr = run_tool("opensc-tool", &["--reader", "0", "--atr"], "", TOOL_TIMEOUT).unwrap();
    let expected: Vec<String> = NULL_CARD_ATR.iter().map(|b| format!("{b:02x}")).collect();
    assert!(atr.status.success(), "{atr:?}");
    assert_eq!(atr.stdout.trim(), expected.join(":"));

    let sent = run_tool(
        "opensc-tool",
        &["--reader", "0", "--send-apdu", "00A4040C07F0010203040506"],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert!(
        sent.stdout.contains("Received (SW1=0x90, SW2=0x00)"),
        "{sent:?}"
    );

    let script = run_tool(
        "scriptor",
        &["-r", pcscd.reader(0)],
        "00 A4 00 0C 02 3F 00\n00 B0 00 00 10\n",
        TOOL_TIMEOUT,
    )
    .unwrap();
    assert!(script.status.success(), "{script:?}");
    assert_eq!(
        script
            .stdout
            .matches("< 90 00 : Normal processing.")
            .count(),
        2,
        "{script:?}"
    );
}

#[test]
fn two_slots_are_served_at_once() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let command = hex("80CA9F7F00");
    let card_a = TableCard::new(&ATR_A).answering(&command, &hex("41419000"));
    let card_b = TableCard::new(&ATR_B).answering(&command, &hex("42429000"));
    let _side = CardSide::start(vec![(slot(0), card_a), (slot(1), card_b)]).unwrap();

    let readers = [pcscd.reader(0).to_owned(), pcscd.reader(1).to_owned()];
    let answers: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = readers
            .iter()
            .map(|reader| {
                let command = &command;
                scope.spawn(move || {
                    let card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
                    let answers: Vec<Vec<u8>> =
                        (0..50).map(|_| transmit(&card, command).unwrap()).collect();
                    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]));
                    (atr(&card).unwrap(), answers[0].clone())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });
    assert_eq!(answers[0], (ATR_A.to_vec(), hex("41419000")));
    assert_eq!(answers[1], (ATR_B.to_vec(), hex("42429000")));
}

#[test]
fn a_card_side_started_before_pcscd_connects_once_it_is_there() {
    let machine = Machine::lock().unwrap();
    let _null_card = null_card(&machine, &["--slots", "2"]);
    // Long enough for several refused connections and a backoff of a few hundred ms.
    std::thread::sleep(Duration::from_millis(1500));
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    for reader in pcscd.readers() {
        let card = wait_for_card(reader, CARD_TIMEOUT).unwrap();
        assert_eq!(transmit(&card, &hex("00A40000")).unwrap(), hex("9000"));
    }
}

#[test]
fn a_restarted_pcscd_finds_the_card_side_again_with_its_state() {
    let machine = Machine::lock().unwrap();
    let mut pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let card = TableCard::new(&ATR_A);
    let log = card.log();
    let side = CardSide::start(vec![(slot(0), card)]).unwrap();

    let connection = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(
        transmit(&connection, &hex("80DA000003A1B2C3")).unwrap(),
        hex("9000")
    );
    drop(connection);

    pcscd.restart().unwrap();
    let connection = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(
        transmit(&connection, &hex("80CA000000")).unwrap(),
        hex("A1B2C39000")
    );
    drop(connection);

    let cards = side.stop().unwrap();
    assert_eq!(cards.len(), 1, "one card served both pcscd runs");
    assert!(log.count(&CardEvent::PowerOn) >= 2, "{:?}", log.events());
}

#[test]
fn reversed_mode_serves_a_reader_whose_vpcd_connects() {
    let machine = Machine::lock().unwrap();
    let port = free_port_pair();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let card_a = TableCard::new(&ATR_A).answering(&hex("00A40000"), &hex("9000"));
    let card_b = TableCard::new(&ATR_B).answering(&hex("00A40000"), &hex("6A82"));
    // The card side listens before pcscd starts and outlives it (declared first, dropped last):
    // Debian 12's vpcd (3.3) aborts pcscd when a reversed reader finds nobody listening.
    let _side = CardSide::start(vec![
        (Endpoint::Listen(addr), card_a),
        (Endpoint::Listen(addr).slot(1).unwrap(), card_b),
    ])
    .unwrap();
    let readers = Readers::custom(vec![ReaderEntry::connecting("VSC Reversed", addr)]);
    let pcscd = machine.start_pcscd(&readers).unwrap();

    assert_eq!(pcscd.reader(0), "VSC Reversed 00 00");
    let slot_0 = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    let slot_1 = wait_for_card(pcscd.reader(1), CARD_TIMEOUT).unwrap();
    assert_eq!(atr(&slot_0).unwrap(), ATR_A);
    assert_eq!(atr(&slot_1).unwrap(), ATR_B);
    assert_eq!(transmit(&slot_0, &hex("00A40000")).unwrap(), hex("9000"));
    assert_eq!(transmit(&slot_1, &hex("00A40000")).unwrap(), hex("6A82"));
}

/// Two consecutive free ports above vpcd's (reversed readers use port and port + 1).
fn free_port_pair() -> u16 {
    (VPCD_PORT + 100..VPCD_PORT + 1000)
        .step_by(2)
        .find(|port| {
            std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        })
        .unwrap()
}

#[test]
fn reset_and_power_off_reach_the_card() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let card = TableCard::new(&ATR_A);
    let log = card.log();
    let _side = CardSide::start(vec![(slot(0), card)]).unwrap();

    let mut connection = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(log.count(&CardEvent::Reset), 0);
    connection
        .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
        .unwrap();
    assert!(
        wait_for_event(&log, &CardEvent::Reset),
        "{:?}",
        log.events()
    );

    connection
        .disconnect(Disposition::UnpowerCard)
        .map_err(|(_, error)| error)
        .unwrap();
    assert!(
        wait_for_event(&log, &CardEvent::PowerOff),
        "{:?}",
        log.events()
    );
}

#[test]
fn the_null_card_binary_stops_cleanly_on_sigterm_and_sigint() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    for signal in ["TERM", "INT"] {
        let mut null_card = null_card(&machine, &["--slots", "2"]);
        let card = wait_for_card(pcscd.reader(1), CARD_TIMEOUT).unwrap();
        assert_eq!(transmit(&card, &hex("00A40000")).unwrap(), hex("9000"));
        drop(card);
        null_card.signal(signal).unwrap();
        let status = null_card.wait(CARD_TIMEOUT).unwrap();
        assert!(
            status.success(),
            "SIG{signal}: {status}\n{}",
            null_card.output()
        );
        assert!(
            null_card
                .output()
                .contains(&format!("SIG{signal}: stopping"))
        );
        // pcscd must see the card go before the next card side comes (see wait_for_empty_reader).
        wait_for_empty_reader(pcscd.reader(1), CARD_TIMEOUT).unwrap();
    }
}

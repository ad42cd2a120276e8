//! Both ends together: round trips, tampering, wrong keys, and no panic on any input.

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::data_objects::{TAG_CRYPTOGRAM, TAG_LE, TAG_MAC, TAG_PADDED_CRYPTOGRAM, push_header};
use super::session::{Session, padded_header};
use super::*;
use crate::apdu::{Command, LengthForm, MAX_NE, Response, Status};
use crate::crypto::{AesKey, MasterKey};

const UID: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];

fn keys() -> ChannelKeys {
    ChannelKeys::derive(&MasterKey::from_bytes(&[0x5A; 32]), &UID)
}

fn pair() -> (TerminalChannel, CardChannel) {
    (TerminalChannel::new(keys()), CardChannel::new(keys()))
}

/// The bytes the card should hand its OS: the command as the terminal meant it. The length
/// form of Lc is not carried inside SM (there is no inner Lc), so a case 3 command whose data
/// fits a short Lc comes out in short form.
fn expected_plain(command: &Command) -> Vec<u8> {
    let mut expected = *command;
    if command.ne.is_none() && command.data.len() <= 0xFF {
        expected.form = LengthForm::Short;
    }
    expected.to_vec().unwrap()
}

/// Sends one command through both ends and checks both directions.
fn exchange(
    terminal: &mut TerminalChannel,
    card: &mut CardChannel,
    command: &Command,
    response: &Response,
) {
    let protected = terminal.wrap_command(command).unwrap();
    let parsed = Command::parse(&protected).unwrap();
    let plain = card.unwrap_command(&parsed).unwrap();
    assert_eq!(*plain, expected_plain(command));
    let protected_response = card.wrap_response(&response.data, response.status);
    assert_eq!(
        protected_response[protected_response.len() - 2..],
        response.status.to_bytes()
    );
    assert_eq!(
        terminal.unwrap_response(&protected_response).unwrap(),
        *response
    );
}

fn update_binary(data: &[u8]) -> Command<'_> {
    Command::new(0x00, 0xD6, 0x00, 0x10).with_data(data)
}

#[test]
fn personalization_like_sequence() {
    let (mut terminal, mut card) = pair();
    let data = [0x42; 64];
    let long = [0x17; 700];
    let sequence = [
        Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(&[0x60, 0x00]),
        update_binary(&data),
        Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(Some(16)),
        Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(Some(256)),
        Command::new(0x00, 0xB1, 0x00, 0x00)
            .with_data(&[0x54, 0x02, 0x00, 0x00])
            .with_ne(Some(256)),
        Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(&[0x5C, 0x01, 0x01]),
        Command::new(0x00, 0xD6, 0x00, 0x00).with_data(&long),
        Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(Some(MAX_NE)),
        Command::new(0x00, 0xB0, 0x00, 0x00)
            .with_ne(Some(16))
            .extended(),
        Command::new(0x10, 0xD6, 0x00, 0x00).with_data(&data),
        Command::new(0x00, 0x44, 0x00, 0x00),
    ];
    for (step, command) in sequence.iter().enumerate() {
        let response = Response {
            data: if command.ne.is_some() {
                vec![step as u8; 200]
            } else {
                Vec::new()
            },
            status: Status::Success,
        };
        exchange(&mut terminal, &mut card, command, &response);
    }
    assert!(terminal.is_open() && card.is_open());
}

#[test]
fn the_same_card_and_commands_give_the_same_bytes() {
    let transcript = || {
        let (mut terminal, mut card) = pair();
        let mut bytes = Vec::new();
        for data in [[1u8; 40], [2; 40], [1; 40]] {
            let protected = terminal.wrap_command(&update_binary(&data)).unwrap();
            card.unwrap_command(&Command::parse(&protected).unwrap())
                .unwrap();
            let response = card.wrap_response(&[], Status::Success);
            terminal.unwrap_response(&response).unwrap();
            bytes.push((protected, response));
        }
        bytes
    };
    let first = transcript();
    assert_eq!(first, transcript());
    // The SSC moves on: the same command later in the session gives other bytes.
    assert_ne!(first[0], first[2]);
}

#[test]
fn every_flipped_bit_of_a_protected_command_is_6988() {
    let command = Command::new(0x00, 0xD6, 0x00, 0x20)
        .with_data(&[0xA5; 20])
        .with_ne(Some(4));
    let protected = TerminalChannel::new(keys()).wrap_command(&command).unwrap();
    let mut rejected = 0;
    for bit in 0..protected.len() * 8 {
        let mut tampered = protected.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        // A flipped Lc no longer parses: the card's APDU codec answers 6700 before SM.
        let Ok(parsed) = Command::parse(&tampered) else {
            assert_eq!(bit / 8, 4, "only Lc can break the APDU");
            continue;
        };
        let mut card = CardChannel::new(keys());
        assert_eq!(
            card.unwrap_command(&parsed),
            Err(Status::SmDataObjectsIncorrect),
            "bit {bit}"
        );
        // Closed for good: the genuine command is refused too.
        assert_eq!(
            card.unwrap_command(&Command::parse(&protected).unwrap()),
            Err(Status::SmDataObjectsIncorrect)
        );
        assert!(!card.is_open());
        rejected += 1;
    }
    // Every bit outside Lc was refused (and an Lc flip that still parses, too).
    assert!(rejected >= (protected.len() - 1) * 8);
}

#[test]
fn every_flipped_bit_of_a_protected_response_is_refused() {
    let (mut terminal, mut card) = pair();
    let command = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(Some(32));
    let protected = terminal.wrap_command(&command).unwrap();
    card.unwrap_command(&Command::parse(&protected).unwrap())
        .unwrap();
    let response = card.wrap_response(&[0x33; 32], Status::Success);
    // The trailing status word is a copy outside the MAC; DO'99' is what counts.
    let covered = response.len() - 2;
    for bit in 0..covered * 8 {
        let mut terminal = TerminalChannel::new(keys());
        terminal.wrap_command(&command).unwrap();
        let mut tampered = response.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert!(terminal.unwrap_response(&tampered).is_err(), "bit {bit}");
        assert!(!terminal.is_open());
        assert_eq!(terminal.wrap_command(&command), Err(SmError::Closed));
    }
    assert_eq!(
        terminal.unwrap_response(&response).unwrap().data,
        [0x33; 32]
    );
}

#[test]
fn another_cards_keys_fail_on_the_first_command() {
    let mut terminal = TerminalChannel::new(keys());
    let other_card = ChannelKeys::derive(&MasterKey::from_bytes(&[0x5A; 32]), &[9; 8]);
    let other_issuer = ChannelKeys::derive(&MasterKey::from_bytes(&[0x5B; 32]), &UID);
    let protected = terminal.wrap_command(&update_binary(&[1; 64])).unwrap();
    for keys in [other_card, other_issuer] {
        let mut card = CardChannel::new(keys);
        assert_eq!(
            card.unwrap_command(&Command::parse(&protected).unwrap()),
            Err(Status::SmDataObjectsIncorrect)
        );
    }
}

#[test]
fn a_bare_status_word_closes_the_terminal_side() {
    let (mut terminal, mut card) = pair();
    let protected = terminal.wrap_command(&update_binary(&[1; 4])).unwrap();
    let mut tampered = protected.clone();
    tampered[10] ^= 0xFF;
    let status = card
        .unwrap_command(&Command::parse(&tampered).unwrap())
        .unwrap_err();
    assert_eq!(
        terminal.unwrap_response(&status.to_bytes()),
        Err(SmError::Unprotected(Status::SmDataObjectsIncorrect))
    );
    assert!(!terminal.is_open());
}

#[test]
fn error_statuses_are_protected_too() {
    let (mut terminal, mut card) = pair();
    let command = Command::new(0x00, 0x20, 0x00, 0x01).with_data(b"12345678");
    let protected = terminal.wrap_command(&command).unwrap();
    card.unwrap_command(&Command::parse(&protected).unwrap())
        .unwrap();
    let response = card.wrap_response(&[], Status::TriesLeft(2));
    assert_eq!(response[response.len() - 2..], [0x63, 0xC2]);
    assert_eq!(
        terminal.unwrap_response(&response).unwrap(),
        Response::status(Status::TriesLeft(2))
    );
}

#[test]
fn calls_out_of_order() {
    let (mut terminal, mut card) = pair();
    assert_eq!(
        terminal.unwrap_response(&[0x90, 0x00]),
        Err(SmError::OutOfOrder)
    );
    let protected = terminal.wrap_command(&update_binary(&[1])).unwrap();
    assert_eq!(
        terminal.wrap_command(&update_binary(&[1])),
        Err(SmError::OutOfOrder)
    );
    let parsed = Command::parse(&protected).unwrap();
    card.unwrap_command(&parsed).unwrap();
    // A second command before the response closes the card's channel.
    assert_eq!(
        card.unwrap_command(&parsed),
        Err(Status::SmDataObjectsIncorrect)
    );
    assert!(!card.is_open());
}

#[test]
fn commands_that_cannot_be_protected() {
    let mut terminal = TerminalChannel::new(keys());
    for class in [0x0C, 0x04, 0x80, 0x40, 0xFF] {
        assert_eq!(
            terminal.wrap_command(&Command::new(class, 0xB0, 0, 0)),
            Err(SmError::UnsupportedClass(class))
        );
    }
    let too_long = vec![0; 65_520];
    assert_eq!(
        terminal.wrap_command(&update_binary(&too_long)),
        Err(SmError::Apdu(crate::apdu::ApduError::TooLong))
    );
    let mut inconsistent = Command::new(0x00, 0xB0, 0, 0).with_ne(Some(300));
    inconsistent.form = LengthForm::Short;
    assert_eq!(
        terminal.wrap_command(&inconsistent),
        Err(SmError::Apdu(crate::apdu::ApduError::TooLong))
    );
    // None of this moved the SSC: the channel still works.
    let mut card = CardChannel::new(keys());
    let protected = terminal.wrap_command(&update_binary(&[7; 3])).unwrap();
    assert!(
        card.unwrap_command(&Command::parse(&protected).unwrap())
            .is_ok()
    );
}

/// A command whose data objects are `objects` followed by a correct MAC, as the first command
/// of a channel with `keys()`: authentic, whatever the objects hold.
fn authentic_command(header: [u8; 4], objects: &[u8]) -> Vec<u8> {
    let mut session = Session::new(keys());
    let ssc = session.next_ssc();
    let mac = session.mac(&ssc, &padded_header(header), objects);
    let mut data = objects.to_vec();
    push_header(&mut data, TAG_MAC, 8);
    data.extend_from_slice(&mac);
    Command::new(header[0], header[1], header[2], header[3])
        .with_data(&data)
        .with_ne(Some(if data.len() > 0xFF { MAX_NE } else { 256 }))
        .to_vec()
        .unwrap()
}

#[test]
fn authentic_but_malformed_objects_are_6988() {
    let header = [0x0C, 0xD6, 0x00, 0x00];
    let cases: Vec<Vec<u8>> = vec![
        // DO'97' of three bytes, and of none.
        vec![TAG_LE, 3, 0, 1, 0],
        vec![TAG_LE, 0],
        // DO'87' with another padding indicator.
        [vec![TAG_PADDED_CRYPTOGRAM, 17, 0x02], vec![0; 16]].concat(),
        // DO'87' whose cryptogram is not whole blocks, or empty.
        [vec![TAG_PADDED_CRYPTOGRAM, 16, 0x01], vec![0; 15]].concat(),
        vec![TAG_PADDED_CRYPTOGRAM, 1, 0x01],
        // DO'85' on an even INS.
        [vec![TAG_CRYPTOGRAM, 16], vec![0; 16]].concat(),
        // Le before the cryptogram, or twice.
        [
            vec![TAG_LE, 1, 0, TAG_PADDED_CRYPTOGRAM, 17, 1],
            vec![0; 16],
        ]
        .concat(),
        vec![TAG_LE, 1, 0, TAG_LE, 1, 0],
    ];
    for objects in cases {
        let bytes = authentic_command(header, &objects);
        let mut card = CardChannel::new(keys());
        assert_eq!(
            card.unwrap_command(&Command::parse(&bytes).unwrap()),
            Err(Status::SmDataObjectsIncorrect),
            "{}",
            hex::encode(&objects)
        );
    }
    // The authentic command with valid objects is accepted (so the cases above fail for the
    // reason they show, not for the MAC).
    let bytes = authentic_command(header, &[TAG_LE, 1, 0x10]);
    let plain = CardChannel::new(keys())
        .unwrap_command(&Command::parse(&bytes).unwrap())
        .unwrap();
    assert_eq!(*plain, [0x00, 0xD6, 0x00, 0x00, 0x10]);
}

#[test]
fn channel_keys_of_other_sizes_work() {
    let keys = || ChannelKeys::from_keys(AesKey::aes128(&[1; 16]), AesKey::aes192(&[2; 24]));
    let mut terminal = TerminalChannel::new(keys());
    let mut card = CardChannel::new(keys());
    exchange(
        &mut terminal,
        &mut card,
        &update_binary(&[9; 33]),
        &Response::status(Status::Success),
    );
}

fn plain_command() -> impl Strategy<Value = (u8, u8, u8, u8, Vec<u8>, Option<usize>, bool)> {
    (
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13]),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of(prop_oneof![1usize..=300, Just(MAX_NE), 1usize..=MAX_NE]),
        any::<bool>(),
    )
}

proptest! {
    #[test]
    fn unwrap_command_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(command) = Command::parse(&bytes) {
            let mut card = CardChannel::new(keys());
            let _ = card.unwrap_command(&command);
            let _ = card.wrap_response(&bytes, Status::Success);
        }
    }

    #[test]
    fn unwrap_command_never_panics_on_sm_shaped_input(
        ins in any::<u8>(),
        objects in prop::collection::vec(
            (prop::sample::select(vec![0x85u8, 0x87, 0x97, 0x8E, 0x99, 0x01]),
             prop::collection::vec(any::<u8>(), 0..40)),
            0..4,
        ),
        authentic in any::<bool>(),
    ) {
        let mut data = Vec::new();
        for (tag, value) in &objects {
            push_header(&mut data, *tag, value.len());
            data.extend_from_slice(value);
        }
        let bytes = if authentic {
            authentic_command([0x0C, ins, 0, 0], &data)
        } else {
            Command::new(0x0C, ins, 0, 0).with_data(&data).with_ne(Some(256)).to_vec().unwrap()
        };
        let mut card = CardChannel::new(keys());
        let result = card.unwrap_command(&Command::parse(&bytes).unwrap());
        if let Ok(plain) = result {
            // Whatever was accepted is a well-formed plain command.
            prop_assert!(Command::parse(&plain).is_ok());
        } else {
            prop_assert!(!card.is_open());
        }
    }

    #[test]
    fn unwrap_response_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut terminal = TerminalChannel::new(keys());
        terminal.wrap_command(&Command::new(0x00, 0xB0, 0, 0).with_ne(Some(256))).unwrap();
        let _ = terminal.unwrap_response(&bytes);
    }

    #[test]
    fn round_trip_both_ways(
        commands in prop::collection::vec(plain_command(), 1..4),
        responses in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..300), any::<u16>()), 4),
    ) {
        let (mut terminal, mut card) = pair();
        for ((cla, ins, p1, p2, data, ne, extended), (response_data, sw)) in
            commands.iter().zip(&responses)
        {
            let mut command = Command::new(*cla, *ins, *p1, *p2).with_data(data).with_ne(*ne);
            if *extended && !(data.is_empty() && ne.is_none()) {
                command = command.extended();
            }
            let response = Response { data: response_data.clone(), status: Status::from(*sw) };
            let protected = terminal.wrap_command(&command).unwrap();
            let plain: Zeroizing<Vec<u8>> =
                card.unwrap_command(&Command::parse(&protected).unwrap()).unwrap();
            prop_assert_eq!(&*plain, &expected_plain(&command));
            let protected_response = card.wrap_response(&response.data, response.status);
            prop_assert_eq!(terminal.unwrap_response(&protected_response).unwrap(), response);
        }
    }
}

#[test]
fn the_terminal_expects_exactly_what_the_card_sends() {
    let (mut terminal, mut card) = pair();
    let data = [0x42; 40];
    for (answer, status) in [
        (&[][..], Status::Success),
        (&data[..], Status::Success),
        (&[][..], Status::FileNotFound),
    ] {
        let wrapped = terminal.wrap_command(&update_binary(&data)).unwrap();
        card.unwrap_command(&Command::parse(&wrapped).unwrap())
            .unwrap();
        let sent = card.wrap_response(answer, status);
        assert_eq!(terminal.expect_response(answer, status).unwrap(), sent);
    }
    assert_eq!(
        terminal.expect_response(&[], Status::Success),
        Err(SmError::OutOfOrder)
    );
}

//! vpcd frames (`vsc_emulator::vpcd`): a byte stream as vpcd would send it, cut into frames the
//! way the emulator's connection does, each message handed to a served VSC that records the
//! session (`vsc_emulator::vsc::VscCard`, `--record`).
//!
//! - Every whole frame decodes, and its message encodes back to the same bytes; what is left
//!   is a truncated frame.
//! - Every command gets a response of at least a status word, which frames and decodes back.
//! - The recording is a finished transcript that parses, one step per well-formed command in
//!   order, and never shows the data of a password command (VERIFY, CHANGE REFERENCE DATA,
//!   RESET RETRY COUNTER, either parity, without secure messaging): it is masked to zero bytes.
//!
//! Input: the first byte picks the catalogue's card, the rest is the stream. As in the session
//! target, an OpenPGP generation of an RSA key is skipped.

use vsc_core::apdu::{Command, SmIndication};
use vsc_core::transcript::{Step, Transcript};
use vsc_emulator::VirtualCard;
use vsc_emulator::vpcd::{FrameError, Message, decode, encode, frame_len};
use vsc_emulator::vsc::VscCard;

/// At most this many frames a run.
pub const MAX_FRAMES: usize = 64;

/// The target's body.
pub fn run(data: &[u8]) {
    let Some((&which, mut stream)) = data.split_first() else {
        return;
    };
    let cards = crate::session::cards();
    let mut card = VscCard::in_memory(cards[usize::from(which) % cards.len()].card());
    let recording = crate::scratch_file("recording.vsct");
    if let Err(error) = card.record_into(&recording) {
        panic!("cannot record: {error}");
    }
    let mut commands: Vec<Vec<u8>> = Vec::new();
    let mut frames = 0;
    while let Some(len) = frame_len(stream) {
        let (frame, rest) = stream.split_at(len);
        stream = rest;
        frames += 1;
        if frames > MAX_FRAMES {
            break;
        }
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => panic!("frame_len said a whole frame is here: {error}"),
        };
        let mut again = Vec::new();
        assert!(message.encode(&mut again).is_ok());
        assert_eq!(again, frame, "a message encodes to its frame");
        match message {
            Message::PowerOff => card.power_off(),
            Message::PowerOn => card.power_on(),
            Message::Reset => card.reset(),
            Message::GetAtr => assert!(!card.atr().is_empty()),
            Message::Apdu(apdu) if crate::session::generates_rsa(apdu, card.state()) => {}
            Message::Apdu(apdu) => {
                let mut response = Vec::new();
                card.transmit(apdu, &mut response);
                assert!(response.len() >= 2, "a response without a status word");
                let mut framed = Vec::new();
                if encode(&response, &mut framed).is_ok() {
                    assert_eq!(decode(&framed), Ok(&response[..]));
                }
                if Command::parse(apdu).is_ok() {
                    commands.push(apdu.to_vec());
                }
            }
            Message::Unknown(body) => assert!(body.len() < 2),
        }
    }
    if frames <= MAX_FRAMES && !stream.is_empty() {
        assert!(
            matches!(decode(stream), Err(FrameError::Truncated { .. })),
            "what is left is a truncated frame"
        );
    }
    check_recording(&mut card, &recording, &commands);
}

fn check_recording(card: &mut VscCard, path: &std::path::Path, commands: &[Vec<u8>]) {
    let finished = card.finish_recording();
    let text = std::fs::read_to_string(path);
    let _ = std::fs::remove_file(path);
    if let Err(error) = finished {
        panic!("the recording does not finish: {error}");
    }
    let text = match text {
        Ok(text) => text,
        Err(error) => panic!("the recording cannot be read: {error}"),
    };
    let transcript = match Transcript::parse(&text) {
        Ok(transcript) => transcript,
        Err(error) => panic!("the recording does not parse: {error}"),
    };
    let recorded: Vec<_> = transcript
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Command { command, .. } => Some(command),
            Step::Reset { .. } | Step::Live { .. } => None,
        })
        .collect();
    assert_eq!(recorded.len(), commands.len(), "one step per command");
    for (sent, recorded) in commands.iter().zip(recorded) {
        let (Ok(sent), recorded) = (Command::parse(sent), recorded.command()) else {
            continue;
        };
        assert_eq!(sent.header(), recorded.header());
        assert_eq!(sent.data.len(), recorded.data.len());
        // Genuine secure messaging is shown, as ciphertext; a plain password command never.
        if sent.class.secure_messaging() == SmIndication::None
            && matches!(sent.ins, 0x20 | 0x21 | 0x24 | 0x25 | 0x2C | 0x2D)
        {
            assert!(
                recorded.data.iter().all(|b| *b == 0),
                "a password command's data is masked in the recording"
            );
        }
    }
}

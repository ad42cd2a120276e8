//! APDU parsing: command APDUs in every ISO 7816-3 case, response APDUs, status words.
//!
//! A command that parses serializes back to the same bytes and is rebuilt the same by the
//! builder; a command that does not parse is answered `6700`. A response of two bytes or more
//! parses and serializes back; every status word is lossless to and from `u16`.

use vsc_core::apdu::{Case, Command, Ins, LengthForm, Response, Status};

/// The target's body.
pub fn run(data: &[u8]) {
    match Command::parse(data) {
        Ok(command) => {
            let encoded = command.to_vec();
            assert_eq!(
                encoded.as_deref(),
                Ok(data),
                "a parsed command serializes back"
            );
            let mut rebuilt =
                Command::new(command.class.byte(), command.ins, command.p1, command.p2)
                    .with_data(command.data)
                    .with_ne(command.ne);
            if command.form == LengthForm::Extended {
                rebuilt = rebuilt.extended();
            }
            assert_eq!(rebuilt, command, "the builder makes the same command");
            let case = match (command.data.is_empty(), command.ne.is_some()) {
                (true, false) => Case::Case1,
                (true, true) => Case::Case2,
                (false, false) => Case::Case3,
                (false, true) => Case::Case4,
            };
            assert_eq!(command.case(), case);
            assert!(
                command
                    .ne
                    .is_none_or(|ne| (1..=vsc_core::apdu::MAX_NE).contains(&ne))
            );
            let debug = format!("{command:?}");
            assert!(
                command.data.len() < 4 || !debug.contains(&format!("{:?}", command.data)),
                "Debug shows no command data"
            );
        }
        Err(error) => assert_eq!(error.status(), Status::WrongLength),
    }
    if let Some(&ins) = data.first()
        && let Some(known) = Ins::from_byte(ins)
    {
        assert_eq!(known.byte(), ins, "instructions are lossless");
    }

    match Response::parse(data) {
        Ok(response) => {
            assert_eq!(response.to_vec(), data, "a response serializes back");
            let sw = response.status.sw();
            assert_eq!(
                Status::from(sw),
                response.status,
                "status words are lossless"
            );
            assert_eq!(response.status.to_bytes(), sw.to_be_bytes());
            assert!(!response.status.meaning().is_empty());
        }
        Err(_) => assert!(data.len() < 2, "two bytes or more are a response"),
    }
}

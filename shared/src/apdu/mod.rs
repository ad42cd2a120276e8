//! APDUs: command APDUs in every ISO 7816-3 case, instructions, response APDUs and status
//! words.

mod command;
mod ins;
mod response;
mod status;

pub use command::{Case, Class, ClassKind, Command, LengthForm, MAX_NE, SmIndication};
pub use ins::Ins;
pub use response::Response;
pub use status::{OtherStatus, Status};

/// Why bytes are not an APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// Fewer bytes than the header (command) or the status word (response) needs.
    #[error("{0} bytes is too short for an APDU")]
    TooShort(usize),
    /// The length field disagrees with the number of bytes that follow.
    #[error("Lc says {nc} data bytes but {body} bytes follow it")]
    LengthMismatch {
        /// Nc, as the Lc field says.
        nc: usize,
        /// The number of bytes after the Lc field.
        body: usize,
    },
    /// An extended Lc of zero (`00 0000`) followed by more bytes.
    #[error("extended Lc is zero")]
    ZeroExtendedLc,
    /// The data or Ne do not fit the length encoding.
    #[error("data or Ne too long for the length encoding")]
    TooLong,
}

impl ApduError {
    /// The status word a card answers to such bytes.
    pub fn status(self) -> Status {
        Status::WrongLength
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Command::parse(&bytes);
        }

        #[test]
        fn parsed_commands_serialize_to_the_same_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 4..300)
        ) {
            if let Ok(command) = Command::parse(&bytes) {
                prop_assert_eq!(command.to_vec().unwrap(), bytes);
            }
        }

        #[test]
        fn built_commands_round_trip(
            cla in any::<u8>(), ins in any::<u8>(), p1 in any::<u8>(), p2 in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..700),
            ne in proptest::option::of(1usize..=MAX_NE),
            extended in any::<bool>(),
        ) {
            let mut command = Command::new(cla, ins, p1, p2).with_data(&data).with_ne(ne);
            if extended && !(data.is_empty() && ne.is_none()) {
                command = command.extended();
            }
            let bytes = command.to_vec().unwrap();
            prop_assert_eq!(Command::parse(&bytes).unwrap(), command);
        }
    }
}

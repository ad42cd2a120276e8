//! Steps: a command with its expected response, or a card reset, each with an optional comment.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::apdu::{ApduError, Class, Command, LengthForm};

use super::header::check_text;
use super::{Expectation, ValueError};

/// One step of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send a command; the response must match.
    Command {
        /// What the step does, e.g. "write EF 5001 holder name".
        comment: Option<Comment>,
        /// The command APDU.
        command: CommandApdu,
        /// What the card must answer.
        expect: Expectation,
    },
    /// A live step: bytes the replayer computes at replay time (a challenge-response), from
    /// the definition here; only in personalization transcripts.
    Live {
        /// What the step does, e.g. "authenticate with the factory PIV management key".
        comment: Option<Comment>,
        /// The step's definition.
        live: super::LiveStep,
    },
    /// Reset the card; a replay then checks the ATR against the header's.
    Reset {
        /// Why the card is reset.
        comment: Option<Comment>,
        /// Cold (power cycle) or warm.
        kind: ResetKind,
    },
}

/// How a card is reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// Power off, then on.
    Cold,
    /// Reset with power kept (PC/SC `SCARD_RESET_CARD`).
    Warm,
}

/// A step's comment: one line of text, non-empty, no control characters, no whitespace at
/// either end.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comment(String);

/// The bytes of a command APDU, checked to parse as one.
///
/// The parsed layout is kept beside the bytes, so [`CommandApdu::command`] gives the
/// [`Command`] view without parsing again.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandApdu {
    bytes: Vec<u8>,
    data: Range<usize>,
    ne: Option<usize>,
    form: LengthForm,
}

impl Step {
    /// The step's comment.
    pub fn comment(&self) -> Option<&Comment> {
        match self {
            Step::Command { comment, .. }
            | Step::Live { comment, .. }
            | Step::Reset { comment, .. } => comment.as_ref(),
        }
    }
}

impl ResetKind {
    /// The name in a `reset` line.
    pub fn label(self) -> &'static str {
        match self {
            ResetKind::Cold => "cold",
            ResetKind::Warm => "warm",
        }
    }
}

impl FromStr for ResetKind {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, ValueError> {
        match text {
            "cold" => Ok(ResetKind::Cold),
            "warm" => Ok(ResetKind::Warm),
            _ => Err(ValueError::UnknownReset),
        }
    }
}

impl Comment {
    /// Checks that the text fits on one comment line and reads back unchanged.
    pub fn new(text: impl Into<String>) -> Result<Self, ValueError> {
        let text = text.into();
        check_text(&text)?;
        Ok(Comment(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Comment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CommandApdu {
    /// Takes bytes that parse as a command APDU.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ApduError> {
        let bytes = bytes.into();
        let command = Command::parse(&bytes)?;
        let data_len = command.data.len();
        let data_start = match (data_len, command.form) {
            (0, _) => 4,
            (_, LengthForm::Short) => 5,
            (_, LengthForm::Extended) => 7,
        };
        let (ne, form) = (command.ne, command.form);
        Ok(CommandApdu {
            data: data_start..data_start + data_len,
            ne,
            form,
            bytes,
        })
    }

    /// Encodes a command.
    pub fn from_command(command: &Command<'_>) -> Result<Self, ApduError> {
        CommandApdu::new(command.to_vec()?)
    }

    /// The APDU bytes, as sent to the card.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The APDU bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The parsed view.
    pub fn command(&self) -> Command<'_> {
        Command {
            class: Class::from(self.bytes[0]),
            ins: self.bytes[1],
            p1: self.bytes[2],
            p2: self.bytes[3],
            data: &self.bytes[self.data.clone()],
            ne: self.ne,
            form: self.form,
        }
    }
}

impl fmt::Debug for CommandApdu {
    /// The command's header and lengths, never its data: it may carry a PIN or a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.command(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_view_matches_a_fresh_parse() {
        for hex in [
            "00A40000",
            "00B0000000",
            "00A4000C023F00",
            "00A4000C023F0000",
            "00B0000000FFFF",
            "00D60000000003AABBCC",
            "00D60000000003AABBCC0000",
        ] {
            let bytes = hex::decode(hex).unwrap();
            let apdu = CommandApdu::new(bytes.clone()).unwrap();
            assert_eq!(apdu.command(), Command::parse(&bytes).unwrap(), "{hex}");
            assert_eq!(apdu.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn malformed_commands_are_refused() {
        assert_eq!(
            CommandApdu::new(vec![0x00, 0xA4, 0x00]),
            Err(ApduError::TooShort(3))
        );
        assert!(matches!(
            CommandApdu::new(vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F]),
            Err(ApduError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn debug_hides_the_data() {
        let apdu = CommandApdu::new(hex::decode("0020008108313233343536FFFF").unwrap()).unwrap();
        let debug = format!("{apdu:?}");
        assert!(!debug.contains("31"), "{debug}");
        assert!(debug.contains("nc: 8"), "{debug}");
    }

    #[test]
    fn comments_stay_on_one_line() {
        assert!(Comment::new("write EF 5001 holder name").is_ok());
        assert_eq!(Comment::new("a\nb"), Err(ValueError::Text));
        assert_eq!(Comment::new(" a"), Err(ValueError::Text));
        assert_eq!(Comment::new(""), Err(ValueError::Text));
    }
}

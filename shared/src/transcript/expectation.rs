//! Expected responses: exact bytes, a nibble pattern, or (sessions and scriptor scripts only)
//! anything.

use std::fmt;

use super::{ValueError, hexdigits};

/// What a step's response must be.
///
/// Every checked expectation ends in a status word (at least 2 bytes) and fixes the response
/// length. A pattern leaves some nibbles free (`63C?`); a pattern without a free nibble is
/// [exact](Expectation::as_exact), so each expectation has one form and one printed text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Expectation(Expected);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Expected {
    Exact(Vec<u8>),
    /// `value` has its free nibbles zero; `care` is `F` per fixed nibble and `0` per free one,
    /// with at least one free nibble.
    Pattern {
        value: Vec<u8>,
        care: Vec<u8>,
    },
    Any,
}

impl Expectation {
    /// The response, byte for byte.
    pub fn exact(response: impl Into<Vec<u8>>) -> Result<Self, ValueError> {
        let response = response.into();
        check_status_word(response.len())?;
        Ok(Expectation(Expected::Exact(response)))
    }

    /// A response of `value.len()` bytes whose nibbles equal `value`'s wherever `care` has
    /// `F`. Each care byte is `00`, `0F`, `F0` or `FF`.
    pub fn masked(value: &[u8], care: &[u8]) -> Result<Self, ValueError> {
        if value.len() != care.len() {
            return Err(ValueError::MaskLength {
                value: value.len(),
                care: care.len(),
            });
        }
        if let Some(bad) = care
            .iter()
            .find(|c| !matches!(c, 0x00 | 0x0F | 0xF0 | 0xFF))
        {
            return Err(ValueError::MaskNibble(*bad));
        }
        check_status_word(value.len())?;
        if care.iter().all(|c| *c == 0xFF) {
            return Ok(Expectation(Expected::Exact(value.to_vec())));
        }
        let value = value.iter().zip(care).map(|(v, c)| v & c).collect();
        Ok(Expectation(Expected::Pattern {
            value,
            care: care.to_vec(),
        }))
    }

    /// Any response; allowed only in session transcripts and imported scriptor scripts.
    pub fn any() -> Self {
        Expectation(Expected::Any)
    }

    /// Whether `response` is what is expected.
    pub fn matches(&self, response: &[u8]) -> bool {
        match &self.0 {
            Expected::Exact(bytes) => bytes == response,
            Expected::Pattern { value, care } => {
                response.len() == value.len()
                    && response
                        .iter()
                        .zip(value.iter().zip(care))
                        .all(|(r, (v, c))| r & c == *v)
            }
            Expected::Any => true,
        }
    }

    /// The length a matching response has; `None` when the response is not checked.
    pub fn response_len(&self) -> Option<usize> {
        match &self.0 {
            Expected::Exact(bytes) => Some(bytes.len()),
            Expected::Pattern { value, .. } => Some(value.len()),
            Expected::Any => None,
        }
    }

    /// Whether the response is not checked at all.
    pub fn is_any(&self) -> bool {
        matches!(self.0, Expected::Any)
    }

    /// The exact response, when no nibble is free.
    pub fn as_exact(&self) -> Option<&[u8]> {
        match &self.0 {
            Expected::Exact(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Parses the text of a `<` line: `*`, or uppercase hex with `?` for free nibbles.
    pub(super) fn parse(text: &str) -> Result<Self, ExpectationFault> {
        if text == "*" {
            return Ok(Expectation::any());
        }
        // Most responses are exact: decode them without building a care mask.
        if let Ok(response) = hexdigits::decode(text) {
            return match response.len() {
                0 | 1 => Err(ExpectationFault::NoStatusWord(response.len())),
                _ => Ok(Expectation(Expected::Exact(response))),
            };
        }
        let (value, care) = hexdigits::decode_pattern(text).map_err(ExpectationFault::Hex)?;
        if value.len() < 2 {
            return Err(ExpectationFault::NoStatusWord(value.len()));
        }
        if care.iter().all(|c| *c == 0xFF) {
            Ok(Expectation(Expected::Exact(value)))
        } else {
            Ok(Expectation(Expected::Pattern { value, care }))
        }
    }

    /// Appends the text of a `<` line.
    pub(super) fn print_into(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Expected::Exact(bytes) => hexdigits::encode_into(bytes, out),
            Expected::Pattern { value, care } => hexdigits::encode_pattern_into(value, care, out),
            Expected::Any => out.push(b'*'),
        }
    }
}

/// Why the text of a `<` line is not an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExpectationFault {
    Hex(hexdigits::HexFault),
    NoStatusWord(usize),
}

fn check_status_word(len: usize) -> Result<(), ValueError> {
    if len < 2 {
        Err(ValueError::NoStatusWord(len))
    } else {
        Ok(())
    }
}

impl fmt::Display for Expectation {
    /// The notation of a `<` line: `9000`, `63C?`, `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.print_into(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl fmt::Debug for Expectation {
    /// The length and the status word, never the response data: it may be private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (value, care) = match &self.0 {
            Expected::Exact(bytes) => (bytes, None),
            Expected::Pattern { value, care } => (value, Some(care)),
            Expected::Any => return f.write_str("Expectation(*)"),
        };
        let tail = value.len() - 2;
        let mut status = Vec::with_capacity(4);
        match care {
            Some(care) => {
                hexdigits::encode_pattern_into(&value[tail..], &care[tail..], &mut status)
            }
            None => hexdigits::encode_into(&value[tail..], &mut status),
        }
        write!(
            f,
            "Expectation(len {}, status {})",
            value.len(),
            String::from_utf8_lossy(&status)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Expectation {
        Expectation::parse(text).unwrap()
    }

    #[test]
    fn tries_left_pattern() {
        let tries = pattern("63C?");
        assert!(tries.matches(&[0x63, 0xC2]));
        assert!(tries.matches(&[0x63, 0xCF]));
        assert!(!tries.matches(&[0x63, 0xB2]));
        assert!(!tries.matches(&[0x00, 0x63, 0xC2]));
        assert_eq!(tries.response_len(), Some(2));
        assert_eq!(tries.to_string(), "63C?");
    }

    #[test]
    fn challenge_pattern_fixes_the_length() {
        let challenge = pattern("????????????????9000");
        assert!(challenge.matches(&hex::decode("0123456789ABCDEF9000").unwrap()));
        assert!(!challenge.matches(&hex::decode("0123456789ABCD9000").unwrap()));
        assert!(!challenge.matches(&hex::decode("0123456789ABCDEF6A82").unwrap()));
    }

    #[test]
    fn exact_and_unmasked_patterns_are_one_form() {
        assert_eq!(
            pattern("9000"),
            Expectation::exact(vec![0x90, 0x00]).unwrap()
        );
        assert_eq!(
            Expectation::masked(&[0x90, 0x00], &[0xFF, 0xFF]).unwrap(),
            Expectation::exact(vec![0x90, 0x00]).unwrap()
        );
        assert_eq!(
            Expectation::masked(&[0x63, 0xC3], &[0xFF, 0xF0]).unwrap(),
            pattern("63C?")
        );
        assert_eq!(pattern("9000").as_exact(), Some(&[0x90, 0x00][..]));
    }

    #[test]
    fn a_status_word_is_required() {
        assert_eq!(
            Expectation::exact(vec![0x90]),
            Err(ValueError::NoStatusWord(1))
        );
        assert_eq!(
            Expectation::parse("??"),
            Err(ExpectationFault::NoStatusWord(1))
        );
        assert_eq!(
            Expectation::masked(&[0x90, 0x00], &[0xFF, 0x80]),
            Err(ValueError::MaskNibble(0x80))
        );
        assert_eq!(
            Expectation::masked(&[0x90, 0x00], &[0xFF]),
            Err(ValueError::MaskLength { value: 2, care: 1 })
        );
    }

    #[test]
    fn any_matches_everything_and_prints_a_star() {
        assert!(Expectation::any().matches(&[]));
        assert_eq!(Expectation::any().response_len(), None);
        assert_eq!(pattern("*"), Expectation::any());
        assert_eq!(Expectation::any().to_string(), "*");
    }

    #[test]
    fn debug_hides_the_data() {
        let debug = format!("{:?}", pattern("31323334????9000"));
        assert_eq!(debug, "Expectation(len 8, status 9000)");
    }
}

//! Uppercase hex as transcripts write it: a table-driven encoder and a strict decoder.
//!
//! The `hex` crate accepts both cases and knows no wildcard nibble; a transcript accepts
//! uppercase only (its digest covers the exact bytes) and needs `?` in response patterns, so the
//! two small loops live here.

const DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// The two ASCII digits of every byte value.
static PAIRS: [[u8; 2]; 256] = pairs();

const fn pairs() -> [[u8; 2]; 256] {
    let mut table = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0F]];
        byte += 1;
    }
    table
}

/// What a decoder finds in one character.
const WILD: u8 = 0x10;
const LOWER: u8 = 0x20;
const INVALID: u8 = 0xFF;

static NIBBLES: [u8; 256] = nibbles();

const fn nibbles() -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut digit = 0;
    while digit < 16 {
        table[DIGITS[digit] as usize] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[(b'a' + letter) as usize] = LOWER;
        letter += 1;
    }
    table[b'?' as usize] = WILD;
    table
}

/// Why a hex field does not decode; `index` is the byte offset of the culprit in the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HexFault {
    /// A character that is no hex digit.
    NotHex { index: usize },
    /// A lowercase hex digit.
    Lowercase { index: usize },
    /// A `?` where exact bytes are required.
    Wildcard { index: usize },
    /// An odd number of nibbles.
    OddCount(usize),
}

/// Appends the uppercase hex of `bytes`.
pub(super) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    for (pair, byte) in out[start..].chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
    }
}

/// Appends the uppercase hex of `value`, with `?` for every nibble whose `care` bits are zero.
pub(super) fn encode_pattern_into(value: &[u8], care: &[u8], out: &mut Vec<u8>) {
    out.reserve(2 * value.len());
    for (byte, mask) in value.iter().zip(care) {
        let [high, low] = PAIRS[usize::from(*byte)];
        out.push(if mask & 0xF0 == 0 { b'?' } else { high });
        out.push(if mask & 0x0F == 0 { b'?' } else { low });
    }
}

/// Decodes uppercase hex, no wildcard.
pub(super) fn decode(text: &str) -> Result<Vec<u8>, HexFault> {
    let digits = text.as_bytes();
    if digits.len() % 2 == 1 {
        return Err(first_fault(digits, false));
    }
    // Arithmetic without branches, so the loop vectorizes; the culprit of a failure is looked
    // for afterwards.
    let mut out = vec![0; digits.len() / 2];
    let mut valid = true;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, high_valid) = upper_digit(pair[0]);
        let (low, low_valid) = upper_digit(pair[1]);
        valid &= high_valid & low_valid;
        *byte = high << 4 | low;
    }
    if !valid {
        return Err(first_fault(digits, false));
    }
    Ok(out)
}

/// The value of an uppercase hex digit, and whether it is one.
fn upper_digit(digit: u8) -> (u8, bool) {
    let decimal = digit.wrapping_sub(b'0');
    let letter = digit.wrapping_sub(b'A');
    let is_decimal = decimal < 10;
    let value = if is_decimal {
        decimal
    } else {
        letter.wrapping_add(10)
    };
    (value, is_decimal | (letter < 6))
}

/// Decodes uppercase hex with `?` nibbles into the value (wild nibbles zero) and the care mask
/// (`F` per fixed nibble, `0` per wild one).
pub(super) fn decode_pattern(text: &str) -> Result<(Vec<u8>, Vec<u8>), HexFault> {
    let digits = text.as_bytes();
    if digits.len() % 2 == 1 {
        return Err(first_fault(digits, true));
    }
    let mut value = Vec::with_capacity(digits.len() / 2);
    let mut care = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let (high, high_care) = pattern_nibble(NIBBLES[usize::from(pair[0])]);
        let (low, low_care) = pattern_nibble(NIBBLES[usize::from(pair[1])]);
        if (high | low) & 0xF0 != 0 {
            return Err(first_fault(digits, true));
        }
        value.push(high << 4 | low);
        care.push(high_care << 4 | low_care);
    }
    Ok((value, care))
}

/// The first reason `digits` do not decode, in reading order; an odd count only when every
/// character is fine.
fn first_fault(digits: &[u8], wild_allowed: bool) -> HexFault {
    for (index, digit) in digits.iter().enumerate() {
        match NIBBLES[usize::from(*digit)] {
            INVALID => return HexFault::NotHex { index },
            LOWER => return HexFault::Lowercase { index },
            WILD if !wild_allowed => return HexFault::Wildcard { index },
            _ => {}
        }
    }
    HexFault::OddCount(digits.len())
}

/// A wild nibble as value 0, care 0; anything else as itself, care `F`.
fn pattern_nibble(value: u8) -> (u8, u8) {
    if value == WILD { (0, 0) } else { (value, 0x0F) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_byte_like_the_hex_crate_in_uppercase() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode_into(&bytes, &mut out);
        assert_eq!(out, hex::encode_upper(&bytes).into_bytes());
    }

    #[test]
    fn decodes_uppercase_only() {
        assert_eq!(decode("00A4FF"), Ok(vec![0x00, 0xA4, 0xFF]));
        assert_eq!(decode(""), Ok(vec![]));
        assert_eq!(decode("00a4"), Err(HexFault::Lowercase { index: 2 }));
        assert_eq!(decode("00G4"), Err(HexFault::NotHex { index: 2 }));
        assert_eq!(decode("00A"), Err(HexFault::OddCount(3)));
        assert_eq!(decode("0?"), Err(HexFault::Wildcard { index: 1 }));
        assert_eq!(decode("0é"), Err(HexFault::NotHex { index: 1 }));
    }

    #[test]
    fn patterns_keep_wild_nibbles_apart() {
        assert_eq!(
            decode_pattern("63C?"),
            Ok((vec![0x63, 0xC0], vec![0xFF, 0xF0]))
        );
        assert_eq!(decode_pattern("?A"), Ok((vec![0x0A], vec![0x0F])));
        let mut out = Vec::new();
        encode_pattern_into(&[0x63, 0xC0, 0x0A], &[0xFF, 0xF0, 0x0F], &mut out);
        assert_eq!(out, b"63C??A");
    }
}

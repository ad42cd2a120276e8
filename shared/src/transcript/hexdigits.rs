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
    check_even(digits)?;
    let mut out = Vec::with_capacity(digits.len() / 2);
    for (index, pair) in digits.chunks_exact(2).enumerate() {
        let high = nibble(pair[0], 2 * index)?;
        let low = nibble(pair[1], 2 * index + 1)?;
        if high == WILD {
            return Err(HexFault::Wildcard { index: 2 * index });
        }
        if low == WILD {
            return Err(HexFault::Wildcard {
                index: 2 * index + 1,
            });
        }
        out.push(high << 4 | low);
    }
    Ok(out)
}

/// Decodes uppercase hex with `?` nibbles into the value (wild nibbles zero) and the care mask
/// (`F` per fixed nibble, `0` per wild one).
pub(super) fn decode_pattern(text: &str) -> Result<(Vec<u8>, Vec<u8>), HexFault> {
    let digits = text.as_bytes();
    check_even(digits)?;
    let mut value = Vec::with_capacity(digits.len() / 2);
    let mut care = Vec::with_capacity(digits.len() / 2);
    for (index, pair) in digits.chunks_exact(2).enumerate() {
        let (high, high_care) = pattern_nibble(nibble(pair[0], 2 * index)?);
        let (low, low_care) = pattern_nibble(nibble(pair[1], 2 * index + 1)?);
        value.push(high << 4 | low);
        care.push(high_care << 4 | low_care);
    }
    Ok((value, care))
}

fn check_even(digits: &[u8]) -> Result<(), HexFault> {
    // A non-ASCII character counts as one culprit, not as its UTF-8 bytes: report it first.
    if let Some(index) = digits.iter().position(|b| !b.is_ascii()) {
        return Err(HexFault::NotHex { index });
    }
    if digits.len() % 2 == 1 {
        return Err(HexFault::OddCount(digits.len()));
    }
    Ok(())
}

fn nibble(digit: u8, index: usize) -> Result<u8, HexFault> {
    match NIBBLES[usize::from(digit)] {
        INVALID => Err(HexFault::NotHex { index }),
        LOWER => Err(HexFault::Lowercase { index }),
        value => Ok(value),
    }
}

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

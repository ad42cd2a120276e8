//! The answer to reset: T=1, and historical bytes that advertise what the card OS supports
//! (extended length, command chaining, the selection methods) and its life cycle.

/// The ATR bytes before the historical bytes: TS, T0 (TD1 present, K historical bytes), TD1
/// (TD2 present, T=1), TD2 (TA3 and TB3 present, T=1), TA3 (IFSC 254), TB3 (BWI 4, CWI 5).
const INTERFACE: [u8; 6] = [0x3B, 0x80, 0x81, 0x31, 0xFE, 0x45];

/// The ATR of a card in life cycle state `lcs` (ISO 7816-4 LCS byte).
///
/// Historical bytes (ISO 7816-4 §8.1.1, category `80`, compact-TLV):
/// - `73 F6 21 C0`: card capabilities: DF selection by full and partial name, by path and by
///   FID, short EF identifiers and record numbers; proprietary write behaviour, one-byte data
///   units; command chaining and extended Lc/Le, no logical channels;
/// - `53 56 53 43`: card issuer's data, "VSC";
/// - `81 xx`: status indicator, the card's life cycle status.
pub fn atr(lcs: u8) -> Vec<u8> {
    let historical = [
        0x80, 0x73, 0xF6, 0x21, 0xC0, 0x53, 0x56, 0x53, 0x43, 0x81, lcs,
    ];
    let mut out = INTERFACE.to_vec();
    out[1] |= historical.len() as u8;
    out.extend_from_slice(&historical);
    // TCK: every byte from T0 to the last historical byte XORs with it to zero.
    let tck = out[1..].iter().fold(0, |acc, b| acc ^ b);
    out.push(tck);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_byte_and_structure() {
        for lcs in [0x01, 0x03, 0x05] {
            let atr = atr(lcs);
            assert_eq!(atr[0], 0x3B);
            assert_eq!(usize::from(atr[1] & 0x0F), 11, "K historical bytes");
            assert_eq!(atr.len(), 6 + 11 + 1);
            assert_eq!(atr[1..].iter().fold(0, |acc, b| acc ^ b), 0, "TCK");
        }
        assert_eq!(
            hex::encode_upper(atr(0x05)),
            "3B8B8131FE458073F621C0535653438105F5"
        );
    }
}

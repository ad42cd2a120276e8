//! The SM data objects (ISO 7816-4 §10): their tags, the BER-TLV header of one, and the
//! splitting of a data field into them (BER-TLV parsing by `iso7816-tlv`).

use iso7816_tlv::ber::{Tlv, Value};

/// DO`87`: padding-content indicator then cryptogram (even INS, and every response).
pub(super) const TAG_PADDED_CRYPTOGRAM: u8 = 0x87;
/// DO`85`: cryptogram without indicator (odd INS, whose data is BER-TLV).
pub(super) const TAG_CRYPTOGRAM: u8 = 0x85;
/// DO`97`: Le, one or two bytes.
pub(super) const TAG_LE: u8 = 0x97;
/// DO`99`: the processing status, SW1-SW2.
pub(super) const TAG_STATUS: u8 = 0x99;
/// DO`8E`: the cryptographic checksum (MAC).
pub(super) const TAG_MAC: u8 = 0x8E;
/// The padding-content indicator of DO`87`: padding as ISO/IEC 9797-1 method 2.
pub(super) const PADDING_INDICATOR: u8 = 0x01;

/// A data object within a data field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DataObject<'a> {
    /// The one-byte tag.
    pub tag: u8,
    /// The value bytes.
    pub value: &'a [u8],
    /// Where the object starts in the data field (the MAC covers everything before DO`8E`).
    pub start: usize,
}

/// Data objects that are not BER-TLV, or carry a tag outside the expected set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Malformed;

/// The length of the header (tag and BER length) of a data object with `len` value bytes.
pub(super) fn header_len(len: usize) -> usize {
    match len {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0xFFFF => 4,
        _ => 5,
    }
}

/// Appends a one-byte tag and the BER length of `len` (at most 2²⁴ − 1; callers stay within
/// extended APDU sizes).
pub(super) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    let [_, b2, b1, b0] = (len as u32).to_be_bytes();
    match len {
        0..=0x7F => out.push(b0),
        0x80..=0xFF => out.extend_from_slice(&[0x81, b0]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, b1, b0]),
        _ => out.extend_from_slice(&[0x83, b2, b1, b0]),
    }
}

/// Splits `data` into primitive data objects whose one-byte tags are in `allowed`.
///
/// The tag is checked before `iso7816-tlv` parses an object, so no constructed object (whose
/// parsing nests) is ever parsed from untrusted bytes.
pub(super) fn parse<'a>(data: &'a [u8], allowed: &[u8]) -> Result<Vec<DataObject<'a>>, Malformed> {
    let mut objects = Vec::with_capacity(4);
    let mut rest = data;
    while let Some(&tag) = rest.first() {
        if !allowed.contains(&tag) {
            return Err(Malformed);
        }
        let start = data.len() - rest.len();
        let (tlv, next) = Tlv::parse(rest);
        let value_len = match tlv.as_ref().map(Tlv::value) {
            Ok(Value::Primitive(value)) => value.len(),
            _ => return Err(Malformed),
        };
        let end = data.len() - next.len();
        let value = end
            .checked_sub(value_len)
            .and_then(|value_start| data.get(value_start..end))
            .ok_or(Malformed)?;
        objects.push(DataObject { tag, value, start });
        rest = next;
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[u8] = &[
        TAG_PADDED_CRYPTOGRAM,
        TAG_CRYPTOGRAM,
        TAG_LE,
        TAG_STATUS,
        TAG_MAC,
    ];

    #[test]
    fn headers_use_the_shortest_ber_length() {
        for (len, expected) in [
            (0, "8700"),
            (0x7F, "877f"),
            (0x80, "878180"),
            (0xFF, "8781ff"),
            (0x100, "87820100"),
            (0xFFFF, "8782ffff"),
            (0x10000, "8783010000"),
        ] {
            let mut out = Vec::new();
            push_header(&mut out, 0x87, len);
            assert_eq!(hex::encode(&out), expected);
            assert_eq!(out.len(), header_len(len));
        }
    }

    #[test]
    fn parses_objects_with_their_offsets() {
        let data = hex::decode("8703010203970100 8e080102030405060708".replace(' ', "")).unwrap();
        let objects = parse(&data, ALL).unwrap();
        assert_eq!(objects.len(), 3);
        assert_eq!(
            objects[0],
            DataObject {
                tag: 0x87,
                value: &[1, 2, 3],
                start: 0
            }
        );
        assert_eq!(
            (objects[1].tag, objects[1].value, objects[1].start),
            (0x97, &[0][..], 5)
        );
        assert_eq!((objects[2].tag, objects[2].start), (0x8E, 8));
        assert_eq!(objects[2].value, [1, 2, 3, 4, 5, 6, 7, 8]);
        // A long-form length.
        let mut long = vec![0x87, 0x81, 0x80];
        long.extend([0xAA; 0x80]);
        assert_eq!(parse(&long, ALL).unwrap()[0].value.len(), 0x80);
    }

    #[test]
    fn refuses_malformed_data() {
        for bad in [
            "8704010203",             // value shorter than its length
            "87",                     // no length
            "8781",                   // long form without its byte
            "8785ffffffffff00",       // a length of five bytes
            "7103010203",             // tag outside the set
            "a0028e00",               // constructed tag
            "8e08010203040506070800", // trailing byte that is no object
        ] {
            assert_eq!(
                parse(&hex::decode(bad).unwrap(), ALL),
                Err(Malformed),
                "{bad}"
            );
        }
        assert_eq!(parse(&[], ALL), Ok(vec![]));
    }

    #[test]
    fn deeply_nested_constructed_objects_are_not_parsed() {
        // 30 000 nested constructed objects would overflow a recursive parser's stack.
        let nested: Vec<u8> = [0xA0, 0x80].repeat(30_000);
        assert_eq!(parse(&nested, ALL), Err(Malformed));
    }
}

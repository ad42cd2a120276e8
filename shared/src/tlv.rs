//! BER-TLV through the `iso7816-tlv` crate: the card's own helpers for building FCP templates and
//! for reading command data safely.

use iso7816_tlv::ber::{Tag, Tlv, Value};

use crate::apdu::Status;

/// The deepest nesting of constructed data objects the card accepts.
///
/// `iso7816-tlv` parses constructed objects recursively, one stack frame per level, so bytes
/// nested thousands of levels deep would overflow the stack. No card data object nests this
/// deep; anything deeper is refused before the crate sees it.
pub const MAX_DEPTH: usize = 16;

/// Parses `bytes` as a sequence of BER-TLV data objects, all of them, nothing left over.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, Status> {
    check_depth(bytes)?;
    let mut objects = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (parsed, tail) = Tlv::parse(rest);
        objects.push(parsed.map_err(|_| Status::IncorrectData)?);
        rest = tail;
    }
    Ok(objects)
}

/// Parses `bytes` as exactly one BER-TLV data object.
pub fn parse_one(bytes: &[u8]) -> Result<Tlv, Status> {
    check_depth(bytes)?;
    Tlv::from_bytes(bytes).map_err(|_| Status::IncorrectData)
}

/// The value of a primitive data object, or `None` for a constructed one.
pub fn primitive(tlv: &Tlv) -> Option<&[u8]> {
    match tlv.value() {
        Value::Primitive(bytes) => Some(bytes),
        Value::Constructed(_) => None,
    }
}

/// The first primitive object with `tag` among `objects`, by value.
pub fn find_primitive(objects: &[Tlv], tag: u16) -> Option<&[u8]> {
    objects
        .iter()
        .find(|tlv| tag_number(tlv.tag()) == tag)
        .and_then(primitive)
}

/// A tag of one or two bytes as the number its bytes spell, e.g. `0x5F20`.
pub fn tag_number(tag: &Tag) -> u16 {
    match tag.to_bytes() {
        [one] => u16::from(*one),
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        // Three-byte tags are never card tags; map them where no card tag lives.
        _ => 0,
    }
}

/// Appends a primitive object to `out` (a definite length of 1 to 3 bytes).
pub fn push_primitive(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    push_length(out, value.len());
    out.extend_from_slice(value);
}

/// Appends a BER length field for `len` (at most 65 535).
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            let [hi, lo] = (len.min(0xFFFF) as u16).to_be_bytes();
            out.extend_from_slice(&[0x82, hi, lo]);
        }
    }
}

/// Wraps what `body` appends to `out` in a constructed object with `tag`.
pub fn push_constructed(out: &mut Vec<u8>, tag: &[u8], body: impl FnOnce(&mut Vec<u8>)) {
    let mut content = Vec::new();
    body(&mut content);
    push_primitive(out, tag, &content);
}

/// Refuses nesting deeper than [`MAX_DEPTH`], walking only tag and length fields.
fn check_depth(bytes: &[u8]) -> Result<(), Status> {
    // Ends of the enclosing constructed objects, innermost last.
    let mut ends: Vec<usize> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        while ends.last() == Some(&at) {
            ends.pop();
        }
        let first = bytes[at];
        let constructed = first & 0x20 != 0;
        at += 1;
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes: b8 set on all but the last.
            while bytes.get(at).is_some_and(|b| b & 0x80 != 0) {
                at += 1;
            }
            at += 1;
        }
        let len_byte = *bytes.get(at).ok_or(Status::IncorrectData)?;
        at += 1;
        let len = if len_byte & 0x80 == 0 {
            usize::from(len_byte)
        } else {
            let n = usize::from(len_byte & 0x7F);
            let field = bytes.get(at..at + n).ok_or(Status::IncorrectData)?;
            at += n;
            field.iter().fold(0usize, |acc, b| {
                acc.saturating_mul(256).saturating_add(usize::from(*b))
            })
        };
        if constructed {
            ends.push(at.saturating_add(len));
            if ends.len() > MAX_DEPTH {
                return Err(Status::IncorrectData);
            }
        } else {
            at = at.saturating_add(len);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut bytes = vec![0x80, 0x00];
        for _ in 0..20_000 {
            let len = bytes.len();
            let mut outer = vec![0x61, 0x82, (len >> 8) as u8, len as u8];
            outer.extend(bytes);
            bytes = outer;
            if bytes.len() > 60_000 {
                break;
            }
        }
        assert_eq!(parse_all(&bytes).unwrap_err(), Status::IncorrectData);
    }

    #[test]
    fn shallow_objects_parse() {
        let objects = parse_all(&hex::decode("5F20034142436106800101810101").unwrap()).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(find_primitive(&objects, 0x5F20), Some(&b"ABC"[..]));
        assert_eq!(tag_number(objects[1].tag()), 0x61);
        assert!(parse_all(&[0x5F, 0x20, 0x05, 0x41]).is_err(), "truncated");
        assert!(
            parse_one(&hex::decode("80010181").unwrap()).is_err(),
            "trailing bytes"
        );
    }

    #[test]
    fn lengths() {
        for len in [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF] {
            let mut out = Vec::new();
            push_primitive(&mut out, &[0x53], &vec![0xAB; len]);
            let tlv = parse_one(&out).unwrap();
            assert_eq!(primitive(&tlv).map(<[u8]>::len), Some(len));
        }
    }
}

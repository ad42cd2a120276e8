//! BER-TLV (`vsc_core::tlv`): what parses re-encodes to objects that parse the same, nesting
//! deeper than the card accepts is refused before the crate sees it, and a value wrapped by the
//! card's own encoder parses back whole.

use vsc_core::tlv;

/// The target's body.
pub fn run(data: &[u8]) {
    if let Ok(objects) = tlv::parse_all(data) {
        let encoded: Vec<u8> = objects.iter().flat_map(|object| object.to_vec()).collect();
        let again = tlv::parse_all(&encoded);
        assert_eq!(
            again.as_ref(),
            Ok(&objects),
            "re-encoded objects parse the same"
        );
        for object in &objects {
            let _ = tlv::tag_number(object.tag());
            let _ = tlv::primitive(object);
        }
        let _ = tlv::find_primitive(&objects, 0x5F20);
    }
    if let Ok(object) = tlv::parse_one(data) {
        assert_eq!(tlv::parse_all(data).map(|all| all.len()), Ok(1));
        let _ = object.to_vec();
    }
    let value = &data[..data.len().min(0xFFFF)];
    let mut wrapped = Vec::new();
    tlv::push_primitive(&mut wrapped, &[0x53], value);
    let object = tlv::parse_one(&wrapped);
    assert_eq!(
        object.as_ref().ok().and_then(tlv::primitive),
        Some(value),
        "a value the card wraps parses back"
    );
    let mut nested = Vec::new();
    tlv::push_constructed(&mut nested, &[0x7F, 0x49], |out| {
        tlv::push_primitive(out, &[0x86], &value[..value.len().min(0xFF00)]);
    });
    assert!(
        tlv::parse_one(&nested).is_ok(),
        "a constructed object the card builds parses"
    );
}

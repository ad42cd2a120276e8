//! Any changed, deleted or inserted character and any truncation is an error.

use super::*;

#[test]
fn every_changed_character_is_detected() {
    let text = seal(SAMPLE_BODY);
    for (index, original) in text.char_indices() {
        for replacement in ['0', 'A', 'a', ' ', '\n', '?', '#', 'é'] {
            if replacement == original {
                continue;
            }
            let mut tampered = text.clone();
            tampered.replace_range(index..index + original.len_utf8(), &replacement.to_string());
            assert!(
                Transcript::parse(&tampered).is_err(),
                "{original:?} -> {replacement:?} at {index} went unnoticed"
            );
        }
    }
}

#[test]
fn every_deleted_or_inserted_character_is_detected() {
    let text = seal(SAMPLE_BODY);
    for (index, original) in text.char_indices() {
        let mut shorter = text.clone();
        shorter.replace_range(index..index + original.len_utf8(), "");
        assert!(Transcript::parse(&shorter).is_err(), "deleting at {index}");
        let mut longer = text.clone();
        longer.insert(index, 'A');
        assert!(Transcript::parse(&longer).is_err(), "inserting at {index}");
    }
}

#[test]
fn every_truncation_is_detected() {
    let text = seal(SAMPLE_BODY);
    for end in 0..text.len() {
        assert!(Transcript::parse(&text[..end]).is_err(), "cut at {end}");
    }
}

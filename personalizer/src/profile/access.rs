//! Access rules written readably in a profile: `always`, `never`, `pin`, `channel`, `key 3`, and
//! one kind of combination, `pin or key 3` or `pin and key 3`.

use vsc_core::fs::Condition;

/// Parses a readable access rule into the card's security condition.
///
/// Words are case-insensitive and separated by spaces. `key N` takes a decimal reference 1 to
/// 15 (keys 16 to 31 cannot guard files). `and` and `or` may not be mixed in one rule, and one
/// rule can name at most one key: that is what a single SC byte can say.
pub fn parse_condition(rule: &str) -> Result<Condition, String> {
    let lower = rule.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        [] => return Err("it is empty".to_string()),
        ["always"] => return Ok(Condition::ALWAYS),
        ["never"] => return Ok(Condition::NEVER),
        _ => {}
    }
    let mut terms = Vec::new();
    let mut joiner: Option<&str> = None;
    let mut rest = words.as_slice();
    loop {
        let (term, after) = match rest {
            ["pin", after @ ..] => (Condition::USER_PIN, after),
            ["channel", after @ ..] => (Condition::CHANNEL, after),
            ["key", number, after @ ..] => (key(number)?, after),
            ["key"] => return Err("`key` needs a reference, e.g. key 3".to_string()),
            ["always" | "never", ..] => {
                return Err("always and never stand alone".to_string());
            }
            [word, ..] => return Err(format!("`{word}` is not pin, channel or key N")),
            [] => return Err("it ends with and/or".to_string()),
        };
        terms.push(term);
        match after {
            [] => break,
            [word @ ("and" | "or"), more @ ..] => {
                if joiner.is_some_and(|j| j != *word) {
                    return Err("and and or cannot be mixed in one rule".to_string());
                }
                joiner = Some(word);
                rest = more;
            }
            [word, ..] => return Err(format!("expected and/or, found `{word}`")),
        }
    }
    let mut combined = terms[0];
    for term in &terms[1..] {
        if terms.iter().filter(|t| **t == *term).count() > 1 {
            return Err("a condition is named twice".to_string());
        }
        combined = match joiner {
            Some("and") => combined.and(*term),
            _ => combined.or(*term),
        }
        .map_err(|_| "one rule can name only one key".to_string())?;
    }
    Ok(combined)
}

fn key(number: &str) -> Result<Condition, String> {
    let reference: u8 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a key reference (1 to 15)"))?;
    Condition::key(reference)
        .map_err(|_| format!("key {reference}: only keys 1 to 15 can guard files"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_rules_become_sc_bytes() {
        let byte = |rule| parse_condition(rule).map(Condition::byte);
        assert_eq!(byte("always"), Ok(0x00));
        assert_eq!(byte("NEVER"), Ok(0xFF));
        assert_eq!(byte("pin"), Ok(0x10));
        assert_eq!(byte("channel"), Ok(0x40));
        assert_eq!(byte("key 3"), Ok(0x23));
        assert_eq!(byte("pin or key 3"), Ok(0x33));
        assert_eq!(byte("pin  and key 3"), Ok(0xB3));
        assert_eq!(byte("pin and key 3 and channel"), Ok(0xF3));
    }

    #[test]
    fn malformed_rules_say_why() {
        for (rule, reason) in [
            ("", "empty"),
            ("pin or", "ends with"),
            ("pin or key 3 and channel", "mixed"),
            ("key 16", "1 to 15"),
            ("key x", "not a key reference"),
            ("key", "needs a reference"),
            ("key 1 or key 2", "only one key"),
            ("pin or pin", "twice"),
            ("always or pin", "stand alone"),
            ("pin key 3", "expected and/or"),
            ("admin", "is not pin"),
        ] {
            let error = parse_condition(rule).unwrap_err();
            assert!(error.contains(reason), "{rule}: {error}");
        }
    }
}

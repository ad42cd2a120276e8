//! Round trips and robustness over generated transcripts and text.

use super::*;

fn arb_command() -> impl Strategy<Value = CommandApdu> {
    (
        any::<[u8; 4]>(),
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::option::of(1usize..=MAX_NE),
        any::<bool>(),
    )
        .prop_map(|([cla, ins, p1, p2], data, ne, extended)| {
            let mut command = Command::new(cla, ins, p1, p2).with_data(&data).with_ne(ne);
            if extended && !(data.is_empty() && ne.is_none()) {
                command = command.extended();
            }
            CommandApdu::from_command(&command).unwrap()
        })
}

fn arb_expectation(unchecked_allowed: bool) -> impl Strategy<Value = Expectation> {
    let care = prop::sample::select(vec![0x00u8, 0x0F, 0xF0, 0xFF, 0xFF, 0xFF]);
    let checked = proptest::collection::vec((any::<u8>(), care), 2..40).prop_map(|pairs| {
        let (value, care): (Vec<u8>, Vec<u8>) = pairs.into_iter().unzip();
        Expectation::masked(&value, &care).unwrap()
    });
    let weight = if unchecked_allowed { 1 } else { 0 };
    prop_oneof![8 => checked, weight => Just(Expectation::any())]
}

fn arb_comment() -> impl Strategy<Value = Option<Comment>> {
    proptest::option::of(
        "[A-Za-z0-9éß(][A-Za-z0-9 éß#<>*?:,.()-]{0,40}"
            .prop_filter_map("text", |text| Comment::new(text).ok()),
    )
}

fn arb_step(unchecked_allowed: bool) -> impl Strategy<Value = Step> {
    let command = (
        arb_comment(),
        arb_command(),
        arb_expectation(unchecked_allowed),
    )
        .prop_map(|(comment, command, expect)| Step::Command {
            comment,
            command,
            expect,
        });
    let reset = (arb_comment(), any::<bool>()).prop_map(|(comment, cold)| Step::Reset {
        comment,
        kind: if cold {
            ResetKind::Cold
        } else {
            ResetKind::Warm
        },
    });
    prop_oneof![6 => command, 1 => reset]
}

fn arb_header() -> impl Strategy<Value = Header> {
    let kind = prop::sample::select(vec![
        Kind::PreInitialization,
        Kind::Personalization,
        Kind::Session,
    ]);
    let atr = (any::<bool>(), proptest::collection::vec(any::<u8>(), 1..33)).prop_map(
        |(inverse, mut rest)| {
            rest.insert(0, if inverse { 0x3F } else { 0x3B });
            Atr::new(rest).unwrap()
        },
    );
    let profile = ("[A-Za-z0-9._-]{1,64}", any::<u32>()).prop_map(|(id, version)| ProfileRef {
        id: ProfileId::new(id).unwrap(),
        version,
    });
    let extensions =
        proptest::collection::vec("[a-z0-9 é]{0,20}[a-z0-9é]", 0..3).prop_map(|values| {
            values
                .into_iter()
                .enumerate()
                .map(|(index, value)| Extension::new(format!("x-k{index}"), value.trim()).unwrap())
                .collect()
        });
    (
        kind,
        any::<[u8; 8]>(),
        atr,
        profile,
        any::<bool>(),
        extensions,
    )
        .prop_map(|(kind, uid, atr, profile, sm, extensions)| Header {
            kind,
            uid: Uid(uid),
            atr,
            profile: (kind != Kind::Session).then_some(profile),
            channel: if sm {
                Channel::SecureMessaging
            } else {
                Channel::Plain
            },
            extensions,
        })
}

pub(super) fn arb_transcript() -> impl Strategy<Value = Transcript> {
    arb_header().prop_flat_map(|header| {
        let session = header.kind == Kind::Session;
        proptest::collection::vec(arb_step(session), 0..12).prop_map(move |steps| Transcript {
            header: header.clone(),
            steps,
        })
    })
}

/// Characters that make or break a transcript line.
fn arb_edit() -> impl Strategy<Value = (usize, u8, char)> {
    let chars = prop::sample::select(vec![
        ' ', '\n', '\t', '\r', '0', '9', 'A', 'F', 'a', 'f', '?', '*', '#', '<', '>', '-', 'x', 'é',
    ]);
    (any::<usize>(), 0u8..3, chars)
}

proptest! {
    #[test]
    fn parse_inverts_print(transcript in arb_transcript()) {
        let text = transcript.to_string();
        prop_assert_eq!(Transcript::parse(&text), Ok(transcript.clone()));
        prop_assert_eq!(Transcript::recover(&text), Ok(Recovered::Finished(transcript)));
    }

    #[test]
    fn print_inverts_parse_of_canonical_text(transcript in arb_transcript()) {
        let text = transcript.to_string();
        let parsed = Transcript::parse(&text).unwrap();
        prop_assert_eq!(parsed.to_string(), text);
    }

    /// Edited and sealed again, a text either is still canonical or does not parse.
    #[test]
    fn only_canonical_text_parses(transcript in arb_transcript(), (at, how, c) in arb_edit()) {
        let text = transcript.to_string();
        let trailer = text.rfind("sha256 ").unwrap();
        let mut body = text[..trailer].to_owned();
        let mut at = at % (body.len() + 1);
        while !body.is_char_boundary(at) {
            at -= 1;
        }
        match how {
            0 => body.insert(at, c),
            1 if at < body.len() => {
                body.remove(at);
            }
            _ if at < body.len() => {
                body.remove(at);
                body.insert(at, c);
            }
            _ => body.push(c),
        }
        let edited = seal(&body);
        if let Ok(parsed) = Transcript::parse(&edited) {
            prop_assert_eq!(parsed.to_string(), edited);
        }
    }

    #[test]
    fn the_writer_matches_display(transcript in arb_transcript()) {
        let mut writer = TranscriptWriter::new(Vec::new(), &transcript.header).unwrap();
        for step in &transcript.steps {
            writer.write_step(step).unwrap();
        }
        let (bytes, _) = writer.finish().unwrap();
        prop_assert_eq!(String::from_utf8(bytes).unwrap(), transcript.to_string());
    }

    #[test]
    fn no_string_panics_the_parser(text in "\\PC*") {
        let _ = Transcript::parse(&text);
        let _ = Transcript::recover(&text);
        let _ = Transcript::parse_bytes(text.as_bytes());
    }

    #[test]
    fn no_line_after_a_header_panics_the_parser(
        lines in proptest::collection::vec("[#<>a-z0-9A-F?* \t\r-]{0,30}", 0..8)
    ) {
        let body = format!("{SESSION_HEAD}{}\n", lines.join("\n"));
        let _ = Transcript::parse(&seal(&body));
        let _ = Transcript::recover(&body);
    }

    #[test]
    fn no_bytes_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Transcript::parse_bytes(&bytes);
    }
}

//! One test per parse error, each with the error it must give.

use super::*;

#[test]
fn not_utf8() {
    let mut bytes = seal(SAMPLE_BODY).into_bytes();
    bytes[SAMPLE_BODY.find("uid").unwrap() + 5] = 0xFF;
    assert_eq!(
        Transcript::parse_bytes(&bytes),
        Err(TranscriptError::NotUtf8 { line: 3 })
    );
}

#[test]
fn bad_magic() {
    for text in [
        "",
        "VSC-TRANSCRIPT\n",
        "vsc-transcript 1\n",
        "VSC-TRANSCRIPT  1\n",
        "VSC-TRANSCRIPT 1 \n",
        "\u{FEFF}VSC-TRANSCRIPT 1\n",
        "VSC-TRANSCRIPT x\n",
    ] {
        assert_eq!(
            error(text),
            TranscriptError::BadMagic { line: 1 },
            "{text:?}"
        );
    }
}

#[test]
fn unsupported_version() {
    let text = seal(&HEAD.replace("VSC-TRANSCRIPT 1", "VSC-TRANSCRIPT 3"));
    assert_eq!(
        error(&text),
        TranscriptError::UnsupportedVersion {
            line: 1,
            version: "3".into()
        }
    );
}

#[test]
fn carriage_return() {
    let crlf = seal(SAMPLE_BODY).replace('\n', "\r\n");
    assert_eq!(error(&crlf), TranscriptError::CarriageReturn { line: 1 });
    let body = format!("{HEAD}> 00A4000C023F00\r\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::CarriageReturn { line: 7 }
    );
}

#[test]
fn missing_newline() {
    let text = seal(SAMPLE_BODY);
    let text = text.strip_suffix('\n').unwrap();
    assert_eq!(error(text), TranscriptError::MissingNewline { line: 22 });
    assert_eq!(
        error("VSC-TRANSCRIPT 1"),
        TranscriptError::MissingNewline { line: 1 }
    );
    assert_eq!(
        error(&HEAD[..HEAD.len() - 1]),
        TranscriptError::MissingNewline { line: 6 }
    );
}

#[test]
fn bad_whitespace() {
    for (body, line) in [
        (format!("{HEAD}\n> 00A4000C023F00\n< 9000\n"), 7),
        (format!("{HEAD}> 00A4000C023F00 \n< 9000\n"), 7),
        (format!("{HEAD} > 00A4000C023F00\n< 9000\n"), 7),
        (format!("{HEAD}>  00A4000C023F00\n< 9000\n"), 7),
        (format!("{HEAD}>\t00A4000C023F00\n< 9000\n"), 7),
        (format!("{HEAD}> 00A4000C023F00\n<9000\n"), 8),
        (format!("{HEAD}#select MF\n> 00A4000C023F00\n< 9000\n"), 7),
        (format!("{HEAD}reset  cold\n"), 7),
        (HEAD.replace("kind ", "kind  "), 2),
        (
            HEAD.replace("channel secure-messaging", "channel secure-messaging\t"),
            6,
        ),
    ] {
        assert_eq!(
            sealed_error(&body),
            TranscriptError::BadWhitespace { line },
            "{body:?}"
        );
    }
}

#[test]
fn missing_header_field() {
    let missing = |body: String, line, field| {
        assert_eq!(
            sealed_error(&body),
            TranscriptError::MissingHeaderField { line, field },
            "{body:?}"
        );
    };
    missing(HEAD.replace("kind personalization\n", ""), 2, "kind");
    missing(HEAD.replace("uid 0102030405060708\n", ""), 3, "uid");
    missing(
        HEAD.replace("atr 3B8880015653432D4341524476\n", ""),
        4,
        "atr",
    );
    missing(HEAD.replace("profile eid-demo 3\n", ""), 5, "profile");
    missing(HEAD.replace("channel secure-messaging\n", ""), 6, "channel");
    // The order is fixed.
    let swapped = HEAD.replace(
        "uid 0102030405060708\natr 3B8880015653432D4341524476",
        "atr 3B8880015653432D4341524476\nuid 0102030405060708",
    );
    missing(swapped, 3, "uid");
    // A header cut short by the steps.
    missing(
        "VSC-TRANSCRIPT 1\nkind session\n> 00A4000C023F00\n< 9000\n".into(),
        3,
        "uid",
    );
}

#[test]
fn unknown_header_field() {
    let body = format!("{HEAD}station 3\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UnknownHeaderField {
            line: 7,
            key: "station".into()
        }
    );
}

#[test]
fn header_field_out_of_place() {
    let body = format!("{HEAD}kind session\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::HeaderFieldOutOfPlace {
            line: 7,
            key: "kind".into()
        }
    );
    let body = format!("{HEAD}x-batch 1\nprofile eid-demo 3\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::HeaderFieldOutOfPlace {
            line: 8,
            key: "profile".into()
        }
    );
}

#[test]
fn unexpected_profile() {
    let body = SESSION_HEAD.replace("channel", "profile eid-demo 3\nchannel");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UnexpectedProfile { line: 5 }
    );
}

#[test]
fn duplicate_extension() {
    let body = format!("{HEAD}x-batch 1\nx-batch 2\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::DuplicateExtension {
            line: 8,
            key: "x-batch".into()
        }
    );
}

#[test]
fn bad_value() {
    let bad = |body: String, line, source| {
        assert_eq!(
            sealed_error(&body),
            TranscriptError::BadValue { line, source },
            "{body:?}"
        );
    };
    bad(
        HEAD.replace("personalization", "personalisation"),
        2,
        ValueError::UnknownKind,
    );
    bad(
        HEAD.replace("kind personalization", "kind"),
        2,
        ValueError::UnknownKind,
    );
    bad(
        HEAD.replace("0102030405060708", "01020304050607"),
        3,
        ValueError::UidLength(7),
    );
    bad(
        HEAD.replace("3B8880015653432D4341524476", "3C00"),
        4,
        ValueError::AtrConvention(0x3C),
    );
    bad(
        HEAD.replace("3B8880015653432D4341524476", "3B"),
        4,
        ValueError::AtrLength(1),
    );
    bad(
        HEAD.replace("eid-demo 3", "eid-demo 03"),
        5,
        ValueError::ProfileVersion,
    );
    bad(
        HEAD.replace("eid-demo 3", "eid demo 3"),
        5,
        ValueError::ProfileVersion,
    );
    bad(
        HEAD.replace("eid-demo 3", "eid-demo"),
        5,
        ValueError::ProfileShape,
    );
    bad(
        HEAD.replace("secure-messaging", "sm"),
        6,
        ValueError::UnknownChannel,
    );
    bad(format!("{HEAD}x-Batch 1\n"), 7, ValueError::ExtensionKey);
    bad(format!("{HEAD}x-batch\n"), 7, ValueError::Text);
    bad(
        format!("{HEAD}#\n> 00A4000C023F00\n< 9000\n"),
        7,
        ValueError::Text,
    );
    bad(
        format!("{HEAD}# a\u{7}b\n> 00A4000C023F00\n< 9000\n"),
        7,
        ValueError::Text,
    );
    bad(
        format!("{HEAD}# a\u{A0}\n> 00A4000C023F00\n< 9000\n"),
        7,
        ValueError::Text,
    );
    bad(format!("{HEAD}reset hot\n"), 7, ValueError::UnknownReset);
    bad(format!("{HEAD}reset\n"), 7, ValueError::UnknownReset);
}

#[test]
fn bad_hex() {
    let body = format!("{HEAD}> 00A4000G\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::BadHex {
            line: 7,
            column: 10,
            found: 'G'
        }
    );
    let body = format!("{HEAD}> 00A4000C\n< 90é0\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::BadHex {
            line: 8,
            column: 5,
            found: 'é'
        }
    );
    let body = HEAD.replace("uid 0102030405060708", "uid 01020304 0506070");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::BadHex {
            line: 3,
            column: 13,
            found: ' '
        }
    );
}

#[test]
fn lowercase_hex() {
    let body = format!("{HEAD}> 00a4000c023f00\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::LowercaseHex { line: 7, column: 5 }
    );
    let body = HEAD.replace("3B8880015653432D4341524476", "3b00");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::LowercaseHex { line: 4, column: 6 }
    );
}

#[test]
fn odd_nibble_count() {
    let body = format!("{HEAD}> 00A4000\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::OddNibbleCount {
            line: 7,
            nibbles: 7
        }
    );
    let body = format!("{HEAD}> 00A4000C\n< 63C\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::OddNibbleCount {
            line: 8,
            nibbles: 3
        }
    );
}

#[test]
fn wildcard_not_allowed() {
    let body = format!("{HEAD}> 00A4000?\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::WildcardNotAllowed {
            line: 7,
            column: 10
        }
    );
    let body = HEAD.replace("0102030405060708", "01020304050607??");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::WildcardNotAllowed {
            line: 3,
            column: 19
        }
    );
}

#[test]
fn apdu_malformed() {
    let body = format!("{HEAD}> 00A4000C023F\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::ApduMalformed {
            line: 7,
            source: ApduError::LengthMismatch { nc: 2, body: 1 }
        }
    );
    let body = format!("{HEAD}> 00A400\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::ApduMalformed {
            line: 7,
            source: ApduError::TooShort(3)
        }
    );
}

#[test]
fn no_status_word() {
    let body = format!("{HEAD}> 00A4000C\n< 90\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::NoStatusWord { line: 8, len: 1 }
    );
    let body = format!("{HEAD}> 00A4000C\n<\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::NoStatusWord { line: 8, len: 0 }
    );
}

#[test]
fn unchecked_not_allowed() {
    let body = format!("{HEAD}> 00A4000C\n< *\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UncheckedNotAllowed { line: 8 }
    );
    let session = format!("{SESSION_HEAD}> 00A4000C\n< *\n");
    assert!(Transcript::parse(&seal(&session)).is_ok());
}

#[test]
fn command_without_expectation() {
    let body = format!("{HEAD}> 00A4000C\n# next\n> 00A4000C\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::CommandWithoutExpectation { line: 7 }
    );
    let body = format!("{HEAD}> 00A4000C\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::CommandWithoutExpectation { line: 7 }
    );
    assert_eq!(
        error(&format!("{HEAD}> 00A4000C\n")),
        TranscriptError::CommandWithoutExpectation { line: 7 }
    );
}

#[test]
fn expectation_without_command() {
    let body = format!("{HEAD}< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::ExpectationWithoutCommand { line: 7 }
    );
    let body = format!("{HEAD}> 00A4000C\n< 9000\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::ExpectationWithoutCommand { line: 9 }
    );
}

#[test]
fn comment_without_step() {
    let body = format!("{HEAD}# one\n# two\n> 00A4000C\n< 9000\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::CommentWithoutStep { line: 7 }
    );
    let body = format!("{HEAD}# dangling\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::CommentWithoutStep { line: 7 }
    );
}

#[test]
fn unknown_line() {
    let body = format!("{HEAD}> 00A4000C\n< 9000\nselect 3F00\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UnknownLine { line: 9 }
    );
    let body = format!("{HEAD}> 00A4000C\n< 9000\nx-late 1\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UnknownLine { line: 9 }
    );
    let body = format!("{HEAD}> 00A4000C\n< 9000\nresets warm\n");
    assert_eq!(
        sealed_error(&body),
        TranscriptError::UnknownLine { line: 9 }
    );
}

#[test]
fn digest_missing() {
    assert_eq!(
        error(SAMPLE_BODY),
        TranscriptError::DigestMissing { line: 22 }
    );
    assert_eq!(error(HEAD), TranscriptError::DigestMissing { line: 7 });
}

#[test]
fn digest_length() {
    let text = format!("{SAMPLE_BODY}sha256 ABCD\n");
    assert_eq!(
        error(&text),
        TranscriptError::DigestLength {
            line: 22,
            nibbles: 4
        }
    );
    assert_eq!(
        error(&format!("{SAMPLE_BODY}sha256\n")),
        TranscriptError::DigestLength {
            line: 22,
            nibbles: 0
        }
    );
}

#[test]
fn digest_mismatch() {
    let text = seal(SAMPLE_BODY).replace("# select MF", "# select DF");
    let TranscriptError::DigestMismatch {
        line,
        recorded,
        computed,
    } = error(&text)
    else {
        panic!("not a digest mismatch");
    };
    assert_eq!(line, 22);
    assert_eq!(recorded.0[..], Sha256::digest(SAMPLE_BODY)[..]);
    assert_ne!(recorded, computed);
}

#[test]
fn trailing_content() {
    let text = seal(SAMPLE_BODY);
    for tail in ["\n", "x", "> 00A4000C\n", "sha256 00\n"] {
        assert_eq!(
            error(&format!("{text}{tail}")),
            TranscriptError::TrailingContent { line: 23 },
            "{tail:?}"
        );
    }
}

#[test]
fn errors_name_their_line() {
    let error = sealed_error(&format!("{HEAD}> 00a4\n< 9000\n"));
    assert_eq!(error.line(), 7);
    assert_eq!(
        error.to_string(),
        "line 7, column 5: lowercase hex digit; transcripts use uppercase"
    );
}

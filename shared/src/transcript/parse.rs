//! Reading the canonical text back, strictly: anything a printer never writes is an error
//! that names its line.

use super::expectation::ExpectationFault;
use super::hexdigits::{self, HexFault};
use super::print::{self, MAGIC_LINE, MAGIC_LINE_SIGNED};
use super::signature::Signature;
use super::{
    Atr, Channel, CommandApdu, Comment, Digest, Expectation, Extension, Header, Kind, ProfileRef,
    Recovered, Step, Transcript, TranscriptError, Uid, Unfinished,
};

/// The header fields, in their order.
const HEADER_KEYS: [&str; 5] = ["kind", "uid", "atr", "profile", "channel"];

/// Whether text without a trailer is an error or an unfinished recording.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Finished,
    MaybeUnfinished,
}

/// What a parse found beyond the transcript: its format version, and for a finished one its
/// digest and (version 2) its signature line.
pub(super) struct Parsed {
    pub(super) recovered: Recovered,
    pub(super) version: u8,
    pub(super) digest: Option<Digest>,
    pub(super) signature: Option<Signature>,
}

pub(super) fn parse(text: &str, mode: Mode) -> Result<Recovered, TranscriptError> {
    parse_full(text, mode).map(|parsed| parsed.recovered)
}

pub(super) fn parse_full(text: &str, mode: Mode) -> Result<Parsed, TranscriptError> {
    let mut lines = Lines {
        text,
        pos: 0,
        number: 0,
        mode,
        has_cr: text.as_bytes().contains(&b'\r'),
    };
    let (header, version) = parse_header(&mut lines)?;
    let unfinished = |recovered| Parsed {
        recovered,
        version,
        digest: None,
        signature: None,
    };
    let mut steps = Vec::new();
    // The comment line waiting for its step.
    let mut pending: Option<(Line<'_>, Comment)> = None;
    loop {
        let Some(line) = lines.next()? else {
            return end_without_trailer(text, mode, &lines, header, steps, pending).map(unfinished);
        };
        match classify(&line)? {
            StepLine::Comment(text) => {
                if let Some((previous, _)) = pending {
                    return Err(TranscriptError::CommentWithoutStep {
                        line: previous.number,
                    });
                }
                let comment = Comment::new(text).map_err(|source| bad_value(line, source))?;
                pending = Some((line, comment));
            }
            StepLine::Command(hex) => {
                let command = parse_command(&line, hex)?;
                let Some(response) = lines.next()? else {
                    if mode == Mode::MaybeUnfinished {
                        let start = pending.as_ref().map_or(line.start, |(c, _)| c.start);
                        return Ok(unfinished(unfinished_at(text, start, header, steps)));
                    }
                    return Err(TranscriptError::CommandWithoutExpectation { line: line.number });
                };
                let StepLine::Response(pattern) = classify(&response)? else {
                    return Err(TranscriptError::CommandWithoutExpectation { line: line.number });
                };
                steps.push(Step::Command {
                    comment: pending.take().map(|(_, comment)| comment),
                    command,
                    expect: parse_expectation(&response, pattern, header.kind)?,
                });
            }
            StepLine::Response(_) => {
                return Err(TranscriptError::ExpectationWithoutCommand { line: line.number });
            }
            StepLine::Reset(kind) => steps.push(Step::Reset {
                comment: pending.take().map(|(_, comment)| comment),
                kind: kind.parse().map_err(|source| bad_value(line, source))?,
            }),
            StepLine::Live(value) => {
                if header.kind != Kind::Personalization {
                    return Err(TranscriptError::LiveNotAllowed { line: line.number });
                }
                steps.push(Step::Live {
                    comment: pending.take().map(|(_, comment)| comment),
                    live: super::LiveStep::parse(value)
                        .map_err(|source| bad_value(line, source))?,
                });
            }
            StepLine::Trailer(digest) => {
                if let Some((comment, _)) = pending {
                    return Err(TranscriptError::CommentWithoutStep {
                        line: comment.number,
                    });
                }
                let digest = check_trailer(text, &line, digest)?;
                let signature = match version {
                    1 => None,
                    _ => Some(parse_signature(&mut lines, line.number)?),
                };
                if let Some((extra, _)) = lines.next_raw() {
                    return Err(TranscriptError::TrailingContent { line: extra.number });
                }
                return Ok(Parsed {
                    recovered: Recovered::Finished(Transcript { header, steps }),
                    version,
                    digest: Some(digest),
                    signature,
                });
            }
            // Before any step, an unknown line is most likely a header field.
            StepLine::Other if steps.is_empty() && pending.is_none() => {
                let key = line.text.split(' ').next().unwrap_or_default().to_owned();
                let line = line.number;
                return Err(if HEADER_KEYS.contains(&key.as_str()) {
                    TranscriptError::HeaderFieldOutOfPlace { line, key }
                } else {
                    TranscriptError::UnknownHeaderField { line, key }
                });
            }
            StepLine::Other => return Err(TranscriptError::UnknownLine { line: line.number }),
        }
    }
}

/// What a line after the header is, by its first character or keyword, and its value.
enum StepLine<'a> {
    Comment(&'a str),
    Command(&'a str),
    Response(&'a str),
    Reset(&'a str),
    Live(&'a str),
    Trailer(&'a str),
    Other,
}

fn classify<'a>(line: &Line<'a>) -> Result<StepLine<'a>, TranscriptError> {
    Ok(match line.text.as_bytes().first() {
        Some(b'#') => StepLine::Comment(marker_value(line)?),
        Some(b'>') => StepLine::Command(marker_value(line)?),
        Some(b'<') => StepLine::Response(marker_value(line)?),
        _ => {
            if let Some(kind) = keyword_value(line, "reset")? {
                StepLine::Reset(kind)
            } else if let Some(live) = keyword_value(line, super::live::KEYWORD)? {
                StepLine::Live(live)
            } else if let Some(digest) = keyword_value(line, "sha256")? {
                StepLine::Trailer(digest)
            } else {
                StepLine::Other
            }
        }
    })
}

/// One line, without its LF.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based.
    number: usize,
    text: &'a str,
    /// Byte offset of the line in the whole text.
    start: usize,
}

/// The lines of the text, each checked for what no line may hold.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
    mode: Mode,
    /// Whether a CR is anywhere: lines are searched for one only then.
    has_cr: bool,
}

impl<'a> Lines<'a> {
    /// The next line that ends in LF, checked for CR and stray whitespace. A last line without
    /// LF is an error when finished, the end of the recording otherwise.
    fn next(&mut self) -> Result<Option<Line<'a>>, TranscriptError> {
        let Some((line, terminated)) = self.next_raw() else {
            return Ok(None);
        };
        if !terminated {
            return match self.mode {
                Mode::Finished => Err(TranscriptError::MissingNewline { line: line.number }),
                Mode::MaybeUnfinished => {
                    // Give the partial line back: it is the unfinished tail.
                    self.pos = line.start;
                    self.number -= 1;
                    Ok(None)
                }
            };
        }
        if self.has_cr && line.text.contains('\r') {
            return Err(TranscriptError::CarriageReturn { line: line.number });
        }
        let bytes = line.text.as_bytes();
        let blank = |b: &u8| matches!(b, b' ' | b'\t');
        if bytes.first().is_none_or(blank) || bytes.last().is_some_and(blank) {
            return Err(TranscriptError::BadWhitespace { line: line.number });
        }
        Ok(Some(line))
    }

    /// The next line as it is, and whether it ends in LF.
    fn next_raw(&mut self) -> Option<(Line<'a>, bool)> {
        let rest = self.text.get(self.pos..).filter(|rest| !rest.is_empty())?;
        self.number += 1;
        let start = self.pos;
        let (text, terminated) = match rest.find('\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        self.pos += text.len() + usize::from(terminated);
        let line = Line {
            number: self.number,
            text,
            start,
        };
        Some((line, terminated))
    }
}

/// The signature line after the trailer of a version-2 transcript.
fn parse_signature(lines: &mut Lines<'_>, trailer: usize) -> Result<Signature, TranscriptError> {
    let Some(line) = lines.next()? else {
        return Err(TranscriptError::SignatureMissing { line: trailer + 1 });
    };
    let bad = || TranscriptError::BadSignatureLine { line: line.number };
    let value = keyword_value(&line, "ed25519")?.ok_or_else(bad)?;
    let (key_id, signature) = value.split_once(' ').ok_or_else(bad)?;
    if key_id.len() != 16 || signature.len() != 128 {
        return Err(bad());
    }
    let key_id = decode_hex(line, "ed25519 ".len(), key_id)?;
    let signature = decode_hex(line, "ed25519 ".len() + 17, signature)?;
    Signature::from_parts(&key_id, &signature).ok_or_else(bad)
}

fn parse_header(lines: &mut Lines<'_>) -> Result<(Header, u8), TranscriptError> {
    let Some((magic, terminated)) = lines.next_raw() else {
        return Err(TranscriptError::BadMagic { line: 1 });
    };
    let version = match magic.text {
        MAGIC_LINE => 1,
        MAGIC_LINE_SIGNED => 2,
        _ => return Err(magic_error(magic)),
    };
    if !terminated {
        return Err(match lines.mode {
            Mode::Finished => TranscriptError::MissingNewline { line: 1 },
            Mode::MaybeUnfinished => TranscriptError::MissingHeaderField {
                line: 2,
                field: "kind",
            },
        });
    }

    let (line, value) = field(lines, "kind")?;
    let kind: Kind = value.parse().map_err(|source| bad_value(line, source))?;

    let (line, value) = field(lines, "uid")?;
    let uid_bytes = decode_hex(line, "uid ".len(), value)?;
    let uid = Uid::try_from(&uid_bytes[..])
        .map_err(|_| bad_value(line, super::ValueError::UidLength(uid_bytes.len())))?;

    let (line, value) = field(lines, "atr")?;
    let atr = Atr::new(decode_hex(line, "atr ".len(), value)?)
        .map_err(|source| bad_value(line, source))?;

    let profile = if kind == Kind::Session {
        None
    } else {
        let (line, value) = field(lines, "profile")?;
        Some(ProfileRef::parse(value).map_err(|source| bad_value(line, source))?)
    };

    let (line, value) = field(lines, "channel").map_err(|error| match error {
        TranscriptError::MissingHeaderField { line, .. } if kind == Kind::Session => {
            profile_in_session(lines, line).unwrap_or(error)
        }
        error => error,
    })?;
    let channel: Channel = value.parse().map_err(|source| bad_value(line, source))?;

    let mut extensions: Vec<Extension> = Vec::new();
    while lines.text[lines.pos..].starts_with("x-") {
        let Some(line) = lines.next()? else { break };
        let (key, value) = line.text.split_once(' ').unwrap_or((line.text, ""));
        let extension = Extension::new(key, value).map_err(|source| bad_value(line, source))?;
        if extensions.iter().any(|known| known.key() == key) {
            return Err(TranscriptError::DuplicateExtension {
                line: line.number,
                key: key.to_owned(),
            });
        }
        extensions.push(extension);
    }

    Ok((
        Header {
            kind,
            uid,
            atr,
            profile,
            channel,
            extensions,
        },
        version,
    ))
}

fn magic_error(line: Line<'_>) -> TranscriptError {
    let number = line.number;
    if matches!(
        line.text.strip_suffix('\r'),
        Some(MAGIC_LINE | MAGIC_LINE_SIGNED)
    ) {
        return TranscriptError::CarriageReturn { line: number };
    }
    match line.text.strip_prefix("VSC-TRANSCRIPT ") {
        Some(version) if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) => {
            TranscriptError::UnsupportedVersion {
                line: number,
                version: version.to_owned(),
            }
        }
        _ => TranscriptError::BadMagic { line: number },
    }
}

/// The next line as the header field `key`, and its value.
fn field<'a>(
    lines: &mut Lines<'a>,
    key: &'static str,
) -> Result<(Line<'a>, &'a str), TranscriptError> {
    let missing = |line| TranscriptError::MissingHeaderField { line, field: key };
    let Some(line) = lines.next()? else {
        return Err(missing(lines.number + 1));
    };
    match keyword_value(&line, key)? {
        Some(value) => Ok((line, value)),
        None => {
            // Put the line back, so that a caller may look at it again.
            lines.pos = line.start;
            lines.number -= 1;
            Err(missing(line.number))
        }
    }
}

/// A session's header with a `profile` line where `channel` belongs.
fn profile_in_session(lines: &mut Lines<'_>, line: usize) -> Option<TranscriptError> {
    let rest = &lines.text[lines.pos..];
    (rest.starts_with("profile ") || rest.starts_with("profile\n"))
        .then_some(TranscriptError::UnexpectedProfile { line })
}

/// The value of `keyword value`; `Some("")` for the bare keyword, `None` for another line.
fn keyword_value<'a>(line: &Line<'a>, keyword: &str) -> Result<Option<&'a str>, TranscriptError> {
    let Some(rest) = line.text.strip_prefix(keyword) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some(rest));
    }
    match rest.strip_prefix(' ') {
        Some(value) if value.starts_with(' ') => {
            Err(TranscriptError::BadWhitespace { line: line.number })
        }
        Some(value) => Ok(Some(value)),
        None => Ok(None),
    }
}

/// The text after a one-character marker (`#`, `>`, `<`) and its single space.
fn marker_value<'a>(line: &Line<'a>) -> Result<&'a str, TranscriptError> {
    let rest = &line.text[1..];
    if rest.is_empty() {
        return Ok(rest);
    }
    match rest.strip_prefix(' ') {
        Some(value) if !value.starts_with(' ') => Ok(value),
        _ => Err(TranscriptError::BadWhitespace { line: line.number }),
    }
}

fn parse_command(line: &Line<'_>, hex: &str) -> Result<CommandApdu, TranscriptError> {
    let bytes = decode_hex(*line, 2, hex)?;
    CommandApdu::new(bytes).map_err(|source| TranscriptError::ApduMalformed {
        line: line.number,
        source,
    })
}

fn parse_expectation(
    line: &Line<'_>,
    value: &str,
    kind: Kind,
) -> Result<Expectation, TranscriptError> {
    let expect = Expectation::parse(value).map_err(|fault| match fault {
        ExpectationFault::Hex(fault) => hex_error(*line, 2, value, fault),
        ExpectationFault::NoStatusWord(len) => TranscriptError::NoStatusWord {
            line: line.number,
            len,
        },
    })?;
    if expect.is_any() && kind != Kind::Session {
        return Err(TranscriptError::UncheckedNotAllowed { line: line.number });
    }
    Ok(expect)
}

fn check_trailer(text: &str, line: &Line<'_>, value: &str) -> Result<Digest, TranscriptError> {
    if value.len() != 64 {
        return Err(TranscriptError::DigestLength {
            line: line.number,
            nibbles: value.chars().count(),
        });
    }
    let bytes = decode_hex(*line, "sha256 ".len(), value)?;
    let mut recorded = [0; 32];
    recorded.copy_from_slice(&bytes);
    let recorded = Digest(recorded);
    let computed = print::digest(&text.as_bytes()[..line.start]);
    if recorded != computed {
        return Err(TranscriptError::DigestMismatch {
            line: line.number,
            recorded,
            computed,
        });
    }
    Ok(computed)
}

fn end_without_trailer(
    text: &str,
    mode: Mode,
    lines: &Lines<'_>,
    header: Header,
    steps: Vec<Step>,
    pending: Option<(Line<'_>, Comment)>,
) -> Result<Recovered, TranscriptError> {
    match mode {
        Mode::Finished => Err(TranscriptError::DigestMissing {
            line: lines.number + 1,
        }),
        Mode::MaybeUnfinished => {
            let start = pending.map_or(lines.pos, |(comment, _)| comment.start);
            Ok(unfinished_at(text, start, header, steps))
        }
    }
}

fn unfinished_at(text: &str, tail_start: usize, header: Header, steps: Vec<Step>) -> Recovered {
    Recovered::Unfinished(Unfinished {
        transcript: Transcript { header, steps },
        ignored_tail: text.len() - tail_start,
    })
}

/// Decodes a hex value that starts at 0-based byte `offset` of its (ASCII up to there) line.
fn decode_hex(line: Line<'_>, offset: usize, value: &str) -> Result<Vec<u8>, TranscriptError> {
    hexdigits::decode(value).map_err(|fault| hex_error(line, offset, value, fault))
}

fn hex_error(line: Line<'_>, offset: usize, value: &str, fault: HexFault) -> TranscriptError {
    let number = line.number;
    // Hex faults point at the first offending byte, with only ASCII before it.
    let column = |index: usize| offset + index + 1;
    match fault {
        HexFault::NotHex { index } => TranscriptError::BadHex {
            line: number,
            column: column(index),
            found: value
                .get(index..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER),
        },
        HexFault::Lowercase { index } => TranscriptError::LowercaseHex {
            line: number,
            column: column(index),
        },
        HexFault::Wildcard { index } => TranscriptError::WildcardNotAllowed {
            line: number,
            column: column(index),
        },
        HexFault::OddCount(nibbles) => TranscriptError::OddNibbleCount {
            line: number,
            nibbles,
        },
    }
}

fn bad_value(line: Line<'_>, source: super::ValueError) -> TranscriptError {
    TranscriptError::BadValue {
        line: line.number,
        source,
    }
}

//! pcsc-tools' `scriptor` scripts: export a transcript to one, import one as unchecked steps.
//!
//! scriptor (pcsc-tools 1.x) reads a script line by line: a line containing `exit` in any case
//! ends the script, blank lines are skipped, a `#` in the first column starts a comment, a line
//! containing `reset` in any case resets the card (warm, `SCARD_RESET_CARD`), and anything else
//! is an APDU: two-digit hex bytes separated by single spaces, or, on a line without any space,
//! digits run together; a `\` at the end continues the APDU on the next line. scriptor checks
//! no response: it prints them.

use crate::apdu::ApduError;

use super::{
    Atr, Channel, CommandApdu, Comment, Expectation, Kind, ResetKind, Step, Transcript, Uid,
    hexdigits,
};

/// What [`to_scriptor`] writes about the transcript in the script's comments: enough for a
/// replay to check that the card in the reader is the one the script was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptorHeader {
    /// The transcript's kind.
    pub kind: Kind,
    /// The card's UID.
    pub uid: Uid,
    /// The ATR the card must give.
    pub atr: Atr,
    /// Whether the commands go through the personalization channel.
    pub channel: Channel,
}

/// The header comment [`to_scriptor`] writes (`# kind K, uid U, atr A[, profile P V], channel
/// C`), if the script's leading comments hold one. Scripts from elsewhere have none.
pub fn scriptor_header(script: &str) -> Option<ScriptorHeader> {
    for line in script.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            if line.trim().is_empty() {
                continue;
            }
            return None;
        };
        let Some(fields) = comment.trim().strip_prefix("kind ") else {
            continue;
        };
        let mut parts = fields.split(", ");
        let kind = parts.next()?.parse().ok()?;
        let uid = Uid::parse(parts.next()?.strip_prefix("uid ")?).ok()?;
        let atr = Atr::new(hex::decode(parts.next()?.strip_prefix("atr ")?).ok()?).ok()?;
        let channel = parts
            .find_map(|part| part.strip_prefix("channel "))?
            .parse()
            .ok()?;
        return Some(ScriptorHeader {
            kind,
            uid,
            atr,
            channel,
        });
    }
    None
}

/// Why a scriptor script cannot be imported; lines are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptorError {
    /// A token that is not a byte as two hex digits (scriptor dies on it too).
    #[error("line {line}: {token:?} is not a byte as two hex digits")]
    BadByte {
        /// The line.
        line: usize,
        /// The token, between single spaces.
        token: String,
    },
    /// The bytes are not a command APDU.
    #[error("line {line}: malformed command APDU: {source}")]
    ApduMalformed {
        /// The line where the command starts.
        line: usize,
        /// What the APDU codec says.
        source: ApduError,
    },
    /// A `reset` line inside an APDU continued with `\`.
    #[error("line {line}: reset inside a command continued with `\\`")]
    ResetInContinuation {
        /// The reset's line.
        line: usize,
    },
    /// The script ends inside an APDU continued with `\`.
    #[error("line {line}: the command continued with `\\` never ends")]
    UnterminatedContinuation {
        /// The line where the command starts.
        line: usize,
    },
}

/// A transcript with a live step has no scriptor form: scriptor sends fixed bytes, and a live
/// step's bytes are computed at replay time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "step {step} is a live step ({what}), whose bytes are computed at replay time: scriptor cannot \
     send it; replay the transcript with vsc-personalizer replay or station"
)]
pub struct LiveStepInScript {
    /// The live step (1-based).
    pub step: usize,
    /// What it does.
    pub what: &'static str,
}

/// The transcript as a scriptor script: the header as comments, each step's comment as a
/// comment line above it, each command as spaced hex, each reset as `reset`.
///
/// scriptor neither checks responses nor resets cold: expectations are left out, and a cold
/// reset becomes `reset` with a comment saying so. Comments never contain `exit`, which would
/// stop scriptor: it is written `ex-it`. A transcript with a live step is refused.
pub fn to_scriptor(transcript: &Transcript) -> Result<String, LiveStepInScript> {
    if let Some(step) = transcript
        .steps
        .iter()
        .position(|step| matches!(step, Step::Live { .. }))
    {
        return Err(LiveStepInScript {
            step: step + 1,
            what: "PIV management key authentication",
        });
    }
    let header = &transcript.header;
    let mut out = Vec::with_capacity(512 + 140 * transcript.steps.len());
    comment_into(
        "VSC transcript for scriptor (pcsc-tools); responses are not checked",
        &mut out,
    );
    let mut about = format!("kind {}, uid ", header.kind);
    about.push_str(&hex::encode_upper(header.uid.0));
    about.push_str(", atr ");
    about.push_str(&hex::encode_upper(header.atr.as_bytes()));
    if let Some(profile) = &header.profile {
        about.push_str(&format!(", profile {} {}", profile.id, profile.version));
    }
    about.push_str(&format!(", channel {}", header.channel));
    comment_into(&about, &mut out);
    for step in &transcript.steps {
        out.push(b'\n');
        if let Some(comment) = step.comment() {
            comment_into(comment.as_str(), &mut out);
        }
        match step {
            Step::Command { command, .. } => {
                spaced_hex_into(command.as_bytes(), &mut out);
                out.push(b'\n');
            }
            // Refused above.
            Step::Live { .. } => {}
            Step::Reset { kind, .. } => {
                if *kind == ResetKind::Cold {
                    comment_into(
                        "cold reset in the transcript; scriptor resets warm",
                        &mut out,
                    );
                }
                out.extend_from_slice(b"reset\n");
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Reads a scriptor script as scriptor runs it, into steps whose responses are not checked
/// ([`Expectation::any`]) and whose resets are warm.
///
/// The comment lines right above a command or reset (no blank line between) become its
/// comment, joined by spaces; other comments are dropped. Reading stops at the first line
/// containing `exit`. One leniency: a CR before the LF is ignored (scriptor would choke on it).
pub fn from_scriptor(script: &str) -> Result<Vec<Step>, ScriptorError> {
    let mut steps = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    // An APDU continued with `\`: its first line and its text so far.
    let mut continued: Option<(usize, String)> = None;
    for (index, line) in script.lines().enumerate() {
        let number = index + 1;
        if line.to_ascii_lowercase().contains("exit") {
            break;
        }
        if line
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | 0x0B | 0x0C))
        {
            comments.clear();
            continue;
        }
        if let Some(text) = line.strip_prefix('#') {
            let text: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let text = text.trim();
            if !text.is_empty() {
                comments.push(text.to_owned());
            }
            continue;
        }
        if line.to_ascii_lowercase().contains("reset") {
            if continued.is_some() {
                return Err(ScriptorError::ResetInContinuation { line: number });
            }
            steps.push(Step::Reset {
                comment: take_comment(&mut comments),
                kind: ResetKind::Warm,
            });
            continue;
        }
        let mut text = if line.contains(' ') {
            line.to_owned()
        } else {
            run_together_spaced(line)
        };
        let (start, mut apdu) = continued.take().unwrap_or((number, String::new()));
        if let Some(head) = text.strip_suffix('\\') {
            text = head.trim_end_matches(' ').to_owned();
            text.push(' ');
            apdu.push_str(&text);
            continued = Some((start, apdu));
            continue;
        }
        apdu.push_str(&text);
        let bytes = parse_bytes(&apdu, number)?;
        let command = CommandApdu::new(bytes).map_err(|source| ScriptorError::ApduMalformed {
            line: start,
            source,
        })?;
        steps.push(Step::Command {
            comment: take_comment(&mut comments),
            command,
            expect: Expectation::any(),
        });
    }
    match continued {
        Some((line, _)) => Err(ScriptorError::UnterminatedContinuation { line }),
        None => Ok(steps),
    }
}

fn comment_into(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# ");
    let lower = text.to_ascii_lowercase();
    let mut copied = 0;
    // ASCII lowercasing keeps byte offsets, so matches in `lower` are offsets in `text`.
    for (at, _) in lower.match_indices("exit") {
        out.extend_from_slice(&text.as_bytes()[copied..at + 2]);
        out.push(b'-');
        copied = at + 2;
    }
    out.extend_from_slice(&text.as_bytes()[copied..]);
    out.push(b'\n');
}

fn spaced_hex_into(bytes: &[u8], out: &mut Vec<u8>) {
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        hexdigits::encode_into(&[*byte], out);
    }
}

/// scriptor's `s/(..)/$1 /g` for lines without a space: a space after every two characters.
fn run_together_spaced(line: &str) -> String {
    let mut spaced = String::with_capacity(line.len() * 3 / 2 + 1);
    for (index, c) in line.chars().enumerate() {
        spaced.push(c);
        if index % 2 == 1 {
            spaced.push(' ');
        }
    }
    spaced
}

/// The bytes of an APDU line the way scriptor splits it: on single spaces, trailing empty
/// fields dropped, every other field two hex digits in either case.
fn parse_bytes(apdu: &str, line: usize) -> Result<Vec<u8>, ScriptorError> {
    let mut tokens: Vec<&str> = apdu.split(' ').collect();
    while tokens.last() == Some(&"") {
        tokens.pop();
    }
    tokens
        .into_iter()
        .map(|token| {
            let digits = token.as_bytes();
            match (digits.len(), hex::decode(token)) {
                (2, Ok(byte)) if digits.iter().all(u8::is_ascii_hexdigit) => Ok(byte[0]),
                _ => Err(ScriptorError::BadByte {
                    line,
                    token: token.to_owned(),
                }),
            }
        })
        .collect()
}

fn take_comment(comments: &mut Vec<String>) -> Option<Comment> {
    let joined = comments.join(" ");
    comments.clear();
    // Each part is trimmed, non-empty and free of control characters, so the join is a valid
    // comment whenever there is one.
    Comment::new(joined).ok()
}

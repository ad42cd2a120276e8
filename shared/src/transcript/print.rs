//! The canonical text: header, steps and trailer, appended to a byte buffer.
//!
//! Data preparation prints two transcripts per card at thousands of cards per second, so the
//! text is built with slice copies and a hex table into one reusable buffer, and hashed in one
//! pass.

use sha2::{Digest as _, Sha256};

use super::{Digest, Header, Step, hexdigits};

/// The first line of an unsigned transcript: magic and format version.
pub(super) const MAGIC_LINE: &str = "VSC-TRANSCRIPT 1";
/// The first line of a signed transcript.
pub(super) const MAGIC_LINE_SIGNED: &str = "VSC-TRANSCRIPT 2";

/// Appends the magic line of version 1 and the header lines.
pub(super) fn header_into(header: &Header, out: &mut Vec<u8>) {
    header_with_magic_into(MAGIC_LINE, header, out);
}

/// Appends `magic` and the header lines.
pub(super) fn header_with_magic_into(magic: &str, header: &Header, out: &mut Vec<u8>) {
    out.extend_from_slice(magic.as_bytes());
    out.extend_from_slice(b"\nkind ");
    out.extend_from_slice(header.kind.label().as_bytes());
    out.extend_from_slice(b"\nuid ");
    hexdigits::encode_into(&header.uid.0, out);
    out.extend_from_slice(b"\natr ");
    hexdigits::encode_into(header.atr.as_bytes(), out);
    out.push(b'\n');
    if let Some(profile) = &header.profile {
        out.extend_from_slice(b"profile ");
        out.extend_from_slice(profile.id.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(profile.version.to_string().as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"channel ");
    out.extend_from_slice(header.channel.label().as_bytes());
    out.push(b'\n');
    for extension in &header.extensions {
        out.extend_from_slice(extension.key().as_bytes());
        out.push(b' ');
        out.extend_from_slice(extension.value().as_bytes());
        out.push(b'\n');
    }
}

/// Appends a step's lines.
pub(super) fn step_into(step: &Step, out: &mut Vec<u8>) {
    if let Some(comment) = step.comment() {
        out.extend_from_slice(b"# ");
        out.extend_from_slice(comment.as_str().as_bytes());
        out.push(b'\n');
    }
    match step {
        Step::Command {
            command, expect, ..
        } => {
            out.extend_from_slice(b"> ");
            hexdigits::encode_into(command.as_bytes(), out);
            out.extend_from_slice(b"\n< ");
            expect.print_into(out);
            out.push(b'\n');
        }
        Step::Live { live, .. } => {
            out.extend_from_slice(super::live::KEYWORD.as_bytes());
            out.push(b' ');
            live.print_into(out);
            out.push(b'\n');
        }
        Step::Reset { kind, .. } => {
            out.extend_from_slice(b"reset ");
            out.extend_from_slice(kind.label().as_bytes());
            out.push(b'\n');
        }
    }
}

/// Appends the trailer line.
pub(super) fn trailer_into(digest: &Digest, out: &mut Vec<u8>) {
    out.extend_from_slice(b"sha256 ");
    hexdigits::encode_into(digest.as_bytes(), out);
    out.push(b'\n');
}

/// The digest of everything above the trailer.
pub(super) fn digest(body: &[u8]) -> Digest {
    Digest(Sha256::digest(body).into())
}

//! `vsc-emulator inspect`: what a VSC image holds, as a tree for people or as JSON for tools.
//! Never a PIN value, a key value or the private area's contents; without the issuer key, only
//! what is in clear, unverified.

use std::fmt::Write as _;

use serde::Serialize;
use vsc_core::crypto::MasterKey;
use vsc_core::image::{self, ImageError};
use vsc_core::inspect::{self, CardReport, FileReport};

/// An image described.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    /// The image format version.
    pub format_version: u16,
    /// The image's generation (how many saves made it).
    pub generation: u64,
    /// The file's size in bytes.
    pub size: usize,
    /// The check value of the issuer key the image names.
    pub issuer_kcv: String,
    /// Whether the MAC and every seal were verified with the issuer key.
    pub verified: bool,
    /// The areas that could not be opened (no key given).
    pub sealed: Vec<String>,
    /// The card.
    pub card: CardReport,
}

/// Describes the image `bytes`; with `master`, everything is verified (the MAC first, as
/// `serve` does) and opened before anything is read; without it, nothing is verified.
pub fn describe(bytes: &[u8], master: Option<&MasterKey>) -> Result<ImageReport, ImageError> {
    let opened = master
        .map(|master| image::open(bytes, master))
        .transpose()?;
    let clear = image::read_clear(bytes)?;
    let (card, verified, sealed) = match &opened {
        Some(opened) => (inspect::report(&opened.state), true, Vec::new()),
        None => (
            inspect::report_clear(&clear),
            false,
            clear
                .sealed
                .iter()
                .map(|(area, _)| area.name().to_string())
                .collect(),
        ),
    };
    Ok(ImageReport {
        format_version: clear.version,
        generation: clear.generation,
        size: bytes.len(),
        issuer_kcv: clear.issuer_kcv.to_string(),
        verified,
        sealed,
        card,
    })
}

/// The report as text: a header, the file tree, passwords and keys.
pub fn render(report: &ImageReport) -> String {
    let mut out = String::new();
    let card = &report.card;
    let _ = writeln!(out, "UID          {}", card.uid);
    let _ = writeln!(out, "life cycle   {}", card.life_cycle);
    let _ = writeln!(
        out,
        "format       version {}, {} bytes, generation {}",
        report.format_version, report.size, report.generation
    );
    let _ = writeln!(out, "issuer key   check value {}", report.issuer_kcv);
    if report.verified {
        let _ = writeln!(out, "integrity    verified (MAC and every sealed area)");
    } else {
        let _ = writeln!(
            out,
            "integrity    NOT verified: no issuer key given (--key-file); nothing shown here is checked"
        );
    }
    let _ = writeln!(out, "\nfiles");
    render_file(&mut out, &card.files, "", true, true);
    if !report.sealed.is_empty() {
        let _ = writeln!(
            out,
            "\nsealed, not opened without the issuer key: {}",
            report.sealed.join(", ")
        );
    }
    if let Some(passwords) = &card.passwords {
        let _ = writeln!(out, "\npasswords");
        if passwords.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for p in passwords {
            let state = if p.blocked {
                "BLOCKED".to_string()
            } else {
                format!("{} of {} tries left", p.tries_left, p.max_tries)
            };
            let set = if p.set { "set" } else { "not set" };
            let _ = writeln!(
                out,
                "  {} ({:02X})  {state}, {} to {} characters, {set}",
                p.name, p.reference, p.min_length, p.max_length
            );
        }
    }
    if let Some(keys) = &card.keys {
        let _ = writeln!(out, "\nkeys");
        if keys.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for k in keys {
            let loaded = if k.loaded { "loaded" } else { "not loaded" };
            let _ = writeln!(
                out,
                "  {:02X}  {}  {}, {loaded}",
                k.reference,
                k.algorithm,
                k.usage.join(", ")
            );
        }
    }
    if let Some(channel) = card.channel_keys {
        let loaded = if channel { "loaded" } else { "none" };
        let _ = writeln!(out, "\npersonalization channel keys: {loaded}");
    }
    for application in &card.applications {
        let _ = writeln!(
            out,
            "\napplication  {} {}, {}",
            application.kind, application.aid, application.state
        );
        for (name, value) in &application.data {
            let _ = writeln!(out, "  {name}: {value}");
        }
        let _ = writeln!(out, "  keys");
        for key in &application.keys {
            let mut line = format!("    {:<14} {}, {}", key.slot, key.algorithm, key.status);
            match key.loaded {
                Some(true) => line.push_str(", private key on the card"),
                Some(false) => line.push_str(", no private key"),
                None => {}
            }
            if let Some(fingerprint) = &key.fingerprint {
                let _ = write!(line, ", fingerprint {fingerprint}");
            }
            if let Some(created) = key.created {
                let _ = write!(line, ", created {created}");
            }
            let _ = writeln!(out, "{line}");
        }
        match &application.passwords {
            Some(passwords) => {
                let _ = writeln!(out, "  passwords");
                for p in passwords {
                    let state = if !p.set {
                        "not set".to_string()
                    } else if p.blocked {
                        "BLOCKED".to_string()
                    } else {
                        format!("{} of {} tries left", p.tries_left, p.max_tries)
                    };
                    let _ = writeln!(
                        out,
                        "    {:<14} {state}, {} to {} bytes",
                        p.name, p.min_length, p.max_length
                    );
                }
            }
            None => {
                let _ = writeln!(out, "  passwords and keys sealed (no issuer key given)");
            }
        }
    }
    out
}

/// The most content bytes shown per file.
const SHOWN: usize = 48;

fn render_file(out: &mut String, file: &FileReport, prefix: &str, last: bool, root: bool) {
    let (branch, indent) = match (root, last) {
        (true, _) => ("", String::new()),
        (false, true) => ("└── ", format!("{prefix}    ")),
        (false, false) => ("├── ", format!("{prefix}│   ")),
    };
    let mut line = format!("{prefix}{branch}{} {}", file.fid, file.kind);
    if let Some(aid) = &file.aid {
        let _ = write!(line, " {aid}");
    }
    if let Some(sfi) = file.sfi {
        let _ = write!(line, " (SFI {sfi:02X})");
    }
    let _ = write!(line, ", {} bytes", file.size);
    if let Some(records) = file.records {
        let _ = write!(line, ", {records} records");
    }
    if file.state != "activated" {
        let _ = write!(line, ", {}", file.state);
    }
    let rules: Vec<String> = file
        .rules
        .iter()
        .map(|(op, rule)| format!("{op} {rule}"))
        .collect();
    let _ = writeln!(out, "{line}; {}", rules.join(", "));
    let detail = if root { String::new() } else { indent.clone() };
    for object in &file.data_objects {
        let value = object
            .value
            .as_deref()
            .map_or_else(|| "(private)".to_string(), shown);
        let _ = writeln!(
            out,
            "{detail}    DO {} ({} bytes) {value}",
            object.tag, object.length
        );
    }
    if let Some(content) = &file.content {
        for (i, chunk) in content.iter().enumerate() {
            let label = if file.records.is_some() {
                format!("#{} ", i + 1)
            } else {
                String::new()
            };
            let _ = writeln!(out, "{detail}    {label}{}", shown(chunk));
        }
    } else if file.kind != "DF" {
        let _ = writeln!(out, "{detail}    (private)");
    }
    for (i, child) in file.children.iter().enumerate() {
        render_file(out, child, &detail, i + 1 == file.children.len(), false);
    }
}

/// Hex of up to [`SHOWN`] bytes (trailing zero bytes dropped) and its printable rendering.
fn shown(hex_text: &str) -> String {
    let bytes = hex::decode(hex_text).unwrap_or_default();
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if end == 0 {
        return if bytes.is_empty() {
            "(empty)".into()
        } else {
            format!("(all {} bytes zero)", bytes.len())
        };
    }
    let head = &bytes[..end.min(SHOWN)];
    let more = if end > SHOWN {
        format!(" … {} more", end - SHOWN)
    } else {
        String::new()
    };
    format!(
        "{}{more}  \"{}\"",
        hex::encode_upper(head),
        inspect::printable(head)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_and_without_the_key() {
        let master = MasterKey::from_bytes(&[5; 32]);
        let bytes = image::encode(&vsc_core::sample::card().into_state(), &master).unwrap();
        let open = render(&describe(&bytes, Some(&master)).unwrap());
        assert!(open.contains("integrity    verified"));
        assert!(open.contains("\"ERIKA MUSTERMANN\""));
        assert!(open.contains("user PIN (01)  3 of 3 tries left, 6 to 8 characters, set"));
        assert!(open.contains("01  AES-128  internal-authenticate, loaded"));
        assert!(!open.contains("Heidestra"), "private contents never shown");
        let closed = render(&describe(&bytes, None).unwrap());
        assert!(closed.contains("NOT verified"));
        assert!(closed.contains("sealed, not opened without the issuer key: private area"));
        assert!(!closed.contains("passwords"));
        let other = MasterKey::from_bytes(&[6; 32]);
        assert!(matches!(
            describe(&bytes, Some(&other)),
            Err(ImageError::WrongIssuerKey { .. })
        ));
    }

    #[test]
    fn piv_objects_slots_and_passwords_are_shown_never_their_values() {
        let mut card = vsc_core::sample::piv_token([0x56, 0x53, 0x43, 0x44, 0, 0, 0x30, 0x01]);
        let send = |card: &mut vsc_core::card::Card, hex: &str| {
            card.transmit(&hex::decode(hex.replace(' ', "")).unwrap())
        };
        send(&mut card, "00A4040005A000000308");
        // Mutual authentication with the factory key, as yubico-piv-tool does it.
        let key = vsc_core::security::BlockKey::new(
            vsc_core::security::BlockAlgorithm::Tdes,
            &vsc_core::applications::piv::DEFAULT_MANAGEMENT_KEY,
        )
        .unwrap();
        let witness = send(&mut card, "0087039B047C028000");
        let plain = key.decrypt_block(&witness[4..12]).unwrap();
        let step = format!(
            "0087039B167C1480 08{}8108 0102030405060708",
            hex::encode(plain)
        );
        assert_eq!(send(&mut card, &step)[12..], [0x90, 0x00]);
        assert_eq!(send(&mut card, "0047009C05AC03800111")[..2], [0x7F, 0x49]);
        assert_eq!(
            send(&mut card, "00DB3FFF0C 5C035FC109 5305 4552494B41"),
            [0x90, 0x00]
        );
        send(&mut card, "0020008008 393939393939FFFF");
        let master = MasterKey::from_bytes(&[5; 32]);
        let bytes = image::encode(&card.into_state(), &master).unwrap();
        let open = render(&describe(&bytes, Some(&master)).unwrap());
        for expected in [
            "application  PIV A000000308000010000100, active",
            "Card Holder Unique Identifier (5FC102): 59 bytes",
            "GUID: 0E13C84171428BA7A975D8AF2F146B1B",
            "Printed Information (5FC109, behind the PIN): 5 bytes",
            "management key (9B): 3DES, the factory default",
            "9C (Digital Signature) NIST P-256, generated, PIN always, private key on the card",
            "PIN            2 of 3 tries left, 6 to 8 bytes",
            "PUK            3 of 3 tries left, 6 to 8 bytes",
        ] {
            assert!(open.contains(expected), "{expected}: {open}");
        }
        assert!(
            !open.contains("ERIKA") && !open.contains("4552494B41"),
            "{open}"
        );
        let closed = render(&describe(&bytes, None).unwrap());
        assert!(closed.contains("9C (Digital Signature) NIST P-256, generated, PIN always"));
        assert!(!closed.contains("Printed Information") && !closed.contains("management key"));
    }

    #[test]
    fn with_a_key_every_tampered_image_is_reported_as_tampered() {
        // Issue 9, defect 7: some bit flips and an appended byte were reported as "clear area
        // cannot be decoded"; the MAC is checked first now.
        let master = MasterKey::from_bytes(&[5; 32]);
        let bytes =
            image::encode(&vsc_core::sample::card_with_openpgp().into_state(), &master).unwrap();
        let mut appended = bytes.clone();
        appended.push(0);
        let mut variants = vec![appended];
        for i in (32..bytes.len()).step_by(7) {
            for bit in [0x01, 0x80] {
                let mut flipped = bytes.clone();
                flipped[i] ^= bit;
                variants.push(flipped);
            }
        }
        for variant in &variants {
            match describe(variant, Some(&master)) {
                Err(ImageError::Tampered | ImageError::Truncated(_)) => {}
                other => panic!("{other:?}"),
            }
            if let Err(error) = describe(variant, None) {
                assert!(matches!(error, ImageError::Unverified(_)), "{error}");
                assert!(
                    error.to_string().contains("nothing in it is verified"),
                    "{error}"
                );
            }
        }
        let open = render(&describe(&bytes, Some(&master)).unwrap());
        assert!(
            open.contains("application  OpenPGP 3.4 D276000124010304FF56000000010000, active"),
            "{open}"
        );
        assert!(
            open.contains("PW1            3 of 3 tries left, 6 to 127 bytes"),
            "{open}"
        );
        assert!(
            open.contains("signature      rsa2048, none, no private key"),
            "{open}"
        );
        let closed = render(&describe(&bytes, None).unwrap());
        assert!(closed.contains("passwords and keys sealed"), "{closed}");
    }
}

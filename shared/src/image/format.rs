//! The byte layout of a VSC image: header, four sections, MAC (see docs/image-format.md).
//! Version 2 is written; versions 1 and 2 are read.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Area, ImageError};
use crate::applications::{Application, KeyPart, Parts, PasswordPart, PrivatePart, PublicPart};
use crate::card::{CardState, LifeCycle};
use crate::crypto::sha256::hmac_sha256;
use crate::crypto::{KeyCheckValue, Label, MasterKey, SealKey, SealedArea, derive};
use crate::fs::{Df, Fid, FileSystem, Node};
use crate::security::{KeyArea, PasswordArea};

/// The first 8 bytes of every image.
pub const MAGIC: [u8; 8] = *b"VSCIMAGE";
/// The format version this program writes.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this program reads.
pub const OLDEST_VERSION: u16 = 1;

/// Version 1: magic, version, UID, issuer key check value, section count.
const HEADER_LEN_V1: usize = 8 + 2 + 8 + KeyCheckValue::LEN + 1;
/// Version 2 adds the generation (8 bytes) before the section count.
const HEADER_LEN_V2: usize = HEADER_LEN_V1 + 8;
const MAC_LEN: usize = 32;
const SECTIONS: [Area; 4] = [
    Area::Clear,
    Area::Private,
    Area::SecretKeys,
    Area::Passwords,
];

/// Version 2's clear section: the life cycle, every file but DF.PRIVATE, where DF.PRIVATE sits
/// among the MF's children, and each application's public objects.
#[derive(Serialize, Deserialize)]
struct ClearArea {
    life_cycle: LifeCycle,
    fs: FileSystem,
    private_at: Option<u32>,
    applications: Vec<PublicPart>,
}

/// Version 2's private section: DF.PRIVATE and each application's private objects.
#[derive(Serialize, Deserialize)]
struct PrivateArea {
    df: Option<Df>,
    applications: Vec<PrivatePart>,
}

/// Version 2's secret key section.
#[derive(Serialize, Deserialize)]
struct SecretKeyArea {
    keys: KeyArea,
    applications: Vec<KeyPart>,
}

/// Version 2's password section.
#[derive(Serialize, Deserialize)]
struct PasswordSection {
    passwords: PasswordArea,
    applications: Vec<PasswordPart>,
}

/// What an image shows without the issuer key: nothing in it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearView {
    /// The format version.
    pub version: u16,
    /// The card's UID.
    pub uid: [u8; 8],
    /// The check value of the issuer key the image was sealed under.
    pub issuer_kcv: KeyCheckValue,
    /// The generation (0 for version 1 images, which have none).
    pub generation: u64,
    /// The card's life cycle.
    pub life_cycle: LifeCycle,
    /// Every file but DF.PRIVATE (which is sealed).
    pub fs: FileSystem,
    /// Each application's public objects.
    pub applications: Vec<PublicPart>,
    /// The size of each sealed area's section, in bytes.
    pub sealed: Vec<(Area, usize)>,
}

/// An image opened: the card's state (its generation included) and the format version read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The state.
    pub state: CardState,
    /// The format version the file had.
    pub version: u16,
}

/// The image of `state`, sealed under keys derived from `master`.
pub fn encode(state: &CardState, master: &MasterKey) -> Result<Vec<u8>, ImageError> {
    encode_with_rng(state, master, &mut rand::rngs::OsRng)
}

/// [`encode`] with the sealing IVs drawn from `rng`: a seeded generator makes reproducible test
/// vectors. Never use anything but a cryptographic generator for real images.
pub fn encode_with_rng<R: RngCore + CryptoRng>(
    state: &CardState,
    master: &MasterKey,
    rng: &mut R,
) -> Result<Vec<u8>, ImageError> {
    let uid = state.uid().ok_or(ImageError::NoUid)?.0;
    let mut fs = state.fs.clone();
    let private_at = fs.mf.children.iter().position(is_private);
    let private: Option<Df> = match private_at.map(|i| fs.mf.children.remove(i)) {
        Some(Node::Df(df)) => Some(df),
        _ => None,
    };
    let mut public_parts = Vec::new();
    let mut private_parts = Vec::new();
    let mut key_parts = Vec::new();
    let mut password_parts = Vec::new();
    for application in &state.applications {
        let parts = application.split();
        public_parts.push(parts.public);
        private_parts.push(parts.private);
        key_parts.push(parts.keys);
        password_parts.push(parts.passwords);
    }
    let clear = ClearArea {
        life_cycle: state.life_cycle,
        fs,
        private_at: private_at.map(|i| i as u32),
        applications: public_parts,
    };
    let clear = postcard::to_allocvec(&clear).map_err(|_| ImageError::Malformed("clear area"))?;
    let private = serialize(
        &PrivateArea {
            df: private,
            applications: private_parts,
        },
        "private area",
    )?;
    let keys = serialize(
        &SecretKeyArea {
            keys: state.keys.clone(),
            applications: key_parts,
        },
        "secret key area",
    )?;
    let passwords = serialize(
        &PasswordSection {
            passwords: state.passwords.clone(),
            applications: password_parts,
        },
        "password area",
    )?;

    let mut out =
        Vec::with_capacity(HEADER_LEN_V2 + clear.len() + private.len() + keys.len() + 512);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&uid);
    out.extend_from_slice(&master.check_value().to_bytes());
    out.extend_from_slice(&state.generation.to_be_bytes());
    out.push(SECTIONS.len() as u8);
    push_section(&mut out, Area::Clear, &clear);
    for (area, plaintext) in [
        (Area::Private, private),
        (Area::SecretKeys, keys),
        (Area::Passwords, passwords),
    ] {
        let key = SealKey::derive(master, sealed_area(area), &uid);
        let sealed = key.seal_with_rng(rng, &aad(FORMAT_VERSION, area, &uid), &plaintext);
        let mut body = Vec::with_capacity(8 + sealed.len());
        body.extend_from_slice(&uid);
        body.extend_from_slice(&sealed);
        push_section(&mut out, area, &body);
    }
    let mac = hmac_sha256(&derive(master, Label::ImageMac, &uid), &[&out]);
    out.extend_from_slice(&mac);
    Ok(out)
}

/// Opens an image: everything is checked (format, issuer key, MAC, every seal) before any of
/// it is used.
pub fn decode(bytes: &[u8], master: &MasterKey) -> Result<CardState, ImageError> {
    open(bytes, master).map(|opened| opened.state)
}

/// [`decode`], also saying which format version the file had.
pub fn open(bytes: &[u8], master: &MasterKey) -> Result<Opened, ImageError> {
    let header = Header::parse(bytes)?;
    let key_kcv = master.check_value();
    if header.kcv != key_kcv {
        return Err(ImageError::WrongIssuerKey {
            image: header.kcv,
            key: key_kcv,
        });
    }
    if bytes.len() < header.len + MAC_LEN {
        return Err(ImageError::Truncated("MAC"));
    }
    let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    let expected = hmac_sha256(&derive(master, Label::ImageMac, &header.uid), &[body]);
    if !bool::from(expected.ct_eq(mac)) {
        return Err(diagnose(bytes, &header, master));
    }

    // Authenticated from here on: a failure is a program and format mismatch, not an attack.
    let sections = sections(&body[header.len..], header.count)
        .map_err(|_| ImageError::Malformed("section layout"))?;
    let open = |area: Area| -> Result<Zeroizing<Vec<u8>>, ImageError> {
        let section = sections[usize::from(area.tag() - 1)];
        let (uid, sealed) = section
            .split_at_checked(8)
            .ok_or(ImageError::Malformed(area.name()))?;
        if uid != header.uid {
            let found = uid
                .try_into()
                .map_err(|_| ImageError::Malformed(area.name()))?;
            return Err(ImageError::ForeignArea {
                area,
                uid: header.uid,
                found,
            });
        }
        SealKey::derive(master, sealed_area(area), &header.uid)
            .open(&aad(header.version, area, &header.uid), sealed)
            .map_err(|_| ImageError::Malformed(area.name()))
    };
    let state = match header.version {
        1 => {
            let clear: v1::ClearArea = deserialize(sections[0], "clear area")?;
            let private: Option<Df> = deserialize(&open(Area::Private)?, "private area")?;
            let keys: KeyArea = deserialize(&open(Area::SecretKeys)?, "secret key area")?;
            let passwords: v1::PasswordArea =
                deserialize(&open(Area::Passwords)?, "password area")?;
            assemble(
                clear.life_cycle,
                clear.fs,
                clear.private_at,
                private,
                keys,
                passwords.into_current(),
                Vec::new(),
                0,
            )?
        }
        _ => {
            let clear: ClearArea = deserialize(sections[0], "clear area")?;
            let private: PrivateArea = deserialize(&open(Area::Private)?, "private area")?;
            let keys: SecretKeyArea = deserialize(&open(Area::SecretKeys)?, "secret key area")?;
            let passwords: PasswordSection = deserialize(&open(Area::Passwords)?, "password area")?;
            let count = clear.applications.len();
            if [
                private.applications.len(),
                keys.applications.len(),
                passwords.applications.len(),
            ] != [count; 3]
            {
                return Err(ImageError::Malformed("applications"));
            }
            let applications = clear
                .applications
                .into_iter()
                .zip(private.applications)
                .zip(keys.applications)
                .zip(passwords.applications)
                .map(|(((public, private), keys), passwords)| {
                    Application::join(Parts {
                        public,
                        private,
                        keys,
                        passwords,
                    })
                    .ok_or(ImageError::Malformed("applications"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            assemble(
                clear.life_cycle,
                clear.fs,
                clear.private_at,
                private.df,
                keys.keys,
                passwords.passwords,
                applications,
                header.generation,
            )?
        }
    };
    if state.uid().map(|uid| uid.0) != Some(header.uid) {
        return Err(ImageError::Malformed("UID"));
    }
    Ok(Opened {
        state,
        version: header.version,
    })
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    life_cycle: LifeCycle,
    mut fs: FileSystem,
    private_at: Option<u32>,
    private: Option<Df>,
    keys: KeyArea,
    passwords: PasswordArea,
    applications: Vec<Application>,
    generation: u64,
) -> Result<CardState, ImageError> {
    match (private, private_at) {
        (Some(df), Some(at)) if (at as usize) <= fs.mf.children.len() => {
            fs.mf.children.insert(at as usize, Node::Df(df));
        }
        (None, None) => {}
        _ => return Err(ImageError::Malformed("private area position")),
    }
    Ok(CardState {
        life_cycle,
        fs,
        passwords,
        keys,
        applications,
        generation,
    })
}

/// Reads what an image holds in clear, without a key. Nothing of it is verified: the MAC needs
/// the issuer key, so a failure here says only that the bytes do not read, never why.
pub fn read_clear(bytes: &[u8]) -> Result<ClearView, ImageError> {
    let header = Header::parse(bytes)?;
    let body = bytes
        .get(..bytes.len().saturating_sub(MAC_LEN))
        .unwrap_or_default();
    let sections = sections(body.get(header.len..).unwrap_or_default(), header.count)
        .map_err(|_| ImageError::Unverified("section layout"))?;
    let (life_cycle, fs, applications) = if header.version == 1 {
        let clear: v1::ClearArea =
            postcard::from_bytes(sections[0]).map_err(|_| ImageError::Unverified("clear area"))?;
        (clear.life_cycle, clear.fs, Vec::new())
    } else {
        let clear: ClearArea =
            postcard::from_bytes(sections[0]).map_err(|_| ImageError::Unverified("clear area"))?;
        (clear.life_cycle, clear.fs, clear.applications)
    };
    Ok(ClearView {
        version: header.version,
        uid: header.uid,
        issuer_kcv: header.kcv,
        generation: header.generation,
        life_cycle,
        fs,
        applications,
        sealed: SECTIONS[1..]
            .iter()
            .map(|area| (*area, sections[usize::from(area.tag() - 1)].len()))
            .collect(),
    })
}

/// The fixed-size start of an image.
struct Header {
    version: u16,
    len: usize,
    uid: [u8; 8],
    kcv: KeyCheckValue,
    generation: u64,
    count: u8,
}

impl Header {
    fn parse(bytes: &[u8]) -> Result<Header, ImageError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) {
                ImageError::Truncated("header")
            } else {
                ImageError::NotAnImage
            });
        }
        let version = match bytes.get(8..10) {
            Some([hi, lo]) => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(ImageError::Truncated("header")),
        };
        let len = match version {
            1 => HEADER_LEN_V1,
            2 => HEADER_LEN_V2,
            _ => return Err(ImageError::UnsupportedVersion(version)),
        };
        let header = bytes.get(..len).ok_or(ImageError::Truncated("header"))?;
        let mut uid = [0; 8];
        uid.copy_from_slice(&header[10..18]);
        let mut kcv = [0; KeyCheckValue::LEN];
        kcv.copy_from_slice(&header[18..18 + KeyCheckValue::LEN]);
        let generation = match version {
            1 => 0,
            _ => {
                let mut generation = [0; 8];
                generation.copy_from_slice(&header[23..31]);
                u64::from_be_bytes(generation)
            }
        };
        Ok(Header {
            version,
            len,
            uid,
            kcv: KeyCheckValue::from_bytes(kcv),
            generation,
            count: header[len - 1],
        })
    }
}

/// The four sections' bodies, which must fill `body` exactly, in order.
fn sections(mut body: &[u8], count: u8) -> Result<[&[u8]; 4], ImageError> {
    if usize::from(count) != SECTIONS.len() {
        return Err(ImageError::Malformed("section count"));
    }
    let mut out: [&[u8]; 4] = [&[]; 4];
    for (slot, area) in out.iter_mut().zip(SECTIONS) {
        let (&tag, rest) = body
            .split_first()
            .ok_or(ImageError::Truncated("sections"))?;
        if tag != area.tag() {
            return Err(ImageError::Malformed("section order"));
        }
        let (len, rest) = rest
            .split_at_checked(4)
            .ok_or(ImageError::Truncated("sections"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (section, rest) = rest
            .split_at_checked(len)
            .ok_or(ImageError::Truncated("sections"))?;
        *slot = section;
        body = rest;
    }
    if body.is_empty() {
        Ok(out)
    } else {
        Err(ImageError::Malformed("trailing bytes"))
    }
}

/// Why the MAC failed, as far as the unauthenticated bytes tell.
fn diagnose(bytes: &[u8], header: &Header, master: &MasterKey) -> ImageError {
    let after_header = &bytes[header.len..];
    // Where would the sections end, read as they claim?
    let mut at = 0;
    let mut foreign = None;
    let mut own = 0;
    for area in SECTIONS {
        let Some(len) = after_header.get(at + 1..at + 5) else {
            return ImageError::Truncated("sections");
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let start = at + 5;
        if area != Area::Clear
            && let Some(uid) = after_header.get(start..start + 8)
            && let Ok(found) = <[u8; 8]>::try_from(uid)
        {
            if found == header.uid {
                own += 1;
            } else if let Some(sealed) = after_header.get(start + 8..start.saturating_add(len))
                && SealKey::derive(master, sealed_area(area), &found)
                    .open(&aad(header.version, area, &found), sealed)
                    .is_ok()
            {
                // It really is another card's area, sealed under this issuer's key.
                foreign.get_or_insert(ImageError::ForeignArea {
                    area,
                    uid: header.uid,
                    found,
                });
            }
        }
        at = start.saturating_add(len);
    }
    if at.saturating_add(MAC_LEN) > after_header.len() {
        return ImageError::Truncated("sections");
    }
    // Some areas of this card, some of another: pasted in. None of this card: the header's UID
    // itself was changed.
    match foreign {
        Some(error) if own > 0 => error,
        _ => ImageError::Tampered,
    }
}

fn push_section(out: &mut Vec<u8>, area: Area, body: &[u8]) {
    out.push(area.tag());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// The associated data a sealed section is bound to: magic, version, area tag, UID.
fn aad(version: u16, area: Area, uid: &[u8; 8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(19);
    aad.extend_from_slice(&MAGIC);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.push(area.tag());
    aad.extend_from_slice(uid);
    aad
}

fn sealed_area(area: Area) -> SealedArea {
    match area {
        Area::Private | Area::Clear => SealedArea::Private,
        Area::SecretKeys => SealedArea::SecretKeys,
        Area::Passwords => SealedArea::Passwords,
    }
}

fn is_private(node: &Node) -> bool {
    matches!(node, Node::Df(df) if df.fid == Fid::DF_PRIVATE)
}

fn serialize<T: Serialize>(
    value: &T,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ImageError> {
    postcard::to_allocvec(value)
        .map(Zeroizing::new)
        .map_err(|_| ImageError::Malformed(what))
}

fn deserialize<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<T, ImageError> {
    postcard::from_bytes(bytes).map_err(|_| ImageError::Malformed(what))
}

/// Version 1's own types, frozen as that version wrote them, for reading old images.
mod v1 {
    use serde::Deserialize;

    use crate::card::LifeCycle;
    use crate::fs::FileSystem;
    use crate::security::{Password, PasswordPolicy, SecretBytes};

    #[derive(Deserialize)]
    pub struct ClearArea {
        pub life_cycle: LifeCycle,
        pub fs: FileSystem,
        pub private_at: Option<u32>,
    }

    #[derive(Deserialize)]
    pub struct PasswordArea {
        passwords: [Option<OldPassword>; 2],
    }

    #[derive(Deserialize)]
    struct OldPassword {
        policy: OldPolicy,
        tries_left: u8,
        value: Option<SecretBytes>,
    }

    #[derive(Deserialize)]
    struct OldPolicy {
        min_len: u8,
        max_len: u8,
        max_tries: u8,
    }

    impl PasswordArea {
        pub fn into_current(self) -> crate::security::PasswordArea {
            crate::security::PasswordArea::from_slots(self.passwords.map(|password| {
                password.map(|old| {
                    Password::from_parts(
                        PasswordPolicy {
                            min_len: old.policy.min_len,
                            max_len: old.policy.max_len,
                            max_tries: old.policy.max_tries,
                            format: crate::security::PasswordFormat::Padded,
                        },
                        old.tries_left,
                        old.value,
                    )
                })
            }))
        }
    }
}

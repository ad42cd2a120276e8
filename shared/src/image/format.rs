//! The byte layout of a VSC image: header, four sections, MAC (see docs/image-format.md).

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Area, ImageError};
use crate::card::{CardState, LifeCycle};
use crate::crypto::sha256::hmac_sha256;
use crate::crypto::{KeyCheckValue, Label, MasterKey, SealKey, SealedArea, derive};
use crate::fs::{Df, Fid, FileSystem, Node};
use crate::security::{KeyArea, PasswordArea};

/// The first 8 bytes of every image.
pub const MAGIC: [u8; 8] = *b"VSCIMAGE";
/// The format version this program writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Magic, version, UID, issuer key check value, section count.
const HEADER_LEN: usize = 8 + 2 + 8 + KeyCheckValue::LEN + 1;
const MAC_LEN: usize = 32;
const SECTIONS: [Area; 4] = [
    Area::Clear,
    Area::Private,
    Area::SecretKeys,
    Area::Passwords,
];

/// What the clear section holds: the life cycle and every file but DF.PRIVATE, and where
/// DF.PRIVATE sits among the MF's children.
#[derive(Serialize, Deserialize)]
struct ClearArea {
    life_cycle: LifeCycle,
    fs: FileSystem,
    private_at: Option<u32>,
}

/// What an image shows without the issuer key: nothing in it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearView {
    /// The card's UID.
    pub uid: [u8; 8],
    /// The check value of the issuer key the image was sealed under.
    pub issuer_kcv: KeyCheckValue,
    /// The card's life cycle.
    pub life_cycle: LifeCycle,
    /// Every file but DF.PRIVATE (which is sealed).
    pub fs: FileSystem,
    /// The size of each sealed area's section, in bytes.
    pub sealed: Vec<(Area, usize)>,
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
    let clear = ClearArea {
        life_cycle: state.life_cycle,
        fs,
        private_at: private_at.map(|i| i as u32),
    };
    let clear = postcard::to_allocvec(&clear).map_err(|_| ImageError::Malformed("clear area"))?;
    let private = serialize(&private, "private area")?;
    let keys = serialize(&state.keys, "secret key area")?;
    let passwords = serialize(&state.passwords, "password area")?;

    let mut out = Vec::with_capacity(HEADER_LEN + clear.len() + private.len() + keys.len() + 512);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&uid);
    out.extend_from_slice(&master.check_value().to_bytes());
    out.push(SECTIONS.len() as u8);
    push_section(&mut out, Area::Clear, &clear);
    for (area, plaintext) in [
        (Area::Private, private),
        (Area::SecretKeys, keys),
        (Area::Passwords, passwords),
    ] {
        let key = SealKey::derive(master, sealed_area(area), &uid);
        let sealed = key.seal_with_rng(rng, &aad(area, &uid), &plaintext);
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
    let header = Header::parse(bytes)?;
    let key_kcv = master.check_value();
    if header.kcv != key_kcv {
        return Err(ImageError::WrongIssuerKey {
            image: header.kcv,
            key: key_kcv,
        });
    }
    if bytes.len() < HEADER_LEN + MAC_LEN {
        return Err(ImageError::Truncated("MAC"));
    }
    let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    let expected = hmac_sha256(&derive(master, Label::ImageMac, &header.uid), &[body]);
    if !bool::from(expected.ct_eq(mac)) {
        return Err(diagnose(bytes, &header, master));
    }

    // Authenticated from here on: a failure is a program and format mismatch, not an attack.
    let sections = sections(&body[HEADER_LEN..], header.count)
        .map_err(|_| ImageError::Malformed("section layout"))?;
    let mut clear: ClearArea =
        postcard::from_bytes(sections[0]).map_err(|_| ImageError::Malformed("clear area"))?;
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
            .open(&aad(area, &header.uid), sealed)
            .map_err(|_| ImageError::Malformed(area.name()))
    };
    let private: Option<Df> = deserialize(&open(Area::Private)?, "private area")?;
    let keys: KeyArea = deserialize(&open(Area::SecretKeys)?, "secret key area")?;
    let passwords: PasswordArea = deserialize(&open(Area::Passwords)?, "password area")?;

    match (private, clear.private_at) {
        (Some(df), Some(at)) if (at as usize) <= clear.fs.mf.children.len() => {
            clear.fs.mf.children.insert(at as usize, Node::Df(df));
        }
        (None, None) => {}
        _ => return Err(ImageError::Malformed("private area position")),
    }
    let state = CardState {
        life_cycle: clear.life_cycle,
        fs: clear.fs,
        passwords,
        keys,
    };
    if state.uid().map(|uid| uid.0) != Some(header.uid) {
        return Err(ImageError::Malformed("UID"));
    }
    Ok(state)
}

/// Reads what an image holds in clear, without a key. Nothing of it is verified: the MAC needs
/// the issuer key.
pub fn read_clear(bytes: &[u8]) -> Result<ClearView, ImageError> {
    let header = Header::parse(bytes)?;
    let body = bytes
        .get(..bytes.len().saturating_sub(MAC_LEN))
        .unwrap_or_default();
    let sections = sections(body.get(HEADER_LEN..).unwrap_or_default(), header.count)?;
    let clear: ClearArea =
        postcard::from_bytes(sections[0]).map_err(|_| ImageError::Malformed("clear area"))?;
    Ok(ClearView {
        uid: header.uid,
        issuer_kcv: header.kcv,
        life_cycle: clear.life_cycle,
        fs: clear.fs,
        sealed: SECTIONS[1..]
            .iter()
            .map(|area| (*area, sections[usize::from(area.tag() - 1)].len()))
            .collect(),
    })
}

/// The fixed-size start of an image.
struct Header {
    uid: [u8; 8],
    kcv: KeyCheckValue,
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
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(ImageError::Truncated("header"))?;
        let version = u16::from_be_bytes([header[8], header[9]]);
        if version != FORMAT_VERSION {
            return Err(ImageError::UnsupportedVersion(version));
        }
        let mut uid = [0; 8];
        uid.copy_from_slice(&header[10..18]);
        let mut kcv = [0; KeyCheckValue::LEN];
        kcv.copy_from_slice(&header[18..18 + KeyCheckValue::LEN]);
        Ok(Header {
            uid,
            kcv: KeyCheckValue::from_bytes(kcv),
            count: header[HEADER_LEN - 1],
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
    let after_header = &bytes[HEADER_LEN..];
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
                    .open(&aad(area, &found), sealed)
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
fn aad(area: Area, uid: &[u8; 8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(19);
    aad.extend_from_slice(&MAGIC);
    aad.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
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

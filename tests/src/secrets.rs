//! What of a card must never leave it, for the status-word sweep and the fuzzers: the secret
//! bytes of its password and secret key areas (every application's too), and a scan of
//! responses for them.
//!
//! The secrets are found the way the image seals them, so an application added later is
//! covered without naming it here: every [`SecretBytes`] in the VSC file system's password and
//! key areas and in each application's key and password parts
//! ([`vsc_core::applications::Application::split`]). An RSA or EC private key is held as DER,
//! which also carries the public key; only its private components count (an RSA key's d, p, q,
//! d mod (p-1), d mod (q-1) and q⁻¹ mod p, an EC key's scalar).
//!
//! A response leaks when it holds a *window* of a secret: its first [`WINDOW`] bytes or any
//! other run of that many (the whole secret when shorter), so a partial leak is caught too.
//! Bytes the card was given or holds in the clear are excused ([`SecretScan::excuse`]): a card
//! may echo what it was told (a fuzzer may write a PIN into a file and read it back), and a
//! secret that is also public data (the sample card's PUK `12345678` is a run of its portrait's
//! byte ramp) cannot be told apart from it. Secrets shorter than [`MIN_SECRET`] bytes are too
//! short to tell from chance and are not looked for.

use std::collections::HashSet;
use std::fmt;

use openssl::ec::EcKey;
use openssl::rsa::Rsa;
use serde::Serialize;
use serde::ser;
use vsc_core::card::CardState;
use zeroize::Zeroizing;

/// How many bytes of a secret in a row count as a leak.
pub const WINDOW: usize = 8;

/// Secrets shorter than this are not looked for.
pub const MIN_SECRET: usize = 4;

/// The secrets of one card state and the windows a response must not hold.
#[derive(Clone)]
pub struct SecretScan {
    /// Every window of every secret, keyed by its length and bytes.
    windows: HashSet<Window>,
    /// The window lengths in use (each secret's `min(len, WINDOW)`).
    lengths: Vec<usize>,
    /// Bytes the card holds in the clear or was given: a window found in them is excused.
    /// Searched only when a response holds a window, which is rare, so that a scan stays cheap
    /// to make and to feed.
    excused: Vec<Vec<u8>>,
    secrets: usize,
}

/// A run of at most [`WINDOW`] bytes, packed with its length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Window(u8, u64);

impl Window {
    fn of(bytes: &[u8]) -> Window {
        let mut packed = [0; 8];
        packed[..bytes.len()].copy_from_slice(bytes);
        Window(bytes.len() as u8, u64::from_le_bytes(packed))
    }
}

/// Where a secret was found in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leak {
    /// The offset in the response.
    pub at: usize,
    /// How many bytes in a row.
    pub len: usize,
}

impl SecretScan {
    /// The secrets `state` holds; the bytes it holds in the clear (its files and every
    /// application's public and private objects) are excused.
    pub fn of(state: &CardState) -> SecretScan {
        let mut scan = SecretScan {
            windows: HashSet::new(),
            lengths: Vec::new(),
            excused: Vec::new(),
            secrets: 0,
        };
        scan.add_secrets(state);
        scan.excuse_clear_content(state);
        scan
    }

    /// Adds the secrets `state` holds now (a key generated since, a PIN changed), keeping those
    /// found before.
    pub fn add_secrets(&mut self, state: &CardState) {
        for secret in secrets(state) {
            if secret.len() < MIN_SECRET {
                continue;
            }
            self.secrets += 1;
            let len = secret.len().min(WINDOW);
            if !self.lengths.contains(&len) {
                self.lengths.push(len);
            }
            for window in secret.windows(len) {
                self.windows.insert(Window::of(window));
            }
        }
    }

    /// Excuses the bytes `state` holds in the clear: its file system (DF.PRIVATE included:
    /// private data is behind the PIN, not secret) and each application's public and private
    /// objects.
    pub fn excuse_clear_content(&mut self, state: &CardState) {
        let mut clear = postcard::to_allocvec(&state.fs).unwrap_or_default();
        for application in &state.applications {
            let parts = application.split();
            clear.extend(postcard::to_allocvec(&parts.public).unwrap_or_default());
            clear.extend(postcard::to_allocvec(&parts.private).unwrap_or_default());
        }
        self.excused.push(clear);
    }

    /// Excuses `bytes`: what the card was given (a command) may come back.
    pub fn excuse(&mut self, bytes: &[u8]) {
        if bytes.len() >= MIN_SECRET {
            self.excused.push(bytes.to_vec());
        }
    }

    /// The first window of a secret in `response` that is not excused.
    pub fn leak(&self, response: &[u8]) -> Option<Leak> {
        self.lengths.iter().find_map(|&len| {
            response.windows(len).enumerate().find_map(|(at, window)| {
                (self.windows.contains(&Window::of(window)) && !self.is_excused(window))
                    .then_some(Leak { at, len })
            })
        })
    }

    fn is_excused(&self, window: &[u8]) -> bool {
        self.excused
            .iter()
            .any(|bytes| bytes.windows(window.len()).any(|w| w == window))
    }

    /// How many secrets are looked for.
    pub fn secrets(&self) -> usize {
        self.secrets
    }
}

impl fmt::Debug for SecretScan {
    /// The number of secrets, never a byte of them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretScan")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// Every secret of `state`: the values of its password and key objects (an asymmetric key's
/// private components), its channel keys, and each application's; with a padded password also
/// its characters without the padding.
pub fn secrets(state: &CardState) -> Vec<Zeroizing<Vec<u8>>> {
    let mut collector = Collector::default();
    let _ = state.passwords.serialize(&mut collector);
    let _ = state.keys.serialize(&mut collector);
    for application in &state.applications {
        let parts = application.split();
        let _ = parts.keys.serialize(&mut collector);
        let _ = parts.passwords.serialize(&mut collector);
    }
    let mut out = Vec::new();
    for secret in collector.found {
        if let Ok(rsa) = Rsa::private_key_from_der(&secret) {
            let components = [rsa.p(), rsa.q(), rsa.dmp1(), rsa.dmq1(), rsa.iqmp()];
            for component in std::iter::once(rsa.d()).chain(components.into_iter().flatten()) {
                out.push(Zeroizing::new(component.to_vec()));
            }
        } else if let Ok(ec) = EcKey::private_key_from_der(&secret) {
            out.push(Zeroizing::new(ec.private_key().to_vec()));
        } else {
            let unpadded = secret
                .iter()
                .rposition(|b| *b != 0xFF && *b != 0x00)
                .map_or(0, |last| last + 1);
            if unpadded < secret.len() {
                out.push(Zeroizing::new(secret[..unpadded].to_vec()));
            }
            out.push(secret);
        }
    }
    out
}

/// A serde serializer that keeps the bytes of every `SecretBytes` it meets and ignores the
/// rest: how the image's areas are walked without naming their types.
#[derive(Default)]
struct Collector {
    /// The bytes of the `SecretBytes` being serialized.
    capture: Option<Zeroizing<Vec<u8>>>,
    found: Vec<Zeroizing<Vec<u8>>>,
}

/// The name `#[derive(Serialize)]` gives `vsc_core::security::SecretBytes`'s newtype.
const SECRET_TYPE: &str = "SecretBytes";

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot walk the state")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Never
    }
}

impl Collector {
    fn byte(&mut self, byte: u8) {
        if let Some(capture) = &mut self.capture {
            capture.push(byte);
        }
    }
}

macro_rules! ignore_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), Never> { Ok(()) })*
    };
}

impl ser::Serializer for &mut Collector {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ignore_scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_f32: f32, serialize_f64: f64, serialize_char: char, serialize_str: &str,
    );

    fn serialize_u8(self, value: u8) -> Result<(), Never> {
        self.byte(value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Never> {
        if let Some(capture) = &mut self.capture {
            capture.extend_from_slice(value);
        }
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Never> {
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Never> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Never> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Never> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Never> {
        Ok(())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        if name != SECRET_TYPE || self.capture.is_some() {
            return value.serialize(self);
        }
        self.capture = Some(Zeroizing::new(Vec::new()));
        let result = value.serialize(&mut *self);
        if let Some(secret) = self.capture.take() {
            self.found.push(secret);
        }
        result
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        Ok(self)
    }
}

macro_rules! compound {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(impl ser::$trait for &mut Collector {
            type Ok = ();
            type Error = Never;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Never> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Never> {
                Ok(())
            }
        })*
    };
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for &mut Collector {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Never> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Never> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Collector {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Collector {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsc_core::sample;

    #[test]
    fn the_sample_cards_secrets_are_found() {
        let state = sample::card().into_state();
        let found = secrets(&state);
        let has = |value: &[u8]| found.iter().any(|s| s.as_slice() == value);
        assert!(has(sample::USER_PIN), "the padded user PIN");
        assert!(has(b"123456"), "the user PIN without its padding");
        assert!(has(sample::PUK));
        assert!(has(&sample::KEY_01));

        let scan = SecretScan::of(&state);
        let mut response = b"data ".to_vec();
        response.extend_from_slice(&sample::KEY_01[3..11]);
        response.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(scan.leak(&response), Some(Leak { at: 5, len: 8 }));
        assert_eq!(scan.leak(b"ERIKA MUSTERMANN\x90\x00"), None);
        // The PUK is a run of the portrait's byte ramp: public data excuses it.
        assert_eq!(scan.leak(b"12345678\x90\x00"), None);
    }

    #[test]
    fn what_the_card_was_given_is_excused() {
        let state = sample::card().into_state();
        let mut scan = SecretScan::of(&state);
        assert!(scan.leak(&sample::KEY_01).is_some());
        scan.excuse(&sample::KEY_01);
        assert!(scan.leak(&sample::KEY_01).is_none());
    }

    #[test]
    fn an_applications_private_key_is_found_but_not_its_public_key() {
        let mut card = sample::openpgp_token([1, 2, 3, 4, 5, 6, 7, 8]);
        let send = |card: &mut vsc_core::card::Card, hex: &str| {
            card.transmit(&hex::decode(hex.replace(' ', "")).unwrap())
        };
        assert_eq!(send(&mut card, "00A4040006D27600012401"), [0x90, 0x00]);
        assert_eq!(send(&mut card, "0020008308 3132333435363738"), [0x90, 0x00]);
        // Ed25519 attributes for the signature key, then generate it.
        assert_eq!(
            send(&mut card, "00DA00C10A 162B06010401DA470F01"),
            [0x90, 0x00]
        );
        let public = send(&mut card, "0047800002 B600 00");
        assert_eq!(public[public.len() - 2..], [0x90, 0x00]);
        let scan = SecretScan::of(card.state());
        assert!(scan.secrets() > 0);
        assert_eq!(scan.leak(&public), None, "the public key is no secret");
        let seed = secrets(card.state())
            .into_iter()
            .find(|s| s.len() == 32)
            .expect("the Ed25519 seed");
        assert!(scan.leak(&seed).is_some());
    }
}

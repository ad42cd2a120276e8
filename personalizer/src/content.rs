//! Resolving one holder record into the content of that holder's card: the UID, the bytes of
//! every EF and data object, the PIN and PUK, and the key values.
//!
//! A [`Resolver`] binds a [`Profile`] to a record source's header once (field names become
//! column numbers), then turns records into [`CardContent`] at a few microseconds each. The
//! transcript compiler writes exactly what a `CardContent` holds: a transparent EF's bytes from
//! offset 0 (only the bytes the value has, unless the profile pads it), each record EF's records
//! in order, each data object present.
//!
//! Everything resolved is treated as secret: buffers wipe themselves when dropped and `Debug`
//! prints lengths, never values.

pub mod openpgp;
pub mod piv;

use std::collections::HashMap;
use std::fmt;

use rand::rngs::{OsRng, StdRng};
use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use vsc_core::Uid;
use vsc_core::security::{KeyAlgorithm, KeyRef, SecretBytes};
use zeroize::Zeroizing;

use crate::profile::value::{Fault, Inputs};
use crate::profile::{
    Binding, DfSpec, EfPlan, FieldRef, KeySource, PasswordSource, PasswordSpec, Profile,
    ProfileError, UidSource,
};
use crate::records::{Header, Position, Problem, Record, RecordError};

/// Bytes of card content, wiped when dropped.
pub type Bytes = Zeroizing<Vec<u8>>;

/// Derives a card's key from the issuer master key. The issuer's implementation lives with the
/// master key; this crate only asks for keys by UID, reference and algorithm.
pub trait KeyDeriver {
    /// The value of key `reference` of the card `uid`: exactly `algorithm.key_len()` bytes.
    fn derive_key(&self, uid: Uid, reference: KeyRef, algorithm: KeyAlgorithm) -> SecretBytes;
}

/// Everything that goes onto one holder's card.
pub struct CardContent {
    /// The record it came from.
    pub position: Position,
    /// EF.UID.
    pub uid: Uid,
    /// DF.PUBLIC's EFs and data objects, in the order of the file system's public DF.
    pub public: DfContent,
    /// DF.PRIVATE's EFs and data objects, in the order of its private DF.
    pub private: DfContent,
    /// The user PIN's characters (not padded).
    pub pin: SecretBytes,
    /// The PUK's characters (not padded).
    pub puk: SecretBytes,
    /// The key values, in the order of the file system's keys.
    pub keys: Vec<(KeyRef, SecretBytes)>,
    /// The OpenPGP application's content, for a profile with `[openpgp]`. (A profile without
    /// the VSC file system leaves the fields above empty.)
    pub openpgp: Option<openpgp::OpenPgpContent>,
    /// The PIV application's content, for a profile with `[piv]` (its PIN and PUK are `pin`
    /// and `puk` above).
    pub piv: Option<piv::PivContent>,
}

/// The content of one DF.
pub struct DfContent {
    /// One entry per EF of the DF's spec, same order.
    pub files: Vec<EfContent>,
    /// One entry per data object of the DF's spec, same order; `None` when an optional value
    /// was empty (PUT DATA is then not sent).
    pub data_objects: Vec<Option<Bytes>>,
}

impl DfContent {
    /// A DF with nothing to write (a profile without the VSC file system).
    pub fn empty() -> DfContent {
        DfContent {
            files: Vec::new(),
            data_objects: Vec::new(),
        }
    }
}

/// What to write into one EF.
pub enum EfContent {
    /// Nothing: the EF stays as created.
    Empty,
    /// A transparent EF's bytes, written from offset 0 (at most the EF's size).
    Binary(Bytes),
    /// A record EF's records, appended in order.
    Records(Vec<Bytes>),
}

/// A seeded cryptographic RNG for generated values, seeded from the operating system.
pub fn system_rng() -> Result<StdRng, rand::Error> {
    StdRng::from_rng(OsRng)
}

/// Turns records of one source into card content, remembering the run's UIDs to refuse
/// duplicates.
pub struct Resolver<'p, R = StdRng> {
    profile: &'p Profile,
    binding: Binding,
    rng: R,
    uids: HashMap<Uid, Position>,
    scratch: Vec<u8>,
    /// When the run started (seconds since 1970): the creation time of keys the profile
    /// gives none.
    started: u32,
}

impl<'p, R: RngCore + CryptoRng> Resolver<'p, R> {
    /// Binds `profile` to the fields of `header`, failing (naming every missing field) before
    /// any record is read. Generated values come from `rng`.
    pub fn new(profile: &'p Profile, header: &Header, rng: R) -> Result<Self, ProfileError> {
        Ok(Resolver {
            profile,
            binding: profile.bind(header)?,
            rng,
            uids: HashMap::new(),
            scratch: Vec::new(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
        })
    }

    /// The profile.
    pub fn profile(&self) -> &'p Profile {
        self.profile
    }

    /// Resolves one record. Derived keys come from `deriver`.
    pub fn resolve(
        &mut self,
        record: &Record,
        deriver: &impl KeyDeriver,
    ) -> Result<CardContent, RecordError> {
        let position = record.position();
        if record.len() != self.binding.width() {
            return Err(RecordError::record(
                position,
                Problem::ColumnCount {
                    expected: self.binding.width(),
                    found: record.len(),
                },
            ));
        }
        let profile = self.profile;
        let uid = self.uid(record)?;
        let mut inputs = RecordInputs {
            record,
            columns: &self.binding.columns,
            rng: &mut self.rng,
        };
        let mut content = CardContent {
            position,
            uid,
            public: DfContent::empty(),
            private: DfContent::empty(),
            pin: SecretBytes::new(&[]),
            puk: SecretBytes::new(&[]),
            keys: Vec::new(),
            openpgp: None,
            piv: None,
        };
        if let Some(fs) = profile.file_system() {
            content.pin = password(profile, fs.pin(), &mut inputs, position)?;
            content.puk = password(profile, fs.puk(), &mut inputs, position)?;
            content.public = df_content(fs.public(), &mut inputs, &mut self.scratch)
                .map_err(|fault| fault_error(profile, fault, position))?;
            content.private = df_content(fs.private(), &mut inputs, &mut self.scratch)
                .map_err(|fault| fault_error(profile, fault, position))?;
            content.keys = Vec::with_capacity(fs.keys().len());
            for key in fs.keys() {
                let len = key.algorithm.key_len();
                let value = match key.source {
                    KeySource::Generated => {
                        let mut bytes = Zeroizing::new([0u8; 32]);
                        inputs.rng.fill_bytes(&mut bytes[..len]);
                        SecretBytes::new(&bytes[..len])
                    }
                    KeySource::Derived => deriver.derive_key(uid, key.reference, key.algorithm),
                };
                if value.len() != len {
                    return Err(RecordError::record(
                        position,
                        Problem::DerivedKeyLength {
                            reference: key.reference.value(),
                            len: value.len(),
                            expected: len,
                        },
                    ));
                }
                content.keys.push((key.reference, value));
            }
        }
        if let Some(spec) = profile.openpgp() {
            content.openpgp = Some(openpgp::resolve(
                profile,
                spec,
                &mut inputs,
                &mut self.scratch,
                position,
                self.started,
            )?);
        }
        if let Some(spec) = profile.piv() {
            content.pin = piv_password(profile, &spec.pin, &mut inputs, position)?;
            content.puk = piv_password(profile, &spec.puk, &mut inputs, position)?;
            content.piv = Some(piv::resolve(
                profile,
                spec,
                &mut inputs,
                &mut self.scratch,
                position,
                self.started,
            )?);
        }
        self.uids.insert(uid, position);
        Ok(content)
    }

    /// The record's UID, refused if an earlier card of the run has it. (It is remembered only
    /// once the whole record resolves.)
    fn uid(&mut self, record: &Record) -> Result<Uid, RecordError> {
        let position = record.position();
        let mut uid = [0u8; 8];
        match self.profile.uid() {
            UidSource::Field(field) => {
                let name = self.profile.field_name(*field);
                let text = field_text(record, &self.binding, *field);
                let error = |problem| RecordError {
                    item: Some("[uid]".to_string()),
                    ..RecordError::field(position, name, problem)
                };
                if text.is_empty() {
                    return Err(error(Problem::Empty));
                }
                if text.len() != 16 {
                    return Err(error(Problem::WrongLength {
                        len: text.len() / 2,
                        expected: 8,
                    }));
                }
                hex::decode_to_slice(text, &mut uid).map_err(|_| error(Problem::NotHex))?;
            }
            UidSource::Random => loop {
                self.rng.fill_bytes(&mut uid);
                if !self.uids.contains_key(&Uid(uid)) {
                    break;
                }
            },
            UidSource::Serial { prefix, first } => {
                let serial = first
                    .checked_add(record.ordinal().saturating_sub(1))
                    .filter(|s| {
                        let bits = 8 * (8 - prefix.len()) as u32;
                        bits >= 64 || s >> bits == 0
                    })
                    .ok_or_else(|| RecordError::record(position, Problem::SerialExhausted))?;
                uid[..prefix.len()].copy_from_slice(prefix);
                let serial_bytes = serial.to_be_bytes();
                uid[prefix.len()..].copy_from_slice(&serial_bytes[prefix.len()..]);
            }
        }
        let uid = Uid(uid);
        if self.profile.openpgp().is_some() && uid.bytes()[..2] != [0, 0] {
            let mut error = RecordError::record(position, Problem::NotTokenUid);
            if let UidSource::Field(field) = self.profile.uid() {
                error.field = Some(self.profile.field_name(*field).to_string());
                error.item = Some("[uid]".to_string());
            }
            return Err(error);
        }
        if let Some(first) = self.uids.get(&uid) {
            let mut error = RecordError::record(position, Problem::DuplicateUid { first: *first });
            if let UidSource::Field(field) = self.profile.uid() {
                error.field = Some(self.profile.field_name(*field).to_string());
            }
            return Err(error);
        }
        Ok(uid)
    }
}

impl<R> fmt::Debug for Resolver<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("profile", &self.profile.id())
            .field("uids", &self.uids.len())
            .finish_non_exhaustive()
    }
}

struct RecordInputs<'a> {
    record: &'a Record,
    columns: &'a [usize],
    rng: &'a mut dyn RngCore,
}

impl Inputs for RecordInputs<'_> {
    fn field(&self, field: FieldRef) -> &str {
        self.columns
            .get(field.index())
            .and_then(|column| self.record.get(*column))
            .unwrap_or("")
    }

    fn rng(&mut self) -> &mut dyn RngCore {
        self.rng
    }
}

fn field_text<'r>(record: &'r Record, binding: &Binding, field: FieldRef) -> &'r str {
    binding
        .column(field)
        .and_then(|column| record.get(column))
        .unwrap_or("")
}

fn password(
    profile: &Profile,
    spec: &PasswordSpec,
    inputs: &mut RecordInputs,
    position: Position,
) -> Result<SecretBytes, RecordError> {
    let policy = spec.policy;
    match spec.source {
        PasswordSource::Field(field) => {
            let text = inputs.field(field);
            let lengths = usize::from(policy.min_len)..=usize::from(policy.max_len);
            if lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
                Ok(SecretBytes::new(text.as_bytes()))
            } else {
                let problem = Problem::Password {
                    min: policy.min_len,
                    max: policy.max_len,
                };
                Err(RecordError::field(
                    position,
                    profile.field_name(field),
                    problem,
                ))
            }
        }
        PasswordSource::Generated { length } => {
            let mut digits = Zeroizing::new([0u8; 16]);
            let digits = &mut digits[..usize::from(length)];
            for digit in digits.iter_mut() {
                *digit = b'0' + inputs.rng.gen_range(0..10u8);
            }
            Ok(SecretBytes::new(digits))
        }
    }
}

/// A PIV PIN or PUK: digits from a field (of the profile's lengths) or generated.
fn piv_password(
    profile: &Profile,
    spec: &crate::profile::piv::PivPassword,
    inputs: &mut RecordInputs,
    position: Position,
) -> Result<SecretBytes, RecordError> {
    match spec.source {
        PasswordSource::Field(field) => {
            let text = inputs.field(field);
            let lengths = usize::from(spec.min)..=usize::from(spec.max);
            if lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
                Ok(SecretBytes::new(text.as_bytes()))
            } else {
                let problem = Problem::Password {
                    min: spec.min,
                    max: spec.max,
                };
                Err(RecordError::field(
                    position,
                    profile.field_name(field),
                    problem,
                ))
            }
        }
        PasswordSource::Generated { length } => {
            let mut digits = Zeroizing::new([0u8; 16]);
            let digits = &mut digits[..usize::from(length)];
            for digit in digits.iter_mut() {
                *digit = b'0' + inputs.rng.gen_range(0..10u8);
            }
            Ok(SecretBytes::new(digits))
        }
    }
}

fn df_content<'p>(
    spec: &'p DfSpec,
    inputs: &mut RecordInputs,
    scratch: &mut Vec<u8>,
) -> Result<DfContent, Fault<'p>> {
    let mut files = Vec::with_capacity(spec.efs.len());
    for ef in &spec.efs {
        files.push(match &ef.content {
            EfPlan::Nothing => EfContent::Empty,
            EfPlan::Bytes(plan) => match produce(plan, inputs, scratch)? {
                Some(bytes) => EfContent::Binary(bytes),
                None => EfContent::Empty,
            },
            EfPlan::Records(plans) => {
                let mut records = Vec::with_capacity(plans.len());
                for plan in plans {
                    if let Some(bytes) = produce(plan, inputs, scratch)? {
                        records.push(bytes);
                    }
                }
                EfContent::Records(records)
            }
        });
    }
    let mut data_objects = Vec::with_capacity(spec.data_objects.len());
    for object in &spec.data_objects {
        data_objects.push(produce(&object.value, inputs, scratch)?);
    }
    Ok(DfContent {
        files,
        data_objects,
    })
}

/// Runs a plan into the scratch buffer, then copies the value out at its exact size (so the
/// content holds no spare capacity, and the scratch keeps its own for the next value).
fn produce<'p>(
    plan: &'p crate::profile::ValuePlan,
    inputs: &mut RecordInputs,
    scratch: &mut Vec<u8>,
) -> Result<Option<Bytes>, Fault<'p>> {
    scratch.clear();
    let produced = plan.produce(inputs, scratch);
    let value = match produced {
        Ok(true) => Ok(Some(Zeroizing::new(scratch.clone()))),
        Ok(false) => Ok(None),
        Err(fault) => Err(fault),
    };
    zeroize::Zeroize::zeroize(scratch);
    value
}

fn fault_error(profile: &Profile, fault: Fault<'_>, position: Position) -> RecordError {
    RecordError {
        position,
        field: fault.field.map(|f| profile.field_name(f).to_string()),
        item: Some(fault.item.to_string()),
        problem: fault.problem,
    }
}

impl fmt::Debug for CardContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardContent")
            .field("position", &self.position)
            .field("uid", &self.uid)
            .field("public", &self.public)
            .field("private", &self.private)
            .field("pin", &self.pin)
            .field("puk", &self.puk)
            .field("keys", &self.keys)
            .field("openpgp", &self.openpgp)
            .field("piv", &self.piv)
            .finish()
    }
}

impl fmt::Debug for DfContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let objects: Vec<Option<usize>> = self
            .data_objects
            .iter()
            .map(|o| o.as_ref().map(|v| v.len()))
            .collect();
        f.debug_struct("DfContent")
            .field("files", &self.files)
            .field("data_object_lengths", &objects)
            .finish()
    }
}

impl fmt::Debug for EfContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EfContent::Empty => f.write_str("Empty"),
            EfContent::Binary(bytes) => write!(f, "Binary({} bytes)", bytes.len()),
            EfContent::Records(records) => {
                let lengths: Vec<usize> = records.iter().map(|r| r.len()).collect();
                write!(f, "Records(lengths {lengths:?})")
            }
        }
    }
}

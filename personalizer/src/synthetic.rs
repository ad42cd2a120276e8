//! Synthetic card holders for a profile: valid, distinct, and deterministic for a seed, in CSV or
//! JSON Lines. For demos, tests and benchmarks.
//!
//! Each field the profile reads gets values that fit every place the profile puts it
//! ([`FieldKind`]). Text fields are chosen by their names — family/given names, street,
//! city, phone, sex, nationality, document number — from lists with the accented letters real
//! holders have; other text is `<field> <n>`. UIDs and document numbers are distinct within a
//! file.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::Date;

use crate::files::{AtomicFile, Mode, Overwrite};
use crate::profile::{FieldKind, FieldUse, Profile};

/// Why samples could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The output name ends in neither `.csv`, `.jsonl` nor `.ndjson`.
    #[error("{}: the name must end in .csv, .jsonl or .ndjson", path.display())]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be made (it exists, or the folder refused).
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The CSV writer failed.
    #[error("cannot write {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
}

/// Writes `count` synthetic holders for `profile` to `out` (CSV or JSON Lines, by the name's
/// extension). The same seed gives the same file.
pub fn write(
    profile: &Profile,
    count: u64,
    out: &Path,
    seed: u64,
    overwrite: Overwrite,
) -> Result<(), SampleError> {
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let io_error = |source| SampleError::Io {
        path: out.to_path_buf(),
        source,
    };
    let csv = match extension.as_deref() {
        Some("csv") => true,
        Some("jsonl" | "ndjson") => false,
        _ => {
            return Err(SampleError::Format {
                path: out.to_path_buf(),
            });
        }
    };
    // Holders are personal data, even synthetic ones look like it: mode 0600.
    let target = AtomicFile::create(out, Mode::Private, overwrite)?;
    let file = BufWriter::with_capacity(1 << 16, target);
    let mut generator = Generator::new(profile.fields(), seed);
    let mut row: Vec<String> = vec![String::new(); profile.fields().len()];
    if csv {
        let csv_error = |source| SampleError::Csv {
            path: out.to_path_buf(),
            source,
        };
        let mut writer = csv::Writer::from_writer(file);
        writer
            .write_record(profile.fields().iter().map(|f| &f.name))
            .map_err(csv_error)?;
        for index in 0..count {
            generator.holder(index, &mut row);
            writer.write_record(&row).map_err(csv_error)?;
        }
        writer.flush().map_err(io_error)?;
        let file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
        finish(file, out)?;
    } else {
        let mut file = file;
        let mut line = String::new();
        for index in 0..count {
            generator.holder(index, &mut row);
            line.clear();
            line.push('{');
            for (i, (field, value)) in profile.fields().iter().zip(&row).enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_json_string(&mut line, &field.name);
                line.push(':');
                push_json_string(&mut line, value);
            }
            line.push_str("}\n");
            file.write_all(line.as_bytes()).map_err(io_error)?;
        }
        finish(file, out)?;
    }
    Ok(())
}

fn finish(file: BufWriter<AtomicFile>, out: &Path) -> Result<(), SampleError> {
    let file = file.into_inner().map_err(|e| SampleError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    Ok(file.commit()?)
}

fn push_json_string(out: &mut String, value: &str) {
    // serde_json writes the string with the escapes JSON needs; a String cannot fail to take it.
    if let Ok(quoted) = serde_json::to_string(value) {
        out.push_str(&quoted);
    }
}

/// What kind of text a field holds, guessed from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Theme {
    Family,
    Given,
    FullName,
    Sex,
    Nationality,
    Phone,
    Email,
    City,
    Street,
    DocumentNumber,
    Photo,
    Other,
}

impl Theme {
    fn of(name: &str) -> Theme {
        let name = name.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
        if has(&["family", "surname", "last_name"]) {
            Theme::Family
        } else if has(&["given", "first_name", "forename"]) {
            Theme::Given
        } else if has(&["name"]) {
            Theme::FullName
        } else if has(&["sex", "gender"]) {
            Theme::Sex
        } else if has(&["nationality", "country"]) {
            Theme::Nationality
        } else if has(&["phone", "tel", "mobile"]) {
            Theme::Phone
        } else if has(&["mail"]) {
            Theme::Email
        } else if has(&["city", "town", "line2", "postal"]) {
            Theme::City
        } else if has(&["street", "address", "line1"]) {
            Theme::Street
        } else if has(&["photo", "portrait", "image", "picture"]) {
            Theme::Photo
        } else if has(&["doc", "number", "serial", "id"]) {
            Theme::DocumentNumber
        } else {
            Theme::Other
        }
    }
}

const GIVEN: &[&str] = &[
    "Zoë",
    "Łukasz",
    "Søren",
    "José",
    "Hélène",
    "Björn",
    "Siobhán",
    "Jürgen",
    "Ayşe",
    "Guðrún",
    "Gergő",
    "Niccolò",
    "Eliënne",
    "Małgorzata",
    "João",
    "Åsa",
    "Väinö",
    "Begoña",
    "Dražen",
    "Noël",
    "Anna",
    "Peter",
    "Maria",
    "Thomas",
    "Emma",
    "Lars",
    "Ingrid",
    "Paul",
    "Clara",
    "Jan",
];
const FAMILY: &[&str] = &[
    "Hartmann",
    "Kowalski",
    "Nørgaard",
    "García López",
    "Dubois",
    "Åström",
    "O'Neill",
    "Nováková",
    "Çelik",
    "Jónsdóttir",
    "Szabó",
    "Rossi",
    "van den Berg",
    "Wiśniewska",
    "Ferreira",
    "Källström",
    "Lehtinen",
    "Martínez",
    "Šimunović",
    "Højbjerg",
    "Lefèvre",
    "Müller",
    "Schmidt",
    "Jensen",
    "Nielsen",
    "Smith",
    "Brown",
    "Novak",
    "Berg",
    "Weber",
];
const STREETS: &[&str] = &[
    "Heidestraße",
    "Vestergade",
    "Smedegade",
    "Calle de Alcalá",
    "Rue de l'Église",
    "Drottninggatan",
    "Ilica",
    "Königsallee",
    "Prinsengracht",
    "Rua Augusta",
    "Storgatan",
    "Mannerheimintie",
    "Main Street",
    "Hauptstrasse",
    "Bredgade",
    "High Street",
];
const CITIES: &[&str] = &[
    "51147 Köln",
    "5970 Ærøskøbing",
    "28014 Madrid",
    "75006 Paris",
    "111 36 Stockholm",
    "00-916 Warszawa",
    "1062 Budapest",
    "101 Reykjavík",
    "10000 Zagreb",
    "972 31 Luleå",
    "00100 Helsinki",
    "1100-053 Lisboa",
    "1016 GV Amsterdam",
    "8000 Aarhus",
    "80331 Munich",
];
const NATIONALITIES: &[&str] = &[
    "DEU", "DNK", "ESP", "FRA", "POL", "SWE", "IRL", "CZE", "GRC", "TUR", "ISL", "HUN", "ITA",
    "NLD", "PRT", "FIN", "HRV",
];

/// Makes the values of one holder at a time.
struct Generator<'p> {
    fields: &'p [FieldUse],
    themes: Vec<Theme>,
    rng: StdRng,
    seed: u64,
}

impl<'p> Generator<'p> {
    fn new(fields: &'p [FieldUse], seed: u64) -> Generator<'p> {
        Generator {
            fields,
            themes: fields.iter().map(|f| Theme::of(&f.name)).collect(),
            rng: StdRng::seed_from_u64(seed),
            seed,
        }
    }

    /// Fills `row` with holder number `index` (0-based).
    fn holder(&mut self, index: u64, row: &mut [String]) {
        let given = GIVEN[self.rng.gen_range(0..GIVEN.len())];
        let family = FAMILY[self.rng.gen_range(0..FAMILY.len())];
        for ((field, theme), value) in self.fields.iter().zip(&self.themes).zip(row.iter_mut()) {
            value.clear();
            match &field.kind {
                FieldKind::Uid => {
                    // An odd multiplier permutes the 48-bit counter space: distinct, yet
                    // scattered like real card numbers.
                    let scrambled =
                        (index.wrapping_mul(0x9E37_79B9_7F4B) ^ self.seed) & 0xFFFF_FFFF_FFFF;
                    let _ = write!(value, "5653{scrambled:012X}");
                }
                FieldKind::TokenUid => {
                    // A VSC token's: manufacturer FF56, the serial scattered like the UIDs.
                    let scrambled = (index.wrapping_mul(0x9E37_79B9) ^ self.seed) & 0xFFFF_FFFF;
                    let _ = write!(value, "0000FF56{scrambled:08X}");
                }
                // Files (escrowed keys, certificates) cannot be made up: left for the issuer.
                FieldKind::File => {}
                FieldKind::Passphrase => {
                    let _ = write!(value, "passphrase {}", index + 1);
                }
                FieldKind::Timestamp => value.push_str("2026-01-01T00:00:00Z"),
                FieldKind::Salutation => {
                    value.push_str(["F", "M", "X"][self.rng.gen_range(0..3)]);
                }
                FieldKind::Password { min, max } => {
                    let len = self.rng.gen_range(*min..=*max);
                    for _ in 0..len {
                        value.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
                    }
                }
                FieldKind::Date(format) => {
                    // Birth dates between 1930 and 2010.
                    let day = self.rng.gen_range(2_426_000..2_455_000);
                    if let Ok(date) = Date::from_julian_day(day)
                        && let Ok(text) = date.format(format)
                    {
                        value.push_str(&text);
                    }
                }
                FieldKind::Hex { min, max } => {
                    let len = if *theme == Theme::Photo {
                        (*max).min(48)
                    } else {
                        (*max).min(16)
                    }
                    .max(*min);
                    let mut bytes = vec![0u8; len];
                    self.rng.fill(&mut bytes[..]);
                    if *theme == Theme::Photo && len >= 6 {
                        // JPEG start and end markers around random "image" bytes.
                        bytes[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
                        bytes[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
                    }
                    value.push_str(&hex::encode_upper(&bytes));
                }
                FieldKind::Digits { min, max } => {
                    let len = (*max).min(10).max(*min);
                    if *theme == Theme::DocumentNumber {
                        let _ = write!(value, "{:0len$}", index + 1);
                        fit_digits(value, len);
                    } else {
                        for _ in 0..len {
                            value.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
                        }
                    }
                }
                FieldKind::Text { ascii, min, max } => {
                    text(
                        &mut self.rng,
                        *theme,
                        &field.name,
                        index,
                        given,
                        family,
                        *ascii,
                        value,
                    );
                    fit_text(value, *min, *max);
                }
            }
        }
    }
}

/// The text of a field of `theme` for holder `index`.
#[allow(clippy::too_many_arguments)]
fn text(
    rng: &mut StdRng,
    theme: Theme,
    name: &str,
    index: u64,
    given: &str,
    family: &str,
    ascii: bool,
    out: &mut String,
) {
    let given = if ascii && !given.is_ascii() {
        pick(rng, GIVEN, true)
    } else {
        given
    };
    let family = if ascii && !family.is_ascii() {
        pick(rng, FAMILY, true)
    } else {
        family
    };
    match theme {
        Theme::Family => out.push_str(family),
        Theme::Given => out.push_str(given),
        Theme::FullName => {
            let _ = write!(out, "{given} {family}");
        }
        Theme::Sex => out.push_str(["F", "M", "X"][rng.gen_range(0..3)]),
        Theme::Nationality => out.push_str(pick(rng, NATIONALITIES, ascii)),
        Theme::Phone => {
            let _ = write!(out, "+45 {:08}", rng.gen_range(0..100_000_000u32));
        }
        Theme::Email => {
            let _ = write!(out, "holder{}@example.org", index + 1);
        }
        Theme::City => out.push_str(pick(rng, CITIES, ascii)),
        Theme::Street => {
            let street = pick(rng, STREETS, ascii);
            let _ = write!(out, "{street} {}", rng.gen_range(1..200));
        }
        Theme::DocumentNumber => {
            let _ = write!(out, "D{:08}", index + 1);
        }
        Theme::Photo | Theme::Other => {
            let _ = write!(out, "{name} {}", index + 1);
        }
    }
    if ascii {
        out.retain(|c| c.is_ascii() && !c.is_ascii_control());
    }
}

/// A random entry of `list` (only ASCII ones when `ascii`; every list has some).
fn pick(rng: &mut StdRng, list: &[&'static str], ascii: bool) -> &'static str {
    let fits = |s: &&&str| !ascii || s.is_ascii();
    let count = list.iter().filter(fits).count();
    if count == 0 {
        return "X";
    }
    let chosen = rng.gen_range(0..count);
    list.iter().filter(fits).nth(chosen).copied().unwrap_or("X")
}

/// Cuts `value` to at most `max` bytes (on a character boundary) and pads it with `X` to at
/// least `min`.
fn fit_text(value: &mut String, min: usize, max: usize) {
    if value.len() > max {
        let mut end = max;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    while value.len() < min.max(1) {
        value.push('X');
    }
}

/// Keeps the last `len` digits (a counter wider than the room).
fn fit_digits(value: &mut String, len: usize) {
    if value.len() > len {
        value.drain(..value.len() - len);
    }
}

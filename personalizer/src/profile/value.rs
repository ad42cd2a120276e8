//! Value plans: where a value comes from (a record field, a constant, random bytes, a BER-TLV
//! template, a concatenation), how it is encoded, and the length rules of where it goes. Compiled
//! once from the profile; run once per record, appending to a buffer without allocating.

use rand::RngCore;
use time::Date;
use time::format_description::OwnedFormatItem;
use vsc_core::fs::DoTag;
use vsc_core::tlv;

use crate::records::Problem;

/// A record field a profile reads, by its number in [`super::Profile::fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldRef(pub(crate) usize);

impl FieldRef {
    /// The field's number in [`super::Profile::fields`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// How text from a record (or a constant) becomes bytes.
#[derive(Clone, Debug)]
pub enum Encoding {
    /// The UTF-8 bytes.
    Utf8,
    /// Printable ASCII (20 to 7E), one byte a character.
    Ascii,
    /// Hexadecimal digit pairs, each a byte.
    Hex,
    /// Decimal digits packed two a byte; an odd count ends with the nibble F.
    Bcd,
    /// A date read in one format and written in another.
    Date(Box<DateCodec>),
}

/// The formats of a date value.
#[derive(Clone, Debug)]
pub struct DateCodec {
    pub(crate) input: OwnedFormatItem,
    pub(crate) input_text: String,
    pub(crate) output: DateOutput,
}

/// How a date is written.
#[derive(Clone, Debug)]
pub enum DateOutput {
    /// As text in a `time` format description, e.g. `[year][month][day]`.
    Text(OwnedFormatItem),
    /// As four bytes of BCD, YYYYMMDD.
    Bcd,
}

/// Where a value's bytes come from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Field(FieldRef),
    /// Already encoded (and padded) at load.
    Constant(Vec<u8>),
    Random(usize),
    Template(Vec<TemplateItem>),
    Concat(Vec<ValuePlan>),
}

/// One data object inside a template.
#[derive(Clone, Debug)]
pub(crate) struct TemplateItem {
    pub(crate) tag: DoTag,
    pub(crate) value: ValuePlan,
}

/// A compiled value: source, encoding and length rules.
#[derive(Clone, Debug)]
pub struct ValuePlan {
    /// The profile item, for error messages.
    pub(crate) item: String,
    pub(crate) source: Source,
    pub(crate) encoding: Encoding,
    /// The longest encoded value accepted (before padding).
    pub(crate) max: usize,
    /// The exact length required after padding, if any.
    pub(crate) exact: Option<usize>,
    /// Pad short values with this byte up to this length.
    pub(crate) pad_to: Option<(usize, u8)>,
    /// An empty value means "nothing to write" rather than an error.
    pub(crate) optional: bool,
}

/// What a plan reads from while it runs: the record's fields and a cryptographic RNG.
pub(crate) trait Inputs {
    fn field(&self, field: FieldRef) -> &str;
    fn rng(&mut self) -> &mut dyn RngCore;
}

/// A value that cannot be made: the rule broken, and the field or item at fault.
#[derive(Debug)]
pub(crate) struct Fault<'p> {
    pub(crate) field: Option<FieldRef>,
    pub(crate) item: &'p str,
    pub(crate) problem: Problem,
}

impl ValuePlan {
    /// Appends the value to `out`. `Ok(false)`: an optional value that is empty, nothing
    /// appended.
    pub(crate) fn produce(
        &self,
        inputs: &mut impl Inputs,
        out: &mut Vec<u8>,
    ) -> Result<bool, Fault<'_>> {
        let start = out.len();
        let field = match &self.source {
            Source::Field(field) => {
                let text = inputs.field(*field);
                encode(&self.encoding, text, out).map_err(|problem| Fault {
                    field: Some(*field),
                    item: &self.item,
                    problem,
                })?;
                Some(*field)
            }
            Source::Constant(bytes) => {
                out.extend_from_slice(bytes);
                None
            }
            Source::Random(len) => {
                out.resize(start + len, 0);
                inputs.rng().fill_bytes(&mut out[start..]);
                None
            }
            Source::Template(items) => {
                for item in items {
                    push_item(item, inputs, out)?;
                }
                None
            }
            Source::Concat(parts) => {
                for part in parts {
                    part.produce(inputs, out)?;
                }
                None
            }
        };
        let fault = |problem| Fault {
            field,
            item: &self.item,
            problem,
        };
        let len = out.len() - start;
        if len == 0 {
            return if self.optional {
                Ok(false)
            } else {
                Err(fault(Problem::Empty))
            };
        }
        if len > self.max {
            out.truncate(start);
            return Err(fault(Problem::TooLong { len, max: self.max }));
        }
        if let Some((target, byte)) = self.pad_to
            && len < target
        {
            out.resize(start + target, byte);
        }
        if let Some(expected) = self.exact
            && out.len() - start != expected
        {
            out.truncate(start);
            return Err(fault(Problem::WrongLength { len, expected }));
        }
        Ok(true)
    }

    /// The value's length when it does not depend on the record, after padding.
    pub(crate) fn known_len(&self) -> Option<usize> {
        let raw = match &self.source {
            Source::Field(_) => return None,
            Source::Constant(bytes) => bytes.len(),
            Source::Random(len) => *len,
            Source::Template(items) => items.iter().try_fold(0, |sum, item| {
                let len = item.value.known_len()?;
                Some(sum + item.tag.to_bytes().len() + length_field_len(len) + len)
            })?,
            Source::Concat(parts) => parts
                .iter()
                .try_fold(0, |sum, part| Some(sum + part.known_len()?))?,
        };
        Some(match self.pad_to {
            Some((target, _)) => raw.max(target),
            None => raw,
        })
    }
}

/// Appends one data object of a template: tag, length, value. The value is written first and
/// the length field slid in before it, so no scratch buffer is needed.
fn push_item<'p>(
    item: &'p TemplateItem,
    inputs: &mut impl Inputs,
    out: &mut Vec<u8>,
) -> Result<(), Fault<'p>> {
    let tag_start = out.len();
    out.extend_from_slice(&item.tag.to_bytes());
    let value_start = out.len();
    if !item.value.produce(inputs, out)? {
        out.truncate(tag_start);
        return Ok(());
    }
    let len = out.len() - value_start;
    let mut length_field = Vec::with_capacity(3);
    tlv::push_length(&mut length_field, len);
    out.extend_from_slice(&length_field);
    out[value_start..].rotate_right(length_field.len());
    Ok(())
}

/// The size of a BER length field for `len`.
pub(crate) fn length_field_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        _ => 3,
    }
}

/// Encodes `text` and appends it to `out`; on error `out` is left as it was.
pub(crate) fn encode(encoding: &Encoding, text: &str, out: &mut Vec<u8>) -> Result<(), Problem> {
    let start = out.len();
    match encoding {
        Encoding::Utf8 => out.extend_from_slice(text.as_bytes()),
        Encoding::Ascii => {
            if !text.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
                return Err(Problem::NotAscii);
            }
            out.extend_from_slice(text.as_bytes());
        }
        Encoding::Hex => {
            if !text.len().is_multiple_of(2) {
                return Err(Problem::NotHex);
            }
            out.resize(start + text.len() / 2, 0);
            if hex::decode_to_slice(text, &mut out[start..]).is_err() {
                out.truncate(start);
                return Err(Problem::NotHex);
            }
        }
        Encoding::Bcd => push_bcd(text.as_bytes(), out)?,
        Encoding::Date(codec) => {
            let date = Date::parse(text, &codec.input).map_err(|_| Problem::NotADate {
                format: codec.input_text.clone(),
            })?;
            match &codec.output {
                DateOutput::Text(format) => {
                    if date.format_into(out, format).is_err() {
                        out.truncate(start);
                        return Err(Problem::NotADate {
                            format: codec.input_text.clone(),
                        });
                    }
                }
                DateOutput::Bcd => {
                    let year = u16::try_from(date.year())
                        .ok()
                        .filter(|y| *y <= 9999)
                        .ok_or(Problem::YearOutOfRange)?;
                    let digits = [
                        b'0' + (year / 1000) as u8,
                        b'0' + (year / 100 % 10) as u8,
                        b'0' + (year / 10 % 10) as u8,
                        b'0' + (year % 10) as u8,
                        b'0' + u8::from(date.month()) / 10,
                        b'0' + u8::from(date.month()) % 10,
                        b'0' + date.day() / 10,
                        b'0' + date.day() % 10,
                    ];
                    push_bcd(&digits, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Packs decimal digits two a byte, the first digit in the high nibble; an odd count ends
/// with the nibble F.
fn push_bcd(digits: &[u8], out: &mut Vec<u8>) -> Result<(), Problem> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(Problem::NotDigits);
    }
    for pair in digits.chunks(2) {
        let high = pair[0] - b'0';
        let low = pair.get(1).map_or(0x0F, |d| d - b'0');
        out.push(high << 4 | low);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::parse_owned;

    fn date(input: &str, output: DateOutput) -> Encoding {
        Encoding::Date(Box::new(DateCodec {
            input: parse_owned::<2>(input).unwrap(),
            input_text: input.to_string(),
            output,
        }))
    }

    fn encoded(encoding: &Encoding, text: &str) -> Result<Vec<u8>, Problem> {
        let mut out = vec![0xAA];
        let result = encode(encoding, text, &mut out).map(|()| out[1..].to_vec());
        if result.is_err() {
            assert_eq!(out, [0xAA], "a failed encoding leaves the buffer as it was");
        }
        result
    }

    #[test]
    fn encodings() {
        assert_eq!(encoded(&Encoding::Utf8, "Zoë"), Ok(b"Zo\xC3\xAB".to_vec()));
        assert_eq!(encoded(&Encoding::Ascii, "A-1"), Ok(b"A-1".to_vec()));
        assert_eq!(encoded(&Encoding::Ascii, "Zoë"), Err(Problem::NotAscii));
        assert_eq!(encoded(&Encoding::Ascii, "a\tb"), Err(Problem::NotAscii));
        assert_eq!(encoded(&Encoding::Hex, "0aFF"), Ok(vec![0x0A, 0xFF]));
        assert_eq!(encoded(&Encoding::Hex, "0aF"), Err(Problem::NotHex));
        assert_eq!(encoded(&Encoding::Hex, "0g"), Err(Problem::NotHex));
        assert_eq!(encoded(&Encoding::Bcd, "12345"), Ok(vec![0x12, 0x34, 0x5F]));
        assert_eq!(encoded(&Encoding::Bcd, "12a4"), Err(Problem::NotDigits));
    }

    #[test]
    fn dates() {
        let iso = "[year]-[month]-[day]";
        let ascii = date(
            iso,
            DateOutput::Text(parse_owned::<2>("[year][month][day]").unwrap()),
        );
        let bcd = date(iso, DateOutput::Bcd);
        assert_eq!(encoded(&ascii, "1985-03-07"), Ok(b"19850307".to_vec()));
        assert_eq!(
            encoded(&bcd, "1985-03-07"),
            Ok(vec![0x19, 0x85, 0x03, 0x07])
        );
        let not_a_date = Err(Problem::NotADate {
            format: iso.to_string(),
        });
        assert_eq!(encoded(&bcd, "1985-02-30"), not_a_date);
        assert_eq!(encoded(&bcd, "1985-03-07x"), not_a_date);
        assert_eq!(encoded(&bcd, "07.03.1985"), not_a_date);
        let icao = date(
            iso,
            DateOutput::Text(parse_owned::<2>("[year repr:last_two][month][day]").unwrap()),
        );
        assert_eq!(encoded(&icao, "1985-03-07"), Ok(b"850307".to_vec()));
        let german = date("[day].[month].[year]", DateOutput::Bcd);
        assert_eq!(
            encoded(&german, "07.03.1985"),
            Ok(vec![0x19, 0x85, 0x03, 0x07])
        );
    }
}

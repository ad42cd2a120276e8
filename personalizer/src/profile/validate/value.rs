//! Value plans: a VALUE table of the profile (field, constant, random, template, concat, with
//! its encoding and length options) becomes a [`ValuePlan`], with the room where it goes.

use time::Date;
use time::format_description::{OwnedFormatItem, parse_owned};
use vsc_core::fs::DoTag;

use super::{Compiler, in_range, parse_hex};
use crate::profile::raw::RawValue;
use crate::profile::value::{
    self, DateCodec, DateOutput, Encoding, FieldRef, Source, TemplateItem,
};
use crate::profile::{FieldKind, FieldUse, ProfileError, ValuePlan};

/// The deepest template nesting a profile may write (the card reads up to 16 levels).
const MAX_TEMPLATE_DEPTH: usize = 8;

/// Where a value goes: the room there is, and the length it must have.
#[derive(Clone, Copy)]
pub(super) struct Room {
    /// The most bytes that fit.
    pub(super) max: usize,
    /// The length `pad` fills to when the value gives no `length`.
    pub(super) pad_target: Option<usize>,
    /// The exact length required (a fixed-length record).
    pub(super) fixed: Option<usize>,
}

impl Room {
    pub(super) fn part(max: usize) -> Room {
        Room {
            max,
            pad_target: None,
            fixed: None,
        }
    }
}

impl Compiler {
    pub(super) fn value(
        &mut self,
        raw: &RawValue,
        item: &str,
        room: Room,
        in_template: bool,
        depth: usize,
    ) -> Result<ValuePlan, ProfileError> {
        let sources = [
            raw.field.is_some(),
            raw.constant.is_some(),
            raw.random.is_some(),
            raw.template.is_some(),
            raw.concat.is_some(),
        ];
        if sources.iter().filter(|given| **given).count() != 1 {
            return Err(ProfileError::invalid(
                item,
                "give exactly one of field, constant, random, template or concat",
            ));
        }
        match (in_template, raw.tag.is_some()) {
            (true, false) => {
                return Err(ProfileError::invalid(item, "a template item needs a tag"));
            }
            (false, true) => {
                return Err(ProfileError::invalid(
                    item,
                    "tag belongs only to template items",
                ));
            }
            _ => {}
        }
        let textual = raw.field.is_some() || raw.constant.is_some();
        let encoding = match (&raw.encoding, textual) {
            (Some(name), true) => encoding(item, name, raw)?,
            (None, true) => {
                if raw.date_input.is_some() || raw.date_output.is_some() {
                    return Err(ProfileError::invalid(
                        item,
                        "date_input and date_output need encoding = \"date\"",
                    ));
                }
                Encoding::Utf8
            }
            (Some(_), false) => {
                return Err(ProfileError::invalid(
                    item,
                    "encoding applies only to field and constant values",
                ));
            }
            (None, false) => Encoding::Utf8,
        };
        if raw.optional && !(raw.field.is_some() || raw.template.is_some() || raw.concat.is_some())
        {
            return Err(ProfileError::invalid(
                item,
                "optional applies only to field, template and concat values",
            ));
        }
        let length = match raw.length {
            Some(length) => Some(in_range(item, "length", length, 1, room.max)?),
            None => None,
        };
        if let (Some(length), Some(fixed)) = (length, room.fixed)
            && length != fixed
        {
            return Err(ProfileError::invalid(
                item,
                format!("length must be the record length, {fixed}"),
            ));
        }
        let pad = match &raw.pad {
            Some(text) => match parse_hex(text).as_deref() {
                Some([byte]) => Some(*byte),
                _ => {
                    return Err(ProfileError::invalid(
                        item,
                        "pad must be one byte in hex, e.g. \"20\"",
                    ));
                }
            },
            None => None,
        };
        let max = length.unwrap_or(room.max);
        let exact = length.or(room.fixed);
        let pad_to = match pad {
            Some(byte) => match exact.or(room.pad_target) {
                Some(target) => Some((target, byte)),
                None => {
                    return Err(ProfileError::invalid(
                        item,
                        "pad needs a length to fill to: give `length`",
                    ));
                }
            },
            None => None,
        };
        let source = if let Some(name) = &raw.field {
            // Without padding, an exact length is also the shortest value that fits.
            let min = match (exact, pad_to) {
                (Some(exact), None) => exact,
                _ => 1,
            };
            let kind = match &encoding {
                Encoding::Utf8 => FieldKind::Text {
                    ascii: false,
                    min,
                    max,
                },
                Encoding::Ascii => FieldKind::Text {
                    ascii: true,
                    min,
                    max,
                },
                Encoding::Hex => FieldKind::Hex { min, max },
                Encoding::Bcd => FieldKind::Digits {
                    min: min * 2 - 1,
                    max: max * 2,
                },
                Encoding::Date(codec) => {
                    let longest = longest_date(&encoding, &codec.input);
                    if longest > max {
                        return Err(ProfileError::invalid(
                            item,
                            format!("date_output gives up to {longest} bytes, at most {max} fit"),
                        ));
                    }
                    FieldKind::Date(codec.input.clone())
                }
            };
            Source::Field(self.use_field(name, item, kind)?)
        } else if let Some(text) = &raw.constant {
            let mut bytes = Vec::new();
            let text = match encoding {
                Encoding::Hex => text.split_whitespace().collect::<String>(),
                _ => text.clone(),
            };
            value::encode(&encoding, &text, &mut bytes).map_err(|problem| {
                ProfileError::invalid(item, format!("the constant {problem}"))
            })?;
            if bytes.is_empty() {
                return Err(ProfileError::invalid(item, "the constant is empty"));
            }
            if bytes.len() > max {
                return Err(ProfileError::ConstantTooLong {
                    item: item.to_string(),
                    len: bytes.len(),
                    max,
                });
            }
            if let Some((target, byte)) = pad_to {
                bytes.resize(target.max(bytes.len()), byte);
            }
            if let Some(expected) = exact
                && bytes.len() != expected
            {
                return Err(ProfileError::invalid(
                    item,
                    format!(
                        "the constant is {} bytes, it must be exactly {expected} (or give pad)",
                        bytes.len()
                    ),
                ));
            }
            Source::Constant(bytes)
        } else if let Some(len) = raw.random {
            let len = in_range(item, "random", len, 1, max)?;
            if let Some(expected) = exact
                && len != expected
                && pad_to.is_none()
            {
                return Err(ProfileError::invalid(
                    item,
                    format!("random gives {len} bytes, {expected} are needed"),
                ));
            }
            Source::Random(len)
        } else if let Some(items) = &raw.template {
            if depth >= MAX_TEMPLATE_DEPTH {
                return Err(ProfileError::invalid(
                    item,
                    format!("templates nest at most {MAX_TEMPLATE_DEPTH} deep"),
                ));
            }
            if items.is_empty() {
                return Err(ProfileError::invalid(item, "the template is empty"));
            }
            let mut compiled: Vec<TemplateItem> = Vec::with_capacity(items.len());
            for raw_item in items {
                let tag_text = raw_item
                    .tag
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_uppercase();
                let item_name = format!("{item}, item {tag_text}");
                if raw_item.tag.is_none() {
                    return Err(ProfileError::invalid(
                        &item_name,
                        "a template item needs a tag",
                    ));
                }
                let tag = parse_tag(&item_name, &tag_text)?;
                if compiled.iter().any(|c| c.tag == tag) {
                    return Err(ProfileError::DuplicateTag {
                        item: item.to_string(),
                        tag: tag_text,
                    });
                }
                check_tag_form(&item_name, tag, raw_item)?;
                let value = self.value(raw_item, &item_name, Room::part(max), true, depth + 1)?;
                compiled.push(TemplateItem { tag, value });
            }
            Source::Template(compiled)
        } else if let Some(parts) = &raw.concat {
            if parts.is_empty() {
                return Err(ProfileError::invalid(item, "concat is empty"));
            }
            let mut compiled = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let part_name = format!("{item}, part {}", i + 1);
                compiled.push(self.value(part, &part_name, Room::part(max), false, depth + 1)?);
            }
            Source::Concat(compiled)
        } else {
            return Err(ProfileError::invalid(item, "no value source"));
        };
        let plan = ValuePlan {
            item: item.to_string(),
            source,
            encoding,
            max,
            exact,
            pad_to,
            optional: raw.optional,
        };
        if let Some(len) = plan.known_len()
            && len > max
        {
            return Err(ProfileError::ConstantTooLong {
                item: item.to_string(),
                len,
                max,
            });
        }
        Ok(plan)
    }

    /// Registers a read of field `name`; the field's kind narrows to fit every use.
    pub(super) fn use_field(
        &mut self,
        name: &str,
        item: &str,
        kind: FieldKind,
    ) -> Result<FieldRef, ProfileError> {
        if name.trim().is_empty() {
            return Err(ProfileError::invalid(item, "the field name is empty"));
        }
        if let Some(&index) = self.field_index.get(name) {
            let field = &mut self.fields[index];
            // A date is read in one input format: a field read as a date in two formats, or
            // as a date and as something else, fits no record (and no synthetic holder).
            match (&field.kind, &kind) {
                (FieldKind::Date(first), FieldKind::Date(other)) if first != other => {
                    return Err(ProfileError::invalid(
                        item,
                        format!(
                            "field `{name}` is read as a date in another date_input in {}",
                            field.item
                        ),
                    ));
                }
                (FieldKind::Date(_), FieldKind::Date(_)) => {}
                (FieldKind::Date(_), _) | (_, FieldKind::Date(_)) => {
                    return Err(ProfileError::invalid(
                        item,
                        format!(
                            "field `{name}` is a date in one place and not in the other ({})",
                            field.item
                        ),
                    ));
                }
                _ => {}
            }
            field.kind = match (&field.kind, kind) {
                (
                    FieldKind::Text { ascii, min, max },
                    FieldKind::Text {
                        ascii: a,
                        min: n,
                        max: m,
                    },
                ) => FieldKind::Text {
                    ascii: *ascii || a,
                    min: (*min).max(n),
                    max: (*max).min(m),
                },
                (FieldKind::Hex { min, max }, FieldKind::Hex { min: n, max: m }) => {
                    FieldKind::Hex {
                        min: (*min).max(n),
                        max: (*max).min(m),
                    }
                }
                (FieldKind::Digits { min, max }, FieldKind::Digits { min: n, max: m }) => {
                    FieldKind::Digits {
                        min: (*min).max(n),
                        max: (*max).min(m),
                    }
                }
                (first, _) => first.clone(),
            };
            return Ok(FieldRef(index));
        }
        let index = self.fields.len();
        self.fields.push(FieldUse {
            name: name.to_string(),
            item: item.to_string(),
            kind,
        });
        self.field_index.insert(name.to_string(), index);
        Ok(FieldRef(index))
    }
}

fn encoding(item: &str, name: &str, raw: &RawValue) -> Result<Encoding, ProfileError> {
    if name != "date" && (raw.date_input.is_some() || raw.date_output.is_some()) {
        return Err(ProfileError::invalid(
            item,
            "date_input and date_output need encoding = \"date\"",
        ));
    }
    Ok(match name {
        "utf8" => Encoding::Utf8,
        "ascii" => Encoding::Ascii,
        "hex" => Encoding::Hex,
        "bcd" => Encoding::Bcd,
        "date" => {
            let input_text = raw
                .date_input
                .clone()
                .unwrap_or_else(|| "[year]-[month]-[day]".to_string());
            let input = date_format(item, "date_input", &input_text)?;
            // A format that cannot read back what it writes lacks a year, month or day.
            let probe = Date::from_calendar_date(1987, time::Month::November, 23)
                .map_err(|_| ProfileError::invalid(item, "date check failed"))?;
            let round_trips = probe
                .format(&input)
                .ok()
                .and_then(|text| Date::parse(&text, &input).ok())
                == Some(probe);
            if !round_trips {
                return Err(ProfileError::invalid(
                    item,
                    format!("date_input `{input_text}` must give the year, month and day"),
                ));
            }
            let output = match raw.date_output.as_deref() {
                None => DateOutput::Text(date_format(item, "date_output", "[year][month][day]")?),
                Some("bcd") => DateOutput::Bcd,
                Some(text) => {
                    let format = date_format(item, "date_output", text)?;
                    if probe.format(&format).is_err() {
                        return Err(ProfileError::invalid(
                            item,
                            format!("date_output `{text}` asks for more than a date"),
                        ));
                    }
                    DateOutput::Text(format)
                }
            };
            Encoding::Date(Box::new(DateCodec {
                input,
                input_text,
                output,
            }))
        }
        other => {
            return Err(ProfileError::UnknownEncoding {
                item: item.to_string(),
                encoding: other.to_string(),
            });
        }
    })
}

/// The longest output of a date encoding, over every day of a leap year and a common year
/// (month and weekday names differ in length; every other component has a fixed width for the
/// years 1000 to 9999).
fn longest_date(encoding: &Encoding, input: &OwnedFormatItem) -> usize {
    let mut longest = 0;
    for year in [2000, 1987] {
        let Ok(mut date) = Date::from_calendar_date(year, time::Month::January, 1) else {
            continue;
        };
        while date.year() == year {
            let mut out = Vec::new();
            if let Ok(text) = date.format(input)
                && value::encode(encoding, &text, &mut out).is_ok()
            {
                longest = longest.max(out.len());
            }
            let Some(next) = date.next_day() else { break };
            date = next;
        }
    }
    longest
}

fn date_format(item: &str, key: &str, text: &str) -> Result<OwnedFormatItem, ProfileError> {
    parse_owned::<2>(text).map_err(|error| {
        ProfileError::invalid(
            item,
            format!("{key} `{text}` is not a date format: {error}"),
        )
    })
}

/// A constructed tag's value must be a template, and a template needs a constructed tag.
pub(super) fn check_tag_form(item: &str, tag: DoTag, raw: &RawValue) -> Result<(), ProfileError> {
    match (tag.is_constructed(), raw.template.is_some()) {
        (true, false) => Err(ProfileError::invalid(
            item,
            "the tag is constructed: its value must be a template",
        )),
        (false, true) => Err(ProfileError::invalid(
            item,
            "the tag is primitive: it cannot hold a template",
        )),
        _ => Ok(()),
    }
}

pub(super) fn parse_tag(item: &str, text: &str) -> Result<DoTag, ProfileError> {
    let bad = || ProfileError::BadTag {
        item: item.to_string(),
        tag: text.to_string(),
    };
    let text = text.trim();
    if !(text.len() == 2 || text.len() == 4) {
        return Err(bad());
    }
    let value = u16::from_str_radix(text, 16).map_err(|_| bad())?;
    DoTag::new(value).map_err(|_| bad())
}

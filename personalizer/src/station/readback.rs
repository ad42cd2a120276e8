//! Reading a personalized card's clear side back (EF.UID, EF.DIR, DF.PUBLIC's EFs and data
//! objects) and comparing it with the VSC image that preparation made.

use vsc_core::apdu::Status;
use vsc_core::commands::{self, CommandBuf};
use vsc_core::fs::{Df, EfBody, Fid, FileSystem, Node};

use crate::replay::{CardLink, LinkError};

/// A difference between the card and its image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadbackError {
    /// The card could not be read.
    #[error("reading back: {0}")]
    Link(#[from] LinkError),
    /// The card answered an error status (or none).
    #[error("reading back {what}: the card answered {}", status.map_or_else(|| "nothing".to_string(), |s| s.to_string()))]
    Status {
        /// What was read.
        what: String,
        /// The status word.
        status: Option<Status>,
    },
    /// The card holds something else than the image.
    #[error("reading back {what}: the card differs from the VSC image")]
    Differs {
        /// What differs.
        what: String,
    },
}

/// Reads every file and data object of the clear side of `expected` from the card and compares.
/// Returns how many were compared.
pub fn compare_clear_side(
    link: &mut impl CardLink,
    expected: &FileSystem,
) -> Result<usize, ReadbackError> {
    let mut compared = 0;
    compare_df(link, &expected.mf, &[], &mut compared)?;
    Ok(compared)
}

fn compare_df(
    link: &mut impl CardLink,
    df: &Df,
    path: &[Fid],
    compared: &mut usize,
) -> Result<(), ReadbackError> {
    for node in &df.children {
        match node {
            Node::Df(child) if child.fid != Fid::DF_PRIVATE => {
                let mut child_path = path.to_vec();
                child_path.push(child.fid);
                compare_df(link, child, &child_path, compared)?;
            }
            Node::Df(_) => {}
            Node::Ef(ef) => {
                let mut ef_path = path.to_vec();
                ef_path.push(ef.fid);
                let what = format!("EF {}", ef.fid);
                select_path(link, &ef_path, &what)?;
                let equal = match &ef.body {
                    EfBody::Transparent(bytes) => read_binary(link, bytes.len(), &what)? == *bytes,
                    EfBody::Records(file) => {
                        let mut equal = true;
                        for (i, record) in file.records.iter().enumerate() {
                            let read = command(
                                link,
                                &commands::read_record((i + 1) as u8, None, 256),
                                &format!("{what} record {}", i + 1),
                            )?;
                            equal &= read == *record;
                        }
                        equal
                    }
                };
                if !equal {
                    return Err(ReadbackError::Differs { what });
                }
                *compared += 1;
            }
        }
    }
    if !df.data_objects.is_empty() {
        select_path(link, path, "a DF")?;
        for (tag, value) in &df.data_objects {
            let what = format!("data object {:X}", tag.value());
            let read = command(link, &commands::get_data(tag.value(), 256), &what)?;
            if read != *value {
                return Err(ReadbackError::Differs { what });
            }
            *compared += 1;
        }
    }
    Ok(())
}

/// SELECT by path from the MF (the MF itself for an empty path).
fn select_path(link: &mut impl CardLink, path: &[Fid], what: &str) -> Result<(), ReadbackError> {
    let select = if path.is_empty() {
        commands::select_mf()
    } else {
        commands::select_path(path)
    };
    command(link, &select, what).map(|_| ())
}

/// READ BINARY of `len` bytes from offset 0: in one extended-length command when the card takes
/// it, else 256 bytes at a time (short APDUs, which every card takes).
fn read_binary(link: &mut impl CardLink, len: usize, what: &str) -> Result<Vec<u8>, ReadbackError> {
    if len > 256 {
        let mut response = Vec::new();
        let all = commands::read_binary(0, 65_536)
            .to_vec()
            .map_err(|_| LinkError::NoResponse)?;
        link.transmit(&all, &mut response)?;
        if let [data @ .., 0x90, 0x00] = response.as_slice()
            && data.len() == len
        {
            return Ok(data.to_vec());
        }
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let offset = out.len() as u16;
        let chunk = (len - out.len()).min(256);
        let data = command(link, &commands::read_binary(offset, chunk), what)?;
        if data.is_empty() {
            break;
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// Sends a command and returns its data, `9000` required.
fn command(
    link: &mut impl CardLink,
    command: &CommandBuf,
    what: &str,
) -> Result<Vec<u8>, ReadbackError> {
    let apdu = command.to_vec().map_err(|_| LinkError::NoResponse)?;
    let mut response = Vec::new();
    link.transmit(&apdu, &mut response)?;
    match response.as_slice() {
        [data @ .., 0x90, 0x00] => Ok(data.to_vec()),
        [.., sw1, sw2] => Err(ReadbackError::Status {
            what: what.to_string(),
            status: Some(Status::from(u16::from_be_bytes([*sw1, *sw2]))),
        }),
        _ => Err(ReadbackError::Status {
            what: what.to_string(),
            status: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::CardOsLink;

    #[test]
    fn the_sample_card_reads_back_as_its_image() {
        let card = vsc_core::sample::card();
        let expected = card.state().fs.clone();
        let mut link = CardOsLink::new(card);
        assert!(compare_clear_side(&mut link, &expected).unwrap() >= 3);
    }

    #[test]
    fn a_difference_is_found() {
        let card = vsc_core::sample::card();
        let mut expected = card.state().fs.clone();
        if let Some(Node::Df(public)) = expected
            .mf
            .children
            .iter_mut()
            .find(|n| n.fid() == Fid::DF_PUBLIC)
            && let Some(ef) = public.child_ef_mut(Fid::new(0x5003).unwrap())
            && let EfBody::Transparent(bytes) = &mut ef.body
        {
            bytes[700] ^= 1;
        }
        let mut link = CardOsLink::new(card);
        assert_eq!(
            compare_clear_side(&mut link, &expected).unwrap_err(),
            ReadbackError::Differs {
                what: "EF 5003".into()
            }
        );
    }
}

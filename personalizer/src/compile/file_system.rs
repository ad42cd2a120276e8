//! The VSC file system's backend: pre-initialization (EF.UID, EF.DIR, DF.PUBLIC and
//! DF.PRIVATE with their EFs, the password and key objects, the channel keys) and
//! personalization (every EF, the data objects, the PIN and PUK, the key values, ACTIVATE FILE
//! on the MF), through the personalization channel or in plain.

use vsc_core::Uid;
use vsc_core::commands;
use vsc_core::fs::fcp::{df_fcp, ef_fcp};
use vsc_core::security::PasswordRef;
use vsc_core::sm::ChannelKeys;
use zeroize::Zeroizing;

use super::{Builder, CompileError};
use crate::content::{CardContent, DfContent, EfContent};
use crate::profile::{DfSpec, EfPlan, EfStructure, FileSystemSpec};

pub(super) fn preinitialize(
    b: &mut Builder,
    profile: &FileSystemSpec,
    uid: Uid,
    channel_keys: Option<&ChannelKeys>,
) -> Result<(), CompileError> {
    use vsc_core::fs::{
        AccessRules, Condition, Ef, EfBody, Fid, FileState, Operation, RecordFile, RecordKind,
    };
    let read_only = AccessRules::uniform(Condition::NEVER)
        .with(Operation::ReadOrDeleteChild, Condition::ALWAYS);

    super::write_uid(b, uid)?;

    let dir_records: Vec<Vec<u8>> = profile.dfs().iter().map(|df| df.dir_record()).collect();
    let dir_len = dir_records.iter().map(Vec::len).max().unwrap_or(1) as u16;
    let ef_dir = Ef {
        fid: Fid::EF_DIR,
        sfi: None,
        state: FileState::Activated,
        rules: read_only,
        body: EfBody::Records(RecordFile {
            kind: RecordKind::LinearVariable,
            max_len: dir_len,
            max_records: dir_records.len() as u8,
            records: vec![],
        }),
    };
    b.step(
        "create EF.DIR (2F00)",
        commands::create_file(&ef_fcp(&ef_dir)),
    )?;
    for (df, record) in profile.dfs().iter().zip(&dir_records) {
        b.step(
            format!(
                "EF.DIR: the application template of DF.{}",
                df.area.to_uppercase()
            ),
            commands::append_record(record),
        )?;
    }

    for df in profile.dfs() {
        b.step("select the MF", commands::select_mf())?;
        b.step(
            format!("create DF.{} ({})", df.area.to_uppercase(), df.fid),
            commands::create_file(&df_fcp(&df.to_df(), 0x05)),
        )?;
        for ef in &df.efs {
            b.step(
                format!("create EF {} {}", ef.fid, ef.name),
                commands::create_file(&ef_fcp(&ef.to_ef())),
            )?;
            if let (
                EfPlan::Records(plans),
                EfStructure::Records {
                    kind, record_len, ..
                },
            ) = (&ef.content, ef.structure)
            {
                // One record per record value the profile gives, reserved now, so that
                // personalization only ever updates (and replays from its start).
                let placeholder = match kind {
                    RecordKind::LinearFixed => vec![0; usize::from(record_len)],
                    RecordKind::LinearVariable => vec![0],
                };
                for n in 1..=plans.len() {
                    b.step(
                        format!("EF {} {}: reserve record {n}", ef.fid, ef.name),
                        commands::append_record(&placeholder),
                    )?;
                }
            }
        }
    }

    b.step("select the MF", commands::select_mf())?;
    for spec in [profile.pin(), profile.puk()] {
        let p = spec.policy;
        let data = [
            0x83,
            1,
            spec.reference.byte(),
            0xC1,
            1,
            p.min_len,
            0xC2,
            1,
            p.max_len,
            0xC3,
            1,
            p.max_tries,
        ];
        b.step(
            format!("define the {}", password_name(spec.reference)),
            commands::put_data(0x0101, &data),
        )?;
    }
    for key in profile.keys() {
        let data = [
            0x83,
            1,
            key.reference.value(),
            0x80,
            1,
            key.algorithm.code(),
            0x95,
            1,
            key.usage.byte(),
        ];
        b.step(
            format!(
                "define key {:02X} ({}, {})",
                key.reference.value(),
                key.algorithm.name(),
                key.name
            ),
            commands::put_data(0x0102, &data),
        )?;
    }
    if let Some(keys) = channel_keys {
        let mut data = Zeroizing::new(Vec::with_capacity(68));
        vsc_core::tlv::push_primitive(&mut data, &[0xC0], keys.enc().secret_bytes());
        vsc_core::tlv::push_primitive(&mut data, &[0xC1], keys.mac().secret_bytes());
        b.step(
            "load the personalization channel keys: the card is pre-initialized",
            commands::put_data(0x0103, &data),
        )?;
    }
    Ok(())
}

pub(super) fn personalize(
    b: &mut Builder,
    profile: &FileSystemSpec,
    content: &CardContent,
) -> Result<(), CompileError> {
    for (df, df_content) in profile
        .dfs()
        .into_iter()
        .zip([&content.public, &content.private])
    {
        write_df(b, df, df_content)?;
    }
    b.step("select the MF", commands::select_mf())?;
    for (spec, value) in [(profile.pin(), &content.pin), (profile.puk(), &content.puk)] {
        let padded = Zeroizing::new(spec.policy.pad(value.expose()));
        b.step(
            format!("set the {}", password_name(spec.reference)),
            commands::set_reference_data(spec.reference.byte(), &padded),
        )?;
    }
    for ((reference, value), spec) in content.keys.iter().zip(profile.keys()) {
        let mut data = Zeroizing::new(Vec::with_capacity(40));
        vsc_core::tlv::push_primitive(&mut data, &[0x83], &[reference.value()]);
        vsc_core::tlv::push_primitive(&mut data, &[0x8F], value.expose());
        b.step(
            format!("load key {:02X} ({})", reference.value(), spec.name),
            commands::put_data(0x0104, &data),
        )?;
    }
    b.step(
        "activate the card: it becomes operational",
        commands::activate_mf(),
    )?;
    Ok(())
}

/// Writes a DF's EFs and data objects.
fn write_df(b: &mut Builder, df: &DfSpec, content: &DfContent) -> Result<(), CompileError> {
    b.step(
        format!("select DF.{} ({})", df.area.to_uppercase(), df.fid),
        commands::select_path(&[df.fid]),
    )?;
    for (ef, ef_content) in df.efs.iter().zip(&content.files) {
        let select = |b: &mut Builder| {
            b.step(
                format!("select EF {} {}", ef.fid, ef.name),
                commands::select_ef(ef.fid),
            )
        };
        match ef_content {
            EfContent::Empty => {}
            EfContent::Binary(bytes) if bytes.is_empty() => {}
            EfContent::Binary(bytes) => {
                let comment = format!("write EF {} {}", ef.fid, ef.name);
                match ef.sfi {
                    Some(sfi) => b.step(comment, commands::update_binary_sfi(sfi, bytes))?,
                    None => {
                        select(b)?;
                        b.step(comment, commands::update_binary(0, bytes))?;
                    }
                }
            }
            EfContent::Records(records) => {
                if ef.sfi.is_none() {
                    select(b)?;
                }
                let fixed_len = match ef.structure {
                    EfStructure::Records {
                        kind: vsc_core::fs::RecordKind::LinearFixed,
                        record_len,
                        ..
                    } => Some(usize::from(record_len)),
                    _ => None,
                };
                for (n, record) in records.iter().filter(|r| !r.is_empty()).enumerate() {
                    let mut data = Zeroizing::new(record.to_vec());
                    if let Some(len) = fixed_len {
                        data.resize(len, 0);
                    }
                    let number = (n + 1) as u8;
                    b.step(
                        format!("EF {} {}: record {number}", ef.fid, ef.name),
                        commands::update_record(number, ef.sfi, &data),
                    )?;
                }
            }
        }
    }
    for (object, value) in df.data_objects.iter().zip(&content.data_objects) {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            b.step(
                format!("data object {:X} {}", object.tag.value(), object.name),
                commands::put_data(object.tag.value(), value),
            )?;
        }
    }
    Ok(())
}

fn password_name(reference: PasswordRef) -> &'static str {
    match reference {
        PasswordRef::UserPin => "user PIN (01)",
        PasswordRef::Puk => "PUK (02)",
    }
}

//! A small sample card, pre-initialized and personalized in plain through APDUs: for the demo,
//! benchmarks and examples. Real cards come from profiles (`vsc-personalizer`).

use crate::apdu::Command;
use crate::card::Card;
use crate::fs::fcp::{df_fcp, ef_fcp};
use crate::fs::{
    AccessRules, Aid, Condition, DataObjectRules, Df, Ef, EfBody, Fid, FileState, Operation, Sfi,
};

/// The sample card's UID.
pub const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The sample card's user PIN, padded to its 8 bytes.
pub const USER_PIN: &[u8; 8] = b"123456\xFF\xFF";
/// The sample card's PUK.
pub const PUK: &[u8; 8] = b"12345678";
/// Key 01 (AES-128, internal authenticate): RFC 4493's example key, so INTERNAL AUTHENTICATE
/// has a known answer.
pub const KEY_01: [u8; 16] = [
    0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C,
];
/// DF.PUBLIC's AID.
pub const PUBLIC_AID: [u8; 6] = [0xF0, 0x56, 0x53, 0x43, 0x00, 0x01];
/// DF.PRIVATE's AID.
pub const PRIVATE_AID: [u8; 6] = [0xF0, 0x56, 0x53, 0x43, 0x00, 0x02];

/// The commands that make the sample card out of a blank chip, each with what it does.
pub fn script() -> Vec<(String, Vec<u8>)> {
    let always = Condition::ALWAYS;
    let never = Condition::NEVER;
    let pin = Condition::USER_PIN;
    let mut steps = Vec::new();
    let mut step = |what: &str, header: [u8; 4], data: &[u8]| {
        let command = Command::new(header[0], header[1], header[2], header[3]).with_data(data);
        // The sample's commands are all well within the encodable lengths.
        if let Ok(bytes) = command.to_vec() {
            steps.push((what.to_string(), bytes));
        }
    };
    let create = [0x00, 0xE0, 0x00, 0x00];
    let mf = [0x00, 0xA4, 0x00, 0x0C];
    step("create EF.UID", create, &ef(0x2F02, None, always, never, 8));
    step("write the UID", [0x00, 0xD6, 0x00, 0x00], &UID);
    step("back to the MF", mf, &[0x3F, 0x00]);
    step(
        "create DF.PUBLIC",
        create,
        &df(0x5000, &PUBLIC_AID, always, never),
    );
    step(
        "create EF 5001 (holder name)",
        create,
        &ef(0x5001, Some(1), always, never, 64),
    );
    step(
        "write the holder name",
        [0x00, 0xD6, 0x00, 0x00],
        b"ERIKA MUSTERMANN",
    );
    step(
        "create EF 5003 (portrait)",
        create,
        &ef(0x5003, Some(3), always, never, 1024),
    );
    let portrait: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    step("write the portrait", [0x00, 0xD6, 0x00, 0x00], &portrait);
    step("back to the MF", mf, &[0x3F, 0x00]);
    step(
        "create DF.PRIVATE",
        create,
        &df(0x6000, &PRIVATE_AID, pin, pin),
    );
    step(
        "create EF 6001 (address)",
        create,
        &ef(0x6001, Some(1), pin, pin, 128),
    );
    step(
        "write the address",
        [0x00, 0xD6, 0x00, 0x00],
        "Heidestraße 17, 51147 Köln".as_bytes(),
    );
    step("back to the MF", mf, &[0x3F, 0x00]);
    step(
        "define the user PIN",
        [0x00, 0xDA, 0x01, 0x01],
        &[0x83, 1, 1, 0xC1, 1, 6, 0xC2, 1, 8, 0xC3, 1, 3],
    );
    step(
        "define the PUK",
        [0x00, 0xDA, 0x01, 0x01],
        &[0x83, 1, 2, 0xC1, 1, 8, 0xC2, 1, 8, 0xC3, 1, 10],
    );
    step(
        "define key 01 (AES-128, internal authenticate)",
        [0x00, 0xDA, 0x01, 0x02],
        &[0x83, 1, 1, 0x80, 1, 1, 0x95, 1, 1],
    );
    let mut key_value = vec![0x83, 1, 1, 0x8F, 16];
    key_value.extend_from_slice(&KEY_01);
    step("load key 01", [0x00, 0xDA, 0x01, 0x04], &key_value);
    step("set the user PIN", [0x00, 0x24, 0x01, 0x01], USER_PIN);
    step("set the PUK", [0x00, 0x24, 0x01, 0x02], PUK);
    step("activate the card", [0x00, 0x44, 0x00, 0x00], &[0x3F, 0x00]);
    steps
}

/// The sample card, operational.
pub fn card() -> Card {
    run(script())
}

/// The command that installs a factory-fresh OpenPGP application (CREATE FILE of its
/// application DF on the MF; docs/card.md, "Applications").
pub fn install_openpgp() -> (String, Vec<u8>) {
    let fcp = crate::applications::install_fcp(crate::applications::ApplicationKind::OpenPgp);
    let command = Command::new(0x00, 0xE0, 0x00, 0x00).with_data(&fcp);
    (
        "install the OpenPGP application (factory state)".to_string(),
        command.to_vec().unwrap_or_default(),
    )
}

/// The sample card's script with a factory-fresh OpenPGP application installed before the
/// card is activated: a VSC holding both the VSC file system and OpenPGP.
pub fn script_with_openpgp() -> Vec<(String, Vec<u8>)> {
    let mut steps = script();
    let at = steps.len().saturating_sub(1);
    steps.insert(at, install_openpgp());
    steps
}

/// The sample card with OpenPGP beside its file system, operational.
pub fn card_with_openpgp() -> Card {
    run(script_with_openpgp())
}

/// The command that installs a factory-fresh PIV application (docs/piv.md, "Factory state").
pub fn install_piv() -> (String, Vec<u8>) {
    let fcp = crate::applications::install_fcp(crate::applications::ApplicationKind::Piv);
    let command = Command::new(0x00, 0xE0, 0x00, 0x00).with_data(&fcp);
    (
        "install the PIV application (factory state)".to_string(),
        command.to_vec().unwrap_or_default(),
    )
}

/// The sample card's script with factory-fresh OpenPGP and PIV applications installed before
/// the card is activated: a VSC holding the VSC file system, OpenPGP and PIV.
pub fn script_with_openpgp_and_piv() -> Vec<(String, Vec<u8>)> {
    let mut steps = script_with_openpgp();
    let at = steps.len().saturating_sub(1);
    steps.insert(at, install_piv());
    steps
}

/// The sample card with OpenPGP and PIV beside its file system, operational.
pub fn card_with_openpgp_and_piv() -> Card {
    run(script_with_openpgp_and_piv())
}

/// A PIV token as it arrives from the factory: EF.UID with `uid`, a factory-fresh PIV
/// application (PIN `123456`, PUK `12345678`, the default 3DES management key, no keys, the
/// CHUID and CCC derived from the UID), operational.
pub fn piv_token(uid: [u8; 8]) -> Card {
    run(token_script(uid, install_piv()))
}

/// A token as it arrives from the factory: EF.UID with `uid`, a factory-fresh OpenPGP
/// application (PW1 `123456`, PW3 `12345678`, no keys), operational.
pub fn openpgp_token(uid: [u8; 8]) -> Card {
    run(token_script(uid, install_openpgp()))
}

/// A token's script: EF.UID with `uid`, the application `install` installs, activation.
fn token_script(uid: [u8; 8], install: (String, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    let step = |what: &str, header: [u8; 4], data: &[u8]| {
        let command = Command::new(header[0], header[1], header[2], header[3]).with_data(data);
        (what.to_string(), command.to_vec().unwrap_or_default())
    };
    let never = Condition::NEVER;
    vec![
        step(
            "create EF.UID",
            [0x00, 0xE0, 0x00, 0x00],
            &ef(0x2F02, None, Condition::ALWAYS, never, 8),
        ),
        step("write the UID", [0x00, 0xD6, 0x00, 0x00], &uid),
        step("back to the MF", [0x00, 0xA4, 0x00, 0x0C], &[0x3F, 0x00]),
        install,
        step("activate the card", [0x00, 0x44, 0x00, 0x00], &[0x3F, 0x00]),
    ]
}

fn run(steps: Vec<(String, Vec<u8>)>) -> Card {
    let mut card = Card::blank();
    for (_, command) in steps {
        card.transmit(&command);
    }
    card.reset();
    card
}

fn ef(fid: u16, sfi: Option<u8>, read: Condition, update: Condition, size: usize) -> Vec<u8> {
    ef_fcp(&Ef {
        fid: Fid::new(fid).unwrap_or(Fid::EF_DIR),
        sfi: sfi.and_then(|s| Sfi::new(s).ok()),
        state: FileState::Activated,
        rules: AccessRules::uniform(Condition::NEVER)
            .with(Operation::ReadOrDeleteChild, read)
            .with(Operation::UpdateOrCreateEf, update),
        body: EfBody::Transparent(vec![0; size]),
    })
}

fn df(fid: u16, aid: &[u8], get: Condition, put: Condition) -> Vec<u8> {
    let df = Df::new(
        Fid::new(fid).unwrap_or(Fid::DF_PUBLIC),
        Aid::new(aid).ok(),
        AccessRules::uniform(Condition::NEVER),
        DataObjectRules { get, put },
    );
    df_fcp(&df, 0x05)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::LifeCycle;

    #[test]
    fn every_step_succeeds() {
        let mut card = Card::blank();
        for (what, command) in script() {
            assert_eq!(card.transmit(&command), [0x90, 0x00], "{what}");
        }
        assert_eq!(card.state().life_cycle, LifeCycle::Operational);
        assert_eq!(card.state().uid(), Some(crate::Uid(UID)));
        let mut card = Card::blank();
        for (what, command) in script_with_openpgp() {
            assert_eq!(card.transmit(&command), [0x90, 0x00], "{what}");
        }
        assert_eq!(card.state().applications.len(), 1);
        let token = openpgp_token([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(token.state().life_cycle, LifeCycle::Operational);
        assert_eq!(token.state().applications.len(), 1);
    }
}

//! The card applications the platform hosts beside the VSC file system, each selected by its
//! AID (docs/platform.md): OpenPGP card 3.4 ([`openpgp`]) and PIV ([`piv`]). An application is a plain enum
//! variant, so that the image can file each application's objects under the five areas.
//!
//! An application is installed at pre-initialization by CREATE FILE of an application DF on
//! the MF: `62 { 82 01 38, 84 <AID>, A5 { 80 <kind>, 81 <major> <minor> } }` (docs/card.md).

pub mod openpgp;
pub mod piv;

use serde::{Deserialize, Serialize};

use crate::Uid;
use crate::apdu::{Command, Status};
use crate::card::Card;
use crate::security::Password;
use crate::tlv;

/// The kinds of applications the platform knows, with their code in the install command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApplicationKind {
    /// OpenPGP card 3.4 (code `01`).
    OpenPgp,
    /// PIV, NIST SP 800-73-4, with the Yubico extensions (code `02`).
    Piv,
}

impl ApplicationKind {
    /// The code byte of the install command (`A5 { 80 code }`).
    pub fn code(self) -> u8 {
        match self {
            ApplicationKind::OpenPgp => 0x01,
            ApplicationKind::Piv => 0x02,
        }
    }

    /// The kind a code byte names.
    pub fn from_code(code: u8) -> Option<ApplicationKind> {
        match code {
            0x01 => Some(ApplicationKind::OpenPgp),
            0x02 => Some(ApplicationKind::Piv),
            _ => None,
        }
    }

    /// The versions of the kind this card OS implements.
    pub fn version(self) -> (u8, u8) {
        match self {
            ApplicationKind::OpenPgp => (3, 4),
            // The version in the PIV AID (`… 01 00`).
            ApplicationKind::Piv => (1, 0),
        }
    }

    /// The DF name the install command carries: the registered part of the AID.
    pub fn registered_aid(self) -> &'static [u8] {
        match self {
            ApplicationKind::OpenPgp => &openpgp::RID_PIX,
            ApplicationKind::Piv => &piv::AID,
        }
    }

    /// The name, e.g. `OpenPGP 3.4`.
    pub fn name(self) -> &'static str {
        match self {
            ApplicationKind::OpenPgp => "OpenPGP 3.4",
            ApplicationKind::Piv => "PIV",
        }
    }
}

/// An installed application's persistent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Application {
    /// The OpenPGP application.
    OpenPgp(Box<openpgp::OpenPgp>),
    /// The PIV application.
    Piv(Box<piv::Piv>),
}

/// An application type the platform hosts in an [`Application`] variant, with its session in an
/// [`AppSession`] variant: the accessors its commands use to reach it on the card are written
/// once, here, for every application.
pub(crate) trait Hosted: Sized {
    /// Its volatile state while it is selected.
    type Session;

    /// `application`, if it is of this type.
    fn within(application: &Application) -> Option<&Self>;

    /// `application`, to change it, if it is of this type.
    fn within_mut(application: &mut Application) -> Option<&mut Self>;

    /// `session`, if it is this type's.
    fn session_within(session: &mut AppSession) -> Option<&mut Self::Session>;

    /// The application at `index`.
    fn of(card: &Card, index: usize) -> Result<&Self, Status> {
        card.state
            .applications
            .get(index)
            .and_then(Self::within)
            .ok_or(Status::NoPreciseDiagnosis)
    }

    /// The application at `index`, to change it: the change is made durable before the answer.
    fn of_mut(card: &mut Card, index: usize) -> Result<&mut Self, Status> {
        card.touch();
        card.state
            .applications
            .get_mut(index)
            .and_then(Self::within_mut)
            .ok_or(Status::NoPreciseDiagnosis)
    }

    /// The application's session (it is selected whenever a command reaches it).
    fn session_of(card: &mut Card) -> Result<&mut Self::Session, Status> {
        card.session
            .application
            .as_mut()
            .and_then(|selected| Self::session_within(&mut selected.session))
            .ok_or(Status::NoPreciseDiagnosis)
    }
}

/// `Hosted` for the application type in variant `$variant` of [`Application`] and
/// [`AppSession`]: the three matches are the same for every application.
macro_rules! hosted {
    ($variant:ident, $app:ty, $session:ty) => {
        impl Hosted for $app {
            type Session = $session;

            fn within(application: &Application) -> Option<&Self> {
                match application {
                    Application::$variant(app) => Some(app),
                    _ => None,
                }
            }

            fn within_mut(application: &mut Application) -> Option<&mut Self> {
                match application {
                    Application::$variant(app) => Some(app),
                    _ => None,
                }
            }

            fn session_within(session: &mut AppSession) -> Option<&mut Self::Session> {
                match session {
                    AppSession::$variant(session) => Some(session),
                    _ => None,
                }
            }
        }
    };
}

hosted!(OpenPgp, openpgp::OpenPgp, openpgp::Session);
hosted!(Piv, piv::Piv, piv::Session);

/// A password object of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppPassword {
    /// One of OpenPGP's.
    OpenPgp(openpgp::Pw),
    /// PIV's PIN or PUK.
    Piv(piv::PivPassword),
}

/// An application's volatile state, kept while it is selected.
#[derive(Debug)]
pub enum AppSession {
    /// OpenPGP's.
    OpenPgp(openpgp::Session),
    /// PIV's.
    Piv(piv::Session),
}

impl AppSession {
    /// Forgets every verification.
    pub fn forget_security(&mut self) {
        match self {
            AppSession::OpenPgp(session) => *session = openpgp::Session::default(),
            AppSession::Piv(session) => *session = piv::Session::default(),
        }
    }
}

impl Application {
    /// A new application of `kind` in its factory state, on the card with `uid` (PIV derives
    /// its CHUID and CCC from it).
    pub fn install(kind: ApplicationKind, uid: Option<Uid>) -> Application {
        match kind {
            ApplicationKind::OpenPgp => Application::OpenPgp(Box::new(openpgp::OpenPgp::factory())),
            ApplicationKind::Piv => Application::Piv(Box::new(piv::Piv::factory(uid))),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ApplicationKind {
        match self {
            Application::OpenPgp(_) => ApplicationKind::OpenPgp,
            Application::Piv(_) => ApplicationKind::Piv,
        }
    }

    /// Its full AID on the card with `uid`.
    pub fn aid(&self, uid: Option<Uid>) -> Vec<u8> {
        match self {
            Application::OpenPgp(_) => openpgp::aid(uid).to_vec(),
            Application::Piv(_) => piv::AID.to_vec(),
        }
    }

    pub(crate) fn password_mut(&mut self, which: AppPassword) -> Option<&mut Password> {
        match (self, which) {
            (Application::OpenPgp(app), AppPassword::OpenPgp(pw)) => app.password_mut(pw),
            (Application::Piv(app), AppPassword::Piv(which)) => Some(app.password_mut(which)),
            _ => None,
        }
    }

    pub(crate) fn knows_instruction(&self, ins: u8) -> bool {
        match self {
            Application::OpenPgp(_) => openpgp::knows_instruction(ins),
            Application::Piv(_) => piv::knows_instruction(ins),
        }
    }

    /// Whether a command without Le is answered as if Le were `00` (or `0000` in extended
    /// form): PIV's, as YubiKeys answer and yubico-piv-tool expects (its GENERAL AUTHENTICATE
    /// sends no Le and takes no `61xx`). The others cut the answer to `61xx` (ISO 7816-4 case 3).
    pub(crate) fn answers_without_le(&self) -> bool {
        matches!(self, Application::Piv(_))
    }

    /// Whether selecting the application while it is selected keeps its session (its
    /// verifications): PIV's, as SP 800-73-4 part 2 §3.1.1 has it and as yubico-piv-tool and
    /// OpenSC need (both select again before each operation). Any other selection in between
    /// still starts it afresh.
    pub(crate) fn keeps_session_when_selected_again(&self) -> bool {
        matches!(self, Application::Piv(_))
    }

    pub(crate) fn new_session(&self) -> AppSession {
        match self {
            Application::OpenPgp(_) => AppSession::OpenPgp(openpgp::Session::default()),
            Application::Piv(_) => AppSession::Piv(piv::Session::default()),
        }
    }

    /// Splits the state into the parts each image area holds.
    pub fn split(&self) -> Parts {
        match self {
            Application::OpenPgp(app) => Parts {
                public: PublicPart::OpenPgp(app.public.clone()),
                private: PrivatePart::OpenPgp(app.private.clone()),
                keys: KeyPart::OpenPgp(app.keys.clone()),
                passwords: PasswordPart::OpenPgp(app.passwords.clone()),
            },
            Application::Piv(app) => Parts {
                public: PublicPart::Piv(app.public.clone()),
                private: PrivatePart::Piv(app.private.clone()),
                keys: KeyPart::Piv(app.keys.clone()),
                passwords: PasswordPart::Piv(app.passwords.clone()),
            },
        }
    }

    /// Joins the parts of one application (`None` when they are of different kinds).
    pub fn join(parts: Parts) -> Option<Application> {
        match parts {
            Parts {
                public: PublicPart::OpenPgp(public),
                private: PrivatePart::OpenPgp(private),
                keys: KeyPart::OpenPgp(keys),
                passwords: PasswordPart::OpenPgp(passwords),
            } => Some(Application::OpenPgp(Box::new(openpgp::OpenPgp {
                public,
                private,
                keys,
                passwords,
            }))),
            Parts {
                public: PublicPart::Piv(public),
                private: PrivatePart::Piv(private),
                keys: KeyPart::Piv(keys),
                passwords: PasswordPart::Piv(passwords),
            } => Some(Application::Piv(Box::new(piv::Piv {
                public,
                private,
                keys,
                passwords,
            }))),
            _ => None,
        }
    }
}

/// An application's state cut along the five areas (the UID is the platform's).
#[derive(Debug)]
pub struct Parts {
    /// What the clear area holds.
    pub public: PublicPart,
    /// What the private area holds.
    pub private: PrivatePart,
    /// What the secret key area holds.
    pub keys: KeyPart,
    /// What the password area holds.
    pub passwords: PasswordPart,
}

/// An application's public objects (the image's clear area).
// Parts live only while an image is written or read; boxing would gain nothing there.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicPart {
    /// OpenPGP's public data objects.
    OpenPgp(openpgp::PublicData),
    /// PIV's public data objects and key slots.
    Piv(piv::PublicData),
}

/// An application's private objects (the image's private area).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrivatePart {
    /// OpenPGP's private data objects.
    OpenPgp(openpgp::PrivateData),
    /// PIV's data objects behind the PIN.
    Piv(piv::PrivateData),
}

/// An application's keys (the image's secret key area).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyPart {
    /// OpenPGP's three private keys.
    OpenPgp(openpgp::Keys),
    /// PIV's management key and private keys.
    Piv(piv::Keys),
}

/// An application's passwords (the image's password area).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasswordPart {
    /// PW1, the resetting code and PW3.
    OpenPgp(openpgp::Passwords),
    /// PIV's PIN and PUK.
    Piv(piv::Passwords),
}

/// The application a CREATE FILE FCP installs, if it is an application FCP (one with an
/// `A5` template): `Ok(None)` for an ordinary file, `Err` for a malformed or unknown one.
pub(crate) fn parse_install(data: &[u8]) -> Result<Option<ApplicationKind>, Status> {
    let Ok(template) = tlv::parse_one(data) else {
        return Ok(None);
    };
    if tlv::tag_number(template.tag()) != 0x62 {
        return Ok(None);
    }
    let iso7816_tlv::ber::Value::Constructed(objects) = template.value() else {
        return Ok(None);
    };
    let Some(proprietary) = objects
        .iter()
        .find(|object| tlv::tag_number(object.tag()) == 0xA5)
    else {
        return Ok(None);
    };
    let iso7816_tlv::ber::Value::Constructed(inner) = proprietary.value() else {
        return Err(Status::IncorrectData);
    };
    if tlv::find_primitive(objects, 0x82) != Some(&[0x38])
        || tlv::find_primitive(objects, 0x83).is_some()
    {
        return Err(Status::IncorrectData);
    }
    let kind = match tlv::find_primitive(inner, 0x80) {
        Some([code]) => ApplicationKind::from_code(*code).ok_or(Status::IncorrectData)?,
        _ => return Err(Status::IncorrectData),
    };
    let (major, minor) = kind.version();
    if tlv::find_primitive(inner, 0x81) != Some(&[major, minor]) {
        return Err(Status::IncorrectData);
    }
    if tlv::find_primitive(objects, 0x84) != Some(kind.registered_aid()) {
        return Err(Status::IncorrectData);
    }
    Ok(Some(kind))
}

/// The install command's FCP for `kind` (for preparation and tests).
pub fn install_fcp(kind: ApplicationKind) -> Vec<u8> {
    let mut out = Vec::new();
    tlv::push_constructed(&mut out, &[0x62], |out| {
        tlv::push_primitive(out, &[0x82], &[0x38]);
        tlv::push_primitive(out, &[0x84], kind.registered_aid());
        tlv::push_constructed(out, &[0xA5], |out| {
            let (major, minor) = kind.version();
            tlv::push_primitive(out, &[0x80], &[kind.code()]);
            tlv::push_primitive(out, &[0x81], &[major, minor]);
        });
    });
    out
}

/// The index of the first application whose AID starts with `name`.
pub(crate) fn find(applications: &[Application], uid: Option<Uid>, name: &[u8]) -> Option<usize> {
    applications
        .iter()
        .position(|application| application.aid(uid).starts_with(name))
}

/// SELECT of the application at `index`: its answer (FCI or nothing) and status.
pub(crate) fn select(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    match card.state.applications.get(index) {
        Some(Application::OpenPgp(_)) => openpgp::select(card, index, command, out),
        Some(Application::Piv(_)) => piv::select(card, index, command, out),
        None => Err(Status::FileNotFound),
    }
}

/// A command for the selected application at `index`.
pub(crate) fn dispatch(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    match card.state.applications.get(index) {
        Some(Application::OpenPgp(_)) => openpgp::dispatch(card, index, command, out),
        Some(Application::Piv(_)) => piv::dispatch(card, index, command, out),
        None => Err(Status::NoPreciseDiagnosis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::Card;

    #[test]
    fn the_install_command_is_the_one_card_md_gives_and_is_checked() {
        let fcp = install_fcp(ApplicationKind::OpenPgp);
        assert_eq!(
            hex::encode_upper(&fcp),
            "6214820138 8406D27600012401 A507800101 81020304".replace(' ', "")
        );
        assert_eq!(parse_install(&fcp), Ok(Some(ApplicationKind::OpenPgp)));
        for bad in [
            "6214820138 8406D27600012402 A507800101 81020304", // another AID
            "6214820138 8406D27600012401 A507800102 81020304", // an unknown kind
            "6214820138 8406D27600012401 A507800101 81020303", // another version
            "6218820138 83026000 8406D27600012401 A507800101 81020304", // with a FID
            "6212820138 8406D27600012401 A505 8001018100",
        ] {
            assert_eq!(
                parse_install(&hex::decode(bad.replace(' ', "")).unwrap()),
                Err(Status::IncorrectData),
                "{bad}"
            );
        }
        assert_eq!(
            parse_install(&hex::decode("62038201 38").unwrap_or_default()),
            Ok(None)
        );
        // Installed twice: 6A8A.
        let mut card = Card::blank();
        let install = format!("00E0000016{}", hex::encode_upper(&fcp));
        let send = |card: &mut Card, hex: &str| {
            hex::encode_upper(card.transmit(&hex::decode(hex).unwrap()))
        };
        assert_eq!(send(&mut card, &install), "9000");
        assert_eq!(send(&mut card, &install), "6A8A");
        assert_eq!(send(&mut card, "00A4040C06D27600012401"), "9000");
    }

    #[test]
    fn the_piv_install_command_is_the_one_piv_md_gives() {
        let fcp = install_fcp(ApplicationKind::Piv);
        assert_eq!(
            format!("00E000001B{}", hex::encode_upper(&fcp)),
            "00E000001B 6219 820138 840BA000000308000010000100 A507800102 81020100"
                .replace(' ', "")
        );
        assert_eq!(parse_install(&fcp), Ok(Some(ApplicationKind::Piv)));
        // Another version: 6A80.
        let mut other = fcp.clone();
        let last = other.len() - 1;
        other[last] = 0x01;
        assert_eq!(parse_install(&other), Err(Status::IncorrectData));
        // OpenPGP and PIV side by side, each selected by its own AID.
        let mut card = Card::blank();
        for kind in [ApplicationKind::OpenPgp, ApplicationKind::Piv] {
            let fcp = install_fcp(kind);
            let mut command = vec![0x00, 0xE0, 0x00, 0x00, fcp.len() as u8];
            command.extend_from_slice(&fcp);
            assert_eq!(card.transmit(&command), [0x90, 0x00]);
        }
        assert_eq!(
            card.transmit(&hex::decode("00A4040C05A000000308").unwrap()),
            [0x90, 0x00]
        );
        assert_eq!(
            card.transmit(&hex::decode("00200080").unwrap()),
            [0x63, 0xC3]
        );
        assert_eq!(
            card.transmit(&hex::decode("00A4040C06D27600012401").unwrap()),
            [0x90, 0x00]
        );
        assert_eq!(
            card.transmit(&hex::decode("00200080").unwrap()),
            [0x6A, 0x86]
        );
    }
}

//! The channel's key pair, K_enc and K_mac.

use std::fmt;

use subtle::{Choice, ConstantTimeEq};

use crate::crypto::{AesKey, KeyLabel, MasterKey, UID_LEN};

/// `K_enc` (encryption of DO`87`/`85` and of the SSC into the IV) and `K_mac` (AES-CMAC).
///
/// Both keys zeroize on drop; `Debug` shows nothing of them.
#[derive(Clone)]
pub struct ChannelKeys {
    pub(super) enc: AesKey,
    pub(super) mac: AesKey,
}

impl ChannelKeys {
    /// The card's channel keys: `K_enc` = HKDF label `vsc/v1/sm/k-enc`, `K_mac` =
    /// `vsc/v1/sm/k-mac`, both AES-256, from the master key and the card's UID.
    pub fn derive(master: &MasterKey, uid: &[u8; UID_LEN]) -> ChannelKeys {
        ChannelKeys {
            enc: AesKey::derive(master, KeyLabel::SmEnc, uid),
            mac: AesKey::derive(master, KeyLabel::SmMac, uid),
        }
    }

    /// A channel with given keys of any AES size (test vectors, or keys from elsewhere).
    pub fn from_keys(enc: AesKey, mac: AesKey) -> ChannelKeys {
        ChannelKeys { enc, mac }
    }

    /// `K_enc`: written into the card at pre-initialization.
    pub fn enc(&self) -> &AesKey {
        &self.enc
    }

    /// `K_mac`: written into the card at pre-initialization.
    pub fn mac(&self) -> &AesKey {
        &self.mac
    }
}

impl ConstantTimeEq for ChannelKeys {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.enc.ct_eq(&other.enc) & self.mac.ct_eq(&other.mac)
    }
}

impl PartialEq for ChannelKeys {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for ChannelKeys {}

impl fmt::Debug for ChannelKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKeys(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_per_card_and_distinct() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let keys = ChannelKeys::derive(&master, &[1; 8]);
        assert_ne!(keys.enc, keys.mac);
        assert_eq!(keys, ChannelKeys::derive(&master, &[1; 8]));
        assert_ne!(keys, ChannelKeys::derive(&master, &[2; 8]));
        assert_eq!(format!("{keys:?}"), "ChannelKeys(..)");
    }
}

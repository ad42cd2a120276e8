//! HMAC-SHA256 and HKDF-SHA256 as this crate calls them, checked against their RFC vectors.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The length of an HMAC-SHA256 tag.
pub(crate) const HMAC_LEN: usize = 32;

/// HMAC-SHA256 (RFC 2104) under `key` of the concatenation of `chunks`.
pub(crate) fn hmac_sha256(key: &[u8], chunks: &[&[u8]]) -> [u8; HMAC_LEN] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    for chunk in chunks {
        mac.update(chunk);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` (none means HashLen zero bytes), then expand with
/// the concatenation of `info` into `out`.
///
/// Returns `false` (with `out` untouched) only if `out` is longer than 255 × 32 bytes.
#[must_use]
pub(crate) fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> bool {
    Hkdf::<Sha256>::new(salt, ikm)
        .expand_multi_info(info, out)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex).unwrap()
    }

    #[test]
    fn rfc4231_hmac_sha256() {
        // RFC 4231, section 4: test cases 1, 2, 3, 4, 6 and 7 (HMAC-SHA-256). Case 5 tests a
        // truncated tag, which this crate never uses.
        let cases = [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b".to_string(),
                hex::encode("Hi There"),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                hex::encode("Jefe"),
                hex::encode("what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                "aa".repeat(20),
                "dd".repeat(50),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                "0102030405060708090a0b0c0d0e0f10111213141516171819".to_string(),
                "cd".repeat(50),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                "aa".repeat(131),
                hex::encode("Test Using Larger Than Block-Size Key - Hash Key First"),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                "aa".repeat(131),
                hex::encode(
                    "This is a test using a larger than block-size key and a larger than \
                     block-size data. The key needs to be hashed before being used by the HMAC \
                     algorithm.",
                ),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (number, (key, data, tag)) in cases.iter().enumerate() {
            let data = bytes(data);
            assert_eq!(
                hex::encode(hmac_sha256(&bytes(key), &[&data])),
                *tag,
                "case {number}"
            );
            let (a, b) = data.split_at(data.len() / 3);
            assert_eq!(hex::encode(hmac_sha256(&bytes(key), &[a, b])), *tag);
        }
    }

    struct HkdfCase {
        ikm: Vec<u8>,
        salt: Option<Vec<u8>>,
        info: Vec<u8>,
        okm: &'static str,
    }

    #[test]
    fn rfc5869_hkdf_sha256() {
        // RFC 5869, appendix A: test cases 1, 2 and 3 (SHA-256). Case 3 has no salt and no info.
        let case2_ikm: Vec<u8> = (0x00..=0x4f).collect();
        let case2_salt: Vec<u8> = (0x60..=0xaf).collect();
        let case2_info: Vec<u8> = (0xb0..=0xff).collect();
        let cases: [HkdfCase; 3] = [
            HkdfCase {
                ikm: bytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                salt: Some(bytes("000102030405060708090a0b0c")),
                info: bytes("f0f1f2f3f4f5f6f7f8f9"),
                okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                 34007208d5b887185865",
            },
            HkdfCase {
                ikm: case2_ikm,
                salt: Some(case2_salt),
                info: case2_info,
                okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                 59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                 cc30c58179ec3e87c14c01d5c1f3434f1d87",
            },
            HkdfCase {
                ikm: bytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                salt: None,
                info: Vec::new(),
                okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
                 9d201395faa4b61a96c8",
            },
        ];
        for HkdfCase {
            ikm,
            salt,
            info,
            okm,
        } in cases
        {
            let mut out = vec![0; okm.len() / 2];
            assert!(hkdf_sha256(salt.as_deref(), &ikm, &[&info], &mut out));
            assert_eq!(hex::encode(&out), okm);
            // The info may come in pieces: HKDF sees their concatenation.
            let (a, b) = info.split_at(info.len() / 2);
            let mut split = vec![0; out.len()];
            assert!(hkdf_sha256(salt.as_deref(), &ikm, &[a, b], &mut split));
            assert_eq!(split, out);
        }
    }

    #[test]
    fn hkdf_refuses_too_long_outputs() {
        let mut out = vec![7; 255 * 32 + 1];
        assert!(!hkdf_sha256(None, b"ikm", &[], &mut out));
        assert!(out.iter().all(|&b| b == 7));
    }
}

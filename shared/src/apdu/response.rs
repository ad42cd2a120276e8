//! Response APDUs: response data followed by the status word.

use std::fmt;

use super::{ApduError, Status};

/// A response APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The response data field.
    pub data: Vec<u8>,
    /// The trailing status word.
    pub status: Status,
}

impl Response {
    /// A response without data.
    pub fn status(status: Status) -> Self {
        Response {
            data: Vec::new(),
            status,
        }
    }

    /// Parses a response: at least the two status bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Response {
                data: data.to_vec(),
                status: Status::from([*sw1, *sw2]),
            }),
            _ => Err(ApduError::TooShort(bytes.len())),
        }
    }

    /// Appends the encoded response to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
    }

    /// The encoded response.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        self.encode_into(&mut out);
        out
    }
}

impl fmt::Debug for Response {
    /// Prints the length of the data, never the data: a response may carry private data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("len", &self.data.len())
            .field("status", &self.status)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode() {
        let r = Response::parse(&[0x01, 0x02, 0x90, 0x00]).unwrap();
        assert_eq!(r.data, [1, 2]);
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.to_vec(), [1, 2, 0x90, 0x00]);
        assert_eq!(
            Response::parse(&[0x90]).unwrap_err(),
            ApduError::TooShort(1)
        );
    }
}

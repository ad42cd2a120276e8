//! The vpcd transport: the frame codec and a buffered, socket-tuned connection to vpcd.

mod connection;
mod frame;

pub use connection::{Connection, ConnectionError};
pub use frame::{FrameError, HEADER_LEN, MAX_BODY_LEN, Message, decode, encode, frame_len};

//! Synthetic card holders for a profile.

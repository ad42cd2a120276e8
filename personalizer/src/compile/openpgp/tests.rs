//! The OpenPGP backend: transcripts the reference card OS takes, certificates rPGP reads back.

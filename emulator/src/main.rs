//! The `vsc-emulator` command line.

fn main() {}

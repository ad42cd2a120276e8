//! The `vsc-personalizer` command line.

fn main() {}

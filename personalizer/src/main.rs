//! The `vsc-personalizer` command line: [`cli`] turns the arguments into validated settings, one
//! file per command, and calls the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

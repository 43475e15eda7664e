//! The `greenlight` binary: see `greenlight --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

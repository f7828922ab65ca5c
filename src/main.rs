//! The `cuentas` command: parse the command line, start logging, run, map errors to exit codes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cuentas::app::Cli::parse();
    cuentas::app::init_logging(cli.log_format);
    match cuentas::app::main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cuentas: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

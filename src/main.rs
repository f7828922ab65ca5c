//! The `cuentas` command: parse the command line, start logging, run, map errors to exit codes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cuentas::app::Cli::parse();
    cuentas::app::init_logging(cli.log_format);
    match cuentas::app::main(cli) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("cuentas: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `atp`: the ATP command line. The logic lives in the `atp_cli` library; this file parses the
//! arguments, runs the command and turns the outcome into an exit code (docs/cli.md).

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match atp_cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        // Usage errors: one line on stderr (the problem and the valid values), exit 2.
        Err(e) => {
            let text = e.render().to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let line = line.join("; ");
            eprintln!("atp: error: {}", line.strip_prefix("error: ").unwrap_or(&line));
            return ExitCode::from(atp_cli::EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atp: error: cannot start the async runtime: {e}");
            return ExitCode::from(atp_cli::EXIT_LOCAL);
        }
    };
    let json = cli.json;
    match runtime.block_on(atp_cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            atp_cli::report(&e, json);
            ExitCode::from(e.exit_code())
        }
    }
}

//! `collabd`: the daemon, plus `migrate` and `check-config` for operators.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use collabd::config::Settings;
use collabd::daemon::Daemon;
use collabd::store::Store;

#[derive(Parser)]
#[command(version, about = "Turns creators' email replies into collaborations")]
struct Cli {
    /// Configuration file.
    #[arg(long, short, env = "COLLABD_CONFIG", default_value = "/etc/collabd/collabd.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration (including readable passwords) and exit; warns (on
    /// stderr, still exit 0) about secret files group or others can read.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            // One line, whatever the parser printed (TOML errors come with a code excerpt).
            let msg = e.to_string();
            let msg: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            eprintln!("collabd: {}: {}", cli.config.display(), msg.join(" "));
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        for f in collabd::confine::exposed_secret_files(&settings) {
            eprintln!("collabd: warning: {f}");
        }
        println!("{}: OK ({} mailboxes)", cli.config.display(), settings.mailboxes.len());
        return ExitCode::SUCCESS;
    }
    collabd::telemetry::init(settings.log.format, &settings.log.level);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli.command.unwrap_or(Command::Run), settings, cli.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("collabd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings, config: PathBuf) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let store =
                Store::connect(settings.database_url(), 1, settings.database.statement_timeout)
                    .await
                    .context("database")?;
            store.migrate().await.context("migrations")?;
            println!("migrations applied");
        }
        Command::Run => Daemon::start(settings, config).await?.run_until_signal().await?,
        Command::CheckConfig => unreachable!("handled before the runtime starts"),
    }
    Ok(())
}

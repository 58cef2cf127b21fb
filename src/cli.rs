//! The `patrol` command line. Each subcommand parses its arguments, calls the library
//! and maps the outcome to an exit code; no logic lives here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::catalog::{self, Catalog, LoadError};

#[derive(Debug, Parser)]
#[command(
    name = "patrol",
    version,
    about = "Fine-grained token authorization service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the permission catalog.
    Catalog {
        /// A catalog directory to use instead of the embedded one.
        #[arg(long, env = "PATROL_CATALOG_DIR", global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Validate the catalog; print every violation with its file and line.
    Check,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog { dir, command } => match command {
            CatalogCommand::Check => check(dir.as_deref()),
        },
    }
}

fn load(dir: Option<&Path>) -> Result<Catalog, LoadError> {
    match dir {
        Some(dir) => catalog::load_dir(dir),
        None => catalog::load_embedded(),
    }
}

/// Loads the catalog or prints why it cannot be loaded.
fn load_or_report(dir: Option<&Path>) -> Option<Catalog> {
    match load(dir) {
        Ok(catalog) => Some(catalog),
        Err(LoadError::Invalid(violations)) => {
            for v in &violations {
                eprintln!("{v}");
            }
            eprintln!("error: the catalog has {} violation(s)", violations.len());
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

fn check(dir: Option<&Path>) -> ExitCode {
    let Some(catalog) = load_or_report(dir) else {
        return ExitCode::FAILURE;
    };
    println!(
        "catalog ok: {} permissions, {} routes ({} skipped), {} legacy scopes, {} job token policies, {} templates",
        catalog.permissions.len(),
        catalog.routes.entries().len(),
        catalog.skipped_routes.len(),
        catalog.scopes.len(),
        catalog.job_token_policies.len(),
        catalog.templates.len(),
    );
    ExitCode::SUCCESS
}

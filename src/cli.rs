//! The `patrol` command line. Each subcommand parses its arguments, calls the library
//! and maps the outcome to an exit code; no logic lives here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::Application;
use crate::catalog::{self, Catalog, LoadError};
use crate::config::Settings;
use crate::keys::KeyRole;
use crate::service::Service;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "patrol",
    version,
    about = "Fine-grained token authorization service"
)]
struct Cli {
    /// The configuration file (default: `patrol.toml` when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (applies pending migrations first unless `--no-migrate`).
    Serve {
        /// Do not apply pending migrations.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations to the store and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage the service keys callers present in `X-Patrol-Key`.
    ServiceKey {
        #[command(subcommand)]
        command: ServiceKeyCommand,
    },
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
enum ServiceKeyCommand {
    /// Create a key in the configured store and print it, once. This is how a fresh
    /// installation gets its first admin key without `PATROL_ADMIN_KEY`.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// `authorize` (decisions), `manage` (directory and tokens) or `admin`.
        #[arg(long, value_parser = parse_role)]
        role: KeyRole,
    },
}

fn parse_role(role: &str) -> Result<KeyRole, String> {
    match role {
        "authorize" => Ok(KeyRole::Authorize),
        "manage" => Ok(KeyRole::Manage),
        "admin" => Ok(KeyRole::Admin),
        other => Err(format!(
            "`{other}` is not a role: authorize, manage or admin"
        )),
    }
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Validate the catalog; print every violation with its file and line.
    Check,
    /// Write the permissions page.
    Docs {
        /// Where to write the Markdown page; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write HTML instead of Markdown.
        #[arg(long)]
        html: bool,
    },
    /// Check which operations of an OpenAPI 2/3 spec (JSON or YAML), or which query
    /// fields, mutations and object types of a GraphQL schema (SDL), the catalog covers.
    #[command(group(clap::ArgGroup::new("spec").required(true).args(["openapi", "graphql"])))]
    Coverage {
        #[arg(long, value_name = "SPEC")]
        openapi: Option<PathBuf>,
        #[arg(long, value_name = "SCHEMA")]
        graphql: Option<PathBuf>,
        /// Pass when at least this percentage is covered or skipped, even with gaps (of
        /// the query fields and mutations, for a GraphQL schema).
        #[arg(long, value_name = "N")]
        min: Option<f64>,
    },
    /// Compare the catalog with GitLab's permissions and route declarations, read from a
    /// facts file (tests/fixtures/gitlab/authz.yml); write the Markdown comparison.
    Gitlab {
        facts: PathBuf,
        /// Where to write it; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { no_migrate } => serve(cli.config.as_deref(), !no_migrate),
        Command::Migrate => migrate(cli.config.as_deref()),
        Command::Openapi => {
            print!("{}", crate::http::openapi::document());
            ExitCode::SUCCESS
        }
        Command::ServiceKey {
            command: ServiceKeyCommand::Create { name, role },
        } => create_service_key(cli.config.as_deref(), &name, role),
        Command::Catalog { dir, command } => match command {
            CatalogCommand::Check => check(dir.as_deref()),
            CatalogCommand::Docs { out, html } => docs(dir.as_deref(), out.as_deref(), html),
            CatalogCommand::Gitlab { facts, out } => gitlab(dir.as_deref(), &facts, out.as_deref()),
            CatalogCommand::Coverage {
                openapi,
                graphql,
                min,
            } => match (openapi, graphql) {
                (Some(spec), _) => coverage(dir.as_deref(), Spec::OpenApi(&spec), min),
                (None, Some(schema)) => coverage(dir.as_deref(), Spec::Graphql(&schema), min),
                // clap requires one of them.
                (None, None) => ExitCode::FAILURE,
            },
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

fn docs(dir: Option<&Path>, out: Option<&Path>, html: bool) -> ExitCode {
    let Some(catalog) = load_or_report(dir) else {
        return ExitCode::FAILURE;
    };
    let page = if html {
        catalog::docs::html(&catalog)
    } else {
        catalog::docs::markdown(&catalog)
    };
    write_page(&page, out)
}

fn gitlab(dir: Option<&Path>, facts: &Path, out: Option<&Path>) -> ExitCode {
    let Some(catalog) = load_or_report(dir) else {
        return ExitCode::FAILURE;
    };
    match catalog::gitlab::read_facts(facts) {
        Ok(facts) => write_page(&catalog::gitlab::compare(&catalog, &facts).markdown(), out),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a page, or writes it to `out`.
fn write_page(page: &str, out: Option<&Path>) -> ExitCode {
    match out {
        None => {
            print!("{page}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, page) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// What `catalog coverage` reads.
enum Spec<'a> {
    OpenApi(&'a Path),
    Graphql(&'a Path),
}

/// Prints the report; passes with nothing missing, or with `min` given, when at least
/// `min` percent (of a GraphQL schema's query fields and mutations) is covered or
/// skipped.
fn coverage(dir: Option<&Path>, spec: Spec<'_>, min: Option<f64>) -> ExitCode {
    let Some(catalog) = load_or_report(dir) else {
        return ExitCode::FAILURE;
    };
    let report = match spec {
        Spec::OpenApi(path) => catalog::coverage::report(&catalog, path).map(|r| {
            (
                r.to_string(),
                r.missing().count(),
                r.percent(),
                "operation(s)",
            )
        }),
        Spec::Graphql(path) => catalog::graphql::report_file(&catalog, path).map(|r| {
            let what = "query field(s) and mutation(s)";
            (r.to_string(), r.missing().count(), r.percent(), what)
        }),
    };
    let (text, missing, percent, what) = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{text}");
    let pass = match min {
        Some(min) => percent >= min,
        None => missing == 0,
    };
    if pass {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {missing} {what} missing, {percent:.1}% covered or skipped{}",
            min.map(|m| format!(", below the minimum of {m}%"))
                .unwrap_or_default()
        );
        ExitCode::FAILURE
    }
}

fn serve(config: Option<&Path>, migrate: bool) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(settings.log_json);
    let Some(catalog) = load_or_report(settings.catalog_dir.as_deref()) else {
        return ExitCode::FAILURE;
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let served = runtime.block_on(async {
        let app = Application::build(&settings, std::sync::Arc::new(catalog), migrate)
            .await
            .map_err(|e| e.to_string())?;
        let address = app.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%address, backend = ?app.service().store().backend(), "patrol is listening");
        app.run_until_stopped().await;
        Ok::<(), String>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(config: Option<&Path>) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let migrated = runtime.block_on(async {
        let store = Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        store.close().await;
        Ok::<_, crate::store::StoreError>(())
    });
    match migrated {
        Ok(()) => {
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn create_service_key(config: Option<&Path>, name: &str, role: KeyRole) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(catalog) = load_or_report(settings.catalog_dir.as_deref()) else {
        return ExitCode::FAILURE;
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let created = runtime.block_on(async {
        let store = Store::connect(&settings.database_url)
            .await
            .map_err(|e| e.to_string())?;
        store.migrate().await.map_err(|e| e.to_string())?;
        let service = Service::start(std::sync::Arc::new(catalog), store.clone(), &settings)
            .await
            .map_err(|e| e.to_string())?;
        let created = service
            .create_key(
                &crate::service::Actor {
                    caller: crate::service::Caller::CommandLine,
                    ip: None,
                },
                name,
                role,
            )
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        created
    });
    match created {
        Ok((_, key)) => {
            // Standard output only, once: the caller keeps it, patrol keeps its hash.
            println!("{key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`), as text or JSON.
fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

//! Configuration: an optional TOML file (`patrol.toml`, or `--config PATH`) with the
//! environment over it (DESIGN.md section 9). Parsed once at start into `Settings`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PATROL_LISTEN`, default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `PATROL_CATALOG_DIR`: a catalog directory instead of the embedded catalog.
    pub catalog_dir: Option<PathBuf>,
    /// `PATROL_LOG_FORMAT=json` for JSON logs.
    pub log_json: bool,
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catalog_dir: None,
            log_json: false,
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}`: {message}")]
    File { path: PathBuf, message: String },
    #[error("`{name}`: {message}")]
    Env { name: &'static str, message: String },
}

/// The file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    catalog_dir: Option<PathBuf>,
    log_format: Option<String>,
    request_timeout_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
}

impl Settings {
    /// Reads `path` (or `patrol.toml` when it exists), then the environment over it.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let default_path = Path::new("patrol.toml");
        let path = path.or_else(|| default_path.exists().then_some(default_path));
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileSettings>(&text).map_err(|e| ConfigError::File {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileSettings::default(),
        };
        Self::from_parts(file, path, |name| std::env::var(name).ok())
    }

    fn from_parts(
        file: FileSettings,
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        let file_error = |message: String| ConfigError::File {
            path: path.map(Path::to_owned).unwrap_or_default(),
            message,
        };
        if let Some(listen) = file.listen {
            settings.listen = listen.parse().map_err(|_| {
                file_error(format!(
                    "`listen` must be an address like `127.0.0.1:8080`, not `{listen}`"
                ))
            })?;
        }
        settings.catalog_dir = file.catalog_dir;
        if let Some(format) = file.log_format {
            settings.log_json = parse_log_format(&format).map_err(file_error)?;
        }
        if let Some(secs) = file.request_timeout_secs {
            settings.request_timeout = Duration::from_secs(secs);
        }
        if let Some(bytes) = file.body_limit_bytes {
            settings.body_limit = bytes;
        }
        if let Some(listen) = env("PATROL_LISTEN") {
            settings.listen = listen.parse().map_err(|_| ConfigError::Env {
                name: "PATROL_LISTEN",
                message: format!("must be an address like `127.0.0.1:8080`, not `{listen}`"),
            })?;
        }
        if let Some(dir) = env("PATROL_CATALOG_DIR") {
            settings.catalog_dir = Some(PathBuf::from(dir));
        }
        if let Some(format) = env("PATROL_LOG_FORMAT") {
            settings.log_json = parse_log_format(&format).map_err(|message| ConfigError::Env {
                name: "PATROL_LOG_FORMAT",
                message,
            })?;
        }
        Ok(settings)
    }
}

fn parse_log_format(format: &str) -> Result<bool, String> {
    match format {
        "json" => Ok(true),
        "text" => Ok(false),
        other => Err(format!(
            "log format must be `text` or `json`, not `{other}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let file: FileSettings =
            toml::from_str("listen = \"0.0.0.0:9000\"\nlog_format = \"json\"").unwrap();
        let settings =
            Settings::from_parts(file, None, env(&[("PATROL_LISTEN", "127.0.0.1:0")])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0".parse().unwrap());
        assert!(settings.log_json);
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = Settings::from_parts(
            FileSettings::default(),
            None,
            env(&[("PATROL_LISTEN", "everywhere")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("PATROL_LISTEN") && err.to_string().contains("`everywhere`")
        );
        assert!(
            toml::from_str::<FileSettings>("lisen = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }
}

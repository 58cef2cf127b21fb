//! Configuration: an optional TOML file (`patrol.toml`, or `--config PATH`) with the
//! environment over it (DESIGN.md section 9). Parsed once at start into `Settings`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::secret::{Argon2Params, Prefixes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PATROL_LISTEN`, default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `PATROL_GRPC_LISTEN`: where Envoy's gRPC ext_authz is served; off unless set.
    pub grpc_listen: Option<SocketAddr>,
    /// `PATROL_CATALOG_DIR`: a catalog directory instead of the embedded catalog.
    pub catalog_dir: Option<PathBuf>,
    /// `PATROL_LOG_FORMAT=json` for JSON logs.
    pub log_json: bool,
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a client may take to send a request's head (request line and headers)
    /// before its connection is closed, counted from the end of its last request.
    pub header_timeout: Duration,
    /// The largest request head accepted (request line and headers), in bytes.
    pub header_limit: usize,
    /// `PATROL_DATABASE_URL`: `sqlite://patrol.db` (created when missing) or `postgres://...`.
    pub database_url: String,
    /// `PATROL_ADMIN_KEY`: a bootstrap admin service key.
    pub admin_key: Option<AdminKey>,
    /// `PATROL_ARGON2`: the cost of hashing new service keys (token secrets are digests).
    pub argon2: Argon2Params,
    /// Token prefixes (`glpat-`, `glcbt-`). Fixed per instance: changing them would
    /// orphan every token minted under the old ones.
    pub prefixes: Prefixes,
    /// How long a lookup id the store does not know is refused without asking again.
    pub unknown_token_ttl: Duration,
    /// After a wrong secret: how long it is remembered with the digest it failed, or, for
    /// an argon2id hash, how long until that lookup id gets argon2 again.
    pub failed_secret_window: Duration,
    /// `PATROL_WEBHOOK_URL`: where notifications go; none, no notifications.
    pub webhook: Option<Webhook>,
    /// `PATROL_TRACK_USAGE` (`true`): record each token's last use and client addresses.
    pub track_usage: bool,
    /// How often recorded uses are written to the store, in one batch.
    pub usage_flush: Duration,
    /// How often the store is searched for tokens expiring or expired.
    pub expiry_scan: Duration,
    /// `PATROL_RATE_LIMIT`: requests per second per caller on the management, admin and
    /// token-holder routes (`off`: none).
    pub rate_limit: Option<RateLimit>,
    /// `PATROL_GATEWAY` (`auto`): the proxy in front of the gateway check, whose way of
    /// sending the original request is the only one read.
    pub gateway: Gateway,
    /// `graphql_max_bytes`, `graphql_max_depth`, `graphql_max_fields`: the largest
    /// GraphQL operation decided; over any of them is a 400.
    pub graphql: crate::catalog::graphql::plan::Limits,
}

/// Which proxy asks the gateway check, and so where the original request is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gateway {
    /// Whichever of the three conventions a request carries; two that disagree are refused.
    #[default]
    Auto,
    /// `X-Original-Method` and `X-Original-URI` (nginx `auth_request`).
    Nginx,
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik ForwardAuth).
    Traefik,
    /// The check request's own method and the path after `/v1/gateway/check` (Envoy
    /// ext_authz).
    Envoy,
}

impl std::str::FromStr for Gateway {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "nginx" => Ok(Self::Nginx),
            "traefik" => Ok(Self::Traefik),
            "envoy" => Ok(Self::Envoy),
            other => Err(format!(
                "must be `auto`, `nginx`, `traefik` or `envoy`, not `{other}`"
            )),
        }
    }
}

/// A caller's sustained rate and the burst it may spend at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// `off`, or requests per second (1 to 1,000,000); the burst is twice that.
    fn parse(text: &str) -> Result<Option<Self>, String> {
        if text == "off" {
            return Ok(None);
        }
        match text.parse::<u32>() {
            Ok(per_second @ 1..=1_000_000) => Ok(Some(Self {
                per_second,
                burst: per_second.saturating_mul(2),
            })),
            _ => Err(format!(
                "must be `off` or requests per second from 1 to 1000000, not `{text}`"
            )),
        }
    }
}

/// The notification webhook and its delivery rhythm.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// An `http` or `https` URL.
    pub url: reqwest::Url,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// The wait after a first failed attempt; it doubles with each failure...
    pub retry_base: Duration,
    /// ...up to this.
    pub retry_max: Duration,
    /// How often the outbox is looked at when nothing woke the worker.
    pub poll: Duration,
}

impl Webhook {
    /// The defaults around `url`.
    pub fn new(url: reqwest::Url) -> Self {
        Self {
            url,
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            poll: Duration::from_secs(1),
        }
    }

    /// Parses an `http(s)://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("must be an http(s) URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("must be an http(s) URL with a host".to_owned());
        }
        Ok(Self::new(url))
    }
}

/// The URL may carry a credential (a path or query token): only its origin is printed.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("timeout", &self.timeout)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .finish_non_exhaustive()
    }
}

/// The bootstrap admin key. Never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(pub String);

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_listen: None,
            catalog_dir: None,
            log_json: false,
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
            // hyper's own default. An idle keep-alive connection is waiting for a head
            // too, so this is also how long one is kept (docs/gateway.md).
            header_timeout: Duration::from_secs(30),
            // nginx's default total (`large_client_header_buffers 4 8k`): a gateway may
            // forward every header of the original request.
            header_limit: 32 * 1024,
            database_url: "sqlite://patrol.db".to_owned(),
            admin_key: None,
            argon2: Argon2Params::default(),
            prefixes: Prefixes::default(),
            unknown_token_ttl: Duration::from_secs(10),
            failed_secret_window: Duration::from_secs(1),
            webhook: None,
            track_usage: true,
            usage_flush: Duration::from_secs(1),
            expiry_scan: Duration::from_secs(3600),
            rate_limit: Some(RateLimit {
                per_second: 100,
                burst: 200,
            }),
            gateway: Gateway::Auto,
            graphql: crate::catalog::graphql::plan::Limits::default(),
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
    grpc_listen: Option<String>,
    catalog_dir: Option<PathBuf>,
    log_format: Option<String>,
    request_timeout_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    header_timeout_secs: Option<u64>,
    header_limit_bytes: Option<usize>,
    database_url: Option<String>,
    argon2: Option<String>,
    personal_token_prefix: Option<String>,
    job_token_prefix: Option<String>,
    webhook_url: Option<String>,
    track_usage: Option<bool>,
    rate_limit: Option<String>,
    gateway: Option<String>,
    graphql_max_bytes: Option<usize>,
    graphql_max_depth: Option<usize>,
    graphql_max_fields: Option<usize>,
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
        if let Some(listen) = file.grpc_listen {
            settings.grpc_listen = Some(listen.parse().map_err(|_| {
                file_error(format!(
                    "`grpc_listen` must be an address like `127.0.0.1:9191`, not `{listen}`"
                ))
            })?);
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
        if let Some(secs) = file.header_timeout_secs {
            if secs == 0 {
                return Err(file_error(
                    "`header_timeout_secs` must be at least 1".into(),
                ));
            }
            settings.header_timeout = Duration::from_secs(secs);
        }
        if let Some(bytes) = file.header_limit_bytes {
            if bytes < 1024 {
                return Err(file_error(
                    "`header_limit_bytes` must be at least 1024".into(),
                ));
            }
            settings.header_limit = bytes;
        }
        if let Some(url) = file.database_url {
            settings.database_url = url;
        }
        if let Some(params) = file.argon2 {
            settings.argon2 = params
                .parse()
                .map_err(|e| file_error(format!("`argon2`: {e}")))?;
        }
        if let Some(prefix) = file.personal_token_prefix {
            settings.prefixes.personal = check_prefix(prefix)
                .map_err(|e| file_error(format!("`personal_token_prefix` {e}")))?;
        }
        if let Some(prefix) = file.job_token_prefix {
            settings.prefixes.job =
                check_prefix(prefix).map_err(|e| file_error(format!("`job_token_prefix` {e}")))?;
        }
        if settings
            .prefixes
            .personal
            .starts_with(&settings.prefixes.job)
            || settings
                .prefixes
                .job
                .starts_with(&settings.prefixes.personal)
        {
            return Err(file_error(
                "`personal_token_prefix` and `job_token_prefix` must differ and neither may start the other".to_owned(),
            ));
        }
        if let Some(url) = file.webhook_url {
            settings.webhook =
                Some(Webhook::parse(&url).map_err(|e| file_error(format!("`webhook_url` {e}")))?);
        }
        if let Some(track) = file.track_usage {
            settings.track_usage = track;
        }
        if let Some(limit) = file.rate_limit {
            settings.rate_limit =
                RateLimit::parse(&limit).map_err(|e| file_error(format!("`rate_limit` {e}")))?;
        }
        if let Some(gateway) = file.gateway {
            settings.gateway = gateway
                .parse()
                .map_err(|e| file_error(format!("`gateway` {e}")))?;
        }
        for (key, value, slot) in [
            (
                "graphql_max_bytes",
                file.graphql_max_bytes,
                &mut settings.graphql.max_bytes,
            ),
            (
                "graphql_max_depth",
                file.graphql_max_depth,
                &mut settings.graphql.max_depth,
            ),
            (
                "graphql_max_fields",
                file.graphql_max_fields,
                &mut settings.graphql.max_fields,
            ),
        ] {
            match value {
                Some(0) => return Err(file_error(format!("`{key}` must be at least 1"))),
                Some(n) => *slot = n,
                None => {}
            }
        }
        if let Some(gateway) = env("PATROL_GATEWAY") {
            settings.gateway = gateway.parse().map_err(|message| ConfigError::Env {
                name: "PATROL_GATEWAY",
                message,
            })?;
        }
        if let Some(limit) = env("PATROL_RATE_LIMIT") {
            settings.rate_limit = RateLimit::parse(&limit).map_err(|message| ConfigError::Env {
                name: "PATROL_RATE_LIMIT",
                message,
            })?;
        }
        if let Some(url) = env("PATROL_WEBHOOK_URL").filter(|u| !u.is_empty()) {
            settings.webhook = Some(Webhook::parse(&url).map_err(|message| ConfigError::Env {
                name: "PATROL_WEBHOOK_URL",
                message,
            })?);
        }
        if let Some(track) = env("PATROL_TRACK_USAGE") {
            settings.track_usage = match track.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ConfigError::Env {
                        name: "PATROL_TRACK_USAGE",
                        message: format!("must be `true` or `false`, not `{other}`"),
                    });
                }
            };
        }
        if let Some(url) = env("PATROL_DATABASE_URL") {
            settings.database_url = url;
        }
        if let Some(key) = env("PATROL_ADMIN_KEY").filter(|k| !k.is_empty()) {
            if key.len() < 20 {
                return Err(ConfigError::Env {
                    name: "PATROL_ADMIN_KEY",
                    message: "must be at least 20 characters long".to_owned(),
                });
            }
            settings.admin_key = Some(AdminKey(key));
        }
        if let Some(params) = env("PATROL_ARGON2") {
            settings.argon2 = params.parse().map_err(|message| ConfigError::Env {
                name: "PATROL_ARGON2",
                message,
            })?;
        }
        if let Some(listen) = env("PATROL_LISTEN") {
            settings.listen = listen.parse().map_err(|_| ConfigError::Env {
                name: "PATROL_LISTEN",
                message: format!("must be an address like `127.0.0.1:8080`, not `{listen}`"),
            })?;
        }
        if let Some(listen) = env("PATROL_GRPC_LISTEN") {
            settings.grpc_listen = Some(listen.parse().map_err(|_| ConfigError::Env {
                name: "PATROL_GRPC_LISTEN",
                message: format!("must be an address like `127.0.0.1:9191`, not `{listen}`"),
            })?);
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

/// A prefix is 1 to 20 lower-case letters, digits, `-` or `_`, ending in `-` or `_`.
fn check_prefix(prefix: String) -> Result<String, String> {
    let ok = (2..=20).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && (prefix.ends_with('-') || prefix.ends_with('_'));
    if ok {
        Ok(prefix)
    } else {
        Err(format!(
            "must be 2 to 20 lower-case letters, digits, `-` or `_`, ending in `-` or `_`, not `{prefix}`"
        ))
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
        assert_eq!(settings.grpc_listen, None, "gRPC is off unless set");
        let file: FileSettings = toml::from_str("grpc_listen = \"0.0.0.0:9191\"").unwrap();
        let settings =
            Settings::from_parts(file, None, env(&[("PATROL_GRPC_LISTEN", "127.0.0.1:9292")]))
                .unwrap();
        assert_eq!(
            settings.grpc_listen,
            Some("127.0.0.1:9292".parse().unwrap())
        );
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
        let err = Settings::from_parts(
            FileSettings::default(),
            None,
            env(&[("PATROL_ARGON2", "m=19456,t=2")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("PATROL_ARGON2"));
        let err = Settings::from_parts(
            FileSettings::default(),
            None,
            env(&[("PATROL_GRPC_LISTEN", "9191")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("PATROL_GRPC_LISTEN"));
        let file: FileSettings = toml::from_str("grpc_listen = \"anywhere\"").unwrap();
        let err = Settings::from_parts(file, None, env(&[])).unwrap_err();
        assert!(err.to_string().contains("`grpc_listen`"));
        let file: FileSettings = toml::from_str("personal_token_prefix = \"Acme\"").unwrap();
        let err = Settings::from_parts(file, None, env(&[])).unwrap_err();
        assert!(err.to_string().contains("`personal_token_prefix`"));
        for url in ["ftp://example.com/hook", "not a url", "http://"] {
            let err = Settings::from_parts(
                FileSettings::default(),
                None,
                env(&[("PATROL_WEBHOOK_URL", url)]),
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("PATROL_WEBHOOK_URL"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn rate_limits_parse_or_turn_off() {
        let limit = |text: &str| {
            Settings::from_parts(
                FileSettings::default(),
                None,
                env(&[("PATROL_RATE_LIMIT", text)]),
            )
            .map(|s| s.rate_limit)
        };
        assert_eq!(
            limit("50").unwrap(),
            Some(RateLimit {
                per_second: 50,
                burst: 100
            })
        );
        assert_eq!(limit("off").unwrap(), None);
        for bad in ["0", "-1", "fast", "2000000"] {
            assert!(
                limit(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("PATROL_RATE_LIMIT")
            );
        }
    }

    #[test]
    fn the_webhook_url_is_printed_as_its_origin_only() {
        let settings = Settings::from_parts(
            FileSettings::default(),
            None,
            env(&[(
                "PATROL_WEBHOOK_URL",
                "https://hooks.example.com/t/s3cr3t?key=k3y",
            )]),
        )
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(printed.contains("https://hooks.example.com"), "{printed}");
        assert!(
            !printed.contains("s3cr3t") && !printed.contains("k3y"),
            "{printed}"
        );
    }

    #[test]
    fn the_admin_key_is_never_printed() {
        let settings = Settings::from_parts(
            FileSettings::default(),
            None,
            env(&[("PATROL_ADMIN_KEY", "a-very-long-bootstrap-key")]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("a-very-long-bootstrap-key"));
        assert_eq!(settings.database_url, "sqlite://patrol.db");
    }
}

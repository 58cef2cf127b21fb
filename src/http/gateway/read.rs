//! How the gateway check reads the request a proxy asks about: the method, the path and
//! the credential GitLab will act on, from the bytes the proxy forwards. Pure: no I/O,
//! no state. Where GitLab could read the same bytes two ways, the request is refused,
//! never guessed (DESIGN.md section 5).
//!
//! The rules follow GitLab's own reading (Puma, Rails, Grape, `auth_finders.rb`):
//! - the original URI is parsed as a URI, origin-form or absolute-form as a whole, and
//!   its query never changes the path ([`RoutePath`] reads the path as GitLab's router);
//! - one header convention per request: the one configured, or in `auto` whichever the
//!   request carries; two that disagree, a header sent twice or unreadable, is a 400;
//! - the method as GitLab runs it: upper case only; a `POST` may become another method
//!   through `X-HTTP-Method-Override` or a `_method` form field, which a proxy cannot
//!   show, so a `POST` whose body may be a form is decided as every method it could be;
//! - the credential in GitLab's order, and any request GitLab might authenticate with
//!   another credential than the one read here is refused with 401.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};

use crate::catalog::{RoutePath, percent_decode};
use crate::config::Gateway;

/// Where Envoy's ext_authz `path_prefix` points: the original path follows it.
pub const PREFIX: &str = "/v1/gateway/check";

/// The original request as GitLab will route and authenticate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Every method GitLab may run the request as; the request line's comes first.
    pub methods: Vec<String>,
    pub path: RoutePath,
    /// The query's parameters, decoded as Rack decodes them (`+` is a space).
    pub params: Vec<(String, String)>,
    /// The end user's address, as the configured proxy reports it.
    pub client_ip: Option<IpAddr>,
}

/// Why the original request cannot be read: a 400 naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub field: &'static str,
    pub message: String,
}

fn unreadable(field: &'static str, message: impl Into<String>) -> Unreadable {
    Unreadable {
        field,
        message: message.into(),
    }
}

/// Why no single credential can be read: a 401 that says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguous {
    #[error("`{0}` is sent more than once")]
    Repeated(&'static str),
    #[error("`{0}` holds more than one value")]
    Joined(&'static str),
    #[error("`{0}` is not visible ASCII")]
    Unreadable(&'static str),
    #[error("the query cannot be read")]
    Query,
    #[error("the parameter `{0}` is not a plain value")]
    NotPlain(&'static str),
    #[error("the request carries two different credentials")]
    Two,
    #[error(
        "an `Authorization: Bearer` header and an `access_token` parameter are never taken together"
    )]
    BearerAndParameter,
    #[error("a job token is used in a personal access token's place")]
    JobTokenAsPersonal,
    #[error("a personal access token is used in a job token's place")]
    PersonalAsJobToken,
}

/// One way a proxy sends the original request.
struct Sent<'a> {
    gateway: Gateway,
    method_field: &'static str,
    target_field: &'static str,
    method: &'a str,
    target: &'a str,
}

/// Reads the original request of a gateway check.
pub fn original(
    gateway: Gateway,
    own_method: &Method,
    own_uri: &Uri,
    headers: &HeaderMap,
) -> Result<Original, Unreadable> {
    let mut sent: Vec<Sent<'_>> = Vec::new();
    for (convention, method_field, target_field) in [
        (Gateway::Nginx, "x-original-method", "x-original-uri"),
        (Gateway::Traefik, "x-forwarded-method", "x-forwarded-uri"),
    ] {
        let method = header_once(headers, method_field)?;
        let target = header_once(headers, target_field)?;
        match (method, target) {
            (None, None) => {}
            (Some(method), Some(target)) => sent.push(Sent {
                gateway: convention,
                method_field,
                target_field,
                method,
                target,
            }),
            (None, Some(_)) => {
                return Err(unreadable(
                    method_field,
                    format!("is required with `{target_field}`"),
                ));
            }
            (Some(_), None) => {
                return Err(unreadable(
                    target_field,
                    format!("is required with `{method_field}`"),
                ));
            }
        }
    }
    let own = own_uri
        .path_and_query()
        .map_or(own_uri.path(), |pq| pq.as_str());
    if let Some(rest) = own
        .strip_prefix(PREFIX)
        .filter(|rest| rest.starts_with('/'))
    {
        sent.push(Sent {
            gateway: Gateway::Envoy,
            method_field: "method",
            target_field: "path",
            method: own_method.as_str(),
            target: rest,
        });
    }
    let chosen = match gateway {
        Gateway::Auto => sent.first(),
        pinned => sent.iter().find(|s| s.gateway == pinned),
    };
    let Some(chosen) = chosen else {
        let (field, message) = match gateway {
            Gateway::Nginx => (
                "x-original-uri",
                "is required: patrol is configured for nginx (`X-Original-Method`, `X-Original-URI`)",
            ),
            Gateway::Traefik => (
                "x-forwarded-uri",
                "is required: patrol is configured for Traefik (`X-Forwarded-Method`, `X-Forwarded-Uri`)",
            ),
            Gateway::Envoy => (
                "path",
                "is required: patrol is configured for Envoy (the original path after /v1/gateway/check)",
            ),
            Gateway::Auto => (
                "x-original-uri",
                "is required: send the original request in `X-Original-URI` (nginx), `X-Forwarded-Uri` (Traefik), or after /v1/gateway/check (Envoy)",
            ),
        };
        return Err(unreadable(field, message));
    };
    if sent
        .iter()
        .any(|s| s.method != chosen.method || s.target != chosen.target)
    {
        return Err(unreadable(
            "gateway",
            "the request carries the original request twice, and the two disagree",
        ));
    }
    let method = chosen.method;
    if method.is_empty() || method.len() > 20 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(unreadable(
            chosen.method_field,
            "must be an HTTP method in upper case",
        ));
    }
    // A fragment is never sent: what follows `#` is not for the server, and whether a
    // parser drops it or keeps it is not a question to leave open.
    if chosen.target.contains('#') {
        return Err(unreadable(
            chosen.target_field,
            "must not hold a fragment (`#`)",
        ));
    }
    let uri: Uri = chosen.target.parse().map_err(|_| {
        unreadable(
            chosen.target_field,
            "is not a request target (an absolute path or URL, visible ASCII, no fragment)",
        )
    })?;
    let absolute = uri.scheme().is_some();
    if absolute && !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(unreadable(
            chosen.target_field,
            "must be an http or https URL",
        ));
    }
    if !absolute && !chosen.target.starts_with('/') {
        return Err(unreadable(
            chosen.target_field,
            "must be an absolute path or URL",
        ));
    }
    let path = RoutePath::parse(uri.path())
        .map_err(|e| unreadable(chosen.target_field, format!("its path {e}")))?;
    let params = parse_query(uri.query().unwrap_or_default())
        .map_err(|message| unreadable(chosen.target_field, message))?;
    Ok(Original {
        methods: methods(method, headers)?,
        path,
        params,
        client_ip: client_ip(chosen.gateway, headers),
    })
}

/// A header that must be sent at most once, as visible ASCII.
fn header_once<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, Unreadable> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(unreadable(name, "is sent more than once"));
    }
    visible(value)
        .map(Some)
        .ok_or_else(|| unreadable(name, "must be visible ASCII"))
}

fn visible(value: &HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()
        .filter(|v| {
            v.bytes()
                .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        })
        .map(|v| v.trim_matches([' ', '\t']))
}

/// The methods GitLab may run the request as. Rack's `MethodOverride` turns a `POST`
/// into the method a `_method` form field names, else `X-HTTP-Method-Override`, when
/// it is one Rack knows. The body is not shown to patrol, so a `POST` whose body may be
/// a form (no content type, or a form type) may become any of them.
fn methods(method: &str, headers: &HeaderMap) -> Result<Vec<String>, Unreadable> {
    const OVERRIDABLE: [&str; 9] = [
        "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK",
    ];
    /// What a `_method` field may turn a `POST` into that a handler answers.
    const FROM_FORM: [&str; 5] = ["POST", "GET", "PUT", "PATCH", "DELETE"];
    const FORMS: [&str; 4] = [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/related",
        "multipart/mixed",
    ];
    let over = header_once(headers, "x-http-method-override")?;
    if method != "POST" {
        return Ok(vec![method.to_owned()]);
    }
    let mut types = headers.get_all("content-type").iter();
    let media = |v: &HeaderValue| {
        v.to_str().ok().map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    };
    let form = match (types.next(), types.next()) {
        (None, _) => true,
        (Some(one), None) => media(one).is_none_or(|m| m.is_empty() || FORMS.contains(&m.as_str())),
        // Two content types: which one Rack reads is not ours to guess.
        (Some(_), Some(_)) => true,
    };
    if form {
        return Ok(FROM_FORM.iter().map(|m| (*m).to_owned()).collect());
    }
    Ok(match over.map(str::to_ascii_uppercase) {
        Some(over) if OVERRIDABLE.contains(&over.as_str()) => vec![over],
        _ => vec![method.to_owned()],
    })
}

/// The end user's address as the configured proxy reports it: nginx in `X-Real-IP`
/// (which the documented configuration sets); Traefik and Envoy at the end of
/// `X-Forwarded-For`, which each appends to (the entries before are the client's word).
fn client_ip(gateway: Gateway, headers: &HeaderMap) -> Option<IpAddr> {
    let last_forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|ip| ip.trim().parse().ok())
    };
    match gateway {
        Gateway::Nginx => visible(headers.get("x-real-ip")?)?.parse().ok(),
        Gateway::Traefik | Gateway::Envoy => last_forwarded(),
        // A request is read by one convention, never by `Auto`.
        Gateway::Auto => None,
    }
}

/// A query string as Rack parses it for GitLab: split on `&` only (GitLab's patch of
/// Rack), spaces after a separator skipped, names and values decoded (`+` is a space).
/// A bad escape, or a name or value that is not UTF-8 or holds a NUL, is refused, as
/// GitLab refuses it.
fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::new();
    for piece in query.split('&') {
        let piece = piece.trim_start_matches(' ');
        if piece.is_empty() {
            continue;
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        params.push((form_decode(name)?, form_decode(value)?));
    }
    Ok(params)
}

fn form_decode(text: &str) -> Result<String, String> {
    let decoded = percent_decode(text, &[], true)
        .ok_or("its query has a `%` that is not followed by two hex digits")?;
    match String::from_utf8(decoded) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err("its query decodes to a NUL or to bytes that are not UTF-8".to_owned()),
    }
}

/// The credential of a request patrol itself serves (the GitLab-compatible API, a
/// token's own endpoints), read by the same rules as a gateway's.
pub fn presented(
    uri: &Uri,
    headers: &HeaderMap,
    job_prefix: &str,
) -> Result<Option<String>, Ambiguous> {
    let params = parse_query(uri.query().unwrap_or_default()).map_err(|_| Ambiguous::Query)?;
    credential(&params, headers, job_prefix).map(|t| t.map(str::to_owned))
}

/// Where GitLab looks for a credential, in its order (`auth_finders.rb`, Doorkeeper's
/// `access_token_methods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Personal access tokens only: the `private_token` parameter, `PRIVATE-TOKEN`.
    Personal,
    /// OAuth places, where GitLab takes a personal access token or a job token:
    /// `access_token`, `Authorization: Bearer`, `bearer_token`.
    Either,
    /// Job tokens only: `job_token`, `token`, `JOB-TOKEN`.
    Job,
}

const PARAMS: [(&str, Place); 5] = [
    ("private_token", Place::Personal),
    ("access_token", Place::Either),
    ("bearer_token", Place::Either),
    ("job_token", Place::Job),
    ("token", Place::Job),
];

/// The credential GitLab will authenticate the request with: `Ok(None)` when there is
/// none patrol can decide on. `job_prefix` tells job tokens from personal ones.
///
/// GitLab takes the first of: the `private_token` parameter, `PRIVATE-TOKEN`, then the
/// OAuth places (`access_token`, `Authorization: Bearer`, `bearer_token`), and only
/// when none holds anything, the job token places (`job_token`, `token`, `JOB-TOKEN`).
/// Refused: a place used twice (GitLab keeps the last parameter and joins headers), a
/// parameter that is a list or a map, two different values where GitLab would look,
/// a deploy token or another `Authorization` scheme beside a token, a bearer header
/// beside an `access_token` parameter (GitLab refuses those), and a token in a place
/// GitLab does not take its kind from. Blank values are absent, as in GitLab.
pub fn credential<'a>(
    params: &'a [(String, String)],
    headers: &'a HeaderMap,
    job_prefix: &str,
) -> Result<Option<&'a str>, Ambiguous> {
    // (place, value, personal-only header) for every credential sent.
    let mut found: Vec<(Place, &str, bool)> = Vec::new();
    let mut foreign = false;
    let mut bearer = false;
    let mut seen: Vec<&'static str> = Vec::new();
    let mut once = |name: &'static str| {
        if seen.contains(&name) {
            return Err(Ambiguous::Repeated(name));
        }
        seen.push(name);
        Ok(())
    };
    for (name, value) in headers {
        // Puma reads `Private_Token` as `PRIVATE-TOKEN`.
        let normal = name.as_str().replace('_', "-");
        let header: &'static str = match normal.as_str() {
            "private-token" => "PRIVATE-TOKEN",
            "job-token" => "JOB-TOKEN",
            "authorization" => "Authorization",
            "deploy-token" => "Deploy-Token",
            _ => continue,
        };
        once(header)?;
        // Puma skips leading spaces and trims the end; a comma is two values joined.
        let value = value
            .to_str()
            .map_err(|_| Ambiguous::Unreadable(header))?
            .trim_start_matches(' ')
            .trim_end();
        if value.contains(',') {
            return Err(Ambiguous::Joined(header));
        }
        match header {
            "PRIVATE-TOKEN" => found.push((Place::Personal, value, true)),
            "JOB-TOKEN" => found.push((Place::Job, value, false)),
            "Authorization" => {
                // Doorkeeper: `Bearer ` (any case, one space), the rest as it is.
                let scheme = value.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer "));
                match (scheme, value.get(7..)) {
                    (Some(_), Some(token)) => {
                        bearer = true;
                        found.push((Place::Either, token, false));
                    }
                    _ => foreign |= !value.is_empty(),
                }
            }
            _ => foreign |= !value.is_empty(),
        }
    }
    let mut access_token = false;
    for (name, value) in params {
        // Rack's nesting: `[private_token]` is `private_token`, `private_token[]` a list.
        let base = name.trim_start_matches(['[', ']']);
        let end = base.find(['[', ']']).unwrap_or(base.len());
        let (base, rest) = base.split_at(end);
        let Some(&(param, place)) = PARAMS.iter().find(|(p, _)| *p == base) else {
            continue;
        };
        once(param)?;
        if !rest.bytes().all(|b| b == b']') {
            return Err(Ambiguous::NotPlain(param));
        }
        access_token |= param == "access_token";
        found.push((place, value.as_str(), param == "private_token"));
    }
    if bearer && access_token {
        return Err(Ambiguous::BearerAndParameter);
    }
    let present = |v: &&str| !v.trim().is_empty();
    let values = |wanted: &[Place]| {
        found
            .iter()
            .filter(|(place, value, _)| wanted.contains(place) && present(value))
            .collect::<Vec<_>>()
    };
    let single = |candidates: Vec<&(Place, &'a str, bool)>| -> Result<Option<&'a str>, Ambiguous> {
        match candidates.first() {
            Some(first) if candidates.iter().all(|c| c.1 == first.1) => Ok(Some(first.1)),
            Some(_) => Err(Ambiguous::Two),
            None => Ok(None),
        }
    };
    let personal = single(values(&[Place::Personal, Place::Either]))?;
    let jobs = values(&[Place::Job]);
    // The job token places matter only when no personal place holds anything; but a
    // job token there that differs from the one taken is still a second credential.
    let chosen = match personal {
        Some(chosen) => {
            if jobs
                .iter()
                .any(|(_, v, _)| *v != chosen && v.starts_with(job_prefix))
            {
                return Err(Ambiguous::Two);
            }
            let in_personal_place = found
                .iter()
                .any(|(_, v, personal_only)| *personal_only && *v == chosen);
            if in_personal_place && chosen.starts_with(job_prefix) {
                return Err(Ambiguous::JobTokenAsPersonal);
            }
            Some(chosen)
        }
        None => match single(jobs)? {
            Some(chosen) if !chosen.starts_with(job_prefix) => {
                return Err(Ambiguous::PersonalAsJobToken);
            }
            chosen => chosen,
        },
    };
    if foreign && chosen.is_some() {
        return Err(Ambiguous::Two);
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header names and raw values.
    type Pairs<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(pairs: Pairs<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn read(
        gateway: Gateway,
        method: &str,
        own: &str,
        pairs: &[(&str, &[u8])],
    ) -> Result<Original, Unreadable> {
        original(
            gateway,
            &Method::from_bytes(method.as_bytes()).unwrap(),
            &own.parse().unwrap(),
            &headers(pairs),
        )
    }

    fn nginx(method: &str, uri: &str) -> Result<Original, Unreadable> {
        read(
            Gateway::Auto,
            "GET",
            PREFIX,
            &[
                ("x-original-method", method.as_bytes()),
                ("x-original-uri", uri.as_bytes()),
            ],
        )
    }

    fn path_of(read: Result<Original, Unreadable>) -> Result<String, &'static str> {
        read.map(|o| o.path.to_string()).map_err(|e| e.field)
    }

    /// Class 1: the original URI is parsed as a URI, and its query never moves the path.
    #[test]
    fn the_original_uri_is_parsed_as_a_uri() {
        let hostile = "/api/v4/projects/42?x=://h/api/v4/runners";
        let cases: &[(&str, Result<&str, &str>)] = &[
            (hostile, Ok("/api/v4/projects/42")),
            (
                "/api/v4/projects/42?a=/api/v4/runners#",
                Err("x-original-uri"),
            ),
            ("https://gitlab.example/api/v4/x?y=1", Ok("/api/v4/x")),
            ("http://gitlab.example", Ok("/")),
            (
                "http://h:1/api/v4/projects/42?x=http://evil/api/v4/runners",
                Ok("/api/v4/projects/42"),
            ),
            ("ftp://h/api/v4/runners", Err("x-original-uri")),
            ("api/v4/runners", Err("x-original-uri")),
            ("*", Err("x-original-uri")),
            ("gitlab.example:443", Err("x-original-uri")),
            ("/api/v4/a b", Err("x-original-uri")),
            ("/api/v4/projects/42#/../runners", Err("x-original-uri")),
            ("/api/v4/projects/42/../../runners", Err("x-original-uri")),
            ("/api/v4/projects/%2", Err("x-original-uri")),
            (
                "/api/v4/projects/42?private_token=%zz",
                Err("x-original-uri"),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(
                path_of(nginx("GET", uri)),
                expected.map(str::to_owned),
                "{uri}"
            );
        }
        // The same through Traefik's headers and through Envoy's path prefix.
        let traefik = read(
            Gateway::Auto,
            "GET",
            PREFIX,
            &[
                ("x-forwarded-method", b"DELETE"),
                ("x-forwarded-uri", hostile.as_bytes()),
            ],
        );
        assert_eq!(path_of(traefik).as_deref(), Ok("/api/v4/projects/42"));
        let envoy = read(Gateway::Auto, "DELETE", &format!("{PREFIX}{hostile}"), &[]);
        let envoy = envoy.unwrap();
        assert_eq!(
            (envoy.methods[0].as_str(), envoy.path.as_str()),
            ("DELETE", "/api/v4/projects/42")
        );
        // A raw non-ASCII byte is unreadable, not absent.
        assert_eq!(
            path_of(read(
                Gateway::Auto,
                "GET",
                PREFIX,
                &[
                    ("x-original-method", b"GET"),
                    ("x-original-uri", b"/api/v4/caf\xc3\xa9")
                ]
            )),
            Err("x-original-uri")
        );
    }

    /// Class 2: one convention per request, never a fallback from one to another.
    #[test]
    fn one_convention_per_request() {
        let runners: &[u8] = b"/api/v4/runners";
        let project: &[u8] = b"/api/v4/projects/42";
        let cases: &[(Gateway, &str, Pairs<'_>, Result<&str, &str>)] = &[
            // An unreadable X-Original-URI is a 400, not a reason to read Traefik's.
            (
                Gateway::Auto,
                PREFIX,
                &[
                    ("x-original-method", b"DELETE"),
                    ("x-original-uri", b"/api/v4/projects/42\xff"),
                    ("x-forwarded-method", b"DELETE"),
                    ("x-forwarded-uri", runners),
                ],
                Err("x-original-uri"),
            ),
            // Two conventions that disagree.
            (
                Gateway::Auto,
                PREFIX,
                &[
                    ("x-original-method", b"DELETE"),
                    ("x-original-uri", project),
                    ("x-forwarded-method", b"DELETE"),
                    ("x-forwarded-uri", runners),
                ],
                Err("gateway"),
            ),
            (
                Gateway::Auto,
                "/v1/gateway/check/api/v4/projects/42",
                &[
                    ("x-original-method", b"DELETE"),
                    ("x-original-uri", runners),
                ],
                Err("gateway"),
            ),
            // Under Traefik, headers the client sends never outrank Traefik's own.
            (
                Gateway::Traefik,
                PREFIX,
                &[
                    ("x-original-method", b"GET"),
                    ("x-original-uri", runners),
                    ("x-forwarded-method", b"DELETE"),
                    ("x-forwarded-uri", project),
                ],
                Err("gateway"),
            ),
            (
                Gateway::Traefik,
                PREFIX,
                &[
                    ("x-forwarded-method", b"DELETE"),
                    ("x-forwarded-uri", project),
                ],
                Ok("/api/v4/projects/42"),
            ),
            // A pinned convention must be there; another one does not stand in for it.
            (
                Gateway::Nginx,
                PREFIX,
                &[("x-forwarded-method", b"GET"), ("x-forwarded-uri", runners)],
                Err("x-original-uri"),
            ),
            (
                Gateway::Envoy,
                PREFIX,
                &[("x-original-method", b"GET"), ("x-original-uri", runners)],
                Err("path"),
            ),
            // Both headers of a convention, each once.
            (
                Gateway::Auto,
                PREFIX,
                &[("x-original-uri", project)],
                Err("x-original-method"),
            ),
            (
                Gateway::Auto,
                PREFIX,
                &[("x-original-method", b"GET")],
                Err("x-original-uri"),
            ),
            (
                Gateway::Auto,
                PREFIX,
                &[
                    ("x-original-method", b"GET"),
                    ("x-original-uri", project),
                    ("x-original-uri", runners),
                ],
                Err("x-original-uri"),
            ),
            (Gateway::Auto, PREFIX, &[], Err("x-original-uri")),
            // Conventions that agree are one request.
            (
                Gateway::Auto,
                PREFIX,
                &[
                    ("x-original-method", b"GET"),
                    ("x-original-uri", project),
                    ("x-forwarded-method", b"GET"),
                    ("x-forwarded-uri", project),
                ],
                Ok("/api/v4/projects/42"),
            ),
        ];
        for (gateway, own, pairs, expected) in cases {
            assert_eq!(
                path_of(read(*gateway, "GET", own, pairs)),
                expected.map(str::to_owned),
                "{gateway:?} {own} {pairs:?}"
            );
        }
    }

    #[test]
    fn the_client_address_is_the_one_the_proxy_saw() {
        let ip = |gateway: Gateway, own: &str, pairs: &[(&str, &[u8])]| {
            read(gateway, "GET", own, pairs)
                .unwrap()
                .client_ip
                .map(|ip| ip.to_string())
        };
        let nginx: &[(&str, &[u8])] = &[
            ("x-original-method", b"GET"),
            ("x-original-uri", b"/api/v4/user"),
            ("x-real-ip", b"198.51.100.1"),
            ("x-forwarded-for", b"203.0.113.9"),
        ];
        assert_eq!(
            ip(Gateway::Nginx, PREFIX, nginx).as_deref(),
            Some("198.51.100.1")
        );
        // Envoy and Traefik append the address they saw; what comes before is the client's.
        let envoy: &[(&str, &[u8])] = &[
            ("x-forwarded-for", b"203.0.113.9, 10.0.0.1"),
            ("x-forwarded-for", b"192.0.2.7"),
        ];
        assert_eq!(
            ip(Gateway::Envoy, "/v1/gateway/check/api/v4/user", envoy).as_deref(),
            Some("192.0.2.7")
        );
        let traefik: &[(&str, &[u8])] = &[
            ("x-forwarded-method", b"GET"),
            ("x-forwarded-uri", b"/api/v4/user"),
            ("x-real-ip", b"203.0.113.9"),
            ("x-forwarded-for", b"192.0.2.8"),
        ];
        assert_eq!(
            ip(Gateway::Traefik, PREFIX, traefik).as_deref(),
            Some("192.0.2.8")
        );
    }

    #[test]
    fn methods_are_read_as_gitlab_runs_them() {
        let methods = |method: &str, pairs: &[(&str, &[u8])]| {
            let mut all: Vec<(&str, &[u8])> = vec![
                ("x-original-method", method.as_bytes()),
                ("x-original-uri", b"/api/v4/projects/42"),
            ];
            all.extend_from_slice(pairs);
            read(Gateway::Nginx, "GET", PREFIX, &all)
                .map(|o| o.methods.join(" "))
                .map_err(|e| e.field)
        };
        let every = "POST GET PUT PATCH DELETE";
        let json: (&str, &[u8]) = ("content-type", b"application/json; charset=utf-8");
        let cases: &[(&str, Pairs<'_>, Result<&str, &str>)] = &[
            ("GET", &[], Ok("GET")),
            ("HEAD", &[], Ok("HEAD")),
            ("delete", &[], Err("x-original-method")),
            ("Get", &[], Err("x-original-method")),
            ("G-T", &[], Err("x-original-method")),
            ("POST", &[json], Ok("POST")),
            (
                "POST",
                &[json, ("x-http-method-override", b"delete")],
                Ok("DELETE"),
            ),
            (
                "POST",
                &[json, ("x-http-method-override", b"FETCH")],
                Ok("POST"),
            ),
            ("GET", &[("x-http-method-override", b"DELETE")], Ok("GET")),
            // A body patrol cannot see may carry `_method`.
            ("POST", &[], Ok(every)),
            (
                "POST",
                &[("content-type", b"application/x-www-form-urlencoded")],
                Ok(every),
            ),
            (
                "POST",
                &[("content-type", b"Multipart/Form-Data; boundary=x")],
                Ok(every),
            ),
            ("POST", &[json, ("content-type", b"text/plain")], Ok(every)),
            (
                "POST",
                &[
                    json,
                    ("x-http-method-override", b"PUT"),
                    ("x-http-method-override", b"DELETE"),
                ],
                Err("x-http-method-override"),
            ),
        ];
        for (method, pairs, expected) in cases {
            assert_eq!(
                methods(method, pairs),
                expected.map(str::to_owned),
                "{method} {pairs:?}"
            );
        }
    }

    /// Class 3: the credential GitLab uses, and 401 when GitLab might use another.
    #[test]
    fn the_credential_is_the_one_gitlab_uses() {
        let credential = |query: &str, pairs: &[(&str, &[u8])]| {
            let params = parse_query(query).unwrap();
            super::credential(&params, &headers(pairs), "glcbt-").map(|t| t.map(str::to_owned))
        };
        use Ambiguous::*;
        let ok = |t: &str| Ok(Some(t.to_owned()));
        type Case<'a> = (
            &'a str,
            &'a str,
            Vec<(&'a str, &'a [u8])>,
            Result<Option<String>, Ambiguous>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "header",
                "",
                vec![("private-token", b"glpat-a")],
                ok("glpat-a"),
            ),
            ("parameter", "private_token=glpat-a", vec![], ok("glpat-a")),
            (
                "bearer",
                "",
                vec![("authorization", b"Bearer glpat-a")],
                ok("glpat-a"),
            ),
            (
                "bearer in any case",
                "",
                vec![("authorization", b"bEaReR glpat-a")],
                ok("glpat-a"),
            ),
            // Doorkeeper keeps what follows `Bearer `: a second space is part of the token.
            (
                "bearer, two spaces",
                "",
                vec![("authorization", b"Bearer  glpat-a")],
                ok(" glpat-a"),
            ),
            (
                "access_token",
                "access_token=glpat-a",
                vec![],
                ok("glpat-a"),
            ),
            (
                "bearer_token",
                "bearer_token=glpat-a",
                vec![],
                ok("glpat-a"),
            ),
            (
                "job token header",
                "",
                vec![("job-token", b"glcbt-j")],
                ok("glcbt-j"),
            ),
            (
                "job token parameter",
                "job_token=glcbt-j",
                vec![],
                ok("glcbt-j"),
            ),
            (
                "job token as bearer",
                "",
                vec![("authorization", b"Bearer glcbt-j")],
                ok("glcbt-j"),
            ),
            (
                "the same token twice",
                "private_token=glpat-a",
                vec![("private-token", b"glpat-a")],
                ok("glpat-a"),
            ),
            // GitLab takes the parameter first; patrol took the header: never again.
            (
                "narrow parameter, wide header",
                "private_token=glpat-narrow",
                vec![("private-token", b"glpat-wide")],
                Err(Two),
            ),
            (
                "header and bearer",
                "",
                vec![
                    ("private-token", b"glpat-a"),
                    ("authorization", b"Bearer glpat-b"),
                ],
                Err(Two),
            ),
            (
                "parameter twice",
                "private_token=glpat-a&private_token=glpat-b",
                vec![],
                Err(Repeated("private_token")),
            ),
            (
                "parameter twice, the same",
                "private_token=glpat-a&private_token=glpat-a",
                vec![],
                Err(Repeated("private_token")),
            ),
            (
                "encoded name",
                "private%5Ftoken=glpat-a&private_token=glpat-b",
                vec![],
                Err(Repeated("private_token")),
            ),
            (
                "bracketed name",
                "[private_token]=glpat-narrow",
                vec![("private-token", b"glpat-wide")],
                Err(Two),
            ),
            (
                "a list",
                "private_token[]=glpat-a",
                vec![],
                Err(NotPlain("private_token")),
            ),
            (
                "a map",
                "private_token[x]=glpat-a",
                vec![],
                Err(NotPlain("private_token")),
            ),
            (
                "comma-joined header",
                "",
                vec![("private-token", b"glpat-a, glpat-b")],
                Err(Joined("PRIVATE-TOKEN")),
            ),
            (
                "header twice",
                "",
                vec![("private-token", b"glpat-a"), ("private-token", b"glpat-a")],
                Err(Repeated("PRIVATE-TOKEN")),
            ),
            (
                "underscore header",
                "",
                vec![("private-token", b"glpat-a"), ("private_token", b"glpat-b")],
                Err(Repeated("PRIVATE-TOKEN")),
            ),
            (
                "underscore header alone",
                "",
                vec![("private_token", b"glpat-a")],
                ok("glpat-a"),
            ),
            (
                "bearer and access_token",
                "access_token=glpat-a",
                vec![("authorization", b"Bearer glpat-a")],
                Err(BearerAndParameter),
            ),
            (
                "basic beside a token",
                "",
                vec![
                    ("authorization", b"Basic dTpw"),
                    ("private-token", b"glpat-a"),
                ],
                Err(Two),
            ),
            (
                "deploy token beside a token",
                "",
                vec![("deploy-token", b"gldt-x"), ("private-token", b"glpat-a")],
                Err(Two),
            ),
            (
                "basic alone",
                "",
                vec![("authorization", b"Basic dTpw")],
                Ok(None),
            ),
            ("nothing", "x=1", vec![], Ok(None)),
            // GitLab's `.presence`: a blank value is no value.
            (
                "blank parameter",
                "private_token=+&x",
                vec![("private-token", b"glpat-a")],
                ok("glpat-a"),
            ),
            (
                "job token in a personal place",
                "",
                vec![("private-token", b"glcbt-j")],
                Err(JobTokenAsPersonal),
            ),
            (
                "personal token in a job place",
                "",
                vec![("job-token", b"glpat-a")],
                Err(PersonalAsJobToken),
            ),
            // `token` is a job token place before JOB-TOKEN, and nothing beside a PAT.
            (
                "token parameter first",
                "token=glcbt-other",
                vec![("job-token", b"glcbt-j")],
                Err(Two),
            ),
            (
                "a job token beside a personal one",
                "",
                vec![("job-token", b"glcbt-j"), ("private-token", b"glpat-a")],
                Err(Two),
            ),
            (
                "a webhook's token beside a PAT",
                "token=s3cret",
                vec![("private-token", b"glpat-a")],
                ok("glpat-a"),
            ),
        ];
        for (label, query, pairs, expected) in cases {
            assert_eq!(credential(query, &pairs), expected, "{label}");
        }
    }
}

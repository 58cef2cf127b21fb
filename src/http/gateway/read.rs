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

/// A parameter's name as Rack nests it: `[private_token]` is `private_token`, and
/// `private_token[]` is `private_token` with `[]` after it (a list).
pub fn rack_name(name: &str) -> (&str, &str) {
    let base = name.trim_start_matches(['[', ']']);
    let end = base.find(['[', ']']).unwrap_or(base.len());
    base.split_at(end)
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
        let (base, rest) = rack_name(name);
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
mod tests;

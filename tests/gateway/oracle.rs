//! GitLab's reading of a request, written apart from patrol's (`src/http/gateway/read.rs`
//! and `src/catalog/routes.rs`) from the behaviour of Puma, Rails, Grape, Mustermann,
//! Rack and GitLab's `auth_finders.rb`: the method GitLab runs, the route its router
//! picks, the namespace it loads, and the token it authenticates with. Nothing here
//! calls patrol's reading; the catalog is used as data only (its routes and their
//! boundary parameters).
//!
//! What GitLab would not act on at all (Puma's 400, Grape's 404, a 401 from a token it
//! cannot find) is `Refuses`: whatever patrol decided, the upstream does nothing.

use patrol::catalog::{Catalog, RouteKind};
use patrol::domain::BoundaryKind;

/// The world GitLab holds: namespaces by id and path, users, tokens by value.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub projects: Vec<(u64, String)>,
    pub groups: Vec<(u64, String)>,
    pub users: Vec<(u64, String)>,
    /// (plaintext, token id, user id, job token?)
    pub tokens: Vec<(String, u64, u64, bool)>,
}

/// A request as it reached GitLab.
#[derive(Debug, Clone)]
pub struct Wire<'a> {
    pub method: &'a str,
    pub target: &'a [u8],
    pub headers: &'a [(String, Vec<u8>)],
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Acts {
        /// `GET /api/v4/projects/:id`, as the catalog writes it.
        route: String,
        /// `project 42`; `None` for a route that needs no permission.
        boundary: Option<String>,
        /// The token id GitLab authenticates with; `None` for a route that needs none.
        token: Option<u64>,
    },
    Refuses(String),
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Reading> {
    Err(Reading::Refuses(why.into()))
}

pub fn gitlab_reads(wire: &Wire<'_>, catalog: &Catalog, world: &World) -> Reading {
    match read(wire, catalog, world) {
        Ok(reading) | Err(reading) => reading,
    }
}

fn read(wire: &Wire<'_>, catalog: &Catalog, world: &World) -> Result<Reading, Reading> {
    // Puma: a method of upper-case letters, digits and `$-_.`, at most 20.
    let method = wire.method;
    let method_ok = (1..=20).contains(&method.len())
        && method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"$-_.".contains(&b));
    if !method_ok {
        return refuse("puma: not a method");
    }
    let target = std::str::from_utf8(wire.target).or_else(|_| refuse("not UTF-8"))?;
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return refuse("puma: a control character or space in the target");
    }
    // Puma drops the fragment; an absolute-form target keeps its path.
    let target = target.split('#').next().unwrap_or_default();
    let target = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            Some(i) => {
                return route_of(method, &format!("/{}", &rest[i..]), wire, catalog, world);
            }
            None => "/",
        },
        None if target.starts_with('/') => target,
        None => return refuse("not a path"),
    };
    route_of(method, target, wire, catalog, world)
}

fn route_of(
    method: &str,
    target: &str,
    wire: &Wire<'_>,
    catalog: &Catalog,
    world: &World,
) -> Result<Reading, Reading> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // HandleMalformedStrings: the decoded path must be UTF-8 without NUL.
    let decoded = unescape(path).ok_or_else(|| Reading::Refuses("400: bad escape".into()))?;
    if decoded.contains('\0') {
        return refuse("400: NUL in the path");
    }
    let query_params = rack_query(query)?;
    let headers = puma_env(wire.headers);
    let env = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let content_type = env("CONTENT_TYPE").map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let form_body = match content_type.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            rack_query(&String::from_utf8_lossy(wire.body))?
        }
        None if method == "POST" => rack_query(&String::from_utf8_lossy(wire.body))?,
        _ => Vec::new(),
    };

    // Rack::MethodOverride: a POST becomes what `_method` (form body) or the header says.
    let mut method = method.to_owned();
    if method == "POST" {
        let over = last(&form_body, "_method")
            .map(str::to_owned)
            .or_else(|| env("HTTP_X_HTTP_METHOD_OVERRIDE").map(str::to_owned));
        if let Some(over) = over.map(|m| m.to_ascii_uppercase())
            && [
                "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK",
            ]
            .contains(&over.as_str())
        {
            method = over;
        }
    }

    // Rails and Grape: squeeze `/`, drop trailing `/`; segments still encoded.
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let entry = pick_route(catalog, &method, &segments)
        .or_else(|| {
            (method == "HEAD")
                .then(|| pick_route(catalog, "GET", &segments))
                .flatten()
        })
        .ok_or_else(|| Reading::Refuses(format!("404: no route for {method}")))?;
    let (route, values) = entry;
    let name = format!("{} {}", route.method, route.path);
    let boundaries = match &route.kind {
        RouteKind::Skipped { reason } if *reason == "deprecated" => return refuse("404: removed"),
        RouteKind::Skipped { .. } => {
            return Ok(Reading::Acts {
                route: name,
                boundary: None,
                token: None,
            });
        }
        RouteKind::Protected { boundaries, .. } => boundaries,
    };

    // The token (`api_guard.rb`, `auth_finders.rb`) on the auth view: query over body.
    let param = |key: &str| last(&query_params, key).or_else(|| last(&form_body, key));
    let authorization = env("HTTP_AUTHORIZATION");
    let bearer = authorization.and_then(|a| {
        let scheme = a.get(..7)?;
        scheme.eq_ignore_ascii_case("bearer ").then(|| &a[7..])
    });
    if bearer.is_some() && param("access_token").is_some() {
        return refuse("400: bearer header and access_token parameter");
    }
    let oauth = present(param("access_token"))
        .or_else(|| present(bearer))
        .or_else(|| present(param("bearer_token")));
    let token_of = |value: &str| world.tokens.iter().find(|t| t.0 == value);
    let job_allowed = route_allows_job_tokens(catalog, route);
    let mut token = None;
    if job_allowed && let Some(t) = oauth.and_then(token_of).filter(|t| t.3) {
        token = Some(t);
    }
    if token.is_none() {
        let personal = present(param("private_token"))
            .or_else(|| present(env("HTTP_PRIVATE_TOKEN")))
            .or(oauth);
        if let Some(value) = personal {
            match token_of(value).filter(|t| !t.3) {
                Some(t) => token = Some(t),
                None => return refuse("401: no such personal access token"),
            }
        }
    }
    if token.is_none() && job_allowed {
        let job = present(param("job_token"))
            .or_else(|| present(param("token")))
            .or_else(|| present(env("HTTP_JOB_TOKEN")));
        if let Some(value) = job {
            match token_of(value).filter(|t| t.3) {
                Some(t) => token = Some(t),
                None => return refuse("401: no such running job"),
            }
        }
    }
    let Some(&(_, token_id, user_id, _)) = token else {
        return refuse("401: no credential");
    };

    // The namespace (`find_project`, `find_group`); an alternative user boundary is the
    // token user's own namespace, named by its username.
    let mut boundary = None;
    for (i, b) in boundaries.iter().enumerate() {
        let value = b
            .param
            .as_deref()
            .and_then(|p| values.iter().find(|(n, _)| n == p).map(|(_, v)| v.clone()));
        boundary = match (b.kind, value) {
            (BoundaryKind::User, _) if i > 0 => {
                let named = boundaries[0]
                    .param
                    .as_deref()
                    .and_then(|p| values.iter().find(|(n, _)| n == p).map(|(_, v)| v.clone()));
                let me = world.users.iter().find(|u| u.0 == user_id);
                match (named, me) {
                    (None, _) => Some("user".to_owned()),
                    (Some(v), Some(me)) if v.eq_ignore_ascii_case(&me.1) => Some("user".to_owned()),
                    _ => None,
                }
            }
            (BoundaryKind::User, _) => Some("user".to_owned()),
            (BoundaryKind::Instance, _) => Some("instance".to_owned()),
            (kind, Some(value)) => find(world, kind, &value),
            (_, None) => None,
        };
        if boundary.is_some() {
            break;
        }
    }
    let Some(boundary) = boundary else {
        return refuse("404: namespace not found");
    };
    Ok(Reading::Acts {
        route: name,
        boundary: Some(boundary),
        token: Some(token_id),
    })
}

/// Rails' `.presence`: a blank value is no value.
fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.trim().is_empty())
}

/// GitLab takes job tokens on routes whose permission has a job token policy.
fn route_allows_job_tokens(catalog: &Catalog, route: &patrol::catalog::RouteEntry) -> bool {
    match &route.kind {
        RouteKind::Protected { permission, .. } => {
            catalog.permission(*permission).job_token_policy.is_some()
        }
        RouteKind::Skipped { .. } => false,
    }
}

/// `find_project` / `find_group`: numeric when any line is `-?\d+` (Ruby's `^$`), then
/// the id is `to_i` of the whole value; else a full path, found whatever its case
/// (projects only by a path with a `/`).
fn find(world: &World, kind: BoundaryKind, value: &str) -> Option<String> {
    let numeric = value.lines().any(|line| {
        let digits = line.strip_prefix('-').unwrap_or(line);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let (list, name) = match kind {
        BoundaryKind::Project => (&world.projects, "project"),
        _ => (&world.groups, "group"),
    };
    let found = if numeric {
        let id = ruby_to_i(value)?;
        list.iter().find(|(i, _)| *i == id)
    } else if kind == BoundaryKind::Project && !value.contains('/') {
        None
    } else {
        list.iter().find(|(_, p)| p.eq_ignore_ascii_case(value))
    };
    found.map(|(id, _)| format!("{name} {id}"))
}

/// Ruby's `String#to_i` for non-negative results: leading whitespace, an optional `+`,
/// digits with single `_` between them.
fn ruby_to_i(value: &str) -> Option<u64> {
    let text = value.trim_start();
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.starts_with('-') {
        return None;
    }
    let mut digits = String::new();
    let mut last_underscore = false;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                last_underscore = false;
            }
            '_' if !digits.is_empty() && !last_underscore => last_underscore = true,
            _ => break,
        }
    }
    digits.parse().ok()
}

/// The route Grape picks: among the routes of the method whose pattern matches, the one
/// with literal segments where the others have parameters (GitLab defines its literal
/// routes first, as its API needs). The values are decoded once, as Mustermann does.
fn pick_route<'c>(
    catalog: &'c Catalog,
    method: &str,
    segments: &[&str],
) -> Option<(&'c patrol::catalog::RouteEntry, Vec<(String, String)>)> {
    type Candidate<'c> = (
        &'c patrol::catalog::RouteEntry,
        Vec<(String, String)>,
        Vec<bool>,
    );
    let mut best: Option<Candidate<'c>> = None;
    for entry in catalog
        .routes
        .entries()
        .iter()
        .filter(|e| e.method == method)
    {
        let Some(values) = pattern_match(&entry.path, segments) else {
            continue;
        };
        let shape: Vec<bool> = entry
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| !s.starts_with(':'))
            .collect();
        let better = match &best {
            None => true,
            Some((_, _, other)) => shape > *other,
        };
        if better {
            best = Some((entry, values, shape));
        }
    }
    best.map(|(entry, values, _)| (entry, values))
}

/// GitLab's requirement `[^/]+` parameters: their value keeps a format suffix.
const ANY_BUT_SLASH: [&str; 5] = ["id", "user_id", "file_path", "sha", "ref"];

fn pattern_match(template: &str, segments: &[&str]) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    if parts.len() != segments.len() || parts.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    let last = parts.len() - 1;
    for (i, (part, raw)) in parts.iter().zip(segments).enumerate() {
        // The version segments are compared as written (Grape's path versioner).
        if i < 2 {
            if part != raw {
                return None;
            }
            continue;
        }
        let raw: &str = raw;
        if let Some(name) = part.strip_prefix(':') {
            let value = if ANY_BUT_SLASH.contains(&name) {
                raw
            } else {
                // A default capture: no raw `.`, `?`, `#`, but one optional format.
                let bare = if i == last {
                    strip_format(raw).unwrap_or(raw)
                } else {
                    raw
                };
                if bare.is_empty() || bare.contains(['.', '?', '#']) {
                    return None;
                }
                bare
            };
            values.push((name.to_owned(), unescape(value)?));
        } else {
            let same = |s: &str| unescape(s).is_some_and(|d| d == *part);
            if !(same(raw) || (i == last && strip_format(raw).is_some_and(same))) {
                return None;
            }
        }
    }
    Some(values)
}

/// A last segment without its `(.|%2e|%2E)<format>` suffix (`[^/?#.]+`).
fn strip_format(raw: &str) -> Option<&str> {
    for sep in [".", "%2e", "%2E"] {
        if let Some(i) = raw.rfind(sep) {
            let format = &raw[i + sep.len()..];
            if !format.is_empty() && !format.contains(['/', '?', '#', '.']) && i > 0 {
                return Some(&raw[..i]);
            }
        }
    }
    None
}

/// `%XX` decoded (RFC 2396, `+` stays `+`); `None` for a bad escape or bytes that are
/// not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Rack's query parser as GitLab patches it: `&` only, spaces after it skipped, `+` a
/// space; a list or map form keeps its brackets in the name, so it never reads as a
/// plain parameter.
fn rack_query(query: &str) -> Result<Vec<(String, String)>, Reading> {
    let mut out = Vec::new();
    for piece in query.split('&') {
        let piece = piece.trim_start_matches(' ');
        if piece.is_empty() {
            continue;
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let decode = |s: &str| unescape(&s.replace('+', " "));
        let (Some(name), Some(value)) = (decode(name), decode(value)) else {
            return refuse("400: bad escape in the query");
        };
        if value.contains('\0') || name.contains('\0') {
            return refuse("400: NUL in the query");
        }
        // `[private_token]` and `private_token]` are `private_token` to Rack.
        let base = name.trim_start_matches(['[', ']']);
        let end = base.find(['[', ']']).unwrap_or(base.len());
        let name = if base[end..].bytes().all(|b| b == b']') {
            base[..end].to_owned()
        } else {
            name
        };
        out.push((name, value));
    }
    Ok(out)
}

/// The last value of a parameter (Rack keeps the last).
fn last<'p>(params: &'p [(String, String)], key: &str) -> Option<&'p str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.as_str())
}

/// Puma's env: `HTTP_` names upcased with `-` as `_`; a name with `_` only when no
/// dash spelling of it was sent; repeated headers joined with `, `; values with leading
/// spaces skipped and the end trimmed. `CONTENT_TYPE` without the prefix.
fn puma_env(headers: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let key = |name: &str| {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        match upper.as_str() {
            "CONTENT_TYPE" | "CONTENT_LENGTH" => upper,
            _ => format!("HTTP_{upper}"),
        }
    };
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        if name.contains('_') {
            let dashed = name.replace('_', "-");
            if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&dashed)) {
                continue;
            }
        }
        let k = key(name);
        let v = String::from_utf8_lossy(value)
            .trim_start_matches(' ')
            .trim_end()
            .to_owned();
        match env.iter_mut().find(|(n, _)| *n == k) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(&v);
            }
            None => env.push((k, v)),
        }
    }
    env
}

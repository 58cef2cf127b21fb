//! How a request is read: each header convention, each credential, each refusal.

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

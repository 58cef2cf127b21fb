//! Hostile requests, as raw bytes: reserved characters and percent-encodings in every
//! position of path and query, dot segments, encoded slashes, duplicate and conflicting
//! credentials and convention headers, methods in any case, non-ASCII bytes,
//! absolute-form targets and long URIs, built from the catalog's own routes. Seeded:
//! the same seed gives the same requests.

use patrol::catalog::Catalog;

/// SplitMix64: enough randomness for a test, with no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }
}

/// The credentials a request may carry.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// alice's legacy `api` token.
    pub wide: String,
    /// bob's fine-grained token that may only read issues of project 42.
    pub narrow: String,
    /// A job token of project 42 (alice's pipeline).
    pub job: String,
    /// alice's `api` token usable only from 127.0.0.2, an address no test client has.
    pub ip_bound: String,
    pub revoked: String,
}

impl Tokens {
    fn any(&self, rng: &mut Rng) -> String {
        match rng.below(7) {
            0 | 1 => self.wide.clone(),
            2 => self.narrow.clone(),
            3 => self.job.clone(),
            4 => self.ip_bound.clone(),
            5 => self.revoked.clone(),
            _ => "glpat-made-up-and-not-a-token".to_owned(),
        }
    }
}

/// One request: its sequence number (in `X-Test-Seq`) and bytes.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// Namespace references, as a client might write them.
fn reference(rng: &mut Rng, project: bool) -> String {
    let (ids, paths): (&[&str], &[&str]) = if project {
        (
            &["42", "43", "44", "99"],
            &["acme/app", "acme/secret", "oss/lib", "acme/none"],
        )
    } else {
        (&["7", "8", "9", "98"], &["acme", "acme/web", "oss", "none"])
    };
    let id = rng.word(ids);
    let path = rng.word(paths);
    match rng.below(12) {
        0..=3 => id.to_owned(),
        4 => format!("0{id}"),
        5 => format!("+{id}"),
        6 => format!("{id}.json"),
        7 => path.replace('/', "%2F"),
        8 => path.to_ascii_uppercase().replace('/', "%2f"),
        9 => path.replacen('a', "%61", 1).replace('/', "%2F"),
        10 => format!("{id}%0A7"),
        _ => path.to_owned(),
    }
}

/// A catalog route with its parameters filled in.
fn route(rng: &mut Rng, catalog: &Catalog) -> (String, String) {
    let entries = catalog.routes.entries();
    // Now and then a route of no catalog, or one the catalog skips.
    let (method, template) = match rng.below(20) {
        0 => ("GET".to_owned(), "/api/v4/nothing/here".to_owned()),
        1 => ("DELETE".to_owned(), "/api/v4/runners".to_owned()),
        _ => {
            let e = rng.pick(entries);
            (e.method.clone(), e.path.clone())
        }
    };
    let mut path = String::new();
    let mut previous = "";
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        let Some(name) = segment.strip_prefix(':') else {
            path.push_str(segment);
            previous = segment;
            continue;
        };
        let value = match (name, previous) {
            ("id", "groups" | "namespaces") => reference(rng, false),
            ("id", "projects") => reference(rng, true),
            ("id" | "user_id", _) => rng.pick(&["1", "2", "alice", "ALICE"]).to_string(),
            _ => rng
                .pick(&["7", "x", "main", "a.b", "statistics", "%2e%2e", "a%2Fb"])
                .to_string(),
        };
        path.push_str(&value);
        previous = segment;
    }
    (method, path)
}

/// Mutations of a path, each as GitLab or a proxy might read it differently.
fn mutate_path(rng: &mut Rng, path: &mut String) {
    let mutations = rng.below(3);
    for _ in 0..mutations {
        match rng.below(16) {
            0 => *path = path.replacen('/', "//", 1 + rng.below(3)),
            1 => path.push('/'),
            2 => path.push_str(rng.word(&[
                "/../../runners",
                "/..",
                "/./x",
                "/%2e%2e/%2e%2e/runners",
                "/.%2E",
            ])),
            3 => {
                // Encode one letter of a literal segment.
                if let Some(i) = path.find(|c: char| c.is_ascii_lowercase()) {
                    let c = path.as_bytes()[i];
                    let enc = if rng.chance(50) {
                        format!("%{c:02X}")
                    } else {
                        format!("%{c:02x}")
                    };
                    path.replace_range(i..=i, &enc);
                }
            }
            4 => *path = path.replacen("/v4/", "/V4/", 1),
            5 => *path = path.replacen("projects", "Projects", 1),
            6 => *path = path.replacen("/projects/", "/projects%2F", 1),
            7 => path.push_str(rng.word(&[".json", "%2Ejson", ".xml"])),
            8 => path.push_str(";x=1"),
            9 => path.push_str(rng.word(&["%00", "%5C", "\\", "%zz", "%"])),
            10 => path.push_str("/caf\u{e9}"),
            11 => path.push_str(&"a".repeat(rng.pick(&[2_000, 9_000]).to_owned())),
            12 => path.insert_str(
                0,
                rng.word(&[
                    "http://other.example",
                    "https://gitlab.example:8443",
                    "HTTP://x",
                ]),
            ),
            13 => *path = path.replacen("/api/", "/%61pi/", 1),
            14 => *path = path.replacen("42", "42%2F..%2F43", 1),
            _ => {}
        }
    }
}

fn query(rng: &mut Rng, tokens: &Tokens) -> String {
    let mut params: Vec<String> = Vec::new();
    for _ in 0..rng.below(4) {
        let p = match rng.below(18) {
            0 => "x=://h/api/v4/runners".to_owned(),
            1 => "next=/api/v4/projects/43".to_owned(),
            2 | 3 => format!("private_token={}", tokens.any(rng)),
            4 => format!(
                "private_token={}&private_token={}",
                tokens.any(rng),
                tokens.any(rng)
            ),
            5 => format!("private_token[]={}", tokens.any(rng)),
            6 => format!("[private_token]={}", tokens.any(rng)),
            7 => format!("private%5Ftoken={}", tokens.any(rng)),
            8 => "private_token=".to_owned(),
            9 => format!("access_token={}", tokens.any(rng)),
            10 => format!("bearer_token={}", tokens.any(rng)),
            11 => format!("job_token={}", tokens.any(rng)),
            12 => format!("token={}", rng.pick(&[tokens.job.as_str(), "s3cret"])),
            13 => "_method=DELETE".to_owned(),
            14 => "sudo=root".to_owned(),
            15 => "a=%zz".to_owned(),
            16 => format!("pad={}", "b".repeat(5_000)),
            _ => "state=opened&per_page=2".to_owned(),
        };
        params.push(p);
    }
    params.join("&")
}

fn headers(rng: &mut Rng, tokens: &Tokens, method: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Most requests carry one plain credential, so that many are allowed.
    match rng.below(10) {
        0..=3 => out.push(format!("PRIVATE-TOKEN: {}", tokens.any(rng))),
        4 => out.push(format!("Authorization: Bearer {}", tokens.any(rng))),
        5 => out.push(format!("JOB-TOKEN: {}", tokens.any(rng))),
        _ => {}
    }
    for _ in 0..rng.below(4) {
        let h = match rng.below(22) {
            0 => format!("PRIVATE-TOKEN: {}", tokens.any(rng)),
            1 => format!("PRIVATE-TOKEN: {}, {}", tokens.any(rng), tokens.any(rng)),
            2 => format!("Private_Token: {}", tokens.any(rng)),
            3 => format!("authorization: bearer  {}", tokens.any(rng)),
            4 => "Authorization: Basic Z2l0bGFiLWNpLXRva2VuOnNlY3JldA==".to_owned(),
            5 => format!("JOB-TOKEN: {}", tokens.any(rng)),
            6 => "Deploy-Token: gldt-not-ours".to_owned(),
            7 => "X-Original-URI: /api/v4/runners".to_owned(),
            8 => "X-Original-Method: GET".to_owned(),
            9 => "X-Forwarded-Uri: /api/v4/runners".to_owned(),
            10 => "X-Forwarded-Method: GET".to_owned(),
            11 => "X-HTTP-Method-Override: DELETE".to_owned(),
            12 => "Content-Type: application/json".to_owned(),
            13 => "Content-Type: application/x-www-form-urlencoded".to_owned(),
            14 => "X-Real-IP: 127.0.0.2".to_owned(),
            15 => "X-Forwarded-For: 127.0.0.2".to_owned(),
            16 => "X-Patrol-User-Id: 424242".to_owned(),
            17 => "X-Patrol-Token-Id: 424242".to_owned(),
            18 => "Sudo: root".to_owned(),
            19 => "X-Original-URI: /api/v4/caf\u{e9}".to_owned(),
            20 => format!("Authorization: Bearer {}", tokens.any(rng)),
            _ => "Accept: application/json".to_owned(),
        };
        out.push(h);
    }
    if method.eq_ignore_ascii_case("POST") && rng.chance(30) {
        out.push("Content-Type: application/x-www-form-urlencoded".to_owned());
    }
    out
}

/// `count` requests from `seed`: about half plausible (one credential, the encodings and
/// spellings clients really use), so that many reach the upstream and the property has
/// something to hold on; the rest as hostile as the generator can make them.
pub fn requests(catalog: &Catalog, tokens: &Tokens, seed: u64, count: usize) -> Vec<Hostile> {
    let mut rng = Rng::new(seed);
    (0..count as u64)
        .map(|seq| {
            let plausible = rng.chance(50);
            let (mut method, mut path) = route(&mut rng, catalog);
            if rng.chance(if plausible { 10 } else { 30 }) {
                method = rng
                    .pick(&[
                        "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "get",
                        "Delete", "FOO",
                    ])
                    .to_string();
            }
            let mut extra = Vec::new();
            let query;
            if plausible {
                match rng.below(8) {
                    0 => path = path.replacen("projects", "proj%65cts", 1),
                    1 => path = path.to_owned() + ".json",
                    2 => path = path.replacen("/api/v4/", "/api/v4//", 1),
                    3 => path.push('/'),
                    4 => path.insert_str(0, "http://gitlab.example"),
                    _ => {}
                }
                let token = match rng.below(4) {
                    0 | 1 => tokens.wide.clone(),
                    2 => tokens.narrow.clone(),
                    _ => tokens.job.clone(),
                };
                query = match rng.below(6) {
                    0 => format!("private_token={token}"),
                    1 => "x=://h/api/v4/runners".to_owned(),
                    2 => "state=opened".to_owned(),
                    _ => String::new(),
                };
                if !query.contains("private_token") {
                    extra.push(match rng.below(3) {
                        0 => format!("Authorization: Bearer {token}"),
                        _ if token.starts_with("glcbt-") => format!("JOB-TOKEN: {token}"),
                        _ => format!("PRIVATE-TOKEN: {token}"),
                    });
                }
                // A second credential, as a client confused (or an attacker) sends one.
                if rng.chance(20) {
                    extra.push(match rng.below(3) {
                        0 => format!("PRIVATE-TOKEN: {}", tokens.any(&mut rng)),
                        1 => format!("JOB-TOKEN: {}", tokens.job),
                        _ => format!("Authorization: Bearer {}", tokens.any(&mut rng)),
                    });
                }
            } else {
                if rng.chance(60) {
                    mutate_path(&mut rng, &mut path);
                }
                query = if rng.chance(50) {
                    self::query(&mut rng, tokens)
                } else {
                    String::new()
                };
                extra = headers(&mut rng, tokens, &method);
            }
            let target = if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            };
            let body: &[u8] = if !plausible && rng.chance(15) {
                b"_method=DELETE&x=1"
            } else {
                b""
            };
            let mut bytes = format!(
                "{method} {target} HTTP/1.1\r\nHost: gitlab.example\r\nX-Test-Seq: {seq}\r\n"
            )
            .into_bytes();
            for h in extra {
                bytes.extend_from_slice(h.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(
                format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            bytes.extend_from_slice(body);
            Hostile { seq, bytes }
        })
        .collect()
}

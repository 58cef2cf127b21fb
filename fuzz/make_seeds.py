#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ from the repository's
own catalog files and fixtures. Run from anywhere: `python3 fuzz/make_seeds.py`.
It rewrites the seed folders from scratch (no randomness: the output is stable).
"""

import hashlib
import json
import re
import shutil
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def assemble(prefix: str, lookup_id: str, secret: str) -> str:
    """src/token/format.rs `assemble`: CRC32 of everything before it, six base62 digits."""
    signed = prefix + lookup_id + secret
    n = zlib.crc32(signed.encode())
    digits = []
    for _ in range(6):
        digits.append(ALPHABET[n % 62])
        n //= 62
    return signed + "".join(reversed(digits))


def write(target: str, name: str, data):
    if isinstance(data, str):
        data = data.encode()
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


# The fixture tokens of fuzz_targets/authorize_request.rs.
FIXTURE = {
    "legacy": assemble("glpat-", "aliceLegacy1", "SecretSecretSecretSecretSecre1"),
    "fine": assemble("glpat-", "aliceFine000", "SecretSecretSecretSecretSecre2"),
    "job": assemble("glcbt-", "aliceJob0000", "SecretSecretSecretSecretSecre3"),
    "admin": assemble("glpat-", "rootAdmin000", "SecretSecretSecretSecretSecre4"),
    "revoked": assemble("glpat-", "aliceRevoked", "SecretSecretSecretSecretSecre5"),
    "expired": assemble("glpat-", "aliceExpired", "SecretSecretSecretSecretSecre6"),
}


def token_format():
    good = assemble("glpat-", "AbCdEfGhIjKl", "0123456789abcdefghijABCDEFGHIJ")
    seeds = {
        "empty": "",
        "prefix_only": "glpat-",
        "personal": good,
        "job": assemble("glcbt-", "000000000000", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
        "bad_checksum": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "short": good[:-1],
        "long": good + "0",
        "not_base62": good[:10] + "-" + good[11:],
        "unicode": "glpat-" + "é" * 24,
        "other_prefix": good.replace("glpat-", "ghp_", 1),
        "custom_prefixes": "acme_ acmejob-\n"
        + assemble("acme_", "AbCdEfGhIjKl", "0123456789abcdefghijABCDEFGHIJ"),
        "custom_prefixes_job": "acme_ acmejob-\n"
        + assemble("acmejob-", "AbCdEfGhIjKl", "0123456789abcdefghijABCDEFGHIJ"),
        "custom_prefixes_refused": "glpat- glpat-job-\n"
        + assemble("glpat-job-", "AbCdEfGhIjKl", "0123456789abcdefghijABCDEFGHIJ"),
    }
    for name, token in FIXTURE.items():
        seeds[f"fixture_{name}"] = token
    for name, text in seeds.items():
        write("token_format", name, text)


def catalog_files(folder: Path):
    """The catalog files below `folder`, as (relative path, text), sorted."""
    return [
        (p.relative_to(folder).as_posix(), p.read_text())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".yml", ".yaml")
    ]


def catalog_input(files) -> bytes:
    """The catalog_load input format: `#path: <name>` headed files joined by 0xFF."""
    return b"\xff".join(f"#path: {name}\n{text}".encode() for name, text in files)


def catalog_load():
    fixtures = ROOT / "tests" / "fixtures"
    write("catalog_load", "fixture_valid", catalog_input(catalog_files(fixtures / "catalog" / "valid")))
    write("catalog_load", "fixture_engine", catalog_input(catalog_files(fixtures / "engine_catalog")))
    for broken in sorted((fixtures / "catalog" / "broken").iterdir()):
        write("catalog_load", f"broken_{broken.name}", catalog_input(catalog_files(broken)))
    # Small real files of permissions/, with the top-level files they lean on.
    permissions = ROOT / "permissions"
    base = [(n, (permissions / n).read_text()) for n in ("roles.yml", "features.yml", "job_token_policies.yml")]
    for name in ("scopes.yml", "templates.yml", "skipped_routes.yml", "roles.yml", "features.yml"):
        write("catalog_load", f"real_{Path(name).stem}", catalog_input([(name, (permissions / name).read_text())]))
    for path in sorted(permissions.rglob("*.yml")):
        rel = path.relative_to(permissions).as_posix()
        if "/" in rel and path.stat().st_size <= 2500:
            slug = rel.replace("/", "_").removesuffix(".yml")
            write("catalog_load", f"real_{slug}", catalog_input(base + [(rel, path.read_text())]))
    # The default names (no header), odd names and odd YAML.
    write("catalog_load", "unnamed", b"\xff".join([
        (permissions / "roles.yml").read_bytes(),
        (permissions / "features.yml").read_bytes(),
    ]))
    write("catalog_load", "odd_yaml", b"#path: roles.yml\nroles: &a [*a]\n\xff#path: x/../y.yml\n{a: [1, {b: !tag c}]}\n")
    write("catalog_load", "odd_names", b"#path: /abs/roles.yml\nroles: []\n\xff#path: a/b/c/d.yaml\npermissions: []\n")


def routes():
    """Every (method, template) of the embedded catalog."""
    found = []
    pattern = re.compile(r"^\s*-?\s*route:\s*([A-Za-z]+)\s+(\S+)\s*$")
    for path in sorted((ROOT / "permissions").rglob("*.yml")):
        for line in path.read_text().splitlines():
            m = pattern.match(line)
            if m:
                found.append((m.group(1).upper(), m.group(2)))
    return list(dict.fromkeys(found))


def concrete(template: str, value: str) -> str:
    return "/".join(
        value if s.startswith(":") or (s.startswith("{") and s.endswith("}")) else s
        for s in template.split("/")
    )


def route_match():
    for i, (method, template) in enumerate(routes()):
        value = ["42", "acme%2Fapp", "main", "v1.0"][i % 4]
        write("route_match", f"route_{i:04}", f"{method} {concrete(template, value)}")
    extra = {
        "query": "GET /api/v4/projects/42/issues?state=opened&per_page=100",
        "trailing_slash": "GET /api/v4/projects/42/issues/",
        "lowercase_method": "get /api/v4/user",
        "no_method": "/api/v4/projects/acme%2Fapp",
        "unknown_method": "FETCH /api/v4/user",
        "empty": "",
        "root": "GET /",
        "double_slash": "GET //api/v4//projects/42",
        "only_query": "GET ?x=/api/v4/user",
    }
    for name, text in extra.items():
        write("route_match", name, text)


def authorize_request():
    t = FIXTURE
    bodies = {
        "permission_project_id": {"token": t["legacy"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
        "permission_project_path": {"token": t["fine"], "permission": "create_issue", "boundary": {"type": "project", "path": "acme/app"}, "client_ip": "10.1.2.3"},
        "permission_group": {"token": t["legacy"], "permission": "read_group", "boundary": {"type": "group", "id": 10}},
        "permission_group_path": {"token": t["admin"], "permission": "read_group", "boundary": {"type": "group", "path": "acme"}},
        "permission_user": {"token": t["legacy"], "permission": "read_user", "boundary": {"type": "user"}},
        "permission_instance": {"token": t["admin"], "permission": "read_audit_event", "boundary": {"type": "instance"}},
        "route": {"token": t["legacy"], "route": {"method": "GET", "path": "/api/v4/projects/42/issues?state=opened"}},
        "route_path": {"token": t["fine"], "route": {"method": "post", "path": "/api/v4/projects/acme%2Fapp/issues"}, "client_ip": "10.0.0.1"},
        "route_job": {"token": t["job"], "route": {"method": "GET", "path": "/api/v4/projects/42/repository/files/README.md/raw"}},
        "resource": {"token": t["legacy"], "permission": "read_issue", "boundary": {"type": "project", "id": 42},
                     "resource": {"confidential": True, "author_id": 2, "assignee_ids": [1, 2]}},
        "revoked": {"token": t["revoked"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
        "expired": {"token": t["expired"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
        "personal_project": {"token": t["legacy"], "permission": "read_repository", "boundary": {"type": "project", "path": "alice/dotfiles"}},
        "garbage_token": {"token": "hello", "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
        "long_token": {"token": "x" * 300, "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
        "both_actions": {"token": t["legacy"], "permission": "read_issue", "route": {"method": "GET", "path": "/"}},
        "no_boundary": {"token": t["legacy"], "permission": "read_issue"},
        "bad_ip": {"token": t["legacy"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}, "client_ip": "nope"},
        "unknown_field": {"token": t["legacy"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}, "extra": 1},
        "batch": {"checks": [
            {"token": t["legacy"], "permission": "read_issue", "boundary": {"type": "project", "id": 42}},
            {"token": t["job"], "route": {"method": "GET", "path": "/api/v4/projects/42/jobs"}},
            {"token": "glpat-x", "permission": "read_issue", "boundary": {"type": "user", "id": 1}},
        ]},
    }
    for name, body in bodies.items():
        write("authorize_request", name, json.dumps(body))
    raw = {
        "not_json": "{\"token\": ",
        "wrong_type": "{\"token\": 1, \"permission\": [\"read_issue\"]}",
        "missing_token": "{\"permission\": \"read_issue\", \"boundary\": {\"type\": \"project\", \"id\": 42}}",
        "nested_missing": "{\"token\": \"t\", \"route\": {\"method\": \"GET\"}}",
        "empty": "",
        "batch_bad": "{\"checks\": [{\"token\": \"t\", \"route\": {\"method\": \"G T\", \"path\": \"x\"}}]}",
    }
    for name, body in raw.items():
        write("authorize_request", name, body)


def gateway_read():
    """Original requests as fuzz_targets/gateway_read.rs reads them: method, target,
    header lines, an empty line, the body. The tokens are the target's fixture world."""
    requests = {
        "plain": ["GET", "/api/v4/projects/42/issues", "PRIVATE-TOKEN: glpat-aaaa"],
        "query_token": ["GET", "/api/v4/projects/acme%2Fapp?private_token=glpat-aaaa"],
        "two_tokens": ["DELETE", "/api/v4/projects/42?private_token=glpat-bbbb", "PRIVATE-TOKEN: glpat-aaaa"],
        "url_in_query": ["DELETE", "/api/v4/projects/42?x=://h/api/v4/runners"],
        "absolute": ["GET", "http://gitlab.example/api/v4/groups/ACME", "Authorization: Bearer glpat-aaaa"],
        "encoded_literal": ["GET", "/api/v4/proj%65cts/42/issues.json", "JOB-TOKEN: glcbt-jjjj"],
        "dot_segments": ["GET", "/api/v4/projects/42/../../runners", "PRIVATE-TOKEN: glpat-aaaa"],
        "head": ["HEAD", "/api/v4/namespaces/alice", "PRIVATE-TOKEN: glpat-aaaa"],
        "override": ["POST", "/api/v4/projects/42", "Content-Type: application/json", "X-HTTP-Method-Override: DELETE", "PRIVATE-TOKEN: glpat-aaaa"],
        "form": ["POST", "/api/v4/projects/42/issues", "Content-Type: application/x-www-form-urlencoded", "PRIVATE-TOKEN: glpat-aaaa"],
        "job_parameters": ["GET", "/api/v4/projects/42/jobs?token=glcbt-jjjj&job_token=glcbt-jjjj"],
        "skipped": ["DELETE", "/api/v4/runners", "PRIVATE-TOKEN: glpat-bbbb"],
    }
    for name, lines in requests.items():
        body = "_method=DELETE" if name == "form" else ""
        write("gateway_read", name, "\n".join(lines) + "\n\n" + body)


def graphql_request():
    """GraphQL requests as fuzz_targets/graphql_request.rs reads them: the query, then
    (after a NUL) the variables as JSON, then (after a second NUL) the operationName.
    The names are the target's fixture world: `acme/app` is project 42 (private, the
    fine-grained token's), `acme` group 10 and `alice/dotfiles` project 43 (public)."""
    def nested(depth: int) -> str:
        return "{ group(fullPath: \"acme\") { " + "parent { " * depth + "id" + " }" * depth + " } }"

    def spread(levels: int, times: int) -> str:
        """A fragment spread `times` times per level: times ** levels copies of F0."""
        fragments = ["fragment F0 on Project { name issues { count } }"]
        for level in range(1, levels + 1):
            fragments.append(f"fragment F{level} on Project {{ " + f"...F{level - 1} " * times + "}")
        return f"{{ project(fullPath: \"acme/app\") {{ ...F{levels} }} }}\n" + "\n".join(fragments)

    def list_fanout(ids: int) -> str:
        """768 fields (three, in a fragment spread 4 times a level, 4 levels), each
        taking the same list of `ids` project ids."""
        f0 = " ".join(f"a{i}: vulnerabilities(projectId: $p) {{ __typename }}" for i in range(3))
        fragments = [f"fragment F0 on Query {{ {f0} }}"]
        fragments += [f"fragment F{l} on Query {{ " + f"...F{l - 1} " * 4 + "}" for l in range(1, 5)]
        return "query($p: [ID!]) { ...F4 }\n" + "\n".join(fragments) + "\0" + json.dumps({"p": list(range(ids))})

    requests = {
        "project_issues": "{ project(fullPath: \"acme/app\") { name issues(first: 5) { nodes { iid title notes { nodes { body author { username } } } } } } }",
        "project_public": "{ project(fullPath: \"alice/dotfiles\") { name issues { nodes { title } } repository { rootRef } } }",
        "group_public": "{ group(fullPath: \"acme\") { name issues { count nodes { title } } } }",
        "aliases": "{ a: project(fullPath: \"acme/app\") { open: issues(first: 1) { count } } b: project(fullPath: \"ACME/App\") { id } c: group(fullPath: \"acme\") { id } }",
        "fragment_named": "query { project(fullPath: \"acme/app\") { ...P } }\nfragment P on Project { issues { nodes { ...I } } }\nfragment I on Issue { title notes { nodes { body } } }",
        "fragment_inline": "{ project(fullPath: \"acme/app\") { ... on Project { issue(iid: \"1\") { title } } ... { name } } }",
        "variables": "query Q($path: ID!) { project(fullPath: $path) { issues { count } } }\0" + json.dumps({"path": "acme/app"}),
        "variables_operation_name": "query A($p: ID!) { project(fullPath: $p) { name } }\nquery B { currentUser { username } }\0" + json.dumps({"p": "alice/dotfiles"}) + "\0A",
        "variables_wrong_type": "query Q($p: ID!) { project(fullPath: $p) { name } }\0" + json.dumps({"p": [1]}),
        "variables_not_json": "query Q($p: ID!) { project(fullPath: $p) { name } }\0{\"p\": ",
        "operation_name_missing": "query A { currentUser { username } }\nquery B { group(fullPath: \"acme\") { id } }",
        "operation_name_unknown": "query A { currentUser { username } }\0{}\0C",
        "skip_include": "query Q($s: Boolean!) { project(fullPath: \"acme/app\") { name issues @skip(if: $s) { count } repository @include(if: false) { rootRef } } }\0" + json.dumps({"s": True}),
        "mutation_path": "mutation { updateIssue(input: {projectPath: \"acme/app\", iid: \"1\", title: \"t\"}) { issue { title } errors } }",
        "mutation_path_variables": "mutation M($in: UpdateIssueInput!) { updateIssue(input: $in) { errors } }\0" + json.dumps({"in": {"projectPath": "acme/app", "iid": "1"}}),
        "mutation_create": "mutation { createAlertIssue(input: {projectPath: \"acme/app\", iid: \"1\"}) { issue { title } errors } }",
        "mutation_gid_project": "mutation { addProjectToSecurityDashboard(input: {id: \"gid://gitlab/Project/42\"}) { project { name } errors } }",
        "mutation_gid_note": "mutation { updateNote(input: {id: \"gid://gitlab/Note/5\", body: \"x\"}) { note { body } errors } }",
        "mutation_gid_award": "mutation { awardEmojiAdd(input: {awardableId: \"gid://gitlab/Project/42\", name: \"thumbsup\"}) { errors } }",
        "gid_list": "{ vulnerabilities(projectId: [\"gid://gitlab/Project/42\", \"gid://gitlab/Project/43\", \"gid://gitlab/Group/10\"]) { nodes { title } } }",
        "design_gid": "{ designManagement { version(id: \"gid://gitlab/Project/42\") { id } } }",
        "current_user": "{ currentUser { username projectMemberships { nodes { project { name } } } } }",
        "namespace": "{ namespace(fullPath: \"acme\") { projects { nodes { issues { count } } } } }",
        "echo": "{ echo(text: \"hi\") __typename }",
        "typename": "{ __typename }",
        "introspection": "{ __schema { types { name } } }",
        "unknown_field": "{ nope { id } }",
        "syntax_error": "{ project(fullPath: \"acme/app\") { name }",
        "too_deep": nested(20),
        "fragment_spread": spread(3, 4),
        "fragment_bomb": spread(5, 4),
        # The finding of docs/fuzzing.md: a list of 700 ids under 768 copies of a field
        # (537,600 checks before the bound on checks per request).
        "list_fanout": list_fanout(700),
    }
    for name, text in requests.items():
        write("graphql_request", name, text)


def main():
    targets = ("token_format", "catalog_load", "route_match", "authorize_request", "gateway_read", "graphql_request")
    for target in targets:
        shutil.rmtree(SEEDS / target, ignore_errors=True)
    token_format()
    catalog_load()
    route_match()
    authorize_request()
    gateway_read()
    graphql_request()
    for target in sorted(p.name for p in SEEDS.iterdir()):
        files = list((SEEDS / target).iterdir())
        size = sum(f.stat().st_size for f in files)
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(files))).hexdigest()[:12]
        print(f"{target}: {len(files)} seeds, {size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()

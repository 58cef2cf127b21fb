"""Every status the OpenAPI document promises is one some test has seen.

    python3 tests/schema/coverage.py openapi/openapi.json SEEN_FILE [KNOWN_GAPS]

SEEN_FILE holds `METHOD path status` lines, written by the API suite's requests
(tests/api/support.rs, `note_status`) and by schemathesis (tests/schema/hooks.py) when
`PATROL_SEEN_STATUSES` names it. Each line is matched to the document's operation by
method and path template; an operation's documented status that no line shows is a
promise no test keeps. KNOWN_GAPS (tests/schema/unseen.txt) lists, one
`METHOD template status` per line, the ones not yet covered: any other fails the run
(exit 1), so that a new operation or status comes with its test; a listed one that a
test now shows is reported, to be taken off the list.
"""

import json
import re
import sys


def template_pattern(template: str) -> re.Pattern:
    parts = ["[^/]+" if re.fullmatch(r"\{[^}]+\}", part) else re.escape(part) for part in template.split("/")]
    return re.compile("^" + "/".join(parts) + "$")


def main() -> int:
    document_path, seen_path = sys.argv[1], sys.argv[2]
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    promised = {}
    patterns = []
    for template, item in document["paths"].items():
        # Literal templates first, so `/v1/tokens/self` is not taken for `/v1/tokens/{id}`.
        patterns.append((template.count("{"), template, template_pattern(template)))
        for method, operation in item.items():
            for status in operation.get("responses", {}):
                promised[(method.upper(), template, status)] = False
    patterns.sort()

    with open(seen_path, encoding="utf-8") as f:
        for line in f:
            method, rest = line.rstrip("\n").split(" ", 1)
            path, status = rest.rsplit(" ", 1)
            path = path.split("?", 1)[0]
            for _, template, pattern in patterns:
                if pattern.match(path):
                    key = (method, template, status)
                    if key in promised:
                        promised[key] = True
                    break

    known = set()
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            known = {tuple(line.split()) for line in f if line.strip() and not line.startswith("#")}

    missing = sorted(key for key, seen in promised.items() if not seen)
    total = len(promised)
    print(f"documented statuses seen: {total - len(missing)} of {total} ({len(known)} known gaps)")
    for key in missing:
        if key not in known:
            print("  never seen, and not a known gap: " + " ".join(key))
    for key in sorted(known - set(missing)):
        print("  a known gap now seen (take it off the list): " + " ".join(key))
    return 1 if set(missing) - known else 0


if __name__ == "__main__":
    sys.exit(main())

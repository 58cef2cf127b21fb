#!/usr/bin/env python3
"""Validates every catalog YAML file against its JSON Schema.

Run from the repository root: python3 permissions/schema/validate.py
Needs: pip install jsonschema pyyaml. Exits 1 and prints file and message on failure.
Semantic checks (undefined names, boundaries, duplicate routes...) are `patrol catalog check`.
"""
import json
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = {
    name: json.loads((ROOT / "schema" / f"{name}.schema.json").read_text())
    for name in ("resource", "catalog")
}


def main() -> int:
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    validators = {k: jsonschema.Draft202012Validator(v) for k, v in SCHEMAS.items()}
    failures = 0
    files = sorted(p for p in ROOT.rglob("*") if p.suffix in (".yml", ".yaml"))
    for path in files:
        relative = path.relative_to(ROOT)
        kind = "resource" if len(relative.parts) > 1 else "catalog"
        text = path.read_text()
        expected = "../" * (len(relative.parts) - 1) + f"schema/{kind}.schema.json"
        first = text.splitlines()[0] if text else ""
        if first != f"# yaml-language-server: $schema={expected}":
            print(f"{relative}:1: first line must be '# yaml-language-server: $schema={expected}'")
            failures += 1
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as e:
            print(f"{relative}: {e}")
            failures += 1
            continue
        for error in validators[kind].iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            print(f"{relative}: {where}: {error.message}")
            failures += 1
    print(f"{len(files)} files, {failures} problem(s)", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

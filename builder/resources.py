"""Files shipped with the package: the bundled default project file and the JSON Schemas."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULTS_DIR = PACKAGE_DIR / "defaults"


def cache_dir() -> Path:
    """builder's cache (`$XDG_CACHE_HOME/builder`, else `~/.cache/builder`): Label Studio's install, locks."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder"


def schema_dir() -> Path:
    """`schema/` at the repository root (editable install) or inside the installed package."""
    for candidate in (PACKAGE_DIR / "schema", PACKAGE_DIR.parent / "schema"):
        if (candidate / "config.schema.json").is_file():
            return candidate
    raise FileNotFoundError("schema/config.schema.json is missing from the installation")


@cache
def load_schema(name: str) -> dict:
    """Load `schema/<name>.schema.json`."""
    return json.loads((schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


def _ecma_pattern(pattern: str) -> str:
    r"""`pattern` for Python's `re` with ECMA-262's `$`: the end of the string only (Python's `$` also matches
    before a final newline, so `^[a-z]+$` would let 'favor\n' through). `$` inside a class or escaped stays."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return "".join(out)


@cache
def _compiled(pattern: str):
    import re

    return re.compile(_ecma_pattern(pattern))


def schema_validator(schema: dict):
    """A JSON Schema draft 2020-12 validator for `schema` whose `pattern` keyword anchors as the standard says."""
    import jsonschema

    def pattern(validator, patrn, instance, _schema):
        if validator.is_type(instance, "string") and not _compiled(patrn).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    return cls(schema)

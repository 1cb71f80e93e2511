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

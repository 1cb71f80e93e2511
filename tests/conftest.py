from __future__ import annotations

from pathlib import Path

import pytest

from builder.scheme import load_project

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "examples" / "sample"
SEED = SAMPLE / "ri-chang-dae-moscow.txt"


@pytest.fixture(scope="session")
def project():
    return load_project(ROOT / "builder.toml")


@pytest.fixture(scope="session")
def gum_docs():
    import json

    path = SHARED / "corpora" / "gum_news.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

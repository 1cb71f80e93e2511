from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from builder.project import load_project

# `datasets` caches a loaded local folder under a key that can repeat across runs (the same pytest
# temp path, the same card): a cache left by an earlier run then answers for a fresh build. Every test
# session, and the CLI processes it starts, get a cache of their own. Set before `datasets` is imported.
_DATASETS_CACHE = tempfile.mkdtemp(prefix="builder-tests-datasets-")
os.environ["HF_DATASETS_CACHE"] = _DATASETS_CACHE
atexit.register(shutil.rmtree, _DATASETS_CACHE, ignore_errors=True)

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


# Fixtures that start something heavy; a test whose fixture closure holds one gets the marker, so that
# `python -m pytest -m "not labelstudio"` runs the offline suite without starting Label Studio or chromium.
# Tests that start their own server carry `@pytest.mark.labelstudio` (tests/test_server.py: `pytestmark`);
# tests/test_repository.py finds the starts written in tests, fixtures and helpers, and checks the marker.
MARKED_BY_FIXTURE = {"ls_server": "labelstudio", "migrated_label_studio": "labelstudio", "chromium": "browser"}


# Every collected test, before `-m`/`-k` deselect any: tests/test_repository.py checks their markers.
COLLECTED = pytest.StashKey[list]()

# The files that take longest (their real Label Studio starts, moves to PostgreSQL, clusters, migrations), slowest
# first: they run first. The suite runs in 2 processes, each file whole in one (pyproject's addopts: `-n 2 --dist
# loadfile`), files handed out in this order; a slow file left for the end would keep one process busy while the
# other waits. The other files keep their order (alphabetical) after these.
SLOW_FILES_FIRST = (  # from the slowest, by the sum of their tests' durations (`--durations=0`)
    "test_migrate.py",
    "test_labelstudio.py",
    "test_postgresql.py",
    "test_pull.py",
    "test_scale.py",
    "test_drift.py",
    "test_blind.py",
    "test_annotators.py",
    "test_blind_handover.py",
    "test_empty_database.py",
    "test_schemes.py",
)


def pytest_addoption(parser):
    """Without pytest-xdist (a virtual environment made before it joined the `test` extra), pyproject's `-n 2
    --dist loadfile` are accepted and the suite runs in this one process; in CI that fails (pytest_configure)."""
    try:
        import xdist  # noqa: F401
    except ImportError:
        group = parser.getgroup("xdist", "without pytest-xdist: these are accepted and ignored")
        group._addoption("-n", "--numprocesses", dest="numprocesses", default=None)  # a short option, as xdist's
        group._addoption("--dist", dest="dist", default="no")


def pytest_configure(config):
    if in_ci() and not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError("pytest-xdist is missing: .ci/run installs the test extra, which holds it")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    config.stash[COLLECTED] = list(items)
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def in_ci() -> bool:
    """`.ci/run` (BUILDER_CI=1) and CI services (CI=true) install every extra and run as root: there what
    a test needs and does not find fails it instead of skipping it."""
    return os.environ.get("BUILDER_CI") == "1" or os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_ray():
    """Ray (the `ray` extra, installed by `.ci/run`): skipped without it on a developer's machine, failed in CI."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"Ray is missing ({exc}): .ci/run installs the ray extra")
        pytest.skip("needs the ray extra (pip install -e '.[ray]')")
    return ray


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def migrated_label_studio(tmp_path_factory) -> Path:
    """A project folder whose local Label Studio made and migrated its SQLite database on a real first start,
    then stopped. A first start copies the empty database builder makes once per install
    (tests/test_empty_database.py) and makes the admin and its token: `seed_local_server` copies this one (those
    credentials included) into a test's project instead, so its `server start` is a restart. Tests whose promise is the
    first start itself (tests/test_server.py checks what it leaves private) look at this folder."""
    from builder.labelstudio import server

    root = tmp_path_factory.mktemp("label-studio-migrated")
    server.start(root, free_port(), log=lambda message: None)
    server.stop(root)
    return root


def seed_local_server(template: Path, root: Path) -> None:
    """Give the project at `root` a copy of `template`'s stopped local server (`migrated_label_studio`): its
    migrated SQLite data folder, and its state file pointed at `root`'s data folder (same credentials)."""
    from builder.jsonio import state_dir
    from builder.labelstudio import server

    state_dir(root)
    shutil.copytree(server.data_dir_of(template), server.data_dir_of(root))
    state = server.read_state(template)
    state.data_dir, state.pid = str(server.data_dir_of(root)), None
    server.write_state(root, state)


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory, migrated_label_studio):
    """One real Label Studio for the whole test session (its own data folder and port)."""
    from builder.labelstudio import server

    root = tmp_path_factory.mktemp("label-studio")
    seed_local_server(migrated_label_studio, root)
    state = server.start(root, free_port(), log=lambda message: None)
    yield state
    server.stop(root)


@pytest.fixture
def ls(ls_server):
    """An admin connection to the session's Label Studio."""
    from builder.labelstudio.client import Connection

    return Connection(ls_server.url, ls_server.token, "environment")


def make_project(
    folder: Path,
    title: str,
    snapshot: Path | None = None,
    holdout: float = 0.0,
    blind: str | None = "false",
    scheme: str = "both",
):
    """A project folder with the repository's scheme under another Label Studio project title; `holdout`: its
    `[annotation] suggestion_holdout` (0: every task gets the predictor's suggestion, as tests of the
    suggestions themselves expect; tests/test_steering.py tests the control arm); `blind`: its `[annotation]
    blind` as TOML, false by default (a shared project, as the tests of shared projects expect, also on a local
    server; tests/test_blind*.py test blind ones), None to leave it out (the default, "auto"); `scheme`: "stance" or
    "entities" leaves the other half's section out of the project file."""
    text = scheme_text((ROOT / "builder.toml").read_text(encoding="utf-8"), scheme)
    text = text.replace("entity_agreement = 0.5\n", f"entity_agreement = 0.5\nsuggestion_holdout = {holdout}\n", 1)
    if blind is not None:
        text = text.replace("[annotation]\n", f"[annotation]\nblind = {blind}\n", 1)
    text = text.replace('project_title = "DPRK-Russia stance and entities"', f'project_title = "{title}"')
    text = text.replace('guidelines = "guidelines.md"', f'guidelines = "{ROOT / "guidelines.md"}"')
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "builder.toml").write_text(text, encoding="utf-8")
    if snapshot is not None:
        (folder / "annotations").mkdir(exist_ok=True)
        (folder / "annotations" / "snapshot.jsonl").write_bytes(snapshot.read_bytes())
    return load_project(folder / "builder.toml")


def scheme_text(text: str, scheme: str) -> str:
    """A project file's text with only the sections of `scheme` ("both", "stance" or "entities")."""
    import re

    if scheme == "stance":
        text = re.sub(r"\[\[entities\.labels\]\]\n(?:[^\n\[]+\n)+\n?", "", text)
    elif scheme == "entities":
        text = re.sub(r"\[stance\]\n(?:[^\n\[]+\n)+\n?", "", text)
        text = re.sub(r"\[\[stance\.labels\]\]\n(?:[^\n\[]+\n)+\n?", "", text)
    return text


def cli_env(connection) -> dict:
    import os

    return {**os.environ, "LABEL_STUDIO_URL": connection.url, "LABEL_STUDIO_API_KEY": connection.api_key}


def run_cli(*args, env=None, cwd=None):
    """Run `python -m builder` with this checkout's package first on its path, whatever `cwd` is (from a project
    folder elsewhere, `-m` would find the package the virtual environment installed, maybe another checkout's)."""
    import subprocess
    import sys

    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "builder", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.fixture(scope="session")
def sample_sentences(tmp_path_factory, project):
    from builder.jsonio import read_jsonl
    from builder.sentences.splitting import split_files

    out = tmp_path_factory.mktemp("sample") / "sentences.jsonl"
    split_files([SAMPLE], out, project)
    return out, list(read_jsonl(out))

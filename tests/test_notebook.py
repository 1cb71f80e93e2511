"""The notebook runs from a fresh install: its packages come with the `notebook` extra, it reads the snapshot the
dataset was built from, and each group of bars sits over its tick."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import sys
import tomllib

import pytest

from builder.dataset.build import build_dataset, dataset_snapshot
from builder.jsonio import read_jsonl, write_jsonl
from builder.outputs import MARKER, read_marker

from .conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """`names` and, for those installed here, every distribution they require (extras' requirements left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def test_the_notebook_extra_brings_every_package_the_notebook_imports():
    import nbformat

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = {_name(r) for r in project["optional-dependencies"]["notebook"]}
    assert {"jupyterlab", "ipykernel", "matplotlib"} <= extra
    available = _closure({_name(r) for r in project["dependencies"]} | extra)
    distributions = importlib.metadata.packages_distributions()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    modules = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module:
                    modules.add(node.module.split(".")[0])
    assert {"matplotlib", "IPython", "datasets"} <= modules
    for module in modules - set(sys.stdlib_module_names) - {"builder"}:
        owners = {_name(d) for d in distributions.get(module, [])}
        assert owners & available, f"{module} (from {owners}) comes with neither builder nor its notebook extra"
    for page in (ROOT / "README.md", ROOT / "docs" / "researchers.md"):
        assert "pip install -e '.[notebook]'" in page.read_text(encoding="utf-8"), page


@pytest.fixture(scope="module")
def built_elsewhere(project, tmp_path_factory):
    """A dataset built, as `builder run` does, from a snapshot that is not annotations/snapshot.jsonl."""
    work = tmp_path_factory.mktemp("run")
    snapshot = work / "snapshot.jsonl"
    tasks = list(read_jsonl(project.snapshot_path))
    write_jsonl(snapshot, tasks[: len(tasks) * 2 // 3])
    folder = work / "dist" / project.name
    build_dataset(project, snapshot, folder, command="builder run")
    return folder, snapshot


def test_a_build_records_the_snapshot_it_read(project, built_elsewhere, tmp_path):
    from builder.jsonio import sha256_file

    folder, snapshot = built_elsewhere
    fact = read_marker(folder)["snapshot"]
    assert fact == {"path": str(snapshot), "sha256": sha256_file(snapshot)}  # outside the project: absolute
    built = dataset_snapshot(project, folder)
    assert (built.path, built.current, built.recorded) == (snapshot, True, True)
    inside = project.root / "build" / "test-notebook-snapshot.jsonl"  # inside the project: relative
    copy = tmp_path / project.name
    shutil.copytree(folder, copy)
    marker = read_marker(copy)
    marker["snapshot"]["path"] = "build/test-notebook-snapshot.jsonl"
    (copy / MARKER).write_text(__import__("json").dumps(marker), encoding="utf-8")
    assert dataset_snapshot(project, copy).path == inside and not dataset_snapshot(project, copy).current
    (copy / MARKER).unlink()  # a release, a Hub copy, an older build: the project's snapshot
    assert dataset_snapshot(project, copy) == (project.snapshot_path, True, False)


CHECKS = """\
import numpy as np

assert built_from.path == Path(os.environ["EXPECTED_SNAPSHOT"]), built_from
for ax in axes:
    ticks = list(ax.get_xticks())
    centres = {}
    for bar in ax.patches:
        centres.setdefault(round(bar.get_x() + bar.get_width() / 2), []).append(bar.get_x() + bar.get_width() / 2)
    for group, xs in centres.items():
        assert abs(np.mean(xs) - ticks[group]) < 1e-9, (ax.get_title(), group, xs, ticks)
print("checks passed")
"""


def test_the_notebook_reads_the_last_builds_snapshot_and_centres_its_bars(built_elsewhere):
    import nbformat
    from nbclient import NotebookClient

    folder, snapshot = built_elsewhere
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS))
    env = {"BUILDER_DATASET": str(folder), "EXPECTED_SNAPSHOT": str(snapshot), "PYTHONPATH": str(ROOT)}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "checks passed" in "".join(o.get("text", "") for o in notebook.cells[-1].outputs)

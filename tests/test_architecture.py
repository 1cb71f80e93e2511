"""The house rules a newcomer relies on: layers, no import cycles, and one model of the data that
the JSON Schema, the `datasets` features, the Parquet columns and the card's field table all follow."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from builder import model
from builder.records.from_snapshot import validate_snapshot

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "builder"
ADAPTER = "builder.labelstudio"
# Above the core: the command line, the sample loop, and the Label Studio adapter itself.
ABOVE_CORE = ("builder.cli", "builder.__main__", "builder.sample_loop")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the builder modules it imports anywhere in its body (function-level imports too)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("builder"):
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def test_the_core_never_imports_the_label_studio_adapter():
    graph = _import_graph()
    offenders = {
        name: sorted(m for m in imported if m.startswith(ADAPTER))
        for name, imported in graph.items()
        if not name.startswith(ADAPTER) and name not in ABOVE_CORE
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_adapter_never_imports_the_command_line():
    graph = _import_graph()
    assert {name for name, imported in graph.items() if name.startswith(ADAPTER) and "builder.cli" in imported} == set()


def test_no_import_cycles():
    try:
        list(graphlib.TopologicalSorter(_import_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def _package(module: str) -> str:
    """The unit a layer is made of: `builder.records` for builder.records.validate, a top-level module itself."""
    return ".".join(module.split(".")[:2])


def test_no_two_packages_import_each_other():
    """Packages form layers: when `records` imports `sentences`, nothing in `sentences` imports `records`, not even
    inside a function (a function-local import hides a cycle from the interpreter, not from a reader)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for name, imported in _import_graph().items():
        for module in imported:
            if _package(name) != _package(module) and "builder" not in (_package(name), _package(module)):
                edges.setdefault((_package(name), _package(module)), []).append(f"{name} -> {module}")
    both_ways = {
        f"{a} <-> {b}": sorted(edges[a, b] + edges[b, a]) for a, b in sorted(edges) if a < b and (b, a) in edges
    }
    assert both_ways == {}


def test_modules_are_not_named_alike():
    """No two modules whose names differ by one letter (split/splits, scheme/schemas)."""
    names = sorted({path.stem for path in PACKAGE.rglob("*.py") if not path.stem.startswith("__")})
    close = [(a, b) for a in names for b in names if a < b and (a.rstrip("s") == b.rstrip("s"))]
    assert close == []


def test_no_two_modules_share_a_file_name():
    """A file name says which module it is: builder/model.py and builder/learn/model.py, or two stage.py, were
    told apart only by their folders (`__init__.py` and `__main__.py` are the package's, not names)."""
    folders: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):
            folders.setdefault(path.name, []).append(str(path.relative_to(PACKAGE.parent)))
    assert {name: paths for name, paths in folders.items() if len(paths) > 1} == {}


def test_record_schema_features_and_card_follow_the_model(project):
    schema = model.record_schema(project)
    features = model.features(project)
    stored = [field.name for field in model.RECORD.of_format(model.DATASET_FORMAT).stored()]
    assert list(schema["properties"]) == stored
    assert schema["required"] == stored and schema["additionalProperties"] is False
    assert list(features) == model.dataset_columns()
    assert [name for name in features if name not in stored] == ["tokens", "ner_tags"]
    # labels: the schema's enums and the features' ClassLabels come from the same scheme
    assert schema["properties"]["stance"]["enum"] == [*features["stance"].names, None]
    span = schema["properties"]["entities"]["items"]
    assert list(span["properties"]) == list(features["entities"].feature)
    assert span["properties"]["label"]["enum"] == features["entities"].feature["label"].names
    annotation = schema["properties"]["annotations"]["items"]
    assert list(annotation["properties"]) == list(features["annotations"].feature)
    assert schema["properties"]["stance_status"]["enum"] == list(model.STANCE_STATUSES)
    assert features["ner_tags"].feature.names == project.bio_tags
    # the card names every column, in the dataset's order
    table = model.card_field_table(project)
    named = [part.strip("` ") for line in table.splitlines()[2:] for part in line.split("|")[1].split(",")]
    assert named == model.dataset_columns()
    for status in model.STANCE_STATUSES:
        assert f"`{status}`" in table


def test_records_and_parquet_columns_follow_the_model(project, tmp_path):
    """A record built from the committed snapshot has exactly the model's fields and passes its schema;
    the Parquet files of a build have exactly the model's columns."""
    import jsonschema
    import orjson
    import pyarrow.parquet as pq

    from builder.dataset.build import build_dataset

    records = tmp_path / "records.jsonl"
    validate_snapshot(project, project.snapshot_path, records)
    validator = jsonschema.Draft202012Validator(model.record_schema(project))
    lines = records.read_bytes().splitlines()
    assert lines
    for line in lines:
        record = orjson.loads(line)
        assert set(record) == {field.name for field in model.RECORD.of_format(model.DATASET_FORMAT).stored()}
        validator.validate(record)
    build_dataset(project, project.snapshot_path, tmp_path / "dataset")
    for parquet in (tmp_path / "dataset" / "data").glob("*.parquet"):
        assert pq.read_schema(parquet).names == model.dataset_columns()


def test_sentences_as_split_writes_them_follow_the_model(project):
    from builder.sentences.segmenter import split_article

    sentences = split_article(
        {"id": "a1", "title": "T", "text": "One sentence here. Another one there.", "target": "x"}
    )
    assert sentences
    for sentence in sentences:
        assert set(sentence) == set(model.SENTENCE_FIELDS.names)


MODULE_LINES_LIMIT = 800


def test_no_module_but_the_command_line_is_over_800_lines():
    """A module over 800 lines does several jobs (issue 25): split it by job. cli.py is the exception: one thin
    function per command, each reading like the others."""
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINES_LIMIT
    }
    assert {name: n for name, n in long.items() if name != "builder/cli.py"} == {}

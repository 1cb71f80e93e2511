"""Versioned, reproducible releases under releases/<VERSION>/, with a manifest and a changelog.

A release is the dataset folder (card + Parquet per split) built from the committed snapshot,
plus `manifest.json`: versions, hashes of the inputs, counts per split and label, agreement, the
test articles, and the sha256 of every file. Rebuilding from the same inputs gives byte-identical
files, the manifest included.

Manifest formats. Format 1 (release 1.0.0; no `manifest_format` field): `dataset`, `version`,
`builder_version`, `hashes` (label scheme, labeling config, guidelines, snapshot),
`split_proportions`, `frozen_test_articles`, `splits`, `agreement`, `files`. Format 2 (every new
release) adds `manifest_format: 2`, `hashes.project_file` (sha256 of the project file's bytes, so
every setting that changes the output counts), `pseudonym_scheme` (the scheme of the annotator
names in the records, `builder.pseudonyms.scheme_of`; format 1 means `LEGACY_SCHEME`) and
`previous` (the version and manifest sha256 of the release before it, or null). Format 3 adds
`dataset_format` (the shape of the records and Parquet columns, `builder.model.DATASET_FORMAT`: 2
adds `stance_distribution`; formats 1 and 2 mean dataset format 1), and what the card reports on
quality control: `aggregation` (majority or dawid-skene), `gold` (`rate`, and `questions_left_out`:
the gold questions the snapshot held, never in the dataset) and `quality` (the summary of
builder.records.quality: per-annotator gold accuracy, anchoring rate, flagged annotators; null when
not measured). Format 4 adds `predictions`: the pre-annotations annotators were shown, from the
snapshot's predictions (`tasks`, `tasks_with` a prediction, and `model_versions`: tasks per model
version, builder.dataset.card.prediction_counts), which the card also states. Format 5: the release
holds `croissant.json` (Croissant 1.0 metadata with the Responsible-AI fields, builder.dataset.croissant;
hashed in `files` like every file, and required there) and its splits keep near-duplicate articles
together. Format 6 adds `split_method` (builder.dataset.splits: `sentence-shares/1`, each split within one
article of its share of the sentences; every earlier release was split by `article-hash/1`), which the
card also states; `builder release` refuses a split that is empty or more than 10 points off its share
unless `[splits] allow_uneven = true`. Rebuilding an
existing release writes the format it has, dataset included (a newer
builder rebuilds an older release byte for byte); a published release never changes.

Tamper evidence (`builder verify`):
- every file's sha256 against the manifest;
- the manifest against the release's own files: records, articles, article ids, stance and entity
  counts per split, agreement and pseudonym scheme are recomputed from the Parquet files (decoded
  with their own `huggingface` features), by the same code that wrote them at release time
  (`release_summary`); `frozen_test_articles` from the earlier releases' test Parquet files;
- the manifest's input hashes, version, dataset name and split proportions against what the card
  (README.md, itself hashed in the manifest) prints;
- the chain, across all releases: each format-2 manifest records the sha256 of the previous
  release's manifest, and the CHANGELOG.md entry of each format-2 release states its own manifest's
  sha256, so a manifest edited after release no longer matches what its successor and the changelog
  recorded. The newest release is held by its changelog entry (and git) only;
- the manifest's snapshot sha256 against the snapshot file's versions in the history of HEAD (in a git
  work tree that is not a shallow clone): a release is cut from a committed snapshot.
Each mismatch is one line naming the field or file. `builder release` refuses to build on a previous
release that does not verify, and takes the frozen test articles from the earlier releases' test
Parquet files (after checking their sha256), never from a manifest's list (`frozen_test_articles`, which
`builder build` uses too).

`builder release` holds an exclusive `flock` on the project folder while it checks and writes, so two
releases at once run one after the other (the second then finds the version taken); the lock goes
with the process. It also holds the snapshot lock `builder pull` holds (builder.locks.snapshot_lock), so
a pull never replaces the snapshot while a release checks and reads it, and it builds from a private copy
of the snapshot whose bytes it has checked against HEAD: the manifest hashes exactly what was checked.
Versions are compared by Semantic Versioning 2.0.0 precedence (`version_key`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder import __version__
from builder.dataset.croissant import CROISSANT
from builder.dataset.splits import ARTICLE_HASH, SENTENCE_SHARES, SPLIT_METHODS, SPLITS, parquet_pattern
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.labeling_config import config_hash
from builder.model import DATASET_FORMAT, format_of_columns
from builder.project import Project
from builder.pseudonyms import LEGACY_SCHEME, scheme_of
from builder.resources import schema_validator

RELEASES_DIR = "releases"
MANIFEST = "manifest.json"
CHANGELOG = "CHANGELOG.md"
MANIFEST_FORMAT = 6


# --- versions ----------------------------------------------------------------------------------


def version_key(text: str):
    """A sort key with Semantic Versioning 2.0.0 precedence (pre-releases first, build metadata ignored)."""
    import semver

    if len(text) > 64:  # a folder name under releases/; semver itself sets no bound
        raise BuilderError(f"'{text[:20]}...' is not a semantic version such as 1.2.0 (at most 64 characters)")
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise BuilderError(f"{text!r} is not a semantic version such as 1.2.0 (or 1.2.0-rc.1)") from None


def _is_version(text: str) -> bool:
    import semver

    return semver.Version.is_valid(text)


def _release_folders(project: Project) -> list[str]:
    """Folders under releases/ named like a version, with or without a manifest."""
    folder = project.root / RELEASES_DIR
    return [p.name for p in folder.iterdir() if p.is_dir() and _is_version(p.name)] if folder.is_dir() else []


def releases(project: Project) -> list[str]:
    """Existing release versions, oldest first."""
    folder = project.root / RELEASES_DIR
    if not folder.is_dir():
        return []
    found = [p.name for p in folder.iterdir() if (p / MANIFEST).is_file() and _is_version(p.name)]
    return sorted(found, key=version_key)


# --- the manifest ------------------------------------------------------------------------------

_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
_SPLIT = {
    "type": "object",
    "required": ["records", "articles", "stance", "entities", "article_ids"],
    "properties": {
        "records": {"type": "integer", "minimum": 0},
        "articles": {"type": "integer", "minimum": 0},
        "stance": _COUNTS,
        "entities": _COUNTS,
        "article_ids": {"type": "array", "items": {"type": "string"}},
    },
}
_INPUTS = ["label_scheme", "labeling_config", "guidelines", "snapshot"]
MANIFEST_SCHEMA = {
    "type": "object",
    "required": [
        "dataset",
        "version",
        "builder_version",
        "hashes",
        "split_proportions",
        "frozen_test_articles",
        "splits",
        "agreement",
        "files",
    ],
    "properties": {
        "manifest_format": {"enum": list(range(1, MANIFEST_FORMAT + 1))},
        "dataset": {"type": "string"},
        "version": {"type": "string"},
        "builder_version": {"type": "string"},
        "hashes": {
            "type": "object",
            "required": _INPUTS,
            "properties": {name: _HEX64 for name in [*_INPUTS, "project_file"]},
        },
        "split_proportions": {"type": "object", "additionalProperties": {"type": "number"}},
        "frozen_test_articles": {"type": "integer", "minimum": 0},
        "splits": {"type": "object", "required": list(SPLITS), "properties": {split: _SPLIT for split in SPLITS}},
        "agreement": {"type": "object"},
        "files": {"type": "object", "additionalProperties": _HEX64},
        "pseudonym_scheme": {"type": ["string", "null"]},
        "split_method": {"enum": list(SPLIT_METHODS)},
        "dataset_format": {"type": "integer", "minimum": 1},
        "aggregation": {"type": "string"},
        "gold": {
            "type": "object",
            "required": ["rate", "questions_left_out"],
            "properties": {
                "rate": {"type": "number", "minimum": 0},
                "questions_left_out": {"type": "integer", "minimum": 0},
            },
        },
        "quality": {"type": ["object", "null"]},
        "predictions": {
            "type": "object",
            "required": ["tasks", "tasks_with", "model_versions"],
            "properties": {
                "tasks": {"type": "integer", "minimum": 0},
                "tasks_with": {"type": "integer", "minimum": 0},
                "model_versions": _COUNTS,
            },
        },
        "previous": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["version", "manifest_sha256"],
                    "properties": {"version": {"type": "string"}, "manifest_sha256": _HEX64},
                },
            ]
        },
    },
    "allOf": [
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 2}}},
            "then": {
                "required": ["pseudonym_scheme", "previous"],
                "properties": {"hashes": {"required": ["project_file"]}},
            },
        },
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 3}}},
            "then": {"required": ["dataset_format", "aggregation", "gold", "quality"]},
        },
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 4}}},
            "then": {"required": ["predictions"]},
        },
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 5}}},
            "then": {"properties": {"files": {"required": [CROISSANT]}}},
        },
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 6}}},
            "then": {"required": ["split_method"]},
        },
    ],
}


def _json_path(error) -> str:
    return (
        "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "(top level)"
    )


def load_manifest(path: Path) -> dict:
    """A manifest file, checked for shape; a corrupt one is a one-line BuilderError."""
    import jsonschema

    hint = f"restore it from git (git checkout -- {path})"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuilderError(f"{path}: not a valid JSON manifest ({exc}); {hint}") from None
    except OSError as exc:
        raise BuilderError(f"{path}: cannot read the manifest ({exc.strerror}); {hint}") from None
    if (
        isinstance(manifest, dict)
        and isinstance(manifest.get("manifest_format"), int)
        and manifest["manifest_format"] > MANIFEST_FORMAT
    ):
        raise BuilderError(
            f"{path}: manifest format {manifest['manifest_format']} is newer than builder {__version__} reads; "
            "upgrade builder"
        )
    error = jsonschema.exceptions.best_match(schema_validator(MANIFEST_SCHEMA).iter_errors(manifest))
    if error is not None:
        raise BuilderError(f"{path}: not a release manifest: {_json_path(error)}: {error.message}; {hint}")
    return manifest


def read_manifest(project: Project, version: str) -> dict:
    """The manifest of release `version` (shape checked)."""
    path = project.root / RELEASES_DIR / version / MANIFEST
    if not _is_version(version) or not path.is_file():  # a version, never a path such as ../x
        known = ", ".join(releases(project)) or "none"
        raise BuilderError(f"no release {version} in {project.root / RELEASES_DIR} (releases: {known})")
    return load_manifest(path)


def format_of(manifest: dict) -> int:
    """The manifest format (1 when the field is absent, as in release 1.0.0)."""
    return manifest.get("manifest_format", 1)


def dataset_format_of(manifest: dict) -> int:
    """The shape of a release's records and Parquet columns (1 before manifest format 3)."""
    return manifest.get("dataset_format", 1) if format_of(manifest) >= 3 else 1


def _dataset_format_for(manifest_format: int) -> int:
    """The dataset format a release of `manifest_format` is built in."""
    return DATASET_FORMAT if manifest_format >= 3 else 1


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


# --- what the Parquet files say (written, verified and compared by the same code) --------------


def _parquet_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for split in SPLITS:
        for path in sorted(folder.glob(parquet_pattern(split))):
            if not path.is_file():  # a folder or a FIFO in its place: never opened (a FIFO would hang)
                raise OSError(f"{path} is not a regular file")
            yield split, path


def _label_names(path: Path) -> tuple[list[str], list[str]]:
    """Stance and entity label names from a Parquet file's own `huggingface` features metadata."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        features = json.loads(metadata[b"huggingface"])["info"]["features"]
        return features["stance"]["names"], features["entities"]["feature"]["label"]["names"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BuilderError(
            f"{path}: no readable `huggingface` features metadata ({type(exc).__name__}: {exc})"
        ) from None


def _decoder(stance_names: list[str], entity_names: list[str]):
    """A function that turns a row's ClassLabel ids into names (a stance of -1 becomes None)."""

    def stance(i):
        return None if i is None or i < 0 else stance_names[i]

    def spans(entities):
        return [{**e, "label": entity_names[e["label"]]} for e in entities]

    def decode(row: dict) -> dict:
        if "stance" in row:
            row["stance"] = stance(row["stance"])
        if "entities" in row:
            row["entities"] = spans(row["entities"])
        if "annotations" in row:
            row["annotations"] = [
                {**a, "stance": stance(a["stance"]), "entities": spans(a["entities"])} for a in row["annotations"]
            ]
        return row

    return decode


def _read_rows(folder: Path, columns: list[str]) -> Iterator[tuple[str, dict]]:
    """(split, row) for every row of a release folder, ClassLabel ids decoded to names with each file's own features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split, path in _parquet_files(folder):
        decode = _decoder(*_label_names(path))
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000, columns=columns):
                for row in batch.to_pylist():
                    yield split, decode(row)
        except (pa.ArrowException, OSError, IndexError) as exc:
            raise BuilderError(
                f"{path}: cannot read it as this release's Parquet ({type(exc).__name__}: {exc})"
            ) from None


def _total_rows(folder: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return sum(pq.ParquetFile(path).metadata.num_rows for _, path in _parquet_files(folder))
    except (pa.ArrowException, OSError) as exc:
        raise BuilderError(f"{folder}: cannot read its Parquet files ({type(exc).__name__}: {exc})") from None


def _summarize(rows, total: int, stance_names: list[str], entity_names: list[str]) -> dict:
    """Counts per split, agreement and pseudonym scheme from decoded (split, row) pairs."""
    from builder.dataset.build import AGREEMENT_IN_CARD_LIMIT
    from builder.records.agreement import span_agreement, stance_agreement

    counts = {s: {"records": 0, "articles": set(), "stance": Counter(), "entities": Counter()} for s in SPLITS}
    annotators: set[str] = set()
    keep = 0 < total <= AGREEMENT_IN_CARD_LIMIT  # as the card: agreement on datasets up to the limit
    kept = []
    for split, row in rows:
        c = counts[split]
        c["records"] += 1
        c["articles"].add(row["article_id"])
        c["stance"]["(unresolved)" if row["stance"] is None else row["stance"]] += 1
        c["entities"].update(e["label"] for e in row["entities"])
        annotators.update(a["annotator"] for a in row["annotations"])
        if keep:
            kept.append({"stance": row["stance"], "annotations": row["annotations"]})
    splits = {
        s: {
            "records": c["records"],
            "articles": len(c["articles"]),
            "stance": dict(sorted(c["stance"].items())),
            "entities": dict(sorted(c["entities"].items())),
            "article_ids": sorted(c["articles"]),
        }
        for s, c in counts.items()
    }
    agreement = {}
    if kept:
        agreement = {"stance": stance_agreement(kept, stance_names), "entities": span_agreement(kept, entity_names)}
    return {"splits": splits, "agreement": agreement, "pseudonym_scheme": scheme_of(annotators)}


_SUMMARY_COLUMNS = ["article_id", "stance", "entities", "annotations"]


def release_summary(folder: Path, stance_names: list[str] | None = None, entity_names: list[str] | None = None) -> dict:
    """Counts per split, agreement and pseudonym scheme of a release folder, from its Parquet files."""
    files = [path for _, path in _parquet_files(folder)]
    if files and stance_names is None:
        stance_names, entity_names = _label_names(files[0])
    return _summarize(_read_rows(folder, _SUMMARY_COLUMNS), _total_rows(folder), stance_names or [], entity_names or [])


def _test_articles(project: Project, version: str) -> set[str]:
    """The article ids in release `version`'s test Parquet files, after checking their sha256."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = read_manifest(project, version)
    folder = project.root / RELEASES_DIR / version
    names = sorted(n for n in manifest["files"] if re.fullmatch(r"data/test-[^/]*\.parquet", n) and ".." not in n)
    if manifest["splits"]["test"]["records"] and not names:
        raise BuilderError(
            f"release {version}: its manifest lists no test Parquet file; run `builder verify {version}`"
        )
    articles: set[str] = set()
    for name in names:
        path = folder / name
        if not path.is_file() or sha256_file(path) != manifest["files"][name]:
            raise BuilderError(
                f"release {version}: {name} does not match its manifest, so its test articles cannot be trusted; "
                f"run `builder verify {version}`"
            )
        try:
            articles.update(pq.read_table(path, columns=["article_id"]).column("article_id").to_pylist())
        except (pa.ArrowException, OSError) as exc:  # a damaged file whose hash was recorded so
            raise BuilderError(f"release {version}: cannot read {name} ({type(exc).__name__}: {exc})") from None
    return articles


def frozen_test_articles(project: Project, version: str | None = None) -> set[str]:
    """The articles in the test split of every release before `version` (of every release: None), read from
    their test Parquet files after checking their sha256: they stay in test in every build and release
    (`build_project_dataset` reads them here, for `build`, `run` and `release` alike)."""
    frozen: set[str] = set()
    for earlier in releases(project):
        if version is None or version_key(earlier) < version_key(version):
            frozen |= _test_articles(project, earlier)
    return frozen


def build_project_dataset(project: Project, snapshot: Path, output: Path, version: str | None = None, **options):
    """The one way `build` (with `--push-to-hub`), `run` and `release` build a dataset, so `export` of a build
    too puts every article where a release would: `builder.dataset.build.build_dataset` with the test articles of
    the releases before `version` (of every release: None) kept in test (`frozen_test_articles`, read before
    any work, once the output folder is checked). `options` go to `build_dataset`."""
    from builder.dataset.build import build_dataset
    from builder.outputs import DATASET_COMMANDS, check_output_folder

    check_output_folder(output, project, fresh=version is not None, commands=DATASET_COMMANDS)  # a wrong -o first
    frozen = frozen_test_articles(project, version)
    return build_dataset(project, snapshot, output, frozen_test=frozen, version=version, **options)


def split_method_for(manifest_format: int) -> str:
    """The split method a release of `manifest_format` is cut with (builder.dataset.splits)."""
    return SENTENCE_SHARES if manifest_format >= 6 else ARTICLE_HASH


# --- building ----------------------------------------------------------------------------------


def build_release_folder(
    project: Project, version: str, output: Path, snapshot: Path | None = None, manifest_format: int | None = None
) -> dict:
    """Build the release into `output` (a fresh folder) and write its manifest; returns the manifest.

    The manifest format is `manifest_format`, else that of the existing release `version` (a rebuild
    stays byte-identical), else the current one.
    """
    key = version_key(version)
    snapshot = snapshot or project.snapshot_path
    if not snapshot.is_file():
        raise BuilderError(f"{snapshot}: no snapshot to release; run `builder pull` and commit it")
    existing = project.root / RELEASES_DIR / version / MANIFEST
    old = load_manifest(existing) if existing.is_file() else None
    if manifest_format is None:
        manifest_format = format_of(old) if old is not None else MANIFEST_FORMAT
    earlier = [v for v in releases(project) if version_key(v) < key]  # rebuilding an old release sees only its past
    facts = build_project_dataset(
        project,
        snapshot,
        output,
        version=version,
        strict=True,
        # a rebuild keeps the release's own dataset format (its shape and the aggregation of its time)
        dataset_format=dataset_format_of(old) if old is not None else _dataset_format_for(manifest_format),
        notes_predictions=manifest_format >= 4,
        current_splitter=manifest_format >= 5,
        croissant=manifest_format >= 5,
        near_duplicates=manifest_format >= 5,
        split_method=split_method_for(manifest_format),
    )
    summary = release_summary(output, project.stance_values, project.entity_values)
    manifest = {
        "dataset": project.name,
        "version": version,
        "builder_version": __version__,
        "hashes": {
            "label_scheme": project.scheme_hash(),
            "labeling_config": config_hash(project),
            "guidelines": _sha256_text(project.guidelines()),
            "snapshot": sha256_file(snapshot),
        },
        "split_proportions": project.split_proportions,
        "frozen_test_articles": facts.frozen_test,
        "splits": summary["splits"],
        "agreement": summary["agreement"],
        "files": file_hashes(output),
    }
    if manifest_format >= 2:
        previous = earlier[-1] if earlier else None
        manifest["manifest_format"] = manifest_format
        manifest["hashes"]["project_file"] = sha256_file(project.source)
        manifest["pseudonym_scheme"] = summary["pseudonym_scheme"]
        manifest["previous"] = (
            {"version": previous, "manifest_sha256": sha256_file(project.root / RELEASES_DIR / previous / MANIFEST)}
            if previous
            else None
        )
    if manifest_format >= 3:
        manifest["dataset_format"] = facts.dataset_format
        manifest["aggregation"] = project.aggregation
        manifest["gold"] = {"rate": project.gold_rate, "questions_left_out": facts.gold_questions}
        manifest["quality"] = facts.quality
    if manifest_format >= 4:
        manifest["predictions"] = facts.predictions
    if manifest_format >= 6:
        manifest["split_method"] = facts.split_method
    (output / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _git_refusal(path: Path) -> str | None:
    """Why `path` cannot be released from (not committed in git), as a one-line message; None if clean."""
    try:
        status = subprocess.run(
            ["git", "--literal-pathspecs", "status", "--porcelain", "--ignored", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "git cannot be run: releases are cut from files committed in git; install git"
    if status.returncode != 0:
        return (
            f"{path} is not in a git work tree: commit the project to git first, so the release can be rebuilt from git"
        )
    code = status.stdout[:2]
    if not code:
        return None
    if code == "??":
        return f"{path} is not committed (untracked): add and commit it first, so the release can be rebuilt from git"
    if code == "!!":
        return f"{path} is ignored by git: commit it (git add -f) first, so the release can be rebuilt from git"
    return f"{path} has uncommitted changes: commit it first, so the release can be rebuilt from git"


def _git_path(path: Path) -> str | None:
    """`path` relative to the top of its git work tree (as `HEAD:<this>` names it), or None outside one."""
    try:
        prefix = subprocess.run(
            ["git", "rev-parse", "--show-prefix"], cwd=path.parent, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return prefix.stdout.strip("\n") + path.name if prefix.returncode == 0 else None


def _sha256_at(commit: str, path: Path) -> str | None:
    """The sha256 of `path` as committed in `commit`, in its work-tree form (git's filters applied, as a
    checkout writes it); None when that commit does not hold it."""
    name = _git_path(path)
    if name is None:
        return None
    digest = hashlib.sha256()
    try:
        with subprocess.Popen(
            ["git", "cat-file", "--filters", f"{commit}:{name}"],
            cwd=path.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as show:
            for chunk in iter(lambda: show.stdout.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest() if show.returncode == 0 else None


def _committed_copy(snapshot: Path, copy: Path) -> str:
    """Copy `snapshot` to the private file `copy`, checking that the copied bytes are those committed at HEAD;
    returns their sha256.

    The release is built from `copy` only, so it hashes and reads the very bytes that were checked: a
    snapshot replaced after `git status` looked at it (by an editor, a checkout, or a pull that did not
    take the snapshot lock) is refused, never released under a hash that no commit holds."""
    digest = hashlib.sha256()
    try:
        with open(snapshot, "rb") as source, open(copy, "xb") as target:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
                target.write(chunk)
    except OSError as exc:
        raise BuilderError(f"{snapshot}: cannot read it ({exc.strerror}); nothing was released") from None
    if _sha256_at("HEAD", snapshot) != digest.hexdigest():
        raise BuilderError(
            f"{snapshot} changed while the release read it: the bytes read are not those committed at HEAD; "
            "commit the snapshot you mean to release and run the release again"
        )
    return digest.hexdigest()


def snapshot_commit_problems(project: Project, manifest: dict) -> list[str]:
    """The manifest's snapshot hash against the snapshot file's versions in git (HEAD's history, every branch
    merged into it): a release is cut from a committed snapshot, so some commit holds those bytes.

    Outside a git work tree, or in a shallow clone (whose history is cut off), this cannot be checked and
    nothing is reported; `builder release` itself refuses to release outside git."""
    snapshot = project.snapshot_path
    name = _git_path(snapshot)
    if name is None:
        return []
    try:
        shallow = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"], cwd=snapshot.parent, capture_output=True, text=True
        )
        commits = subprocess.run(
            ["git", "--literal-pathspecs", "rev-list", "--full-history", "HEAD", "--", snapshot.name],
            cwd=snapshot.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return []
    if shallow.stdout.strip() != "false" or commits.returncode != 0:
        return []
    recorded = manifest["hashes"]["snapshot"]
    if any(_sha256_at(commit, snapshot) == recorded for commit in commits.stdout.split()):
        return []
    return [
        f"hashes.snapshot: no commit in the history of HEAD holds {name} with the manifest's sha256 "
        f"{recorded[:12]}: the release was not cut from a committed snapshot"
    ]


@contextmanager
def _release_lock(project: Project):
    """An exclusive flock on the project folder (released on exit, and by the kernel if the process dies)."""
    fd = os.open(project.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def uneven_release_splits(project: Project, manifest: dict) -> list[str]:
    """The splits of a new release that are empty or far off their share (builder.dataset.splits.uneven_splits),
    unless the project says they are meant (`[splits] allow_uneven = true`): `builder release` refuses them."""
    from builder.dataset.splits import uneven_splits

    if project.allow_uneven_splits:
        return []
    sentences = {split: manifest["splits"][split]["records"] for split in SPLITS}
    return uneven_splits(sentences, manifest["split_proportions"])


@dataclass
class ReleaseResult:
    version: str
    folder: Path
    manifest: dict
    previous: str | None
    changelog_entry: str


def cut_release(project: Project, version: str, log: Callable[[str], None] = lambda message: None) -> ReleaseResult:
    """Guarded release: refuses, writing nothing, on a bad or taken version, an invalid snapshot, a
    project file, guidelines or snapshot not committed in git, or a previous release that does not verify.

    It holds the snapshot lock that `builder pull` holds (builder.locks.snapshot_lock), so a pull waits
    for it and it for a pull, and it builds from a private copy of the snapshot checked against HEAD."""
    from builder.locks import snapshot_lock

    key = version_key(version)
    parent = project.root / RELEASES_DIR
    folder = parent / version
    snapshot = project.snapshot_path
    pulling = lambda pid: log(f"waiting for a builder pull or release that is using {snapshot} (pid {pid})")  # noqa: E731
    with _release_lock(project), snapshot_lock(snapshot, on_wait=pulling):
        existing = releases(project)
        if folder.exists():
            raise BuilderError(f"release {version} exists already ({folder}); choose a new version")
        if existing and key <= version_key(existing[-1]):
            raise BuilderError(f"version {version} is not greater than the last release {existing[-1]}")
        if not snapshot.is_file():
            raise BuilderError(f"{snapshot}: no snapshot to release; run `builder pull` and commit it")
        project.guidelines()  # a missing guidelines file is a ConfigError naming the setting
        for path in (project.source, project.guidelines_path, snapshot):
            refusal = _git_refusal(Path(path))
            if refusal:
                raise BuilderError(refusal)
        previous = existing[-1] if existing else None
        if previous:
            problems = verify_release(project, previous)
            if problems:
                raise BuilderError(
                    f"release {previous} does not verify ({len(problems)} problem(s), first: {problems[0]}); "
                    f"run `builder verify {previous}` and restore it from git before releasing on top of it"
                )
        created_parent = not parent.exists()
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=parent))
        tmp_changelog: Path | None = None
        done = False
        try:
            target = staging / version
            copy = staging / snapshot.name
            _committed_copy(snapshot, copy)
            try:
                manifest = build_release_folder(project, version, target, copy, manifest_format=MANIFEST_FORMAT)
            except BuilderError as exc:  # a message names the snapshot, never the private copy
                raise type(exc)(str(exc).replace(str(copy), str(snapshot))) from None
            uneven = uneven_release_splits(project, manifest)
            if uneven:
                raise BuilderError(
                    f"{uneven[0]}; set `[splits] allow_uneven = true` in {project.source} if that is meant"
                )
            entry = changelog_entry(project, previous, version, manifest, target)
            changelog = project.root / CHANGELOG
            old = (
                changelog.read_text(encoding="utf-8")
                if changelog.is_file()
                else "# Changelog\n\nGenerated by `builder release`; do not edit by hand.\n"
            )
            head, _, rest = old.partition("\n## ")
            new_text = head.rstrip("\n") + "\n\n" + entry + ("\n## " + rest if rest else "")
            fd, name = tempfile.mkstemp(prefix=f".{CHANGELOG}.", suffix=".tmp", dir=project.root)
            tmp_changelog = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(new_text)
            os.chmod(tmp_changelog, (changelog.stat().st_mode & 0o777) if changelog.is_file() else 0o644)
            os.chmod(target, 0o755)
            os.replace(target, folder)
            try:
                os.replace(tmp_changelog, changelog)
            except BaseException:
                os.replace(folder, target)  # no release without its changelog entry
                raise
            done = True
            return ReleaseResult(version, folder, manifest, previous, entry)
        except OSError as exc:
            raise BuilderError(f"cannot write release {version} ({exc}); nothing was released") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if tmp_changelog is not None:
                tmp_changelog.unlink(missing_ok=True)
            if created_parent and not done and not any(parent.iterdir()):
                parent.rmdir()


# --- verifying ---------------------------------------------------------------------------------

_CARD = {
    "version": r"dataset version (\S+?)\.\s",
    "builder_version": r"Built with builder (\S+?),",
    "dataset": r'hub-id/of/([^"]+)"',
    "split_proportions": r"\(proportions (\{[^}]*\})\)",
    "hashes.labeling_config": r"labeling config\s+\(sha256 `([0-9a-f]+)`\)",
    "hashes.guidelines": r"annotation guidelines\s+\(sha256 `([0-9a-f]+)`\)",
    "hashes.snapshot": r"snapshot\s+\(sha256 `([0-9a-f]+)`\)",
    "hashes.label_scheme": r"Label scheme sha256 `([0-9a-f]+)`",
}


# What the card of a format-3 release prints about quality control.
_CARD_3 = {
    "aggregation": r"Aggregation method: `([^`]+)`",
    "gold.rate": r"gold rate (\S+) of the pushed tasks",
    "gold.questions_left_out": r"; (\d+) gold question\(s\) in the snapshot",
}


# What the card of a format-4 release prints about pre-annotations (and `model_versions`, each with its count).
_CARD_4 = {
    "predictions.tasks_with": r"pre-annotations shown to annotators on (\d+) of the \d+ tasks",
    "predictions.tasks": r"pre-annotations shown to annotators on \d+ of the (\d+) tasks",
}


# What the card of a format-6 release prints about its splits.
_CARD_6 = {"split_method": r"[Ss]plit method `([^`]+)`"}


def _card_problems(manifest: dict, card: str) -> list[str]:
    import ast

    problems = []
    if format_of(manifest) >= 4:
        problems += _card_prediction_problems(manifest["predictions"], card)
    patterns = {
        **_CARD,
        **(_CARD_3 if format_of(manifest) >= 3 else {}),
        **(_CARD_4 if format_of(manifest) >= 4 else {}),
        **(_CARD_6 if format_of(manifest) >= 6 else {}),
    }
    for field, pattern in patterns.items():
        match = re.search(pattern, card)
        value = manifest
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if match is None:
            problems.append(
                f"{field}: the card (README.md) does not state it, so the manifest's value cannot be checked"
            )
            continue
        printed = match[1]
        if field.startswith("hashes."):
            ok = isinstance(value, str) and value.startswith(printed)
        elif field == "split_proportions":
            try:
                ok = ast.literal_eval(printed) == value
            except (ValueError, SyntaxError):
                ok = False
        elif field == "gold.rate":
            ok = f"{value:g}" == printed if isinstance(value, (int, float)) else False
        elif field in ("gold.questions_left_out", *_CARD_4):
            ok = str(value) == printed
        else:
            ok = printed == value
        if not ok:
            problems.append(f"{field}: the manifest says {value!r} but the card (README.md) states {printed!r}")
    return problems


def _card_prediction_problems(predictions: dict, card: str) -> list[str]:
    """The model versions the manifest records against those the card states, with their task counts."""
    from builder.markup import uncode

    stated = {uncode(version): int(n) for version, n in re.findall(r"`([^`]+)`, [^,`]+, on (\d+)", card)}
    recorded = predictions.get("model_versions") or {}
    if stated != recorded:
        return [
            f"predictions.model_versions: the manifest says {recorded!r} but the card (README.md) states {stated!r}"
        ]
    return []


def _flatten(value, prefix: str) -> dict:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def _summary_problems(manifest: dict, summary: dict) -> list[str]:
    problems = []
    for split in SPLITS:
        claimed, actual = manifest["splits"][split], summary["splits"][split]
        for key in ("records", "articles", "stance", "entities"):
            if claimed.get(key) != actual[key]:
                problems.append(
                    f"splits.{split}.{key}: the manifest says {claimed.get(key)} "
                    f"but the Parquet files give {actual[key]}"
                )
        if claimed.get("article_ids") != actual["article_ids"]:
            listed, found = set(claimed.get("article_ids") or []), set(actual["article_ids"])
            detail = (
                "; ".join(
                    part
                    for part in (
                        f"not in the Parquet files: {', '.join(sorted(listed - found))}" if listed - found else "",
                        f"missing from the manifest: {', '.join(sorted(found - listed))}" if found - listed else "",
                    )
                    if part
                )
                or "same ids in another order or repeated"
            )
            problems.append(
                f"splits.{split}.article_ids: the manifest's list differs from the Parquet files ({detail})"
            )
    claimed, actual = _flatten(manifest["agreement"], "agreement"), _flatten(summary["agreement"], "agreement")
    for path in sorted(set(claimed) | set(actual)):
        if claimed.get(path, "(absent)") != actual.get(path, "(absent)"):
            problems.append(
                f"{path}: the manifest says {claimed.get(path, '(absent)')} "
                f"but the Parquet files give {actual.get(path, '(absent)')}"
            )
    if format_of(manifest) >= 2 and manifest["pseudonym_scheme"] != summary["pseudonym_scheme"]:
        problems.append(
            f"pseudonym_scheme: the manifest says {manifest['pseudonym_scheme']} "
            f"but the annotator names are {summary['pseudonym_scheme']}"
        )
    return problems


def _column_problems(manifest: dict, folder: Path) -> list[str]:
    """The Parquet files' columns against the manifest's dataset format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected = dataset_format_of(manifest)
    problems = []
    for _, path in _parquet_files(folder):
        try:
            columns = pq.read_schema(path).names
        except (pa.ArrowException, OSError) as exc:
            raise BuilderError(f"{path}: cannot read its schema ({type(exc).__name__}: {exc})") from None
        found = format_of_columns(columns)
        if found != expected:
            shape = f"dataset format {found}" if found else "columns of no dataset format"
            problems.append(
                f"{path.relative_to(folder)}: the manifest says dataset format {expected} but the file has {shape}"
            )
    return problems


def _changelog_entries(project: Project) -> dict[str, str]:
    """CHANGELOG.md's entries by version: each `## VERSION` heading after a blank line, as `builder release`
    writes them. A `## ` line inside an entry (an article id with a newline, written raw by a builder from
    before builder.markup) is part of that entry, not an entry of its own."""
    path = project.root / CHANGELOG
    if not path.is_file():
        return {}
    parts = path.read_text(encoding="utf-8", errors="replace").split("\n## ")
    entries: dict[str, str] = {}
    last = None
    for before, section in zip(parts, parts[1:]):
        version, _, body = section.partition("\n")
        version = version.strip()
        if last is None or (before.endswith("\n") and _is_version(version)):
            last = version
            entries.setdefault(version, body)
        else:
            entries[last] += "\n## " + section
    return entries


_STATED = re.compile(r"manifest sha256 `([0-9a-f]{64})`")


def _chain_problems(project: Project) -> list[str]:
    """Each format-2 manifest against its successor's record of it and its CHANGELOG.md entry."""
    problems = []
    versions = releases(project)
    digests = {v: sha256_file(project.root / RELEASES_DIR / v / MANIFEST) for v in versions}
    entries = _changelog_entries(project)
    for name in sorted(set(_release_folders(project)) - set(versions)):
        problems.append(f"release {name}: {RELEASES_DIR}/{name} has no {MANIFEST}: restore it from git")
    for name in sorted(set(entries) - set(versions)):
        problems.append(
            f"release {name}: {CHANGELOG} has an entry for it, but {RELEASES_DIR}/{name}/{MANIFEST} is missing: "
            "restore it from git"
        )
    for i, version in enumerate(versions):
        try:
            manifest = read_manifest(project, version)
        except BuilderError as exc:
            problems.append(f"release {version}: {exc}")
            continue
        if format_of(manifest) < 2:
            continue
        before = versions[i - 1] if i else None
        recorded = manifest["previous"]
        if recorded is None and before:
            problems.append(f"release {version}: its manifest names no previous release, but {before} precedes it")
        elif recorded is not None and recorded["version"] != before:
            problems.append(
                f"release {version}: its manifest names {recorded['version']} as previous release, "
                f"but the release before it is {before or '(none)'}"
            )
        elif recorded is not None and recorded["manifest_sha256"] != digests[before]:
            problems.append(
                f"release {before}: manifest.json sha256 {digests[before][:12]} "
                f"differs from the {recorded['manifest_sha256'][:12]} "
                f"that release {version} recorded: the manifest was changed after {version} was cut"
            )
        stated = _STATED.search(entries.get(version, ""))
        if stated is None:
            problems.append(f"release {version}: {CHANGELOG} has no entry stating its manifest sha256")
        elif stated[1] != digests[version]:
            problems.append(
                f"release {version}: manifest.json sha256 {digests[version][:12]} differs from the {stated[1][:12]} "
                f"that {CHANGELOG} states: the manifest was changed after release"
            )
    return problems


def verify_release(project: Project, version: str) -> list[str]:
    """Problems found by checking a release on disk against its manifest, and the chain of manifests (empty: intact)."""
    manifest = read_manifest(project, version)
    folder = project.root / RELEASES_DIR / version
    actual = file_hashes(folder)
    problems = []
    if manifest["version"] != version:
        problems.append(f"version: the manifest says {manifest['version']} but the release is in {folder}")
    for name, digest in manifest["files"].items():
        if name not in actual:
            problems.append(f"{name}: missing")
        elif actual[name] != digest:
            problems.append(f"{name}: sha256 {actual[name][:12]} differs from the manifest's {digest[:12]}")
    problems += [f"{name}: not in the manifest" for name in actual if name not in manifest["files"]]
    try:
        problems += _summary_problems(manifest, release_summary(folder))
        problems += _column_problems(manifest, folder)
    except BuilderError as exc:
        problems.append(f"the Parquet files cannot be read to check the manifest's counts: {exc}")
    try:
        frozen = len(frozen_test_articles(project, version))
        if manifest["frozen_test_articles"] != frozen:
            problems.append(
                f"frozen_test_articles: the manifest says {manifest['frozen_test_articles']} "
                f"but the earlier releases' test files hold {frozen}"
            )
    except BuilderError as exc:
        problems.append(f"frozen_test_articles: cannot be checked: {exc}")
    card = folder / "README.md"
    if card.is_file():
        problems += _card_problems(manifest, card.read_text(encoding="utf-8", errors="replace"))
    problems += snapshot_commit_problems(project, manifest)
    problems += _chain_problems(project)
    return problems


# --- comparing releases -------------------------------------------------------------------


_COMPARE_COLUMNS = ["id", "article_id", "text", "stance", "entities", "annotations"]


def _release_rows(folder: Path) -> tuple[dict[str, dict], dict, dict[str, str]]:
    """Rows by id, decoded with the folder's own features, the summary of the folder, and each article's split."""
    pairs = list(_read_rows(folder, _COMPARE_COLUMNS))
    files = [path for _, path in _parquet_files(folder)]
    names = _label_names(files[0]) if files else ([], [])
    summary = _summarize(iter(pairs), len(pairs), *names)
    return {row["id"]: row for _, row in pairs}, summary, {row["article_id"]: split for split, row in pairs}


def _scheme(manifest: dict) -> str | None:
    return manifest.get("pseudonym_scheme") if format_of(manifest) >= 2 else LEGACY_SCHEME


def quality_control(manifest: dict) -> dict | None:
    """What a manifest records about quality control (format 3 on), or None (an older release)."""
    if format_of(manifest) < 3:
        return None
    quality = manifest.get("quality") or {}
    accuracies = sorted(v for v in quality.get("gold_accuracy") or [] if v is not None)
    return {
        "aggregation": manifest["aggregation"],
        "gold_rate": manifest["gold"]["rate"],
        "gold_questions": manifest["gold"]["questions_left_out"],
        "measured": bool(manifest.get("quality")),
        "annotators_with_gold": len(accuracies),
        "median_gold_accuracy": _median(accuracies),
        "min_gold_accuracy": accuracies[0] if accuracies else None,
        "anchoring_rate": quality.get("anchoring_rate"),
        "flagged": quality.get("flagged"),
    }


def _median(values: list) -> float | None:
    import statistics

    return round(statistics.median(values), 3) if values else None


def compare(
    project: Project, a: str, b: str | None, b_folder: Path | None = None, b_manifest: dict | None = None
) -> dict:
    """What changed from release `a` to release `b` (or to a folder being released).

    Each release is read from its own Parquet files and decoded with its own features, so labels are
    compared by name even when the label scheme's order changed between them.
    """
    folder_a = project.root / RELEASES_DIR / a
    folder_b = b_folder or project.root / RELEASES_DIR / b
    manifest_a = read_manifest(project, a)
    manifest_b = b_manifest or read_manifest(project, b)
    rows_a, summary_a, split_a = _release_rows(folder_a)
    rows_b, summary_b, split_b = _release_rows(folder_b)

    def stance(row):
        return row["stance"] if row["stance"] is not None else "(unresolved)"

    def spans(row):
        return {(e["start"], e["end"], e["label"], e["text"]) for e in row["entities"]}

    added = sorted(set(rows_b) - set(rows_a))
    removed = sorted(set(rows_a) - set(rows_b))
    common = sorted(set(rows_a) & set(rows_b))
    relabelled = [(i, stance(rows_a[i]), stance(rows_b[i])) for i in common if stance(rows_a[i]) != stance(rows_b[i])]
    ent_added, ent_removed = [], []
    for i in common:
        before, after = spans(rows_a[i]), spans(rows_b[i])
        ent_added += [(i, s) for s in sorted(after - before)]
        ent_removed += [(i, s) for s in sorted(before - after)]
    articles_a = {r["article_id"] for r in rows_a.values()}
    articles_b = {r["article_id"] for r in rows_b.values()}

    def distribution(summary, key):
        total = Counter()
        for split in SPLITS:
            total.update(summary["splits"][split][key])
        return total

    deltas = {}
    for key in ("stance", "entities"):
        da, db = distribution(summary_a, key), distribution(summary_b, key)
        deltas[key] = {label: (da.get(label, 0), db.get(label, 0)) for label in sorted(set(da) | set(db))}
    agreement = {}
    for name, path in (
        ("krippendorff_alpha", ("stance", "krippendorff_alpha")),
        ("fleiss_kappa", ("stance", "fleiss_kappa")),
        ("span_f1", ("entities", "f1")),
    ):
        agreement[name] = tuple(s["agreement"].get(path[0], {}).get(path[1]) for s in (summary_a, summary_b))
    return {
        "from": a,
        "to": b or manifest_b["version"],
        "sentences_added": added,
        "sentences_removed": removed,
        "articles_added": sorted(articles_b - articles_a),
        "articles_removed": sorted(articles_a - articles_b),
        "articles_moved": [
            (a, split_a[a], split_b[a]) for a in sorted(set(split_a) & set(split_b)) if split_a[a] != split_b[a]
        ],
        "stance_relabelled": relabelled,
        "entities_added": ent_added,
        "entities_removed": ent_removed,
        "label_deltas": deltas,
        "agreement": agreement,
        "pseudonym_scheme": (_scheme(manifest_a), _scheme(manifest_b)),
        "quality_control": (quality_control(manifest_a), quality_control(manifest_b)),
        "texts": {
            i: (rows_b.get(i) or rows_a.get(i))["text"]
            for i in added[:3] + removed[:3] + [r[0] for r in relabelled[:3]]
        },
    }


def format_comparison(diff: dict, examples: int = 3) -> str:
    """The diff as Markdown lines (CHANGELOG.md and `builder diff`); ids and texts through builder.markup."""
    from builder.markup import code, quoted, single_quoted

    lines = []
    old_scheme, new_scheme = diff.get("pseudonym_scheme", (None, None))
    if old_scheme and new_scheme and old_scheme != new_scheme:
        lines.append(
            f"- annotator pseudonyms changed ({old_scheme} -> {new_scheme}): "
            f"the same person has a new name from {diff['to']} on; "
            "these are not new annotators"
        )
    lines += [
        f"- sentences: +{len(diff['sentences_added'])} / -{len(diff['sentences_removed'])}; "
        f"articles: +{len(diff['articles_added'])} / -{len(diff['articles_removed'])}"
        + (f" (added: {', '.join(map(code, diff['articles_added'][:examples]))})" if diff["articles_added"] else ""),
    ]
    moved = diff.get("articles_moved", [])
    if moved:  # every one named: an article that changed split is what a user of the splits must know
        lines.append(
            f"- articles moved to another split: {len(moved)} ("
            + ", ".join(f"{code(article)} {before} -> {after}" for article, before, after in moved)
            + "); an article moves when its group of articles sharing text or near-duplicates changed, "
            "when the split proportions or the dataset name did, or (split method sentence-shares/1) when "
            "the articles added or removed moved a cut past it"
        )
    lines.append(f"- stance relabelled: {len(diff['stance_relabelled'])}")
    for sid, old, new in diff["stance_relabelled"][:examples]:
        lines.append(f"  - {code(sid)} {old} -> {new}: {quoted(diff['texts'][sid][:90])}")
    for sid in diff["sentences_added"][:examples]:
        lines.append(f"  - added {code(sid)}: {quoted(diff['texts'][sid][:90])}")
    lines.append(
        f"- entities: +{len(diff['entities_added'])} / -{len(diff['entities_removed'])} "
        "(a changed span counts as one of each)"
    )
    for sid, (start, end, label, text) in diff["entities_added"][:examples]:
        lines.append(f"  - {code(sid)} +{label} {single_quoted(text)} [{start}:{end}]")
    for sid, (start, end, label, text) in diff["entities_removed"][:examples]:
        lines.append(f"  - {code(sid)} -{label} {single_quoted(text)} [{start}:{end}]")
    for key, values in diff["label_deltas"].items():
        parts = [f"{label} {a}->{b}" for label, (a, b) in values.items() if a != b]
        lines.append(f"- {key} distribution: " + (", ".join(parts) if parts else "unchanged"))
    parts = [f"{name} {a}->{b}" for name, (a, b) in diff["agreement"].items()]
    lines.append("- agreement: " + ", ".join(parts))
    lines += _quality_lines(*diff.get("quality_control", (None, None)))
    return "\n".join(lines)


def _quality_lines(old: dict | None, new: dict | None) -> list[str]:
    """The diff's quality-control lines; none between two releases from before manifest format 3."""
    if old is None and new is None:
        return []
    # an older release was aggregated by majority, had no gold questions and measured nothing
    old = old or {"aggregation": "majority", "gold_rate": 0, "gold_questions": 0, "measured": False}
    new = new or {"aggregation": "majority", "gold_rate": 0, "gold_questions": 0, "measured": False}

    def change(key: str, fmt=str) -> str:
        def show(value) -> str:
            return "n/a" if value is None else fmt(value)

        a, b = old.get(key), new.get(key)
        return f"{show(a)} (unchanged)" if a == b else f"{show(a)} -> {show(b)}"

    lines = [
        f"- aggregation: {change('aggregation')}",
        f"- gold questions: rate {change('gold_rate', lambda v: f'{v:g}')}; "
        f"left out of the dataset {change('gold_questions')}",
    ]
    if old["measured"] or new["measured"]:
        lines.append(
            f"- annotators' gold accuracy: median {change('median_gold_accuracy')}, "
            f"lowest {change('min_gold_accuracy')}, annotators with gold answers {change('annotators_with_gold')}, "
            f"flagged {change('flagged')}; anchoring rate {change('anchoring_rate')}"
        )
    else:
        lines.append("- annotators' gold accuracy and anchoring rate: not measured")
    return lines


def changelog_entry(project: Project, previous: str | None, version: str, manifest: dict, folder: Path) -> str:
    """The CHANGELOG.md section of a release built in `folder`, compared with the previous one."""
    totals = {s: manifest["splits"][s]["records"] for s in SPLITS}
    header = (
        f"## {version}\n\nDataset {project.name} {version}, builder {__version__}, "
        f"snapshot sha256 `{manifest['hashes']['snapshot'][:16]}`; "
        + ", ".join(f"{s} {n}" for s, n in totals.items())
        + ".\n"
    )
    if format_of(manifest) >= 2:
        header += (
            f"\nRelease manifest sha256 `{sha256_file(folder / MANIFEST)}` (`builder verify {version}` checks it).\n"
        )
    if previous is None:
        return header + "\nFirst release.\n"
    diff = compare(project, previous, None, folder, manifest)
    return header + f"\nCompared with {previous}:\n\n" + format_comparison(diff) + "\n"

"""Verifying a release (`builder verify`): the checks that make an edited release visible.

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
- the manifest's snapshot sha256 (and, format 7 on, those of the withheld suggestions and the gold file)
  against the file's versions in the history of HEAD (in a git work tree that is not a shallow clone): a
  release is cut from committed files.
Each mismatch is one line naming the field or file. `builder release` refuses to build on a previous
release that does not verify, and takes the frozen test articles from the earlier releases' test
Parquet files (after checking their sha256), never from a manifest's list (`frozen_test_articles`, which
`builder build` uses too).
"""

from __future__ import annotations

import re
from pathlib import Path

from builder.dataset.release.manifest import (
    CHANGELOG,
    MANIFEST,
    RELEASES_DIR,
    _is_version,
    _release_folders,
    dataset_format_of,
    file_hashes,
    format_of,
    read_manifest,
    releases,
)
from builder.dataset.release.provenance import input_commit_problems
from builder.dataset.release.summary import _parquet_files, frozen_test_articles, release_summary
from builder.dataset.splits import SPLITS
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.model import formats_of_columns, lead_time_dtype
from builder.project import Project

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


def _column_problems(manifest: dict, folder: Path, project: Project | None = None) -> list[str]:
    """The Parquet files' columns against the manifest's dataset format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected = dataset_format_of(manifest)
    problems = []
    for _, path in _parquet_files(folder):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise BuilderError(f"{path}: cannot read its schema ({type(exc).__name__}: {exc})") from None
        stored = _lead_time_type(schema)  # formats 3 and 4 have the same columns; lead_time's type tells them apart
        # a stance-only or entities-only project's columns are its scheme's (builder.model.record_shape)
        columns = formats_of_columns(schema.names) or formats_of_columns(schema.names, project)
        found = [f for f in columns if lead_time_dtype(f) == stored]
        if expected not in found:
            shape = f"dataset format {found[0]}" if found else "columns of no dataset format"
            problems.append(
                f"{path.relative_to(folder)}: the manifest says dataset format {expected} but the file has {shape}"
            )
    return problems


def _lead_time_type(schema) -> str | None:
    """The type of `annotations[].lead_time` in a Parquet schema as a datasets dtype (float32, float64), or None."""
    try:
        kind = str(schema.field("annotations").type.value_type.field("lead_time").type)
    except (KeyError, AttributeError):
        return None
    return {"float": "float32", "double": "float64"}.get(kind, kind)


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
        problems += _column_problems(manifest, folder, project)
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
    problems += input_commit_problems(project, manifest)
    problems += _chain_problems(project)
    return problems

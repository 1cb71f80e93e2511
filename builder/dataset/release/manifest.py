"""Release versions (folders under releases/, Semantic Versioning 2.0.0 precedence: `version_key`) and the
release manifest: its formats, its JSON Schema, reading it, and the sha256 of every file it lists.

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
unless `[splits] allow_uneven = true`. Format 7 adds `hashes.withheld_suggestions` and `hashes.gold` (each only
when the project has the file: annotations/withheld-suggestions.jsonl, `[quality] gold`): they change the
control arm's figures and gold accuracy, so they are released as committed at HEAD like the snapshot, and a
rebuild reads them as the commit holding the hashed bytes holds them. Format 9: `croissant.json` is Croissant 1.1
with provenance (who or what made each label, each sentence derived from its article, the licence per article:
builder.dataset.label_provenance), the release may hold `accepted-suggestions.parquet`, and the card has a data
statement (builder.dataset.data_statement), says `machine-generated` where suggestions were shown and has an
"Agreement evidence" section (every agreement and quality figure with its 95% interval and n, Gwet's AC1,
Krippendorff's unitizing alpha, the span disagreement breakdown and diagnostics; builder.dataset.evidence_card).
Format 10: every figure of the card's Agreement and Quality control sections carries its 95% interval and
n too (`quality` adds `gold_accuracy_figures`, `anchoring` and, per control arm, `intervals`), and the manifest
adds `agreement_evidence` (builder.dataset.evidence_card.evidence_record: the figures of the "Agreement
evidence" section, Gwet's AC1 and unitizing alpha included, each {value, low, high, n}; null over 100,000
sentences), which `builder diff` compares.
Rebuilding an existing release writes the format it has, dataset included (a newer builder rebuilds an older
release byte for byte); a published release never changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from builder import __version__
from builder.dataset.croissant import CROISSANT
from builder.dataset.splits import SPLIT_METHODS, SPLITS
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.model import DATASET_FORMAT
from builder.project import Project
from builder.resources import schema_validator

RELEASES_DIR = "releases"
MANIFEST = "manifest.json"
CHANGELOG = "CHANGELOG.md"
MANIFEST_FORMAT = 10


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
            "properties": {name: _HEX64 for name in [*_INPUTS, "project_file", "withheld_suggestions", "gold"]},
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
        # format 8 on: the splitter the release was cut with, as its card and croissant.json name it
        "splitter": {"type": "object", "required": ["name", "summary"]},
        "gold": {
            "type": "object",
            "required": ["rate", "questions_left_out"],
            "properties": {
                "rate": {"type": "number", "minimum": 0},
                "questions_left_out": {"type": "integer", "minimum": 0},
            },
        },
        "quality": {"type": ["object", "null"]},
        "agreement_evidence": {"type": ["object", "null"]},
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
        {
            "if": {"required": ["manifest_format"], "properties": {"manifest_format": {"minimum": 10}}},
            "then": {"required": ["agreement_evidence"]},
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

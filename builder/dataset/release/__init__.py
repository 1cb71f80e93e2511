"""Versioned, reproducible releases under releases/<VERSION>/, with a manifest and a changelog.

A release is the dataset folder (card + Parquet per split) built from the committed snapshot,
plus `manifest.json`: versions, hashes of the inputs, counts per split and label, agreement, the
test articles, and the sha256 of every file. Rebuilding from the same inputs gives byte-identical
files, the manifest included.

One module a job, each saying why it does what it does: manifest.py (versions, the manifest's formats
and schema), summary.py (what the Parquet files say, written, verified and compared by the same code),
provenance.py (the snapshot and other inputs a release is cut from, as git holds them), cut.py (`builder release`, and
`build_project_dataset` for every command that builds), verify.py (`builder verify`) and diff.py
(`builder diff` and the changelog). The public names are importable from here.
"""

from builder.dataset.release.cut import (
    ReleaseResult,
    build_project_dataset,
    build_release_folder,
    cut_release,
    split_method_for,
    uneven_release_splits,
)
from builder.dataset.release.diff import changelog_entry, compare, format_comparison, quality_control
from builder.dataset.release.manifest import (
    CHANGELOG,
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_SCHEMA,
    RELEASES_DIR,
    dataset_format_of,
    file_hashes,
    format_of,
    load_manifest,
    read_manifest,
    releases,
    version_key,
)
from builder.dataset.release.provenance import (
    input_commit_problems,
    snapshot_commit_problems,
    unchecked_history_note,
)
from builder.dataset.release.summary import frozen_test_articles, release_summary
from builder.dataset.release.verify import verify_release

__all__ = [
    "CHANGELOG",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MANIFEST_SCHEMA",
    "RELEASES_DIR",
    "ReleaseResult",
    "build_project_dataset",
    "build_release_folder",
    "changelog_entry",
    "compare",
    "cut_release",
    "dataset_format_of",
    "file_hashes",
    "format_comparison",
    "format_of",
    "frozen_test_articles",
    "load_manifest",
    "quality_control",
    "read_manifest",
    "release_summary",
    "releases",
    "input_commit_problems",
    "snapshot_commit_problems",
    "unchecked_history_note",
    "split_method_for",
    "uneven_release_splits",
    "verify_release",
    "version_key",
]

"""Versioned, reproducible releases under releases/<VERSION>/, with a manifest and a changelog.

A release is the dataset folder (card + Parquet per split) built from the committed snapshot,
plus `manifest.json`: versions, hashes of the inputs (label scheme, labeling config, guidelines,
snapshot), counts per split and label, agreement, the test articles, and the sha256 of every
file. Rebuilding from the same inputs gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from builder import __version__
from builder.errors import BuilderError
from builder.labelstudio.config import config_hash
from builder.scheme import Project
from builder.splits import SPLITS

RELEASES_DIR = "releases"
MANIFEST = "manifest.json"
CHANGELOG = "CHANGELOG.md"
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$")


def parse_version(text: str):
    """A semantic version (MAJOR.MINOR.PATCH[-pre]) as a comparable `packaging` Version."""
    from packaging.version import Version

    if not _SEMVER.match(text):
        raise BuilderError(f"'{text}' is not a semantic version such as 1.2.0")
    return Version(text)


def releases(project: Project) -> list[str]:
    """Existing release versions, oldest first."""
    folder = project.root / RELEASES_DIR
    if not folder.is_dir():
        return []
    found = [p.name for p in folder.iterdir() if (p / MANIFEST).is_file() and _SEMVER.match(p.name)]
    return sorted(found, key=parse_version)


def read_manifest(project: Project, version: str) -> dict:
    path = project.root / RELEASES_DIR / version / MANIFEST
    if not path.is_file():
        known = ", ".join(releases(project)) or "none"
        raise BuilderError(f"no release {version} in {project.root / RELEASES_DIR} (releases: {known})")
    return json.loads(path.read_text(encoding="utf-8"))


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git_dirty(path: Path) -> bool | None:
    """True if `path` has uncommitted changes in git; None if it is not in a git work tree."""
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path.parent, capture_output=True, text=True)
    except OSError:
        return None
    if inside.returncode != 0:
        return None
    status = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent, capture_output=True, text=True)
    return bool(status.stdout.strip())


def file_hashes(folder: Path) -> dict[str, str]:
    from builder.dataset import sha256_file

    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def build_release_folder(project: Project, version: str, output: Path, snapshot: Path | None = None) -> dict:
    """Build the release into `output` (a fresh folder) and write its manifest; returns the manifest."""
    from builder.agreement import span_agreement, stance_agreement
    from builder.dataset import build_dataset, sha256_file

    snapshot = snapshot or project.annotations_dir / "snapshot.jsonl"
    if not snapshot.is_file():
        raise BuilderError(f"{snapshot}: no snapshot to release; run `builder pull` and commit it")
    frozen = set()
    for previous in releases(project):
        if parse_version(previous) < parse_version(version):  # rebuilding an old release sees only its past
            frozen |= set(read_manifest(project, previous)["splits"]["test"]["article_ids"])
    facts = build_dataset(project, snapshot, output, frozen_test=frozen, version=version, strict=True)
    split_info = {}
    for split in SPLITS:
        counts = facts.counts[split]
        split_info[split] = {
            "records": counts["records"],
            "articles": len(counts["articles"]),
            "stance": dict(sorted(counts["stance"].items())),
            "entities": dict(sorted(counts["entities"].items())),
            "article_ids": sorted(counts["articles"]),
        }
    agreement = {}
    if facts.records:
        agreement = {"stance": stance_agreement(facts.records, project.stance_values), "entities": span_agreement(facts.records, project.entity_values)}
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
        "frozen_test_articles": len(frozen),
        "splits": split_info,
        "agreement": agreement,
        "files": file_hashes(output),
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


@dataclass
class ReleaseResult:
    version: str
    folder: Path
    manifest: dict
    previous: str | None
    changelog_entry: str


def cut_release(project: Project, version: str) -> ReleaseResult:
    """Guarded release: refuses (writing nothing) on a bad version, invalid or uncommitted snapshot."""
    new = parse_version(version)
    existing = releases(project)
    folder = project.root / RELEASES_DIR / version
    if folder.exists():
        raise BuilderError(f"release {version} exists already ({folder}); choose a new version")
    if existing and new <= parse_version(existing[-1]):
        raise BuilderError(f"version {version} is not greater than the last release {existing[-1]}")
    snapshot = project.annotations_dir / "snapshot.jsonl"
    if _git_dirty(snapshot):
        raise BuilderError(f"{snapshot} has uncommitted changes: commit it first, so the release can be rebuilt from git")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=folder.parent))
    try:
        target = staging / version
        manifest = build_release_folder(project, version, target, snapshot)
        previous = existing[-1] if existing else None
        entry = changelog_entry(project, previous, version, manifest, target)
        changelog = project.root / CHANGELOG
        old = changelog.read_text(encoding="utf-8") if changelog.is_file() else "# Changelog\n\nGenerated by `builder release`; do not edit by hand.\n"
        head, _, rest = old.partition("\n## ")
        new_text = head.rstrip("\n") + "\n\n" + entry + ("\n## " + rest if rest else "")
        tmp_changelog = changelog.with_name(f".{CHANGELOG}.tmp")
        tmp_changelog.write_text(new_text, encoding="utf-8")
        os.chmod(target, 0o755)
        os.replace(target, folder)
        os.replace(tmp_changelog, changelog)
        return ReleaseResult(version, folder, manifest, previous, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def verify_release(project: Project, version: str) -> list[str]:
    """Problems found by recomputing the hashes of a release on disk (empty list: intact)."""
    manifest = read_manifest(project, version)
    actual = file_hashes(project.root / RELEASES_DIR / version)
    problems = []
    for name, digest in manifest["files"].items():
        if name not in actual:
            problems.append(f"{name}: missing")
        elif actual[name] != digest:
            problems.append(f"{name}: sha256 {actual[name][:12]} differs from the manifest's {digest[:12]}")
    problems += [f"{name}: not in the manifest" for name in actual if name not in manifest["files"]]
    return problems


# --- comparing releases -------------------------------------------------------------------


def _load_rows(folder: Path) -> dict[str, dict]:
    import pyarrow.parquet as pq

    rows = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[row["id"]] = row
    return rows


def _names(manifest_folder: Path) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    path = next((manifest_folder / "data").glob("*.parquet"))
    meta = json.loads(pq.read_schema(path).metadata[b"huggingface"])["info"]["features"]
    return meta["stance"]["names"], meta["entities"]["feature"]["label"]["names"]


def compare(project: Project, a: str, b: str | None, b_folder: Path | None = None, b_manifest: dict | None = None) -> dict:
    """What changed from release `a` to release `b` (or to a folder being released)."""
    folder_a = project.root / RELEASES_DIR / a
    folder_b = b_folder or project.root / RELEASES_DIR / b
    manifest_a = read_manifest(project, a)
    manifest_b = b_manifest or read_manifest(project, b)
    rows_a, rows_b = _load_rows(folder_a), _load_rows(folder_b)
    stance_names, entity_names = _names(folder_b)

    def stance(row):
        return stance_names[row["stance"]] if row["stance"] >= 0 else "(unresolved)"

    def spans(row):
        return {(e["start"], e["end"], entity_names[e["label"]], e["text"]) for e in row["entities"]}

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

    def distribution(manifest, key):
        total = Counter()
        for split in SPLITS:
            total.update(manifest["splits"][split][key])
        return total

    deltas = {}
    for key in ("stance", "entities"):
        da, db = distribution(manifest_a, key), distribution(manifest_b, key)
        deltas[key] = {label: (da.get(label, 0), db.get(label, 0)) for label in sorted(set(da) | set(db))}
    agreement = {}
    for name, path in (("krippendorff_alpha", ("stance", "krippendorff_alpha")), ("fleiss_kappa", ("stance", "fleiss_kappa")), ("span_f1", ("entities", "f1"))):
        agreement[name] = tuple(m.get("agreement", {}).get(path[0], {}).get(path[1]) for m in (manifest_a, manifest_b))
    return {
        "from": a, "to": b or manifest_b["version"],
        "sentences_added": added, "sentences_removed": removed,
        "articles_added": sorted(articles_b - articles_a), "articles_removed": sorted(articles_a - articles_b),
        "stance_relabelled": relabelled, "entities_added": ent_added, "entities_removed": ent_removed,
        "label_deltas": deltas, "agreement": agreement,
        "texts": {i: (rows_b.get(i) or rows_a.get(i))["text"] for i in added[:3] + removed[:3] + [r[0] for r in relabelled[:3]]},
    }


def format_comparison(diff: dict, examples: int = 3) -> str:
    lines = [
        f"- sentences: +{len(diff['sentences_added'])} / -{len(diff['sentences_removed'])}; "
        f"articles: +{len(diff['articles_added'])} / -{len(diff['articles_removed'])}"
        + (f" (added: {', '.join(diff['articles_added'][:examples])})" if diff["articles_added"] else ""),
        f"- stance relabelled: {len(diff['stance_relabelled'])}",
    ]
    for sid, old, new in diff["stance_relabelled"][:examples]:
        lines.append(f"  - `{sid}` {old} -> {new}: \"{diff['texts'][sid][:90]}\"")
    for sid in diff["sentences_added"][:examples]:
        lines.append(f"  - added `{sid}`: \"{diff['texts'][sid][:90]}\"")
    lines.append(f"- entities: +{len(diff['entities_added'])} / -{len(diff['entities_removed'])} (a changed span counts as one of each)")
    for sid, (start, end, label, text) in diff["entities_added"][:examples]:
        lines.append(f"  - `{sid}` +{label} '{text}' [{start}:{end}]")
    for sid, (start, end, label, text) in diff["entities_removed"][:examples]:
        lines.append(f"  - `{sid}` -{label} '{text}' [{start}:{end}]")
    for key, values in diff["label_deltas"].items():
        parts = [f"{label} {a}->{b}" for label, (a, b) in values.items() if a != b]
        lines.append(f"- {key} distribution: " + (", ".join(parts) if parts else "unchanged"))
    parts = [f"{name} {a}->{b}" for name, (a, b) in diff["agreement"].items()]
    lines.append("- agreement: " + ", ".join(parts))
    return "\n".join(lines)


def changelog_entry(project: Project, previous: str | None, version: str, manifest: dict, folder: Path) -> str:
    """The CHANGELOG.md section of a release built in `folder`, compared with the previous one."""
    totals = {s: manifest["splits"][s]["records"] for s in SPLITS}
    header = f"## {version}\n\nDataset {project.name} {version}, builder {__version__}, snapshot sha256 `{manifest['hashes']['snapshot'][:16]}`; " + ", ".join(f"{s} {n}" for s, n in totals.items()) + ".\n"
    if previous is None:
        return header + "\nFirst release.\n"
    diff = compare(project, previous, None, folder, manifest)
    return header + f"\nCompared with {previous}:\n\n" + format_comparison(diff) + "\n"

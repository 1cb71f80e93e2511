"""Comparing two releases (`builder diff`) and the CHANGELOG.md entry of a new release, which is that comparison
with the release before it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from builder import __version__
from builder.dataset.release.manifest import MANIFEST, RELEASES_DIR, format_of, read_manifest
from builder.dataset.release.summary import _label_names, _parquet_files, _read_rows, _summarize
from builder.dataset.splits import SPLITS
from builder.jsonio import sha256_file
from builder.project import Project
from builder.pseudonyms import KEYED_SCHEME, LEGACY_SCHEME

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


# The agreement evidence `builder diff` compares (manifest format 10 on): (name, path in `agreement_evidence`).
EVIDENCE_FIGURES = (
    ("Gwet's AC1", ("stance", "gwet_ac1")),
    ("unitizing alpha", ("unitizing_alpha", "all")),
)


def evidence_figures(manifest: dict) -> dict | None:
    """The figures with 95% intervals a manifest records (format 10 on: `agreement_evidence`), by name: alpha,
    kappa and span F1 with their intervals, Gwet's AC1 and unitizing alpha; None before format 10 or where the
    release had too many sentences for them."""
    evidence = manifest.get("agreement_evidence") if format_of(manifest) >= 10 else None
    if not evidence:
        return None
    paths = (
        ("alpha", ("stance", "krippendorff_alpha")),
        ("kappa", ("stance", "fleiss_kappa")),
        ("span_f1", ("span_f1", "all")),
        *EVIDENCE_FIGURES,
    )
    return {name: evidence[a][b] for name, (a, b) in paths if a in evidence}  # a one-half scheme records its half


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
        "evidence": (evidence_figures(manifest_a), evidence_figures(manifest_b)),
        "texts": {
            i: (rows_b.get(i) or rows_a.get(i))["text"]
            for i in added[:3] + removed[:3] + [r[0] for r in relabelled[:3]]
        },
    }


# Why release 1.0.0's names were given up: anyone could hash a guessed e-mail and find that person's annotations.
WHY_KEYED = (
    " (the keyed scheme: the unkeyed names could be reversed by guessing e-mails, since anyone can hash a guessed "
    "address; keyed names need the maintainers' secret key)"
)


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
            + (WHY_KEYED if (old_scheme, new_scheme) == (LEGACY_SCHEME, KEYED_SCHEME) else "")
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
    lines += _evidence_lines(*diff.get("evidence", (None, None)))
    lines += _quality_lines(*diff.get("quality_control", (None, None)))
    return "\n".join(lines)


def _evidence_lines(old: dict | None, new: dict | None) -> list[str]:
    """The diff's line of figures with their 95% intervals and n (manifest format 10 on); none when neither
    release records them."""
    if old is None and new is None:
        return []

    def show(figures: dict | None, name: str) -> str:
        f = (figures or {}).get(name)
        if not f or f["value"] is None:
            return "n/a"
        interval = "" if f["low"] is None else f" [{f['low']}, {f['high']}]"
        return f"{f['value']}{interval} (n {f['n']})"

    names = (new or old).keys()
    return ["- with 95% intervals: " + ", ".join(f"{name} {show(old, name)} -> {show(new, name)}" for name in names)]


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

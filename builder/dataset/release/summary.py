"""What a release's Parquet files say: records, articles, stance and entity counts per split, agreement and the
pseudonym scheme (`release_summary`), and the test articles earlier releases froze.

Written into the manifest at release time, recomputed by `builder verify` and compared by `builder diff` by this
same code, so that the three can never disagree about what a release holds.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from builder.dataset.release.manifest import RELEASES_DIR, read_manifest, releases, version_key
from builder.dataset.splits import SPLITS, parquet_pattern
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.project import Project
from builder.pseudonyms import scheme_of


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
        if "stance" not in features and "entities" not in features:
            raise KeyError("stance")
        # a stance-only or entities-only dataset has the label names of its own half only
        stance = features["stance"]["names"] if "stance" in features else []
        entities = features["entities"]["feature"]["label"]["names"] if "entities" in features else []
        return stance, entities
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
                {
                    **a,
                    **({"stance": stance(a["stance"])} if "stance" in a else {}),
                    **({"entities": spans(a["entities"])} if "entities" in a else {}),
                }
                for a in row["annotations"]
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
        if "stance" in row:  # an entities-only release has no stance to count
            c["stance"]["(unresolved)" if row["stance"] is None else row["stance"]] += 1
        c["entities"].update(e["label"] for e in row.get("entities", ()))
        annotators.update(a["annotator"] for a in row["annotations"])
        if keep:
            # a half the scheme leaves out reads as unanswered, and its agreement is not stated (below)
            annotations = [{"stance": None, "entities": [], **a} for a in row["annotations"]]
            kept.append({"stance": row.get("stance"), "annotations": annotations})
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
        if not stance_names:
            del agreement["stance"]
        if not entity_names:
            del agreement["entities"]
    return {"splits": splits, "agreement": agreement, "pseudonym_scheme": scheme_of(annotators)}


_SUMMARY_COLUMNS = ["article_id", "stance", "entities", "annotations"]


def release_summary(folder: Path, stance_names: list[str] | None = None, entity_names: list[str] | None = None) -> dict:
    """Counts per split, agreement and pseudonym scheme of a release folder, from its Parquet files."""
    files = [path for _, path in _parquet_files(folder)]
    if files and stance_names is None:
        stance_names, entity_names = _label_names(files[0])
    columns = _SUMMARY_COLUMNS
    if files:  # a stance-only or entities-only release lacks some of them
        import pyarrow.parquet as pq

        present = set(pq.read_schema(files[0]).names)
        columns = [c for c in _SUMMARY_COLUMNS if c in present]
    return _summarize(_read_rows(folder, columns), _total_rows(folder), stance_names or [], entity_names or [])


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

"""`builder run`: the whole loop on the bundled sample, against the real Label Studio; re-runnable."""

from __future__ import annotations

import json
import re
import secrets

import pyarrow.parquet as pq

from .conftest import ROOT, cli_env, run_cli


def test_whole_loop_on_the_sample_and_rerun(ls, tmp_path):
    # the sample's throwaway server is bound in build/run/, never in the repository's committed registry
    registry = ROOT / "annotations" / "label-studio.json"
    kept = registry.read_bytes() if registry.exists() else None
    try:
        _loop(ls, tmp_path)
        assert (registry.read_bytes() if registry.exists() else None) == kept
        assert (ROOT / "build" / "run" / "label-studio.json").is_file()
        # so are the suggestions its push withholds from the control arm
        assert not (ROOT / "annotations" / "withheld-suggestions.jsonl").exists()
    finally:  # whatever happened, the repository's file is left as it was
        if kept is None:
            registry.unlink(missing_ok=True)
        else:
            registry.write_bytes(kept)


def _loop(ls, tmp_path):
    output = tmp_path / "dataset"
    # a key of this run's own, never the maintainers' (with which annotations/snapshot.jsonl was pulled)
    env = {**cli_env(ls), "BUILDER_PSEUDONYM_KEY": secrets.token_hex(32)}
    first = run_cli("run", "--output", output, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "dataset dprk-russia-stance-ner: train" in first.stdout and "test 8" in first.stdout
    assert "features: stance ['favor', 'against', 'neutral']" in first.stdout
    assert f"Label Studio: {ls.url}/projects/" in first.stdout
    # the sample's 4 date lines are set aside (issue 27): never pushed, their 4 bundled annotations not replayed
    assert "created 61, skipped 0" in first.stderr and "created 76, already there 0" in first.stderr
    assert "4 dateline set aside, never pushed" in first.stderr
    assert "the annotations of 4 sentences set aside (never pushed) were not replayed" in first.stderr
    assert "not replayed: none" in first.stderr
    assert "61 tasks = 61 records + 0 quarantined" in first.stderr
    _steps_announced(first.stderr)
    second = run_cli("run", "--output", output, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert "created 0, skipped 61" in second.stderr and "created 0, already there 76" in second.stderr
    assert "(the control arm; suggestion_holdout is now 0.1)" in (output / "README.md").read_text(encoding="utf-8")
    assert ls.api_key not in first.stdout + first.stderr + second.stdout + second.stderr
    _same_snapshot_same_names(output)


def _steps_announced(stderr):
    """Each step says when it starts, in seconds since the first (issue 27.8); the local server's install and
    start are two more steps when LABEL_STUDIO_URL is not set (bench/bench_first_contact.py times those)."""
    steps = re.findall(r"^\[ *\d+ s\] (\d)/6 (\w+)", stderr, flags=re.MULTILINE)
    assert steps == [
        ("1", "split"),
        ("2", "push"),
        ("3", "replay"),
        ("4", "pull"),
        ("5", "validate"),
        ("6", "load"),
    ], stderr
    assert re.search(r"^\[ *\d+ s\] done: a loadable dataset$", stderr, flags=re.MULTILINE), stderr


def _same_snapshot_same_names(output):
    """`builder stats` reads the committed snapshot by default; the dataset `builder run` built came from the one
    it pulled into build/run/. Both name the same people alike (issue 27.4); they differ only by the sample's 4
    date lines, set aside since `lines+rules/3` (issue 27.2), and the run's snapshot gives the card's figures."""
    stats = run_cli("stats", "--json", cwd=ROOT)
    assert stats.returncode == 0, stats.stderr
    assert f"snapshot: {ROOT / 'annotations' / 'snapshot.jsonl'}" in stats.stderr  # says which snapshot it reads
    committed = json.loads(stats.stdout)
    pulled = run_cli("stats", "--json", "--snapshot", ROOT / "build" / "run" / "snapshot.jsonl", cwd=ROOT)
    pulled = json.loads(pulled.stdout)
    assert set(pulled["annotators"]) == set(committed["annotators"]) and pulled["records"] == committed["records"] - 4
    names = {
        annotation["annotator"]
        for shard in sorted((output / "data").glob("*.parquet"))
        for annotations in pq.read_table(shard, columns=["annotations"]).column("annotations").to_pylist()
        for annotation in annotations
    }
    assert names == set(committed["annotators"]) and len(names) == 3
    card = (output / "README.md").read_text(encoding="utf-8")
    committed = pulled  # the figures of the data the card describes
    evidence = committed["agreement_evidence"]  # the card's Agreement table gives these (manifest format 10 on)
    alpha, f1 = evidence["stance"]["krippendorff_alpha"], evidence["span_f1"]["f1"]
    assert f"{len(names)} annotators, named by pseudonyms only" in card
    assert f"{committed['records']} tasks in, {committed['records']} records, 0 quarantined" in card
    rows: dict = {}
    for line in card.splitlines():  # the Agreement table's rows (the evidence section's come after)
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0], line)
    row = rows["| Krippendorff's alpha (nominal), stance"]
    assert f" | {alpha['value']} | " in row and row.endswith(f" | {alpha['n']} | sentences with 2+ annotators |")
    row = rows["| pairwise exact-span F1, entities (all labels)"]
    assert f" | {f1['value']} | " in row and f"{evidence['span_f1']['pairs']} annotator pairs |" in row

"""Manifest format 10 (issue 28, points 3 and 7's manifest side): no agreement or quality figure on the card
stands without its 95% interval and n (the older Agreement table, the per-annotator gold accuracies, the
anchoring rate, the control arm's figures), byte for byte on a rebuild; the manifest records the agreement
evidence (Gwet's AC1, unitizing alpha, each with interval and n) and `builder diff` shows it. A release of an
earlier format rebuilds as it was."""

from __future__ import annotations

import json
import re

from builder.dataset.build import build_dataset

from .test_aggregate import project_with, simulated
from .test_release import new_repo, synthetic_tasks
from .test_steering import ARM_FIELD, SHOWN, SNAPSHOT, WITHHELD, make_project, stance_item, withheld

FIGURE = r"(-?\d+(?:\.\d+)?) \(95% interval (-?\d+\.\d+)–(-?\d+\.\d+), n (\d+)"


def _table_rows(card: str, header: str) -> list[list[str]]:
    lines = card.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _arms_project(tmp_path):
    tasks = [json.loads(line) for line in SNAPSHOT.read_text(encoding="utf-8").splitlines()]
    for task in tasks:  # the sample, as if pushed with a model and a holdout share of 0.3
        arm = WITHHELD if withheld(task["data"]["sentence_id"], 0.3, "x") else SHOWN
        task["data"][ARM_FIELD] = arm
        if arm == SHOWN:
            task["predictions"] = [
                {"model_version": "builder-crf/2+x", "score": 0.9, "result": [stance_item("neutral")]}
            ]
    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    return make_project(tmp_path / "p", "Intervals", snapshot=snapshot, holdout=0.3)


def test_the_agreement_table_and_the_control_arm_carry_intervals_and_n(tmp_path):
    project = _arms_project(tmp_path)
    build_dataset(project, project.snapshot_path, tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text(encoding="utf-8")
    rows = _table_rows(card, "| measure | value | 95% interval | n | based on |")
    assert [row[0] for row in rows[:3]] == [
        "Krippendorff's alpha (nominal), stance",
        "Fleiss' kappa, stance",
        "pairwise exact-span F1, entities (all labels)",
    ]
    assert len(rows) == 3 + len(project.entity_values)
    for name, value, interval, n, _ in rows:
        if value != "n/a":
            low, high = (float(x) for x in interval.split("–"))
            assert low <= float(value) <= high and int(n) > 0, name
    # the control arm: alpha, gold accuracy and the accepted shares, each with interval and n
    with_arm = next(line for line in card.splitlines() if line.startswith("- With suggestions: "))
    assert re.search(r"Krippendorff's alpha " + FIGURE, with_arm), with_arm
    accepted = next(line for line in card.splitlines() if line.startswith("- Suggestions accepted unchanged: "))
    value, low, high, n = re.search(r"stance " + FIGURE, accepted).groups()
    assert float(low) <= float(value) <= float(high) and int(n) > 0
    # croissant.json's annotation analysis states the same figures with their intervals and n
    analysis = json.loads((tmp_path / "new" / "croissant.json").read_text(encoding="utf-8"))[
        "rai:dataAnnotationAnalysis"
    ]
    stance = next(line for line in analysis if line.startswith("Stance, "))
    assert f"Krippendorff's alpha (nominal) {rows[0][1]} (n {rows[0][3]}, 95% interval {rows[0][2]})" in stance
    assert "Gwet's AC1 " in stance and any("unitizing alpha" in line and "95% interval" in line for line in analysis)
    build_dataset(project, project.snapshot_path, tmp_path / "again")
    assert (tmp_path / "again" / "README.md").read_bytes() == card.encode("utf-8")
    assert (tmp_path / "again" / "croissant.json").read_bytes() == (tmp_path / "new" / "croissant.json").read_bytes()
    # a release of format 9 rebuilds as it was: the table without intervals, the arm's lines bare
    build_dataset(project, project.snapshot_path, tmp_path / "old", intervals=False)
    old = (tmp_path / "old" / "README.md").read_text(encoding="utf-8")
    assert "| measure | value | based on |" in old and "| measure | value | 95% interval | n | based on |" not in old
    assert "95% interval" not in next(line for line in old.splitlines() if line.startswith("- With suggestions: "))
    analysis = json.loads((tmp_path / "old" / "croissant.json").read_text(encoding="utf-8"))[
        "rai:dataAnnotationAnalysis"
    ]
    assert not any("95% interval" in line for line in analysis)


def test_gold_accuracy_per_annotator_and_anchoring_carry_intervals_and_n(tmp_path):
    tasks, _, gold = simulated(n_tasks=60)
    project = project_with(tmp_path, "majority", gold)
    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    facts = build_dataset(project, snapshot, tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text(encoding="utf-8")
    line = next(x for x in card.splitlines() if x.startswith("- Gold stance accuracy per annotator"))
    figures = re.findall(FIGURE, line)
    assert len(figures) == facts.quality["annotators"] == 3, line
    for value, low, high, n in figures:
        assert float(low) <= float(value) <= float(high) and int(n) == 6  # 6 gold questions each
    assert [f["value"] for f in facts.quality["gold_accuracy_figures"]] == facts.quality["gold_accuracy"]
    old = build_dataset(project, snapshot, tmp_path / "old", intervals=False)
    assert "gold_accuracy_figures" not in old.quality and "anchoring" not in old.quality


def test_manifest_records_the_evidence_and_diff_shows_it(tmp_path):
    from builder.dataset.release import build_release_folder, cut_release, read_manifest, verify_release
    from builder.dataset.release.diff import compare, format_comparison

    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(12), stance=lambda a: "neutral"))
    old = build_release_folder(project, "0.9.0", tmp_path / "format-9", manifest_format=9)
    assert "agreement_evidence" not in old
    cut_release(project, "1.0.0")
    manifest = read_manifest(project, "1.0.0")
    evidence = manifest["agreement_evidence"]
    for figure in (
        evidence["stance"]["gwet_ac1"],
        evidence["stance"]["krippendorff_alpha"],
        evidence["unitizing_alpha"]["all"],
        evidence["span_f1"]["all"],
        *evidence["unitizing_alpha"]["per_label"].values(),
    ):
        assert {"value", "low", "high", "n"} <= set(figure)
    assert evidence["stance"]["gwet_ac1"]["n"] == 36 and evidence["resamples"] and evidence["seed"] is not None
    assert verify_release(project, "1.0.0") == []
    text = format_comparison(compare(project, "1.0.0", "1.0.0"))
    line = next(x for x in text.splitlines() if x.startswith("- with 95% intervals: "))
    assert "Gwet's AC1 " in line and "unitizing alpha " in line and "(n 36)" in line
    # rebuilt, the manifest (and so its evidence) is the same byte for byte
    assert build_release_folder(project, "1.0.0", tmp_path / "again") == manifest

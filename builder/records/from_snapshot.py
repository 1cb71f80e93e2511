"""Records from an annotation snapshot, validated: what `builder validate`, `stats`, `review` and `build` call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from builder.gold.answers import project_gold
from builder.jsonio import DUMP_OPTIONS, JsonLines, atomic_write, finished, paused_gc, started, write_json
from builder.model import DATASET_FORMAT
from builder.project import Project
from builder.records.aggregate import GOLD_QUESTIONS, UNRESOLVED_ENTITIES
from builder.records.validate import UnsortedSnapshot, validated_records
from builder.report import Report


def snapshot_lines(path: Path, report: Report, readers=None) -> JsonLines:
    """A snapshot's lines, for `validated_records`; a line that is not JSON is reported (file and line), not fatal,
    and the lines read are counted in `report` (once, when the lines end). `readers`: `JsonLines`'."""

    def unreadable(where: str, detail: str) -> None:
        report.drop("unreadable line", where, detail, scope="task", field="")

    def counted(read: int) -> None:
        if read:
            report.keep("lines read", read)

    return JsonLines(path, unreadable, counted, hint="; run `builder pull` first", readers=readers)


@dataclass
class ValidateResult:
    report: Report
    tasks_in: int
    records: int
    quarantined: int
    records_path: Path | None = None  # what was written, when it was
    report_path: Path | None = None
    gold: int = 0  # gold questions: valid tasks left out of the records (tasks_in = records + gold + quarantined)
    snapshot_sha256: str = ""  # the digest of the snapshot's bytes, when `readers` were given
    read: list = field(default_factory=list)  # what each of the `readers` returned (builder.jsonio.finished)


def validate_snapshot(
    project: Project,
    snapshot: Path,
    records_path: Path | None = None,
    dataset_format: int = DATASET_FORMAT,
    gold: dict | None = None,
    readers: Callable[[], list] | None = None,
) -> ValidateResult:
    """Validate a snapshot and (optionally) write its records (as `dataset_format` has them); everything dropped
    is in the report, and the entity spans the vote could not decide are counted there (`UNRESOLVED_ENTITIES`).

    Streams with constant memory over a snapshot sorted by sentence id (as `builder pull` writes
    it); a hand-edited, unsorted one is validated again from the start, remembering every id.

    `gold`: the project's gold questions, when the caller has read them (else read here). `readers()`: more
    consumers of the snapshot's tasks (`builder.jsonio.JsonLines` readers, not yet started), fed by the same
    read, so that `builder build` reads the snapshot once; what they return is `result.read`, and the
    snapshot's sha256 is `result.snapshot_sha256`. A new set is made for each pass.
    """
    gold = project_gold(project) if gold is None else gold
    options = {"dataset_format": dataset_format, "gold": gold, "readers": readers}
    try:
        return _validate_snapshot(project, snapshot, records_path, assume_sorted=True, **options)
    except UnsortedSnapshot:
        return _validate_snapshot(project, snapshot, records_path, assume_sorted=False, **options)


def validate_to_files(
    project: Project, snapshot: Path | None = None, records_path: Path | None = None, report_path: Path | None = None
) -> ValidateResult:
    """What `builder validate` does: validate `snapshot`, write its records and the JSON report.

    Defaults are the project's (`snapshot_path`, `records_path`, `validation_report_path`). Both
    outputs are checked before any work (`builder.outputs.check_output_file`): neither may be a
    folder or overwrite a file of another kind. The report is the problems of the `Report` plus
    `tasks_in`, `records`, `gold_questions` and `quarantined`; the result names the paths written.
    """
    from builder.outputs import REPORT, check_output_file

    snapshot = snapshot or project.snapshot_path
    records_path = records_path or project.records_path
    report_path = report_path or project.validation_report_path
    check_output_file(records_path, project, replaces=("sentence records",))
    check_output_file(report_path, project, "--report", replaces=(REPORT,))
    result = validate_snapshot(project, snapshot, records_path)
    counts = {
        "tasks_in": result.tasks_in,
        "records": result.records,
        "gold_questions": result.gold,
        "quarantined": result.quarantined,
    }
    write_json(report_path, {**result.report.as_dict(), **counts})
    result.report_path = report_path
    return result


def _validate_snapshot(
    project: Project,
    snapshot: Path,
    records_path: Path | None,
    assume_sorted: bool,
    dataset_format: int,
    gold: dict,
    readers: Callable[[], list] | None,
) -> ValidateResult:
    report = Report("validate")
    source = snapshot_lines(snapshot, report, [started(reader) for reader in readers()] if readers else None)
    records = _counting_unresolved(
        validated_records(source, project, report, gold, assume_sorted, dataset_format),
        report,
    )
    count = 0
    with paused_gc():
        if records_path is not None:
            with atomic_write(records_path) as out:
                dumps, options = orjson.dumps, DUMP_OPTIONS  # dumps_line's, without a call per record
                lines: list[bytes] = []
                for record in records:
                    lines.append(dumps(record, option=options))
                    if len(lines) == 1024:  # a write per 1024 records, not per record
                        out.write(b"".join(lines))
                        count += len(lines)
                        lines.clear()
                out.write(b"".join(lines))
                count += len(lines)
        else:
            for _ in records:
                count += 1
    quarantined = sum(1 for p in report.problems if p.fields.get("scope") == "task")
    tasks_in = report.kept["lines read"] + len(report.by_reason("unreadable line"))
    result = ValidateResult(report, tasks_in, count, quarantined, records_path, gold=report.kept[GOLD_QUESTIONS])
    if source.readers is not None:
        if source.sha256 is None:  # validation stopped short of the end: the readers saw part of the snapshot
            raise RuntimeError(f"{snapshot}: validation did not read the whole snapshot")
        result.snapshot_sha256 = source.sha256
        result.read = [finished(reader) for reader in source.readers]
    return result


def _counting_unresolved(records, report: Report):
    """`records`, counting their unresolved entity spans in `report` (once, at the end; none before format 3)."""
    unresolved = 0
    try:
        for record in records:
            if record.get("unresolved_entities"):
                unresolved += len(record["unresolved_entities"])
            yield record
    finally:
        if unresolved:
            report.keep(UNRESOLVED_ENTITIES, unresolved)


def load_records(project: Project, snapshot: Path) -> tuple[list[dict], Report]:
    """Validated records in memory (for statistics on dataset-sized snapshots); gold questions left out."""
    report = Report("validate")
    return list(validated_records(snapshot_lines(snapshot, report), project, report, project_gold(project))), report


def dataset_statistics(project: Project, snapshot: Path) -> dict:
    from builder.records.agreement import annotator_counts, label_counts, span_agreement, stance_agreement

    records, _ = load_records(project, snapshot)
    records = both_halves(records, project)
    statistics = {
        "records": len(records),
        "labels": label_counts(records),
        "annotators": annotator_counts(records),
        "stance_agreement": stance_agreement(records, project.stance_values),
        "span_agreement": span_agreement(records, project.entity_values),
        **evidence_statistics(records, project),
    }
    if not project.has_stance:  # a figure of the half a scheme leaves out is not stated
        del statistics["stance_agreement"]
    if not project.has_entities:
        del statistics["span_agreement"]
    return statistics


def both_halves(records: list[dict], project: Project) -> list[dict]:
    """`records` of a stance-only or entities-only scheme with the other half read as unanswered (no stance, no
    span), for the statistics computed alike for every scheme; a both-scheme project's records as they are."""
    if project.has_stance and project.has_entities:
        return records
    filled = []
    for record in records:
        annotations = [{"stance": None, "entities": [], **a} for a in record["annotations"]]
        filled.append({"stance": None, "stance_status": "none", "entities": [], **record, "annotations": annotations})
    return filled


def evidence_statistics(records: list[dict], project: Project) -> dict:
    """`builder stats`' evidence: builder.records.evidence.agreement_evidence (every figure with its 95% interval
    and n, AC1, unitizing alpha, the span disagreement breakdown) and its diagnostics, keyed by kind and figure."""
    from builder.records.evidence import agreement_evidence

    evidence = agreement_evidence(records, project.stance_values, project.entity_values)
    # a diagnostic of the half a scheme leaves out is not stated (stance figures name stance)
    found = [
        d for d in evidence.pop("diagnostics") if project.labels("stance" if "stance" in d["figure"] else "entities")
    ]
    if not project.has_stance:  # a one-half scheme: only its own half's figures, as its card states them
        del evidence["stance"]
    if not project.has_entities:
        for name in ("span_f1", "unitizing_alpha", "span_disagreements"):
            del evidence[name]
    return {
        "agreement_evidence": evidence,
        "diagnostics": {f"{d['kind']}: {d['figure']}": d["message"] for d in found},
    }


def unresolved_records(project: Project, snapshot: Path) -> tuple[list[dict], list[dict]]:
    """(records whose stance is unresolved, records with entity spans the vote could not decide): what an
    adjudicator must look at (`builder review`)."""
    records, _ = load_records(project, snapshot)
    # an entities-only scheme's records have no stance to leave unresolved
    return [r for r in records if "stance" in r and r["stance"] is None], [
        r for r in records if r.get("unresolved_entities")
    ]

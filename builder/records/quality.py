"""Per-annotator quality (`builder quality`): one row per annotator pseudonym, computed with pandas.

The snapshot is read streamed (orjson, line by line) into column arrays; everything after that is
vectorised (groupby, value_counts, merges, bincount), so a snapshot of 1,000,000 tasks with 3 annotations each
takes seconds and a few hundred MB (bench/bench_quality.py).

What each column counts (`REPORT_COLUMNS`; "answers" are annotations that are not cancelled; a
ground-truth annotation, Label Studio's star, counts as its author's answer):

- `annotated`: answers. `skipped`: cancelled annotations with an empty result (Label Studio's Skip
  button on an untouched task). `cancelled`: cancelled annotations that carry a result (skipped after
  labelling something, or cancelled from the API). Label Studio itself records both as
  `was_cancelled`; the result is what tells them apart.
- `median_lead_time`: median seconds per answer (Label Studio's `lead_time`; unreadable ones left out).
- `gold_answers`, `gold_accuracy`: answers on gold questions (`[quality] gold`, builder.gold.answers)
  and the share whose stance is the gold stance (an answer without a stance counts as wrong), with
  `gold_accuracy_low`/`_high`, the 95% Wilson score interval.
- `gold_span_f1_exact`: micro F1 of their entity spans on gold questions against the gold spans (same
  start, end and label). `gold_span_f1_overlap`: the same where a span matches a gold span of the same
  label that shares at least one character (precision over their spans, recall over the gold spans).
  Empty (NaN) when neither side has a span. A span whose ends are whitespace is trimmed to its core
  first, as validation trims it (and as gold spans must be).
- `kappa`: Cohen's kappa with each other annotator over the non-gold tasks both answered with a
  stance, averaged over the other annotators weighted by the number of shared tasks; a pair whose
  kappa is undefined (both always gave the same one label) is left out. NaN without overlap.
- `agreement_with_aggregate`: the share of their stance answers on non-gold tasks with at least two
  stance answers that equal the task's aggregated stance (`aggregated_stances`: the label the dataset
  gets); an unresolved task (a tie) counts as a disagreement, since their answer did not become the
  label. Their own answer is part of the aggregate, as in the dataset (Dawid-Skene fits all answers
  at once): with few annotators per task this flatters everyone alike, so compare annotators with
  each other rather than with 1.0.
- `aggregate_compared`, `agreement_with_aggregate_low`, `agreement_with_aggregate_high`: the answers
  `agreement_with_aggregate` rests on (its n) and its 95% Wilson interval.
- `pre_annotated`, `anchoring`: pre-annotated spans (the union of the task's predictions' entity
  spans) shown to them on the tasks they answered, and the share of those they kept unchanged (same
  start, end and label in their answer). NaN when they saw none.
- `anchoring_low`, `anchoring_high`: the 95% Wilson interval of `anchoring` (its n: `pre_annotated`).
- `gold_span_f1_exact_low`/`_high`, `gold_span_f1_overlap_low`/`_high`: their 95% bootstrap intervals over
  the gold questions (n: `gold_answers`).
- `kappa_low`, `kappa_high`, `kappa_tasks`: kappa's 95% bootstrap interval over tasks and the tasks it
  rests on (builder.records.quality_intervals).
- `flagged`: `gold_accuracy` < `[quality] min_gold_accuracy` (never without gold answers).

Items the report cannot read (a line that is not JSON, an annotation without a pseudonym, a span
with bad offsets, a stance outside the scheme...) are left out and counted by reason in
`QualityFrames.ignored`; `builder quality` prints them. `builder validate` says more about them.
Entity spans are read only where the report compares them: on gold questions and pre-annotated tasks.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from builder.errors import InputError
from builder.jsonio import finished, started
from builder.model import ENTITIES, LEAD_TIME_MAX, STANCE
from builder.project import Project
from builder.pseudonyms import is_pseudonym
from builder.records.intervals import wilson_interval
from builder.records.quality_intervals import answer_pairs
from builder.sentences.segmenter import span_core

Z95 = 1.959963984540054  # the standard normal quantile of 0.975

REPORT_COLUMNS = (
    "annotator",
    "annotated",
    "skipped",
    "cancelled",
    "median_lead_time",
    "gold_answers",
    "gold_accuracy",
    "gold_accuracy_low",
    "gold_accuracy_high",
    "gold_span_f1_exact",
    "gold_span_f1_exact_low",
    "gold_span_f1_exact_high",
    "gold_span_f1_overlap",
    "gold_span_f1_overlap_low",
    "gold_span_f1_overlap_high",
    "kappa",
    "kappa_low",
    "kappa_high",
    "kappa_tasks",
    "agreement_with_aggregate",
    "aggregate_compared",
    "agreement_with_aggregate_low",
    "agreement_with_aggregate_high",
    "pre_annotated",
    "anchoring",
    "anchoring_low",
    "anchoring_high",
    "flagged",
)
FORMATS = ("table", "csv", "json")


@dataclass
class QualityFrames:
    """What the snapshot holds for the report, as columns.

    `annotations`: one row per annotation (see `annotation_frame`). `spans`: the entity spans of the
    answers on gold questions (the only ones the report compares): row (of `annotations`), start, end,
    label (code into the project's entity labels), each once. `gold_spans`: task, start, end, label.
    `gold_stance`: per task, the gold stance code (-1: not a gold question).
    """

    annotations: pd.DataFrame
    spans: pd.DataFrame
    gold_spans: pd.DataFrame
    gold_stance: np.ndarray
    stance_labels: list[str]
    entity_labels: list[str]
    ignored: dict[str, list] = field(default_factory=dict)  # reason -> [count, first place]

    @property
    def tasks(self) -> int:
        return len(self.gold_stance)


class _Columns:
    """Column arrays filled while the snapshot streams by (array.array: no Python object per value)."""

    def __init__(self) -> None:
        self.task = array("i")
        self.annotator = array("i")
        self.stance = array("b")
        self.cancelled = array("b")
        self.empty = array("b")
        self.ground_truth = array("b")
        self.lead_time = array("d")
        self.pre_annotated = array("i")
        self.kept = array("i")
        self.task_id = array("q")  # per task
        self.gold_stance = array("b")  # per task
        self.span = tuple(array("i") for _ in range(3)) + (array("b"),)  # row, start, end, label
        self.gold_spans = tuple(array("i") for _ in range(3)) + (array("b"),)


def _span(value, labels: dict, text: object) -> tuple[int, int, int] | None:
    """(start, end, label code) of an entity result's value, or None when it is not a usable span. A span
    whose ends are whitespace in `text` (the task's) is trimmed to its core, as validation trims it, so that
    it can match the gold span (gold spans are refused with surrounding whitespace)."""
    try:
        start, end, names = value["start"], value["end"], value["labels"]
        if type(start) is int and type(end) is int and 0 <= start < end < 2**31 and len(names) == 1:
            if type(text) is str and end <= len(text):
                if text[start].isspace() or text[end - 1].isspace():
                    core = span_core(text, start, end)
                    if core is None:
                        return None
                    start, end = core
            return start, end, labels[names[0]]
    except (KeyError, TypeError, IndexError):
        pass
    return None


def _read(tasks: Iterable[tuple[str, object]], project: Project, gold: dict) -> QualityFrames:
    """The columns of `tasks`, given as (place, task) pairs; what cannot be read is counted in `ignored`."""
    reader = started(frames_reader(project, gold))
    for item in tasks:
        reader.send(item)
    return finished(reader)


def frames_reader(project: Project, gold: dict) -> Generator[None, tuple[str, object] | None, QualityFrames]:
    """`_read` as a generator sent (place, task) pairs (`builder.jsonio.started`, then None: `finished` gives
    the frames), so that `builder build` feeds it from the one read of the snapshot its validation makes."""
    stances = {value: i for i, value in enumerate(project.stance_values)}
    labels = {value: i for i, value in enumerate(project.entity_values)}
    # an entities-only scheme's gold questions have no stance: GOLD_WITHOUT_STANCE marks them gold all the same
    gold_stance = {
        sid: GOLD_WITHOUT_STANCE if answer.stance is None else stances.get(answer.stance, -1)
        for sid, answer in gold.items()
    }
    cols = _Columns()
    names: dict[str, int] = {}
    ignored: dict[str, list] = {}

    def ignore(reason: str, where: str) -> None:
        if reason in ignored:
            ignored[reason][0] += 1
        else:
            ignored[reason] = [1, where]

    # bound once: this loop runs for every annotation of the snapshot
    add_task, add_annotator, add_stance = cols.task.append, cols.annotator.append, cols.stance.append
    add_cancelled, add_empty, add_truth = cols.cancelled.append, cols.empty.append, cols.ground_truth.append
    add_lead, add_pre, add_kept = cols.lead_time.append, cols.pre_annotated.append, cols.kept.append
    add_task_id, add_gold_stance = cols.task_id.append, cols.gold_stance.append
    nan, numbers = math.nan, (int, float)
    row = 0
    while (item := (yield)) is not None:
        where, task = item
        if not isinstance(task, dict) or not isinstance(task.get("annotations", []), list):
            ignore("not a task (an object with a list of annotations)", where)
            continue
        t = len(cols.task_id)
        task_id = task.get("task_id")
        add_task_id(task_id if type(task_id) is int and abs(task_id) < 2**63 else -1)
        data = task.get("data")
        sid = data.get("sentence_id") if isinstance(data, dict) else None
        text = data.get("text") if isinstance(data, dict) else None
        answer = gold.get(sid) if isinstance(sid, str) else None
        add_gold_stance(gold_stance[sid] if answer is not None else -1)
        if answer is not None:
            for start, end, label in set(answer.entities):
                if label in labels:
                    for column, value in zip(cols.gold_spans, (t, start, end, labels[label])):
                        column.append(value)
        predicted = set()
        predictions = task.get("predictions")
        for prediction in predictions if isinstance(predictions, list) else ():
            result = prediction.get("result") if isinstance(prediction, dict) else None
            for item in result if isinstance(result, list) else ():
                if isinstance(item, dict) and item.get("from_name") == ENTITIES:
                    span = _span(item.get("value"), labels, text)
                    if span is None:
                        ignore("unreadable pre-annotated span", where)
                    else:
                        predicted.add(span)
        compare = answer is not None or bool(predicted)  # only then are an answer's spans read and compared
        for number, annotation in enumerate(task.get("annotations") or ()):
            annotator = annotation.get("annotator") if isinstance(annotation, dict) else None
            if not is_pseudonym(annotator):  # never print a name that is not a pseudonym (an e-mail, say)
                ignore("annotation without an annotator pseudonym", f"{where} annotation {number + 1}")
                continue
            result = annotation.get("result")
            if not isinstance(result, list):
                ignore("annotation whose result is not a list", f"{where} annotation {number + 1}")
                result = []
            stance = -1
            cancelled = annotation.get("was_cancelled") is True
            own = set() if compare and not cancelled else None  # a span marked twice counts once
            for item in result:
                name = item.get("from_name") if isinstance(item, dict) else None
                if name == STANCE:
                    try:
                        choices = item["value"]["choices"]
                        code = stances[choices[0]] if len(choices) == 1 else None
                    except (KeyError, TypeError, IndexError):
                        code = None
                    if code is None:
                        ignore("stance not in the scheme", f"{where} annotation {number + 1}")
                    else:
                        stance = code
                elif name == ENTITIES:
                    if own is not None:
                        span = _span(item.get("value"), labels, text)
                        if span is None:
                            ignore("unreadable entity span", f"{where} annotation {number + 1}")
                        else:
                            own.add(span)
                else:
                    ignore("result item of no known control", f"{where} annotation {number + 1}")
            lead_time = annotation.get("lead_time")
            if type(lead_time) not in numbers or not 0 <= lead_time <= LEAD_TIME_MAX:
                if lead_time is not None:
                    ignore("lead time that is not a number of seconds", f"{where} annotation {number + 1}")
                lead_time = nan
            add_task(t)
            add_annotator(names.setdefault(annotator, len(names)))
            add_stance(stance)
            add_cancelled(cancelled)
            add_empty(not result)
            add_truth(annotation.get("ground_truth") is True)
            add_lead(lead_time)
            if own is None or not predicted:
                add_pre(0)
                add_kept(0)
            else:  # anchoring: how many of the pre-annotated spans they submitted unchanged
                add_pre(len(predicted))
                add_kept(len(own & predicted))
            if answer is not None and own:
                for span in own:
                    for column, value in zip(cols.span, (row, *span)):
                        column.append(value)
            row += 1
    return _frames(cols, names, project, ignored)


def _np(column: array, dtype) -> np.ndarray:
    return np.frombuffer(column, dtype=dtype) if len(column) else np.zeros(0, dtype=dtype)


def _span_frame(columns: tuple, first: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            first: _np(columns[0], np.int32),
            "start": _np(columns[1], np.int32),
            "end": _np(columns[2], np.int32),
            "label": _np(columns[3], np.int8),
        }
    )


GOLD_WITHOUT_STANCE = -2  # a task's gold stance code when it is a gold question without a stance (entities only)


def _frames(cols: _Columns, names: dict[str, int], project: Project, ignored: dict) -> QualityFrames:
    order = sorted(names)  # annotator codes follow the sorted pseudonyms
    recode = np.empty(len(names), dtype=np.int32)
    for new, name in enumerate(order):
        recode[names[name]] = new
    codes = recode[_np(cols.annotator, np.int32)] if len(names) else np.zeros(0, dtype=np.int32)
    task = _np(cols.task, np.int32)
    gold_stance = _np(cols.gold_stance, np.int8)
    task_id = _np(cols.task_id, np.int64)
    annotations = pd.DataFrame(
        {
            "task": task,
            "task_id": task_id[task],
            "annotator": pd.Categorical.from_codes(codes, categories=order),
            "stance": pd.Categorical.from_codes(_np(cols.stance, np.int8), categories=project.stance_values),
            "was_cancelled": _np(cols.cancelled, np.int8).astype(bool),
            "empty": _np(cols.empty, np.int8).astype(bool),
            "ground_truth": _np(cols.ground_truth, np.int8).astype(bool),
            "lead_time": _np(cols.lead_time, np.float64),
            "gold": gold_stance[task] != -1,
            "pre_annotated": _np(cols.pre_annotated, np.int32),
            "kept_pre_annotated": _np(cols.kept, np.int32),
        }
    )
    return QualityFrames(
        annotations,
        _span_frame(cols.span, "row"),
        _span_frame(cols.gold_spans, "task"),
        gold_stance,
        project.stance_values,
        project.entity_values,
        ignored,
    )


def _snapshot_lines(path: Path) -> Iterator[tuple[str, object]]:
    import orjson

    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror}); run `builder pull` first") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", orjson.loads(line)
            except orjson.JSONDecodeError:
                yield f"{path}:{number}", None  # counted as "not a task"


def read_frames(snapshot: str | Path, project: Project, gold: dict | None = None) -> QualityFrames:
    """The snapshot's annotations, spans, predictions and gold answers as frames, streamed line by line."""
    from builder.gold.answers import project_gold
    from builder.jsonio import paused_gc

    gold = project_gold(project) if gold is None else gold
    with paused_gc():
        return _read(_snapshot_lines(Path(snapshot)), project, gold)


def annotation_frame(tasks: Iterable[dict], project: Project, gold: dict | None = None) -> pd.DataFrame:
    """One row per annotation of `tasks` (snapshot tasks): task (position in `tasks`), task_id, annotator,
    stance (categorical, NaN when none), was_cancelled, empty (no result), ground_truth, lead_time (NaN when
    unknown), gold (the task is a gold question of `gold`, by default the project's), pre_annotated (the
    task's distinct pre-annotated spans, 0 for a cancelled annotation) and kept_pre_annotated (how many of
    them the answer has unchanged)."""
    from builder.gold.answers import project_gold

    gold = project_gold(project) if gold is None else gold
    return _read(((f"task {i + 1}", task) for i, task in enumerate(tasks)), project, gold).annotations


# --- the aggregated stance: the one seam between the report and the aggregation method ---------------


def aggregated_stances(frame: pd.DataFrame, project: Project, gold: np.ndarray) -> np.ndarray:
    """The aggregated stance code of every task (-1: unresolved or no stance answer), from `frame` (as
    `annotation_frame` gives it) and `gold` (per task, the gold stance code or -1).

    Majority vote of the answers, or with `[annotation] aggregation = "dawid-skene"` the most probable
    stance under the Dawid-Skene model (as the dataset's records); a ground-truth answer wins (several
    that disagree: the majority of them); a tie stays unresolved; a gold question's aggregate is its
    gold stance.
    """
    n_tasks, n_labels = len(gold), len(project.stance_values)
    if not n_labels:  # an entities-only scheme: no stance to aggregate
        return np.full(n_tasks, -1)
    stance = frame["stance"].cat.codes.to_numpy()
    answered = ~frame["was_cancelled"].to_numpy() & (stance >= 0)
    task = frame["task"].to_numpy()

    def votes(mask: np.ndarray) -> np.ndarray:
        flat = task[mask].astype(np.int64) * n_labels + stance[mask]
        return np.bincount(flat, minlength=n_tasks * n_labels).reshape(n_tasks, n_labels)

    counts = votes(answered)
    truth = votes(answered & frame["ground_truth"].to_numpy())
    has_truth = truth.any(axis=1)
    counts[has_truth] = truth[has_truth]
    top = counts.max(axis=1, initial=0)
    tie = (counts == top[:, None]).sum(axis=1) > 1
    result = np.where((top == 0) | tie, -1, counts.argmax(axis=1))
    if project.aggregation == "dawid-skene" and answered.any():
        from builder.records.reliability import dawid_skene, most_likely

        # As the dataset's records: gold answers and agreeing ground truth anchor the model; ground truth wins.
        truth_resolved = has_truth & (result >= 0)
        known_tasks = np.flatnonzero((gold >= 0) | truth_resolved)
        known_labels = np.where(gold[known_tasks] >= 0, gold[known_tasks], result[known_tasks])
        fit = dawid_skene(
            task[answered],
            frame["annotator"].cat.codes.to_numpy()[answered],
            stance[answered],
            n_tasks,
            len(frame["annotator"].cat.categories),
            n_labels,
            known=(known_tasks, known_labels),
        )
        # As the records: the most probable stance among those the task's annotators gave.
        label, undecided = most_likely(np.where(counts > 0, fit.posteriors, -1.0))
        modelled = np.where(undecided | (counts.sum(axis=1) == 0), -1, label)
        result = np.where(has_truth, result, modelled)
    return np.where(gold >= 0, gold, result).astype(np.int8)


# --- the per-annotator report -------------------------------------------------------------------------


def _ratio(numerator, denominator) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _f1(matched_own, own, matched_gold, n_gold) -> np.ndarray:
    """Micro F1 from precision (matched_own / own) and recall (matched_gold / n_gold); NaN when both are empty."""
    precision = np.nan_to_num(_ratio(matched_own, own))
    recall = np.nan_to_num(_ratio(matched_gold, n_gold))
    f1 = _ratio(2 * precision * recall, precision + recall)
    f1 = np.where(precision + recall > 0, f1, 0.0)
    return np.where(np.asarray(own) + np.asarray(n_gold) > 0, f1, np.nan)


def _per(annotator: np.ndarray, n: int, weights=None) -> np.ndarray:
    return np.bincount(annotator, weights=weights, minlength=n)[:n]


def _span_f1(frames: QualityFrames, annotator: np.ndarray, on_gold: np.ndarray, n: int) -> tuple:
    """(exact, overlap) span F1 per annotator on the gold questions they answered."""
    rows = frames.annotations
    task = rows["task"].to_numpy()
    spans = frames.spans[on_gold[frames.spans["row"].to_numpy()]]
    spans = spans.assign(task=task[spans["row"].to_numpy()], annotator=annotator[spans["row"].to_numpy()])
    gold_per_task = np.bincount(frames.gold_spans["task"].to_numpy(), minlength=frames.tasks)
    n_gold = _per(annotator[on_gold], n, gold_per_task[task[on_gold]])
    own = _per(spans["annotator"].to_numpy(), n)
    exact = spans.merge(frames.gold_spans, on=["task", "start", "end", "label"])
    matched = _per(exact["annotator"].to_numpy(), n)
    pairs = spans.merge(frames.gold_spans, on=["task", "label"], suffixes=("", "_gold"))
    pairs = pairs[(pairs["start"] < pairs["end_gold"]) & (pairs["start_gold"] < pairs["end"])]
    own_hit = pairs.drop_duplicates(["row", "start", "end", "label"])["annotator"].to_numpy()
    gold_hit = pairs.drop_duplicates(["row", "start_gold", "end_gold", "label"])["annotator"].to_numpy()
    overlap = _f1(_per(own_hit, n), own, _per(gold_hit, n), n_gold)
    count = len(rows)  # the same counts per annotation row: what builder.records.quality_intervals resamples
    per_row = {
        "own": np.bincount(spans["row"].to_numpy(), minlength=count),
        "matched": np.bincount(exact["row"].to_numpy(), minlength=count),
        "gold": np.where(on_gold, gold_per_task[task], 0),
        "own_hit": np.bincount(
            pairs.drop_duplicates(["row", "start", "end", "label"])["row"].to_numpy(), minlength=count
        ),
        "gold_hit": np.bincount(
            pairs.drop_duplicates(["row", "start_gold", "end_gold", "label"])["row"].to_numpy(), minlength=count
        ),
    }
    return _f1(matched, own, matched, n_gold), overlap, per_row


def _pairs(task: np.ndarray, annotator: np.ndarray, stance: np.ndarray, n: int, n_labels: int) -> pd.Series:
    """How often each ordered pair of annotators (a, b) answered a shared task with stances (x, y): a Series
    of counts indexed by the code ((a * n + b) * n_labels + x) * n_labels + y.

    Answers sorted by task; the pairs of each task are the answers 1, 2, ... places apart within it, one
    numpy pass per distance (up to the largest number of answers on one task), never all pairs at once."""
    task, annotator, stance, pairs = answer_pairs(task, annotator, stance)
    codes = []
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            codes.append(((annotator[x] * n + annotator[y]) * n_labels + stance[x]) * n_labels + stance[y])
    if not codes:
        return pd.Series([], dtype=np.int64)
    return pd.Series(np.concatenate(codes)).value_counts(sort=False)


def _kappa(task: np.ndarray, annotator: np.ndarray, stance: np.ndarray, n: int, n_labels: int) -> np.ndarray:
    """Per annotator: Cohen's kappa with each other annotator over the tasks both answered, averaged over the
    others weighted by the number of shared tasks (a pair whose kappa is undefined left out)."""
    counts = _pairs(task, annotator, stance, n, n_labels)
    if counts.empty:
        return np.full(n, np.nan)
    code = counts.index.to_numpy()
    table = pd.DataFrame(
        {
            "pair": code // (n_labels * n_labels),
            "x": code // n_labels % n_labels,
            "y": code % n_labels,
            "count": counts.to_numpy(),
        }
    )
    table["agree"] = np.where(table["x"] == table["y"], table["count"], 0)
    per_pair = table.groupby("pair")[["count", "agree"]].sum()
    shared, observed = per_pair["count"], per_pair["agree"] / per_pair["count"]
    margin_x = table.groupby(["pair", "x"])["count"].sum().rename_axis(["pair", "label"])
    margin_y = table.groupby(["pair", "y"])["count"].sum().rename_axis(["pair", "label"])
    chance = margin_x.mul(margin_y, fill_value=0).groupby(level="pair").sum() / shared**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - chance) / (1 - chance)
    kappa = kappa[np.isfinite(kappa.to_numpy())]  # chance agreement 1: kappa undefined, the pair left out
    weights = shared[kappa.index].to_numpy()
    who = (kappa.index.to_numpy() // n).astype(np.int64)
    return _ratio(_per(who, n, kappa.to_numpy() * weights), _per(who, n, weights))


def report_from_frames(frames: QualityFrames, project: Project, intervals: bool = True) -> pd.DataFrame:
    """The per-annotator report (`REPORT_COLUMNS`, one row per pseudonym, sorted) from `read_frames`' frames;
    `intervals=False` leaves kappa's bootstrap interval out (NaN: `builder build` needs only the summary)."""
    rows = frames.annotations
    names = list(rows["annotator"].cat.categories)
    n = len(names)
    annotator = rows["annotator"].cat.codes.to_numpy().astype(np.int64)
    task = rows["task"].to_numpy()
    stance = rows["stance"].cat.codes.to_numpy()
    cancelled = rows["was_cancelled"].to_numpy()
    answered = ~cancelled
    empty = rows["empty"].to_numpy()
    is_gold = rows["gold"].to_numpy()

    lead = rows.loc[answered, ["annotator", "lead_time"]].groupby("annotator", observed=False)["lead_time"].median()

    on_gold = answered & is_gold
    on_gold_stance = on_gold & (frames.gold_stance[task] >= 0)  # gold questions with a stance to be right about
    gold_answers = _per(annotator[on_gold_stance], n)
    correct = _per(
        annotator[on_gold_stance],
        n,
        (stance[on_gold_stance] == frames.gold_stance[task[on_gold_stance]]).astype(float),
    )
    low, high = wilson_interval(correct, gold_answers)
    exact, overlap, span_rows = _span_f1(frames, annotator, on_gold, n)
    span_intervals = [np.full(n, np.nan)] * 4
    if intervals:
        from builder.records.quality_intervals import span_f1_intervals

        span_intervals = span_f1_intervals(rows["task"].to_numpy()[on_gold], annotator[on_gold], span_rows, on_gold, n)

    voted = answered & ~is_gold & (stance >= 0)
    kappa = _kappa(task[voted], annotator[voted], stance[voted], n, len(frames.stance_labels))
    if intervals:
        from builder.records.quality_intervals import kappa_intervals

        kappa_low, kappa_high, kappa_tasks = kappa_intervals(
            task[voted], annotator[voted], stance[voted], n, len(frames.stance_labels)
        )
    else:
        kappa_low, kappa_high, kappa_tasks = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64)

    aggregate = aggregated_stances(rows, project, frames.gold_stance)
    stance_answers = np.bincount(task[answered & (stance >= 0)], minlength=frames.tasks)
    compared = voted & (stance_answers[task] >= 2)  # an unresolved aggregate (-1) matches no answer
    agreeing = _per(annotator[compared], n, (stance[compared] == aggregate[task[compared]]).astype(float))
    compared_count = _per(annotator[compared], n)
    agreement = _ratio(agreeing, compared_count)
    agreement_low, agreement_high = wilson_interval(agreeing, compared_count)

    seen = _per(annotator, n, rows["pre_annotated"].to_numpy())
    kept = _per(annotator, n, rows["kept_pre_annotated"].to_numpy())
    anchoring_low, anchoring_high = wilson_interval(kept, seen)

    accuracy = _ratio(correct, gold_answers)
    report = pd.DataFrame(
        {
            "annotator": pd.array(names, dtype=object),
            "annotated": _per(annotator[answered], n),
            "skipped": _per(annotator[cancelled & empty], n),
            "cancelled": _per(annotator[cancelled & ~empty], n),
            "median_lead_time": lead.reindex(names).to_numpy(dtype=float),
            "gold_answers": gold_answers,
            "gold_accuracy": accuracy,
            "gold_accuracy_low": low,
            "gold_accuracy_high": high,
            "gold_span_f1_exact": exact,
            "gold_span_f1_exact_low": span_intervals[0],
            "gold_span_f1_exact_high": span_intervals[1],
            "gold_span_f1_overlap": overlap,
            "gold_span_f1_overlap_low": span_intervals[2],
            "gold_span_f1_overlap_high": span_intervals[3],
            "kappa": kappa,
            "kappa_low": kappa_low,
            "kappa_high": kappa_high,
            "kappa_tasks": kappa_tasks,
            "agreement_with_aggregate": agreement,
            "aggregate_compared": compared_count.astype(np.int64),
            "agreement_with_aggregate_low": agreement_low,
            "agreement_with_aggregate_high": agreement_high,
            "pre_annotated": seen.astype(np.int64),
            "anchoring": _ratio(kept, seen),
            "anchoring_low": anchoring_low,
            "anchoring_high": anchoring_high,
            "flagged": np.nan_to_num(accuracy, nan=np.inf) < project.min_gold_accuracy,
        },
        columns=list(REPORT_COLUMNS),
    )
    for column in ("annotated", "skipped", "cancelled", "gold_answers", "aggregate_compared", "kappa_tasks"):
        report[column] = report[column].astype(np.int64)
    return report


def annotator_report(snapshot_path: str | Path, project: Project, gold: dict | None = None) -> pd.DataFrame:
    """One row per annotator pseudonym of the snapshot (sorted), with the columns `REPORT_COLUMNS`
    (module docstring); `gold` (sentence id -> GoldAnswer) defaults to the project's gold questions."""
    return report_from_frames(read_frames(snapshot_path, project, gold), project)


def quality_summary(report: pd.DataFrame) -> dict:
    """What the card and the manifest say of annotator quality (no pseudonyms): the number of annotators,
    their gold accuracies (sorted, 3 places), the anchoring rate over all pre-annotated spans and how many
    are flagged."""
    accuracies = sorted(round(float(v), 3) for v in report["gold_accuracy"] if not math.isnan(v))
    seen = float(report["pre_annotated"].sum()) if len(report) else 0.0
    kept = float((report["anchoring"].fillna(0) * report["pre_annotated"]).sum()) if len(report) else 0.0
    return {
        "annotators": int(len(report)),
        "gold_accuracy": accuracies,
        "anchoring_rate": round(kept / seen, 3) if seen else None,
        "flagged": int(report["flagged"].sum()) if len(report) else 0,
    }


# --- output: table, CSV, JSON ---------------------------------------------------------------------------


def report_records(report: pd.DataFrame, places: int = 4) -> list[dict]:
    """The report as plain objects, one per annotator: floats rounded, NaN as None."""
    records = []
    for row in report.itertuples(index=False):
        record = {}
        for column, value in zip(report.columns, row):
            if isinstance(value, (bool, np.bool_)):
                record[column] = bool(value)
            elif isinstance(value, (int, np.integer)):
                record[column] = int(value)
            elif isinstance(value, (float, np.floating)):
                record[column] = None if math.isnan(value) else round(float(value), places)
            else:
                record[column] = value
        records.append(record)
    return records


_TABLE = (  # (column, header, format); laid out by builder.report.render_table like every report
    ("annotator", "  annotator", "{}"),
    ("annotated", "annotated", "{:d}"),
    ("skipped", "skipped", "{:d}"),
    ("cancelled", "cancelled", "{:d}"),
    ("median_lead_time", "lead_s", "{:.1f}"),
    ("gold_answers", "gold", "{:d}"),
    ("gold_accuracy", "gold_acc", "{:.3f}"),
    ("gold_interval", "95% interval", "{}"),
    ("gold_span_f1_exact", "span_f1", "{:.3f}"),
    ("gold_span_f1_overlap", "overlap_f1", "{:.3f}"),
    ("kappa", "kappa", "{:.3f}"),
    ("agreement_with_aggregate", "agree_agg", "{:.3f}"),
    ("anchoring", "anchoring", "{:.3f}"),
)


def render(report: pd.DataFrame, fmt: str) -> str:
    """The report as text: `table` (flagged annotators marked *), `csv` or `json` (a list of objects)."""
    if fmt == "json":
        import json

        return json.dumps(report_records(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return pd.DataFrame(report_records(report), columns=list(REPORT_COLUMNS)).to_csv(index=False)
    if fmt != "table":
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    from builder.report import render_table

    rows = []
    for record in report_records(report):
        low, high = record["gold_accuracy_low"], record["gold_accuracy_high"]
        record["gold_interval"] = f"{low:.3f}-{high:.3f}" if low is not None else None
        row = {column: None if record[column] is None else form.format(record[column]) for column, _, form in _TABLE}
        row["annotator"] = ("* " if record["flagged"] else "  ") + record["annotator"]
        rows.append(row)
    columns = [(column, header) for column, header, _ in _TABLE]
    return render_table(columns, rows, right={column for column, _, _ in _TABLE[1:]})


@dataclass
class QualityResult:
    report: pd.DataFrame
    text: str
    summary: dict
    ignored: dict
    tasks: int
    output: Path | None = None
    steering: dict | None = None  # builder.records.steering.steering_summary: the control arm (None: no arms)


def _is_quality_report(path: Path) -> bool:
    """Whether `path` holds what `builder quality` writes (or nothing), so `-o` may replace it: its whole
    header line (table or CSV), or a JSON list of report rows. A roster that merely starts with
    "annotator" is the user's."""
    import json

    try:
        if path.stat().st_size > 64 << 20:
            return False
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.strip():
        return True
    first = text.splitlines()[0]
    if first == ",".join(REPORT_COLUMNS) or first.split() == " ".join(h for _, h, _ in _TABLE).split():
        return True
    try:
        rows = json.loads(text)
    except ValueError:
        return False
    return isinstance(rows, list) and all(isinstance(r, dict) and set(r) == set(REPORT_COLUMNS) for r in rows)


def check_report_output(path: str | Path, project: Project) -> Path:
    """Refuse (one line) an output that is a folder, inside releases/, or an existing file that is not a
    quality report (a snapshot, records, anything else of the user's)."""
    from builder.outputs import check_output_file

    resolved = check_output_file(path, project)
    if resolved.is_file() and not _is_quality_report(resolved):
        raise InputError(
            f"-o {path}: refusing to overwrite {resolved}: it is not a report of `builder quality`; "
            "name a new file, or move it away first"
        )
    return Path(path)


def quality_report(
    project: Project, snapshot: Path | None = None, fmt: str = "table", output: Path | None = None
) -> QualityResult:
    """What `builder quality` does: the report of `snapshot` (default the project's), rendered as `fmt`,
    written atomically to `output` when given (checked before any work)."""
    from builder.jsonio import atomic_write

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if output is not None:
        output = check_report_output(output, project)
    from builder.records.steering import steering_lines, steering_summary

    frames = read_frames(snapshot or project.snapshot_path, project)
    report = report_from_frames(frames, project)
    text = render(report, fmt)
    steering = steering_summary(snapshot or project.snapshot_path, project, intervals=True)  # as the card
    if steering is not None and fmt == "table":  # CSV and JSON stay one row per annotator
        text += "\nSuggestions and the control arm:\n" + "".join(f"  {line}\n" for line in steering_lines(steering))
    if output is not None:
        with atomic_write(output, "w") as handle:
            handle.write(text)
    return QualityResult(report, text, quality_summary(report), frames.ignored, frames.tasks, output, steering)

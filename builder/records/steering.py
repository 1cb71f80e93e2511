"""The control arm: how much the suggestions (pre-annotations) steer the annotators.

`builder push` withholds the suggestion from a seeded share of the tasks (`[annotation]
suggestion_holdout`, 0.1 by default whenever a predictor makes suggestions): those tasks go to Label
Studio without any prediction, the others with the predictor's. Which arm a task is in is decided per
sentence, from a hash of its sentence id salted with the dataset's name (`withheld`): the same sentence
is in the same arm on every push, whatever the file, its order or the batch size, and a task never moves
between arms (the arm is also written into the task's data as `suggestion_arm`, so changing the share
later does not rewrite history, and `builder predict` leaves the withheld tasks without predictions).
By sentence rather than by article: the arms then share every article, topic and annotator, and
hold many more units than there are articles, so a small share still gives both arms answers.
Gold questions are assigned like any other sentence (they must look like any other task), which
also gives gold accuracy per arm. Tasks pushed before the holdout existed, or without a predictor
(`--predictor none`), carry no arm and are left out of the comparison.

What the model would have suggested on a withheld task is recorded at push (and by `builder predict` after
a retrain) in annotations/withheld-suggestions.jsonl (`WITHHELD_FILE`, one line per sentence and model
version, the last line of a sentence is its current one), never in Label Studio, where an annotator could
see it. That gives the cleanest measure of steering: how often annotators give the model's stance when it
is shown (accepted unchanged) against when it is not (agreeing with the withheld suggestion on their own).

`steering_summary` reads the snapshot (the arm and the suggestion shown travel with each task through
`builder pull`) and reports, per arm: tasks, sentences answered, the stance label distribution,
Krippendorff's alpha on stance (builder.records.agreement, as `builder agreement` computes it), gold
accuracy; in the suggested arm, how often a shown suggestion was accepted unchanged (the annotator's
stance is the suggested stance; the annotator's spans are exactly the suggested spans, start, end and
label, on tasks whose suggestion proposed spans), and in the control arm the same figures against the
withheld suggestion. The difference between the arms' label distributions is tested with Pearson's
chi-square test of homogeneity (scipy); the rate of giving the model's stance, and gold accuracy, with
Fisher's exact test; with too few answers the summary says so instead of a verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from builder.jsonio import finished, started
from builder.model import ENTITIES, STANCE
from builder.project import Project
from builder.pseudonyms import is_pseudonym

ARM_FIELD = "suggestion_arm"  # in a task's data: which arm builder push put it in
SHOWN = "shown"
WITHHELD = "withheld"
ARMS = (SHOWN, WITHHELD)
_SALT = "builder suggestion holdout"
WITHHELD_FILE = "withheld-suggestions.jsonl"  # under annotations/: what the model would have suggested
MIN_EXPECTED = 5  # the chi-square test needs at least this expected count in every cell
ALPHA = 0.05  # the significance level the verdict uses


def withheld(sentence_id: str, share: float, salt: str) -> bool:
    """Whether the sentence is in the control arm (no suggestion shown): a hash of its id and `salt`
    (the dataset's name), read as a number in [0, 1), is below `share`. Stable across pushes."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{_SALT}\0{salt}\0{sentence_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def suggestion_arm(project: Project, sentence_id: str, predictor) -> str | None:
    """The arm a pushed sentence goes in: SHOWN, WITHHELD, or None when there are no arms (no predictor,
    or `[annotation] suggestion_holdout = 0`)."""
    if predictor is None or project.suggestion_holdout <= 0:
        return None
    return WITHHELD if withheld(sentence_id, project.suggestion_holdout, project.name) else SHOWN


_ELSEWHERE: ContextVar[Path | None] = ContextVar("withheld_suggestions_elsewhere", default=None)


def withheld_path(project: Project) -> Path:
    """annotations/withheld-suggestions.jsonl: the suggestions withheld from the control arm's tasks (or the
    file `withheld_at` names for the block)."""
    return _ELSEWHERE.get() or project.annotations_dir / WITHHELD_FILE


@contextmanager
def withheld_at(path: Path) -> Iterator[None]:
    """Keep the withheld suggestions at `path` for the block: `builder run` pushes the bundled sample to a
    throwaway server, whose tasks have no place in the repository's committed annotations/."""
    token = _ELSEWHERE.set(path)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


def withheld_suggestions(tasks: list[dict], predict: Callable[[int], dict | None]) -> list[dict]:
    """The lines `record_withheld` writes for the withheld ones among `tasks` (Label Studio tasks as builder
    pushes them), `predict(i)` being what the predictor proposes for task i (None: nothing; asked only for
    the withheld tasks)."""
    rows = []
    for i, task in enumerate(tasks):
        if task["data"].get(ARM_FIELD) != WITHHELD:
            continue
        prediction = predict(i)
        if prediction:
            rows.append(
                {
                    "sentence_id": task["data"]["sentence_id"],
                    "model_version": prediction["model_version"],
                    "result": prediction["result"],
                }
            )
    return rows


def record_withheld(project: Project, rows: list[dict]) -> None:
    """Append `rows` (`withheld_suggestions`) to annotations/withheld-suggestions.jsonl, after Label Studio
    confirmed the tasks. Appended, never rewritten: a line cut short by a crash is skipped when read."""
    if not rows:
        return
    import orjson

    path = withheld_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows))


def recorded_withheld(project: Project) -> dict[str, dict]:
    """sentence id -> its last line of annotations/withheld-suggestions.jsonl ({} without the file)."""
    from builder.jsonio import read_jsonl

    path = withheld_path(project)
    if not path.is_file():
        return {}
    return {
        row["sentence_id"]: row
        for row in read_jsonl(path, lambda where, detail: None)
        if isinstance(row, dict) and isinstance(row.get("sentence_id"), str) and isinstance(row.get("result"), list)
    }


def _suggested(task: dict) -> tuple[str | None, frozenset | None]:
    """(stance, spans) the task's predictions suggested: the first stance of the predictions (sorted by model
    version, as the snapshot keeps them) and the union of their entity spans; None where they suggest none."""
    stance, spans = None, set()
    predictions = task.get("predictions")
    for prediction in predictions if isinstance(predictions, list) else ():
        result = prediction.get("result") if isinstance(prediction, dict) else None
        for item in result if isinstance(result, list) else ():
            if isinstance(item, dict):
                value = item.get("value") if isinstance(item.get("value"), dict) else {}
                if item.get("from_name") == STANCE and stance is None:
                    stance = _stance(value)
                elif item.get("from_name") == ENTITIES:
                    spans |= _spans([item])
    return stance, (frozenset(spans) if spans else None)


def _stance(value: dict) -> str | None:
    choices = value.get("choices")
    return choices[0] if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str) else None


def _answer_stance(result: list) -> str | None:
    """The stance of an annotation's result (its first stance item), or None."""
    for item in result:
        if isinstance(item, dict) and item.get("from_name") == STANCE:
            return _stance(item["value"]) if isinstance(item.get("value"), dict) else None
    return None


def _spans(result: list) -> set:
    spans = set()
    for item in result:
        value = item.get("value") if isinstance(item, dict) else None
        if isinstance(item, dict) and item.get("from_name") == ENTITIES and isinstance(value, dict):
            labels = value.get("labels")
            start, end = value.get("start"), value.get("end")
            if type(start) is int and type(end) is int and isinstance(labels, list) and len(labels) == 1:
                spans.add((start, end, str(labels[0])))
    return spans


def _empty_arm(labels: list[str]) -> dict:
    return {
        "tasks": 0,
        "sentences": 0,
        "answers": 0,
        "labels": dict.fromkeys(labels, 0),
        "units": [],
        "gold_answers": 0,
        "gold_correct": 0,
        "stance_suggested": 0,
        "stance_accepted": 0,
        "spans_suggested": 0,
        "spans_accepted": 0,
    }


def read_arms(tasks, project: Project, gold: dict, would_be: dict | None = None) -> dict[str, dict] | None:
    """Per arm, the counts `steering_summary` reports, from snapshot tasks; None when no task has an arm.
    `would_be`: the withheld suggestions (`recorded_withheld`), compared with the control arm's answers."""
    reader = started(arms_reader(project, gold, would_be))
    for task in tasks:
        reader.send(("", task))
    return finished(reader)


def arms_reader(project: Project, gold: dict, would_be: dict | None = None):
    """`read_arms` as a generator sent (place, task) pairs (`builder.jsonio.started`, then None: `finished` gives
    the arms); what is not a task (an object) is skipped. `builder build` feeds it from its one read of the
    snapshot."""
    would_be = would_be or {}
    labels = project.stance_values
    arms = {arm: _empty_arm(labels) for arm in ARMS}
    seen = False
    while (item := (yield)) is not None:
        task = item[1]
        data = task.get("data") if isinstance(task, dict) else None
        arm = data.get(ARM_FIELD) if isinstance(data, dict) else None
        if arm not in arms:
            continue
        seen = True
        facts = arms[arm]
        facts["tasks"] += 1
        answer = gold.get(data.get("sentence_id"))
        if arm == SHOWN:
            stance_shown, spans_shown = _suggested(task)
        else:  # what the model would have suggested, where it was recorded
            line = would_be.get(data.get("sentence_id"))
            stance_shown, spans_shown = _suggested({"predictions": [line]}) if line else (None, None)
        unit = []
        for annotation in task.get("annotations") if isinstance(task.get("annotations"), list) else ():
            if not isinstance(annotation, dict) or annotation.get("was_cancelled") is True:
                continue
            if not is_pseudonym(annotation.get("annotator")):  # `builder quality` counts these
                continue
            result = annotation.get("result") if isinstance(annotation.get("result"), list) else []
            stance = _answer_stance(result)
            if stance not in facts["labels"]:
                stance = None
            if answer is not None:
                facts["gold_answers"] += 1
                facts["gold_correct"] += stance is not None and stance == answer.stance
            elif stance is not None:
                unit.append(stance)
            if stance_shown is not None:
                facts["stance_suggested"] += 1
                facts["stance_accepted"] += stance == stance_shown
            if spans_shown is not None:
                facts["spans_suggested"] += 1
                facts["spans_accepted"] += _spans(result) == spans_shown
        if unit:
            facts["sentences"] += 1
            facts["answers"] += len(unit)
            for stance in unit:
                facts["labels"][stance] += 1
            facts["units"].append(unit)
    return arms if seen else None


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _label_test(arms: dict[str, dict]) -> dict:
    """Pearson's chi-square test of homogeneity of the two arms' stance label counts."""
    counts = [[arms[arm]["labels"][label] for label in arms[SHOWN]["labels"]] for arm in ARMS]
    columns = [i for i in range(len(counts[0])) if counts[0][i] + counts[1][i] > 0]
    table = [[row[i] for i in columns] for row in counts]
    test = {"test": "chi-square", "statistic": None, "df": None, "p": None}
    if not all(sum(row) for row in table):
        return {**test, "verdict": "cannot tell: an arm has no stance answers"}
    if len(columns) < 2:
        return {**test, "verdict": "no difference: both arms gave a single, same label"}
    from scipy.stats import chi2_contingency

    statistic, p, df, expected = chi2_contingency(table, correction=False)
    test.update(statistic=round(float(statistic), 3), df=int(df), p=round(float(p), 4))
    if float(expected.min()) < MIN_EXPECTED:
        test["verdict"] = (
            f"too few answers to tell (an expected count is {float(expected.min()):.1f}; the test needs "
            f"{MIN_EXPECTED} in every cell)"
        )
    else:
        test["verdict"] = "the arms differ" if p < ALPHA else "no difference detected"
    return test


def _fisher(arms: dict[str, dict], hits: str, trials: str, what: str) -> dict | None:
    """Fisher's exact test of the rate `hits` / `trials` between the arms; None without trials in both."""
    rows = [[arms[a][hits], arms[a][trials] - arms[a][hits]] for a in ARMS]
    if not all(sum(row) for row in rows):
        return None
    from scipy.stats import fisher_exact

    p = float(fisher_exact(rows).pvalue)
    verdict = "the arms differ" if p < ALPHA else "no difference detected"
    if min(sum(row) for row in rows) < 10:
        verdict = f"too few {what} to tell"
    return {"test": "fisher-exact", "p": round(p, 4), "verdict": verdict}


def steering_summary(
    snapshot: Path, project: Project, gold: dict | None = None, intervals: bool = False
) -> dict | None:
    """What the card, the manifest and `builder quality` say of the control arm (module docstring), or None
    when no task of the snapshot carries an arm. Lines that are not JSON are skipped (`builder quality`
    counts them). `intervals`: each figure with its 95% interval and n too (`summary_of_arms`)."""
    from builder.jsonio import read_jsonl

    if gold is None:
        from builder.gold.answers import project_gold

        gold = project_gold(project)
    tasks = (t for t in read_jsonl(snapshot, lambda where, detail: None) if isinstance(t, dict))
    return summary_of_arms(read_arms(tasks, project, gold, recorded_withheld(project)), project, intervals)


def summary_of_arms(arms: dict[str, dict] | None, project: Project, intervals: bool = False) -> dict | None:
    """`steering_summary` of the arms `read_arms` (or `arms_reader`) counted; None when no task had an arm.
    `intervals` (the card of manifest format 10 on): each arm's alpha, gold accuracy and accepted shares also
    as figures with their 95% interval and n (`arm_figures`)."""
    from builder.records.agreement import stance_agreement

    if arms is None:
        return None
    summary: dict = {"holdout": project.suggestion_holdout, "arms": {}}
    for arm in ARMS:
        facts = arms[arm]
        records = [{"annotations": [{"stance": s} for s in unit]} for unit in facts.pop("units")]
        agreement = stance_agreement(records, project.stance_values)
        if intervals:
            facts["intervals"] = arm_figures(records, facts, project.stance_values)
        facts["labels"] = dict(facts["labels"])
        facts["krippendorff_alpha"] = agreement["krippendorff_alpha"]
        facts["gold_accuracy"] = _rate(facts["gold_correct"], facts["gold_answers"])
        facts["stance_accepted_rate"] = _rate(facts["stance_accepted"], facts["stance_suggested"])
        facts["spans_accepted_rate"] = _rate(facts["spans_accepted"], facts["spans_suggested"])
        summary["arms"][arm] = facts
    summary["labels_test"] = _label_test(arms)
    summary["stance_test"] = _fisher(arms, "stance_accepted", "stance_suggested", "answers")
    summary["gold_test"] = _fisher(arms, "gold_correct", "gold_answers", "gold answers")
    return summary


# An arm's alpha gets its bootstrap interval up to this many sentences, as the card's agreement (its weights would
# take 200 bytes a sentence); above it the interval reads n/a (the shares' Wilson intervals cost nothing).
ARM_BOOTSTRAP_LIMIT = 100_000


def arm_figures(records: list[dict], facts: dict, labels: list[str]) -> dict:
    """One arm's figures with their 95% interval and n (builder.records.intervals.figure): Krippendorff's alpha
    (bootstrap over sentences, builder.records.evidence; up to `ARM_BOOTSTRAP_LIMIT` sentences), gold accuracy
    and the accepted shares (Wilson)."""
    from builder.records.evidence import stance_evidence
    from builder.records.intervals import figure, wilson_interval

    def share(hits: int, trials: int) -> dict:
        if not trials:
            return figure(None, 0, (None, None), places=3)
        low, high = wilson_interval(hits, trials)
        return figure(hits / trials, trials, (float(low), float(high)), places=3)

    return {
        "krippendorff_alpha": stance_evidence(records, labels)["krippendorff_alpha"]
        if len(records) <= ARM_BOOTSTRAP_LIMIT
        else figure(None, len(records), (None, None)),
        "gold_accuracy": share(facts["gold_correct"], facts["gold_answers"]),
        "stance_accepted_rate": share(facts["stance_accepted"], facts["stance_suggested"]),
        "spans_accepted_rate": share(facts["spans_accepted"], facts["spans_suggested"]),
    }


def _share(counts: dict) -> str:
    total = sum(counts.values())
    if not total:
        return "no stance answers"
    return ", ".join(f"{label} {n} ({n / total:.0%})" for label, n in counts.items())


def _figure(value, places: str = ".3f", interval: dict | None = None) -> str:
    """A figure as the lines give it; with its `interval` (an `arm_figures` figure, format 10 on) its 95%
    interval and n too."""
    text = "-" if value is None else format(value, places)
    if interval is not None and interval["low"] is not None:
        text += f" (95% interval {interval['low']:{places}}–{interval['high']:{places}}, n {interval['n']})"
    return text


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p {p:.4f}"


def steering_lines(summary: dict) -> list[str]:
    """The control arm in words, one line per fact (the card's bullets, `builder quality`'s lines)."""
    shown, held = summary["arms"][SHOWN], summary["arms"][WITHHELD]
    shown_in, held_in = shown.get("intervals", {}), held.get("intervals", {})
    lines = [
        f"Suggestions withheld from a seeded share of the tasks (the control arm; suggestion_holdout is now "
        f"{summary['holdout']:g}): "
        f"{shown['tasks']} tasks with suggestions, {held['tasks']} without.",
    ]
    for name, facts in (("with suggestions", shown), ("without suggestions", held)):
        gold = (
            f"gold accuracy {_figure(facts['gold_accuracy'], interval=facts.get('intervals', {}).get('gold_accuracy'))}"
            f" ({facts['gold_answers']} gold answers)"
            if facts["gold_answers"]
            else "no gold answers"
        )
        lines.append(
            f"{name}: {facts['sentences']} sentences, {facts['answers']} stance answers: {_share(facts['labels'])}; "
            "Krippendorff's alpha "
            f"{_figure(facts['krippendorff_alpha'], interval=facts.get('intervals', {}).get('krippendorff_alpha'))}; "
            f"{gold}."
        )
    lines.append(
        "Suggestions accepted unchanged: stance "
        f"{_figure(shown['stance_accepted_rate'], interval=shown_in.get('stance_accepted_rate'))} "
        f"({shown['stance_accepted']} of {shown['stance_suggested']} answers shown a stance), spans "
        f"{_figure(shown['spans_accepted_rate'], interval=shown_in.get('spans_accepted_rate'))} "
        f"({shown['spans_accepted']} of {shown['spans_suggested']} answers "
        "shown spans)."
    )
    if held["stance_suggested"] or held["spans_suggested"]:
        lines.append(
            "Without suggestions, answers matching the withheld one: stance "
            f"{_figure(held['stance_accepted_rate'], interval=held_in.get('stance_accepted_rate'))} "
            f"({held['stance_accepted']} of {held['stance_suggested']} answers), spans "
            f"{_figure(held['spans_accepted_rate'], interval=held_in.get('spans_accepted_rate'))} "
            f"({held['spans_accepted']} of {held['spans_suggested']} answers)."
        )
    else:
        lines.append("Without suggestions: no withheld suggestion recorded to compare with.")
    test = summary["labels_test"]
    figures = ""
    if test["p"] is not None:
        figures = f"chi-square {test['statistic']:.2f}, df {test['df']}, {_p(test['p'])}: "
    lines.append(f"Label distribution, with against without suggestions: {figures}{test['verdict']}.")
    if summary.get("stance_test"):
        stance_test = summary["stance_test"]
        lines.append(
            f"Giving the model's stance, with against without suggestions: Fisher's exact test "
            f"{_p(stance_test['p'])}: {stance_test['verdict']}."
        )
    if summary.get("gold_test"):
        gold_test = summary["gold_test"]
        lines.append(
            f"Gold accuracy, with against without suggestions: Fisher's exact test {_p(gold_test['p'])}: "
            f"{gold_test['verdict']}."
        )
    return lines

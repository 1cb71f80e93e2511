"""Setting up the Label Studio project from the scheme, and pushing sentences idempotently.

Which of the new sentences a push imports (`Selection`): all of them in file order (the default),
the first N, N at random (seeded: the same file, project and seed choose the same), or the N the
model is least certain about (`predictor.uncertainties`), spread over articles by a round-robin: the
most uncertain sentence of each article first (articles ordered by it), then the second of each,
and so on, so a few hard articles cannot take every slot. Chosen sentences are imported in file
order (an article's sentences stay together, and gold questions still wait for article boundaries).
"""

from __future__ import annotations

import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from builder.errors import ConfigError, Interrupted, LabelStudioError
from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer
from builder.labelstudio.project_api import (
    ensure_project,
    project_facts,
    push_lock,
    set_model_version,
    task_sentence_id_pages,
)
from builder.model import prediction_for
from builder.preannotate import article_batches, article_contexts, unproposed_kinds
from builder.project import Project
from builder.records.steering import ARM_FIELD, WITHHELD, record_withheld, suggestion_arm, withheld_suggestions

if TYPE_CHECKING:
    from builder.gold.mixing import GoldQuestions

BATCH_SIZE = 5000  # >= 1,000; Label Studio recounts the project after each import request
TASK_DATA_FIELDS = (
    "article_id",
    "article_title",
    "sentence_index",
    "occurrence",
    "text",
    "prev_text",
    "next_text",
    "start",
    "end",
)


@dataclass
class PushResult:
    project_id: int
    created: int  # sentences imported (gold questions not included)
    skipped: int
    project_created: bool
    gold: int = 0  # gold questions imported among them ([quality] gold_rate)
    gold_short: int = 0  # gold questions due but not imported: every one of the gold file is in the project
    select: str = "file"  # how the new sentences were chosen (Selection.how)
    left_out: int = 0  # new sentences not chosen (--limit)
    mean_uncertainty: float | None = None  # of the sentences imported, when the predictor measures uncertainty
    model_version: str | None = None  # the project's model version, set to the predictor's (None: unchanged)
    previous_model_version: str = ""  # the project's model version before this push
    withheld: int = 0  # tasks imported without a suggestion: the control arm ([annotation] suggestion_holdout)
    set_aside: dict[str, int] = field(default_factory=dict)  # sentences never pushed, by reason (`set_aside`)
    proposed: int = 0  # tasks imported with a pre-annotation (a Label Studio prediction)
    proposed_spans: int = 0  # entity spans in those pre-annotations
    proposed_stances: int = 0  # stance suggestions in them (one at most per task)
    unproposed: dict = field(default_factory=dict)  # builder.preannotate.unproposed_kinds: {kind: why none}


SELECTIONS = ("file", "uncertain", "random")
SCORE_BATCH = 2048  # sentences scored per predictor.uncertainties call


@dataclass(frozen=True)
class Selection:
    """Which of the new sentences to import: `how` in SELECTIONS, at most `limit` (None: all), `seed` for random."""

    how: str = "file"
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.how not in SELECTIONS:
            raise ConfigError(f"--select: unknown selection '{self.how}' (use {', '.join(SELECTIONS)})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if self.how != "file" and self.limit is None:
            raise ConfigError(f"--select {self.how} needs --limit N (how many sentences to choose)")


def uncertainties(predictor, texts: list[str], articles: list[str] | None = None) -> list[float] | None:
    """The predictor's uncertainty (0..1, higher: it knows less) of each text (read with the other texts of
    its article, `articles[i]` being text i's, by a predictor that takes article context); None if it
    measures none."""
    if callable(getattr(predictor, "article_contexts", None)) and articles is not None:
        return [float(u) for u in predictor.uncertainties(texts, articles)]
    if callable(getattr(predictor, "uncertainties", None)):
        return [float(u) for u in predictor.uncertainties(texts)]
    if callable(getattr(predictor, "uncertainty", None)):
        return [float(predictor.uncertainty(text)) for text in texts]
    return None


def choose_uncertain(candidates: Iterable[dict], predictor, limit: int) -> dict[str, float]:
    """The `limit` most uncertain of `candidates`, round-robin over articles; {sentence id: uncertainty}.

    Holds (id, article, uncertainty, position) per candidate, never the sentences."""
    by_article: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    batch: list[dict] = []

    def score() -> None:
        values = uncertainties(predictor, [s["text"] for s in batch], [s.get("article_id", "") for s in batch])
        for sentence, value in zip(batch, values, strict=True):
            by_article[sentence.get("article_id", "")].append((-value, len(positions), sentence["id"]))
            positions.append(None)
        batch.clear()

    positions: list[None] = []  # only its length: the candidate's position in the file (ties go to the earlier)
    for sentence in candidates:
        batch.append(sentence)
        if len(batch) >= SCORE_BATCH:
            score()
    if batch:
        score()
    ranked = [sorted(entries) for entries in by_article.values()]
    chosen: dict[str, float] = {}
    depth = 0
    while len(chosen) < limit:
        layer = sorted(entries[depth] for entries in ranked if len(entries) > depth)
        if not layer:
            break
        for negative, _, sentence_id in layer[: limit - len(chosen)]:
            chosen[sentence_id] = -negative
        depth += 1
    return chosen


def choose_random(candidates: Iterable[dict], limit: int, seed: int) -> set[str]:
    """`limit` of `candidates` drawn uniformly (reservoir sampling, seeded: deterministic); their ids."""
    rng = random.Random(seed)
    reservoir: list[str] = []
    for n, sentence in enumerate(candidates):
        if n < limit:
            reservoir.append(sentence["id"])
        else:
            slot = rng.randrange(n + 1)
            if slot < limit:
                reservoir[slot] = sentence["id"]
    return set(reservoir)


def task_for(sentence: dict, project: Project, predictor, context=None) -> dict:
    """A Label Studio task for one sentence, with a prediction (scored when the predictor scores) when it proposes,
    unless the sentence is in the control arm (`[annotation] suggestion_holdout`; its data says which arm);
    `context`: its article's context for a predictor that reads one (`builder.preannotate.article_contexts`)."""
    data = {key: sentence.get(key, "") for key in TASK_DATA_FIELDS}
    data["sentence_id"] = sentence["id"]
    data["target"] = sentence.get("target") or project.target
    task = {"data": data}
    arm = suggestion_arm(project, sentence["id"], predictor)  # the control arm: builder/records/steering.py
    if arm is not None:
        data[ARM_FIELD] = arm
    prediction = None if arm == WITHHELD else prediction_for(predictor, sentence["text"], context, data["target"])
    if prediction:
        task["predictions"] = [prediction]
    return task


def _article(sentence: dict) -> str:
    return sentence.get("article_id", "")


def import_tasks(connection: Connection, project_id: int, batch: list[dict], doing: str, ids: bool = False):
    """Import `batch` into the project through Label Studio's import API (one request); the new tasks' ids, in
    order, when `ids`, else None."""
    with calling(connection, doing):
        # The SDK's own HTTP client, with the body pre-encoded by orjson: the SDK's generic
        # encoder walks every value in Python and costs more than the server's import.
        # No blind retries: a retried import that the server had committed would duplicate
        # tasks. A failed push is resumed by re-running it, which skips what arrived.
        response = connection.http().request(
            f"api/projects/{project_id}/import",
            method="POST",
            params={"return_task_ids": "true" if ids else "false", "commit_to_project": "true"},
            content=orjson.dumps(batch),
            headers={"Content-Type": "application/json"},
            request_options={"max_retries": 0},
        )
    answer = check_response(connection, response, doing)
    if not ids:
        return None
    made = answer.get("task_ids") if isinstance(answer, dict) else None
    if not isinstance(made, list) or len(made) != len(batch):
        raise unexpected_answer(connection, doing, f"the ids of {len(batch)} new tasks")
    return made


def push_sentences(
    connection: Connection,
    project: Project,
    sentences: Iterable[dict] | str | Path,
    predictor=None,
    batch_size: int = BATCH_SIZE,
    progress: bool | None = None,
    on_batch: Callable[[int], None] | None = None,
    select: Selection | None = None,
    adopt_project: bool = False,
    importer: Callable[[Connection, int, list[dict], str], object] | None = None,
) -> PushResult:
    """Create or update the project, then import the sentences it does not have yet, in batches.

    `sentences`: dicts, or the path of a sentences file, checked whole (one streaming pass) before
    anything is sent, then streamed again: no list of every sentence is held in memory.
    Safe to re-run after any interruption: what is already there (by sentence id) is skipped,
    known from the project's push ledger (builder/labelstudio/ledger.py) when its count agrees
    with the project's, else from a listing of the project's tasks.
    Pushes into the same project wait for each other, so parallel runs never duplicate tasks.
    With `[quality] gold` and `gold_rate`, the project's gold questions are mixed into the new
    sentences at that rate, each once, made like any other task (builder/gold/mixing.py).
    `select` chooses which new sentences (see the module's docstring): `uncertain` and `random`
    read the sentences once more to choose, holding an id (and uncertainty) per new sentence. When
    the predictor proposes anything, the project's model version is set to the predictor's, so
    annotators see its predictions (Label Studio shows only the project's model version).
    The project is the one builder made on this server (see `project_api.find_project`); `adopt_project` takes the
    one titled like the scheme's when none is bound yet. `importer(connection, project_id, tasks, doing)` makes
    each batch's tasks in the project (default: `import_tasks`; a blind push's copies: builder/labelstudio/
    blind_import.py).
    """
    from builder.gold.mixing import check_pushed, gold_questions

    if batch_size < 1:
        raise LabelStudioError("batch size must be at least 1")
    select = select or Selection()
    if select.how == "uncertain" and uncertainties(predictor, []) is None:
        name = getattr(predictor, "model_version", None) or "none"
        raise ConfigError(
            f"--select uncertain: the predictor ({name}) does not measure uncertainty; "
            "use --predictor model (after `builder train`)"
        )
    gold = gold_questions(project)  # checked before anything is sent
    total = None
    if isinstance(sentences, (str, Path)):
        from builder.sentences.splitting import iter_numbered_sentences, iter_sentences

        path = Path(sentences)
        # every line checked before anything is sent
        total = check_pushed(iter_numbered_sentences(path), gold, lambda: iter_numbered_sentences(path))

        def reread() -> Iterator[dict]:
            return iter_sentences(path)
    else:
        if (gold is not None or select.how != "file") and not isinstance(sentences, Sized):
            sentences = list(sentences)  # checked against the gold questions (or chosen from) before anything is sent
        if isinstance(sentences, Sized):
            total = check_pushed(((None, s) for s in sentences), gold, lambda: ((None, s) for s in sentences))
        given = sentences

        def reread() -> Iterator[dict]:
            return iter(given)

    plan = PushPlan(
        connection,
        project,
        reread,
        total,
        predictor,
        batch_size,
        progress,
        on_batch,
        gold,
        select,
        adopt_project,
        importer,
    )
    with push_lock(connection, project):
        return _push_locked(plan)


@dataclass(frozen=True)
class PushPlan:
    """What one push was asked to do, settled (and its sentences checked) before the push lock is taken.

    One object rather than a dozen positional parameters relayed from `push_sentences` through the
    locked part to the import, where a swapped pair would still run."""

    connection: Connection
    project: Project
    reread: Callable[[], Iterator[dict]]  # the sentences, from the start, each call (the file is read again)
    total: int | None  # how many sentences, when known (for the progress bar)
    predictor: object | None
    batch_size: int
    progress: bool | None  # None: a bar on a terminal for a push of more than one batch
    on_batch: Callable[[int], None] | None  # told the count imported so far after each batch
    gold: GoldQuestions | None  # the project's gold questions, checked (None: no gold file)
    select: Selection
    adopt_project: bool = False
    importer: Callable[[Connection, int, list[dict], str], object] | None = None  # None: import_tasks


def _push_locked(plan: PushPlan) -> PushResult:
    from builder.labelstudio.ledger import open_ledger
    from builder.labelstudio.registry import server_identity

    connection, project = plan.connection, plan.project
    project_id, created = ensure_project(connection, project, adopt=plan.adopt_project)
    task_number, created_at = project_facts(connection, project_id)
    with open_ledger(project.root, server_identity(connection), project_id, created_at) as ledger:
        if ledger.tasks != task_number:  # an empty project needs no listing
            ledger.rebuild(task_sentence_id_pages(connection, project_id) if task_number else [])
        chosen = _choose(plan.reread(), ledger, plan.predictor, plan.select)
        result = _import_new(plan, project_id, created, ledger, chosen)
    if result.model_version is not None:
        previous = set_model_version(connection, project_id, result.model_version)
        if previous is None:  # refused: no prediction of it after all (deleted meanwhile)
            result.model_version = None
        else:
            result.previous_model_version = previous
    return result


def _choose(sentences: Iterable[dict], ledger, predictor, select: Selection) -> dict[str, float] | set[str] | None:
    """The ids `select` chooses among the sentences not in the project yet (None: decided while streaming)."""
    if select.how == "file":
        return None
    seen: set[str] = set()

    def candidates() -> Iterator[dict]:
        for sentence in sentences:
            if sentence.get("set_aside"):  # not a sentence to label: never a task (builder.sentences.nonsentences)
                continue
            if sentence["id"] not in seen and sentence["id"] not in ledger:
                seen.add(sentence["id"])
                yield sentence

    if select.how == "uncertain":
        return choose_uncertain(candidates(), predictor, select.limit)
    return choose_random(candidates(), select.limit, select.seed)


def _import_new(
    plan: PushPlan, project_id: int, created: bool, ledger, chosen: dict[str, float] | set[str] | None
) -> PushResult:
    """Import the chosen sentences the project lacks (`chosen` None: every new one, or the first `limit`)."""
    from builder.gold.mixing import MixCount, mix_gold
    from builder.labelstudio.drift import remember_tasks
    from builder.labelstudio.registry import server_identity

    connection, project, predictor, select = plan.connection, plan.project, plan.predictor, plan.select
    batch_size, on_batch, gold, total = plan.batch_size, plan.on_batch, plan.gold, plan.total
    sentences = plan.reread()
    progress = plan.progress
    bar = None
    if select.limit is not None:
        total = select.limit if total is None else min(total, select.limit)
    if progress or (progress is None and (total or 0) > batch_size and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=total, unit="sentence", desc="push", file=sys.stderr)
    done = skipped = left_out = taken = predicted = withheld = spans = stances = 0
    set_aside: Counter = Counter()
    pending_ids: set[str] = set()  # read, not yet sent: a repeat among them is skipped
    mixed = MixCount()
    scored: list[float] = []  # the uncertainty of each sentence imported, when the predictor measures it
    # the mean uncertainty of what a --limit chose (not measured on a whole-file push: it would cost a scoring pass)
    measures = select.limit is not None and uncertainties(predictor, []) is not None

    def send(items: list[tuple[dict, bool]]) -> None:
        nonlocal done, predicted, withheld, spans, stances
        pending = [sentence for sentence, _ in items]
        pending_gold = {sentence["id"] for sentence, is_gold in items if is_gold}
        # A sentence is read with the other sentences of its article, all in the same import batch.
        contexts = article_contexts(predictor, [(_article(s), s["text"]) for s in pending]) or {}
        batch = [task_for(s, project, predictor, contexts.get(_article(s))) for s in pending]
        doing = f"importing tasks {done + 1}-{done + len(batch)} (re-run to resume)"
        (plan.importer or import_tasks)(connection, project_id, batch, doing)
        ledger.record([s["id"] for s in pending])  # only once Label Studio confirmed the batch
        remember_tasks(project.root, server_identity(connection), project_id, batch)  # what pull checks data against
        # the control arm: what the predictor would have suggested, kept out of Label Studio (records/steering.py)
        would_be = withheld_suggestions(
            batch,
            lambda i: prediction_for(
                predictor,
                pending[i]["text"],
                contexts.get(_article(pending[i])),
                pending[i].get("target") or project.target,
            ),
        )
        record_withheld(project, would_be)
        done += len(batch)
        predicted += sum(1 for task in batch if task.get("predictions"))
        for task in batch:
            for item in task.get("predictions", [{}])[0].get("result", []):
                spans += item.get("type") == "labels"
                stances += item.get("type") == "choices"
        withheld += sum(1 for task in batch if task["data"].get(ARM_FIELD) == WITHHELD)
        if measures:
            ordinary = [s for s in pending if s["id"] not in pending_gold]
            if isinstance(chosen, dict):
                scored.extend(chosen[s["id"]] for s in ordinary)
            else:
                articles = [s.get("article_id", "") for s in ordinary]
                scored.extend(uncertainties(predictor, [s["text"] for s in ordinary], articles))
        if bar is not None:
            bar.update(len(pending) - len(pending_gold))  # the bar counts sentences, not gold questions
        pending_ids.difference_update(s["id"] for s in pending)
        if on_batch is not None:
            on_batch(done)

    def new_sentences() -> Iterator[dict]:
        """The chosen sentences the project does not have yet (each yielded before the next is read)."""
        nonlocal skipped, left_out, taken
        for sentence in sentences:
            reason = sentence.get("set_aside")
            if reason:  # a credit, dateline, byline or heading: context for its neighbours, never a task
                set_aside[reason] += 1
                if bar is not None and chosen is None and select.limit is None:
                    bar.update(1)
                continue
            sentence_id = sentence["id"]
            if sentence_id in pending_ids or sentence_id in ledger:
                skipped += 1
                if bar is not None and chosen is None and select.limit is None:
                    bar.update(1)
                continue
            full = select.limit is not None and taken >= select.limit  # file order: the first `limit` only
            if full or (chosen is not None and sentence_id not in chosen):
                left_out += 1
                continue
            taken += 1
            yield sentence

    stream: Iterator[tuple[dict, bool]] = ((s, False) for s in new_sentences())
    if gold is not None and project.gold_rate > 0:
        in_project = ledger.present(gold.sentences)
        unused = (s for sentence_id, s in gold.sentences.items() if sentence_id not in in_project)
        before = max(0, (ledger.tasks or 0) - len(in_project))  # the project's ordinary tasks: where the slots are
        stream = mix_gold(new_sentences(), unused, project.gold_rate, before, mixed)

    def read(pairs: Iterable[tuple[dict, bool]]) -> Iterator[tuple[dict, bool]]:
        for sentence, is_gold in pairs:
            pending_ids.add(sentence["id"])
            yield sentence, is_gold

    # A batch ends where an article ends, so that each sentence is read with its whole article (an article's
    # sentences are consecutive in a sentences file; a gold question among them does not end it).
    batches = article_batches(read(stream), lambda pair: None if pair[1] else _article(pair[0]), batch_size)
    try:
        for batch in batches:
            send(batch)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {done} of the new tasks were imported into project '{project.project_title}' "
            f"(id {project_id}) on {connection.url}, and the batch in flight may have arrived too; "
            "re-run the same `builder push` to complete it (tasks already there are skipped)"
        ) from None
    finally:
        if bar is not None:
            bar.close()
    return PushResult(
        project_id,
        done - mixed.gold,
        skipped,
        created,
        mixed.gold,
        mixed.short,
        select=select.how,
        left_out=left_out,
        set_aside=dict(sorted(set_aside.items())),
        mean_uncertainty=sum(scored) / len(scored) if scored else None,
        model_version=getattr(predictor, "model_version", None) if predicted else None,
        withheld=withheld,
        proposed=predicted,
        proposed_spans=spans,
        proposed_stances=stances,
        unproposed=unproposed_kinds(predictor, project),
    )


def attached_lines(result: PushResult, predictor_spec: str) -> list[str]:
    """What `builder push` says it attached: tasks with proposals, entity spans and stance suggestions, and for
    each kind attached to no task, why (the predictor cannot propose it, the control arm, nothing found)."""
    imported = result.created + result.gold
    if imported == 0:
        return ["pre-annotations: no new task, nothing attached"]
    source = f" of {result.model_version}" if result.model_version else f" (--predictor {predictor_spec})"
    lines = [
        f"pre-annotations{source}: {result.proposed} of {imported} new tasks with proposals, "
        f"{result.proposed_spans} entity spans proposed, {result.proposed_stances} stance suggestions"
    ]
    for kind, count in (("entity spans", result.proposed_spans), ("stance", result.proposed_stances)):
        if count:
            continue
        why = result.unproposed.get(kind)
        if why is None:
            shown = imported - result.withheld
            why = (
                f"every new task is in the control arm ({result.withheld} withheld)"
                if shown == 0
                else f"the predictor found none in the {shown} tasks it was shown"
            )
        lines.append(f"no {kind} {'proposed' if kind == 'entity spans' else 'suggested'}: {why}")
    return lines

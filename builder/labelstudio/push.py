"""Setting up the Label Studio project from the scheme, and pushing sentences idempotently.

Which of the new sentences a push imports (`Selection`): all of them in file order (the default),
the first N, N at random (seeded: the same file, project and seed choose the same), or the N the
model is least certain about (`predictor.uncertainties`), spread over articles by a round-robin: the
most uncertain sentence of each article first (articles ordered by it), then the second of each,
and so on, so a few hard articles cannot take every slot. Chosen sentences are imported in file
order (an article's sentences stay together, and gold questions still wait for article boundaries).
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path

import orjson

from builder.errors import ConfigError, Interrupted, LabelStudioError
from builder.labeling_config import labeling_config
from builder.labelstudio.client import Connection, calling, check_response, task_pages, unexpected_answer
from builder.model import prediction_for
from builder.preannotate import article_batches, article_contexts
from builder.project import Project
from builder.records.steering import ARM_FIELD, WITHHELD, record_withheld, suggestion_arm, withheld_suggestions

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


def instructions_html(project: Project) -> str:
    """The guidelines (markdown) as the HTML Label Studio shows as the project's instructions."""
    import markdown

    return markdown.markdown(project.guidelines(), extensions=["tables"])


def project_settings(project: Project) -> dict:
    return {
        "title": project.project_title,
        "label_config": labeling_config(project),
        "expert_instruction": instructions_html(project),
        "show_instruction": True,
        "maximum_annotations": project.annotators_per_sentence,
        "overlap_cohort_percentage": 100,
        "show_skip_button": True,
        "enable_empty_annotation": False,
    }


def titled_projects(connection: Connection, project: Project) -> list[int]:
    """The ids of the Label Studio projects titled like the scheme's (any member may make one).

    Asks for ids and titles only: without `include`, Label Studio counts every project's tasks and
    annotations for the listing (over a second on a 200,000-task project)."""
    doing = "looking up the project"
    matches, page = [], 1
    while True:
        with calling(connection, doing):
            response = connection.http().request(
                "api/projects/",
                method="GET",
                params={"title": project.project_title, "include": "id,title", "page": page, "page_size": 100},
            )
        if response.status_code == 404 and page > 1:
            break  # past the last page
        body = check_response(connection, response, doing)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or not all(isinstance(p, dict) and type(p.get("id")) is int for p in results):
            raise unexpected_answer(connection, doing, "a page of projects with ids and titles")
        matches += [p["id"] for p in results if p.get("title") == project.project_title]
        if not body.get("next") or not results:
            break
        page += 1
    return matches


def _created_at(connection: Connection, project_id: int) -> str | None:
    """The project's creation time as Label Studio gives it, or None when no project has this id."""
    doing = "reading the project"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    if response.status_code == 404:
        return None
    body = check_response(connection, response, doing)
    if not isinstance(body, dict) or not isinstance(body.get("created_at"), str):
        raise unexpected_answer(connection, doing, "a project with its creation time")
    from builder.labelstudio.registry import moment

    return moment(body["created_at"])


def _adopt_hint(project: Project) -> str:
    from builder.labelstudio.registry import REGISTRY_NAME

    return (
        f"any member can make a project titled '{project.project_title}', so builder uses only the one it made "
        f"(bound in annotations/{REGISTRY_NAME}); if this one is yours, run `builder push --adopt-project` once"
    )


def find_project(connection: Connection, project: Project) -> int | None:
    """The id of this repository's project on the server, or None when it has none there (yet).

    The project is the one `builder push` made (or was told to adopt), bound by id and creation time in
    the committed registry (builder/labelstudio/registry.py), whatever its title says. Without a binding,
    a project with the scheme's title is someone else's look-alike and is refused, unless this machine's
    push ledger shows builder pushed into it (made before projects were bound): then it is bound now."""
    from builder.labelstudio.ledger import pushed_into
    from builder.labelstudio.registry import bind_project, bound_project, server_identity

    server = server_identity(connection)
    bound = bound_project(project, server)
    if bound is not None:
        if _created_at(connection, bound["id"]) == bound["created_at"]:
            return bound["id"]
        return None  # deleted: `builder push` makes a new one, unless a look-alike stands in its way
    matches = titled_projects(connection, project)
    if not matches:
        return None
    if len(matches) > 1:
        raise LabelStudioError(
            f"{len(matches)} projects are titled '{project.project_title}' in Label Studio at {connection.url}, "
            f"and builder made none of them ({_adopt_hint(project)}): rename or delete the extra ones"
        )
    created = _created_at(connection, matches[0])
    if created is not None and pushed_into(project.root, matches[0], created):
        bind_project(project, server, matches[0], created)
        return matches[0]
    raise LabelStudioError(
        f"project '{project.project_title}' (id {matches[0]}) in Label Studio at {connection.url} was not made "
        f"by builder for this repository: {_adopt_hint(project)}"
    )


def require_project(connection: Connection, project: Project) -> int:
    project_id = find_project(connection, project)
    if project_id is None:
        raise LabelStudioError(
            f"unknown project '{project.project_title}' in Label Studio at {connection.url}: "
            "run `builder push` first, or check label_studio.project_title"
        )
    return project_id


def adopt_project(connection: Connection, project: Project) -> int:
    """Bind the one existing project titled like the scheme's as this repository's (`builder push --adopt-project`)."""
    from builder.labelstudio.registry import bind_project, server_identity

    matches = titled_projects(connection, project)
    if len(matches) != 1:
        raise LabelStudioError(
            f"--adopt-project: {len(matches) or 'no'} project{'s are' if len(matches) != 1 else ' is'} titled "
            f"'{project.project_title}' in Label Studio at {connection.url}; adopting needs exactly one"
        )
    created = _created_at(connection, matches[0])
    if created is None:
        raise LabelStudioError(f"--adopt-project: project {matches[0]} was deleted meanwhile; retry")
    bind_project(project, server_identity(connection), matches[0], created)
    return matches[0]


def ensure_project(connection: Connection, project: Project, adopt: bool = False) -> tuple[int, bool]:
    """Create the project (and bind it), or update its config and settings from the scheme. Returns (id, created).

    `adopt`: when no project is bound on this server, take the one titled like the scheme's."""
    from builder.labelstudio.registry import bind_project, bound_project, server_identity

    client = connection.client()
    settings = project_settings(project)
    server = server_identity(connection)
    if adopt and bound_project(project, server) is None:
        project_id = adopt_project(connection, project)
    else:
        project_id = find_project(connection, project)
    if project_id is None:
        others = titled_projects(connection, project)
        if others:  # the bound project was deleted, and a look-alike took its title
            raise LabelStudioError(
                f"the project builder made in Label Studio at {connection.url} is gone, and project {others[0]} "
                f"titled '{project.project_title}' is not builder's: {_adopt_hint(project)}"
            )
        with calling(connection, "creating the project"):
            project_id = client.projects.create(**settings).id
        created = _created_at(connection, project_id)
        if created is None:
            raise LabelStudioError(f"the project builder made in Label Studio at {connection.url} was deleted; retry")
        bind_project(project, server, project_id, created)
        return project_id, True
    with calling(connection, "updating the project's labeling config"):
        client.projects.update(project_id, **settings)
    return project_id, False


def task_sentence_id_pages(connection: Connection, project_id: int) -> Iterator[list]:
    """The `sentence_id` of every task of the project, a page at a time (None for a task without one)."""
    doing = "listing the project's tasks"
    for tasks in task_pages(connection, project_id, {"fields": "task_only", "include": "id,data"}, doing):
        if not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
            raise unexpected_answer(connection, doing, "a list of tasks with data")
        yield [task["data"].get("sentence_id") for task in tasks]


def existing_sentence_ids(connection: Connection, project_id: int) -> set[str]:
    """`sentence_id` of every task already in the project (a full listing: slow on big projects)."""
    return {s for page in task_sentence_id_pages(connection, project_id) for s in page if s is not None}


def project_facts(connection: Connection, project_id: int) -> tuple[int, str]:
    """(task count, creation time) of a project: one request."""
    doing = "counting the project's tasks"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    body = check_response(connection, response, doing)
    if not isinstance(body, dict) or type(body.get("task_number")) is not int:
        raise unexpected_answer(connection, doing, "a project with its task_number")
    return body["task_number"], str(body.get("created_at") or "")


def set_model_version(connection: Connection, project_id: int, model_version: str) -> str | None:
    """Set the project's `model_version` (Label Studio shows annotators only the predictions of that version).

    Returns the version it had before, or None when Label Studio refused: no task holds a prediction
    of `model_version` (it accepts only a version it has predictions of)."""
    doing = "reading the project's model version"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    body = check_response(connection, response, doing)
    if not isinstance(body, dict):
        raise unexpected_answer(connection, doing, "a project")
    previous = body.get("model_version") or ""
    if previous == model_version:
        return previous
    doing = f"setting the project's model version to {model_version}"
    with calling(connection, doing):
        response = connection.http().request(
            f"api/projects/{project_id}",
            method="PATCH",
            content=json.dumps({"model_version": model_version}),
            headers={"Content-Type": "application/json"},
        )
    if response.status_code == 400 and "model_version" in response.text:
        return None
    check_response(connection, response, doing)
    return previous


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
    prediction = None if arm == WITHHELD else prediction_for(predictor, sentence["text"], context)
    if prediction:
        task["predictions"] = [prediction]
    return task


def _article(sentence: dict) -> str:
    return sentence.get("article_id", "")


def push_lock(connection: Connection, project: Project):
    """Serializes pushes into one Label Studio project (released when the process ends, however)."""
    from builder.locks import exclusive, lock_path

    def waiting(holder: str) -> None:
        print(
            f"waiting for another builder push into '{project.project_title}' on {connection.url} (pid {holder})",
            file=sys.stderr,
        )

    from builder.labelstudio.registry import server_identity

    return exclusive(lock_path("push", server_identity(connection), project.project_title), on_wait=waiting)


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
    The project is the one builder made on this server (see `find_project`); `adopt_project` takes the
    one titled like the scheme's when none is bound yet.
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
        from builder.sentences.stage import iter_numbered_sentences, iter_sentences

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

    with push_lock(connection, project):
        return _push_locked(
            connection, project, reread, total, predictor, batch_size, progress, on_batch, gold, select, adopt_project
        )


def _push_locked(
    connection, project, reread, total, predictor, batch_size, progress, on_batch, gold, select, adopt_project=False
) -> PushResult:
    from builder.labelstudio.ledger import open_ledger
    from builder.labelstudio.registry import server_identity

    project_id, created = ensure_project(connection, project, adopt=adopt_project)
    task_number, created_at = project_facts(connection, project_id)
    with open_ledger(project.root, server_identity(connection), project_id, created_at) as ledger:
        if ledger.tasks != task_number:  # an empty project needs no listing
            ledger.rebuild(task_sentence_id_pages(connection, project_id) if task_number else [])
        chosen = _choose(reread(), ledger, predictor, select)
        result = _import_new(
            connection,
            project,
            project_id,
            created,
            ledger,
            reread(),
            total,
            predictor,
            batch_size,
            progress,
            on_batch,
            gold,
            select,
            chosen,
        )
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
            if sentence["id"] not in seen and sentence["id"] not in ledger:
                seen.add(sentence["id"])
                yield sentence

    if select.how == "uncertain":
        return choose_uncertain(candidates(), predictor, select.limit)
    return choose_random(candidates(), select.limit, select.seed)


def _import_new(
    connection,
    project,
    project_id,
    created,
    ledger,
    sentences,
    total,
    predictor,
    batch_size,
    progress,
    on_batch,
    gold,
    select,
    chosen,
) -> PushResult:
    from builder.gold.mixing import MixCount, mix_gold

    http = connection.http()
    bar = None
    if select.limit is not None:
        total = select.limit if total is None else min(total, select.limit)
    if progress or (progress is None and (total or 0) > batch_size and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=total, unit="sentence", desc="push", file=sys.stderr)
    done = skipped = left_out = taken = predicted = withheld = 0
    pending_ids: set[str] = set()  # read, not yet sent: a repeat among them is skipped
    mixed = MixCount()
    scored: list[float] = []  # the uncertainty of each sentence imported, when the predictor measures it
    # the mean uncertainty of what a --limit chose (not measured on a whole-file push: it would cost a scoring pass)
    measures = select.limit is not None and uncertainties(predictor, []) is not None

    def send(items: list[tuple[dict, bool]]) -> None:
        nonlocal done, predicted, withheld
        pending = [sentence for sentence, _ in items]
        pending_gold = {sentence["id"] for sentence, is_gold in items if is_gold}
        # A sentence is read with the other sentences of its article, all in the same import batch.
        contexts = article_contexts(predictor, [(_article(s), s["text"]) for s in pending]) or {}
        batch = [task_for(s, project, predictor, contexts.get(_article(s))) for s in pending]
        doing = f"importing tasks {done + 1}-{done + len(batch)} (re-run to resume)"
        with calling(connection, doing):
            # The SDK's own HTTP client, with the body pre-encoded by orjson: the SDK's generic
            # encoder walks every value in Python and costs more than the server's import.
            # No blind retries: a retried import that the server had committed would duplicate
            # tasks. A failed push is resumed by re-running it, which skips what arrived.
            response = http.request(
                f"api/projects/{project_id}/import",
                method="POST",
                params={"return_task_ids": "false", "commit_to_project": "true"},
                content=orjson.dumps(batch),
                headers={"Content-Type": "application/json"},
                request_options={"max_retries": 0},
            )
        check_response(connection, response, doing)
        ledger.record([s["id"] for s in pending])  # only once Label Studio confirmed the batch
        # the control arm: what the predictor would have suggested, kept out of Label Studio (records/steering.py)
        would_be = withheld_suggestions(
            batch, lambda i: prediction_for(predictor, pending[i]["text"], contexts.get(_article(pending[i])))
        )
        record_withheld(project, would_be)
        done += len(batch)
        predicted += sum(1 for task in batch if task.get("predictions"))
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
        mean_uncertainty=sum(scored) / len(scored) if scored else None,
        model_version=getattr(predictor, "model_version", None) if predicted else None,
        withheld=withheld,
    )

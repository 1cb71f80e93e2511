"""The dataset card (README.md), generated from the build: never edit it by hand."""

from __future__ import annotations

from pathlib import Path

from builder import __version__
from builder.dataset.label_provenance import annotations_creators
from builder.dataset.splits import ARTICLE_HASH, SHINGLE_WORDS, SPLITS, parquet_name, parquet_pattern
from builder.errors import InputError
from builder.labeling_config import config_hash
from builder.markup import code, single_quoted
from builder.model import DATASET_FORMAT, card_field_table, features
from builder.project import Project
from builder.records.agreement import span_agreement, stance_agreement
from builder.sentences.segmenter import splitter_name, splitter_summary

# Every release before manifest format 5 was split with this; its card says so, as it did.
SPLITTER_BEFORE_FORMAT_5 = "`lines+segtok/1` (newlines first, then segtok)"


def splitter_record(facts) -> dict:
    """The splitter as a release names it ({"name", "summary"}): as the release recorded it (manifest format 8 on),
    else this builder's (format 5 on), else the one every release before format 5 was split with. A rebuild so
    names the splitter the release was cut with, even after the splitter changed."""
    if facts.splitter:
        return facts.splitter
    if facts.current_splitter:
        return {"name": splitter_name(), "summary": splitter_summary()}
    return {"name": "lines+segtok/1", "summary": SPLITTER_BEFORE_FORMAT_5}


# The manifest's hashes of what the sentences were labelled under (a rebuild states them as recorded).
LABELLED_UNDER = ("labeling_config", "guidelines")


def labelled_under(project: Project, facts) -> dict:
    """The sha256 of the labeling config and of the guidelines the sentences were labelled under
    ({"labeling_config", "guidelines"}): as a rebuilt release's manifest records them, else this builder's
    config and the project's guidelines now. A rebuild so states what its annotators saw, even after the
    generated config or the guidelines changed (the data does not depend on either)."""
    if facts.labelled_under:
        return facts.labelled_under
    return {"labeling_config": config_hash(project), "guidelines": _sha(project.guidelines())}


def _size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "10M<n<100M"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card_metadata(project: Project, folder: Path, facts) -> dict:
    present = [s for s in SPLITS if facts.counts[s]["records"]]
    info = {"features": features(project, facts.dataset_format)._to_yaml_list()}
    info["splits"] = [
        {
            "name": s,
            "num_bytes": (folder / parquet_name(s)).stat().st_size,
            "num_examples": facts.counts[s]["records"],
        }
        for s in present
    ]
    info["dataset_size"] = sum(split["num_bytes"] for split in info["splits"])
    total = sum(facts.counts[s]["records"] for s in SPLITS)
    return {
        "license": project.license,
        "language": [project.language],
        "pretty_name": project.pretty_name,
        # a stance-only or entities-only scheme's card names its own task only
        "task_categories": [
            c
            for c, on in (("token-classification", project.has_entities), ("text-classification", project.has_stance))
            if on
        ],
        "task_ids": [
            i
            for i, on in (
                ("named-entity-recognition", project.has_entities),
                ("multi-class-classification", project.has_stance),
            )
            if on
        ],
        "annotations_creators": annotations_creators(project, facts),
        "language_creators": ["found"],
        "multilinguality": ["monolingual"],
        "size_categories": [_size_category(total)],
        "source_datasets": list(project.source_datasets),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": parquet_pattern(s)} for s in present],
                "default": True,
            }
        ],
        "dataset_info": info,
    }


def agreement_of(project: Project, facts) -> tuple[dict, dict]:
    """(stance, entity) agreement of `facts.records`, computed once per build (the card and croissant.json state it)."""
    cached = getattr(facts, "agreement", None)
    if cached is None:
        cached = (  # None for the half a stance-only or entities-only scheme leaves out
            stance_agreement(facts.records, project.stance_values) if project.has_stance else None,
            span_agreement(facts.records, project.entity_values) if project.has_entities else None,
        )
        facts.agreement = cached
    return cached


def agreement_table_with_intervals(project: Project, facts) -> str:
    """The card's Agreement table with each figure's 95% interval and n (manifest format 10 on): the figures of
    builder.records.evidence (as the "Agreement evidence" section gives them), so no figure stands without its
    interval; "based on" says what the n counts."""
    from builder.dataset.evidence_card import evidence_of, interval_text

    e = evidence_of(project, facts)
    s, f1 = e["stance"], e["span_f1"]

    def row(name: str, figure: dict, based_on: str) -> list:
        value = "n/a" if figure["value"] is None else figure["value"]
        return [name, value, interval_text(figure), figure["n"], based_on]

    kappa = s["fleiss_kappa"]
    stance_rows = [
        row(
            "Krippendorff's alpha (nominal), stance",
            s["krippendorff_alpha"],
            "sentences with 2+ annotators",
        ),
        row(
            "Fleiss' kappa, stance",
            kappa,
            f"sentences with the most common number of annotators ({kappa['annotators_per_sentence']})",
        ),
    ]
    entity_rows = [
        row(
            "pairwise exact-span F1, entities (all labels)",
            f1["f1"],
            f"sentences with 2+ annotators, {f1['pairs']} annotator pairs",
        ),
        *[
            row(
                f"pairwise exact-span F1, {label}",
                f1["per_label"][label],
                f"sentences with 2+ annotators, {f1['per_label'][label]['spans']} spans",
            )
            for label in project.entity_values
        ],
    ]
    rows = (stance_rows if project.has_stance else []) + (entity_rows if project.has_entities else [])
    return _table(["measure", "value", "95% interval", "n", "based on"], rows)


def describe_source(src: dict, markdown: bool = False) -> str:
    """One declared source: name, its articles, licence, attribution and URL (the card bolds the name)."""
    name = f"**{src['name']}**" if markdown else src["name"]
    articles = f" ({src['articles']})" if markdown else f" (articles {src['articles']})"
    return (
        name
        + (articles if src.get("articles") else "")
        + f": licence {src['license']}."
        + (f" {src['attribution']}" if src.get("attribution") else "")
        + (f" <{src['url']}>" if src.get("url") else "")
    )


def card_body(project: Project, facts, snapshot_hash: str, version: str | None) -> str:
    total = sum(facts.counts[s]["records"] for s in SPLITS)
    under = labelled_under(project, facts)
    stance_rows, entity_rows = [], []
    for split in SPLITS:
        c = facts.counts[split]
        if not c["records"]:
            continue
        stance_rows.append(
            [
                split,
                len(c["articles"]),
                c["records"],
                *[c["stance"].get(v, 0) for v in project.stance_values],
                c["stance"].get("(unresolved)", 0),
            ]
        )
        entity_rows.append([split, *[c["entities"].get(v, 0) for v in project.entity_values]])
    unresolved = sum(facts.counts[s]["stance"].get("(unresolved)", 0) for s in SPLITS)
    agreement = "Agreement is computed on datasets up to 100,000 sentences; see `builder stats` for larger ones."
    if (facts.records or total == 0) and getattr(facts, "intervals", False):  # manifest format 10 on
        agreement = agreement_table_with_intervals(project, facts)
    elif facts.records or total == 0:
        s, e = agreement_of(project, facts)
        stance_measures = (
            [
                [
                    "Krippendorff's alpha (nominal), stance",
                    s["krippendorff_alpha"],
                    f"{s['units']} sentences with 2+ annotators, {s['ratings']} ratings",
                ],
                [
                    "Fleiss' kappa, stance",
                    s["fleiss_kappa"],
                    f"{s['fleiss_units']} sentences with the most common number of annotators",
                ],
            ]
            if s is not None
            else []
        )
        entity_measures = (
            [
                ["pairwise exact-span F1, entities (all labels)", e["f1"], f"{e['pairs']} annotator pairs"],
                *[
                    [f"pairwise exact-span F1, {label}", e["per_label"][label], f"{e['spans'][label]} spans"]
                    for label in project.entity_values
                ],
            ]
            if e is not None
            else []
        )
        agreement = _table(["measure", "value", "based on"], stance_measures + entity_measures)
    sources = (
        "\n".join(f"- {describe_source(src, markdown=True)}" for src in project.sources)
        or "- (no sources declared in builder.toml `[[dataset.sources]]`)"
    )
    overlaps = ""
    if facts.overlaps:
        names = ", ".join(f"{code(o['id'])} {o['label']} {single_quoted(o['text'])}" for o in facts.overlaps[:10])
        if facts.dataset_format >= 3:
            overlaps = (
                f"\n- {overlaps_text(facts.overlaps)}: {names}" + (" ..." if len(facts.overlaps) > 10 else "") + "."
            )
        else:  # the card of an older release, as it was
            overlaps = (
                f"\n- {len(facts.overlaps)} entity span(s) overlap a longer span: they are kept in `entities` "
                f"but cannot be held by the BIO view (`ner_tags`): {names}"
                + (" ..." if len(facts.overlaps) > 10 else "")
                + "."
            )
    v = facts.validation
    pre_annotations = (
        "with pre-annotations\n   from a gazetteer of earlier annotations"  # the card of an older release, as it was
        if facts.predictions is None
        else predictions_text(facts.predictions)
    )
    labels_yaml = ", ".join(f"`{x}`" for x in project.stance_values)
    croissant_version = "1.1" if getattr(facts, "research_notes", False) else "1.0"  # 1.1: manifest format 9 on
    croissant = (
        "\n`croissant.json`, beside this card, describes the files, fields and label names in Croissant "
        f"{croissant_version}, with\n"
        "its Responsible-AI fields (sources, annotation, agreement, limitations, personal information).\n"
        if getattr(facts, "croissant", False)
        else ""
    )
    if croissant and getattr(facts, "research_notes", False):
        from builder.dataset.label_provenance import card_provenance_text

        croissant += card_provenance_text(facts)
    splits_text = _splits_text(project, facts)
    data_statement = ""
    if getattr(facts, "research_notes", False):  # manifest format 9 on
        from builder.dataset.data_statement import data_statement_text

        data_statement = data_statement_text(project, facts)
    if facts.dataset_format >= 2:
        aggregation = aggregation_text(project, unresolved, facts.dataset_format, unresolved_spans(facts))
        quality = "\n## Quality control\n\n" + quality_text(project, facts.gold_questions, facts.quality) + "\n"
    else:  # the card of an older release, as it was
        aggregation = f"""Aggregation: a ground-truth annotation wins; otherwise the
majority stance (ties stay unresolved: {unresolved} sentence(s)); an entity span is kept when at least
{project.entity_agreement:.0%} of the sentence's annotators marked exactly that span with that label."""
        quality = ""
    evidence = ""
    if getattr(facts, "evidence", False):
        from builder.dataset.evidence_card import evidence_text

        if facts.records or total == 0:
            evidence = evidence_text(project, facts, getattr(facts, "quality_figures", []))
        else:
            evidence = "\n## Agreement evidence\n\nComputed on datasets up to 100,000 sentences; see `builder stats`.\n"
    # What a stance-only or entities-only scheme's card says of its one half (a both-scheme card is as it was).
    stance_table = _table(["split", "articles", "sentences", *project.stance_values, "unresolved"], stance_rows)
    entity_table = _table(["split", *project.entity_values], entity_rows)
    if project.has_stance and project.has_entities:
        labelled = f"""Sentences from news articles, each labelled for its **stance** towards a target
(*"{project.target}"*, unless an article sets its own) and for **named entities** as character spans
and as BIO tags."""
        first_label = (
            f'ds["train"].features["stance"].int2str(ds["train"][0]["stance"])  # one of {labels_yaml}; -1 = unresolved'
        )
        distribution = f"{stance_table}\n\nEntity spans (aggregated):\n\n{entity_table}"
    elif project.has_stance:
        labelled = f"""Sentences, each labelled for its **stance** towards a target (*"{project.target}"*, unless an
article sets its own; the `target` column says which). The scheme has no entities."""
        first_label = (
            f'ds["train"].features["stance"].int2str(ds["train"][0]["stance"])  # one of {labels_yaml}; -1 = unresolved'
        )
        distribution = stance_table + by_target_text(project, facts)
    else:
        labelled = """Sentences, each labelled for **named entities** as character spans and as BIO tags. The scheme
has no stance."""
        first_label = 'ds["train"].features["ner_tags"].feature.int2str(ds["train"][0]["ner_tags"])  # BIO tags'
        rows = [[row[0], *stance[1:3], *row[1:]] for row, stance in zip(entity_rows, stance_rows, strict=True)]
        distribution = "Entity spans (aggregated):\n\n" + _table(
            ["split", "articles", "sentences", *project.entity_values], rows
        )
    neutral = (
        "\n- Most news sentences report facts, so `neutral` dominates the stance labels."
        if (project.has_stance and project.has_entities) or "neutral" in project.stance_values
        else ""
    )
    return f"""
# {project.pretty_name}

{labelled} Built with builder {__version__}{f", dataset version {version}" if version else ""}.

```python
from datasets import load_dataset

ds = load_dataset("path/or/hub-id/of/{project.name}")
{first_label}
```
{croissant}
## Data

{card_field_table(project, facts.dataset_format)}

## Splits and label distribution

{splits_text}

{distribution}

## Agreement

{len(facts.annotators)} annotators, named by pseudonyms only. {aggregation}

{agreement}
{quality}{evidence}
## How it was made

1. Articles were normalised (newlines, BOM), boilerplate lines removed (reported), and split into sentences
   with {splitter_record(facts)["summary"]}.
2. Sentences were labelled in Label Studio with a generated labeling config (sha256 `{under["labeling_config"][:16]}`),
   following the annotation guidelines (sha256 `{under["guidelines"][:16]}`), {pre_annotations}.
3. The pulled snapshot (sha256 `{snapshot_hash[:16]}`) was validated against a JSON Schema and semantic checks:
   {f"{v.tasks_in} tasks in, {v.records} records, {v.quarantined} quarantined." if v else "(records given directly)."}
4. Label scheme sha256 `{project.scheme_hash()[:16]}`.

## Sources and licences

{sources}

The dataset is released under `{project.license}`; each source's own licence applies to its text.

## Known limitations

- Small: {total} sentences; figures above carry wide uncertainty.{neutral}
- Annotators are pseudonymous and few; agreement is reported above, not hidden.{overlaps}
{data_statement}
## Citation

{project.citation or "If you use this dataset, cite it by name and version, and cite its sources above."}
"""


def by_target_text(project: Project, facts) -> str:
    """A stance-only card's table of each target as its own population (its sentences, stance counts and stance
    agreement), when the articles name more than one target; "" otherwise."""
    targets = sorted({target for target, _ in facts.by_target})
    if len(targets) < 2:
        return ""
    rows = []
    for target in targets:
        counts = [facts.by_target.get((target, value), 0) for value in [*project.stance_values, "(unresolved)"]]
        records = [r for r in facts.records if r.get("target") == target]
        alpha = stance_agreement(records, project.stance_values)["krippendorff_alpha"] if records else None
        rows.append([target, sum(counts), *counts, "n/a" if alpha is None else alpha])
    header = ["target", "sentences", *project.stance_values, "unresolved", "Krippendorff's alpha, stance"]
    return (
        f"\n\nStance by target ({len(targets)} targets, each its own population: a label's share differs by "
        f"target, and agreement is measured within each):\n\n{_table(header, rows)}"
    )


def _splits_text(project: Project, facts) -> str:
    """The card's paragraph on how the splits were made (by the method they were made with), and a line per
    split that is empty or far off its share (builder.dataset.splits.uneven_splits)."""
    split_facts = facts.split_facts
    shared = split_facts.get("shared_text_groups", 0)
    near_duplicates = near_duplicates_text(split_facts)
    frozen = split_facts.get("frozen_test_articles", 0)
    if getattr(facts, "split_method", ARTICLE_HASH) == ARTICLE_HASH:  # the card of a release before format 6
        return (
            "Splits are by article (all sentences of an article in one split), decided from a hash of the article id"
            + f"""
(proportions {project.split_proportions}), so adding articles never moves an existing one;
articles sharing a sentence text are kept in one split ({shared} such group(s));
{near_duplicates}{frozen} article(s) are in test because an earlier release had them there."""
        )
    text = f"""Splits are by article (all sentences of an article in one split), cut by sentence counts: articles,
in the order of a hash of their id (a group kept together: of its first id), are dealt where the running count
of sentences comes closest to each share (proportions {project.split_proportions}), so each split
is within one article (or group) of its share; adding articles moves only a few existing ones, next to a cut.
Split method `{facts.split_method}`. Articles sharing a sentence text are kept in one split ({shared} such group(s));
{near_duplicates}{frozen} article(s) are in test because an earlier release had them there."""
    uneven = getattr(facts, "uneven", [])
    if uneven:
        meant = (
            "meant: `[splits] allow_uneven = true`"
            if project.allow_uneven_splits
            else "`builder release` refuses this unless `[splits] allow_uneven = true`"
        )
        text += "\n\n" + "\n".join(f"- **Uneven split**: {line} ({meant})." for line in uneven)
    return text


def near_duplicates_text(split_facts: dict) -> str:
    """The card's line on near-duplicate articles (manifest format 5 on); "" when they were not grouped."""
    if "near_duplicate_groups" not in split_facts:
        return ""
    groups = split_facts["near_duplicate_groups"]
    moved = split_facts["articles_moved_to_keep_near_duplicates_together"]
    return (
        f"near-duplicate articles (Jaccard index of their word {SHINGLE_WORDS}-shingles at least "
        f"{split_facts['near_duplicate_threshold']:g},\nfound with MinHash) are kept in one split too "
        f"({groups} such group(s), {moved} article(s) moved);\n"
    )


# What made a prediction, by the start of its model version (builder.preannotate, builder.learn).
PREDICTORS = (
    ("builder-gazetteer/", "a gazetteer of earlier annotations"),
    ("builder-", "builder's model trained on earlier annotations"),
    ("spacy/", "a spaCy pipeline"),
)


def predictor_kind(model_version: str) -> str:
    """What kind of predictor a model version names, in the card's words."""
    return next((kind for start, kind in PREDICTORS if model_version.startswith(start)), "another predictor")


def prediction_counts(snapshot: Path) -> dict:
    """The snapshot's pre-annotations: tasks, tasks with a prediction, and tasks per model version (sorted).

    Reads the snapshot line by line; what is not a task, or a prediction without a model version, is
    counted as a task without (`builder validate` reports the shape problems). A line that is not JSON is
    an InputError."""
    from builder.jsonio import finished, read_jsonl, started

    def unreadable(where: str, detail: str) -> None:
        raise InputError(f"{where}: {detail}; run `builder validate` to see every problem")

    reader = started(predictions_reader())
    for task in read_jsonl(snapshot, unreadable):
        reader.send(("", task))
    return finished(reader)


def predictions_reader():
    """`prediction_counts` as a generator sent (place, task) pairs (`builder.jsonio.started`, then None:
    `finished` gives the counts), fed by `builder build` from its one read of the snapshot. A `BadLine` sent
    makes the result an InputError (to raise) naming the first such line, as `prediction_counts` would raise."""
    from collections import Counter

    from builder.jsonio import BadLine

    tasks = with_predictions = 0
    versions: Counter = Counter()
    bad = None
    while (item := (yield)) is not None:
        where, task = item
        if isinstance(task, BadLine):
            if bad is None:
                bad = InputError(f"{where}: {task.detail}; run `builder validate` to see every problem")
            continue
        tasks += 1
        predictions = task.get("predictions") if isinstance(task, dict) else None
        names = {
            p["model_version"]
            for p in (predictions if isinstance(predictions, list) else [])
            if isinstance(p, dict) and isinstance(p.get("model_version"), str) and p["model_version"]
        }
        with_predictions += bool(names)
        versions.update(names)
    if bad is not None:
        return bad
    return {"tasks": tasks, "tasks_with": with_predictions, "model_versions": dict(sorted(versions.items()))}


def predictions_text(counts: dict) -> str:
    """The card's words on pre-annotations (manifest format 4 on): on how many tasks, by which model versions."""
    text = f"with pre-annotations shown to annotators on {counts['tasks_with']} of the {counts['tasks']} tasks"
    if counts["model_versions"]:
        text += (
            " ("
            + "; ".join(
                f"{code(version)}, {predictor_kind(version)}, on {n}" for version, n in counts["model_versions"].items()
            )
            + ")"
        )
    return text


def overlaps_text(overlaps: list[dict]) -> str:
    """What the BIO view could not hold, counted by kind (dataset format 3 on, where `entities` overlap only
    as a ground-truth annotation, or unresolved spans a project keeps, put them)."""
    from collections import Counter

    from builder.dataset.bio import LOSS_KINDS

    kinds = Counter(o.get("kind") for o in overlaps)
    counted = ", ".join(f"{kinds[kind]} {kind}" for kind in LOSS_KINDS if kinds[kind])
    return (
        f"{len(overlaps)} entity span(s) of `entities` cannot be held by the BIO view (`ner_tags`), which tags "
        f"the longest, then the earliest, of overlapping spans ({counted}); they come from ground-truth "
        "annotations, which keep what the adjudicator marked"
    )


def unresolved_spans(facts) -> int:
    """The entity spans the vote could not decide (validation counts them; dataset format 3 on)."""
    from builder.records.aggregate import UNRESOLVED_ENTITIES

    report = getattr(facts.validation, "report", None)
    return report.kept[UNRESOLVED_ENTITIES] if report is not None else 0


def aggregation_text(
    project: Project, unresolved: int, dataset_format: int = DATASET_FORMAT, unresolved_entities: int = 0
) -> str:
    """The card's sentence on how labels were aggregated (dataset format 2 on; the entity rule of format 3 on)."""
    share = f"{project.entity_agreement:.0%}"
    weighted = project.aggregation == "dawid-skene"
    if dataset_format >= 3:
        kept = " (also in `entities`, status `unresolved`)" if project.keep_unresolved_entities else ""
        entities = (
            "an entity span is kept when\n"
            + ("the summed reliability of the annotators" if weighted else "the annotators")
            + " who marked exactly that span with that label beat those who marked another\n"
            "label or an overlapping span there, and those who marked nothing there, and make up at least "
            f"{share} of the\nsentence's {'summed reliability' if weighted else 'annotators'} (with two "
            "annotators, both): one label per extent, no overlapping spans;\na ground-truth annotation's spans "
            "are kept as they are. Each span's `status` says how it was decided\n(`ground_truth`, `unanimous`, "
            f"`majority`); {unresolved_entities} span(s) the vote could not decide are in `unresolved_entities`"
            f"{kept},\nfor adjudication."
        )
    elif weighted:
        entities = (
            "an entity span is kept\n"
            f"when annotators holding at least {share} of the sentence's summed reliability marked exactly that\n"
            "span with that label."
        )
    else:
        entities = (
            f"an entity span is kept when at least {share} of the sentence's annotators\n"
            "marked exactly that span with that label."
        )
    if not project.has_entities:  # a stance-only scheme: the stance rule alone
        return (
            f"Aggregation method: `{project.aggregation}`. A ground-truth annotation wins; otherwise the "
            f"{'most probable' if weighted else 'majority'}\nstance (ties stay unresolved: {unresolved} sentence(s)); "
            "`stance_distribution` is the share of each stance\namong the annotations"
            + (" (the model's posterior)." if weighted else ".")
        )
    if not project.has_stance:  # an entities-only scheme: the entity rule alone
        return "Aggregation method: `majority`. A ground-truth annotation wins; otherwise " + entities
    if weighted:
        return (
            "Aggregation method: `dawid-skene`. A ground-truth annotation wins; otherwise each annotator is\n"
            "weighted by their reliability, estimated over the whole snapshot by the Dawid-Skene EM (gold answers\n"
            "and ground truth anchor it): the stance is the most probable label (ties stay unresolved:\n"
            f"{unresolved} sentence(s)), `stance_distribution` is the model's posterior, and " + entities
        )
    return (
        "Aggregation method: `majority`. A ground-truth annotation wins; otherwise the majority stance\n"
        f"(ties stay unresolved: {unresolved} sentence(s)), `stance_distribution` is the share of each stance\n"
        "among the annotations, and " + entities
    )


def describe_accuracies(values: list) -> str:
    """Per-annotator accuracies as the card shows them: all of them (sorted) when few, else quartiles."""
    import statistics

    values = sorted(v for v in values if v is not None)
    if not values:
        return "no annotator answered a gold question"
    spread = f"min {values[0]:.3f}, median {statistics.median(values):.3f}, max {values[-1]:.3f}"
    if len(values) <= 30:
        return f"{len(values)} annotator(s): {', '.join(f'{v:.3f}' for v in values)} ({spread})"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{len(values)} annotators: {spread}, quartiles {q1:.3f} and {q3:.3f}"


def describe_accuracy_figures(figures: list[dict]) -> str:
    """Per-annotator gold accuracies with their 95% Wilson intervals and n (manifest format 10 on): each one when
    few, else the quartiles of the values and the widest interval (each annotator's is in `builder quality`)."""
    if not figures:
        return "no annotator answered a gold question"
    if len(figures) <= 30:
        listed = ", ".join(
            f"{f['value']:.3f} (95% interval {f['low']:.3f}–{f['high']:.3f}, n {f['n']})" for f in figures
        )
        return f"{len(figures)} annotator(s): {listed}"
    widest = max(figures, key=lambda f: (f["high"] - f["low"], f["n"]))
    return (
        describe_accuracies([f["value"] for f in figures])
        + f"; the widest 95% interval {widest['low']:.3f}–{widest['high']:.3f} (n {widest['n']} gold answers; "
        "each annotator's interval and n: `builder quality`)"
    )


def quality_text(project: Project, gold_questions: int, quality: dict | None) -> str:
    """The card's quality-control lines (dataset format 2 on); `quality` is the summary of
    builder.records.quality (None: not measured)."""
    lines = [
        f"- Gold questions: gold rate {project.gold_rate:g} of the pushed tasks; {gold_questions} gold question(s) "
        "in the snapshot, left out of the dataset.",
    ]
    if quality is None:
        lines += [
            "- Gold stance accuracy per annotator (pseudonymous): not measured.",
            "- Anchoring rate (pre-annotated spans kept unchanged): not measured.",
        ]
    else:
        anchoring = quality.get("anchoring_rate")
        accuracies = describe_accuracies(quality.get("gold_accuracy", []))
        anchoring_text = "not measured" if anchoring is None else f"{anchoring:.3f}"
        if "gold_accuracy_figures" in quality:  # manifest format 10 on: each figure with its interval and n
            accuracies = describe_accuracy_figures(quality["gold_accuracy_figures"])
            if anchoring is not None:
                a = quality["anchoring"]
                anchoring_text += f" (95% interval {a['low']:.3f}–{a['high']:.3f}, n {a['n']} pre-annotated spans)"
        flagged = quality.get("flagged", 0)
        lines += [
            f"- Gold stance accuracy per annotator (pseudonymous): {accuracies}.",
            f"- Anchoring rate (pre-annotated spans kept unchanged): {anchoring_text}.",
            f"- Annotators below the minimum gold accuracy ({project.min_gold_accuracy:g}): {flagged}.",
        ]
        if quality.get("suggestion_arms"):  # the control arm (builder.records.steering)
            from builder.records.steering import steering_lines

            lines += [f"- {line[0].upper()}{line[1:]}" for line in steering_lines(quality["suggestion_arms"])]
    return "\n".join(lines)


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_card(project: Project, folder: Path, facts, version: str | None) -> Path:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(**card_metadata(project, folder, facts))
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n" + card_body(project, facts, facts.snapshot_hash, version))
    path = folder / "README.md"
    path.write_text(str(card), encoding="utf-8")
    return path

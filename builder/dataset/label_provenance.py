"""Who or what made each label, and where each sentence came from: croissant.json's provenance (manifest format 9).

Croissant 1.1 describes provenance with W3C PROV-O, down to single values: an annotation field whose
`equivalentProperty` is a PROV-O property holds, per record, the agent a value is attributed to or the
entity it was derived from. builder says, for a release of manifest format 9 on:

- each annotator's own labels (`annotations`) are attributed to the annotator's pseudonym, a ground-truth
  annotation's to the adjudicator who made it (`annotations.ground_truth`);
- where a suggestion (a pre-annotation) was shown and the annotator submitted it unchanged (the stance
  the suggestion gave, or exactly its entity spans), the label is attributed to the software agent, named
  by its model version: one row of `accepted-suggestions.parquet` (`ACCEPTED_FILE`) per such label, read
  from the snapshot's predictions as `builder build` reads the snapshot once (`accepted_suggestions_reader`);
- the aggregated labels (`stance`, `entities`) are attributed to builder's aggregation and derived from
  `annotations`;
- each sentence is derived from its article, and each article (record set `articles`) has the source it
  comes from ([[dataset.sources]], matched by `articles`), the source's URL where known and the source's
  licence as a column; where articles carry different licences, `usageInfo` names each.

Everything here is derived from the project file and the snapshot: deterministic, no date.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from builder import __version__
from builder.model import ENTITIES, STANCE

ACCEPTED_FILE = "accepted-suggestions.parquet"
CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"
PROV = "http://www.w3.org/ns/prov#"
# What the JSON-LD context of Croissant 1.1 (its Appendix 1) adds to 1.0's, and PROV-O's prefix.
CONTEXT_1_1 = {
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "containedIn": "cr:containedIn",
    "excludes": "cr:excludes",
    "isArray": "cr:isArray",
    "prov": PROV,
    "readLines": "cr:readLines",
    "sdVersion": "cr:sdVersion",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
UNKNOWN_LICENCE = "unknown (no [[dataset.sources]] entry names this article)"


# --- the suggestions accepted unchanged, from the snapshot


def _suggestions(task: dict) -> tuple[tuple[str, str] | None, tuple[frozenset, str] | None]:
    """((stance, model version), (spans, model versions)) the task's predictions suggested, each None where
    none: the first stance in the snapshot's order, and the union of every prediction's entity spans (the
    versions that proposed spans, sorted, joined by " + ")."""
    stance, spans, versions = None, set(), set()
    predictions = task.get("predictions")
    for prediction in predictions if isinstance(predictions, list) else ():
        if not isinstance(prediction, dict) or not isinstance(prediction.get("model_version"), str):
            continue
        result = prediction.get("result")
        given = _spans(result)
        if given:
            spans |= given
            versions.add(prediction["model_version"])
        chosen = _stance(result)
        if stance is None and chosen is not None:
            stance = (chosen, prediction["model_version"])
    return stance, ((frozenset(spans), " + ".join(sorted(versions))) if spans else None)


def _stance(result) -> str | None:
    for item in result if isinstance(result, list) else ():
        if isinstance(item, dict) and item.get("from_name") == STANCE and isinstance(item.get("value"), dict):
            choices = item["value"].get("choices")
            if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str):
                return choices[0]
            return None
    return None


def _spans(result) -> set:
    spans = set()
    for item in result if isinstance(result, list) else ():
        if not isinstance(item, dict) or item.get("from_name") != ENTITIES or not isinstance(item.get("value"), dict):
            continue
        value = item["value"]
        labels, start, end = value.get("labels"), value.get("start"), value.get("end")
        if type(start) is int and type(end) is int and isinstance(labels, list) and len(labels) == 1:
            spans.add((start, end, str(labels[0])))
    return spans


def accepted_suggestions_reader(gold: dict):
    """A `validate_snapshot` reader (sent (place, task) pairs, then None) giving one row per label an
    annotator submitted exactly as a suggestion shown to them proposed it: {sentence_id, annotator, label
    (`stance` or `entities`), model_version, ground_truth}, sorted. Gold questions (never in the dataset),
    cancelled annotations and what is not a task are skipped; `validate` reports the shape problems."""
    rows = []
    while (item := (yield)) is not None:
        task = item[1]
        data = task.get("data") if isinstance(task, dict) else None
        sentence_id = data.get("sentence_id") if isinstance(data, dict) else None
        if not isinstance(sentence_id, str) or sentence_id in gold:
            continue
        stance, spans = _suggestions(task)
        if stance is None and spans is None:
            continue
        annotations = task.get("annotations")
        for annotation in annotations if isinstance(annotations, list) else ():
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            annotator = annotation.get("annotator")
            if not isinstance(annotator, str):
                continue
            result = annotation.get("result")
            row = {
                "sentence_id": sentence_id,
                "annotator": annotator,
                "ground_truth": annotation.get("ground_truth") is True,
            }
            if stance is not None and _stance(result) == stance[0]:
                rows.append({**row, "label": STANCE, "model_version": stance[1]})
            if spans is not None and _spans(result) == spans[0]:
                rows.append({**row, "label": ENTITIES, "model_version": spans[1]})
    return sorted(rows, key=lambda r: (r["sentence_id"], r["annotator"], r["label"]))


def write_accepted_suggestions(folder: Path, rows: list[dict]) -> list[dict]:
    """Write `folder/accepted-suggestions.parquet` with the `rows` whose sentence is in the dataset (its split
    files); none: no file. Returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from builder.dataset.splits import SPLITS, parquet_pattern

    if not rows:
        return []
    ids: set[str] = set()
    for split in SPLITS:
        for path in sorted(folder.glob(parquet_pattern(split))):
            ids.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    kept = [row for row in rows if row["sentence_id"] in ids]
    if not kept:
        return []
    columns = ("sentence_id", "annotator", "label", "model_version", "ground_truth")
    schema = pa.schema([(name, pa.bool_() if name == "ground_truth" else pa.string()) for name in columns])
    table = pa.table({name: [row[name] for row in kept] for name in columns}, schema=schema)
    pq.write_table(table, folder / ACCEPTED_FILE, compression="zstd", write_statistics=False)
    return kept


# --- articles: source, URL and licence


def source_of(project, article_id: str) -> dict | None:
    """The first [[dataset.sources]] entry whose `articles` names `article_id`: a glob (`GUM_news_*`) or an id
    prefix; None when none does."""
    for src in project.sources:
        pattern = src.get("articles")
        if not pattern:
            continue
        if any(c in pattern for c in "*?[") and fnmatchcase(article_id, pattern):
            return src
        if not any(c in pattern for c in "*?[") and article_id.startswith(pattern):
            return src
    return None


def article_rows(project, article_ids) -> list[dict]:
    """One row per article: id, source name, URL (the source's, "" where unknown), licence."""
    rows = []
    for article_id in sorted(article_ids):
        src = source_of(project, article_id)
        rows.append(
            {
                "articles/article_id": article_id,
                "articles/source": src["name"] if src else "unknown",
                "articles/url": (src.get("url") or "") if src else "",
                "articles/license": src["license"] if src else UNKNOWN_LICENCE,
            }
        )
    return rows


def _articles_record_set(rows: list[dict]) -> dict:
    def text(name: str, description: str, **extra) -> dict:
        return {
            "@type": "cr:Field",
            "@id": f"articles/{name}",
            "name": name,
            "description": description,
            "dataType": "sc:Text",
            **extra,
        }

    return {
        "@type": "cr:RecordSet",
        "@id": "articles",
        "name": "articles",
        "description": "The articles the sentences come from: the source each comes from ([[dataset.sources]], "
        "matched by its `articles`), where it was published (the source's URL; empty where unknown) and the "
        "licence of its text.",
        "key": {"@id": "articles/article_id"},
        "field": [
            text("article_id", "The article's id, as the sentences' `article_id` gives it."),
            text("source", "The declared source it comes from ('unknown' where no source names it)."),
            text("url", "The source's URL, where known; else empty.", equivalentProperty="prov:wasDerivedFrom"),
            text("license", "The licence of the article's text (its source's).", equivalentProperty="sc:license"),
        ],
        "data": rows,
    }


def usage_info(rows: list[dict]) -> list[dict]:
    """`usageInfo`: one CreativeWork per licence when the articles' licences differ; [] when they agree."""
    from collections import Counter

    licences = Counter(row["articles/license"] for row in rows)
    if len(licences) < 2:
        return []
    return [
        {
            "@type": "sc:CreativeWork",
            "name": licence,
            "description": f"The licence of the text of {n} article(s) (record set `articles`, column `license`).",
        }
        for licence, n in sorted(licences.items())
    ]


# --- the Croissant nodes


def _aggregation_agent(project) -> dict:
    return {
        "@type": ["prov:Agent", "prov:SoftwareAgent"],
        "prov:label": f"builder {__version__}, aggregation `{project.aggregation}`",
    }


def _with_provenance(field: dict, split: str, project) -> dict:
    """A split's top-level field with its provenance (and `cr:Label` on the labels)."""
    name = field["name"]
    if name in (STANCE, ENTITIES):
        field["dataType"] = [*([field["dataType"]] if "dataType" in field else []), "cr:Label"]
        field["prov:wasAttributedTo"] = _aggregation_agent(project)
        field["prov:wasDerivedFrom"] = {"@id": f"{split}/annotations"}
    elif name == "article_id":
        field["references"] = {"field": {"@id": "articles/article_id"}}
    elif name == "text":
        field["annotation"] = {
            "@type": "cr:Field",
            "@id": f"{split}/text/derived_from",
            "name": "derived_from",
            "description": "The article the sentence was cut from (record set `articles`: its source, URL and "
            "licence).",
            "dataType": "sc:Text",
            "equivalentProperty": "prov:wasDerivedFrom",
            "source": field_source(field, "article_id"),
            "references": {"field": {"@id": "articles/article_id"}},
        }
    elif name == "annotations":
        for sub in field.get("subField", []):
            if sub["name"] == "annotator":
                sub["equivalentProperty"] = "prov:wasAttributedTo"
                sub["dataType"] = [sub["dataType"], "prov:Agent"]
                sub["description"] = (
                    "The annotator (a pseudonym) this annotation's labels are attributed to; an adjudicator where "
                    f"`ground_truth` is true; a suggestion accepted unchanged is attributed in `{ACCEPTED_FILE}` "
                    "to the software agent that made it."
                )
            elif sub["name"] == STANCE:
                sub["dataType"] = [sub["dataType"], "cr:Label"]
    return field


def field_source(field: dict, column: str) -> dict:
    """The source of `column` in the file set `field` reads from."""
    return {"fileSet": dict(field["source"]["fileSet"]), "extract": {"column": column}}


def _accepted_nodes(folder: Path) -> tuple[list[dict], list[dict]]:
    """(distribution, record sets) of accepted-suggestions.parquet; nothing where it was not written."""
    from builder.jsonio import sha256_file

    path = folder / ACCEPTED_FILE
    if not path.is_file():
        return [], []
    distribution = {
        "@type": "cr:FileObject",
        "@id": ACCEPTED_FILE,
        "name": ACCEPTED_FILE,
        "description": "The labels annotators submitted exactly as a suggestion shown to them proposed them.",
        "contentUrl": ACCEPTED_FILE,
        "encodingFormat": "application/x-parquet",
        "sha256": sha256_file(path),
        "contentSize": f"{path.stat().st_size} B",
    }

    def field(name: str, data_type, description: str, **extra) -> dict:
        return {
            "@type": "cr:Field",
            "@id": f"accepted_suggestions/{name}",
            "name": name,
            "description": description,
            "dataType": data_type,
            "source": {"fileObject": {"@id": ACCEPTED_FILE}, "extract": {"column": name}},
            **extra,
        }

    record_set = {
        "@type": "cr:RecordSet",
        "@id": "accepted_suggestions",
        "name": "accepted_suggestions",
        "description": "One row per label an annotator submitted unchanged from a suggestion (a pre-annotation) "
        "shown to them: that label is attributed to the software agent (its model version), the annotator "
        "having accepted it.",
        "field": [
            field("sentence_id", "sc:Text", "The sentence (`id` in the splits)."),
            field("annotator", "sc:Text", "The annotator (pseudonym) who accepted the suggestion."),
            field("label", "sc:Text", "Which label: `stance` or `entities` (all of the annotation's spans)."),
            field(
                "model_version",
                ["sc:Text", "prov:SoftwareAgent"],
                "The model version that made the suggestion, the label's author.",
                equivalentProperty="prov:wasAttributedTo",
            ),
            field("ground_truth", "sc:Boolean", "The annotation is a ground-truth (adjudicator's) one."),
        ],
    }
    return [distribution], [record_set]


def add_provenance(metadata: dict, project, folder: Path, facts) -> dict:
    """`metadata` (croissant.json as Croissant 1.0 writes it) made Croissant 1.1 with provenance (manifest
    format 9 on); see the module's docstring."""
    metadata["@context"] = {**metadata["@context"], **CONTEXT_1_1}
    metadata["conformsTo"] = [CROISSANT_1_1, *metadata["conformsTo"][1:]]
    articles = set()
    for split in facts.counts:
        articles |= set(facts.counts[split]["articles"])
    rows = article_rows(project, articles)
    for record_set in metadata["recordSet"]:
        if "@id" in record_set and record_set.get("key", {}).get("@id") == f"{record_set['@id']}/id":
            split = record_set["@id"]
            record_set["field"] = [_with_provenance(field, split, project) for field in record_set["field"]]
    distribution, record_sets = _accepted_nodes(folder)
    metadata["distribution"] = [*metadata["distribution"], *distribution]
    metadata["recordSet"] = [*metadata["recordSet"], _articles_record_set(rows), *record_sets]
    agents = [_aggregation_agent(project)]
    versions = (facts.predictions or {}).get("model_versions", {})
    agents += [{"@type": ["prov:Agent", "prov:SoftwareAgent"], "prov:label": version} for version in versions]
    metadata["prov:wasAttributedTo"] = agents
    metadata["prov:wasDerivedFrom"] = [
        {"@id": src["url"], "prov:label": src["name"]} if src.get("url") else {"prov:label": src["name"]}
        for src in project.sources
    ]
    usage = usage_info(rows)
    if usage:
        metadata["usageInfo"] = usage
    return metadata


def annotations_creators(project, facts) -> list[str]:
    """The card's `annotations_creators`: the project's, with `machine-generated` when suggestions were shown
    (manifest format 9 on)."""
    creators = list(project.annotations_creators)
    shown = (facts.predictions or {}).get("tasks_with", 0)
    if getattr(facts, "research_notes", False) and shown and "machine-generated" not in creators:
        creators.append("machine-generated")
    return creators


def card_provenance_text(facts) -> str:
    """The card's words on croissant.json's provenance (manifest format 9 on)."""
    accepted = len(getattr(facts, "accepted_suggestions", []))
    return (
        "It attributes each annotator's labels to the annotator (or the adjudicator, for a ground-truth annotation),\n"
        f"the aggregated labels to builder's aggregation, and the {accepted} label(s) submitted exactly as a shown\n"
        "suggestion proposed them to the model version that made it"
        + (f" (`{ACCEPTED_FILE}`)" if accepted else "")
        + "; each sentence is derived from its\narticle, and each article has its source, URL (where known) "
        "and licence (record set `articles`).\n"
    )

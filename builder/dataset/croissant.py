"""croissant.json: the dataset's Croissant 1.0 metadata (JSON-LD) with the Responsible-AI (RAI) vocabulary.

Generated from the same declarations as the features (`builder.model.features`, the record's fields and
their meanings, the project's label names) and from what the build knows (`BuildFacts`): a FileObject
per Parquet shard with its sha256, a FileSet per split, a RecordSet per split whose fields carry the
columns' types (ClassLabels as integers that reference a RecordSet of their names), and the RAI fields
(sources and licences, annotation protocol and platform, annotators per sentence, pre-annotation model
versions, aggregation, agreement, limitations, personal information). Deterministic: sorted keys, no
date, nothing that is not derived from the inputs. Annotators appear as a count only, never by name.

`mlcroissant.Dataset("croissant.json")` reads every record set (tested). From manifest format 9 on the file is
Croissant 1.1 with PROV-O provenance, added by builder.dataset.label_provenance.add_provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

from builder import __version__
from builder.dataset.splits import ARTICLE_HASH, SPLITS, parquet_pattern
from builder.jsonio import sha256_file
from builder.model import features, field_meanings, record_shape
from builder.project import Project

CROISSANT = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"
PARQUET = "application/x-parquet"

# The JSON-LD context of Croissant 1.0 (the specification's), with the RAI prefix.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# Croissant readers (mlcroissant 1.1) read one level of records inside a row, not a list inside those: an
# annotation's own `entities` is in the Parquet files but not a subField (the description says so).
NESTED_LISTS = (
    "Each item also holds {names} (a list shaped like the top-level field of that name), in the Parquet files; "
    "it is not described as a subField here, as Croissant readers read one level of nested records."
)

# A datasets `Value` dtype -> its Croissant dataType.
_DATA_TYPES = {
    "string": "sc:Text",
    "large_string": "sc:Text",
    "bool": "sc:Boolean",
    "float16": "sc:Float",
    "float32": "sc:Float",
    "float64": "sc:Float",
}


def _data_type(value) -> str:
    dtype = value.dtype
    if dtype in _DATA_TYPES:
        return _DATA_TYPES[dtype]
    if dtype.startswith(("int", "uint")):
        return "sc:Integer"
    raise ValueError(f"no Croissant dataType for the datasets dtype {dtype!r}")  # a new kind in builder.model


def _label_sets(project: Project, dataset_format: int) -> dict[str, list[str]]:
    """The ClassLabels' names by record set id, from the features (so the same lists the dataset holds)."""
    from datasets import ClassLabel, List

    found: dict[str, list[str]] = {}

    def walk(feature, name: str) -> None:
        if isinstance(feature, ClassLabel):
            if list(feature.names) not in found.values():  # an annotation's `stance` is the record's
                found[f"{name}_names"] = list(feature.names)
        elif isinstance(feature, dict):
            for key, child in feature.items():
                walk(child, f"{name}_{key}")
        elif isinstance(feature, List):
            walk(feature.feature, name)

    for name, feature in features(project, dataset_format).items():
        walk(feature, name)
    return found


def _label_set_of(feature, label_sets: dict[str, list[str]]) -> str | None:
    names = list(feature.names)
    return next((set_id for set_id, values in label_sets.items() if values == names), None)


def _field(feature, field_id: str, column: str, file_set: str, path: list[str], description: str, label_sets) -> dict:
    """A Croissant Field for `feature`, read from `column` of the split's files (`path`: JSON keys below it)."""
    from datasets import ClassLabel, List

    node: dict = {"@type": "cr:Field", "@id": field_id, "name": field_id.rsplit("/", 1)[-1]}
    if description:
        node["description"] = description
    repeated = isinstance(feature, List)
    if repeated:
        node["repeated"] = True
        feature = feature.feature
    if isinstance(feature, dict):
        inner = [key for key, child in feature.items() if isinstance(child, List)]
        if repeated and inner:  # a list inside a list of records: see NESTED_LISTS
            node["description"] = (description + ". " if description else "") + NESTED_LISTS.format(
                names=", ".join(f"`{key}`" for key in inner)
            )
        node["subField"] = [
            _field(child, f"{field_id}/{key}", column, file_set, [*path, key], "", label_sets)
            for key, child in feature.items()
            if not (repeated and key in inner)
        ]
        return node
    source: dict = {"fileSet": {"@id": file_set}, "extract": {"column": column}}
    if path:
        source["transform"] = {"jsonPath": ".".join(path)}
    node["source"] = source
    if isinstance(feature, ClassLabel):
        node["dataType"] = "sc:Integer"
        label_set = _label_set_of(feature, label_sets)
        names = ", ".join(f"{i} = {name}" for i, name in enumerate(feature.names))
        node["description"] = (
            (description + ". " if description else "")
            + f"ClassLabel: {names}"
            + ("; -1 = unresolved" if column == "stance" and not path else "")
        )
        if label_set:
            node["references"] = {"field": {"@id": f"{label_set}/index"}}
    else:
        node["dataType"] = _data_type(feature)
    return node


def _label_record_set(set_id: str, names: list[str]) -> dict:
    return {
        "@type": "cr:RecordSet",
        "@id": set_id,
        "name": set_id,
        "description": f"The names of the ClassLabel ids of `{set_id.removesuffix('_names').replace('_', '.')}`, "
        "in id order.",
        "dataType": "sc:Enumeration",
        "key": {"@id": f"{set_id}/index"},
        "field": [
            {"@type": "cr:Field", "@id": f"{set_id}/index", "name": "index", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": f"{set_id}/name", "name": "name", "dataType": "sc:Text"},
        ],
        "data": [{f"{set_id}/index": i, f"{set_id}/name": name} for i, name in enumerate(names)],
    }


def _shards(folder: Path) -> dict[str, list[Path]]:
    """The Parquet shards of each present split, sorted."""
    return {
        split: sorted(p for p in folder.glob(parquet_pattern(split)) if p.is_file())
        for split in SPLITS
        if any(folder.glob(parquet_pattern(split)))
    }


def _scheme_protocol(project: Project) -> list[str]:
    """The annotation protocol's lines on the label scheme: the stance question and labels, the entity labels (a
    stance-only or entities-only scheme states its own half)."""
    lines = []
    if project.has_stance:
        lines.append(
            f"Question: {project.stance_question} Stance labels: "
            + ", ".join(
                f"{label.value} ({label.description})" if label.description else label.value
                for label in project.stance_labels
            )
            + "."
        )
    if project.has_entities:
        lines.append(
            "Entity labels: "
            + ", ".join(
                f"{label.value} ({label.description})" if label.description else label.value
                for label in project.entity_labels
            )
            + "."
        )
    return lines


def _agreement(project: Project, facts) -> dict | None:
    from builder.dataset.card import agreement_of

    if not facts.records:
        return None
    stance, entities = agreement_of(project, facts)
    return {"stance": stance, "entities": entities}


def _analysis_with_intervals(project: Project, facts) -> list[str]:
    """The agreement lines of `rai:dataAnnotationAnalysis` (manifest format 10 on): the card's evidence figures
    (builder.records.evidence), each with its 95% interval and n, Gwet's AC1 and unitizing alpha included."""
    from builder.dataset.evidence_card import evidence_of

    e = evidence_of(project, facts)
    s, f1, ua = e["stance"], e["span_f1"], e["unitizing_alpha"]

    def said(f: dict) -> str:
        if f["value"] is None:
            return "n/a"
        interval = "" if f["low"] is None else f", 95% interval {f['low']}–{f['high']}"
        return f"{f['value']} (n {f['n']}{interval})"

    def per_label(figures: dict) -> str:
        return ", ".join(f"{label} {said(figures[label])}" for label in project.entity_values)

    return [
        f"Stance, over sentences with 2+ annotators: Krippendorff's alpha (nominal) {said(s['krippendorff_alpha'])}; "
        f"Fleiss' kappa {said(s['fleiss_kappa'])}; Gwet's AC1 {said(s['gwet_ac1'])}.",
        f"Entities: pairwise exact-span F1 {said(f1['f1'])} ({f1['pairs']} annotator pairs); per label: "
        f"{per_label(f1['per_label'])}.",
        f"Entities: Krippendorff's unitizing alpha {said(ua['overall'])}; per label: {per_label(ua['per_label'])}.",
        f"Intervals: a bootstrap over sentences ({e['resamples']} resamples, seed {e['seed']}); n: the sentences.",
    ]


def _annotators_per_sentence(project: Project, facts) -> str:
    from collections import Counter

    text = f"{project.annotators_per_sentence} annotators per sentence requested (Label Studio's overlap)"
    if not facts.records:
        return text + "; the `num_annotators` column gives each sentence's own count."
    counts = Counter(len(record["annotations"]) for record in facts.records)
    shown = ", ".join(f"{n} annotator(s): {counts[n]} sentence(s)" for n in sorted(counts))
    return text + f"; as annotated: {shown}. The `num_annotators` column gives each sentence's own count."


def _rai(project: Project, facts, version: str | None) -> dict:
    """The Responsible-AI fields, from the project file and the build's facts."""
    from collections import Counter

    from builder.dataset.card import (
        aggregation_text,
        describe_accuracies,
        describe_source,
        labelled_under,
        overlaps_text,
        predictor_kind,
        splitter_record,
        unresolved_spans,
    )
    from builder.pseudonyms import scheme_of

    splitter = splitter_record(facts)["name"]
    sources = [describe_source(src) for src in project.sources] or [
        "No sources declared in the project file ([[dataset.sources]])."
    ]
    v = facts.validation
    under = labelled_under(project, facts)
    guidelines = under["guidelines"]
    unresolved = sum(facts.counts[s]["stance"].get("(unresolved)", 0) for s in SPLITS)
    # format 10 on, the evidence's figures (with intervals) replace builder.records.agreement's: not computed then
    intervals = getattr(facts, "intervals", False) and bool(facts.records)
    agreement = None if intervals else _agreement(project, facts)
    if intervals:
        analysis = _analysis_with_intervals(project, facts)
    elif agreement is None:
        analysis = [
            "Agreement is computed on datasets up to 100,000 sentences; `builder stats` gives it for larger ones."
        ]
    else:
        s, e = agreement["stance"], agreement["entities"]  # None: a half the scheme leaves out
        analysis = []
        if s is not None:
            analysis += [
                f"Krippendorff's alpha (nominal), stance: {s['krippendorff_alpha']} "
                f"({s['units']} sentences with 2+ annotators, {s['ratings']} ratings).",
                f"Fleiss' kappa, stance: {s['fleiss_kappa']} ({s['fleiss_units']} sentences).",
            ]
        if e is not None:
            analysis.append(
                f"Pairwise exact-span F1, entities: {e['f1']} ({e['pairs']} annotator pairs); per label: "
                + ", ".join(f"{label} {e['per_label'][label]}" for label in project.entity_values)
                + "."
            )
    quality = facts.quality
    if quality is not None and "gold_accuracy_figures" in quality:  # format 10 on: with intervals and n
        from builder.dataset.card import describe_accuracy_figures

        a = quality["anchoring"]
        anchoring = (
            "not measured" if a["value"] is None else f"{a['value']} (95% interval {a['low']}–{a['high']}, n {a['n']})"
        )
        analysis.append(
            f"Gold stance accuracy per annotator: {describe_accuracy_figures(quality['gold_accuracy_figures'])}; "
            f"anchoring rate {anchoring}; "
            f"{quality.get('flagged', 0)} annotator(s) below the minimum gold accuracy {project.min_gold_accuracy:g}."
        )
    elif quality is not None:
        analysis.append(
            f"Gold stance accuracy per annotator: {describe_accuracies(quality.get('gold_accuracy', []))}; "
            f"anchoring rate {quality.get('anchoring_rate')}; "
            f"{quality.get('flagged', 0)} annotator(s) below the minimum gold accuracy {project.min_gold_accuracy:g}."
        )
    predictions = facts.predictions
    tools = [f"Sentence splitter `{splitter}` (builder {__version__})."]
    if predictions is not None:
        tools.append(
            f"Pre-annotations shown to annotators on {predictions['tasks_with']} of {predictions['tasks']} tasks"
            + (
                ": "
                + "; ".join(
                    f"model version `{version}` ({predictor_kind(version)}) on {n} task(s)"
                    for version, n in predictions["model_versions"].items()
                )
                if predictions["model_versions"]
                else ""
            )
            + "."
        )
    if facts.dataset_format >= 3:
        overlap_line = overlaps_text(facts.overlaps) + "."
    else:
        overlap_line = (
            f"{len(facts.overlaps)} entity span(s) overlap a longer span: kept in `entities`, not in `ner_tags`."
        )
    overlaps = [overlap_line] if facts.overlaps else []
    total = sum(facts.counts[s]["records"] for s in SPLITS)
    stance = Counter()
    for split in SPLITS:
        stance.update({k: n for k, n in facts.counts[split]["stance"].items() if k != "(unresolved)"})
    most_frequent = "Most news sentences report facts; the most frequent stance label is " + (
        f"`{stance.most_common(1)[0][0]}` ({stance.most_common(1)[0][1]} of {total})." if stance else "none."
    )
    limitations = [
        f"Small: {total} sentences; the figures carry wide uncertainty.",
        most_frequent,
        "Annotators are pseudonymous and few; agreement is reported, not hidden.",
        f"{unresolved} sentence(s) have an unresolved stance (-1).",
        *overlaps,
    ]
    scheme = scheme_of(facts.annotators)
    return {
        "rai:dataCollection": (
            f"News articles ({len(project.sources)} declared source(s)) were normalised (newlines, BOM), boilerplate "
            f"lines removed and split into sentences with `{splitter}`; each sentence was labelled in Label "
            f'Studio for its stance towards "{project.target}" (unless its article sets a target) and for named '
            "entities."
        ),
        "rai:dataCollectionType": ["Secondary Data Analysis (published news articles)", "Manual Human Curation"],
        "rai:dataCollectionRawData": " ".join(sources),
        "rai:dataCollectionMissingData": (
            (
                f"{v.quarantined} pulled task(s) failed validation and were left out (quarantined, each named in "
                "the validation report); "
                if v
                else ""
            )
            + f"{facts.gold_questions} gold question(s) left out; {unresolved} sentence(s) with an unresolved stance "
            "are kept with stance -1."
        ),
        "rai:dataPreprocessingProtocol": [
            "Boilerplate lines removed by rules (reported, never silently).",
            f"Split into sentences with `{splitter}` (newlines first, then segtok).",
            "The pulled annotations were validated against JSON Schemas and semantic checks: "
            + (
                f"{v.tasks_in} tasks in, {v.records} records, {v.quarantined} quarantined, "
                f"{facts.gold_questions} gold question(s) left out."
                if v
                else "(records given directly)."
            ),
            (
                f"Splits by article from a hash of the article id (proportions {project.split_proportions}); "
                if getattr(facts, "split_method", ARTICLE_HASH) == ARTICLE_HASH  # a format-5 release, as it was
                else f"Splits by article, cut by sentence counts to keep each share within one article "
                f"(proportions {project.split_proportions}; split method `{facts.split_method}`); "
            )
            + f"articles sharing a sentence text kept in one split ({facts.split_facts.get('shared_text_groups', 0)} "
            f"group(s)); {facts.split_facts.get('frozen_test_articles', 0)} article(s) kept in test from an "
            "earlier release.",
        ],
        "rai:dataAnnotationProtocol": [
            *_scheme_protocol(project),
            f"Annotation guidelines sha256 {guidelines}; label scheme sha256 {project.scheme_hash()}.",
            _annotators_per_sentence(project, facts),
            f"Gold questions mixed in at rate {project.gold_rate:g} of the pushed tasks; "
            f"{facts.gold_questions} in the snapshot, left out of the dataset.",
            aggregation_text(project, unresolved, facts.dataset_format, unresolved_spans(facts)).replace("\n", " "),
        ],
        "rai:dataAnnotationPlatform": [
            f"Label Studio, with a labeling config generated by builder (sha256 {under['labeling_config']})."
        ],
        "rai:dataAnnotationAnalysis": analysis,
        "rai:annotationsPerItem": _annotators_per_sentence(project, facts),
        "rai:annotatorDemographics": [
            f"{len(facts.annotators)} annotator(s), named by pseudonyms only (scheme {scheme}); "
            "no demographic information is collected."
        ],
        "rai:machineAnnotationTools": tools,
        "rai:dataUseCases": [
            *(
                [f'Stance detection towards the target "{project.target}" (sentence classification).']
                if project.has_stance
                else []
            ),
            *(
                ["Named entity recognition (character spans, and BIO tags in conll2003 style)."]
                if project.has_entities
                else []
            ),
            "Studying annotator disagreement: every annotator's own labels are kept in `annotations`.",
        ],
        "rai:dataLimitations": limitations,
        "rai:dataBiases": [
            "Sentences come from the declared news sources only, with their selection and framing; "
            "the stance labels reflect the annotators' reading under the guidelines."
        ],
        "rai:personalSensitiveInformation": [
            f"Annotators appear only as pseudonyms made by `builder pull` (scheme {scheme}); no names, e-mails or "
            "account ids of annotators are in the dataset.",
            "The sentences are published news text: they name public figures and organisations (PER, ORG entities).",
        ],
        "rai:dataReleaseMaintenancePlan": (
            "Versioned releases (Semantic Versioning) under releases/VERSION, each with a manifest of sha256 hashes "
            "and a generated changelog; `builder verify VERSION` checks a release; a published release never "
            "changes, and articles in an earlier release's test split stay in test."
            + (f" This is dataset version {version}." if version else " This build is not a release.")
        ),
    }


def croissant_metadata(project: Project, folder: Path, facts, version: str | None = None) -> dict:
    """The Croissant 1.0 + RAI metadata of the dataset folder `folder` (its Parquet shards written); Croissant 1.1
    with provenance when `facts.research_notes` (manifest format 9 on)."""
    feats = features(project, facts.dataset_format)
    meanings = field_meanings(project, facts.dataset_format)
    label_sets = _label_sets(project, facts.dataset_format)
    shards = _shards(folder)
    distribution = []
    record_sets = [_label_record_set(set_id, names) for set_id, names in label_sets.items()]
    for split, paths in shards.items():
        for path in paths:
            name = str(path.relative_to(folder))
            distribution.append(
                {
                    "@type": "cr:FileObject",
                    "@id": name,
                    "name": name,
                    "description": f"A Parquet shard of the {split} split.",
                    "contentUrl": name,
                    "encodingFormat": PARQUET,
                    "sha256": sha256_file(path),
                    "contentSize": f"{path.stat().st_size} B",
                }
            )
        file_set = f"{split}-parquet"
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": file_set,
                "name": file_set,
                "description": f"The Parquet shards of the {split} split.",
                "encodingFormat": PARQUET,
                "includes": parquet_pattern(split),
            }
        )
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": split,
                "name": split,
                "description": f"The {split} split: {facts.counts[split]['records']} sentence(s) of "
                f"{len(facts.counts[split]['articles'])} article(s).",
                "key": {"@id": f"{split}/id"},
                "field": [
                    _field(
                        feats[field.name],
                        f"{split}/{field.name}",
                        field.name,
                        file_set,
                        [],
                        meanings[field.name],
                        label_sets,
                    )
                    for field in record_shape(facts.dataset_format, project).fields
                ],
            }
        )
    metadata = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO],
        "name": project.name,
        "alternateName": project.pretty_name,
        "description": (
            f'Sentences from news articles, each labelled for its stance towards a target ("{project.target}", '
            "unless an article sets its own) and for named entities as character spans and as BIO tags. "
            f"Built with builder {__version__}."
        ),
        "license": project.license,
        "inLanguage": project.language,
        "keywords": ["stance detection", "named entity recognition", "news"],
        "citeAs": project.citation
        or f"{project.pretty_name} ({project.name}){f', version {version}' if version else ''}.",
        "isBasedOn": [src["url"] for src in project.sources if src.get("url")],
        "distribution": distribution,
        "recordSet": record_sets,
        **_rai(project, facts, version),
    }
    if version:
        metadata["version"] = version
    if getattr(facts, "research_notes", False):  # manifest format 9 on: Croissant 1.1 with provenance
        from builder.dataset.label_provenance import add_provenance

        add_provenance(metadata, project, folder, facts)
    return metadata


def croissant_text(metadata: dict) -> str:
    """The file's text: sorted keys, two-space indents, UTF-8 as is (byte-stable)."""
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_croissant(project: Project, folder: Path, facts, version: str | None = None) -> Path:
    """Write `folder/croissant.json` for the dataset built there."""
    path = folder / CROISSANT
    path.write_text(croissant_text(croissant_metadata(project, folder, facts, version)), encoding="utf-8")
    return path

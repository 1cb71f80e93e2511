"""The card's data statement (Bender & Friedman 2018), manifest format 9 on.

ACL venues ask for a data statement: why the data was curated, which language variety it is (as a
BCP-47 tag), who the speakers and the annotators are, the speech situation and the text's
characteristics. builder fills it from `[dataset.data_statement]` in builder.toml (the keys are declared
in schema/config.schema.json) and from the data; what neither says is stated as unknown, never guessed.

Annotators are described only in aggregate, by the groups the project file declares (a description and a
count, never a person), and a group smaller than `annotator_min_group_size` is not described on its own:
it is pooled with the other small groups, so that no one is singled out.
"""

from __future__ import annotations

from pathlib import Path

from builder.dataset.splits import SPLITS, parquet_pattern
from builder.project import DATA_STATEMENT_MIN_GROUP

CITATION = "Bender, E. M. and Friedman, B. (2018). Data Statements for Natural Language Processing. TACL 6, 587-604."


def annotator_lines(statement: dict, annotators: int, min_group: int) -> str:
    """The annotators, in aggregate: the declared groups of at least `min_group`, the smaller ones pooled,
    and how many of the dataset's `annotators` no group describes."""
    groups = statement.get("annotator_groups", [])
    text = f"{annotators} annotator(s), named by pseudonyms only"
    if not groups:
        return text + "; their demographics are unknown (not collected)."
    shown = [g for g in groups if g["annotators"] >= min_group]
    pooled = sum(g["annotators"] for g in groups if g["annotators"] < min_group)
    parts = [f"{g['annotators']}: {g['description']}" for g in shown]
    if pooled:
        parts.append(f"{pooled} in groups smaller than {min_group}, not described separately")
    described = sum(g["annotators"] for g in groups)
    text += f". As declared (groups of fewer than {min_group} pooled): " + "; ".join(parts)
    if described < annotators:
        text += f"; the other {annotators - described} annotator(s): unknown"
    elif described > annotators:
        text += f" (the groups count {described}, the data {annotators})"
    return text + "."


def text_lengths(folder: Path) -> dict:
    """Sentence lengths from the `text` column of the split files in `folder`: {"sentences", "characters",
    "words"} (totals; words split at whitespace)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    totals = {"sentences": 0, "characters": 0, "words": 0}
    for split in SPLITS:
        for path in sorted(folder.glob(parquet_pattern(split))):
            text = pq.read_table(path, columns=["text"]).column("text")
            totals["sentences"] += len(text)
            totals["characters"] += pc.sum(pc.utf8_length(text)).as_py() or 0
            totals["words"] += pc.sum(pc.list_value_length(pc.utf8_split_whitespace(text))).as_py() or 0
    return totals


def _length_line(lengths: dict | None) -> str:
    if not lengths or not lengths["sentences"]:
        return "sentence lengths unknown"
    n = lengths["sentences"]
    return (
        f"sentences average {lengths['characters'] / n:.1f} characters and {lengths['words'] / n:.1f} "
        "whitespace-separated words"
    )


def data_statement_text(project, facts) -> str:
    """The card's `## Data statement` section."""
    statement = project.data_statement
    min_group = statement.get("annotator_min_group_size", DATA_STATEMENT_MIN_GROUP)
    total = sum(facts.counts[s]["records"] for s in SPLITS)
    articles = set()
    for split in SPLITS:
        articles |= set(facts.counts[split]["articles"])

    def given(key: str, unknown: str) -> str:
        return statement.get(key) or f"unknown (`[dataset.data_statement] {key}` not given){unknown}"

    variety = statement.get("language_variety")
    variety_text = (
        f"`{variety}` (BCP-47)"
        + (f": {statement['language_variety_description']}" if statement.get("language_variety_description") else "")
        if variety
        else f"`{project.language}` (the language only; the variety is unknown: `[dataset.data_statement] "
        "language_variety` not given)"
    )
    characteristics = (
        f"{total} sentence(s) of {len(articles)} news article(s) from {len(project.sources)} declared source(s); "
        f"{_length_line(getattr(facts, 'text_lengths', None))}; each labelled for "
        + " and for ".join(
            [f'its stance towards "{project.target}"'] * project.has_stance
            + [f"named entities ({', '.join(project.entity_values)})"] * project.has_entities
        )
        + "."
    )
    if statement.get("text_characteristics"):
        characteristics += " " + statement["text_characteristics"]
    lines = [
        f"- **Curation rationale**: {given('curation_rationale', '.')}",
        f"- **Language variety**: {variety_text}.",
        f"- **Speaker demographic** (the articles' authors): {given('speaker_demographics', '.')}",
        f"- **Annotator demographic**: {annotator_lines(statement, len(facts.annotators), min_group)}",
        f"- **Speech situation**: {given('speech_situation', '; the texts are published news articles.')}",
        f"- **Text characteristics**: {characteristics}",
        "- **Recording quality**: not applicable (written text).",
    ]
    return (
        "\n## Data statement\n\nAfter Bender & Friedman (2018), from builder.toml and the data; what neither says "
        "is stated as unknown.\n\n" + "\n".join(lines) + f"\n\n{CITATION}\n"
    )

"""Ids and texts from the data never become Markdown or HTML: the card, CHANGELOG.md and `builder diff`."""

from __future__ import annotations

import json

import markdown
import pytest

from builder.dataset.release import cut_release, releases, verify_release
from builder.markup import code, quoted, single_quoted, uncode
from builder.sentences.segmenter import sentence_id

from .test_release import builder, commit_snapshot, new_repo, synthetic_tasks

HEADING_ID = "a\n# Heading [x](http://evil)"
ENTRY_ID = "b\n## 9.9.9 <b>bold</b>\n"
TEXT = "Kim Jong\n<script>alert(1)</script> Un met [them](http://evil) in `Pyongyang`."
OUTER = "Kim Jong\n<script>alert(1)</script> Un"  # a PER span holding the next one (both adjudicated): on the card
INNER = "Jong\n<script>alert(1)</script>"


def weird_tasks(entities: bool, stance: str = "neutral") -> list[dict]:
    """Two articles whose ids hold newlines and Markdown, with a sentence holding a newline, a tag and a link."""
    tasks = []
    for n, article_id in enumerate((HEADING_ID, ENTRY_ID)):
        result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
        if entities:
            for span, label in ((OUTER, "PER"), (INNER, "MISC")):
                start = TEXT.index(span)
                result.append(
                    {
                        "from_name": "entities",
                        "to_name": "sentence",
                        "type": "labels",
                        "value": {"start": start, "end": start + len(span), "text": span, "labels": [label]},
                    }
                )
        annotations = [
            {
                "id": 9000 + 10 * n + k,
                "annotator": f"annotator-{k + 10:08x}",
                "result": result,
                "was_cancelled": False,
                "ground_truth": entities,  # nested spans are kept only as an adjudicator's decision
                "lead_time": 3.0,
            }
            for k in range(2)
        ]
        data = {
            "sentence_id": sentence_id(article_id, TEXT),
            "article_id": article_id,
            "sentence_index": 0,
            "text": TEXT,
            "target": "t",
        }
        tasks.append({"task_id": 900 + n, "data": data, "annotations": annotations, "predictions": []})
    return tasks


def rendered(text: str) -> str:
    """What a Markdown renderer makes of `text` (HTML)."""
    return markdown.markdown(text, extensions=["tables"])


def assert_inert(text: str) -> None:
    """No heading, link or tag from the data, and every data string on one line."""
    html = rendered(text)
    assert "<h1>Heading" not in html and "<h2>9.9.9" not in html
    assert 'evil"' not in html and "<script" not in html and "<b>bold" not in html  # no link to it, no tag
    assert "<script" not in text  # not even inside a code span
    for line in text.splitlines():
        assert not line.startswith(("# Heading", "## 9.9.9", "<script")), line
        assert not line.startswith("Un met"), line


@pytest.mark.parametrize(
    "text",
    ["a\n# Heading", "x`y", "`", "", " a ", '"q"', "\u202eevil", "zero\u200bwidth", "nul\x00", "\U000e0001tag"],
)
def test_code_spans_are_one_line_and_round_trip(text):
    span = code(text)
    assert "\n" not in span and span.startswith("`") and span.endswith("`") and "`" not in span[1:-1]
    assert uncode(span[1:-1]) == text
    assert json.loads(span[1:-1]) == text


def test_ordinary_strings_are_written_as_before():
    for ordinary in ("1d45a12773724cb963e3", "article-001", "builder-gazetteer/3", "Security Council", "Kim's"):
        assert code(ordinary) == f"`{ordinary}`"
        assert quoted(ordinary) == f'"{ordinary}"' and single_quoted(ordinary) == f"'{ordinary}'"
    for markup in ("<b>x</b>", "[x](y)", "see http://x", "www.x.org", "a & b", "a\\b", "line\nbreak"):
        assert quoted(markup).startswith('`"') and "<" not in quoted(markup)


def test_ids_and_texts_from_the_data_stay_inert_in_card_changelog_and_diff(tmp_path):
    """Article ids with a newline and `#`/`##`, a sentence and spans with a newline, `<script>` and a link:
    the card, CHANGELOG.md and `builder diff` hold none of it as Markdown, every release verifies, and a
    later release is not refused."""
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    cut_release(project, "1.0.0")
    commit_snapshot(folder, synthetic_tasks(range(20)) + weird_tasks(entities=False))
    cut_release(project, "1.1.0")
    assert verify_release(project, "1.0.0") == [] and verify_release(project, "1.1.0") == []
    commit_snapshot(folder, synthetic_tasks(range(20)) + weird_tasks(entities=True, stance="against"))
    result = builder(folder, "release", "1.2.0")  # not refused: the earlier releases and the changelog verify
    assert result.returncode == 0, result.stderr
    assert releases(project) == ["1.0.0", "1.1.0", "1.2.0"]
    for version in releases(project):
        assert verify_release(project, version) == [], version
        assert builder(folder, "verify", version).returncode == 0

    changelog = (folder / "CHANGELOG.md").read_text(encoding="utf-8")
    assert_inert(changelog)
    assert [line for line in changelog.splitlines() if line.startswith("#")] == [
        "# Changelog",
        "## 1.2.0",
        "## 1.1.0",
        "## 1.0.0",
    ]
    assert code(HEADING_ID) in changelog and code(ENTRY_ID) in changelog  # each id on one line, as its JSON string
    assert quoted(TEXT[:90]) in changelog  # the added sentence
    assert f"+PER {single_quoted(OUTER)}" in changelog and f"+MISC {single_quoted(INNER)}" in changelog

    card = (folder / "releases" / "1.2.0" / "README.md").read_text(encoding="utf-8")
    assert_inert(card.split("\n---\n", 1)[1])
    assert f"MISC {single_quoted(INNER)}" in card

    diff = builder(folder, "diff", "1.1.0", "1.2.0")
    assert diff.returncode == 0 and "stance relabelled: 2" in diff.stdout
    assert_inert(diff.stdout)
    first = builder(folder, "diff", "1.0.0", "1.1.0")
    assert first.returncode == 0 and code(HEADING_ID) in first.stdout
    assert_inert(first.stdout)

    # a CHANGELOG.md that a builder from before builder.markup wrote, ids raw: its `## ` lines are no entries
    raw = f"- articles added before: {HEADING_ID}, {ENTRY_ID}\n- stance relabelled"
    poisoned = changelog.replace("- stance relabelled", raw, 1)
    assert "\n## 9.9.9 <b>bold</b>\n" in poisoned
    (folder / "CHANGELOG.md").write_text(poisoned, encoding="utf-8")
    for version in releases(project):
        assert verify_release(project, version) == [], version

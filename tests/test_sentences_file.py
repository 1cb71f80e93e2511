"""The sentences file given to `builder push`: every line is checked before anything is sent."""

from __future__ import annotations

import orjson
import pytest

from builder.errors import InputError
from builder.sentences.splitting import read_sentences

from .conftest import free_port, run_cli

GOOD = {
    "id": "s000001",
    "article_id": "a",
    "article_title": "A",
    "sentence_index": 0,
    "text": "Kim met Putin.",
    "start": 0,
    "end": 14,
    "prev_text": "",
    "next_text": "",
    "occurrence": 0,
}

# (name, line 2 of the file, expected message after "FILE:2: ")
BAD_LINES = [
    ("no id", {k: v for k, v in GOOD.items() if k != "id"}, "field 'id' is missing"),
    ("no text", {k: v for k, v in GOOD.items() if k != "text"}, "field 'text' is missing"),
    ("list id", {**GOOD, "id": ["s1"]}, "field 'id' must be a non-empty string, not a list"),
    ("number id", {**GOOD, "id": 7}, "field 'id' must be a non-empty string, not int 7"),
    ("null id", {**GOOD, "id": None}, "field 'id' must be a non-empty string, not null"),
    ("empty id", {**GOOD, "id": ""}, "field 'id' must be a non-empty string, not an empty string"),
    ("object text", {**GOOD, "text": {"t": 1}}, "field 'text' must be a non-empty string, not a dict"),
    ("no article id", {k: v for k, v in GOOD.items() if k != "article_id"}, "field 'article_id' is missing"),
    ("number title", {**GOOD, "article_title": 3}, "field 'article_title' must be a string, not int 3"),
    (
        "no sentence index",
        {k: v for k, v in GOOD.items() if k != "sentence_index"},
        "field 'sentence_index' is missing",
    ),
    (
        "float sentence index",
        {**GOOD, "sentence_index": 1.0},
        "field 'sentence_index' must be an integer from 0 to 2147483647, not float 1.0",
    ),
    (
        "huge sentence index",
        {**GOOD, "sentence_index": 2**31},
        "field 'sentence_index' must be an integer from 0 to 2147483647, not int 2147483648",
    ),
    ("bool start", {**GOOD, "start": True}, "field 'start' must be an integer from 0 to 2147483647, not bool True"),
    ("negative end", {**GOOD, "end": -1}, "field 'end' must be an integer from 0 to 2147483647, not int -1"),
    (
        "string occurrence",
        {**GOOD, "occurrence": "0"},
        "field 'occurrence' must be an integer from 0 to 2147483647, not a string",
    ),
    ("list line", [GOOD], "expected a JSON object (a sentence), not a list"),
    ("number line", 5, "expected a JSON object (a sentence), not int 5"),
    ("null line", None, "expected a JSON object (a sentence), not null"),
    ("not JSON", b'{"id": "s2", "te', "not valid JSON"),
]


def write_lines(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines))
    return path


@pytest.mark.parametrize(("name", "line", "expected"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_each_bad_line_names_file_line_and_field(tmp_path, name, line, expected):
    path = write_lines(tmp_path / "sentences.jsonl", [GOOD, line, {**GOOD, "id": "s000003"}])
    with pytest.raises(InputError) as caught:
        read_sentences(path)
    assert str(caught.value).startswith(f"{path}:2: ") and expected in str(caught.value), str(caught.value)


def test_good_lines_are_read_and_a_missing_occurrence_is_null(tmp_path):
    older = {k: v for k, v in GOOD.items() if k != "occurrence"} | {"id": "s000002", "target": "own target"}
    path = tmp_path / "sentences.jsonl"
    path.write_bytes(orjson.dumps(GOOD) + b"\n\n" + orjson.dumps(older) + b"\n")
    assert read_sentences(path) == [GOOD, {**older, "occurrence": None}]


def test_push_refuses_a_bad_sentences_file_before_connecting(tmp_path):
    import os

    path = write_lines(tmp_path / "sentences.jsonl", [GOOD, {**GOOD, "id": None}])
    env = {
        **os.environ,
        "LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}",
        "LABEL_STUDIO_API_KEY": "0123456789abcdef",
    }
    result = run_cli("push", path, "--predictor", "none", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"error: {path}:2: field 'id' must be a non-empty string, not null\n"
    good = write_lines(tmp_path / "good.jsonl", [GOOD])
    result = run_cli(
        "push", good, "--predictor", "none", env=env, cwd=tmp_path
    )  # a good file gets as far as the server
    assert result.returncode == 1 and "cannot reach Label Studio" in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("article_id", "a\n## Injected", "field 'article_id' holds a control character (U+000A) at character 2"),
        ("article_id", "a\x00", "field 'article_id' holds a control character (U+0000)"),
        ("id", "s1\u2028", "field 'id' holds a line or paragraph separator (U+2028)"),
        ("id", "s1 ", "field 'id' 's1 ' starts or ends with whitespace"),
        ("article_id", "x" * 201, "field 'article_id' has 201 characters (at most 200"),
    ],
)
def test_ids_of_a_sentences_or_gold_file_follow_the_article_id_rule(tmp_path, field, value, expected):
    """`push` (and a gold file, read the same way) takes ids as `split` does: one printable line."""
    path = write_lines(tmp_path / "sentences.jsonl", [GOOD, {**GOOD, "id": "s000002", field: value}])
    with pytest.raises(InputError) as caught:
        read_sentences(path)
    assert str(caught.value).startswith(f"{path}:2: ") and expected in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)

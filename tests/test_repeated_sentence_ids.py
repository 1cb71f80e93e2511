"""A sentence id given twice in what `builder push` is given: found within a memory bound, named by its line,
refused before any connection, and refused as gold when it is also a gold question."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from builder.errors import InputError
from tests.conftest import ROOT, make_project, run_cli
from tests.test_gold_push import gold_project, sentences


def test_finding_the_repeat_takes_under_32_more_bytes_a_sentence():
    """16 bytes of digest per sentence are held while the file is read; finding the first repeat sorts them
    in place of a copy (it took about 50 more bytes a sentence: a copy of the digests and three key arrays)."""
    from builder.gold.mixing import _first_repeat

    n = 300_000
    digests = bytearray(os.urandom(16 * n))
    digests[16 * 250_000 : 16 * 250_001] = digests[16 * 9 : 16 * 10]
    assert _first_repeat(bytearray(64)) == (0, 1)  # numpy imported before counting
    tracemalloc.start()
    try:
        assert _first_repeat(digests) == (9, 250_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / n < 32


def test_three_repeats_far_apart_and_blank_lines_name_the_first_repeat_by_its_line(tmp_path):
    from builder.gold.mixing import check_pushed
    from builder.jsonio import write_jsonl
    from builder.sentences.splitting import iter_numbered_sentences

    stream = sentences(3000)
    path = tmp_path / "s.jsonl"
    write_jsonl(path, [*stream, stream[2999], stream[5], stream[5]])
    text = path.read_bytes().replace(b"\n", b"\r\n\r\n")  # CRLF, and a blank line after every sentence
    path.write_bytes(text)
    with pytest.raises(
        InputError, match=rf"s\.jsonl:6001: field 'id': sentence '{stream[2999]['id']}' is also line 5999:"
    ):
        check_pushed(iter_numbered_sentences(path), None, lambda: iter_numbered_sentences(path))


def test_a_repeated_sentence_is_refused_by_the_cli_before_any_connection(tmp_path):
    """Nothing is sent: the server named does not exist, and the one line says which lines repeat."""
    from builder.jsonio import write_jsonl

    make_project(tmp_path / "p", "Repeat refused")
    stream = sentences(10)
    write_jsonl(tmp_path / "p" / "s.jsonl", [*stream, stream[4]])
    env = {**os.environ, "LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "x", "PYTHONPATH": str(ROOT)}
    for how in ([], ["--select", "random", "--limit", "3"]):
        refused = run_cli("push", "s.jsonl", *how, env=env, cwd=tmp_path / "p")
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            f"error: s.jsonl:11: field 'id': sentence '{stream[4]['id']}' is also line 5: a sentence is pushed once "
            "(a file given twice, or concatenated? take the repeat out, or run `builder split` again)"
        ]


def test_a_repeat_that_is_also_a_gold_question_is_refused_as_gold(tmp_path):
    from builder.gold.mixing import check_pushed, gold_questions

    stream = sentences(40)
    project = gold_project(tmp_path / "p", "Gold repeat", [stream[3]])
    listed = [*stream[:3], *stream[4:], stream[10], stream[3]]
    with pytest.raises(InputError, match=r"gold\.jsonl:1: field 'id': .* also one of the sentences being pushed"):
        check_pushed(((None, s) for s in listed), gold_questions(project), lambda: ((None, s) for s in listed))

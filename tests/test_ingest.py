"""Reading articles: formats, normalisation, and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builder.ingest import ArticleReader
from builder.report import Report

from .conftest import ROOT, SAMPLE, SEED


def read(paths):
    report = Report("split")
    return list(ArticleReader(report).read(paths)), report


def run_split(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "builder", "split", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def test_txt_jsonl_html_and_folders(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "one.txt").write_text("Headline here\n\nFirst sentence. Second one.\n", encoding="utf-8")
    (tmp_path / "many.jsonl").write_text(
        json.dumps({"id": "j1", "text": "Body one.", "title": "T", "url": "http://x", "section": "world"}) + "\n"
        + json.dumps({"id": 2, "text": "Body two.", "target": "a per-article target"}) + "\n",
        encoding="utf-8",
    )
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page title</title></head><body><nav>Home | About</nav><article><h1>Page title</h1>"
        + "<p>" + "The council met on Monday to discuss the budget for the coming year. " * 4 + "</p>"
        + "<p>" + "Members voted to approve the plan after a long debate in the chamber. " * 4 + "</p>"
        + "</article><footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "notes.md").write_text("ignored: not an article format", encoding="utf-8")
    articles, report = read([tmp_path])
    by_id = {a["id"]: a for a in articles}
    assert set(by_id) == {"one", "j1", "2", "page"}
    assert by_id["one"]["title"] == "Headline here"
    assert by_id["j1"]["metadata"] == {"section": "world"} and by_id["j1"]["url"] == "http://x"
    assert by_id["2"]["target"] == "a per-article target"
    assert "council met on Monday" in by_id["page"]["text"]
    assert "Copyright" not in by_id["page"]["text"]
    assert not report.errors()


def test_newlines_and_bom_are_normalised_first(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes("\ufeffTitle line\r\nBody one.\rBody two.\r\n".encode())
    [article], _ = read([path])
    assert article["title"] == "Title line"
    assert "\r" not in article["text"] and not article["text"].startswith("\ufeff")
    assert article["text"] == "Title line\nBody one.\nBody two."


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"  \n\n", "empty file"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary file"),
        ("latin1.txt", "Caf\u00e9 ol\u00e9\n".encode("latin-1"), "invalid UTF-8 at byte 3"),
        ("notes.pdf", b"%PDF-1.4", "unknown extension '.pdf'"),
        ("bad.jsonl", b'{"id": "a", "text": "fine."}\n{not json\n', ":2: not valid JSON"),
        ("notext.jsonl", b'{"id": "a"}\n', ":1: missing required field 'text'"),
        ("noid.jsonl", b'{"text": "x"}\n', ":1: missing required field 'id'"),
        ("wrongtype.jsonl", b'{"id": "a", "text": 5}\n', "field 'text' must be a non-empty string"),
        ("array.jsonl", b'[1, 2]\n', "expected a JSON object, got list"),
    ],
)
def test_bad_input_is_named_and_valid_articles_still_processed(tmp_path, name, content, expected):
    bad = tmp_path / name
    bad.write_bytes(content)
    output = tmp_path / "out" / "sentences.jsonl"
    result = run_split(SEED, bad, "-o", output)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert len(rejected) == 1
    assert str(bad) in rejected[0] and expected in rejected[0]
    sentences = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert {s["article_id"] for s in sentences} >= {"ri-chang-dae-moscow"}


def test_duplicate_article_id_is_rejected(tmp_path):
    copy = tmp_path / "ri-chang-dae-moscow.txt"
    copy.write_text("Another text.\nWith the same file name.", encoding="utf-8")
    articles, report = read([SEED, copy])
    assert [a["id"] for a in articles] == ["ri-chang-dae-moscow"]
    [problem] = report.errors()
    assert problem.reason == "duplicate article id" and str(copy) in problem.where and str(SEED) in problem.detail


def test_split_command_on_sample_writes_sorted_deterministic_output(tmp_path):
    first, second = tmp_path / "a" / "sentences.jsonl", tmp_path / "b" / "sentences.jsonl"
    for output in (first, second):
        result = run_split(SAMPLE, "-o", output)
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    articles_file = first.with_name("sentences.articles.jsonl")
    assert articles_file.read_bytes() == second.with_name("sentences.articles.jsonl").read_bytes()
    articles = {a["id"]: a for a in map(json.loads, articles_file.read_text(encoding="utf-8").splitlines())}
    sentences = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    keys = [(s["article_id"], s["sentence_index"]) for s in sentences]
    assert keys == sorted(keys)
    for sentence in sentences:
        assert articles[sentence["article_id"]]["text"][sentence["start"] : sentence["end"]] == sentence["text"]
    assert "removed: " in result.stderr and "PayPal" in result.stderr
    assert not result.stdout  # statistics go to stderr


def test_failed_run_leaves_no_half_written_output(tmp_path):
    output = tmp_path / "sentences.jsonl"
    output.write_text("previous\n", encoding="utf-8")
    result = run_split(tmp_path / "missing-folder", "-o", output)
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

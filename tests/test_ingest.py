"""Reading articles: formats, normalisation, and every kind of bad input."""

from __future__ import annotations

import codecs
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from builder.report import Report
from builder.sentences.articles import ArticleReader

from .conftest import ROOT, SAMPLE, SEED, run_cli


def read(paths):
    report = Report("split")
    return list(ArticleReader(report).read(paths)), report


def run_split(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "builder", "split", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_txt_jsonl_html_and_folders(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "one.txt").write_text("Headline here\n\nFirst sentence. Second one.\n", encoding="utf-8")
    (tmp_path / "many.jsonl").write_text(
        json.dumps({"id": "j1", "text": "Body one.", "title": "T", "url": "http://x", "section": "world"})
        + "\n"
        + json.dumps({"id": 2, "text": "Body two.", "target": "a per-article target"})
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page title</title></head><body><nav>Home | About</nav><article><h1>Page title</h1>"
        + "<p>"
        + "The council met on Monday to discuss the budget for the coming year. " * 4
        + "</p>"
        + "<p>"
        + "Members voted to approve the plan after a long debate in the chamber. " * 4
        + "</p>"
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
        # (a file none of whose records has the field refuses the run: tests/test_input_fields.py)
        ("notext.jsonl", b'{"id": "a", "text": "fine."}\n{"id": "b"}\n', ":2: missing required field 'text'"),
        ("noid.jsonl", b'{"id": "a", "text": "fine."}\n{"text": "x"}\n', ":2: missing required field 'id'"),
        ("wrongtype.jsonl", b'{"id": "a", "text": 5}\n', "field 'text' must be a non-empty string"),
        ("array.jsonl", b"[1, 2]\n", "expected a JSON object, got list"),
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
    output.write_text('{"article_id": "previous", "id": "x", "sentence_index": 0}\n', encoding="utf-8")
    result = run_split(tmp_path / "missing-folder", "-o", output)
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def split_lines(stderr, prefix):
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def test_split_never_reads_its_own_output_nor_other_builder_outputs(tmp_path):
    folder = tmp_path / "articles"
    shutil.copytree(SAMPLE, folder)
    output = folder / "sentences.jsonl"
    first = run_split(folder, "-o", output)
    assert first.returncode == 0, first.stderr
    assert "from 5 articles" in first.stderr
    before = output.read_bytes(), output.with_name("sentences.articles.jsonl").read_bytes()
    # an older run's outputs under other names, and a pulled snapshot, in the same folder
    shutil.copy(output, folder / "old.jsonl")
    shutil.copy(output.with_name("sentences.articles.jsonl"), folder / "old.articles.jsonl")
    shutil.copy(ROOT / "annotations" / "snapshot.jsonl", folder / "snapshot.jsonl")
    second = run_split(folder, "-o", output)
    assert second.returncode == 0, second.stderr
    assert "from 5 articles" in second.stderr
    assert (output.read_bytes(), output.with_name("sentences.articles.jsonl").read_bytes()) == before
    skipped = split_lines(second.stderr, "skipped:")
    assert len(skipped) == 5 and all("builder output" in line or "this run's output" in line for line in skipped)
    for name in ("sentences.jsonl", "sentences.articles.jsonl", "old.jsonl", "old.articles.jsonl", "snapshot.jsonl"):
        assert sum(str(folder / name) + ":" in line for line in skipped) == 1, name
    assert not split_lines(second.stderr, "rejected:")


def test_builder_output_named_as_input_is_rejected(tmp_path):
    output = tmp_path / "sentences.jsonl"
    assert run_split(SEED, "-o", output).returncode == 0
    shutil.copy(output, tmp_path / "old.jsonl")
    result = run_split(tmp_path / "old.jsonl", SEED, "-o", tmp_path / "new.jsonl")
    assert result.returncode == 1
    [rejected] = split_lines(result.stderr, "rejected:")
    assert str(tmp_path / "old.jsonl") in rejected and "builder output (sentence records)" in rejected
    assert "from 1 articles" in result.stderr
    own = run_split(output, SEED, "-o", output)
    assert own.returncode == 1
    [rejected] = split_lines(own.stderr, "rejected:")
    assert str(output) in rejected and "this run's output" in rejected


def test_a_run_that_reads_nothing_valid_keeps_the_previous_output(tmp_path):
    output = tmp_path / "sentences.jsonl"
    assert run_split(SEED, "-o", output).returncode == 0
    articles = output.with_name("sentences.articles.jsonl")
    before = output.read_bytes(), articles.read_bytes()
    (tmp_path / "empty.txt").write_bytes(b"")
    result = run_split(tmp_path / "empty.txt", tmp_path / "missing.txt", "-o", output)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: nothing valid was read; kept the previous {output} and {articles}" in result.stderr
    assert (output.read_bytes(), articles.read_bytes()) == before
    assert len(split_lines(result.stderr, "rejected:")) == 2
    fresh = tmp_path / "fresh" / "sentences.jsonl"
    result = run_split(tmp_path / "empty.txt", "-o", fresh)
    assert result.returncode == 1 and "error: nothing valid was read; wrote nothing" in result.stderr
    assert not fresh.parent.exists() or not any(fresh.parent.iterdir())


def test_output_stays_linear_in_input_for_one_line_articles(tmp_path):
    """A one-line article is no headline: a title copied into every sentence made output quadratic."""
    folder = tmp_path / "articles"
    folder.mkdir()
    sentence = "The council met on Monday to discuss the budget for the coming year and voted on it. "
    (folder / "many.txt").write_text(sentence * 30_000, encoding="utf-8")  # 2.6 MB, one line
    (folder / "unpunctuated.txt").write_text("word " * 500_000, encoding="utf-8")  # 2.5 MB, one sentence
    (folder / "huge.txt").write_text("Headline\n" + "x" * 300_000 + ".\nShort one.\n", encoding="utf-8")
    (folder / "lines.jsonl").write_text(
        json.dumps({"id": "untitled", "text": sentence * 10_000})
        + "\n"
        + json.dumps({"id": "long-title", "title": "T" * 5000, "text": "Body. " * 1000})
        + "\n",
        encoding="utf-8",
    )
    size_in = sum(p.stat().st_size for p in folder.iterdir())
    output = tmp_path / "out" / "sentences.jsonl"

    def limit_file_size():  # the quadratic bug wrote tens of GB: fail, never fill the disk
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * size_in, 20 * size_in))

    result = subprocess.run(
        [sys.executable, "-m", "builder", "split", str(folder), "-o", str(output)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.stat().st_size < 4 * size_in
    articles = {
        a["id"]: a for a in map(json.loads, output.with_name("sentences.articles.jsonl").read_text().splitlines())
    }
    assert articles["many"]["title"] == "" and articles["unpunctuated"]["title"] == ""
    assert articles["untitled"]["title"] == "" and articles["huge"]["title"] == "Headline"
    assert articles["long-title"]["title"] == "T" * 199 + "\u2026"
    [warning] = split_lines(result.stderr, "warning:")
    assert f"{folder / 'lines.jsonl'}:2" in warning and "5,000 characters cut to 200" in warning
    with output.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            assert len(record["article_title"]) <= 200
            assert len(record["prev_text"]) <= 1000 and len(record["next_text"]) <= 1000


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_with_a_bom_are_decoded(tmp_path, encoding):
    text = "Café headline\nNorth Korea’s minister arrived in Moscow. Talks began.\n"
    path = tmp_path / "wide.txt"
    bom = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}.get(encoding, b"")
    path.write_bytes(bom + text.encode(encoding))
    [article], report = read([path])
    assert not report.problems
    assert article["title"] == "Café headline" and article["text"] == text.strip("\n")


def test_utf16_jsonl_with_a_bom_is_decoded(tmp_path):
    path = tmp_path / "wide.jsonl"
    lines = [json.dumps({"id": f"a{i}", "text": "Körper text."}) for i in range(3)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["a0", "a1", "a2"] and not report.problems


@pytest.mark.parametrize("encoding", ["UTF-16LE", "UTF-16BE"])
def test_utf16_without_a_bom_is_named_with_how_to_convert(tmp_path, encoding):
    path = tmp_path / "wide.txt"
    path.write_bytes("Headline\nSome body text, in English.\n".encode(encoding))
    articles, report = read([path])
    [problem] = report.errors()
    assert not articles and problem.where == str(path)
    assert f"looks like {encoding} text" in problem.detail and f"iconv -f {encoding} -t UTF-8" in problem.detail


@pytest.mark.parametrize(
    "content",
    [random.Random(7).randbytes(8192) + b"\x00\x00", b"Plain UTF-8 text with one stray \x00 NUL byte in it.\n" * 20],
    ids=["noise", "stray-nul"],
)
def test_real_binary_stays_binary(tmp_path, content):
    path = tmp_path / "noise.txt"
    path.write_bytes(content)
    _, report = read([path])
    [problem] = report.errors()
    assert problem.reason == "binary file"


def test_truncated_utf16_after_a_bom_is_named(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "Headline\nBody.\n".encode("utf-16-le")[:-1])
    _, report = read([path])
    [problem] = report.errors()
    assert (
        problem.reason == "invalid encoding" and "invalid UTF-16LE" in problem.detail and "at byte 30" in problem.detail
    )


def test_builder_output_with_a_txt_name_is_recognised(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED, folder)
    assert run_split(SEED, "-o", folder / "old.txt").returncode == 0  # sentences written as .txt
    articles, report = read([folder])
    assert [a["id"] for a in articles] == ["ri-chang-dae-moscow"]
    skipped = [(p.where, p.error, p.detail) for p in report.problems if p.reason == "builder output"]
    assert skipped == [
        (str(folder / "old.articles.jsonl"), False, "builder output (article records), not articles"),
        (str(folder / "old.txt"), False, "builder output (sentence records), not articles"),
    ]


def test_stray_cr_in_jsonl_does_not_shift_line_numbers(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "One."}\r\n'
        b'{"id": "b",\r "text": "Two."}\n'
        b'{"id": "c", "text": "Three."}\n'
        b'{"id": "d", "text": "Four."}\r\n'
        b"{not json\n"
        b'{"id": "f", "text": "Six."}\n'
    )
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["a", "b", "c", "d", "f"]
    assert [a["source"]["line"] for a in articles] == [1, 2, 3, 4, 6]
    [problem] = report.errors()
    assert problem.where == f"{path}:5" and problem.reason == "invalid json"


MENUS = {
    "paragraphs": "".join(
        f"<p>{w}</p>" for w in ("Home", "World news", "Politics", "Business and markets", "Contact us")
    ),
    "list": "<ul>"
    + "".join(f"<li>{w}</li>" for w in ("Home", "World news", "Politics and elections", "Markets"))
    + "</ul>",
    "bars": "<h2>Sections</h2><p>World | Politics | Business | Sport | Culture | Weather</p>"
    "<p>Latest: Markets | Election live</p>",
}


@pytest.mark.parametrize("menu", MENUS)
def test_html_of_navigation_only_is_no_article(tmp_path, menu):
    """trafilatura returns menu text from such pages; it has no sentence, so it is no article."""
    import trafilatura

    html = f"<html><head><title>Example News</title></head><body><main>{MENUS[menu]}</main></body></html>"
    assert trafilatura.extract(html, favor_precision=True)  # the extractor does return text
    path = tmp_path / "menu.html"
    path.write_text(html, encoding="utf-8")
    articles, report = read([path, SEED])
    [problem] = report.errors()
    assert [a["id"] for a in articles] == ["ri-chang-dae-moscow"]
    assert problem.reason == "no article text" and problem.where == str(path)


def test_fifo_named_or_found_in_a_folder_is_reported_and_never_opened(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")
    os.mkfifo(tmp_path / "named.txt")
    os.mkfifo(folder / "other.fifo")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "split",
            str(folder),
            str(tmp_path / "named.txt"),
            str(SEED),
            "-o",
            str(tmp_path / "out.jsonl"),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    rejected = split_lines(result.stderr, "rejected:")
    assert len(rejected) == 2 and all("not a regular file (a FIFO)" in line for line in rejected)
    assert {str(folder / "pipe.txt"), str(tmp_path / "named.txt")} == {line.split(": ")[1] for line in rejected}
    [skipped] = split_lines(result.stderr, "skipped:")
    assert str(folder / "other.fifo") in skipped
    assert "from 1 articles" in result.stderr


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("\n  Headline  \n\nBody.", "Headline"),
        ("Only one line of text.", ""),
        ("Headline\n   \n", ""),
        ("H" * 200 + "\nBody.", "H" * 200),
        ("H" * 201 + "\nBody.", ""),
    ],
)
def test_headline_is_a_short_first_line_followed_by_text(text, title):
    from builder.sentences.articles import headline

    assert headline(text) == title


def test_split_never_reads_its_report_and_bounds_article_ids(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(SAMPLE, folder)
    for name in ("report.txt", "report.jsonl"):
        args = ["split", folder, "-o", folder / "out.jsonl", "--report", folder / name]
        first, second = run_cli(*args, cwd=ROOT), run_cli(*args, cwd=ROOT)
        assert first.returncode == 0 and second.returncode == 0, second.stderr
        assert "5 articles" in second.stderr and "invalid json" not in second.stderr
    long_id = tmp_path / "long.jsonl"
    long_id.write_text(json.dumps({"id": "x" * 5000, "text": "One sentence here. " * 50}) + "\n", encoding="utf-8")
    result = run_cli("split", long_id, "-o", tmp_path / "s.jsonl", cwd=ROOT)
    assert result.returncode == 1 and "field 'id' has 5,000 characters (at most 200" in result.stderr


BAD_IDS = [
    # (id as JSON gives it, what the report says of it)
    ("a\n# Heading [x](http://evil)", "holds a control character (U+000A) at character 2"),
    ("a\x00b", "holds a control character (U+0000) at character 2"),
    ("tab\tid", "holds a control character (U+0009)"),
    ("cr\r", "holds a control character (U+000D)"),
    ("del\x7f", "holds a control character (U+007F)"),
    ("c1\x85", "holds a control character (U+0085)"),
    ("line\u2028sep", "holds a line or paragraph separator (U+2028)"),
    ("para\u2029", "holds a line or paragraph separator (U+2029)"),
    ("bidi\u202eevil", "holds a bidirectional control (U+202E)"),
    ("isolate\u2066", "holds a bidirectional control (U+2066)"),
    (" padded", "' padded' starts or ends with whitespace"),
    ("padded\u00a0", "starts or ends with whitespace"),
]


def test_article_ids_with_control_characters_are_refused_line_by_line(tmp_path):
    """An id is one line of printable text: control characters (NUL, newlines, tab), line separators,
    bidirectional controls, lone surrogates and surrounding whitespace are refused, naming file, line and field;
    the other lines are read."""
    path = tmp_path / "ids.jsonl"
    lines = [json.dumps({"id": "good-0", "text": "A first fine sentence. And one more."})]
    for number, (bad, _) in enumerate(BAD_IDS, 1):
        lines.append(json.dumps({"id": bad, "text": f"Sentence number {number} is here."}))
        lines.append(json.dumps({"id": f"good-{number}", "text": f"Good sentence {number} is here."}))
    lines.append('{"id": "lone\\ud800x", "text": "A lone surrogate in the id."}')  # orjson refuses it: bad JSON
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    articles, report = read([path])
    assert [a["id"] for a in articles] == [f"good-{n}" for n in range(len(BAD_IDS) + 1)]
    errors = report.errors()
    for number, (_, expected) in enumerate(BAD_IDS):
        problem = errors[number]
        assert problem.where == f"{path}:{2 * number + 2}" and problem.fields == {"field": "id"}, problem
        assert problem.detail.startswith("field 'id' ") and expected in problem.detail, problem.detail
        assert "\n" not in problem.detail and "\x00" not in problem.detail and "\u202e" not in problem.detail
    assert errors[-1].where == f"{path}:{len(lines)}" and len(errors) == len(BAD_IDS) + 1


def test_id_rule_names_lone_surrogates_and_keeps_ordinary_ids():
    from builder.sentences.articles import id_problem

    assert "lone surrogate (U+D800)" in id_problem("a\ud800")  # a Parquet string or a dict can hold one
    for good in ("ri-chang-dae-moscow", "42", "Статья 7", "記事/2024 (1)", "a b", "x" * 200, "emoji 🙂\u200d"):
        assert id_problem(good) is None, good


@pytest.mark.parametrize("suffix", [".txt", ".html"])
def test_a_file_name_that_makes_a_bad_id_is_refused(tmp_path, suffix):
    """A .txt or .html file's name is its article id: the same rule, naming the file."""
    body = "A body sentence that is long enough to count, said the council on Monday."
    content = f"Headline\n{body}\n"
    if suffix == ".html":
        content = f"<html><head><title>Headline</title></head><body><article><p>{body}</p></article></body></html>"
    bad, good = tmp_path / f"one\ttwo{suffix}", tmp_path / f"fine{suffix}"
    bad.write_text(content, encoding="utf-8")
    good.write_text(content, encoding="utf-8")
    articles, report = read([bad, good])
    assert [a["id"] for a in articles] == ["fine"]
    [problem] = report.errors()
    assert problem.where == str(bad) and problem.fields == {"field": "id"}
    assert "field 'id' (the file name) holds a control character (U+0009)" in problem.detail


def test_a_jsonl_line_with_a_nul_byte_or_invalid_utf8_is_rejected_alone(tmp_path):
    """A NUL byte or invalid UTF-8 is the fault of its line, like bad JSON: named with its byte, the rest read."""
    lines = [
        b'{"id": "a", "text": "A first fine sentence."}',
        b'{"id": "latin", "text": "Caf\xe9 ol\xe9."}\r',
        b'{"id": "b", "text": "Another fine sentence."}',
        b'{"id": "nul", "text": "A\x00B."}',
        b'{"id": "c", "text": "\xe5\xb9\xb3 is fine UTF-8."}',
        b'{"id": "cut", "text": "\xe5\xb9',  # the file ends inside a character
    ]
    data = codecs.BOM_UTF8 + b"\n".join(lines)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(data)
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["a", "b", "c"]
    problems = [(p.reason, p.where, p.detail) for p in report.errors()]
    latin, nul, cut = data.index(b"\xe9"), data.index(b"\x00"), len(data) - 2
    assert problems == [
        ("invalid utf-8", f"{path}:2", f"invalid UTF-8 at byte {latin}: invalid continuation byte; line not read"),
        ("nul byte", f"{path}:4", f"NUL byte at byte {nul} (binary data, not a JSON line); line not read"),
        ("invalid utf-8", f"{path}:6", f"invalid UTF-8 at byte {cut}: unexpected end of data; line not read"),
    ]
    # the command says so, one line each, and writes the good articles
    result = run_split(path, "-o", tmp_path / "out" / "s.jsonl")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert [line.split(": ", 2)[1] for line in rejected] == [f"{path}:2", f"{path}:4", f"{path}:6"]
    assert "wrote 3 sentences from 3 articles" in result.stderr


def test_a_parquet_id_follows_the_same_rule(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "crawl.parquet"
    ids = ["fine-1", "two\nlines", "fine-2", "nul\x00id"]
    texts = [f"Sentence {n} of the crawl is here." for n in range(len(ids))]
    pq.write_table(pa.table({"id": ids, "text": texts}), path)
    articles, report = read([path])
    assert [a["id"] for a in articles] == ["fine-1", "fine-2"]
    assert [(p.where, p.fields) for p in report.errors()] == [
        (f"{path}:row 2", {"field": "id"}),
        (f"{path}:row 4", {"field": "id"}),
    ]
    assert all("holds a control character" in p.detail for p in report.errors())

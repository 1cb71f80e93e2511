"""A large JSON Lines file is cut at line ends into shards that workers read: the same bytes and report as one reader.

The threshold (`JSONL_SHARD_BYTES`) and the scan's block (`SCAN_BLOCK`) are lowered so that small files
are cut into many shards, with cuts and multi-byte characters falling across block boundaries.
"""

from __future__ import annotations

import codecs
import json
import random
import tracemalloc

import pytest

from builder.sentences import articles as articles_module
from builder.sentences.articles import InputFile, jsonl_shards, read_shard
from builder.sentences.field_map import FieldTally, added_tallies
from builder.sentences.splitting import split_files

SHARD = 1500  # bytes: the lowered threshold and shard size
WORDS = "the council said on Monday that talks with Seoul and Moscow would resume after a long pause".split()
WIDE = ["Séoul", "Москва", "平壌", "naïve", "🙂"]  # two-, three- and four-byte UTF-8 characters


@pytest.fixture
def small_shards(monkeypatch):
    """Cut any .jsonl file over SHARD bytes, scanning it 97 bytes at a time (blocks end inside characters)."""
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", SHARD)
    monkeypatch.setattr(articles_module, "SCAN_BLOCK", 97)


def _article(rng: random.Random, number: int) -> dict:
    sentences = []
    for _ in range(rng.randint(2, 6)):
        words = rng.choices(WORDS + WIDE, k=rng.randint(5, 12))
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "?", '," Mr. Kim said.']))
    paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
    if number % 5 == 0:
        paragraphs.insert(1, "Support independent journalism: please consider making a donation.")
    return {
        "id": f"a{rng.randrange(10**6):06d}-{number}",
        "title": f"Talks, day {number}",
        "text": "\n".join(paragraphs),
    }


def _messy_jsonl(path, count: int = 80, seed: int = 21) -> bytes:
    """A JSON Lines file with a problem of every kind spread over its lines, CRLF and LF line ends, a BOM,
    blank lines, duplicate ids far apart (in different shards), a NUL byte, invalid UTF-8 and a last line
    without an LF."""
    rng = random.Random(seed)
    lines = []
    for number in range(count):
        lines.append(json.dumps(_article(rng, number), ensure_ascii=number % 2 == 0).encode())
        if number % 11 == 3:
            lines.append(b"{not json")
        if number % 13 == 5:
            lines.append(json.dumps({"id": f"no-text-{number}"}).encode())
        if number % 17 == 7:
            lines.append(b"")  # a blank line
        if number % 19 == 9:
            lines.append(b"[1, 2]")  # JSON, not an object
        if number % 23 == 11:
            lines.append(
                json.dumps({"id": f"long-{number}", "text": "A body. Another one.", "title": "T" * 300}).encode()
            )
    lines.insert(len(lines) * 3 // 4, lines[2])  # a duplicate id, many shards after its first
    lines.insert(len(lines) // 2, lines[len(lines) // 2 + 1])  # and one next to its first, maybe across a cut
    lines.insert(len(lines) // 3, b'{"id": "latin", "text": "Caf\xe9 ol\xe9."}')  # invalid UTF-8
    lines.insert(len(lines) * 2 // 3, b'{"id": "nul", "text": "A\x00B."}')  # a NUL byte
    data = bytearray(codecs.BOM_UTF8)
    for index, line in enumerate(lines):
        data += line + (b"\r\n" if index % 3 == 0 else b"\n")
    data = bytes(data).rstrip(b"\r\n")  # the last line has no line end
    path.write_bytes(data)
    return data


def _check_shards(path, named: bool = True) -> list[InputFile]:
    """The shards of `path` tile it, start right after an LF at their own line number, and read as the whole file."""
    file = InputFile(path, named)
    shards = jsonl_shards(file)
    data = path.read_bytes()
    if len(shards) > 1:
        assert [shard.part[0] for shard in shards[1:]] == [shard.part[1] for shard in shards[:-1]]
        assert shards[0].part[0] == 0 and shards[-1].part[1] == len(data)
        for shard in shards[1:]:
            assert data[shard.part[0] - 1] == ord("\n")
            assert shard.first_line == data[: shard.part[0]].count(b"\n") + 1
        assert all(shard.part[1] - shard.part[0] >= articles_module.JSONL_SHARD_BYTES for shard in shards[:-1])
    whole = read_shard(file)
    parts = [event for shard in shards for event in read_shard(shard)]
    assert [event for event in parts if not isinstance(event, FieldTally)] == whole[:-1]
    tallies = [event for event in parts if isinstance(event, FieldTally)]
    total = tallies[0]
    for tally in tallies[1:]:
        total = added_tallies(total, tally)
    assert total == whole[-1]  # the shards' tallies of fields add up to the whole file's
    return shards


def _outputs(out):
    report = out.with_suffix(".report.json").read_bytes()
    return out.read_bytes(), out.with_name(out.stem + ".articles.jsonl").read_bytes(), report


def _split(inputs, out, project, **options):
    return split_files(inputs, out, project, report_path=out.with_suffix(".report.json"), **options)


def test_workers_on_a_sharded_jsonl_give_the_single_readers_bytes_and_report(tmp_path, project, monkeypatch):
    big = tmp_path / "crawl.jsonl"
    _messy_jsonl(big)
    other = tmp_path / "other.jsonl"  # a second file after it, whose first id repeats one of the big file's
    rng = random.Random(5)
    first = json.loads(big.read_bytes()[3:].split(b"\n")[2])
    other.write_text(json.dumps(first) + "\n" + json.dumps(_article(rng, 999)) + "\n", encoding="utf-8")
    inputs = [big, other]
    reference = _split(inputs, tmp_path / "one" / "s.jsonl", project)  # one reader, the whole file
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", SHARD)
    monkeypatch.setattr(articles_module, "SCAN_BLOCK", 97)
    shards = _check_shards(big)
    assert len(shards) >= 8
    single = _split(inputs, tmp_path / "single" / "s.jsonl", project)
    two = _split(inputs, tmp_path / "two" / "s.jsonl", project, workers=2)
    expected = _outputs(tmp_path / "one" / "s.jsonl")
    assert _outputs(tmp_path / "single" / "s.jsonl") == expected
    assert _outputs(tmp_path / "two" / "s.jsonl") == expected
    assert (
        (reference.articles, reference.sentences)
        == (two.articles, two.sentences)
        == (single.articles, single.sentences)
    )
    # every kind of problem is there, named by the file's own line numbers, from shards all over the file
    report = json.loads(expected[2])
    reasons = {p["reason"] for p in report["problems"]}
    assert {"invalid json", "missing field", "duplicate article id", "long title", "boilerplate"} <= reasons
    assert {"invalid utf-8", "nul byte"} <= reasons  # reported by their lines, in whichever shard they fall
    lines = big.read_bytes().split(b"\n")
    for problem in report["problems"]:
        file, line = problem["where"].rsplit(":", 1)
        if file == str(big) and problem["reason"] in ("invalid json", "missing field"):
            assert lines[int(line) - 1].rstrip(b"\r") in (b"{not json", b"[1, 2]") or b"no-text" in lines[int(line) - 1]
    starts = [shard.first_line for shard in shards]
    numbers = [int(p["where"].rsplit(":", 1)[1]) for p in report["problems"] if p["where"].startswith(f"{big}:")]
    assert len({sum(start <= number for start in starts) for number in numbers}) >= len(shards) // 2
    duplicates = [p["where"] for p in report["problems"] if p["reason"] == "duplicate article id"]
    assert len(duplicates) == 3 and f"{other}:1" in duplicates
    written = [json.loads(line) for line in expected[1].splitlines()]
    assert written[0]["source"]["line"] >= 1 and "\ufeff" not in written[0]["id"]
    last = [a for a in written if a["source"]["file"] == str(big)]
    assert max(a["source"]["line"] for a in last) == len(lines)  # the last line, without an LF, is read


@pytest.mark.parametrize("seed", range(12))
def test_cuts_fall_after_line_ends_and_read_as_the_whole_file(tmp_path, small_shards, seed):
    """Random files and sizes: blocks end inside characters and lines, cuts spill over blocks, lines of any length."""
    rng = random.Random(seed)
    articles_module.JSONL_SHARD_BYTES = rng.choice([700, 1000, 1500, 3000])
    articles_module.SCAN_BLOCK = rng.choice([1, 7, 64, 97, 4096])
    path = tmp_path / "f.jsonl"
    _messy_jsonl(path, count=rng.randint(20, 60), seed=seed)
    if seed % 3 == 0:  # a last line that ends with an LF, and a long line now and then
        path.write_bytes(path.read_bytes() + b"\n" + json.dumps({"id": "big", "text": "Word. " * 900}).encode() + b"\n")
    if seed % 4 == 1:  # more U+FEFF after the byte-order mark: the first line drops them all
        path.write_bytes(codecs.BOM_UTF8 + "\ufeff\ufeff".encode() + path.read_bytes())
    shards = _check_shards(path)
    assert len(shards) > 1


def _line_of(length: int, name: str) -> bytes:
    """A JSON Lines article of exactly `length` bytes (without its LF)."""
    base = json.dumps({"id": name, "text": "Fine. "}).encode()
    return base[:-2] + b"P" * (length - len(base)) + base[-2:]


def test_a_line_ending_exactly_at_the_cut(tmp_path, small_shards):
    """A shard ends at the first LF at or after its SHARD-th byte: an LF at byte SHARD-1 ends it there."""
    rest = b"".join(_line_of(100, f"x{n}") + b"\n" for n in range(60))
    path = tmp_path / "exact.jsonl"
    path.write_bytes(_line_of(SHARD - 1, "first") + b"\n" + rest)
    shards = _check_shards(path)
    assert shards[1].part[0] == SHARD and shards[1].first_line == 2
    path.write_bytes(_line_of(SHARD - 2, "first") + b"\n" + rest)  # one byte short: the next line end cuts
    shards = _check_shards(path)
    assert shards[1].part[0] == SHARD - 1 + 101 and shards[1].first_line == 3


def _sentence_record() -> bytes:
    record = {"id": "s1", "article_id": "a", "sentence_index": 0, "start": 0, "end": 3, "text": "Hi."}
    return json.dumps(record).encode() + b"\n"


def _good_lines(count: int = 120) -> bytes:
    rng = random.Random(3)
    return b"".join(json.dumps(_article(rng, n)).encode() + b"\n" for n in range(count))


WHOLE_FILE = {
    # name: (file bytes, the problem reported once for the file, or None when it is read whole and kept)
    "utf-16 without bom": (lambda: _good_lines().decode().encode("utf-16-le"), "unsupported encoding"),
    "utf-16 with bom": (lambda: codecs.BOM_UTF16_LE + _good_lines().decode().encode("utf-16-le"), None),
    "utf-32 with bom": (lambda: codecs.BOM_UTF32_LE + _good_lines(30).decode().encode("utf-32-le"), None),
    "only blank lines": (lambda: b" \r\n\n\t \n" * 1000, "empty file"),
    "builder output": (lambda: _sentence_record() * 40 + _good_lines(), "builder output"),
    "builder output after blank lines and a bom": (
        lambda: codecs.BOM_UTF8 + b"\n \r\n" + _sentence_record() * 40 + _good_lines(),
        "builder output",
    ),
    "first line not json on its own": (lambda: b"{\n" + _good_lines(), None),
    "first record longer than a shard": (
        lambda: json.dumps({"id": "long", "text": "Word. " * 600}).encode() + b"\n" + _good_lines(),
        None,
    ),
}


@pytest.mark.parametrize("name", WHOLE_FILE)
@pytest.mark.parametrize("named", [True, False])
def test_whole_file_decisions_stay_one_shard_and_are_reported_once(tmp_path, project, monkeypatch, name, named):
    content, reason = WHOLE_FILE[name]
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "crawl.jsonl"
    path.write_bytes(content())
    assert path.stat().st_size > SHARD
    inputs = [path] if named else [folder]
    _split(inputs, tmp_path / "one" / "s.jsonl", project)
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", SHARD)
    monkeypatch.setattr(articles_module, "SCAN_BLOCK", 97)
    assert jsonl_shards(InputFile(path, named)) == [InputFile(path, named)]
    two = _split(inputs, tmp_path / "two" / "s.jsonl", project, workers=2)
    if two.written:
        assert _outputs(tmp_path / "two" / "s.jsonl") == _outputs(tmp_path / "one" / "s.jsonl")
    else:
        assert (tmp_path / "two" / "s.report.json").read_bytes() == (tmp_path / "one" / "s.report.json").read_bytes()
    problems = [p for p in two.report.problems if p.where.startswith(str(path))]
    if reason is None:
        assert two.articles > 0
    else:
        assert [p.reason for p in problems] == [reason]
        assert problems[0].where == str(path)


def test_nul_bytes_and_invalid_utf8_reject_their_lines_alone_sharded_or_whole(tmp_path, project, monkeypatch):
    """A NUL byte or invalid UTF-8 is its line's fault: the file is still cut, and reads as one reader reads it."""
    rng = random.Random(8)
    good = [json.dumps(_article(rng, number)).encode() for number in range(150)]
    bad_utf8, nul = b'{"id": "u", "text": "caf\xe9."}\r', b'{"id": "n", "text": "A\x00B."}'
    lines = [*good[:60], bad_utf8, *good[60:100], nul, *good[100:], b'{"id": "cut", "text": "\xe5\xb9']
    data = codecs.BOM_UTF8 + b"\n".join(lines)  # the last line ends inside a character
    path = tmp_path / "crawl.jsonl"
    path.write_bytes(data)
    reference = _split([path], tmp_path / "one" / "s.jsonl", project)
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", SHARD)
    monkeypatch.setattr(articles_module, "SCAN_BLOCK", 97)
    shards = _check_shards(path)
    assert len(shards) > 10
    single = _split([path], tmp_path / "single" / "s.jsonl", project)
    two = _split([path], tmp_path / "two" / "s.jsonl", project, workers=2)
    expected = _outputs(tmp_path / "one" / "s.jsonl")
    assert _outputs(tmp_path / "single" / "s.jsonl") == expected
    assert _outputs(tmp_path / "two" / "s.jsonl") == expected
    assert reference.articles == single.articles == two.articles == 150
    problems = [(p["reason"], p["where"], p["detail"]) for p in json.loads(expected[2])["problems"] if p["error"]]
    latin, zero, cut = data.index(b"\xe9"), data.index(b"\x00"), len(data) - 2
    assert problems == [
        ("invalid utf-8", f"{path}:61", f"invalid UTF-8 at byte {latin}: invalid continuation byte; line not read"),
        ("nul byte", f"{path}:102", f"NUL byte at byte {zero} (binary data, not a JSON line); line not read"),
        ("invalid utf-8", f"{path}:153", f"invalid UTF-8 at byte {cut}: unexpected end of data; line not read"),
    ]


def test_the_scan_holds_blocks_not_the_file(tmp_path, monkeypatch):
    """Cutting an 8 MB file, scanned 64 KiB at a time, allocates well under a megabyte."""
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", 256 * 1024)
    monkeypatch.setattr(articles_module, "SCAN_BLOCK", 64 * 1024)
    path = tmp_path / "big.jsonl"
    lines = _good_lines(400)
    with open(path, "wb") as handle:
        while handle.tell() < 8 * 2**20:
            handle.write(lines)
    tracemalloc.start()
    try:
        shards = jsonl_shards(InputFile(path, True))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(shards) >= 30
    assert peak < 1_000_000

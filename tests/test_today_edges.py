"""Edges of the locks, the repeat check of a push, gold spans, and batches of whole articles: what a tester
found trying to break them (most need no Label Studio)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import InputError
from builder.locks import exclusive
from builder.preannotate import article_batches, whole_articles
from tests.conftest import ROOT, make_project, run_cli
from tests.test_gold_push import gold_project, sentences

# --- locks ---------------------------------------------------------------------------------------------------

LOGGER = """
import os, sys, time
from pathlib import Path
from builder.locks import exclusive

lock, log, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = os.open(log, os.O_WRONLY | os.O_APPEND)
for _ in range(rounds):
    with exclusive(lock):
        os.write(out, f"in {os.getpid()}\\n".encode())
        time.sleep(0.002)
        os.write(out, f"out {os.getpid()}\\n".encode())
"""


def test_holders_killed_mid_hold_never_let_two_in_at_once(tmp_path):
    """Six processes take one lock in turns while some are killed with -9 inside it: the log of who was inside
    shows each "in" followed by the same process's "out", except where that process was killed."""
    lock, log = tmp_path / "race.lock", tmp_path / "log"
    log.touch()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen([sys.executable, "-c", LOGGER, str(lock), str(log), "60"], env=env, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    killed = set()
    deadline = time.monotonic() + 60
    while len(killed) < 3 and time.monotonic() < deadline:  # kill whoever is inside, three times
        lines = log.read_text().split()
        if len(lines) >= 2 and lines[-2] == "in":
            pid = int(lines[-1])
            if pid not in killed and any(w.pid == pid for w in workers):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.01)
    for worker in workers:
        worker.wait(timeout=120)
        assert worker.returncode == (-signal.SIGKILL if worker.pid in killed else 0), worker.stderr.read()
    assert len(killed) == 3
    entries = [line.split() for line in log.read_text().splitlines()]
    inside = None
    for what, pid in entries:
        if what == "in":
            assert inside is None or int(inside) in killed, f"{pid} entered while {inside} was inside"
            inside = pid
        else:
            assert pid == inside
            inside = None
    assert sum(1 for what, _ in entries if what == "out") == 3 * 60 + sum(
        1 for what, pid in entries if what == "out" and int(pid) in killed
    )
    assert not lock.exists()


def test_a_lock_path_that_cannot_be_a_lock_file_is_an_os_error_and_leaves_nothing(tmp_path):
    """A folder where the lock file should be, or a lock folder that is not writable: an OSError naming the
    path (the CLI prints it as one line), and nothing made or removed."""
    folder = tmp_path / "a.lock"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as raised, exclusive(folder):
        pass
    assert raised.value.filename == str(folder) and folder.is_dir()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError), exclusive(locked / "b.lock"):
            pass
        assert list(locked.iterdir()) == []


def test_a_symlinked_lock_file_is_locked_through_and_only_the_link_is_removed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "l.lock"
    link.symlink_to(target)
    with exclusive(link):
        assert target.read_text() == f"{os.getpid()}\n"
    assert not link.is_symlink() and target.exists()  # the folder's own entry goes; the file it named stays


def test_an_interrupted_waiter_closes_its_file_and_the_holder_still_removes_the_lock(tmp_path):
    path = tmp_path / "held.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom builder.locks import exclusive\n"
         "with exclusive(Path(sys.argv[1])):\n    print('in', flush=True)\n    time.sleep(2)", str(path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert holder.stdout.readline() == "in\n"
    before = set(os.listdir("/proc/self/fd"))

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt), exclusive(path, on_wait=lambda pid: None):
            pytest.fail("the lock was held by another process")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert set(os.listdir("/proc/self/fd")) <= before  # the waiter's descriptor is closed
    assert holder.wait(timeout=60) == 0
    assert not path.exists()


# --- a sentence id given twice ---------------------------------------------------------------------------------


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


def write_lines(path, lines: list[dict]):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# --- gold spans ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "space, refused",
    [("\u00a0", True), ("\u2003", True), ("\u3000", True), ("\x1f", True), ("\u200b", False), ("\ufeff", False)],
)
def test_gold_and_validation_agree_on_what_whitespace_is(tmp_path, space, refused):
    """A gold span is refused for surrounding whitespace exactly when validation would trim an annotator's
    span there (both use Python's str.strip: NBSP and EM SPACE are whitespace, ZERO WIDTH SPACE is not)."""
    from builder.gold.answers import read_gold

    sentence = sentences(1)[0]
    text = f"Kim{space} met Putin."
    sentence.update(text=text, end=sentence["start"] + len(text))
    gold = {**sentence, "stance": "neutral", "entities": [{"start": 0, "end": 4, "label": "PER"}]}
    project = make_project(tmp_path / "p", "Gold space")
    path = write_lines(tmp_path / "gold.jsonl", [gold])
    assert (text[0:4] != text[0:4].strip()) is refused
    if refused:
        with pytest.raises(InputError, match=r"gold\.jsonl:1: field 'entities\[0\]': span 0-4 .* give 0-3$"):
            read_gold(path, project)
    else:
        assert read_gold(path, project)[sentence["id"]].entities == ((0, 4, "PER"),)


def test_a_gold_span_of_only_whitespace_and_overlapping_spans(tmp_path):
    from builder.gold.answers import read_gold

    sentence = sentences(1)[0]
    text = "Kim\u00a0\u2003Jong Un met Putin."
    sentence.update(text=text, end=sentence["start"] + len(text))
    project = make_project(tmp_path / "p", "Gold only space")
    gold = {**sentence, "stance": "neutral"}
    only = write_lines(tmp_path / "only.jsonl", [{**gold, "entities": [{"start": 3, "end": 5, "label": "PER"}]}])
    with pytest.raises(
        InputError, match=r"span 3-5 '\\xa0\\u2003' has surrounding whitespace.*: it is only whitespace"
    ):
        read_gold(only, project)
    spans = [{"start": 0, "end": 12, "label": "PER"}, {"start": 5, "end": 12, "label": "ORG"}]
    spans.append({"start": 0, "end": 12, "label": "ORG"})  # the same span with another label: allowed, as in validation
    overlapping = write_lines(tmp_path / "overlap.jsonl", [{**gold, "entities": spans}])
    assert read_gold(overlapping, project)[sentence["id"]].entities == (
        (0, 12, "ORG"),
        (0, 12, "PER"),
        (5, 12, "ORG"),
    )


# --- batches and pages of whole articles ------------------------------------------------------------------------


def articles_with_gold(lengths: list[int], gold_after: list[bool]) -> list[tuple[str, int]]:
    """(article, n) items: articles of the given lengths, a gold question ("g...", its own article) after the
    items flagged, as mix_gold places them (never two side by side among an article's sentences)."""
    items: list[tuple[str, int]] = []
    flags = iter(gold_after)
    for a, length in enumerate(lengths):
        for _ in range(length):
            items.append((f"a{a}", len(items)))
            if next(flags, False):
                items.append((f"g{len(items)}", len(items)))
    return items


def ordinary_article(run: list, last: bool) -> str | None:
    articles = [article for article, _ in (reversed(run) if last else run) if not article.startswith("g")]
    return articles[0] if articles else None


def test_a_gold_question_among_an_articles_tasks_at_a_page_edge_does_not_cut_it():
    x1, x2, gold, x3, y1, y2 = ("x", 1), ("x", 2), ("g", 3), ("x", 4), ("y", 5), ("y", 6)
    for pages in ([[x1, x2, gold], [x3, y1, y2]], [[x1, x2], [gold, x3, y1, y2]], [[x1, x2, gold, x3, y1, y2]]):
        assert list(whole_articles(pages, lambda item: item[0], 10)) == [[x1, x2, gold, x3], [y1, y2]]


def test_a_run_of_whole_articles_holds_at_most_the_limit():
    """Pages of 3 and a limit of 6: a long article held 5 items at a page's end was yielded 8 at a time."""
    pages = [[("a", 0), ("x", 1), ("x", 2)], [("x", i) for i in range(3, 6)], [("x", i) for i in range(6, 9)]]
    runs = list(whole_articles(pages, lambda item: item[0], 6))
    assert [len(run) for run in runs] == [1, 6, 2]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(1, 7), max_size=12),
    st.lists(st.booleans(), max_size=60),
    st.lists(st.integers(0, 8), min_size=1, max_size=20),
    st.integers(1, 10),
)
def test_whole_articles_with_gold_questions_among_them(lengths, gold_after, page_sizes, limit):
    items = articles_with_gold(lengths, gold_after)
    pages, at = [], 0
    for size in page_sizes:  # some pages empty, the rest of the items in the last one
        pages.append(items[at : at + size])
        at += size
    pages.append(items[at:])
    runs = list(whole_articles(pages, lambda item: item[0], limit))
    assert [item for run in runs for item in run] == items and all(runs)
    assert all(len(run) <= limit for run in runs)
    for run, following in zip(runs, runs[1:]):
        if ordinary_article(run, last=True) == ordinary_article(following, last=False) is not None:
            assert len(run) == limit  # an article cut: only one longer than the limit


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(1, 9), max_size=12), st.lists(st.booleans(), max_size=60), st.integers(1, 6))
def test_push_batches_end_where_an_article_ends_gold_questions_among_it_or_not(lengths, gold_after, size):
    """A gold question placed among an article's sentences (mix_gold, after a share of sentences) ended the
    batch there once the batch was full: the article's sentences went to two import batches."""
    items = articles_with_gold(lengths, gold_after)
    batches = list(article_batches(items, lambda item: None if item[0].startswith("g") else item[0], size))
    assert [item for batch in batches for item in batch] == items and all(batches)
    assert all(size <= len(batch) <= 2 * size for batch in batches[:-1])
    assert not batches or len(batches[-1]) <= 2 * size
    for batch, following in zip(batches, batches[1:]):
        if ordinary_article(batch, last=True) == ordinary_article(following, last=False) is not None:
            assert len(batch) == 2 * size


def test_a_gold_question_mix_gold_places_among_an_articles_sentences_does_not_split_its_batch():
    """The real mix: articles of 30 sentences at a 5% gold rate (a gold question waits at most 19 sentences for an
    article boundary) put the second gold question among article a-1's sentences; with batches of 20, the
    batch then held 28 of them and ended at the gold question, sending the article's last two apart."""
    from builder.gold.mixing import mix_gold

    mixed = list(mix_gold(iter(sentences(90, per_article=30)), iter(sentences(10, 1, prefix="q")), 0.05))
    inside = [i for i, (s, is_gold) in enumerate(mixed) if is_gold and mixed[i - 1][0]["article_id"] == "a-1"]
    assert inside and mixed[inside[0] + 1][0]["article_id"] == "a-1"  # among a-1's sentences
    batches = list(article_batches(mixed, lambda pair: None if pair[1] else pair[0]["article_id"], 20))
    where: dict[str, set[int]] = {}
    for n, batch in enumerate(batches):
        for sentence, is_gold in batch:
            if not is_gold:
                where.setdefault(sentence["article_id"], set()).add(n)
    assert all(len(batch_numbers) == 1 for batch_numbers in where.values()), where


# --- with Label Studio --------------------------------------------------------------------------------------


def test_an_interrupted_predict_counts_only_the_predictions_that_arrived(ls, tmp_path):
    """Predictions are imported once per run of whole articles: interrupted while making the second run's,
    `builder predict` said the first run's and those made since had arrived (7); 5 had."""
    from builder.errors import Interrupted
    from builder.labelstudio.predictions import refresh_predictions
    from builder.labelstudio.push import push_sentences
    from tests.test_predict import StandInModel, listed
    from tests.test_predict import sentences as hedged

    class Stopping(StandInModel):
        read: set[str] = set()  # the texts read (score() reads each again)

        def predict(self, text):
            Stopping.read.add(text)
            if len(Stopping.read) == 8:  # the third task of the second article
                raise KeyboardInterrupt
            return super().predict(text)

    project = make_project(tmp_path / "p", "Predict interrupted")
    pushed = push_sentences(ls, project, hedged(20, per_article=5))
    model = Stopping("1")
    with pytest.raises(Interrupted, match=r"^interrupted: 5 tasks got new predictions before the interruption"):
        refresh_predictions(ls, project, model, page_size=5)
    arrived = [t for t in listed(ls, pushed.project_id) if t["predictions"]]
    assert len(arrived) == 5

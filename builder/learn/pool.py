"""`builder predict SENTENCES -o OUT`: the trained model's proposals and uncertainty for a large pool of
sentences, offline (no Label Studio), on this process, N processes or Ray, with the same bytes.

The step is a plain function of a run of whole articles (each sentence is read with the other sentences
of its article, as `builder push` reads it); `builder.sentences.executors` decides where it runs and
hands the results back in input order. Each output line: the sentence's `id` and `article_id`, the
`model_version`, its `uncertainty` (what `--select uncertain` ranks by) and `predictions` (the Label
Studio prediction `builder push` would attach, or none).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.jsonio import atomic_write, dumps_line, sha256_file
from builder.model import prediction_for

CHUNK_SENTENCES = 2000  # whole articles per step, about this many sentences


@dataclass
class PoolResult:
    path: Path
    model_version: str
    sentences: int = 0
    with_proposals: int = 0
    mean_uncertainty: float | None = None


@functools.lru_cache(maxsize=4)
def _model(folder: str, stamp: str):
    """The model, loaded once per process (a worker keeps it for every chunk it is given); `stamp` (the
    manifest's sha256) makes a retrained folder load afresh."""
    from builder.learn.trained import load_model

    return load_model(folder)


def predict_chunk(item: tuple[str, str, list[dict]]) -> tuple[bytes, int, float]:
    """The pure step: the output lines of a run of whole articles, how many got proposals, their summed
    uncertainty."""
    folder, stamp, sentences = item
    model = _model(folder, stamp)
    contexts = model.article_contexts([s["text"] for s in sentences], [s["article_id"] for s in sentences])
    lines, proposed, total = [], 0, 0.0
    for s in sentences:
        context = contexts[s["article_id"]]
        prediction = prediction_for(model, s["text"], context, s.get("target") or None)
        uncertainty = model.uncertainty(s["text"], context=context)  # as `push --select uncertain` ranks
        proposed += prediction is not None
        total += uncertainty
        record = {
            "id": s["id"],
            "article_id": s["article_id"],
            "model_version": model.model_version,
            "uncertainty": uncertainty,
            "predictions": [prediction] if prediction else [],
        }
        lines.append(dumps_line(record))
    return b"".join(lines), proposed, total


def _chunks(sentences: Iterator[dict], folder: str, stamp: str) -> Iterator[tuple[str, str, list[dict]]]:
    """Runs of whole articles (an article's sentences are consecutive in a sentences file)."""
    chunk: list[dict] = []
    for sentence in sentences:
        if len(chunk) >= CHUNK_SENTENCES and sentence["article_id"] != chunk[-1]["article_id"]:
            yield folder, stamp, chunk
            chunk = []
        chunk.append(sentence)
    if chunk:
        yield folder, stamp, chunk


def predict_pool(
    model_folder: str | Path,
    sentences_path: str | Path,
    output: str | Path,
    project=None,
    workers: int = 1,
    engine: str = "local",
) -> PoolResult:
    """Write the model's predictions for every sentence of `sentences_path` to `output` (JSON Lines, in the
    file's order, atomically); `workers`/`engine` as for `builder split`: the same bytes either way."""
    from builder.outputs import check_output_file
    from builder.sentences.executors import make_executor
    from builder.sentences.splitting import iter_sentences

    output = check_output_file(output, project, "-o", replaces=("prediction records",))
    from builder.learn.trained import MANIFEST, load_model

    folder = str(Path(model_folder).resolve())
    model = load_model(folder, project)  # a missing, broken or other-scheme model is one line before any work
    stamp = sha256_file(Path(folder) / MANIFEST)
    result = PoolResult(output, model.model_version)
    total = 0.0
    executor = make_executor(engine, workers)
    try:
        with atomic_write(output) as out:
            for lines, proposed, summed in executor.map(
                predict_chunk, _chunks(iter_sentences(sentences_path), folder, stamp)
            ):
                out.write(lines)
                result.sentences += lines.count(b"\n")
                result.with_proposals += proposed
                total += summed
    finally:
        executor.close()
    if result.sentences:
        result.mean_uncertainty = total / result.sentences
    return result

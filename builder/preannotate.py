"""Pre-annotations: entity spans proposed to annotators as Label Studio predictions.

The default predictor is a gazetteer learned from this dataset's own annotations (every string
an annotator already labelled), so annotators confirm instead of repeating themselves. A spaCy
pipeline can be plugged in with `--predictor spacy:<model>` when spaCy and the model are installed.
A predictor's proposals become a Label Studio prediction by `builder.model.prediction_for`, shared with
`builder predict` (builder.learn.pool): this module sits above `builder.learn` (it offers the trained model
as a predictor), so nothing in `builder.learn` imports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from builder.errors import ConfigError
from builder.learn.gazetteer import GazetteerPredictor
from builder.model import region


class SpacyPredictor:
    """Entities from a spaCy pipeline, installed (a package name) or saved (`nlp.to_disk` folder), mapped to the
    scheme's labels: a label the scheme has is kept as is, else OntoNotes/CoNLL names map (PERSON -> PER, GPE ->
    LOC...); other labels are dropped. Its model version names the pipeline and its version, plus a digest of
    the files of a saved one (a retrained pipeline saved again is another version)."""

    LABELS = {
        "PERSON": "PER",
        "PER": "PER",
        "ORG": "ORG",
        "GPE": "LOC",
        "LOC": "LOC",
        "FAC": "LOC",
        "NORP": "MISC",
        "EVENT": "MISC",
        "WORK_OF_ART": "MISC",
        "MISC": "MISC",
    }

    def __init__(self, model: str, allowed_labels: Iterable[str]) -> None:
        def refuse(why: str) -> ConfigError:
            return ConfigError(f"predictor spacy:{model}: {why}")

        if not model:
            raise refuse("name an installed pipeline (en_core_web_sm) or the folder of a saved one")
        try:
            import spacy
        except ImportError:
            raise refuse("spaCy is not installed (pip install spacy), or use the gazetteer or the model") from None
        try:
            self.nlp = spacy.load(model)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # not found, not a pipeline, another spaCy's
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise refuse(
                f"cannot load ({detail}); install the pipeline, or give the folder nlp.to_disk wrote"
            ) from None
        if not any("doc.ents" in self.nlp.get_pipe_meta(name).assigns for name in self.nlp.pipe_names):
            raise refuse(f"the pipeline has no entity recognizer (its components: {', '.join(self.nlp.pipe_names)})")
        self.allowed = set(allowed_labels)
        meta = self.nlp.meta
        version = f"spacy/{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0')}"
        folder = Path(model)
        if folder.is_dir():
            version += "+" + self.folder_digest(folder)
        self.model_version = version

    def predict(self, text: str) -> list[dict]:
        spans = []
        for ent in self.nlp(text).ents:
            label = ent.label_ if ent.label_ in self.allowed else self.LABELS.get(ent.label_)
            if label in self.allowed:
                spans.append(region(ent.start_char, ent.end_char, ent.text, label))
        return spans

    @staticmethod
    def folder_digest(folder: Path) -> str:
        """12 hex of the sha256 of a folder's files (relative paths and bytes, in sorted order)."""
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()[:12]


def make_predictor(spec: str, snapshot: Path, allowed_labels: Iterable[str], project=None):
    """`gazetteer` (default), `model` (the project's trained model, `builder train`), `model:PATH` (a model
    folder), `spacy:<model>`, or `none`. A model is checked against `project`'s label scheme."""
    if spec == "none":
        return None
    if spec == "gazetteer":
        return GazetteerPredictor.from_snapshot(snapshot, allowed_labels)
    if spec == "model" or spec.startswith("model:"):
        from builder.learn.trained import default_model_dir, load_model

        if spec == "model":
            if project is None:
                raise ConfigError("--predictor model: no project to find its model in; use model:PATH")
            return load_model(default_model_dir(project), project)
        return load_model(Path(spec.split(":", 1)[1]), project)
    if spec.startswith("spacy:"):
        return SpacyPredictor(spec.split(":", 1)[1], allowed_labels)
    raise ConfigError(
        f"--predictor: unknown predictor '{spec}' (use gazetteer, model, model:PATH, spacy:<model> or none)"
    )


def article_contexts(predictor, sentences: list[tuple[str, str]]) -> dict | None:
    """For a predictor that reads a sentence with the rest of its article (the trained model: names written
    elsewhere in the article), the context of each article id among (article_id, text) pairs; else None."""
    make = getattr(predictor, "article_contexts", None)
    if not callable(make):
        return None
    return make([text for _, text in sentences], [article for article, _ in sentences])


def whole_articles(pages: Iterable[list], article_of: Callable[[object], str], limit: int) -> Iterator[list]:
    """The items of `pages` again, in runs of at most `limit` items that end where an article ends (an
    article's items are consecutive, as in a sentences file or a pushed project), so each item can be read
    with its whole article: the last article of a page waits for the next page. Only an article longer than
    `limit` items is cut. A lone item whose neighbours share another article (a gold question placed among
    an article's sentences, see builder.gold.mixing) goes with that article, and so does a lone item
    at the end of a page (it may be one)."""
    held: list = []
    for page in pages:
        for item in page:
            if len(held) >= limit:
                cut = _last_article_start(held, article_of, item) or len(held)  # 0: an article of `limit` items
                yield held[:cut]
                held = held[cut:]
            held.append(item)
        cut = _last_article_start(held, article_of) if held else 0
        if cut:  # the page's last article may go on in the next page
            yield held[:cut]
            held = held[cut:]
    if held:
        yield held


_UNKNOWN = object()


def _last_article_start(items: list, article_of: Callable[[object], str], following: object = _UNKNOWN) -> int:
    """Where the last article of `items` starts, with the lone items among its sentences (see whole_articles);
    `following`: the item after them, when it is known."""
    cut = len(items) - 1
    article = article_of(items[cut])
    alone = cut and article_of(items[cut - 1]) != article and (cut < 2 or article_of(items[cut - 2]) != article)
    if alone:  # the last item is alone so far
        if following is _UNKNOWN or article_of(following) == article_of(items[cut - 1]):
            cut -= 1  # perhaps (or surely) a lone item among the sentences of the article before it
            article = article_of(items[cut])
        elif article_of(following) != article:
            return len(items)  # an article of one item (or one between two articles): nothing goes on
    while cut:
        if article_of(items[cut - 1]) == article:
            cut -= 1
        elif cut >= 2 and article_of(items[cut - 2]) == article:  # a lone item among the article's sentences
            cut -= 2
        else:
            break
    return cut


def article_batches(items: Iterable, article_of: Callable[[object], str | None], size: int) -> Iterator[list]:
    """`items` in batches of at least `size` (the last one may hold fewer) that end where an article ends, so
    that each item is read with its whole article; only an article longer than `2 * size` is cut. An item
    whose article is None (a gold question, which `mix_gold` may place among an article's sentences) never
    ends an article. Lazy: a batch is yielded once the item after it is read."""
    batch: list = []
    last = None  # the article of the last item that has one
    for item in items:
        article = article_of(item)
        if len(batch) >= size and (len(batch) >= 2 * size or (article is not None and article != last)):
            yield batch
            batch = []
        batch.append(item)
        if article is not None:
            last = article
    if batch:
        yield batch


SPANS, STANCE = "entity spans", "stance"


def unproposed_kinds(predictor, project=None) -> dict[str, str]:
    """Why `predictor` proposes no pre-annotation at all of a kind (SPANS, STANCE): {kind: why}, empty when it
    may propose both. `builder push` says this when it attaches none of a kind, so that nobody reads a
    silent zero as a fault (a first push with an empty gazetteer, a model that could promise nothing)."""
    if predictor is None:
        return {SPANS: "--predictor none", STANCE: "--predictor none"}
    why = {}
    if isinstance(predictor, GazetteerPredictor):
        if predictor.pattern is None:
            why[SPANS] = (
                "the gazetteer is empty: it learns the strings annotators labelled, and the snapshot holds none "
                "yet (after a pull, `builder predict --predictor gazetteer` adds them to tasks not yet annotated)"
            )
        why[STANCE] = "the gazetteer proposes entity spans only; " + (
            "a trained model suggests stance: `--predictor model`"
            if project is not None and _has_model(project)
            else "no model trained yet (`builder train`, then `--predictor model`)"
        )
    elif isinstance(predictor, SpacyPredictor):
        why[STANCE] = "a spaCy pipeline proposes entity spans only"
    thresholds = getattr(predictor, "thresholds", None)
    if isinstance(thresholds, dict):  # the trained model: a kind it could not promise a precision for is off
        manifest = getattr(predictor, "manifest", None) or {}
        notes = (manifest.get("metrics") or {}).get("threshold_notes") or {}
        if thresholds.get("span") is None:
            why[SPANS] = f"the model promises no entity spans ({notes.get('span', 'no span threshold')})"
        if thresholds.get("stance") is None or getattr(predictor, "stance", True) is None:
            why[STANCE] = f"the model promises no stance ({notes.get('stance', 'no stance threshold')})"
    return why


def _has_model(project) -> bool:
    from builder.learn.trained import MANIFEST, default_model_dir

    return (default_model_dir(project) / MANIFEST).is_file()

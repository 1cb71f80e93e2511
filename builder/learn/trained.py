"""A trained model folder, loaded: confident entity and stance proposals with scores, and uncertainty.

The folder (`builder train` writes it; `default_model_dir` is where by default) holds:

- `manifest.json`: kind, `model_version`, the sha256 of the training data, the settings, dev metrics, the
  thresholds chosen on dev, the builder version, the label scheme's hash and each file's sha256;
- `entities.crfsuite`: the CRF entity tagger (python-crfsuite's own format);
- `memory.json`: the gazetteer of labelled strings, the words seen in lower case and the word clusters;
- `stance.json`: the stance classifier (TF-IDF weights and logistic-regression coefficients), when the
  training records had two stance labels or more.

Only proposals scoring at or above the thresholds are returned; in a headline-like or all-capitals
sentence, an entity needs the higher `headline_span` threshold.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from builder.errors import BuilderError
from builder.learn.features import (
    NO_CONTEXT,
    ArticleContext,
    Gazetteer,
    is_headline_like,
    spans_from_tags,
    stance_terms,
    target_key,
    token_features,
    tokenize,
)
from builder.model import SENTENCE, STANCE, region

KIND = "builder-crf"
FORMAT = 1
MANIFEST = "manifest.json"
ENTITY_FILE = "entities.crfsuite"
MEMORY_FILE = "memory.json"
STANCE_FILE = "stance.json"


class ModelError(BuilderError):
    """A model folder is missing, corrupt, or was trained for another label scheme."""


def default_model_dir(project) -> Path:
    """Where `builder train` writes and `--predictor model` reads: .builder/model/ (git-ignored with .builder/)."""
    return project.root / ".builder" / "model"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StanceClassifier:
    """TF-IDF (sublinear tf, l2) and multinomial logistic regression, applied with plain Python."""

    def __init__(self, data: dict) -> None:
        self.classes: list[str] = data["classes"]
        self.index: dict[str, int] = {term: i for i, term in enumerate(data["terms"])}
        self.idf: list[float] = data["idf"]
        self.coef: list[list[float]] = data["coef"]
        self.intercept: list[float] = data["intercept"]
        # labelled stances per target key (`target_key`); None in a model from before: every target allowed
        self.targets: dict[str, int] | None = data.get("targets")

    def probabilities(self, text: str, target: str) -> dict[str, float]:
        counts: dict[int, int] = {}
        for term in stance_terms(text, target):
            i = self.index.get(term)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        weights = {i: (1.0 + math.log(n)) * self.idf[i] for i, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        z = [b + sum(row[i] * w for i, w in weights.items()) / norm for row, b in zip(self.coef, self.intercept)]
        if len(self.classes) == 2:  # scikit-learn keeps one row for two classes: the second class's log-odds
            p = 1.0 / (1.0 + math.exp(-z[0]))
            return {self.classes[0]: 1.0 - p, self.classes[1]: p}
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps)}


class LearnedModel:
    """A model folder loaded for prediction (see the module's docstring)."""

    name = "model"
    suggests_stance = True  # `builder.model.prediction_for` passes it each sentence's target

    def __init__(self, folder: Path, manifest: dict, tagger, memory: dict, stance: StanceClassifier | None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.model_version: str = manifest["model_version"]
        self.thresholds: dict = dict(manifest["thresholds"])
        self.target: str = manifest.get("target", "")
        self.tagger = tagger
        self.tagger_bytes: bytes | None = None
        self.gazetteer = Gazetteer.from_json(memory["gazetteer"])
        self.lower_words = frozenset(memory["lower_words"])
        self.clusters: dict[str, list[int]] = memory.get("clusters", {})  # word clusters (`builder.learn.unlabelled`)
        self.stance = stance

    # --- entities

    def entity_spans(
        self, text: str, context: ArticleContext = NO_CONTEXT
    ) -> tuple[list[tuple[int, int, str, float]], float, bool]:
        """Every span the tagger finds, with its score (the product of its tokens' tag marginals); the
        entity uncertainty (1 - the lowest marginal of any token's tag); and whether the sentence is
        headline-like."""
        tokens = tokenize(text)
        headline = is_headline_like(text)
        if not tokens or self.tagger is None:
            return [], 0.0, headline
        spans, confidence = self._tagged(tokens, headline, context)
        if self.manifest.get("settings", {}).get("article_consistency") and context.texts:
            spans = self._consistent(tokens, spans, self.article_names(context))
        return [(start, end, label, score) for start, end, label, score, _ in spans], 1.0 - min(confidence), headline

    def _tagged(self, tokens, headline: bool, context: ArticleContext) -> tuple[list[tuple], list[float]]:
        """The tagger's spans (start, end, label, score, token indices) and each token's tag marginal."""
        words = [t for t, _, _ in tokens]
        tags = self.gazetteer.tags(words)
        self.tagger.set(token_features(words, tags, self.lower_words, headline, context, self.clusters))
        tags = self.tagger.tag()
        confidence = [self.tagger.marginal(tag, i) for i, tag in enumerate(tags)]
        spans = [
            (start, end, label, math.prod(confidence[i] for i in indices), indices)
            for start, end, label, indices in spans_from_tags(tokens, tags)
        ]
        return spans, confidence

    def article_names(self, context: ArticleContext) -> dict[tuple[str, ...], tuple[str, float]]:
        """Every name the tagger finds in the article's sentences (outside headline-like ones), as tokens, with
        its label and best score: computed once per article and model (`context.names`)."""
        key = self.model_version
        if key not in context.names:
            names: dict[tuple[str, ...], tuple[str, float]] = {}
            for text in context.texts:
                tokens = tokenize(text)
                if not tokens or is_headline_like(text):
                    continue
                for _, _, label, score, indices in self._tagged(tokens, False, context)[0]:
                    surface = tuple(tokens[i][0] for i in indices)
                    if surface not in names or names[surface][1] < score:
                        names[surface] = (label, score)
            context.names[key] = names
        return context.names[key]

    @staticmethod
    def _consistent(tokens, spans: list[tuple], names: dict) -> list[tuple]:
        """Document-level consistency (issue 29): a span the tagger found less surely than the same name
        elsewhere in its article takes that name's score, and a name found elsewhere is proposed here too where
        its exact tokens stand outside any span found here (longest first), with that name's label and score."""
        out = []
        covered = set()
        for start, end, label, score, indices in spans:
            elsewhere = names.get(tuple(tokens[i][0] for i in indices))
            if elsewhere and elsewhere[0] == label and elsewhere[1] > score:
                score = elsewhere[1]
            out.append((start, end, label, score, indices))
            covered.update(indices)
        words = [t for t, _, _ in tokens]
        longest = max((len(s) for s in names), default=0)
        i = 0
        while i < len(words):
            step = 1
            for length in range(min(longest, len(words) - i), 0, -1):
                surface = tuple(words[i : i + length])
                indices = list(range(i, i + length))
                if surface in names and not covered.intersection(indices) and surface[0][:1].isupper():
                    label, score = names[surface]
                    out.append((tokens[i][1], tokens[i + length - 1][2], label, score, indices))
                    covered.update(indices)
                    step = length
                    break
            i += step
        return sorted(out)

    def span_threshold(self, headline: bool) -> float | None:
        threshold = self.thresholds.get("span")
        if threshold is None:
            return None
        return max(threshold, self.thresholds["headline_span"]) if headline else threshold

    # --- stance

    def stance_probabilities(self, text: str, target: str | None = None) -> dict[str, float] | None:
        if self.stance is None:
            return None
        return self.stance.probabilities(text, self.target if target is None else target)

    def knows_target(self, target: str | None = None) -> bool:
        """Whether the stance classifier learned from enough labelled sentences about `target` (None: the
        model's own target) to suggest a stance for it: what a word means for one motion says nothing about
        another (claims of unseen motions were at chance), so a target never labelled, or labelled fewer than
        `min_target_stances` times, gets no stance suggestion rather than a wrong one."""
        if self.stance is None:
            return False
        if self.stance.targets is None:
            return True
        least = self.manifest.get("settings", {}).get("min_target_stances", 1)
        return self.stance.targets.get(target_key(self.target if target is None else target), 0) >= least

    # --- the predictor interface (builder.preannotate)

    def predict(self, text: str, target: str | None = None, context: ArticleContext = NO_CONTEXT) -> list[dict]:
        """Label Studio result items for the confident proposals only, each with its `score`; `context`:
        the other sentences of its article (`article_context`), as the model was trained with."""
        spans, _, headline = self.entity_spans(text, context)
        threshold = self.span_threshold(headline)
        result = []
        if threshold is not None:
            for start, end, label, score in spans:
                if score >= threshold:
                    result.append({**region(start, end, text[start:end], label), "score": round(score, 4)})
        probabilities = self.stance_probabilities(text, target)
        stance_threshold = self.thresholds.get("stance")
        if probabilities and stance_threshold is not None and self.knows_target(target):
            label, p = max(probabilities.items(), key=lambda kv: (kv[1], kv[0]))
            if p >= stance_threshold:
                result.append(
                    {
                        "id": hashlib.sha1(f"stance:{label}".encode()).hexdigest()[:10],
                        "from_name": STANCE,
                        "to_name": SENTENCE,
                        "type": "choices",
                        "value": {"choices": [label]},
                        "score": round(p, 4),
                    }
                )
        return result

    def uncertainty(self, text: str, target: str | None = None, context: ArticleContext = NO_CONTEXT) -> float:
        """0 (sure) to 1: the mean of the entity uncertainty and the stance entropy (normalised)."""
        _, entity, _ = self.entity_spans(text, context)
        probabilities = self.stance_probabilities(text, target)
        if not probabilities:
            return round(entity, 6)
        entropy = -sum(p * math.log(p) for p in probabilities.values() if p > 0) / math.log(len(probabilities))
        return round((entity + entropy) / 2, 6)

    def uncertainties(self, texts: list[str], articles: list[str] | None = None) -> list[float]:
        """`uncertainty` of each text, in order; with `articles` (the article id of each text), each is
        read in the context of the texts of its article among them."""
        if articles is None:
            return [self.uncertainty(text) for text in texts]
        contexts = self.article_contexts(texts, articles)
        return [self.uncertainty(text, context=contexts[a]) for text, a in zip(texts, articles, strict=True)]

    def score(self, text: str, context: ArticleContext = NO_CONTEXT) -> float:
        """The prediction's overall score (Label Studio's prediction `score`): 1 - uncertainty."""
        return round(1.0 - self.uncertainty(text, context=context), 4)

    @staticmethod
    def article_contexts(texts: list[str], articles: list[str]) -> dict[str, ArticleContext]:
        """The context of each article id, from its texts among `texts` (`articles[i]` is text i's)."""
        grouped: dict[str, list[str]] = {}
        for text, article in zip(texts, articles, strict=True):  # never a text silently left out
            grouped.setdefault(article, []).append(text)
        return {article: ArticleContext(group) for article, group in grouped.items()}


def _manifest_problem(manifest: dict) -> str:
    """What is wrong with the types of a (hand-edited) manifest, or ""."""
    version = manifest["model_version"]
    if not isinstance(version, str) or not version.strip() or not version.isprintable():
        return "model_version must be a non-empty string"
    thresholds = manifest["thresholds"]
    if not isinstance(thresholds, dict) or not all(
        isinstance(k, str) and (v is None or (type(v) in (int, float) and math.isfinite(v)))
        for k, v in thresholds.items()
    ):
        return "thresholds must map names to numbers (or null: nothing proposed)"
    if type(thresholds.get("headline_span")) not in (int, float):
        return "thresholds must hold a number for headline_span"
    files = manifest["files"]
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return "files must map file names to sha256 digests"
    return ""


def _check_stance(stance: StanceClassifier, project) -> None:
    """The stance classifier's arrays agree, and its classes are stance labels (of `project`, when given)."""
    n, terms = len(stance.classes), len(stance.index)
    rows = 1 if n == 2 else n
    if n < 2 or len(stance.idf) != terms or len(stance.coef) != rows or len(stance.intercept) != rows:
        raise ValueError("the stance classifier's arrays do not agree")
    if any(len(row) != terms for row in stance.coef):
        raise ValueError("the stance classifier's arrays do not agree")
    if project is not None and not set(stance.classes) <= set(project.stance_values):
        raise ValueError(
            f"stance classes {sorted(set(stance.classes) - set(project.stance_values))} are not in the scheme"
        )


def load_model(folder: str | Path, project=None) -> LearnedModel:
    """Load a model folder; with `project`, it must have been trained for the project's label scheme.
    Anything missing or corrupt is a one-line ModelError naming the folder."""
    folder = Path(folder)
    todo = "run `builder train` to make it"

    def fail(why: str) -> ModelError:
        return ModelError(f"model {folder}: {why}; {todo}")

    if not folder.is_dir():
        raise fail("no such folder" if not folder.exists() else "not a folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(f"no {MANIFEST}, so not a builder model folder") from None
    except (OSError, ValueError) as exc:
        raise fail(f"{MANIFEST} is unreadable ({type(exc).__name__})") from None
    required = ("kind", "format", "model_version", "thresholds", "files", "label_scheme_sha256")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required) or manifest["kind"] != KIND:
        raise fail(f"{MANIFEST} is not a {KIND} manifest")
    if manifest["format"] != FORMAT:
        raise fail(f"model format {manifest['format']!r}, this builder reads {FORMAT}")
    problem = _manifest_problem(manifest)
    if problem:
        raise fail(f"{MANIFEST}: {problem}")
    if project is not None and manifest["label_scheme_sha256"] != project.scheme_hash():
        todo = "retrain it with `builder train`"
        raise fail(f"trained for another label scheme than {project.source.name}'s")
    contents = {}
    for name, digest in sorted(manifest["files"].items()):
        try:
            data = (folder / name).read_bytes()
        except OSError as exc:
            raise fail(f"cannot read {name} ({exc.strerror or type(exc).__name__})") from None
        if sha256_bytes(data) != digest:
            raise fail(f"{name} does not match its sha256 in {MANIFEST} (changed or corrupt)")
        contents[name] = data
    try:
        memory = json.loads(contents[MEMORY_FILE])
        stance = StanceClassifier(json.loads(contents[STANCE_FILE])) if STANCE_FILE in contents else None
        tagger = None
        if ENTITY_FILE in contents:
            import pycrfsuite

            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(contents[ENTITY_FILE])  # the bytes whose sha256 was checked
        model = LearnedModel(folder, manifest, tagger, memory, stance)
        if stance is not None:
            _check_stance(stance, project)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OSError) as exc:
        raise fail(f"its files cannot be used ({type(exc).__name__}: {str(exc)[:80]})") from None
    model.tagger_bytes = contents.get(ENTITY_FILE)  # crfsuite reads the model from this buffer: keep it alive
    return model

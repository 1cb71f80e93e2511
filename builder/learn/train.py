"""`builder train`: an entity tagger and a stance classifier from the project's validated records.

Dev is by article, never sentences of one article on both sides: the articles are dealt into
`dev_folds` folds by a hash of their id (salted with the seed), and each fold is scored by a model
fitted on the others, so every article is dev once (one small dev split chose thresholds that did not
hold on other articles). From the pooled dev scores: per-label precision, recall and F1 (every span
found) and stance accuracy, each beside a baseline fitted on the same folds (spans: the gazetteer of the
other folds' labelled strings; stance: always the other folds' most frequent stance), and the thresholds.

A threshold is a promise about data the model has not seen, so it is chosen on the one-sided 95% Wilson
lower bound of the dev precision, never the point estimate (rule `THRESHOLD_RULE`): "precision >= 0.8
with 95% confidence" is a one-sided claim (z = 1.645; the two-sided bound, z = 1.96, saved 14.7% of
entity actions on bench_preannotate against 18.7%, and both kept their promises over 10 random draws).
Among the cuts whose lower bound is `target_precision` or above, the one that saves the most annotator
actions (right proposals minus wrong ones: each wrong proposal costs a deletion, each right one saves a
span drawn). A point estimate of 0.8 on a few dozen proposals held at 0.64 on other sentences of the
same source. A stance threshold must also beat the majority-class baseline: its lower bound above the
share of the most frequent stance (else "always neutral" does as well, and pre-selecting it only makes
the dataset the model's); where no cut does, the threshold is None, nothing of that kind is suggested
and the notes say why. The manifest's `metrics.promised` holds, per kind, the expected precision of the
proposals shown, its two-sided 95% interval and n. When dev is too small to choose (fewer than
`min_dev_items` gold spans, or sentences with a stance), that kind is not suggested either: a threshold
nobody measured promises nothing a researcher could check (the notes say so; label more, train again).
The model written is fitted on all records with those thresholds.
Same records, settings and seed: byte-identical folder, same `model_version`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from builder import __version__
from builder.errors import BuilderError, InputError
from builder.learn.features import (
    TOKEN,
    ArticleContext,
    Gazetteer,
    bio_tags,
    is_headline_like,
    stance_terms,
    target_key,
    token_features,
    tokenize,
)
from builder.learn.folds import dev_folds, dev_sample, fit_workers, in_parallel
from builder.learn.gazetteer import GazetteerPredictor
from builder.learn.trained import (
    ENTITY_FILE,
    FORMAT,
    KIND,
    MANIFEST,
    MEMORY_FILE,
    STANCE_FILE,
    LearnedModel,
    StanceClassifier,
    default_model_dir,
    sha256_bytes,
)
from builder.learn.unlabelled import prepare, self_trained
from builder.model import UNRESOLVED
from builder.records.quality import Z95
from builder.records.quality import wilson_interval as quality_wilson_interval

COMMAND = "builder train"
VERSION = "3"  # 2: name lists, article context, span score = product of its tokens' marginals; 3: THRESHOLD_RULE
# a cut's one-sided 95% Wilson lower bound >= target (stance: and > the majority share); the interval the
# manifest reports beside the promise is the two-sided 95% one
THRESHOLD_RULE = "wilson-lower-one-sided-95/1"
THRESHOLD_DIGITS = 6  # decimals of a threshold in the manifest
Z_ONE_SIDED_95 = 1.6448536269514722  # the normal quantile of 0.95: "precision >= target" with 95% confidence
SETTINGS = {
    "c1": 0.05,  # CRF L1 and L2 regularisation, L-BFGS iterations (c2: the best of 3 on bench_preannotate)
    "c2": 0.2,
    "max_iterations": 200,
    "dev_folds": 4,  # articles dealt into folds; each fold is dev once for a model fitted on the others
    # a dev fold's model is fitted on at most this many sentences (whole articles, `dev_sample`): 5,000 labelled
    # sentences trained in 74 s of CPU, not 129; below it (every bench) nothing changes. None: no cap
    "dev_max_sentences": 1250,
    "target_precision": 0.8,
    "precision_margin": 0.0,  # chosen where the lower bound of dev precision >= target + margin
    "threshold_rule": THRESHOLD_RULE,
    "min_dev_items": 20,  # fewer dev gold spans (or dev stances) than this: too small to choose a threshold
    "headline_span": 0.95,  # headline-like and all-capitals sentences: only entities the model is sure of
    "stance_c": 4.0,  # logistic regression's inverse regularisation
    # its solver and tolerance: nearer the optimum than lbfgs at 1e-4 (the default until issue 29), in a tenth of
    # the time (5,000 sentences: 0.3 s against 3.4 s a fit)
    "stance_solver": "newton-cg",
    "stance_tol": 1e-6,
    # a target with fewer labelled stances gets no stance suggestion (`LearnedModel.knows_target`)
    "min_target_stances": 10,
    # a name found in one sentence of an article is proposed in its others (`LearnedModel.article_names`)
    "article_consistency": False,
    # the words seen in lower case come from the unlabelled sentences too (`fit_model(unlabelled=...)`,
    # `builder train --unlabelled`): on bench_cross_genre it raised actions saved on 11 of 12 GUM genres never
    # tuned on (none lower); document-level consistency (`article_consistency`) lowered saving on
    # the tuning genres (interview 29.4% -> 26.3%) and stays off
    "unlabelled_lower_words": True,
    "word_clusters": [16, 64, 256],  # the sentences' word clusters, coarse to fine (`unlabelled.py`); []: none
    "self_training": None,  # a floor: refit once with the unlabelled sentences tagged above it (`unlabelled.py`)
}


@dataclass(frozen=True)
class Example:
    """One labelled sentence: entity spans ({start, end, label}) and the stance (None when unresolved)."""

    id: str
    article_id: str
    text: str
    entities: tuple = ()
    stance: str | None = None
    target: str = ""


@dataclass
class TrainResult:
    folder: Path
    model_version: str
    manifest: dict
    metrics: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    left_out: int = 0  # problems validation found (tasks or annotations not trained on; `builder validate` names them)


def examples_from_records(records) -> list[Example]:
    """Examples from validated records, in a canonical order (article, sentence index, id)."""
    examples = [
        Example(
            r["id"],
            r["article_id"],
            r["text"],
            # the resolved spans: not those the vote could not decide, which a project may keep in `entities`
            tuple(
                {"start": e["start"], "end": e["end"], "label": e["label"]}
                for e in r.get("entities", ())  # a stance-only scheme's records have none
                if e.get("status") != UNRESOLVED
            ),
            r.get("stance"),  # an entities-only scheme's records have no stance
            r.get("target") or "",
        )
        for r in sorted(records, key=lambda r: (r["article_id"], r["sentence_index"], r["id"]))
    ]
    return examples


def data_digest(examples: list[Example]) -> str:
    """sha256 of the training data, canonical JSON of every example in order."""
    digest = hashlib.sha256()
    for e in examples:
        item = [
            e.id,
            e.article_id,
            e.text,
            [[s["start"], s["end"], s["label"]] for s in e.entities],
            e.stance,
            e.target,
        ]
        digest.update(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return digest.hexdigest()


# --- fitting ----------------------------------------------------------------------------------------


def article_contexts(examples: list[Example]) -> dict[str, ArticleContext]:
    """The context of each article, from all of its sentences among `examples` (as the model groups them)."""
    return LearnedModel.article_contexts([e.text for e in examples], [e.article_id for e in examples])


def lower_words_of(texts) -> frozenset[str]:
    """The words written in lower case somewhere other than a sentence's first token."""
    lower: set[str] = set()
    for text in texts:
        tokens = TOKEN.findall(text)  # the tokens of `tokenize`, without their offsets (100,000 sentences: seconds)
        lower.update(token for token in tokens[1:] if token.islower())
    return frozenset(lower)


class Prepared:
    """What every fit of one `fit_model` call reads the same way, computed once: each article's context (a
    fold holds whole articles, so an article's context is the same in every fold) and each text's tokens and
    whether it is headline-like."""

    def __init__(self, examples: list[Example], settings: dict | None = None, unlabelled=(), seed: int = 0) -> None:
        self.contexts = article_contexts(examples)
        self.clusters, self.unlabelled = prepare([e.text for e in examples], settings, unlabelled, seed)
        self.texts: dict[str, tuple[list, bool]] = {}
        for e in examples:
            if e.text not in self.texts:
                self.texts[e.text] = (tokenize(e.text), is_headline_like(e.text))


def _fit(
    examples: list[Example],
    settings: dict,
    folder: Path,
    seed: int,
    unlabelled_lower: frozenset[str] = frozenset(),
    prepared: Prepared | None = None,
) -> dict[str, bytes]:
    """The model files (name -> bytes) fitted on `examples`; the CRF is trained in memory (else in `folder`).
    `unlabelled_lower`: the words in lower case in the project's other sentences (pushed, not labelled), which
    join the labelled ones' (`settings["unlabelled_lower_words"]`). `prepared`: `Prepared` of examples that
    include these (the same model, sooner)."""
    import pycrfsuite

    prepared = prepared or Prepared(examples)

    gazetteer = Gazetteer.learn((e.article_id, e.text, e.entities) for e in examples)
    lower = lower_words_of(e.text for e in examples) | unlabelled_lower
    files: dict[str, bytes] = {}
    memory = {"gazetteer": gazetteer.to_json(), "lower_words": sorted(lower), "clusters": prepared.clusters}
    files[MEMORY_FILE] = _json_bytes(memory)
    if any(e.entities for e in examples):
        trainer = pycrfsuite.Trainer(verbose=False)
        for e in examples:
            tokens, headline = prepared.texts[e.text]
            if not tokens:
                continue
            words = [t for t, _, _ in tokens]
            features = token_features(
                words,
                gazetteer.tags(words, exclude=e.article_id),
                lower,
                headline,
                prepared.contexts[e.article_id],
                prepared.clusters,
            )
            trainer.append(features, bio_tags(tokens, list(e.entities)))
        trainer.set_params(
            {
                "c1": settings["c1"],
                "c2": settings["c2"],
                "max_iterations": settings["max_iterations"],
                "feature.possible_transitions": True,
            }
        )
        files[ENTITY_FILE] = _train_crf(trainer, folder)
    stance_examples = [e for e in examples if e.stance is not None]
    if len({e.stance for e in stance_examples}) >= 2:
        files[STANCE_FILE] = _json_bytes(_fit_stance(stance_examples, settings, seed))
    return self_trained(_fit, files, examples, settings, folder, seed, unlabelled_lower, prepared)


CRF_HEADER = struct.Struct("<4sI4s9I")  # crfsuite's model header: magic, size, type, version, counts, offsets
LOW_SPACE = 1 << 16  # bytes free after crfsuite wrote its file: below this, the file may be cut short


def _train_crf(trainer, folder: Path) -> bytes:
    """The CRF `trainer` fitted, as model bytes checked whole before anything reads them.

    crfsuite writes its model file itself and ignores failed writes: on a full disk it leaves a file
    cut short, and reading one back can crash the process (a segmentation fault). So it writes into
    memory where the system allows (a memfd: the disk is written only by builder's own checked writes),
    else into a hidden file in `folder` that is always removed; either way the bytes are checked
    (crfsuite's header, its offsets within the file) and a damaged model is an OSError, never read.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create(ENTITY_FILE)
        try:
            trainer.train(f"/proc/self/fd/{fd}")
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
        finally:
            os.close(fd)
        low_space = False
    else:
        path = folder / f".{ENTITY_FILE}.{os.getpid()}.training"  # one per worker
        try:
            trainer.train(str(path))
            data = path.read_bytes()
            low_space = shutil.disk_usage(folder).free < LOW_SPACE
        finally:
            path.unlink(missing_ok=True)
    if low_space:  # the file may be cut short in a way its header does not show
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    problem = crf_model_problem(data)
    if problem:
        raise OSError(errno.EIO, f"the trained CRF model came out damaged: {problem}")
    return data


def crf_model_problem(data: bytes) -> str | None:
    """Why `data` is not a whole crfsuite model (None when it looks whole): a file cut short keeps a header
    whose size or offsets point past its end, or no header at all."""
    if len(data) < CRF_HEADER.size:
        return f"{len(data)} bytes, shorter than its header"
    magic, size, kind, _version, _features, _labels, _attrs, *offsets = CRF_HEADER.unpack_from(data)
    if magic != b"lCRF" or kind != b"FOMC":
        return "no crfsuite header"
    if size != len(data) or not all(CRF_HEADER.size <= offset < size for offset in offsets):
        return f"{len(data)} bytes, its header says {size} with parts up to {max(offsets)}"
    return None


def _fit_stance(examples: list[Example], settings: dict, seed: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=lambda pair: stance_terms(*pair), sublinear_tf=True)
    x = vectorizer.fit_transform([(e.text, e.target) for e in examples])
    classifier = LogisticRegression(
        C=settings["stance_c"],
        solver=settings["stance_solver"],
        tol=settings["stance_tol"],
        max_iter=2000,
        random_state=seed,
    )
    classifier.fit(x, [e.stance for e in examples])
    terms = [None] * len(vectorizer.vocabulary_)
    for term, i in vectorizer.vocabulary_.items():
        terms[i] = term
    return {
        "classes": [str(c) for c in classifier.classes_],
        "terms": terms,
        "idf": [_round(v) for v in vectorizer.idf_],
        "coef": [[_round(v) for v in row] for row in classifier.coef_],
        "intercept": [_round(v) for v in classifier.intercept_],
        "targets": dict(sorted(Counter(target_key(e.target) for e in examples).items())),
    }


def _round(value) -> float:
    return float(f"{float(value):.9g}")  # fewer digits than float64 noise: the same bytes from run to run


def _json_bytes(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _model_from_files(folder: Path, files: dict[str, bytes], manifest: dict) -> LearnedModel:
    tagger = None
    if ENTITY_FILE in files:
        import pycrfsuite

        tagger = pycrfsuite.Tagger()
        tagger.open_inmemory(files[ENTITY_FILE])
    stance = StanceClassifier(json.loads(files[STANCE_FILE])) if STANCE_FILE in files else None
    model = LearnedModel(folder, manifest, tagger, json.loads(files[MEMORY_FILE]), stance)
    model.tagger_bytes = files.get(ENTITY_FILE)  # crfsuite reads the model from this buffer: keep it alive
    return model


# --- dev scores and thresholds ----------------------------------------------------------------------


def wilson_interval(right: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion right/n (95% by default; `builder quality`'s, for one
    proportion); (0, 1) when n is 0. Unlike the normal approximation it stays inside [0, 1] and is honest
    for a few dozen items near 0.8 or 1."""
    if n == 0:
        return 0.0, 1.0
    low, high = quality_wilson_interval(right, n, z)
    return max(0.0, float(low)), min(1.0, float(high))


def choose_threshold(
    scored: list[tuple[float, bool]], target: float, above: float | None = None
) -> tuple[float | None, dict]:
    """The score cut whose proposals' one-sided 95% Wilson lower bound of precision (z = Z_ONE_SIDED_95) is
    `target` or more (and above `above`, a baseline, when given), saving the most actions (right minus
    wrong); None when no cut does.
    The cuts are the scores as the manifest writes them (THRESHOLD_DIGITS decimals) and each is judged on
    exactly the proposals it keeps as written (score >= cut), so the promise is about the cut applied.
    `shown`: how many proposals the cut keeps and how many of them are right."""
    ordered = sorted(scored, key=lambda s: -s[0])
    best: tuple[int, float] | None = None
    right = wrong = i = 0
    for cut in sorted({round(score, THRESHOLD_DIGITS) for score, _ in scored}, reverse=True):
        while i < len(ordered) and ordered[i][0] >= cut:
            right, wrong, i = right + ordered[i][1], wrong + (not ordered[i][1]), i + 1
        if not i:
            continue
        lower = wilson_interval(right, right + wrong, Z_ONE_SIDED_95)[0]
        if lower >= target and (above is None or lower > above) and (best is None or right - wrong > best[0]):
            best = (right - wrong, cut)
    if best is None:
        return None, {"shown": 0, "right": 0}
    kept = [c for s, c in scored if s >= best[1]]
    return best[1], {"shown": len(kept), "right": sum(kept)}


def promise(scored: list[tuple[float, bool]], threshold: float | None) -> dict | None:
    """What a threshold promises: the expected precision of the proposals it shows (the pooled dev precision
    above it), its two-sided 95% Wilson interval and n; None when nothing is shown or no precision was measured."""
    if threshold is None:
        return None
    kept = [c for s, c in scored if s >= threshold]
    if not kept:
        return None
    lower, upper = wilson_interval(sum(kept), len(kept))
    return {
        "rule": THRESHOLD_RULE,
        "precision": round(sum(kept) / len(kept), 4),
        "interval": [round(lower, 4), round(upper, 4)],
        "n": len(kept),
        "shown_share": round(len(kept) / len(scored), 4),
    }


def evaluate(
    model: LearnedModel | None,
    examples: list[Example],
    entity_labels: list[str],
    gazetteer=None,
    majority: str | None = None,
    contexts: dict | None = None,
) -> dict:
    """Exact-span counts per label (every span the tagger finds), and the (score, right) pairs of spans and
    stances the thresholds are chosen from; beside them the baselines' counts on the same sentences: the
    spans `gazetteer` finds (a GazetteerPredictor) and how often `majority`, the stance always answered, is
    right where the model gives a stance. `contexts`: the articles' contexts, when already computed."""
    counts = {label: Counter() for label in entity_labels}
    baseline = {label: Counter() for label in entity_labels}
    span_scores, stance_scores = [], []
    majority_right = 0
    gold_total = 0
    contexts = contexts or article_contexts(examples)
    for e in examples:
        gold = {(s["start"], s["end"], s["label"]) for s in e.entities}
        gold_total += len(gold)
        spans, _, headline = model.entity_spans(e.text, contexts[e.article_id])
        found = {(s, t, label) for s, t, label, _ in spans}
        for start, end, label, score in spans:
            span_scores.append((score, (start, end, label) in gold, headline))
        for label in entity_labels:
            g = {x for x in gold if x[2] == label}
            f = {x for x in found if x[2] == label}
            counts[label].update(tp=len(g & f), fp=len(f - g), fn=len(g - f))
        if gazetteer is not None:
            listed = {
                (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in gazetteer.predict(e.text)
            }
            for label in entity_labels:
                g = {x for x in gold if x[2] == label}
                f = {x for x in listed if x[2] == label}
                baseline[label].update(tp=len(g & f), fp=len(f - g), fn=len(g - f))
        probabilities = model.stance_probabilities(e.text, e.target)
        if e.stance is not None and probabilities and model.knows_target(e.target):  # as `predict` suggests
            label, p = max(probabilities.items(), key=lambda kv: (kv[1], kv[0]))
            stance_scores.append((p, label == e.stance))
            majority_right += majority == e.stance
    return {
        "counts": counts,
        "gold_spans": gold_total,
        "span_scores": span_scores,
        "stance_scores": stance_scores,
        "sentences": len(examples),
        "baseline_spans": baseline,
        "majority_right": majority_right,
    }


def merge(a: dict, b: dict) -> dict:
    """The scores of two dev folds together."""
    return {
        "counts": {label: a["counts"][label] + b["counts"][label] for label in a["counts"]},
        "gold_spans": a["gold_spans"] + b["gold_spans"],
        "span_scores": a["span_scores"] + b["span_scores"],
        "stance_scores": a["stance_scores"] + b["stance_scores"],
        "sentences": a["sentences"] + b["sentences"],
        "baseline_spans": {label: a["baseline_spans"][label] + b["baseline_spans"][label] for label in a["counts"]},
        "majority_right": a["majority_right"] + b["majority_right"],
    }


def baselines_of(examples: list[Example], entity_labels: list[str]):
    """The baselines fitted on `examples`: the gazetteer of their labelled strings (each string's most frequent
    label, as `--predictor gazetteer` learns it) and their most frequent stance (None when none has one)."""
    allowed = set(entity_labels)
    votes: dict[str, Counter] = {}
    for e in examples:
        for s in e.entities:
            surface = e.text[s["start"] : s["end"]].strip()
            if len(surface) >= 2 and s["label"] in allowed:
                votes.setdefault(surface, Counter())[s["label"]] += 1
    gazetteer = GazetteerPredictor({surface: c.most_common(1)[0][0] for surface, c in votes.items()})
    stances = Counter(e.stance for e in examples if e.stance is not None)
    majority = min(stances, key=lambda label: (-stances[label], label)) if stances else None
    return gazetteer, majority


def _per_label(counts: dict, entity_labels: list[str]) -> dict:
    per_label = {label: _prf(counts[label]) for label in entity_labels}
    per_label["all"] = _prf(sum(counts.values(), Counter()))
    return per_label


def _accuracy(scored: list[tuple[float, bool]]) -> float | None:
    return round(sum(c for _, c in scored) / len(scored), 4) if scored else None


def _prf(c: Counter) -> dict:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": c["tp"] + c["fn"]}


def _majority_share(dev: dict) -> float | None:
    n = len(dev["stance_scores"])
    return round(dev["majority_right"] / n, 4) if n else None


def _thresholds(dev: dict, settings: dict) -> tuple[dict, dict]:
    target = settings["target_precision"] + settings["precision_margin"]
    thresholds = {"headline_span": settings["headline_span"]}
    notes = {}
    no_cut = f"no cut's one-sided 95% lower bound of dev precision reaches {target}"
    if dev["gold_spans"] >= settings["min_dev_items"]:
        spans = [(s, c) for s, c, headline in dev["span_scores"] if not headline]
        thresholds["span"], shown = choose_threshold(spans, target)
        notes["span"] = "chosen on dev" if thresholds["span"] is not None else f"{no_cut}: no spans suggested"
        notes["span_dev"] = shown
    else:
        thresholds["span"] = None
        notes["span"] = (
            f"dev too small ({dev['gold_spans']} gold spans < {settings['min_dev_items']}) to promise a precision: "
            "no spans suggested; label more and train again"
        )
    if len(dev["stance_scores"]) >= settings["min_dev_items"]:
        share = _majority_share(dev)
        thresholds["stance"], shown = choose_threshold(dev["stance_scores"], target, above=share)
        if thresholds["stance"] is not None:
            notes["stance"] = "chosen on dev"
        elif choose_threshold(dev["stance_scores"], target)[0] is None:
            notes["stance"] = f"{no_cut}: no stance suggested"
        else:
            notes["stance"] = (
                f"no cut's one-sided 95% lower bound of dev precision beats always answering the most frequent stance "
                f"(right {share:.2f} of the time): no stance suggested"
            )
        notes["stance_dev"] = shown
    else:
        thresholds["stance"] = None
        n = len(dev["stance_scores"])
        notes["stance"] = (
            f"dev too small ({n} sentences with a stance < {settings['min_dev_items']}) to promise a precision: "
            "no stance suggested; label more and train again"
        )
    return thresholds, notes


def _shown(scored: list[tuple[float, bool]], threshold: float | None) -> dict:
    kept = [c for s, c in scored if threshold is not None and s >= threshold]
    return {"shown": len(kept), "right": sum(kept), "precision": round(sum(kept) / len(kept), 4) if kept else None}


# --- the whole fit and the folder ---------------------------------------------------------------------


def fit_model(
    examples: list[Example],
    folder: Path,
    *,
    entity_labels: list[str],
    target: str = "",
    scheme_hash: str = "",
    settings: dict | None = None,
    seed: int = 0,
    unlabelled: tuple[str, ...] = (),
    workers: int | None = None,
) -> TrainResult:
    """Fit, score on dev, choose thresholds, refit and write the model files and manifest into `folder`
    (an existing empty folder). Returns the manifest and dev metrics. `workers`: processes the fits run in
    (None: the available cores, for `PARALLEL_MIN_SENTENCES` or more; the same bytes either way)."""
    settings = {**SETTINGS, **(settings or {})}
    if not examples:
        raise InputError("no validated records to train on; label some sentences and `builder pull` first")
    folds = dev_folds([e.article_id for e in examples], settings["dev_folds"], seed)
    # tokenized once for every fit (the unlabelled sentences may be 20 times the labelled ones)
    unlabelled_lower = lower_words_of(unlabelled) if settings["unlabelled_lower_words"] else frozenset()
    probe = {
        "model_version": "dev",
        "thresholds": {"headline_span": settings["headline_span"]},
        "target": target,
        "settings": settings,
    }
    prepared = Prepared(examples, settings, unlabelled, seed)

    def fit(fold: int | None):  # the final model's files (None), or a dev fold's scores
        if fold is None:
            return _fit(examples, settings, folder, seed, unlabelled_lower, prepared)
        train = dev_sample([e for e in examples if folds[e.article_id] != fold], settings["dev_max_sentences"], seed)
        dev = [e for e in examples if folds[e.article_id] == fold]
        dev_model = _model_from_files(folder, _fit(train, settings, folder, seed, unlabelled_lower, prepared), probe)
        return evaluate(dev_model, dev, entity_labels, *baselines_of(train, entity_labels), prepared.contexts)

    jobs = [None, *sorted(set(folds.values()))]  # the final fit first: the longest, needing nothing from dev
    workers = fit_workers(len(examples), len(jobs), workers)
    if workers > 1 and any(e.stance is not None for e in examples):
        import sklearn.linear_model  # noqa: F401 -- once, before the workers fork (seconds of CPU in each)
    files, *found = in_parallel(fit, jobs, workers)
    scores = evaluate(None, [], entity_labels)
    for fold_scores in found:  # in the folds' order, wherever they ran
        scores = merge(scores, fold_scores)
    thresholds, notes = _thresholds(scores, settings)
    spans = [(s, c) for s, c, headline in scores["span_scores"] if not headline]
    chosen = {key: notes[key] == "chosen on dev" for key in ("span", "stance")}
    metrics = {
        "dev": f"{len(set(folds.values()))} folds by article, each scored by a model fitted on the others",
        "dev_sentences": scores["sentences"],
        "entities": _per_label(scores["counts"], entity_labels),
        "stance_accuracy": _accuracy(scores["stance_scores"]),
        "stance_dev_sentences": len(scores["stance_scores"]),
        "proposed_spans": _shown(spans, thresholds["span"]),
        "proposed_stance": _shown(scores["stance_scores"], thresholds["stance"]),
        "threshold_notes": notes,
        # what the thresholds promise on unseen sentences (None: nothing shown, or a default not measured)
        "promised": {
            "span": promise(spans, thresholds["span"]) if chosen["span"] else None,
            "stance": promise(scores["stance_scores"], thresholds["stance"]) if chosen["stance"] else None,
        },
        "baselines": {
            "entities": {
                "predictor": "gazetteer of the other folds' labelled strings",
                **_per_label(scores["baseline_spans"], entity_labels),
            },
            "stance": {
                "predictor": "always the other folds' most frequent stance",
                "label": baselines_of(examples, [])[1],  # the most frequent stance of all the records
                "accuracy": _majority_share(scores),
            },
        },
    }
    data_sha = data_digest(examples)
    identity = json.dumps({"data": data_sha, "settings": settings, "seed": seed, "kind": KIND, "version": VERSION})
    model_version = f"{KIND}/{VERSION}+{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    manifest = {
        "kind": KIND,
        "format": FORMAT,
        "model_version": model_version,
        "builder_version": __version__,
        "label_scheme_sha256": scheme_hash,
        "target": target,
        "entity_labels": list(entity_labels),
        "training_data_sha256": data_sha,
        "training": {
            "sentences": len(examples),
            "articles": len({e.article_id for e in examples}),
            "sentences_with_stance": sum(1 for e in examples if e.stance is not None),
            "entity_spans": sum(len(e.entities) for e in examples),
            **learned_from(examples, entity_labels, unlabelled),
        },
        "settings": settings,
        "seed": seed,
        "thresholds": thresholds,
        "metrics": metrics,
        "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return TrainResult(folder, model_version, manifest, metrics, thresholds)


WEAK_EXAMPLES = 50  # a class with fewer labelled examples than this: expect its suggestions to be weak


def learned_from(examples: list[Example], entity_labels: list[str], unlabelled: tuple[str, ...] = ()) -> dict:
    """What a model learned from, for its manifest and `builder train`'s report: labelled spans per entity label,
    labelled sentences per stance, targets with a stance (and how many have too few to be suggested for), and
    the unlabelled sentences it was given."""
    spans = Counter(s["label"] for e in examples for s in e.entities)
    stances = Counter(e.stance for e in examples if e.stance is not None)
    targets = Counter(e.target for e in examples if e.stance is not None)
    return {
        "spans_per_label": {label: spans[label] for label in entity_labels},
        "sentences_per_stance": dict(sorted(stances.items())),
        "stance_targets": len(targets),
        "stance_targets_too_few": sum(1 for n in targets.values() if n < SETTINGS["min_target_stances"]),
        "unlabelled_sentences": len(unlabelled),
    }


def explain(manifest: dict) -> list[str]:
    """The lines `builder train` prints first: what the model learned from, and where to expect its suggestions to
    be weak (classes with fewer than WEAK_EXAMPLES labelled examples, targets too rarely labelled, text unlike
    the labelled text), so a researcher knows what to label next."""
    t = manifest["training"]
    per_label = t.get("spans_per_label", {})
    per_stance = t.get("sentences_per_stance", {})
    lines = [
        f"learned from: {t['sentences']} labelled sentences in {t['articles']} articles, "
        f"{t.get('unlabelled_sentences', 0)} unlabelled sentences",
        "  spans: " + (", ".join(f"{label} {n}" for label, n in per_label.items()) or "none"),
        "  stance: "
        + (", ".join(f"{label} {n}" for label, n in per_stance.items()) or "none")
        + (f" over {t['stance_targets']} targets" if t.get("stance_targets", 0) > 1 else ""),
    ]
    weak = [f"{label} spans ({n})" for label, n in per_label.items() if n < WEAK_EXAMPLES]
    weak += [f"stance {label} ({n})" for label, n in per_stance.items() if n < WEAK_EXAMPLES]
    if weak:
        lines.append(f"  weak: fewer than {WEAK_EXAMPLES} labelled examples: {', '.join(weak)}; label more of them")
    few = t.get("stance_targets_too_few", 0)
    if few:
        lines.append(
            f"  weak: {few} targets have fewer than {manifest['settings'].get('min_target_stances')} labelled stances: "
            "no stance is suggested for them, nor for any target never labelled"
        )
    lines.append(
        "  weak: text unlike the labelled text (another genre or source): on GUM genres never trained on, proposals "
        "were right less often than promised on some (bench/bench_cross_genre.py)"
    )
    return lines


def unlabelled_texts(path: Path, labelled: set[str]) -> tuple[str, ...]:
    """The sentences of a sentences file (`builder split`'s output) that are not labelled (`labelled`: record
    ids) nor set aside, in file order: text the model may learn words from."""
    from builder.jsonio import read_jsonl

    texts = []
    for number, sentence in enumerate(read_jsonl(path), 1):
        text = sentence.get("text")
        if not isinstance(text, str):
            raise InputError(f"{path}:{number}: field 'text': expected a sentence's text")
        if sentence.get("id") not in labelled and not sentence.get("set_aside"):
            texts.append(text)
    return tuple(texts)


def train_model(
    project,
    snapshot: Path | None = None,
    output: Path | None = None,
    seed: int = 0,
    settings: dict | None = None,
    unlabelled: Path | None = None,
) -> TrainResult:
    """Train on the validated records of `snapshot` (default: the project's) and write the model folder
    `output` (default: `default_model_dir(project)`) atomically: a staging folder renamed into place.
    An existing `output` is replaced only when it is empty or an earlier `builder train` output."""
    from builder.jsonio import STATE_DIR, refuse_link, staged_folder, state_dir
    from builder.outputs import check_output_folder, write_marker
    from builder.records.from_snapshot import load_records

    snapshot = Path(snapshot or project.snapshot_path)
    given = Path(output or default_model_dir(project))
    if output is None:  # builder's own folder in .builder/: never through a link out of the project
        refuse_link(given.parent)
        refuse_link(given)
    output = check_output_folder(given, project)
    _check_is_model_folder(output, given)
    if not snapshot.is_file():
        raise InputError(f"{snapshot}: no such snapshot; run `builder pull` first, or pass --snapshot")
    records, report = load_records(project, snapshot)
    left_out = len(report.errors())
    examples = examples_from_records(records)
    others = unlabelled_texts(Path(unlabelled), {e.id for e in examples}) if unlabelled else ()
    if output.parent == (project.root / STATE_DIR).resolve():
        state_dir(project.root)  # the default folder is inside .builder/: made private (0700) and git-ignored

    def recheck() -> None:
        check_output_folder(given, project)
        _check_is_model_folder(output, given)

    with staged_folder(given, output, recheck) as staging:
        result = fit_model(
            examples,
            staging,
            entity_labels=project.entity_values,
            target=project.target,
            scheme_hash=project.scheme_hash(),
            settings=settings,
            seed=seed,
            unlabelled=others,
        )
        write_marker(staging, COMMAND)
    result.folder = output
    result.left_out = left_out
    return result


def _check_is_model_folder(output: Path, given: Path) -> None:
    """A builder output folder of another command (a dataset) is not replaced by a model."""
    from builder.outputs import read_marker

    if output.is_dir() and any(output.iterdir()):
        marker = read_marker(output)
        if marker is not None and marker.get("command") != COMMAND:
            raise BuilderError(
                f"refusing to write into {output}: it holds the output of `{marker.get('command')}`, not a model; "
                "pass -o a new or empty folder, or an earlier `builder train` output"
            )

"""The Dawid-Skene EM (builder.records.reliability) on published data with known answers, and on
simulated annotators whose accuracy we set."""

from __future__ import annotations

import numpy as np
import pytest

from builder.records.reliability import dawid_skene, most_likely

# Dawid & Skene (1979), "Maximum Likelihood Estimation of Observer Error-Rates Using the EM Algorithm",
# Applied Statistics 28(1), 20-28, Table 1: 45 patients, 5 anaesthetists, 4 classes; observer 1 rated
# every patient three times. One "|"-separated group per patient: observer 1's three ratings, then
# observers 2 to 5.
PATIENTS = (
    "111 1 1 1 1|333 4 3 3 4|112 2 1 2 2|222 3 1 2 1|222 3 2 2 2|222 3 3 2 2|122 2 1 1 1|333 3 4 3 3|"
    "222 2 2 2 3|232 2 2 2 3|444 4 4 4 4|222 3 3 4 3|111 1 1 1 1|222 3 2 1 2|121 1 1 1 1|111 2 1 1 1|"
    "111 1 1 1 1|111 1 1 1 1|222 2 2 2 1|222 1 3 2 2|222 2 2 2 2|222 2 2 2 1|222 3 2 2 2|221 2 2 2 2|"
    "111 1 1 1 1|111 1 1 1 1|232 2 2 2 2|111 1 1 1 1|111 1 1 1 1|112 1 1 2 1|111 1 1 1 1|333 3 2 3 3|"
    "111 1 1 1 1|222 2 2 2 2|222 3 2 3 2|433 4 3 4 3|221 2 2 3 2|232 3 2 3 3|333 3 4 3 2|111 1 1 1 1|"
    "111 1 1 1 1|121 2 1 1 1|232 2 2 2 2|121 1 1 1 1|222 2 2 2 2"
)
# The paper's estimates (its Tables 2 and 4, to two decimals): the class of each patient, the few
# patients whose class is not certain, the class marginals and observer 1's error rates.
PUBLISHED_CLASSES = "142222132243121111222222112111131224233111212"
PUBLISHED_UNCERTAIN = {7: (0, 0.98), 35: (1, 0.95), 38: (2, 0.98)}  # patient: (class index, probability)
PUBLISHED_MARGINALS = [0.40, 0.42, 0.11, 0.07]
PUBLISHED_OBSERVER_1 = [
    [0.89, 0.11, 0.00, 0.00],
    [0.07, 0.88, 0.05, 0.00],
    [0.00, 0.34, 0.66, 0.00],
    [0.00, 0.00, 0.56, 0.44],
]


def patient_answers():
    tasks, workers, labels = [], [], []
    for patient, group in enumerate(PATIENTS.split("|")):
        first, *others = group.split()
        for observer, ratings in enumerate([first, *others]):
            for rating in ratings:
                tasks.append(patient)
                workers.append(observer)
                labels.append(int(rating) - 1)
    return np.array(tasks), np.array(workers), np.array(labels)


def test_dawid_skene_1979_patient_data_gives_the_published_estimates():
    """Without pseudo-counts (the paper's maximum likelihood), the EM reproduces the published figures to 0.01."""
    tasks, workers, labels = patient_answers()
    assert len(tasks) == 45 * 7
    fit = dawid_skene(tasks, workers, labels, 45, 5, 4, smoothing=0.0, diagonal=0.0, tol=1e-8, max_iter=1000)
    assert fit.converged
    best, tie = most_likely(fit.posteriors)
    assert "".join(str(b + 1) for b in best) == PUBLISHED_CLASSES
    assert not tie.any()
    for patient, (label, probability) in PUBLISHED_UNCERTAIN.items():
        assert fit.posteriors[patient - 1, label] == pytest.approx(probability, abs=0.01)
    certain = [p for p in range(45) if p + 1 not in PUBLISHED_UNCERTAIN]
    assert fit.posteriors[certain].max(axis=1).min() > 0.99
    assert fit.priors == pytest.approx(PUBLISHED_MARGINALS, abs=0.01)
    assert fit.confusion[0] == pytest.approx(np.array(PUBLISHED_OBSERVER_1), abs=0.01)
    # where the EM departs from the majority vote: patient 2 (majority 3, estimated 4) and 12 (a 3-3 tie)
    assert best[1] == 3 and best[11] == 2


def test_default_smoothing_keeps_the_published_classes():
    tasks, workers, labels = patient_answers()
    fit = dawid_skene(tasks, workers, labels, 45, 5, 4)
    best, _ = most_likely(fit.posteriors)
    assert "".join(str(b + 1) for b in best) == PUBLISHED_CLASSES
    assert fit.confusion.min() > 0  # smoothed: no rate is exactly 0 ...
    assert fit.confusion.max() < 1  # ... or 1
    np.testing.assert_allclose(fit.posteriors.sum(axis=1), 1.0)
    np.testing.assert_allclose(fit.confusion.sum(axis=2), 1.0)


def simulate(accuracies, n_tasks=400, n_labels=3, seed=7):
    """Every worker answers every task: right with their accuracy, else a uniformly random wrong label."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels, n_tasks)
    tasks, workers, labels = [], [], []
    for w, accuracy in enumerate(accuracies):
        right = rng.random(n_tasks) < accuracy
        wrong = (truth + rng.integers(1, n_labels, n_tasks)) % n_labels
        tasks.append(np.arange(n_tasks))
        workers.append(np.full(n_tasks, w))
        labels.append(np.where(right, truth, wrong))
    return truth, np.concatenate(tasks), np.concatenate(workers), np.concatenate(labels)


def test_a_spammer_answering_at_random_gets_low_reliability():
    accuracies = [0.95, 0.9, 0.7, 1 / 3]  # the last answers uniformly at random among 3 labels
    truth, tasks, workers, labels = simulate(accuracies)
    fit = dawid_skene(tasks, workers, labels, len(truth), len(accuracies), 3)
    assert list(np.argsort(-fit.reliability)) == [0, 1, 2, 3]
    assert fit.reliability[3] < 0.45
    for w, accuracy in enumerate(accuracies):
        assert fit.reliability[w] == pytest.approx(accuracy, abs=0.07)
    best, _ = most_likely(fit.posteriors)
    majority = np.array([np.bincount(labels[tasks == t], minlength=3).argmax() for t in range(len(truth))])
    assert (best == truth).mean() >= (majority == truth).mean()


def test_gold_answers_anchor_the_estimates():
    """Two workers who always disagree: without gold, who is right is a coin toss; with a few gold
    answers, the one who matches them is trusted and wins every other task."""
    rng = np.random.default_rng(3)
    n = 60
    truth = rng.integers(0, 2, n)
    tasks = np.concatenate([np.arange(n), np.arange(n)])
    workers = np.concatenate([np.zeros(n, int), np.ones(n, int)])
    labels = np.concatenate([truth, 1 - truth])  # worker 0 always right, worker 1 always wrong
    free = dawid_skene(tasks, workers, labels, n, 2, 2)
    assert free.reliability[0] == pytest.approx(free.reliability[1], abs=0.05)  # symmetric: no way to tell
    gold = {t: int(truth[t]) for t in range(5)}
    anchored = dawid_skene(tasks, workers, labels, n, 2, 2, known=gold)
    assert anchored.reliability[0] > 0.9 > 0.1 > anchored.reliability[1]
    best, _ = most_likely(anchored.posteriors)
    assert (best == truth).all()
    for t, label in gold.items():  # clamped
        assert anchored.posteriors[t, label] == 1.0
    # a gold answer contradicting the workers moves the estimates the other way
    flipped = dawid_skene(tasks, workers, labels, n, 2, 2, known={t: 1 - int(truth[t]) for t in range(5)})
    assert flipped.reliability[1] > flipped.reliability[0]
    # the same anchors given as a pair of arrays
    as_arrays = dawid_skene(
        tasks, workers, labels, n, 2, 2, known=(np.arange(5), np.array([truth[t] for t in range(5)]))
    )
    assert np.array_equal(as_arrays.posteriors, anchored.posteriors)


def test_ties_and_a_single_annotator():
    # one worker: their answers are the labels, and they are deemed reliable
    fit = dawid_skene([0, 1, 2], [0, 0, 0], [2, 0, 1], 3, 1, 3)
    best, tie = most_likely(fit.posteriors)
    assert best.tolist() == [2, 0, 1] and not tie.any()
    assert fit.reliability[0] > 0.9
    # two interchangeable workers splitting one task: a tie, resolved by nothing
    fit = dawid_skene([0, 0], [0, 1], [0, 1], 1, 2, 2)
    _, tie = most_likely(fit.posteriors)
    assert tie.tolist() == [True]
    np.testing.assert_allclose(fit.posteriors, [[0.5, 0.5]])
    # a task nobody answered gets the priors; a worker with no answers gets 1/n_labels
    fit = dawid_skene([0], [0], [1], 2, 2, 2)
    np.testing.assert_allclose(fit.posteriors[1], fit.priors, atol=1e-4)
    assert fit.reliability[1] == 0.5
    # no answers at all
    fit = dawid_skene([], [], [], 0, 0, 3)
    assert fit.posteriors.shape == (0, 3) and fit.reliability.shape == (0,)


def test_deterministic_and_input_checked():
    truth, tasks, workers, labels = simulate([0.9, 0.8, 0.6], n_tasks=300)
    a = dawid_skene(tasks, workers, labels, len(truth), 3, 3, known={0: int(truth[0])})
    b = dawid_skene(tasks.copy(), workers.copy(), labels.copy(), len(truth), 3, 3, known={0: int(truth[0])})
    assert a.iterations == b.iterations
    for field in ("posteriors", "confusion", "priors", "reliability"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        dawid_skene([0], [0], [3], 1, 1, 3)
    with pytest.raises(ValueError, match="same length"):
        dawid_skene([0, 0], [0], [1], 1, 1, 3)
    with pytest.raises(ValueError, match="known labels"):
        dawid_skene([0], [0], [1], 1, 1, 3, known={0: 5})


def test_a_million_tasks_in_seconds():
    """3,000,000 answers over 1,000,000 tasks (the benchmark's size): a few seconds, and the arrays it
    allocates stay far under 1 GB (tracemalloc counts numpy's buffers)."""
    import time
    import tracemalloc

    rng = np.random.default_rng(0)
    n, n_workers = 1_000_000, 200
    truth = rng.integers(0, 3, n)
    tasks = np.repeat(np.arange(n), 3)
    workers = rng.integers(0, n_workers, 3 * n)
    accuracy = rng.uniform(0.5, 0.98, n_workers)
    labels = np.where(rng.random(3 * n) < accuracy[workers], truth[tasks], rng.integers(0, 3, 3 * n))
    tracemalloc.start()
    start = time.perf_counter()
    fit = dawid_skene(tasks, workers, labels, n, n_workers, 3)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 30  # about 4 s on the 2-core machine; generous for a loaded CI box
    assert peak < 500 * 2**20
    assert (fit.posteriors.argmax(axis=1) == truth).mean() > 0.9
    assert np.corrcoef(accuracy, fit.reliability)[0, 1] > 0.99

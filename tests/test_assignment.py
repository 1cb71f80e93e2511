"""The blind project's assignment rule (builder/labelstudio/assignment.py): property tests of a pure function."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ConfigError
from builder.labelstudio.assignment import assign

ids = st.lists(st.text("abcdef0123456789", min_size=1, max_size=6), max_size=80)
people = st.lists(st.text("xyz", min_size=1, max_size=4), min_size=1, max_size=7, unique=True)


@settings(max_examples=200, deadline=None)
@given(ids, people, st.integers(1, 4), st.text(max_size=4))
def test_each_sentence_reaches_exactly_per_sentence_distinct_annotators_in_balance(sentences, who, per, seed):
    if len(who) < per:
        with pytest.raises(ConfigError):
            assign(sentences, dict.fromkeys(who, 0), per, seed)
        return
    result = assign(sentences, dict.fromkeys(who, 0), per, seed)
    assert set(result) == set(sentences)
    assert all(len(set(chosen)) == per and set(chosen) <= set(who) for chosen in result.values())
    counts = Counter(person for chosen in result.values() for person in chosen)
    loads = [counts[person] for person in who]
    assert max(loads) - min(loads) <= 1  # balanced
    assert assign(sentences, dict.fromkeys(who, 0), per, seed) == result  # deterministic


@settings(max_examples=150, deadline=None)
@given(ids, ids, people, st.integers(1, 3))
def test_pushing_more_later_levels_counts_and_keeps_what_was_assigned(first, later, who, per):
    if len(who) < per:
        return
    before = assign(first, dict.fromkeys(who, 0), per)
    loads = Counter({person: 0 for person in who})
    loads.update(person for chosen in before.values() for person in chosen)
    newcomer = "newcomer"
    loads[newcomer] = 0
    fresh = [s for s in later if s not in before]
    after = assign(fresh, loads, per)
    assert set(after) == set(fresh)  # only the new sentences: the earlier ones stay where they are
    totals = Counter(loads)
    totals.update(person for chosen in after.values() for person in chosen)
    given_now = {person for chosen in after.values() for person in chosen}
    if given_now and all(loads[person] > 0 for person in who):
        assert newcomer in given_now  # fewest sentences: given new ones first
    # counts never drift further apart than they were, nor than one
    spread_before = max(loads.values()) - min(loads.values())
    assert max(totals.values()) - min(totals.values()) <= max(spread_before, 1)


def test_order_of_annotators_does_not_matter():
    a = assign(["s1", "s2", "s3"], {"ann": 0, "bob": 0, "cy": 0}, 2, "k")
    b = assign(["s1", "s2", "s3"], {"cy": 0, "bob": 0, "ann": 0}, 2, "k")
    assert a == b

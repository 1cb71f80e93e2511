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


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdef0123456789", min_size=1, max_size=6),
        st.sets(st.text("xyzw", min_size=1, max_size=3)),
        max_size=40,
    ),
    people,
    st.integers(1, 4),
    st.text(max_size=4),
)
def test_hand_over_tops_sentences_up_never_to_a_holder_and_counts_the_short(holders, who, per, seed):
    """`annotators remove` and `annotators blind`: each sentence topped up to `per` distinct annotators with the
    annotators who may be given work and lack it; the rest counted as short; deterministic."""
    from builder.labelstudio.assignment import hand_over

    loads = dict.fromkeys(who, 0)
    plan, short = hand_over(holders, loads, per, seed)
    assert (plan, short) == hand_over(holders, dict(reversed(list(loads.items()))), per, seed)
    expected_short = 0
    for sentence_id, has in holders.items():
        given = plan.get(sentence_id, ())
        assert not set(given) & has and set(given) <= set(who) and len(set(given)) == len(given)
        eligible = set(who) - has
        wanted = max(0, per - len(has))
        assert len(given) == min(wanted, len(eligible))  # exact overlap while enough annotators remain
        expected_short += len(given) < wanted
    assert short == expected_short
    counts = Counter(person for given in plan.values() for person in given)
    if all(not has & set(who) for has in holders.values()) and all(len(has) < per for has in holders.values()):
        spread = [counts[person] for person in who]
        assert max(spread) - min(spread) <= max(1, per)  # fewest first: no one far ahead


def test_hand_over_gives_fresh_sentences_as_assign_does():
    from builder.labelstudio.assignment import hand_over

    ids = [f"s{i}" for i in range(30)]
    loads = {"ann": 3, "bob": 0, "cy": 1, "dee": 0}
    plan, short = hand_over({i: set() for i in ids}, loads, 2, "seed")
    assert short == 0 and plan == assign(ids, loads, 2, "seed")

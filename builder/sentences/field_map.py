"""Which input key or column each article field is read from (`[input]`, `split --id-field ...`), and the one
line for a file none of whose records has a required field (the corpus names it otherwise)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from builder.errors import InputError
from builder.model import ARTICLE_OPTIONAL

REQUIRED_FIELDS = ("id", "text")
INPUT_FIELDS = REQUIRED_FIELDS + ARTICLE_OPTIONAL  # what `[input] <field>_field` and `split --<field>-field` map


def input_field_map(*given: dict[str, str]) -> dict[str, str]:
    """Each article field -> the input key or column it is read from: its own name unless `given` maps it.

    Later mappings override earlier ones (the project's `[input]` table, then `split`'s flags); a key
    given for two fields is an InputError.
    """
    fields = {role: role for role in INPUT_FIELDS}
    for mapping in given:
        fields.update({role: key for role, key in mapping.items() if key})
    for role, key in fields.items():
        other = next((r for r, k in fields.items() if k == key and r != role), None)
        if other is not None:
            raise InputError(f"input field '{key}' is mapped to both {other} and {role}: map each to its own field")
    return fields


def unmapped_detail(
    fields: dict[str, str], roles: list[str], present: Iterable[str], kind: str = "field", scope: str = ""
) -> str:
    """One line for input whose records all lack required `roles`: what they do have, and how to map them.

    `present`: the keys (columns) the records have; `scope`: where, e.g. " in any record".
    """
    named = " or ".join(f"'{fields[role]}'" for role in roles)
    have = ", ".join(present) or "no fields"
    flags = " and ".join(f"--{role}-field" for role in roles)
    settings = " and ".join(f"[input] {role}_field" for role in roles)
    them = "it" if len(roles) == 1 else "them"
    return f"no {kind} {named}{scope}; the records have {have}; map {them} with {flags} or {settings}"


class FieldTally(NamedTuple):
    """What the JSON objects of one .jsonl file (or shard) held: how many, how many lacked each required field
    (`lacking`: (field, count) pairs) and the keys seen, in order. Shards of a file add up to the file's."""

    file: str
    records: int
    lacking: tuple[tuple[str, int], ...]
    present: tuple[str, ...]


def added_tallies(total: FieldTally | None, part: FieldTally) -> FieldTally:
    """Two tallies of one file's shards as one."""
    if total is None:
        return part
    lacking = dict(total.lacking)
    for role, count in part.lacking:
        lacking[role] = lacking.get(role, 0) + count
    present = tuple(dict.fromkeys(total.present + part.present))
    return FieldTally(total.file, total.records + part.records, tuple(lacking.items()), present)

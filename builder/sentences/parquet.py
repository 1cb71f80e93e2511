"""Articles from Parquet files: `id` and `text` columns (plus the optional fields a JSON Lines article may have;
each read from the column the reader's field map names).

Read in record batches with pyarrow (never the whole file at once); a file with many row groups is
cut into shards of row groups that workers read on their own. The columns are checked once, from
the schema: a missing `id`/`text` column (named with the columns there are, and how to map one) or
a column of the wrong type rejects the file in one line naming the file and the column. Rows are
then checked like JSON Lines objects, and named `FILE:row N` (counted from 1, over the whole file).
"""

from __future__ import annotations

from collections.abc import Iterator

from builder.sentences.field_map import unmapped_detail

# Called by builder.sentences.articles, which it must not import back (no cycles):
# `file` is its InputFile, `reader` its FileReader.

BATCH_ROWS = 1024
SHARD_ROW_GROUPS = 1  # row groups per shard


def parquet_shards(file) -> list:
    """`file` cut into shards of SHARD_ROW_GROUPS row groups; the whole file when it cannot be opened here."""
    import pyarrow.parquet as pq

    try:
        groups = pq.ParquetFile(file.path).metadata.num_row_groups
    except Exception:  # the reader reports why, in one line
        return [file]
    if groups <= SHARD_ROW_GROUPS:
        return [file]
    return [
        file._replace(part=(first, min(first + SHARD_ROW_GROUPS, groups)))
        for first in range(0, groups, SHARD_ROW_GROUPS)
    ]


def _column_problem(name: str, kind, role: str | None = None) -> str | None:
    """Why column `name` of Arrow type `kind`, read as article field `role` (None: metadata), cannot be read."""
    import pyarrow.types as pt

    if pt.is_dictionary(kind):
        kind = kind.value_type
    strings = pt.is_string(kind) or pt.is_large_string(kind)
    if role == "id":
        if strings or pt.is_integer(kind):
            return None
        return f"column '{name}' must hold strings or integers, not {kind}"
    if role is not None:
        if strings or (role != "text" and pt.is_null(kind)):
            return None
        return f"column '{name}' must hold strings, not {kind}"
    if not _json_friendly(kind):
        return f"column '{name}' of type {kind} cannot be kept as article metadata (JSON)"
    return None


def _json_friendly(kind) -> bool:
    import pyarrow.types as pt

    if pt.is_dictionary(kind):
        return _json_friendly(kind.value_type)
    if pt.is_list(kind) or pt.is_large_list(kind) or pt.is_fixed_size_list(kind):
        return _json_friendly(kind.value_type)
    if pt.is_struct(kind):
        return all(_json_friendly(kind.field(i).type) for i in range(kind.num_fields))
    return any(
        check(kind)
        for check in (
            pt.is_null,
            pt.is_boolean,
            pt.is_integer,
            pt.is_floating,
            pt.is_string,
            pt.is_large_string,
            pt.is_date,
            pt.is_timestamp,
        )
    )


def read_parquet(reader, file) -> Iterator[tuple[dict, str]]:
    """(article record, where) for each good row of `file` (or its shard); problems go to `reader.report`.

    Problems that concern the whole file (unreadable, builder's own output, bad columns) are
    reported by its first shard only, so a file cut into shards is reported once.
    """
    import pyarrow.parquet as pq

    path = file.path
    first, stop = file.part or (0, None)
    reports_file = first == 0
    try:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        if reports_file:
            reader.report.drop("bad parquet", str(path), f"not a readable Parquet file ({_first_line(exc)})")
        return
    names = schema.names
    if "article_id" in names and "sentence_index" in names:  # a dataset `builder build` wrote
        kind = "dataset records"
        if reports_file:
            if file.named:
                reader.report.drop("builder output", str(path), f"builder output ({kind}), not articles: not read")
            else:
                detail = f"builder output ({kind}), not articles"
                reader.report.drop("builder output", str(path), detail, error=False, notice="skipped")
        return
    unmapped = [role for role in ("id", "text") if reader.fields[role] not in names]
    if unmapped:
        if reports_file:
            rows = handle.metadata.num_rows
            detail = unmapped_detail(reader.fields, unmapped, names, kind="column").replace(
                "the records have", "the columns are"
            )
            field = reader.fields[unmapped[0]]
            reader.report.drop("missing field", str(path), detail, field=field, records=rows, unmapped=True)
        return
    for field in schema:
        problem = _column_problem(field.name, field.type, reader.roles.get(field.name))
        if problem:
            if reports_file:
                reader.report.drop("bad parquet", str(path), problem, field=field.name)
            return
    metadata = handle.metadata
    stop = metadata.num_row_groups if stop is None else stop
    row = sum(metadata.row_group(group).num_rows for group in range(first)) if first else 0
    groups = list(range(first, stop))
    if not groups:
        return
    try:
        for batch in handle.iter_batches(batch_size=BATCH_ROWS, row_groups=groups):
            for obj in batch.to_pylist():
                row += 1
                where = f"{path}:row {row}"
                record = reader.from_object(obj, where, {"file": str(path), "row": row})
                if record is not None:
                    yield record, where
    except Exception as exc:  # a damaged page: what was read stays, the rest of the shard is reported
        reader.report.drop("bad parquet", f"{path}:row {row + 1}", f"cannot read the rest ({_first_line(exc)})")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

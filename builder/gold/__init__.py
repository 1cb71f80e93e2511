"""Gold questions: sentences whose stance and entities are known, mixed into the tasks to score annotators.

Everything about them lives here, between the sentences (below: their ids, spans and files) and the
records (above: validation, aggregation and the quality report read them):

- `answers`: reading and checking the gold file (`[quality] gold`): `read_gold`, `project_gold`;
- `mixing`: mixing them into the sentences `builder push` imports, at `[quality] gold_rate`, so that
  annotators cannot tell them apart (`gold_questions`, `mix_gold`, `check_pushed`).

Gold tasks never reach the dataset: validation and the build count them apart (`builder.records.aggregate`),
the Dawid-Skene estimate is anchored on their answers, and `builder quality` (`builder.records.quality`)
scores annotators on them.
"""

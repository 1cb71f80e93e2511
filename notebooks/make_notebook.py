"""Writes notebooks/explore.ipynb (run it after editing the cells here; outputs are never committed).

The code cells are written as `ruff format` would write them, and the cell ids are fixed, so that running this
script again gives the committed notebook byte for byte (tests/test_repository.py checks it).
"""

from pathlib import Path

import nbformat as nbf

NOTEBOOK = Path(__file__).resolve().parent / "explore.ipynb"

CELLS = [
    (
        "markdown",
        "da45eff5",
        "# Exploring the dataset\n\nLoads the built dataset with `datasets`, plots label distributions per split, "
        "shows the agreement table, the annotators' quality table and sentences with their entities highlighted.\n\n"
        "Set `BUILDER_DATASET` to a built folder or Hub id; by default the repository's `dist/<name>` is used "
        "(built from `annotations/` if missing). The annotators' table reads the snapshot that dataset was built "
        "from (`builder build` and `builder run` record it in the folder).\n\n"
        "Its packages come with an extra: `pip install -e '.[notebook]'`, then `jupyter lab notebooks/explore.ipynb`.",
    ),
    (
        "code",
        "96cecc11",
        """\
%matplotlib inline
import os
from pathlib import Path

import datasets
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from builder.dataset.build import dataset_snapshot
from builder.project import load_project

ROOT = Path.cwd() if (Path.cwd() / "builder.toml").exists() else Path.cwd().parent
project = load_project(ROOT / "builder.toml")
path = os.environ.get("BUILDER_DATASET") or str(ROOT / "dist" / project.name)
if not Path(path).exists() and "/" not in path.strip("/").split("dist/")[-1]:
    from builder.dataset.build import build_dataset

    build_dataset(project, project.annotations_dir / "snapshot.jsonl", Path(path))
ds = datasets.load_dataset(path)
built_from = dataset_snapshot(project, path)  # the snapshot this dataset came from: the annotators' table reads it
if not built_from.current:
    print(f"warning: {built_from.path} changed since this dataset was built; run `builder build` again")
ds""",
    ),
    ("markdown", "b99683ac", "## Label distribution per split"),
    (
        "code",
        "22565d62",
        """\
stance_names = ds["train"].features["stance"].names
entity_names = ds["train"].features["entities"].feature["label"].names
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
width = 0.8 / len(ds)
for i, (split, part) in enumerate(ds.items()):
    offset = (i - (len(ds) - 1) / 2) * width  # the bars of a group centred on its tick
    stances = [sum(1 for s in part["stance"] if s == k) for k in range(len(stance_names))] + [
        sum(1 for s in part["stance"] if s == -1)
    ]
    entities = [sum(1 for row in part["entities"] for e in row if e["label"] == k) for k in range(len(entity_names))]
    axes[0].bar([x + offset for x in range(len(stances))], stances, width, label=split)
    axes[1].bar([x + offset for x in range(len(entities))], entities, width, label=split)
axes[0].set_xticks(range(len(stance_names) + 1), stance_names + ["unresolved"])
axes[0].set_title("stance")
axes[1].set_xticks(range(len(entity_names)), entity_names)
axes[1].set_title("entity spans")
axes[0].legend()
plt.tight_layout()
plt.show()""",
    ),
    ("markdown", "edcbb9bc", "## Agreement\n\nThe same figures as the card and `builder stats`."),
    (
        "code",
        "ce2a6bad",
        """\
from builder.records.agreement import span_agreement, stance_agreement

records = []
for part in ds.values():
    for row in part:
        records.append(
            {
                "annotations": [
                    {
                        "stance": stance_names[a["stance"]] if a["stance"] >= 0 else None,
                        "entities": [{**e, "label": entity_names[e["label"]]} for e in a["entities"]],
                    }
                    for a in row["annotations"]
                ]
            }
        )
s, e = stance_agreement(records, stance_names), span_agreement(records, entity_names)
rows = [
    ("Krippendorff's alpha (stance)", s["krippendorff_alpha"], s["units"]),
    ("Fleiss' kappa (stance)", s["fleiss_kappa"], s["fleiss_units"]),
    ("span F1 (entities)", e["f1"], e["pairs"]),
] + [(f"span F1 {k}", v, e["spans"][k]) for k, v in e["per_label"].items()]
display(
    HTML(
        "<table><tr><th>measure</th><th>value</th><th>n</th></tr>"
        + "".join(f"<tr><td>{m}</td><td>{v}</td><td>{n}</td></tr>" for m, v, n in rows)
        + "</table>"
    )
)""",
    ),
    (
        "markdown",
        "3f1c9d2e",
        "## Annotators\n\nThe table `builder quality` prints, from the snapshot the dataset was built from: per "
        "annotator (pseudonym), "
        "answers, skips, median lead time, gold accuracy with its 95% interval, span F1 on gold questions, Cohen's "
        "kappa with the others, agreement with the aggregated stance and the share of pre-annotated spans kept "
        "unchanged. `flagged`: gold accuracy below `[quality] min_gold_accuracy`.",
    ),
    (
        "code",
        "7b20e4a1",
        """\
from builder.records.quality import annotator_report, quality_summary

quality = annotator_report(built_from.path, project)
print(quality_summary(quality))
quality.set_index("annotator").round(3)""",
    ),
    ("markdown", "af895087", "## Sentences with their entities"),
    (
        "code",
        "5926f32d",
        """\
import html

COLORS = {label.value: label.color for label in project.entity_labels}


def highlight(row):
    text, out, at = row["text"], [], 0
    for e in sorted(row["entities"], key=lambda e: e["start"]):
        if e["start"] < at:
            continue  # overlapping span: shown in the table, not inline
        label = entity_names[e["label"]]
        span = html.escape(text[e["start"] : e["end"]])
        out += [
            html.escape(text[at : e["start"]]),
            f"<mark style='background:{COLORS.get(label, '#ddd')}55'>{span} <sub>{label}</sub></mark>",
        ]
        at = e["end"]
    stance = stance_names[row["stance"]] if row["stance"] >= 0 else "unresolved"
    return f"<p><b>[{stance}]</b> " + "".join(out) + html.escape(text[at:]) + "</p>"


split = "validation" if "validation" in ds else next(iter(ds))
display(HTML("".join(highlight(row) for row in ds[split].select(range(min(8, len(ds[split])))))))""",
    ),
]


def notebook() -> nbf.NotebookNode:
    """The explore notebook, without outputs."""
    new = {"markdown": nbf.v4.new_markdown_cell, "code": nbf.v4.new_code_cell}
    return nbf.v4.new_notebook(
        cells=[new[kind](source, id=cell_id) for kind, cell_id, source in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def text() -> str:
    """The notebook file's text, as committed (what `nbformat.write` writes)."""
    return nbf.writes(notebook()) + "\n"


if __name__ == "__main__":
    NOTEBOOK.write_text(text(), encoding="utf-8")

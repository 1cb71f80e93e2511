"""Writes notebooks/explore.ipynb (run it after editing the cells here; outputs are never committed)."""

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# Exploring the dataset\n\nLoads the built dataset with `datasets`, plots label distributions per split, "
        "shows the agreement table and sentences with their entities highlighted.\n\n"
        "Set `BUILDER_DATASET` to a built folder or Hub id; by default the repository's `dist/<name>` is used "
        "(built from `annotations/` if missing)."
    ),
    nbf.v4.new_code_cell(
        "%matplotlib inline\nimport os\nfrom pathlib import Path\n\nimport datasets\nimport matplotlib.pyplot as plt\n"
        "from IPython.display import HTML, display\n\nfrom builder.project import load_project\n\n"
        "ROOT = Path.cwd() if (Path.cwd() / 'builder.toml').exists() else Path.cwd().parent\n"
        "project = load_project(ROOT / 'builder.toml')\n"
        "path = os.environ.get('BUILDER_DATASET') or str(ROOT / 'dist' / project.name)\n"
        "if not Path(path).exists() and '/' not in path.strip('/').split('dist/')[-1]:\n"
        "    from builder.dataset.build import build_dataset\n"
        "    build_dataset(project, project.annotations_dir / 'snapshot.jsonl', Path(path))\n"
        "ds = datasets.load_dataset(path)\nds"
    ),
    nbf.v4.new_markdown_cell("## Label distribution per split"),
    nbf.v4.new_code_cell(
        "stance_names = ds['train'].features['stance'].names\n"
        "entity_names = ds['train'].features['entities'].feature['label'].names\n"
        "fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))\n"
        "width = 0.8 / len(ds)\n"
        "for i, (split, part) in enumerate(ds.items()):\n"
        "    stances = [sum(1 for s in part['stance'] if s == k) for k in range(len(stance_names))] + [sum(1 for s in part['stance'] if s == -1)]\n"
        "    entities = [sum(1 for row in part['entities'] for e in row if e['label'] == k) for k in range(len(entity_names))]\n"
        "    axes[0].bar([x + i * width for x in range(len(stances))], stances, width, label=split)\n"
        "    axes[1].bar([x + i * width for x in range(len(entities))], entities, width, label=split)\n"
        "axes[0].set_xticks(range(len(stance_names) + 1), stance_names + ['unresolved']); axes[0].set_title('stance')\n"
        "axes[1].set_xticks(range(len(entity_names)), entity_names); axes[1].set_title('entity spans')\n"
        "axes[0].legend(); plt.tight_layout(); plt.show()"
    ),
    nbf.v4.new_markdown_cell("## Agreement\n\nThe same figures as the card and `builder stats`."),
    nbf.v4.new_code_cell(
        "from builder.records.agreement import span_agreement, stance_agreement\n\n"
        "records = []\nfor part in ds.values():\n"
        "    for row in part:\n"
        "        records.append({'annotations': [{'stance': stance_names[a['stance']] if a['stance'] >= 0 else None,\n"
        "                                         'entities': [{**e, 'label': entity_names[e['label']]} for e in a['entities']]}\n"
        "                                        for a in row['annotations']]})\n"
        "s, e = stance_agreement(records, stance_names), span_agreement(records, entity_names)\n"
        "rows = [(\"Krippendorff's alpha (stance)\", s['krippendorff_alpha'], s['units']), (\"Fleiss' kappa (stance)\", s['fleiss_kappa'], s['fleiss_units']),\n"
        "        ('span F1 (entities)', e['f1'], e['pairs'])] + [(f'span F1 {k}', v, e['spans'][k]) for k, v in e['per_label'].items()]\n"
        "display(HTML('<table><tr><th>measure</th><th>value</th><th>n</th></tr>' + ''.join(f'<tr><td>{m}</td><td>{v}</td><td>{n}</td></tr>' for m, v, n in rows) + '</table>'))"
    ),
    nbf.v4.new_markdown_cell("## Sentences with their entities"),
    nbf.v4.new_code_cell(
        "import html\nCOLORS = {label.value: label.color for label in project.entity_labels}\n\n"
        "def highlight(row):\n"
        "    text, out, at = row['text'], [], 0\n"
        "    for e in sorted(row['entities'], key=lambda e: e['start']):\n"
        "        if e['start'] < at:\n            continue  # overlapping span: shown in the table, not inline\n"
        "        label = entity_names[e['label']]\n"
        "        out += [html.escape(text[at:e['start']]), f\"<mark style='background:{COLORS.get(label, '#ddd')}55'>{html.escape(text[e['start']:e['end']])} <sub>{label}</sub></mark>\"]\n"
        "        at = e['end']\n"
        "    stance = stance_names[row['stance']] if row['stance'] >= 0 else 'unresolved'\n"
        "    return f\"<p><b>[{stance}]</b> \" + ''.join(out) + html.escape(text[at:]) + '</p>'\n\n"
        "split = 'validation' if 'validation' in ds else next(iter(ds))\n"
        "display(HTML(''.join(highlight(row) for row in ds[split].select(range(min(8, len(ds[split])))))))"
    ),
]
notebook = nbf.v4.new_notebook(
    cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
)
nbf.write(notebook, "notebooks/explore.ipynb")

"""The cross-genre bench's GUM reader (bench/gum_genres.py): text, sentences and nested mentions as
gum_news.jsonl has them, from a .conllu document (offline: a hand-made one)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONLLU = "\n".join(
    [
        "# newdoc id = GUM_voyage_tiny",
        "# meta::genre = voyage",
        "# meta::title = Santa Catarina",
        "# newpar",
        "# text = Santa Catarina",
        "1\tSanta\tSanta\tPROPN\tNNP\t_\t2\tcompound\t_\tEntity=(1-place-new-nnnnn-cf1-1,2-coref-Santa_Catarina_%28state%29",
        "2\tCatarina\tCatarina\tPROPN\tNNP\t_\t0\troot\t_\tEntity=1)",
        "",
        "# newpar",
        "# text = We saw Lord Kelvin's lab.",
        "1\tWe\twe\tPRON\tPRP\t_\t2\tnsubj\t_\tEntity=(2-person-new-sssss-cf2-1-sgl)",
        "2\tsaw\tsee\tVERB\tVBD\t_\t0\troot\t_\t_",
        "3\tLord\tLord\tPROPN\tNNP\t_\t4\tcompound\t_\tEntity=(3-place-new-sssss-cf3-3-sgl(4-person-new-sssss-cf4-2-sgl-Lord_Kelvin",
        "4\tKelvin\tKelvin\tPROPN\tNNP\t_\t6\tnmod:poss\t_\tEntity=4)|SpaceAfter=No",
        "5\t's\t's\tPART\tPOS\t_\t4\tcase\t_\t_",
        "6\tlab\tlab\tNOUN\tNN\t_\t2\tobj\t_\tEntity=3)|SpaceAfter=No",
        "7\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_",
        "",
    ]
)


def _gum_genres():
    spec = importlib.util.spec_from_file_location("gum_genres", ROOT / "bench" / "gum_genres.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_gum_document_reads_as_gum_news_jsonl_is_shaped():
    doc = _gum_genres().document(CONLLU)
    assert doc["doc_id"] == "GUM_voyage_tiny" and doc["genre"] == "voyage"
    assert doc["text"] == "Santa Catarina\nWe saw Lord Kelvin's lab."
    assert doc["sentences"] == [[0, 14], [15, 40]] and doc["paragraphs"] == [[0, 14], [15, 40]]
    assert doc["entities"] == [
        [0, 14, "place", "Santa Catarina"],
        [15, 17, "person", "We"],
        [22, 39, "place", "Lord Kelvin's lab"],
        [22, 33, "person", "Lord Kelvin"],
    ]
    meta = doc["entity_meta"]
    assert meta[0]["identity"] == "Santa_Catarina_(state)" and meta[0]["proper"]  # %28 %29 unescaped
    assert meta[1]["identity"] is None and not meta[1]["proper"]
    assert not meta[2]["proper"] and meta[3] == {**meta[3], "identity": "Lord_Kelvin", "proper": True}
    for start, end, _, surface in doc["entities"]:
        assert doc["text"][start:end] == surface

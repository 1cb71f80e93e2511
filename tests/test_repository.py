"""The repository's own consistency: test markers (the fast offline loop) and the generated notebook."""

from __future__ import annotations

import runpy

from .conftest import ROOT

# Test files whose tests start a Label Studio themselves (not through the `ls_server` fixture).
STARTS_ITS_OWN_SERVER = {"tests/test_server.py"}


def test_tests_needing_label_studio_or_chromium_are_marked(request):
    """`pytest -m "not labelstudio"` must start no Label Studio: every test that needs one is marked."""
    for item in request.session.items:
        closure = set(item.fixturenames)
        if "ls_server" in closure or item.nodeid.split("::")[0] in STARTS_ITS_OWN_SERVER:
            assert item.get_closest_marker("labelstudio"), f"{item.nodeid} needs Label Studio but is not marked"
        if "chromium" in closure:
            assert item.get_closest_marker("browser"), f"{item.nodeid} needs chromium but is not marked"


def test_committed_notebook_is_what_make_notebook_writes():
    made = runpy.run_path(str(ROOT / "notebooks" / "make_notebook.py"))["text"]()
    committed = (ROOT / "notebooks" / "explore.ipynb").read_text(encoding="utf-8")
    assert made == committed, "run `python notebooks/make_notebook.py` and commit notebooks/explore.ipynb"

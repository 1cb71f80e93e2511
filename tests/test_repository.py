"""The repository's own consistency: test markers (the fast offline loop) and the generated notebook."""

from __future__ import annotations

import ast
import functools
import inspect
import re
import runpy

from .conftest import COLLECTED, ROOT, run_cli

# What starts a Label Studio (or the PostgreSQL cluster it runs on), written in a test, a fixture, or a helper
# of the tests that one of them calls: the library's own starts, and the CLI's `server start` / `server migrate`.
STARTS_A_SERVER = re.compile(
    r"\b(?:server|local)\.start(?:_private)?\("
    r"|\bpostgresql\.(?:initialise|start_cluster)\("
    r"""|["']server["'],\s*["'](?:start|migrate)["']"""
)
# Tests that name a start but are refused before anything starts (and need no Label Studio installed).
REFUSED_BEFORE_ANY_START = {
    "tests/test_cli_errors.py::test_server_start_outside_a_project": "no project: refused first",
    "tests/test_cli_errors.py::test_server_install_into_an_unusable_cache": "the install fails first",
    "tests/test_cli_errors.py::test_server_migrate_with_nothing_to_move_or_a_password_in_the_url": "refused first",
    "tests/test_outputs.py::test_server_state_on_a_full_disk": "the state file cannot be written",
    "tests/test_outputs.py::test_commands_outside_a_project_refuse_to_write_into_the_package": "no project",
}


@functools.cache
def _source_with_helpers(function) -> str:
    """`function`'s source and that of the test modules' functions it calls (helpers, recursively)."""
    function = inspect.unwrap(function)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return ""
    texts = [source]
    tree = ast.parse(inspect.cleandoc("\n" + source) if source[:1].isspace() else source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called = getattr(function, "__globals__", {}).get(node.func.id)
            if inspect.isfunction(called) and called is not function and called.__module__.startswith("tests."):
                texts.append(_source_with_helpers(called))
    return "\n".join(texts)


def starts_a_server(item) -> bool:
    """Whether the test, a fixture in its closure, or a helper they call starts Label Studio or PostgreSQL."""
    functions = [getattr(item, "function", None)]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        functions += [definition.func for definition in definitions]
    return any(STARTS_A_SERVER.search(_source_with_helpers(f)) for f in functions if f is not None)


def test_tests_needing_label_studio_or_chromium_are_marked(request):
    """`pytest -m "not labelstudio"` must start no Label Studio: every test that needs one is marked, whether
    it starts it through a fixture (`ls_server`, a module's own) or itself."""
    unmarked = []
    for item in request.config.stash.get(COLLECTED, request.session.items):
        closure = set(item.fixturenames)
        refused_first = item.nodeid.split("[")[0] in REFUSED_BEFORE_ANY_START
        needs = "ls_server" in closure or (starts_a_server(item) and not refused_first)
        if needs and not item.get_closest_marker("labelstudio"):
            unmarked.append(item.nodeid)
        if "chromium" in closure:
            assert item.get_closest_marker("browser"), f"{item.nodeid} needs chromium but is not marked"
    assert unmarked == [], f"these tests start Label Studio but are not marked `labelstudio`: {unmarked}"


def _starts_through_a_helper(root):  # never run: the marker check's own example
    return _a_helper(root)


def _a_helper(root):
    return run_cli("server", "start", cwd=root)


_EXAMPLES = (
    'run_cli("server", "migrate", "--to", "postgresql")',
    "state = server.start(root, free_port())",
    "postgresql.start_cluster(root, port, log)",
    'run_cli("server", "status") and server.stop(root)',
)


def test_the_marker_check_sees_a_test_that_starts_a_server_itself():
    """The check above reads sources: a start written in a helper the test calls counts too."""

    class Item:
        function = staticmethod(_starts_through_a_helper)
        _fixtureinfo = type("FixtureInfo", (), {"name2fixturedefs": {}})

    assert starts_a_server(Item())
    assert [bool(STARTS_A_SERVER.search(text)) for text in _EXAMPLES] == [True, True, True, False]


def test_committed_notebook_is_what_make_notebook_writes():
    made = runpy.run_path(str(ROOT / "notebooks" / "make_notebook.py"))["text"]()
    committed = (ROOT / "notebooks" / "explore.ipynb").read_text(encoding="utf-8")
    assert made == committed, "run `python notebooks/make_notebook.py` and commit notebooks/explore.ipynb"

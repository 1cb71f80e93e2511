"""A new project's first start on SQLite copies Label Studio's empty database, migrated once per install, and
that copy carries nobody's account, token or secret (builder/labelstudio/empty_database.py, issue 27.8)."""

from __future__ import annotations

import sqlite3

import pytest

from builder.labelstudio import empty_database, server
from builder.labelstudio.installer import server_venv

pytestmark = pytest.mark.labelstudio  # the session's first start (migrated_label_studio) makes the template


def rows(database, table: str, where: str = "", *args) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        count = connection.execute(f'SELECT COUNT(*) FROM "{table}" {where}', args).fetchone()[0]
    connection.close()
    return count


def test_a_first_start_copies_the_empty_database_and_makes_its_own_admin(migrated_label_studio):
    template = empty_database.template_path()
    assert template.is_file()  # made by the session's first start, or an earlier one (once per install)
    assert template.parent == server_venv().parent and server.LABEL_STUDIO_VERSION in template.name

    # Label Studio found nothing to migrate: the start copied the template instead
    log = (migrated_label_studio / ".builder" / "label-studio.log").read_text(encoding="utf-8")
    assert "Initializing database" not in log
    database = server.data_dir_of(migrated_label_studio) / server.SQLITE_FILE
    assert rows(database, "django_migrations") == rows(template, "django_migrations") > 200

    # the template holds nobody: no user, token, organization or membership, nothing but the schema's bookkeeping
    empty_database.check_empty(template)
    for table in empty_database.PRIVATE_TABLES:
        assert rows(template, table) == 0, table
    # the project's admin, token and organization were made by its own first start
    state = server.read_state(migrated_label_studio)
    assert rows(database, "htx_user", "WHERE email = ?", server.ADMIN_EMAIL) == 1
    assert rows(database, "authtoken_token", "WHERE key = ?", state.token) == 1
    assert rows(database, "organization") == 1
    content = template.read_bytes()
    assert state.token.encode() not in content and server.ADMIN_EMAIL.encode() not in content
    # Label Studio's secret key (it signs sessions) is the project's own, in its data folder, never in the cache
    assert "SECRET_KEY" in (server.data_dir_of(migrated_label_studio) / ".env").read_text(encoding="utf-8")
    assert not [path for path in template.parent.glob("*.env")] and not list(template.parent.glob(".empty-database-*"))
    assert oct(template.stat().st_mode & 0o777) == "0o600"


def test_a_template_that_holds_anything_is_refused(tmp_path):
    database = tmp_path / "made.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO django_migrations (name) VALUES ('0001_initial')")
        for table in empty_database.PRIVATE_TABLES:
            connection.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, value TEXT)')
    connection.close()
    empty_database.check_empty(database)  # bookkeeping only: accepted
    for table in empty_database.PRIVATE_TABLES:
        with sqlite3.connect(database) as connection:
            connection.execute(f'INSERT INTO "{table}" (value) VALUES (?)', ("someone",))
        connection.close()
        with pytest.raises(ValueError, match=f"table {table} holds 1 rows"):
            empty_database.check_empty(database)
        with sqlite3.connect(database) as connection:
            connection.execute(f'DELETE FROM "{table}"')
        connection.close()
    (tmp_path / "not-migrated.sqlite3").touch()
    with pytest.raises(ValueError, match="not a migrated Label Studio database"):
        empty_database.check_empty(tmp_path / "not-migrated.sqlite3")


def test_a_copy_is_private_and_whole(tmp_path):
    template = tmp_path / "template.sqlite3"
    template.write_bytes(b"x" * 3_000_000)
    target = tmp_path / "data" / "label_studio.sqlite3"
    target.parent.mkdir()
    empty_database.copy_template(template, target)
    assert target.read_bytes() == template.read_bytes() and oct(target.stat().st_mode & 0o777) == "0o600"
    assert [path.name for path in target.parent.iterdir()] == [target.name]


def test_the_shipped_schema_is_what_label_studio_migrates(tmp_path):
    """builder ships the dump of an empty database migrated by the Label Studio it installs (restored in a fraction
    of a second where the migrations take 2 minutes of CPU): it must be exactly what those migrations make.
    After changing LABEL_STUDIO_VERSION: `python -m builder.labelstudio.empty_database` writes it again."""
    executable = server.ensure_installed(log=lambda message: None)
    made = empty_database.migrate_fresh(executable, tmp_path, log=lambda message: None)
    empty_database.check_empty(made)
    assert empty_database.schema_dump(made) == empty_database.SHIPPED_SCHEMA.read_text(encoding="utf-8")
    restored = tmp_path / "restored.sqlite3"
    empty_database.restore(empty_database.SHIPPED_SCHEMA, restored)
    empty_database.check_empty(restored)
    assert empty_database.schema_dump(restored) == empty_database.SHIPPED_SCHEMA.read_text(encoding="utf-8")


def test_the_empty_database_is_made_from_the_shipped_schema_once(tmp_path, monkeypatch):
    template = tmp_path / "cache" / "template.sqlite3"
    monkeypatch.setattr(empty_database, "template_path", lambda: template)
    said = []
    no_label_studio = tmp_path / "absent" / "label-studio"  # restoring the shipped schema needs no Label Studio
    assert empty_database.ensure_template(no_label_studio, log=said.append) == template
    assert any("restored from label-studio-" in line for line in said), said
    empty_database.check_empty(template)
    assert [path.name for path in template.parent.iterdir()] == [template.name]  # the scratch folder is gone
    made = template.stat().st_mtime_ns
    assert empty_database.ensure_template(no_label_studio, log=said.append) == template
    assert template.stat().st_mtime_ns == made  # once: kept, not made again

    # a copy that cannot be made leaves nothing behind, and the start migrates as before
    assert not empty_database.seed(tmp_path / "missing" / "label_studio.sqlite3", no_label_studio, log=said.append)
    assert "this first start migrates its own" in said[-1] and not (tmp_path / "missing").exists()
    database = tmp_path / "data" / "label_studio.sqlite3"
    database.parent.mkdir()
    assert empty_database.seed(database, no_label_studio, log=said.append)
    assert database.read_bytes() == template.read_bytes()

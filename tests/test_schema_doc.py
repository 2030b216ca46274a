"""docs/schema.md documents every table and column of the real schema, with matching types."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from tasks.store import apply_migrations

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
TYPE_ALIASES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}


def documented_columns(text: str) -> dict[str, dict[str, str]]:
    """{table: {column: type}} from the `### \\`table\\`` sections' markdown tables."""
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
            continue
        if line.startswith("## "):
            current = None
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current is not None and line.startswith("|") and len(cells) >= 4 and cells[0] not in ("column", "---"):
            current[cells[0]] = cells[1]
    return tables


def real_columns() -> dict[str, dict[str, str]]:
    con = duckdb.connect()
    apply_migrations(con)
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in con.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'main' order by table_name, ordinal_position"
    ).fetchall():
        tables.setdefault(table, {})[column] = TYPE_ALIASES.get(data_type, data_type)
    return tables


def test_every_table_and_column_is_documented_with_its_type():
    documented, real = documented_columns(DOC.read_text(encoding="utf-8")), real_columns()
    assert set(real) - set(documented) == set(), "tables missing from docs/schema.md"
    assert set(documented) - set(real) == set(), "docs/schema.md describes tables that do not exist"
    for table, columns in real.items():
        assert columns == documented[table], f"docs/schema.md is out of date for table {table}"


def test_every_documented_column_says_whether_it_is_personal():
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("column", "---"):
            assert cells[3] in ("no", "**yes**"), line

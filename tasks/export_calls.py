"""The Call Logs Excel export: one row per call, every Call Logs column plus analysis and JSON keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from tasks.errors import ValidationError
from tasks.excel import MAX_DATA_ROWS_PER_SHEET, copy_query_to_xlsx, xlsx_text_macro
from tasks.metrics import _campaign_zone, range_bounds

SHEET_NAME = "Calls"
# The fixed columns: header → SQL over `calls c` / `call_feedback f` / `contacts ct` (identifiers from
# this list only). Phone numbers are validated E.164 (`+` and digits): a number, never a formula, so
# left unquoted. Date is when the call was placed (registered, else started, else claimed), as the tab.
FIXED_COLUMNS: list[tuple[str, str]] = [
    ("Call ID", "c.call_id"),
    ("Phone Number", "c.phone_e164"),
    ("Disconnect Reason", "c.disconnect_reason"),
    ("Status", "c.status"),
    ("Call Successful", "c.call_successful"),
    ("Duration (s)", "c.duration_seconds"),
    ("Credits", "c.credits"),
    ("Feedback", "f.rating"),
    ("Feedback Comment", "xlsx_text(f.comment)"),
    # as the tab: a call that never connected used no tools (0); an unfinished one has no count yet
    ("Tools", "coalesce(c.tools_count, case when c.status in ('not_connected', 'error', 'failed_rate_limit')"
              " then 0 end)"),
    ("Date", "timezone($time_zone, coalesce(c.registered_at, c.started_at, c.queued_at))"),
    ("Contact", "xlsx_text(ct.name)"),
    ("User Sentiment", "c.user_sentiment"),
    ("In Voicemail", "c.in_voicemail"),
    ("Call Summary", "xlsx_text(c.summary)"),
    ("Ended At", "timezone($time_zone, c.ended_at)"),
    ("From Number", "c.from_number"),
    ("Attempt", "c.attempt_number"),
    ("Recording URL", "xlsx_text(c.recording_url)"),
]
# JSON columns whose keys become extra columns, with the header prefix of each.
JSON_COLUMNS = {"dynamic_variables": "var_", "custom_analysis": "analysis_"}
# The agent's analysis values keep their JSON type where every value of a key has it (booleans, numbers),
# so a spreadsheet counts and sums them; dynamic variables are text (the provider takes a string map).
TYPED_JSON_COLUMNS = {"custom_analysis"}
# Excel keeps 15 significant digits: a larger integer (an order number, say) stays text, digits intact.
MAX_EXACT_INTEGER = 10**15 - 1


def contains_folded(text_sql: str, param: str) -> str:
    """SQL: whether the text holds the parameter's text, case and accents aside ("lopez" finds "López", "LUCÍA"
    finds "Lucia"): DuckDB's lower() and strip_accents() on both sides, one definition of a match. The
    dashboard's searches decide with it too (dashboards/queries/search.py only narrows the values first), so
    this export holds the calls the Call Logs tab shows."""
    return f"contains(strip_accents(lower({text_sql})), strip_accents(lower(${param})))"


# Filters the Call Logs tab offers: name → SQL condition with its parameter.
FILTERS = {
    "disconnect_reason": "c.disconnect_reason in (select unnest($disconnect_reason::varchar[]))",
    "status": "c.status in (select unnest($status::varchar[]))",
    "call_successful": "coalesce(c.call_successful, false) = $call_successful",
    "contact_id": "c.contact_id = $contact_id",
    "phone_contains": "contains(c.phone_e164, $phone_contains)",
    # the Call Logs search by contact name (the contact's current name, matched as the tab matches it)
    "name_contains": "c.contact_id in (select contact_id from contacts"
                     f" where {contains_folded('name', 'name_contains')})",
    # whole seconds, half to even, as the dashboard shows and filters them (a 39.6 s call is "40 sec")
    "min_duration_seconds": "round_even(coalesce(c.duration_seconds, 0), 0) >= $min_duration_seconds",
    "max_duration_seconds": "round_even(coalesce(c.duration_seconds, 0), 0) <= $max_duration_seconds",
}


def _quoted(name: str) -> str:
    # A NUL ends DuckDB's quoted identifier early (a provider's custom analysis key can hold one):
    # show it as U+FFFD instead of failing the whole export.
    return '"' + name.replace("\x00", "\ufffd").replace('"', '""') + '"'


def _json_path(key: str) -> str:
    """A JSONPath selecting one key, whatever characters it holds."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_keys(
    conn: duckdb.DuckDBPyConnection, column: str, scope: str, params: dict
) -> list[tuple[str, set[str], float | None]]:
    """The keys of a JSON column over the scoped calls (sorted), each with the JSON types of its values
    (nulls left out) and its largest integer's magnitude; types only for TYPED_JSON_COLUMNS."""
    if column not in TYPED_JSON_COLUMNS:
        keys = conn.execute(
            f"select distinct unnest(json_keys(c.{column})) as k from calls c where {scope} and c.{column} is not null"
            " order by k",
            params,
        ).fetchall()
        return [(key, {"VARCHAR"}, None) for (key,) in keys]
    rows = conn.execute(
        f"""
        with entry as (
            select j.key, j.type, j.value
            from calls c, json_each(c.{column}) j
            where {scope} and json_type(c.{column}) = 'OBJECT'
        ),
        final as (
            select key,
                   list(distinct type) filter (where type <> 'NULL') as types,
                   max(case when type in ('BIGINT', 'UBIGINT') then abs(value::double) end) as largest_integer
            from entry
            group by key
            order by key
        )
        select * from final
        """,
        params,
    ).fetchall()
    return [(key, set(types or ()), largest) for key, types, largest in rows]


def _key_cell(column: str, param: str, types: set[str], largest_integer: float | None) -> str:
    """SQL for one JSON key's values: booleans or numbers when every value of the key is one, else text."""
    value = f"json_extract_string(c.{column}, ${param})"
    # try_cast: a call written after the keys were read may hold another type (its cell is then empty)
    if types == {"BOOLEAN"}:
        return f"try_cast({value} as boolean)"
    if types and types <= {"BIGINT", "UBIGINT", "DOUBLE"} and (largest_integer or 0) <= MAX_EXACT_INTEGER:
        return f"try_cast({value} as {'double' if 'DOUBLE' in types else 'bigint'})"
    return f"xlsx_text({value})"


def _where(filters: dict | None) -> tuple[str, dict]:
    conditions, params = [], {}
    for name, value in (filters or {}).items():
        if name not in FILTERS:
            raise ValidationError("filters", f"unknown filter {name!r}; use one of {', '.join(FILTERS)}")
        if value is None:
            continue
        if name in ("disconnect_reason", "status") and isinstance(value, str):
            value = [value]
        conditions.append(FILTERS[name])
        params[name] = value
    return "".join(f" and {c}" for c in conditions), params


def calls_export_query(
    conn: duckdb.DuckDBPyConnection,
    campaign_id: int,
    date_from: date | None = None,
    date_to: date | None = None,
    filters: dict | None = None,
) -> tuple[str, dict]:
    """The export's SQL (a CTE chain, one row per call, ordered by the caller) and its bound parameters."""
    time_zone = _campaign_zone(conn, campaign_id)
    lo, hi = range_bounds(time_zone, date_from, date_to)
    extra_where, params = _where(filters)
    params.update({"campaign_id": campaign_id, "lo": lo, "hi": hi})
    scope = f"c.campaign_id = $campaign_id and c.queued_at >= $lo and c.queued_at < $hi{extra_where}"

    scope_params = dict(params)
    # One pass for the keys seen (sorted), so every call gets a column per key.
    extra: list[tuple[str, str]] = []
    for column, prefix in JSON_COLUMNS.items():
        for i, (key, types, largest_integer) in enumerate(_json_keys(conn, column, scope, scope_params)):
            param = f"{prefix}key_{i}"
            params[param] = _json_path(key)
            extra.append((f"{prefix}{key}", _key_cell(column, param, types, largest_integer)))

    xlsx_text_macro(conn)
    params["time_zone"] = time_zone
    select_list = ",\n        ".join(f"{expr} as {_quoted(header)}" for header, expr in FIXED_COLUMNS + extra)
    query = f"""
        with scoped as (
            select c.* from calls c where {scope}
        ),
        final as (
            select
                {select_list}
            from scoped c
            left join call_feedback f using (call_id)
            left join contacts ct using (contact_id)
        )
        select * from final
    """
    return query, params


def export_calls(
    conn: duckdb.DuckDBPyConnection,
    campaign_id: int,
    out: str | Path,
    date_from: date | None = None,
    date_to: date | None = None,
    filters: dict | None = None,
    max_rows_per_sheet: int = MAX_DATA_ROWS_PER_SHEET,
) -> int:
    """Write the campaign's calls (campaign-local dates, inclusive) to an xlsx; returns the rows written.

    DuckDB streams the query into the workbook in call order (no frame of all rows is built); text a
    spreadsheet would run as a formula is prefixed with a quote; full sheets continue on `Calls 2`, ...
    """
    query, params = calls_export_query(conn, campaign_id, date_from, date_to, filters)
    # Sorted by call id (queue order): the feedback join does not keep storage order (DuckDB's LEFT
    # join emits each vector's matched rows first, and parallel scans interleave).
    return copy_query_to_xlsx(conn, query, params, out, order_by='"Call ID"', sheet_name=SHEET_NAME,
                              time_zone=params["time_zone"],
                              max_rows_per_sheet=max_rows_per_sheet)

""""Connected" has one definition, tasks.metrics.CONNECTED_SQL, and every query counting connected calls uses it.

The guard: the code base (tasks, flows, dashboards, schemas, bench; .py and .sql) may name the voicemail
reason only where listed below, each place checked by hand for what it does with it. A new mention —
a query spelling out its own connected rule, say — fails until it uses the definition or is listed here
with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks import metrics
from tasks.metrics import CONNECTED_SQL, connected_sql

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tasks", "flows", "dashboards", "schemas", "bench")
VOICEMAIL = re.compile(r"""['"]voicemail_reached['"]|DisconnectReason\.voicemail_reached""")
# path -> (mentions, why it is not a connected rule of its own)
ALLOWED = {
    "tasks/metrics.py": (1, "the one definition, CONNECTED_SQL"),
    "tasks/forecast.py": (1, "OUTCOMES_SQL's voicemail outcome class, after the connected class (CONNECTED_SQL)"),
    "tasks/call_state.py": (1, "credits: a voicemail bills the voicemail rate"),
    "tasks/credits.py": (1, "credits: a voicemail bills the voicemail rate"),
    "tasks/retry_policy.py": (1, "the voicemail retry rule's key (the default, and hang-ups in a voicemail box)"),
    "tasks/telephony/simulator.py": (4, "the provider's side: drawing a voicemail outcome, its transcript and summary"),
    "schemas/enums.py": (3, "the reason's enum member, the ended-status reasons and what the reason means (REASON_MEANINGS)"),
    "schemas/migrations/001_init.sql": (1, "calls.disconnect_reason's check constraint"),
    "bench/bench_dashboard.py": (1, "naive_kpis: the benchmark's independent Polars baseline the SQL is checked against"),
    "bench/bench_metrics.py": (3, "synthetic calls: voicemail outcomes and their credits"),
    "bench/bench_smart.py": (1, "a retry policy key"),
}


def _mentions() -> dict[str, int]:
    found = {}
    for base in SCANNED:
        for path in sorted((ROOT / base).rglob("*")):
            if path.suffix not in (".py", ".sql") or "__pycache__" in path.parts:
                continue
            count = len(VOICEMAIL.findall(path.read_text(encoding="utf-8")))
            if count:
                found[path.relative_to(ROOT).as_posix()] = count
    return found


def test_no_code_spells_out_its_own_connected_rule():
    found = _mentions()
    unexpected = {path: n for path, n in found.items() if ALLOWED.get(path, (0,))[0] != n}
    assert not unexpected, (
        f"'voicemail_reached' where it was not checked: {unexpected}. Count connected calls with "
        "tasks.metrics.CONNECTED_SQL / connected_sql(alias) (tasks/sql/*.sql: {{connected}}); if the "
        "mention is for something else, list it in ALLOWED with why")
    assert set(found) == set(ALLOWED), f"listed but gone: {set(ALLOWED) - set(found)}"


def test_the_guard_sees_a_rule_spelled_out(tmp_path, monkeypatch):
    """A query with its own connected rule in a scanned file is caught."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "rogue.py").write_text(
        'SQL = "select count(*) filter (where status = \'ended\' and disconnect_reason <> \'voicemail_reached\')"\n')
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert _mentions() == {"tasks/rogue.py": 1}


@pytest.mark.parametrize("name", ["contact_stats", "metrics_daily", "kpis", "kpis_hashed", "range_calls"])
def test_the_metrics_queries_use_the_definition(name):
    text = metrics.sql(name)
    assert CONNECTED_SQL in text and "{{" not in text
    raw = (ROOT / "tasks" / "sql" / f"{name}.sql").read_text(encoding="utf-8")
    assert "{{connected}}" in raw or "{{range_calls}}" in raw


def test_the_python_queries_use_the_definition():
    from dashboards.queries import smart
    from tasks import best_time, forecast, number_health

    for query in (number_health.HEALTH_SQL, number_health.JUDGE_SQL, best_time.STATS_SQL, smart.NUMBER_DAYS_SQL):
        assert connected_sql("c") in query
    for query in (forecast.TOTALS_SQL, forecast.OUTCOMES_SQL):
        assert CONNECTED_SQL in query


def test_kpis_share_range_calls():
    shared = metrics.sql("range_calls").split("\nselect", 1)[1]
    assert shared.strip() in metrics.sql("kpis") and shared.strip() in metrics.sql("kpis_hashed")


def test_an_unknown_placeholder_is_refused(monkeypatch):
    class Files:
        def joinpath(self, *parts):
            return self

        def read_text(self, encoding):
            return "select {{conected}} from calls"

    monkeypatch.setattr(metrics.resources, "files", lambda package: Files())
    metrics.sql.cache_clear()
    try:
        with pytest.raises(KeyError, match="conected"):
            metrics.sql("typo")
    finally:
        monkeypatch.undo()
        metrics.sql.cache_clear()


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_the_schema_doc_states_the_definition():
    doc = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert ("A call is **connected / answered** when a person picked up: `status = 'ended'` and\n  "
            "`disconnect_reason` is not `voicemail_reached` and `in_voicemail` is not true.") in doc
    # the example queries that count connected calls spell it as the code does
    assert _normalised(doc).count(connected_sql("cl")) == 2
    assert CONNECTED_SQL == ("status = 'ended' and disconnect_reason is distinct from 'voicemail_reached'"
                             " and not coalesce(in_voicemail, false)")

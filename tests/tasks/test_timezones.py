"""Which countries share a time zone, from zone1970.tab wherever it is installed."""

from __future__ import annotations

import pytest

from tasks import timezones
from tasks.timezones import countries_for_zone, parse_zone_table, zone_needs_country

TABLE = """# tzdb timezone descriptions
#codes\tcoordinates\tTZ\tcomments
US,CA\t+332654-1120424\tAmerica/Phoenix\tMST - AZ (most areas), Creston BC
CO\t+0436-07405\tAmerica/Bogota
"""


def test_parse_zone_table_reads_every_country_of_a_zone_and_skips_comments():
    assert parse_zone_table(TABLE) == {"America/Phoenix": ("US", "CA"), "America/Bogota": ("CO",)}


@pytest.mark.parametrize(
    "zone, countries, needs_country",
    [
        ("America/Phoenix", ["US", "CA"], True),  # the example
        ("Europe/Berlin", ["DE", "DK", "NO", "SE", "SJ"], True),
        ("America/Bogota", ["CO"], False),
        ("UTC", [], False),
        ("Not/AZone", [], False),
    ],
)
def test_countries_for_zone(zone, countries, needs_country):
    assert countries_for_zone(zone) == countries
    assert zone_needs_country(zone) is needs_country


def test_falls_back_to_the_system_table_when_the_tzdata_wheel_has_none(tmp_path, monkeypatch):
    (tmp_path / "zone1970.tab").write_text(TABLE, encoding="utf-8")
    monkeypatch.setattr(timezones, "_TABLE_DIRS_FALLBACK", (str(tmp_path),))
    monkeypatch.setattr(timezones.zoneinfo, "TZPATH", ())

    def no_wheel(_package):
        raise ModuleNotFoundError("tzdata")

    monkeypatch.setattr(timezones.resources, "files", no_wheel)
    timezones.zone_countries.cache_clear()
    try:
        assert countries_for_zone("America/Phoenix") == ["US", "CA"]
        assert countries_for_zone("Europe/Berlin") == []  # not in this small table
    finally:
        timezones.zone_countries.cache_clear()


def test_without_any_table_no_zone_requires_a_country(monkeypatch):
    monkeypatch.setattr(timezones, "_read_table", lambda name, extra_dirs=None: None)
    timezones.zone_countries.cache_clear()
    try:
        assert zone_needs_country("America/Phoenix") is False
    finally:
        timezones.zone_countries.cache_clear()

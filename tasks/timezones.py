"""Which countries use an IANA time zone (from tzdata's zone1970.tab), and which zone names exist."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from importlib import resources
from pathlib import Path

# Where a zone table may live, in order of preference: the `tzdata` wheel pinned in pyproject (same
# on every machine), then the system database (Debian's tzdata package, any TZPATH entry).
_TABLE_DIRS_FALLBACK = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo")


def parse_zone_table(text: str) -> dict[str, tuple[str, ...]]:
    """{zone: (country codes...)} from the text of zone1970.tab or zone.tab (comma-separated codes)."""
    zones: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones[fields[2].strip()] = tuple(code.strip() for code in fields[0].split(",") if code.strip())
    return zones


def _read_table(name: str, extra_dirs: tuple[str, ...] | None = None) -> str | None:
    try:
        return resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        pass
    for folder in extra_dirs if extra_dirs is not None else (*zoneinfo.TZPATH, *_TABLE_DIRS_FALLBACK):
        path = Path(folder) / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


@lru_cache(maxsize=1)
def zone_countries() -> dict[str, tuple[str, ...]]:
    """{zone: countries}: zone1970.tab, completed by zone.tab for zones zone1970 merged away.

    zone1970.tab lists every country sharing a zone since 1970 (America/Phoenix: US, CA) but drops
    zones merged into another (Europe/Oslo → Europe/Berlin); zone.tab still names those with their
    one country. With neither file the map is empty and no zone requires a country.
    """
    merged: dict[str, tuple[str, ...]] = {}
    legacy = _read_table("zone.tab")
    if legacy:
        merged.update(parse_zone_table(legacy))
    modern = _read_table("zone1970.tab")
    if modern:
        merged.update(parse_zone_table(modern))
    return merged


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """Every IANA zone name this machine can convert times in."""
    return frozenset(zoneinfo.available_timezones())


def is_known_zone(tz: str) -> bool:
    """Whether ``tz`` is an IANA time zone name we can use."""
    return tz in known_zones()


def countries_for_zone(tz: str) -> list[str]:
    """The ISO 3166 alpha-2 countries using ``tz`` (empty for zones such as UTC or unknown names)."""
    return list(zone_countries().get(tz, ()))


def zone_needs_country(tz: str) -> bool:
    """Whether several countries share ``tz``, so a campaign must say which one it calls."""
    return len(countries_for_zone(tz)) > 1

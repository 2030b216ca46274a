"""Compliance: legal calling rules by callee time zone and date, do-not-call lists, rolling caps, audit.

The claim query never runs Python per contact. Each contact carries a `zone_key` naming its
(time zones, country, subdivision); once per claim `zone_status` decides in Python, for the few
distinct keys, whether each is open now (through the whole batch) or why not, and the caps of its
rule. The claim query joins that small frame, checks the do-not-call lists and counts recent
calls per number in SQL (see `tasks.dialing.ELIGIBLE_SQL`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import holidays
import phonenumbers as pn
import polars as pl
from phonenumbers import geocoder
from phonenumbers import timezone as pn_timezone

from schemas.enums import WEEKDAYS
from tasks.errors import NotFoundError, UserError, ValidationError, read_input_file
from tasks.schedule import wall_reached, within

DEFAULT_RULE = "DEFAULT"
UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers when it cannot tell
SAMPLE_SIZE = 5
RULE_COLUMNS = ["rule_id", "country", "subdivision", *WEEKDAYS, "no_public_holidays", "max_calls_24h",
                "max_calls_30d", "source"]
STATUS_SCHEMA = {"zone_key": pl.Int32, "rule_id": pl.String, "blocked": pl.String,
                 "max_calls_24h": pl.Int32, "max_calls_30d": pl.Int32}

# Zones of each US state (all of them for states that span several: the window is their intersection).
US_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": ("America/Chicago",), "AK": ("America/Anchorage", "America/Adak"), "AZ": ("America/Phoenix",),
    "AR": ("America/Chicago",), "CA": ("America/Los_Angeles",), "CO": ("America/Denver",),
    "CT": ("America/New_York",), "DE": ("America/New_York",), "DC": ("America/New_York",),
    "FL": ("America/New_York", "America/Chicago"), "GA": ("America/New_York",), "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", "America/Los_Angeles"), "IL": ("America/Chicago",),
    "IN": ("America/Indiana/Indianapolis", "America/Chicago"), "IA": ("America/Chicago",),
    "KS": ("America/Chicago", "America/Denver"), "KY": ("America/New_York", "America/Chicago"),
    "LA": ("America/Chicago",), "ME": ("America/New_York",), "MD": ("America/New_York",),
    "MA": ("America/New_York",), "MI": ("America/Detroit", "America/Menominee"), "MN": ("America/Chicago",),
    "MS": ("America/Chicago",), "MO": ("America/Chicago",), "MT": ("America/Denver",),
    "NE": ("America/Chicago", "America/Denver"), "NV": ("America/Los_Angeles",), "NH": ("America/New_York",),
    "NJ": ("America/New_York",), "NM": ("America/Denver",), "NY": ("America/New_York",),
    "NC": ("America/New_York",), "ND": ("America/Chicago", "America/Denver"), "OH": ("America/New_York",),
    "OK": ("America/Chicago",), "OR": ("America/Los_Angeles", "America/Boise"), "PA": ("America/New_York",),
    "RI": ("America/New_York",), "SC": ("America/New_York",), "SD": ("America/Chicago", "America/Denver"),
    "TN": ("America/Chicago", "America/New_York"), "TX": ("America/Chicago", "America/Denver"),
    "UT": ("America/Denver",), "VT": ("America/New_York",), "VA": ("America/New_York",),
    "WA": ("America/Los_Angeles",), "WV": ("America/New_York",), "WI": ("America/Chicago",),
    "WY": ("America/Denver",), "PR": ("America/Puerto_Rico",),
}
# US ZIP code prefixes (first three digits, inclusive ranges) by state; USPS assignment.
_ZIP3_RANGES = [
    (5, 5, "NY"), (6, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"), (30, 38, "NH"), (39, 49, "ME"), (50, 54, "VT"),
    (55, 55, "MA"), (56, 59, "VT"), (60, 69, "CT"), (70, 89, "NJ"), (100, 149, "NY"), (150, 196, "PA"),
    (197, 199, "DE"), (200, 200, "DC"), (201, 201, "VA"), (202, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"),
    (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 349, "FL"), (350, 369, "AL"),
    (370, 385, "TN"), (386, 397, "MS"), (398, 399, "GA"), (400, 427, "KY"), (430, 458, "OH"), (460, 479, "IN"),
    (480, 499, "MI"), (500, 528, "IA"), (530, 549, "WI"), (550, 567, "MN"), (570, 577, "SD"), (580, 588, "ND"),
    (590, 599, "MT"), (600, 629, "IL"), (630, 658, "MO"), (660, 679, "KS"), (680, 693, "NE"), (700, 714, "LA"),
    (716, 729, "AR"), (730, 749, "OK"), (750, 799, "TX"), (800, 816, "CO"), (820, 831, "WY"), (832, 838, "ID"),
    (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"), (885, 885, "TX"), (889, 898, "NV"), (900, 961, "CA"),
    (967, 968, "HI"), (970, 979, "OR"), (980, 994, "WA"), (995, 999, "AK"),
]
_US_STATE_NAMES = {name.lower(): code for name, code in getattr(holidays.US, "subdivisions_aliases", {}).items()}
# how phonenumbers' geocoder (and people) name the two Washingtons: "Washington State", "Washington D.C."
_US_STATE_NAMES.update({"washington state": "WA", "washington d.c.": "DC", "washington dc": "DC",
                        "washington, d.c.": "DC"})


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One legal calling rule: callee-local weekly windows, holidays, rolling caps, its source."""

    rule_id: str
    country: str | None
    subdivision: str | None
    windows: dict[str, tuple[tuple[time, time], ...]]
    no_public_holidays: bool
    max_calls_24h: int | None
    max_calls_30d: int | None
    source: str


def _hhmm(text: str, where: str) -> time:
    if text == "24:00":
        return time.max
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValidationError(where, f"{text!r} is not a HH:MM time") from None


def parse_windows(text: str | None, where: str = "windows") -> tuple[tuple[time, time], ...]:
    """'10:00-13:00 14:00-20:00' as sorted [start, end) pairs; empty or None = closed all day."""
    windows = []
    for part in (text or "").replace(",", " ").split():
        match = re.fullmatch(r"(\d\d:\d\d)-(\d\d:\d\d)", part)
        if not match:
            raise ValidationError(where, f"{part!r} is not a HH:MM-HH:MM window")
        start, end = _hhmm(match.group(1), where), _hhmm(match.group(2), where)
        if end <= start:
            raise ValidationError(where, f"window {part} ends before it starts")
        windows.append((start, end))
    return tuple(sorted(windows))


def _check_no_overlap(rule: Rule, where: str) -> None:
    """Refuse a day whose windows overlap ("08:00-12:00 11:00-14:00"): as in a campaign's schedule, it is a typo
    more often than a meaning (the rule read them as their union). Checked on import only: rules stored
    before this check still load."""
    for day in WEEKDAYS:
        windows = rule.windows[day]
        for (start, end), (later, later_end) in zip(windows, windows[1:]):
            if later < end:
                raise ValidationError(f"{where} {day}", f"windows {start:%H:%M}-{_end_text(end)} and "
                                                        f"{later:%H:%M}-{_end_text(later_end)} overlap")


def _end_text(end: time) -> str:
    return "24:00" if end == time.max else f"{end:%H:%M}"


def _rule_from_row(row: dict, where: str) -> Rule:
    def cap(name: str) -> int | None:
        value = row.get(name)
        if value is None or str(value).strip() == "":
            return None
        try:
            number = int(value)
        except ValueError:
            raise ValidationError(f"{where} {name}", f"{value!r} is not a whole number") from None
        if number < 0:
            raise ValidationError(f"{where} {name}", "must be 0 or more")
        return number

    rule_id = (row.get("rule_id") or "").strip()
    if not rule_id:
        raise ValidationError(f"{where} rule_id", "is empty")
    country = (row.get("country") or "").strip().upper() or None
    if country is None and rule_id != DEFAULT_RULE:
        raise ValidationError(f"{where} country", f"rule {rule_id} needs a country (only {DEFAULT_RULE} has none)")
    holidays_flag = row.get("no_public_holidays")
    if isinstance(holidays_flag, str):
        if holidays_flag.strip().lower() not in ("true", "false", "1", "0", "yes", "no", ""):
            raise ValidationError(f"{where} no_public_holidays", f"{holidays_flag!r} is not true/false")
        holidays_flag = holidays_flag.strip().lower() in ("true", "1", "yes")
    return Rule(
        rule_id=rule_id,
        country=country,
        subdivision=(row.get("subdivision") or "").strip().upper() or None,
        windows={day: parse_windows(row.get(day), f"{where} {day}") for day in WEEKDAYS},
        no_public_holidays=bool(holidays_flag),
        max_calls_24h=cap("max_calls_24h"),
        max_calls_30d=cap("max_calls_30d"),
        source=(row.get("source") or "").strip(),
    )


def load_rules(conn: duckdb.DuckDBPyConnection) -> dict[str, Rule]:
    """Every calling rule in the store by rule id."""
    cursor = conn.execute(f"select {', '.join(RULE_COLUMNS)} from calling_rules order by rule_id")
    names = [d[0] for d in cursor.description]
    return {r.rule_id: r for r in (_rule_from_row(dict(zip(names, row)), f"rule {row[0]}") for row in cursor.fetchall())}


# Regions with a country code of their own (phone numbers, ISO 3166) that are part of a ruled country in
# law: the French overseas departments are France (Code de la consommation L221-17, decret 2022-1313 apply
# there). Without a rule of their own they take that country's rule as its subdivision (a rule for FR 971
# first, then FR), never the looser default; their public holidays stay their own (the `holidays` package
# knows each, e.g. 27 May in Guadeloupe).
LAW_OF_REGION = {"GP": ("FR", "971"), "MQ": ("FR", "972"), "GF": ("FR", "973"), "RE": ("FR", "974"),
                 "YT": ("FR", "976")}


def rule_for(rules: dict[str, Rule], country: str | None, subdivision: str | None) -> Rule:
    """The rule of a (country, subdivision): the subdivision's, else the country's (or, for an overseas
    department without a rule, its country's), else the default."""
    if country in LAW_OF_REGION and not any(rule.country == country for rule in rules.values()):
        country, subdivision = LAW_OF_REGION[country]
    best = None
    for rule in rules.values():
        if rule.country is None or rule.country != country:
            continue
        if rule.subdivision is not None and rule.subdivision == subdivision:
            return rule
        if rule.subdivision is None:
            best = rule
    if best is not None:
        return best
    if DEFAULT_RULE not in rules:
        raise NotFoundError(f"no calling rule for country {country} and no {DEFAULT_RULE} rule")
    return rules[DEFAULT_RULE]


def _rules_text(path: Path) -> str:
    """A rules CSV's text (UTF-8, UTF-16 by BOM, else Windows-1252, as contact files); a workbook is refused."""
    from tasks.contacts_import import OLE_MAGIC, decode_bytes

    data = read_input_file(path, "CSV file")
    if data.startswith((b"PK\x03\x04", OLE_MAGIC)):
        raise UserError(f"{path}: is a workbook; save the rules as CSV (UTF-8) first")
    try:
        text = decode_bytes(data)[0].decode("utf-8")
    except UnicodeDecodeError as error:  # a byte-order mark promised UTF-16/32 and the bytes break it
        raise UserError(f"{path}: byte {error.start} is not valid {error.encoding}; save the file as UTF-8") from None
    if not text.lstrip("\ufeff").strip():
        raise UserError(f"{path}: the file is empty")  # it read "missing column(s) rule_id, country, ..."
    return text


def _check_rule_country(row: dict, where: str) -> None:
    """A rule's country must be a code phone numbers carry (US, not USA), or the rule would never apply."""
    country = (row.get("country") or "").strip().upper()
    if country and country not in pn.SUPPORTED_REGIONS:
        raise ValidationError(f"{where} country", f"{row['country']!r} is not an ISO 3166 alpha-2 country code (e.g. US)")


def _check_rule_subdivision(row: dict, where: str) -> None:
    """A rule's subdivision must be written as contacts carry theirs (FL, not US-FL; a US state's code), or it would
    never apply: its callees would fall to the country's rule without a word."""
    country = (row.get("country") or "").strip().upper()
    subdivision = (row.get("subdivision") or "").strip().upper()
    if not subdivision or not country:
        return
    if subdivision.startswith(f"{country}-"):
        raise ValidationError(f"{where} subdivision", f"{row['subdivision']!r}: write it without the country, "
                                                      f"as contacts carry it ({subdivision.removeprefix(country + '-')})")
    if country == "US" and subdivision not in US_STATE_ZONES:
        raise ValidationError(f"{where} subdivision", f"{row['subdivision']!r} is not a US state code (e.g. FL)")


# Excel's first line "sep=X" naming the delimiter (as the contact import reads it)
_RULES_SEP_LINE = re.compile(r"sep=([,;\t|])(?:\r\n|\n|\r|\Z)", re.IGNORECASE)
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _rules_records(text: str, path: Path) -> tuple[str, list[tuple[int, list[str]]]]:
    """A rules CSV's delimiter and its records, each with its row as a spreadsheet shows it: one row per
    record (a quoted cell over several lines is one row), blank lines counted, header = row 1 (row 2
    after Excel's `sep=X` line). The delimiter is the `sep=` line's, else the one of `,` `;` and tab
    found most often in the header line, as the contact import does."""
    from tasks.contacts_import import detect_delimiter

    text = text.lstrip("\ufeff")
    hint = _RULES_SEP_LINE.match(text)
    if hint is not None:
        delimiter, text, first_row = hint.group(1), text[hint.end():], 2
    else:
        delimiter, first_row = detect_delimiter(text.encode("utf-8")), 1
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row, record in enumerate(reader, start=first_row):
            records.append((row, record))
    except csv.Error as error:
        raise UserError(f"{path} row {first_row + len(records)}: not valid CSV ({error})") from None
    return delimiter, records


def read_rules_csv(path: str | Path) -> list[Rule]:
    """Rules from a CSV shaped like data/calling_rules.csv (`,` `;` or tab); a bad cell is a UserError naming its
    row (as a spreadsheet shows it) and column. One rule per place: two rules of one (country, subdivision)
    are refused, as only one of them could ever apply."""
    path = Path(path)
    delimiter, records = _rules_records(_rules_text(path), path)
    filled = [(row, record) for row, record in records if any(cell.strip() for cell in record)]
    if not filled:
        raise UserError(f"{path}: the file is empty")
    header_row, header = filled[0][0], [name.strip() for name in filled[0][1]]
    repeated = next((name for i, name in enumerate(header) if name and name in header[:i]), None)
    if repeated is not None:
        # a second "mon" would replace the first one's window
        raise UserError(f"{path} row {header_row}, column {header.index(repeated, header.index(repeated) + 1) + 1}: "
                        f"column {repeated!r} appears twice in the header")
    missing = [c for c in RULE_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    rules: list[Rule] = []
    rows_of: dict[str, int] = {}  # rule_id -> its row
    places: dict[tuple[str, str | None], tuple[str, int]] = {}  # (country, subdivision) -> (rule_id, row)
    for row, record in filled[1:]:  # blank rows are skipped, still counted
        where = f"{path} row {row}"
        if len(record) != len(header):
            raise UserError(f"{where}: {len(record)} fields, the header has {len(header)}"
                            f" (a missing or extra {_DELIMITER_NAMES.get(delimiter, delimiter)}?)")
        cells = dict(zip(header, record))
        _check_rule_country(cells, where)
        _check_rule_subdivision(cells, where)
        rule = _rule_from_row(cells, where)
        _check_no_overlap(rule, where)
        if rule.rule_id in rows_of:
            raise UserError(f"{where} rule_id: rule {rule.rule_id} appears more than once "
                            f"(first in row {rows_of[rule.rule_id]})")
        rows_of[rule.rule_id] = row
        if rule.country is not None:
            place = (rule.country, rule.subdivision)
            if place in places:
                other, other_row = places[place]
                raise UserError(f"{where} country: rule {rule.rule_id} has the same country and subdivision as rule "
                                f"{other} (row {other_row}); one rule per place")
            places[place] = (rule.rule_id, row)
        rules.append(rule)
    if DEFAULT_RULE not in rows_of:
        raise UserError(f"{path}: a {DEFAULT_RULE} rule is required (countries without a rule use it)")
    return rules


def _windows_text(windows: tuple[tuple[time, time], ...]) -> str | None:
    def show(t: time) -> str:
        return "24:00" if t == time.max else t.strftime("%H:%M")

    return " ".join(f"{show(s)}-{show(e)}" for s, e in windows) or None


def replace_rules(conn: duckdb.DuckDBPyConnection, rules: list[Rule], now: datetime) -> int:
    """Make the rules table exactly these rules (call inside a transaction); returns how many."""
    conn.execute("delete from calling_rules")
    for r in rules:
        conn.execute(
            f"insert into calling_rules ({', '.join(RULE_COLUMNS)}, updated_at) values ({', '.join('?' * (len(RULE_COLUMNS) + 1))})",
            [r.rule_id, r.country, r.subdivision, *(_windows_text(r.windows[d]) for d in WEEKDAYS),
             r.no_public_holidays, r.max_calls_24h, r.max_calls_30d, r.source, now],
        )
    return len(rules)


def list_rules(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    """The rules table as rows, for the CLI and the dashboard."""
    cursor = conn.execute(f"select {', '.join(RULE_COLUMNS)} from calling_rules order by country nulls last, subdivision nulls first")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# ---------------------------------------------------------------- windows


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    try:
        known = holidays.list_supported_countries().get(country)
        if known is None:
            return frozenset()
        subdiv = subdivision if subdivision in (known or ()) else None
        return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year).keys())
    except (NotImplementedError, KeyError):
        return frozenset()


def is_public_holiday(country: str | None, subdivision: str | None, day: date) -> bool:
    """Whether `day` is a public holiday in the country (and subdivision where known), per `holidays`."""
    return country is not None and day in _holiday_dates(country, subdivision, day.year)


def zone_blocked(rule: Rule, zones: Iterable[str], country: str | None, subdivision: str | None,
                 now: datetime, horizon: timedelta = timedelta(0)) -> str | None:
    """Why the rule forbids calling someone in all of `zones` from `now` through `now + horizon`, or None.

    `window:<rule>` outside its hours (in any of the zones), `holiday:<rule>` on a public holiday there.
    """
    until = now + horizon
    for name in zones:
        local = now.astimezone(_zone(name))
        if rule.no_public_holidays and is_public_holiday(country, subdivision, local.date()):
            return f"holiday:{rule.rule_id}"
        wall = local.time().replace(tzinfo=None)
        window = next(((s, e) for s, e in rule.windows[WEEKDAYS[local.weekday()]] if within(s, e, wall)), None)
        if window is None:
            return f"window:{rule.rule_id}"
        # the whole batch must land before the open stretch closes: the window, and a window it runs on into
        # (touching, or 24:00 into the next day's 00:00 unless that day is a holiday the rule keeps free)
        day, end = local.date(), window[1]
        while (close := wall_reached(day, end, _zone(name), local.fold if day == local.date() else 0)) < until:
            if end == time.max:
                day, end = day + timedelta(days=1), time.min
                if rule.no_public_holidays and is_public_holiday(country, subdivision, day):
                    break
            later = [e for s, e in rule.windows[WEEKDAYS[day.weekday()]] if s <= end < e]
            if not later:
                break
            end = max(later)
        if close < until:
            return f"window:{rule.rule_id}"
    return None


def zone_status(conn: duckdb.DuckDBPyConnection, campaign_time_zone: str, campaign_country: str | None,
                now: datetime, horizon: timedelta = timedelta(0)) -> pl.DataFrame:
    """Every zone key with its rule, why it is closed now (NULL = open) and its rule's caps."""
    rules = load_rules(conn)
    rows = []
    for key, zones, country, subdivision in conn.execute(
        "select zone_key, time_zones, country, subdivision from zone_keys order by zone_key"
    ).fetchall():
        # unknown → the campaign's (the contact list flags these contacts)
        country = country or campaign_country
        rule = rule_for(rules, country, subdivision)
        blocked = zone_blocked(rule, zones or [campaign_time_zone], country, subdivision, now, horizon)
        # a cap of 0 allows no call at all: held here, since the claim counts only numbers with recent attempts
        # (a number never called has no count to compare, so `count >= 0` would never hold it back)
        if blocked is None and rule.max_calls_24h == 0:
            blocked = f"cap_24h:{rule.rule_id}"
        elif blocked is None and rule.max_calls_30d == 0:
            blocked = f"cap_30d:{rule.rule_id}"
        rows.append((key, rule.rule_id, blocked, rule.max_calls_24h, rule.max_calls_30d))
    return pl.DataFrame(rows, schema=STATUS_SCHEMA, orient="row")


# ---------------------------------------------------------------- callee zones


def _valid_zone(name: str | None) -> str | None:
    if not name or not str(name).strip():
        return None
    name = str(name).strip()
    if name == UNKNOWN_ZONE:
        return None
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def us_state(value: str | None) -> str | None:
    """A US state code from a code or a name ('FL', 'florida'), else None."""
    if not value or not str(value).strip():
        return None
    text = str(value).strip()
    if text.upper() in US_STATE_ZONES:
        return text.upper()
    return _US_STATE_NAMES.get(text.lower())


def zip_state(postal_code: str | None) -> str | None:
    """The US state of a ZIP code (by its first three digits), else None."""
    digits = re.match(r"\s*(\d{5})(?:-\d{4})?\s*$", str(postal_code or ""))
    if not digits:
        return None
    prefix = int(digits.group(1)[:3])
    return next((state for low, high, state in _ZIP3_RANGES if low <= prefix <= high), None)


@lru_cache(maxsize=2048)
def area_code_state(area_code: str) -> str | None:
    """The US state of a North American area code, from phonenumbers' geocoding data."""
    try:
        number = pn.parse(f"+1{area_code}2000000")
    except pn.NumberParseException:
        return None
    if pn.region_code_for_number(number) != "US":
        return None
    description = geocoder.description_for_number(number, "en")
    suffix = re.search(r",\s*([A-Z]{2})$", description)
    return us_state(suffix.group(1) if suffix else description)


def resolve_zone(region: str | None, phone_zones: Iterable[str] | None, *, time_zone_override: str | None = None,
                 subdivision_override: str | None = None, mapped_time_zone: str | None = None,
                 mapped_state: str | None = None, mapped_postal_code: str | None = None,
                 area_code: str | None = None) -> tuple[tuple[str, ...] | None, str | None, str | None, str]:
    """(time zones, country, subdivision, source) of a contact: by hand, else mapped columns, else the phone."""
    country = region
    hand_sub = (subdivision_override or "").strip().upper() or None
    mapped_sub = None
    if country == "US" or country is None:
        mapped_sub = us_state(mapped_state) or zip_state(mapped_postal_code)
    elif mapped_state:
        mapped_sub = str(mapped_state).strip().upper() or None
    subdivision = hand_sub or mapped_sub or (area_code_state(area_code) if country == "US" and area_code else None)
    if _valid_zone(time_zone_override):
        return (time_zone_override.strip(),), country, subdivision, "hand"
    if hand_sub and country == "US" and hand_sub in US_STATE_ZONES:
        return tuple(sorted(US_STATE_ZONES[hand_sub])), country, subdivision, "hand"
    if _valid_zone(mapped_time_zone):
        return (mapped_time_zone.strip(),), country, subdivision, "mapped"
    if mapped_sub and country == "US" and mapped_sub in US_STATE_ZONES:
        return tuple(sorted(US_STATE_ZONES[mapped_sub])), country, subdivision, "mapped"
    zones = tuple(sorted({z for z in (phone_zones or ()) if _valid_zone(z)}))
    if zones:
        return zones, country, subdivision, "phone"
    return None, country, subdivision, "unknown"


_PENDING_SQL = """
select contact_id, phone_e164, region, time_zones, time_zone_override, subdivision_override,
       coalesce(properties->>'time_zone', properties->>'timezone', properties->>'tz') as mapped_time_zone,
       coalesce(properties->>'state', properties->>'us_state', properties->>'province') as mapped_state,
       coalesce(properties->>'postal_code', properties->>'zip', properties->>'zip_code', properties->>'postcode')
           as mapped_postal_code
from contacts
where zone_resolved_at is distinct from updated_at
"""
_PENDING_OF_SQL = _PENDING_SQL + "  and contact_id in (select contact_id from zone_candidates)\n"
_COMBO = ["region", "time_zones", "time_zone_override", "subdivision_override", "mapped_time_zone",
          "mapped_state", "mapped_postal_code", "area_code"]


def resolve_zones(conn: duckdb.DuckDBPyConnection, contact_ids: list[int] | None = None) -> int:
    """Give every new or changed contact (or those of `contact_ids`) its zone key, subdivision and zone source.

    One decision per distinct combination of inputs (a few hundred for a million contacts), joined
    back in one update. Call inside a transaction. Returns how many contacts were resolved.
    """
    if contact_ids is None:
        pending = conn.execute(_PENDING_SQL).pl()
    else:
        conn.register("zone_candidates", pl.DataFrame({"contact_id": contact_ids}, schema={"contact_id": pl.Int64}))
        try:
            pending = conn.execute(_PENDING_OF_SQL).pl()
        finally:
            conn.unregister("zone_candidates")
    if pending.height == 0:
        return 0
    unknown_region = pending.filter(pl.col("region").is_null())
    if unknown_region.height:
        # contacts written without import (by hand, tests): ask phonenumbers, one number at a time
        parsed = {}
        for phone in unknown_region["phone_e164"].to_list():
            try:
                number = pn.parse(phone)
                parsed[phone] = pn.region_code_for_number(number)
            except pn.NumberParseException:
                parsed[phone] = None
        zones_of = {}
        for phone in unknown_region["phone_e164"].to_list():
            try:
                zones_of[phone] = list(pn_timezone.time_zones_for_number(pn.parse(phone)))
            except pn.NumberParseException:
                zones_of[phone] = None
        pending = pending.with_columns(
            pl.when(pl.col("region").is_null())
            .then(pl.col("phone_e164").replace_strict(parsed, default=None, return_dtype=pl.String))
            .otherwise(pl.col("region")).alias("region"),
            pl.when(pl.col("region").is_null() & pl.col("time_zones").is_null())
            .then(pl.col("phone_e164").replace_strict(zones_of, default=None, return_dtype=pl.List(pl.String)))
            .otherwise(pl.col("time_zones")).alias("time_zones"),
        )
    pending = pending.with_columns(
        pl.when(pl.col("region") == "US").then(pl.col("phone_e164").str.slice(2, 3)).alias("area_code"),
        # the state of a ZIP code depends on its first three digits only
        pl.col("mapped_postal_code").str.strip_chars().str.slice(0, 5),
    )
    combos = pending.select(_COMBO).unique()
    existing = {
        (tuple(z) if z is not None else None, c, s, src): k
        for k, z, c, s, src in conn.execute(
            "select zone_key, time_zones, country, subdivision, zone_source from zone_keys").fetchall()
    }
    next_key = max(existing.values(), default=0) + 1
    decided = []
    for combo in combos.iter_rows(named=True):
        zones, country, subdivision, source = resolve_zone(
            combo["region"], combo["time_zones"], time_zone_override=combo["time_zone_override"],
            subdivision_override=combo["subdivision_override"], mapped_time_zone=combo["mapped_time_zone"],
            mapped_state=combo["mapped_state"], mapped_postal_code=combo["mapped_postal_code"],
            area_code=combo["area_code"])
        identity = (zones, country, subdivision, source)
        if identity not in existing:
            conn.execute("insert into zone_keys values (?, ?, ?, ?, ?)",
                         [next_key, list(zones) if zones else None, country, subdivision, source])
            existing[identity] = next_key
            next_key += 1
        decided.append({**combo, "zone_key": existing[identity], "subdivision": subdivision, "zone_source": source})
    decisions = pl.DataFrame(decided, schema={**combos.schema, "zone_key": pl.Int32, "subdivision": pl.String,
                                              "zone_source": pl.String})
    resolved = pending.join(decisions, on=_COMBO, how="left", nulls_equal=True).select(
        "contact_id", "zone_key", "subdivision", "zone_source")
    conn.register("resolved_zones", resolved)
    try:
        conn.execute(
            """
            update contacts c set zone_key = r.zone_key, subdivision = r.subdivision, zone_source = r.zone_source,
                   zone_resolved_at = c.updated_at
            from resolved_zones r where c.contact_id = r.contact_id
            """
        )
        # a new contact or an edited phone: the caps must count the calls this number already had
        _derive_phone_attempts(conn, "resolved_zones")
    finally:
        conn.unregister("resolved_zones")
    return resolved.height


def _derive_phone_attempts(conn: duckdb.DuckDBPyConnection, contacts_relation: str | None) -> None:
    """Rewrite `phone_attempts` of the contacts in `contacts_relation` (every contact when None) from `calls`.

    Rows of calls that no longer exist (a deleted campaign's: the person was called all the same) cannot be
    derived again: they stay while the contact still holds the number they rang, and go with a changed phone.
    """
    # the relation name is one of this module's registered frames, never user input
    scope = f"where contact_id in (select contact_id from {contacts_relation})" if contacts_relation else ""
    conn.execute(
        f"""
        delete from phone_attempts a {scope or "where true"}
          and not (a.phone_e164 = (select k.phone_e164 from contacts k where k.contact_id = a.contact_id)
                   and a.call_id not in (select call_id from calls))
        """
    )
    conn.execute(
        f"""
        insert into phone_attempts (contact_id, call_id, attempted_at, phone_e164)
        -- dated when the phone rang (the claim dates its attempts the batch's deadline, a bound of that moment)
        select k.contact_id, c.call_id, coalesce(c.registered_at, c.started_at, c.queued_at), c.phone_e164
        from calls c join (select contact_id, phone_e164 from contacts {scope}) k on k.phone_e164 = c.phone_e164
        where c.counts_as_attempt
        order by c.call_id
        """
    )


def rebuild_phone_attempts(conn: duckdb.DuckDBPyConnection, contact_ids: list[int] | None = None) -> None:
    """Re-derive the rolling-cap attempts (`phone_attempts`) from `calls`, for some contacts or all.

    For calls written outside the claim (imports of history, tests) and for repair; inside a transaction.
    """
    if contact_ids is None:
        _derive_phone_attempts(conn, None)
        return
    conn.register("attempt_contacts", pl.DataFrame({"contact_id": contact_ids}, schema={"contact_id": pl.Int64}))
    try:
        _derive_phone_attempts(conn, "attempt_contacts")
    finally:
        conn.unregister("attempt_contacts")


def prune_phone_attempts(conn: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Forget attempts older than the longest cap window (30 days, plus a day for clock skew)."""
    # attempts are appended in time order, so DuckDB skips every row group newer than the cut-off
    conn.execute("delete from phone_attempts where attempted_at < ?", [now - timedelta(days=31)])


def set_contact_zone(conn: duckdb.DuckDBPyConnection, contact_id: int, now: datetime, *,
                     time_zone: str | None = None, subdivision: str | None = None) -> None:
    """Override a contact's calling time zone and/or subdivision by hand ('' clears an override)."""
    if not conn.execute("select 1 from contacts where contact_id = ?", [contact_id]).fetchone():
        raise NotFoundError(f"contact {contact_id} does not exist")
    sets: dict[str, str | None] = {}
    if time_zone is not None:
        if time_zone.strip() and not _valid_zone(time_zone):
            raise ValidationError("time_zone", f"unknown IANA time zone {time_zone!r} (e.g. America/New_York)")
        sets["time_zone_override"] = time_zone.strip() or None
    if subdivision is not None:
        sets["subdivision_override"] = subdivision.strip().upper() or None
    if not sets:
        raise UserError("give --time-zone and/or --state")
    assignments = ", ".join(f"{column} = ?" for column in sets)  # column names from the fixed keys above
    conn.execute(f"update contacts set {assignments}, updated_at = ?, zone_resolved_at = null where contact_id = ?",
                 [*sets.values(), now, contact_id])
    resolve_zones(conn)


# ---------------------------------------------------------------- do-not-call


_TRUNK_ZERO = re.compile(r"^(\+\s*(\d{1,3}))[\s.-]*\(\s*0\s*\)")


def _trunk_prefix_is_zero(country_code: str) -> bool:
    regions = pn.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code), ())
    metadata = pn.PhoneMetadata.metadata_for_region(regions[0]) if regions else None
    return metadata is not None and metadata.national_prefix == "0"


def normalise_dnc_pattern(text: str, default_region: str | None = None) -> tuple[str, str, bool]:
    """(pattern, prefix, is_prefix) of an entry: an exact number in any format, or a `+1305*` wildcard."""
    raw = (text or "").strip()
    if not raw:
        raise ValidationError("number", "is empty")
    if raw.endswith("*"):
        # "+44 (0)7*": the (0) is the trunk digit dialled only inside the country, never part of a number in
        # E.164 (as phonenumbers reads an exact number); kept where it is no trunk prefix ("+39 (0)6*", Italy)
        body = _TRUNK_ZERO.sub(lambda m: m.group(1) if _trunk_prefix_is_zero(m.group(2)) else m.group(0), raw[:-1])
        digits = re.sub(r"[\s().-]", "", body)
        if not re.fullmatch(r"\+\d{1,14}", digits):
            raise ValidationError("number", f"{text!r}: a wildcard is '+' and digits then '*', e.g. +1305*")
        return f"{digits}*", digits, True
    from tasks.phones import normalise_phone

    e164, _type, _region, _zones, reason = normalise_phone(raw, default_region)
    if e164 is None:
        raise ValidationError("number", f"{text!r}: {reason}")
    return e164, e164, False


def _check_campaign(conn: duckdb.DuckDBPyConnection, campaign_id: int | None) -> None:
    if campaign_id is not None and not conn.execute(
            "select 1 from campaigns where campaign_id = ?", [campaign_id]).fetchone():
        raise NotFoundError(f"campaign {campaign_id} does not exist")


def add_dnc(conn: duckdb.DuckDBPyConnection, numbers: Iterable[str], now: datetime, *,
            campaign_id: int | None = None, reason: str | None = None, source: str = "cli",
            default_region: str | None = None) -> int:
    """Add numbers or wildcards to the global (campaign_id None) or a campaign's list; returns how many were new.

    Every entry is checked first: one bad entry writes nothing.
    """
    _check_campaign(conn, campaign_id)
    entries = {}
    for index, number in enumerate(numbers, start=1):
        try:
            pattern, prefix, is_prefix = normalise_dnc_pattern(number, default_region)
        except ValidationError as error:
            raise ValidationError(f"entry {index}", error.rule) from None
        entries[(prefix, is_prefix)] = pattern
    if not entries:
        return 0
    frame = pl.DataFrame(
        [(pattern, prefix, is_prefix) for (prefix, is_prefix), pattern in entries.items()],
        schema={"pattern": pl.String, "prefix": pl.String, "is_prefix": pl.Boolean}, orient="row")
    conn.register("dnc_new", frame)
    try:
        return conn.execute(
            """
            insert into do_not_call (pattern, prefix, is_prefix, campaign_id, reason, source, added_at)
            select n.pattern, n.prefix, n.is_prefix, $campaign_id, $reason, $source, $now
            from dnc_new n
            where not exists (
                select 1 from do_not_call d
                where d.prefix = n.prefix and d.is_prefix = n.is_prefix
                  and d.campaign_id is not distinct from $campaign_id
            )
            """,
            {"campaign_id": campaign_id, "reason": reason, "source": source, "now": now},
        ).fetchone()[0]
    finally:
        conn.unregister("dnc_new")


def remove_dnc(conn: duckdb.DuckDBPyConnection, number: str, *, campaign_id: int | None = None,
               default_region: str | None = None) -> int:
    """Remove one entry (exact number or wildcard) from the global or a campaign's list; returns rows removed."""
    _pattern, prefix, is_prefix = normalise_dnc_pattern(number, default_region)
    return conn.execute(
        "delete from do_not_call where prefix = ? and is_prefix = ? and campaign_id is not distinct from ?",
        [prefix, is_prefix, campaign_id],
    ).fetchone()[0]


# Headers (folded as the contact import folds them) of a do-not-call file's number columns, beside the
# contact import's phone synonyms ("Phone Number", "Mobile", "Teléfono"...).
_DNC_HEADER_KEYS = frozenset({"pattern", "phonee164", "e164", "donotcall", "dnc"})
_DNC_REASON_KEY = "reason"  # the column of each row's reason ("Reason", "REASON")
# A cell written as a phone number or wildcard, valid or not: digits (at least 5) and the marks numbers are
# written with. No header reads so.
_NUMBER_LIKE = re.compile(r"\+?[\d\s().\-/]+\*?")


def _is_dnc_entry(text: str | None, default_region: str | None) -> bool:
    """Whether a cell is a number or wildcard a do-not-call list can hold."""
    try:
        normalise_dnc_pattern(text, default_region)
    except ValidationError:
        return False
    return True


def _holds_number(text: str | None, default_region: str | None) -> bool:
    """Whether a cell is a number or wildcard, or is written as one (a national number without a country to
    read it in, a number too short): a first record holding one is data, never a header."""
    raw = (text or "").strip()
    if _NUMBER_LIKE.fullmatch(raw) and sum(c.isdigit() for c in raw) >= 5:
        return True
    return _is_dnc_entry(raw, default_region)


def _first_record(columns: list[str]) -> list[str | None]:
    """The cells of the record `read_contacts_file` took for the header, from the names it gave them."""
    cells = []
    for position, name in enumerate(columns, start=1):
        repeat = re.fullmatch(r"(.*) \(\d+\)", name)  # a repeated cell was named "+14155550100 (2)"
        if repeat and repeat.group(1) in columns[:position - 1]:
            name = repeat.group(1)
        cells.append(None if name == f"column_{position}" else name)  # a blank cell was named column_N
    return cells


def _read_dnc_frame(path: Path, default_region: str | None, sheet: str | None = None) -> pl.DataFrame:
    """A do-not-call file as `read_contacts_file` reads it (first record as the header); a file of that
    one record is read when the record holds a number (a list of one number), refused otherwise."""
    from tasks.contacts_import import read_contacts_file

    frame = read_contacts_file(path, sheet, lone_row=True)
    # (blank records above the first one stay in the frame: they keep the rows' positions)
    lone = all(not (v and v.strip()) for values in frame.iter_rows() for v in values)
    if lone and not any(cell is not None and _holds_number(cell, default_region) for cell in _first_record(frame.columns)):
        raise UserError(f"{path.name}: the file has a header row but no data rows")
    return frame


def _number_columns(frame: pl.DataFrame, first: list[str | None], default_region: str | None) -> list[str]:
    """A headerless file's columns of numbers: those where at least half of the filled cells, its first
    record's included, are numbers or wildcards (so a typo is reported, not its column left out); if
    none is, those whose first cell is one or is written as one (a national number without --country)."""
    if frame.width == 1:
        return frame.columns
    held = []
    for column, cell in zip(frame.columns, first):
        filled = [v for v in (cell, *frame[column]) if v is not None and v.strip()]
        if filled and 2 * sum(_is_dnc_entry(v, default_region) for v in filled) >= len(filled):
            held.append(column)
    return held or [c for c, cell in zip(frame.columns, first) if cell is not None and _holds_number(cell, default_region)]


def _read_dnc_entries(path: str | Path, default_region: str | None = None,
                      sheet: str | None = None) -> list[tuple[int, str, str, str | None]]:
    """`read_dnc_rows`, each entry with its row's reason (the `Reason` column's cell, None without one)."""
    from schemas.contact_import import HEADER_SYNONYMS, PHONE, header_key
    from tasks.contacts_import import extra_field_rejects

    frame = _read_dnc_frame(Path(path), default_region, sheet)
    if frame.width == 0:
        raise UserError(f"{path}: no columns")
    extra = extra_field_rejects(frame)
    if extra is not None and extra.height:
        row, column, value = extra.row(0)[:3]
        raise UserError(f"{path} row {row}, {column}: {value!r} lies past the header's {frame.width} column(s), so it"
                        " would be left out; give that column a header, or quote a value that holds the delimiter")

    # a repeated header is read as "phone (2)" (contacts_import._name_headers): every copy is a column of numbers
    keys = {c: header_key(re.sub(r" \(\d+\)$", "", c)) for c in frame.columns}
    columns = [c for c in frame.columns if keys[c] in _DNC_HEADER_KEYS or HEADER_SYNONYMS.get(keys[c]) == PHONE]
    first = _first_record(frame.columns)
    # a first record holding a number (or written as one: 6025550116 without --country) is data, not a header
    headerless = not columns and any(cell is not None and _holds_number(cell, default_region) for cell in first)
    reason_column = None if headerless else next((c for c in frame.columns if keys[c] == _DNC_REASON_KEY), None)
    if headerless:
        columns = _number_columns(frame, first, default_region)
    columns = columns or [next((c for c in frame.columns if c != reason_column), frame.columns[0])]
    names = {c: str(frame.columns.index(c) + 1) if headerless else c for c in columns}
    entries: list[tuple[int, str, str, str | None]] = []
    if headerless:
        # read_contacts_file took the first non-blank record for the header: it is the first entry
        leading_blank = next((i for i, values in enumerate(frame.iter_rows()) if any(v and v.strip() for v in values)),
                             frame.height)
        entries += [(leading_blank + 1, names[c], cell, None) for c, cell in zip(frame.columns, first)
                    if c in names and cell is not None]
    reasons = frame[reason_column] if reason_column is not None else [None] * frame.height
    # read_contacts_file keeps blank records, so the position gives the file's row (header = row 1)
    for index, (values, reason) in enumerate(zip(frame.select(columns).iter_rows(), reasons), start=2):
        entries += [(index, names[c], v, reason) for c, v in zip(columns, values) if v is not None and v.strip()]
    return entries


def read_dnc_rows(path: str | Path, default_region: str | None = None,
                  sheet: str | None = None) -> list[tuple[int, str, str]]:
    """A do-not-call file's non-blank entries as (row as the user sees it, column, value), CSV or XLSX
    (`sheet`: an XLSX sheet's name, default the first).

    The numbers are in every column whose header names a phone (`phone`, `number`, `Mobile`,
    `pattern`...), else in the first column (not a `Reason` column: `_read_dnc_entries` reads it). A
    file whose first record holds a number or wildcard, or a cell written as one (a national number
    with no country to read it in), has no header: that record is an entry too (a CSV of one number is
    one entry), its columns are numbered from 1, and the numbers are in every column that holds them,
    judged over all its rows (`_number_columns`). A record with more fields than the first is refused:
    the number past them would be left out.
    """
    return [(row, column, value) for row, column, value, _reason in _read_dnc_entries(path, default_region, sheet)]


def import_dnc_counts(conn: duckdb.DuckDBPyConnection, path: str | Path, now: datetime, *,
                      campaign_id: int | None = None, reason: str | None = None, default_region: str | None = None,
                      sheet: str | None = None) -> dict[str, int]:
    """Add every number of a file to a list (all or nothing; a bad row names its row and column): each with its
    row's `Reason` cell, else `reason`. Returns {"added": new entries, "already_listed": entries the list held}
    (a number the file holds twice is one entry: its first row's reason is kept)."""
    _check_campaign(conn, campaign_id)
    chosen: dict[tuple[str, bool], tuple[str, str | None]] = {}  # (prefix, is_prefix) -> (pattern, reason)
    for row, column, value, own in _read_dnc_entries(path, default_region, sheet):
        try:
            pattern, prefix, is_prefix = normalise_dnc_pattern(value, default_region)
        except ValidationError as error:
            raise UserError(f"{path} row {row}, column {column}: {error.rule}") from None
        chosen.setdefault((prefix, is_prefix), (pattern, (own or "").strip() or reason))
    by_reason: dict[str | None, list[str]] = {}
    for pattern, why in chosen.values():
        by_reason.setdefault(why, []).append(pattern)
    added = sum(add_dnc(conn, patterns, now, campaign_id=campaign_id, reason=why, source="import",
                        default_region=default_region) for why, patterns in by_reason.items())
    return {"added": added, "already_listed": len(chosen) - added}


def import_dnc(conn: duckdb.DuckDBPyConnection, path: str | Path, now: datetime, *, campaign_id: int | None = None,
               reason: str | None = None, default_region: str | None = None, sheet: str | None = None) -> int:
    """`import_dnc_counts`, returning how many entries were new."""
    return import_dnc_counts(conn, path, now, campaign_id=campaign_id, reason=reason, default_region=default_region,
                             sheet=sheet)["added"]


def list_dnc(conn: duckdb.DuckDBPyConnection, campaign_id: int | None = None, *, all_lists: bool = False) -> list[dict]:
    """Entries of the global list (default), of a campaign's own list, or of every list."""
    cursor = conn.execute(
        """
        select dnc_id, pattern, campaign_id, reason, source, added_at from do_not_call
        where $all or campaign_id is not distinct from $campaign_id
        order by added_at, dnc_id
        """,
        {"all": all_lists, "campaign_id": campaign_id},
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def listed_numbers(conn: duckdb.DuckDBPyConnection, campaign_id: int, numbers: list[str]) -> set[str]:
    """Which of these E.164 numbers the global list or the campaign's own list holds (exactly or by a wildcard).

    For a check just before dialing: a real-time batch places its calls over up to 25 minutes after its claim.
    """
    if not numbers:
        return set()
    return {row[0] for row in conn.execute(
        """
        select distinct n.phone from (select unnest($numbers::varchar[]) as phone) n
        join do_not_call d on (d.campaign_id is null or d.campaign_id = $campaign_id)
          and (case when d.is_prefix then starts_with(n.phone, d.prefix) else n.phone = d.prefix end)
        """,
        {"numbers": numbers, "campaign_id": campaign_id},
    ).fetchall()}


def dnc_from_analysis(conn: duckdb.DuckDBPyConnection, call_ids: list[int], now: datetime, key: str) -> int:
    """Put on the global list the numbers of these calls whose custom analysis says `key` is true.

    Call inside the transaction that stored the analysis, so the next claim already sees it.
    """
    if not call_ids:
        return 0
    return conn.execute(
        """
        insert into do_not_call (pattern, prefix, is_prefix, campaign_id, reason, source, added_at)
        select phone_e164, phone_e164, false, null, 'asked not to be called (call ' || min(call_id) || ')',
               'call_analysis', $now
        from calls
        where call_id between $low and $high and list_contains($ids, call_id)
          and lower(custom_analysis->>$path) in ('true', '1', 'yes')
          and not exists (select 1 from do_not_call d where d.prefix = calls.phone_e164 and not d.is_prefix
                          and d.campaign_id is null)
        group by phone_e164
        """,
        {"now": now, "low": min(call_ids), "high": max(call_ids), "ids": call_ids, "path": f"$.{_json_key(key)}"},
    ).fetchone()[0]


def _json_key(key: str) -> str:
    # a JSON path segment: quoted so any configured key name is one key, never a path expression
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- audit and display


def record_audit(conn: duckdb.DuckDBPyConnection, campaign_id: int, now: datetime, kind: str, audit: pl.DataFrame) -> int:
    """Store one claim's per-rule skip counts (frame of rule, skipped, sample_contact_ids); returns rows."""
    if audit.height == 0:
        return 0
    # a row per rule, so a few: bound values cost a third of registering the frame with DuckDB
    rows = audit.select("rule", "skipped", "sample_contact_ids").rows()
    conn.execute(
        "insert into claim_audit values " + ", ".join("(?, ?, ?, ?, ?, ?::bigint[])" for _ in rows),
        [value for rule, skipped, sample in rows for value in (now, campaign_id, kind, rule, skipped, sample)],
    )
    return audit.height


SUPPRESSED_SQL = """
with enrolled as (
    select cc.contact_id, c.phone_e164, c.zone_source, c.zone_key
    from campaign_contacts cc join contacts c using (contact_id)
    -- a finished contact (max attempts, success) is held back by nothing: it will not be dialed anyway
    where cc.campaign_id = $campaign_id and cc.finished_at is null
),
dnc as (
    select d.prefix, d.is_prefix, d.campaign_id, d.reason, d.source,
           row_number() over (order by d.added_at, d.dnc_id) as seq
    from do_not_call d where d.campaign_id is null or d.campaign_id = $campaign_id
),
matched as (
    select e.contact_id, arg_min(coalesce(d.reason, 'do-not-call list'), d.seq) as reason,
           arg_min(case when d.campaign_id is null then 'global' else 'campaign' end, d.seq) as list,
           arg_min(d.source, d.seq) as source
    from enrolled e join dnc d
      on (not d.is_prefix and e.phone_e164 = d.prefix) or (d.is_prefix and starts_with(e.phone_e164, d.prefix))
    group by e.contact_id
),
final as (
    select e.contact_id, e.phone_e164, m.contact_id is not null as do_not_call,
           m.list as dnc_list, m.reason as dnc_reason, m.source as dnc_source,
           e.zone_source is not distinct from 'unknown' as time_zone_unknown
    from enrolled e left join matched m using (contact_id)
    where m.contact_id is not null or e.zone_source = 'unknown'
)
select * from final order by contact_id
"""


def suppressed_contacts(conn: duckdb.DuckDBPyConnection, campaign_id: int) -> pl.DataFrame:
    """A campaign's unfinished contacts on a do-not-call list (with the list and reason) or with an unknown time zone."""
    return conn.execute(SUPPRESSED_SQL, {"campaign_id": campaign_id}).pl()


AUDIT_SUMMARY_SQL = """
with audits as (
    select tick_at, rule, skipped, sample_contact_ids
    from claim_audit
    where campaign_id = $campaign_id and ($since is null or tick_at >= $since)
),
per_rule as (
    select rule, count(*) as claims, sum(skipped)::bigint as skipped, max(tick_at) as last_at
    from audits group by rule
),
sampled as (
    select rule, contact_id, max(tick_at) as last_held_at
    from audits, unnest(sample_contact_ids) as held(contact_id)
    group by rule, contact_id
),
samples as (
    select rule, list(contact_id order by last_held_at desc, contact_id)[1:$samples] as sample_contact_ids
    from sampled group by rule
),
final as (
    select p.rule, p.claims, p.skipped, p.last_at, coalesce(s.sample_contact_ids, []::bigint[]) as sample_contact_ids
    from per_rule p left join samples s using (rule)
)
select * from final order by rule
"""


def audit_summary(conn: duckdb.DuckDBPyConnection, campaign_id: int, since: datetime | None = None) -> pl.DataFrame:
    """Per rule, a campaign's claims since an instant (all if None) that held contacts back: how many, the contacts
    held in total, the last time, and up to SAMPLE_SIZE of the contacts (those held most recently first)."""
    return conn.execute(
        AUDIT_SUMMARY_SQL, {"campaign_id": campaign_id, "since": since, "samples": SAMPLE_SIZE},
    ).pl()

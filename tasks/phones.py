"""Phone normalisation to E.164 with phonenumbers' rules and data.

Each distinct raw value is handled once. Values that are plainly North American become "+1…"
candidates without parsing; candidates that are geographic US numbers are then checked all at
once in Polars with the metadata's own patterns and time-zone table. Everything else (other
countries, odd formats, invalid numbers) goes through phonenumbers one value at a time, on
several processes when there are many.

phonenumbers reads letters as keypad digits ("1-800-FLOWERS"), so a label typed beside a number
("602-555-0199 (home)") made it too long: a value with such a label is read without it first, and
as typed only if that gives no valid number (a vanity number keeps its letters' digits).

"00" is the international prefix of most of the world but not of every region (011 in North America,
005/007/009 in Colombia): read in those regions, "0057 301 234 5678" became carrier 005 and +7, a
number in Russia, and "0044 20 7946 0958" was too long. A value starting with "00" is read as "+"
when that gives a number of the campaign's own country, or, when the region's reading is no number, where
00 opens the way abroad (its international prefix starts with 00: Europe, Colombia, Brazil, Australia...).
Elsewhere such a value is refused with that reason: in Japan (010 abroad) 0033 or 0041 choose a carrier for
a number in Japan, and reading them as +33 or +41 would dial France or Switzerland.

What a spreadsheet made of a number is refused with what to do about it: scientific notation that lost
digits, thousands separators, an Excel error value (#N/A). A number with an extension is its main line
(what a do-not-call entry blocks), or refused where it is to be called (`refuse_extension`).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context

import phonenumbers as pn
import polars as pl
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import NumberParseException, ValidationResult

# Output columns of normalise_phones, beside the raw value.
RESULT_SCHEMA = {
    "phone_raw": pl.String,
    "phone_e164": pl.String,
    "number_type": pl.String,
    "region": pl.String,
    "time_zones": pl.List(pl.String),
    "phone_error": pl.String,
}
# Below this many distinct values a process pool costs more (spawn + imports) than it saves.
POOL_MIN_DISTINCT = 40_000
# Regions whose national numbers are the 10-digit North American plan (country code 1).
NANP_REGIONS = frozenset(pn.COUNTRY_CODE_TO_REGION_CODE[1])
_TYPE_NAMES = {value: name for name, value in vars(pn.PhoneNumberType).items() if name.isupper()}
_POSSIBLE_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "invalid length",
    ValidationResult.INVALID_COUNTRY_CODE: "invalid country code",
}
_PARSE_REASONS = {
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_LONG: "too long",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
}

# (e164, number_type, region, time zones joined by ",", reject reason)
Result = tuple[str | None, str | None, str | None, str | None, str | None]

# Labels typed beside a number: letters in parentheses at the end ("(home)", "(cell phone)") and a
# leading "word:" ("Mobile:", "Tel.:"); letters only, so "(ext 12)" stays for phonenumbers' extension rule.
_LETTERS = r"[^\W\d_]+(?:[\s.'/-]+[^\W\d_]+)*\.?"
_TRAILING_LABEL = re.compile(rf"\s*\(\s*{_LETTERS}\s*\)\s*$")
_LEADING_LABEL = re.compile(rf"^{_LETTERS}\s*:\s*")
# A number Excel showed in scientific notation ("4.15555E+09") and a CSV export kept as shown.
_SCIENTIFIC = re.compile(r"([1-9])(?:[.,]([0-9]+))?[eE]\+?([0-9]{1,2})")
SCIENTIFIC_REASON = ("in scientific notation, which may have lost digits: format the column as text "
                     "in the spreadsheet and export it again")
# A number a spreadsheet showed with thousands separators ("16,025,550,100") and a CSV export kept as shown.
# Every digit is there, but a number format drops a leading 0 or +: refused rather than read on a guess.
_THOUSANDS = re.compile(r"\+?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
THOUSANDS_REASON = ("formatted as a number with thousands separators, which may have lost a leading 0 or +: "
                    "format the column as text in the spreadsheet and export it again")
# Excel's error values, as an .xlsx error cell is read (contacts_import.read_xlsx) and a CSV export writes them.
EXCEL_ERRORS = frozenset({"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!", "#GETTING_DATA",
                          "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!", "#PYTHON!"})
EXCEL_ERROR_REASON = "the cell holds the Excel error {}, not a number: correct it in the spreadsheet"
# phonenumbers reads an extension ("ext. 12", "x12", "#12", ",12") apart from the number, which is then the
# main line. A do-not-call entry blocks that line; a number to call with one is refused (`refuse_extension`):
# the agent cannot dial an extension, and calling the main line instead would reach someone else.
EXTENSION_REASON = "has an extension, which the agent cannot dial: remove the extension to call the main line"


def check_region(region: str | None) -> str | None:
    """The region code upper-cased, or None; a code phonenumbers does not know is refused."""
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    if code not in pn.SUPPORTED_REGIONS:
        from tasks.errors import ValidationError

        raise ValidationError("country", f"unknown country code {region!r} (use ISO 3166 alpha-2, e.g. US)")
    return code


# phonenumbers' own type check re-compiles (a cache lookup) and tries up to eleven patterns, one
# call each. Here the same patterns, in the same order and behind the same length gates, are
# compiled once per (region, length) into one alternation whose matching branch names the type.
_SPECIAL_TYPES = (
    ("premium_rate", pn.PhoneNumberType.PREMIUM_RATE), ("toll_free", pn.PhoneNumberType.TOLL_FREE),
    ("shared_cost", pn.PhoneNumberType.SHARED_COST), ("voip", pn.PhoneNumberType.VOIP),
    ("personal_number", pn.PhoneNumberType.PERSONAL_NUMBER), ("pager", pn.PhoneNumberType.PAGER),
    ("uan", pn.PhoneNumberType.UAN), ("voicemail", pn.PhoneNumberType.VOICEMAIL),
)
_FIXED, _MOBILE = "fixed_line", "mobile"
_CLASSIFIERS: dict[tuple[int, int], tuple] = {}
_LEADING: dict[int, tuple] = {}


def _usable(desc, length: int) -> str | None:
    """The desc's pattern if a number of this length may match it (phonenumbers' length gate)."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return desc.national_number_pattern


def _classifier(metadata: PhoneMetadata, length: int) -> tuple:
    key = (id(metadata), length)
    found = _CLASSIFIERS.get(key)
    if found is None:
        general = _usable(metadata.general_desc, length)
        branches = [(f"t{i}", _usable(getattr(metadata, name), length), kind) for i, (name, kind) in enumerate(_SPECIAL_TYPES)]
        branches.append((_FIXED, _usable(metadata.fixed_line, length), None))
        branches.append((_MOBILE, _usable(metadata.mobile, length), None))
        live = [(name, pattern, kind) for name, pattern, kind in branches if pattern]
        combined = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in live)) if live else None
        mobile = _usable(metadata.mobile, length)
        found = _CLASSIFIERS[key] = (
            metadata,  # kept alive so its id is never reused by another object
            re.compile(general) if general else None,
            combined,
            {name: kind for name, _, kind in live},
            re.compile(mobile) if mobile else None,
            bool(metadata.same_mobile_and_fixed_line_pattern),
        )
    return found


def number_type_for(nsn: str, metadata: PhoneMetadata) -> int:
    """The PhoneNumberType of a national significant number under a region's metadata
    (the same decision as phonenumbers' number_type, with patterns compiled once)."""
    _, general, combined, kinds, mobile, same_pattern = _classifier(metadata, len(nsn))
    if general is None or general.fullmatch(nsn) is None or combined is None:
        return pn.PhoneNumberType.UNKNOWN
    match = combined.fullmatch(nsn)
    if match is None:
        return pn.PhoneNumberType.UNKNOWN
    branch = match.lastgroup
    if branch == _FIXED:
        if same_pattern or (mobile is not None and mobile.fullmatch(nsn)):
            return pn.PhoneNumberType.FIXED_LINE_OR_MOBILE
        return pn.PhoneNumberType.FIXED_LINE
    if branch == _MOBILE:
        return pn.PhoneNumberType.UNKNOWN if same_pattern else pn.PhoneNumberType.MOBILE
    return kinds[branch]


def _leading_digits(metadata: PhoneMetadata):
    key = id(metadata)
    if key not in _LEADING:
        _LEADING[key] = (metadata, re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None)
    return _LEADING[key][1]


def region_and_type(number: pn.PhoneNumber) -> tuple[str | None, int]:
    """(region, PhoneNumberType) as region_code_for_number + number_type give, detecting the region once."""
    regions = pn.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if not regions:
        return None, pn.PhoneNumberType.UNKNOWN
    nsn = pn.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, regions[0])
        return regions[0], (number_type_for(nsn, metadata) if metadata else pn.PhoneNumberType.UNKNOWN)
    for region in regions:  # shared country codes (the NANP): first region whose numbers it fits
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        leading = _leading_digits(metadata)
        if leading is not None:
            if leading.match(nsn):
                return region, number_type_for(nsn, metadata)
            continue
        kind = number_type_for(nsn, metadata)
        if kind != pn.PhoneNumberType.UNKNOWN:
            return region, kind
    return None, pn.PhoneNumberType.UNKNOWN


def _geo_time_zones(e164: str) -> tuple[str, ...]:
    # As time_zones_for_geographical_number, from the E.164 text we already have (longest prefix wins).
    for length in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        zones = TIMEZONE_DATA.get(e164[1 : 1 + length])
        if zones is not None:
            return zones
    return ()


def describe(number: pn.PhoneNumber, e164: str | None = None) -> Result:
    """(e164, number_type, region, time_zones, None) for a valid number, else (…None, reason)."""
    region, number_type = region_and_type(number)
    if number_type == pn.PhoneNumberType.UNKNOWN:
        possible = pn.is_possible_number_with_reason(number)
        if possible in _POSSIBLE_REASONS:
            return None, None, None, None, _POSSIBLE_REASONS[possible]
        home = pn.region_code_for_country_code(number.country_code)
        where = home if home not in (None, "ZZ", "001") else f"+{number.country_code}"
        return None, None, None, None, f"not a valid number for region {where}"
    e164 = e164 or pn.format_number(number, pn.PhoneNumberFormat.E164)
    if pn.is_number_type_geographical(number_type, number.country_code):
        zones = _geo_time_zones(e164)
    else:
        zones = pn_timezone.time_zones_for_number(number)
    return e164, _TYPE_NAMES[number_type], region, ",".join(z for z in zones if z != "Etc/Unknown") or None, None


def normalise_phone(raw: str | None, default_region: str | None, refuse_extension: bool = False) -> tuple:
    """One raw phone string to (e164, number_type, region, time_zones list, reject reason)."""
    e164, number_type, region, zones, reason = _normalise_one(raw, default_region, refuse_extension)
    return e164, number_type, region, (zones.split(",") if zones else None), reason


def strip_phone_label(text: str) -> str:
    """``text`` without a label in parentheses at its end and a leading "word:" label, when a digit is
    left ("602-555-0199 (home)" -> "602-555-0199"); else ``text`` as it is ("call me (home)")."""
    if "(" not in text and ":" not in text:
        return text
    bare = _LEADING_LABEL.sub("", _TRAILING_LABEL.sub("", text), count=1)
    return bare if bare != text and any(c.isdigit() for c in bare) else text


def _normalise_one(raw: str | None, default_region: str | None, refuse_extension: bool = False) -> Result:
    text = (raw or "").strip()
    if not text:
        return None, None, None, None, "phone is empty"
    if text in EXCEL_ERRORS:  # a formula's error ("#N/A" of a failed lookup): was "not a phone number"
        return None, None, None, None, EXCEL_ERROR_REASON.format(text)
    if _THOUSANDS.fullmatch(text) is not None:  # was "not a phone number"
        return None, None, None, None, THOUSANDS_REASON
    scientific = _SCIENTIFIC.fullmatch(text)
    if scientific is not None:  # phonenumbers read the E as a keypad 3: "too long"
        lead, fraction, exponent = scientific.group(1), scientific.group(2) or "", int(scientific.group(3))
        if len(fraction) != exponent:  # "4.15555E+09": the digits past the shown ones are gone
            return None, None, None, None, SCIENTIFIC_REASON
        text = lead + fraction  # "1.4155550123E+10": every digit is shown
    bare = strip_phone_label(text)
    if bare != text:
        unlabelled = _parse_one(bare, default_region, refuse_extension)
        if unlabelled[4] is None:
            return unlabelled
        as_typed = _parse_one(text, default_region, refuse_extension)  # "1 800 (FLOWERS)": the letters were the number
        return as_typed if as_typed[4] is None else unlabelled
    return _parse_one(text, default_region, refuse_extension)


def _parse_one(text: str, default_region: str | None, refuse_extension: bool = False) -> Result:
    in_region = _parse_in_region(text, default_region, refuse_extension)
    rest = text.lstrip()
    if not rest.startswith("00"):
        return in_region
    international = _parse_in_region("+" + rest[2:].lstrip(), None, refuse_extension)
    if default_region is None:
        return international
    own_code = f"+{pn.country_code_for_region(default_region)}"
    if international[4] is None and international[0].startswith(own_code):
        # "0057 301 234 5678" in Colombia: its own country code after 00, not carrier 005 and +7
        return international
    if in_region[4] is None or international[4] is not None:
        return in_region
    # Unreadable in the region, a foreign number read with "+": only where 00 opens the way abroad. Elsewhere
    # 00 may mean something else (Japan's 0033 or 0041 choose a carrier for a number in Japan): refused, never
    # dialed abroad on a guess.
    prefix = _international_prefix(default_region)
    if prefix is None or prefix.startswith("00"):
        return international
    return None, None, None, None, (f"starts with 00, which is not how {default_region} dials abroad ({prefix}):"
                                    f" write it with + and the country code")


@lru_cache(maxsize=None)
def _international_prefix(region: str) -> str | None:
    """The region's international dialling prefix as phonenumbers writes it (a pattern: "011", "00(?:...)")."""
    metadata = pn.PhoneMetadata.metadata_for_region(region)
    return None if metadata is None else (metadata.preferred_international_prefix or metadata.international_prefix)


def _parse_in_region(text: str, default_region: str | None, refuse_extension: bool = False) -> Result:
    try:
        number = pn.parse(text, default_region)
    except NumberParseException as error:
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if default_region is None and not text.lstrip().startswith(("+", "00")):
                return None, None, None, None, "missing country code and no default country"
            return None, None, None, None, "invalid country code"
        return None, None, None, None, _PARSE_REASONS.get(error.error_type, "not a phone number")
    if refuse_extension and number.extension:
        return None, None, None, None, EXTENSION_REASON
    return describe(number)


def _nanp(e164: str) -> Result:
    # `e164` is "+1" and ten digits (built by the vectorised fast path): no parse needed.
    return describe(pn.PhoneNumber(country_code=1, national_number=int(e164[2:])), e164)


Columns = tuple[list, list, list, list, list]


def _columns(results: list[Result]) -> Columns:
    return tuple(map(list, zip(*results))) if results else ([], [], [], [], [])  # type: ignore[return-value]


def _normalise_chunk(args: tuple[list[str], list[str], str | None, bool]) -> tuple[Columns, Columns]:
    """Worker entry: (columns for the NANP candidates, columns for the raw values), each value once.
    Columns (five lists) pickle much faster than one tuple per value."""
    nanp, raw, default_region, refuse_extension = args
    described = [_normalise_one(v, default_region, refuse_extension) for v in raw]
    return _columns([_nanp(v) for v in nanp]), _columns(described)


def _candidates(values: pl.Series, default_region: str | None) -> pl.Series:
    """A "+1NXXNXXXXXX" candidate where the raw value is plainly a North American number, else null."""
    text = values.str.strip_chars()
    digits = text.str.replace_all(r"\D", "")
    # [0-9], not \d: Polars' \d is any script's digit, and "415٥٥٥٠١٢٣" became "+1415٥٥٥٠١٢٣" as if E.164
    frame = pl.DataFrame({"plain": text.str.contains(r"^\+?[0-9\s().\-/]+$"), "digits": digits, "intl": text.str.starts_with("+")})
    nanp_digits = pl.col("digits").str.contains(r"^1?[2-9][0-9]{9}$")
    national_ok = default_region in NANP_REGIONS
    return frame.select(
        # "+1 602 555 0199": international and North American.
        pl.when(pl.col("plain") & pl.col("intl") & (pl.col("digits").str.len_chars() == 11) & nanp_digits)
        .then(pl.lit("+") + pl.col("digits"))
        # "(602) 555-0199" or "1-602-555-0199" in a NANP campaign: national, "1" is the national prefix.
        .when(pl.lit(national_ok) & pl.col("plain") & ~pl.col("intl") & nanp_digits)
        .then(pl.lit("+1") + pl.col("digits").str.slice(-10))
        .otherwise(None)
        .alias("candidate")
    ).to_series()


_US_RULES: tuple | None = None


def _us_rules() -> tuple | None:
    """(ordered [(pattern, type)], zones table) for the vectorised US check, or None when the
    metadata is not shaped as assumed (the US first among +1 regions, no leading-digits rule)."""
    global _US_RULES
    if _US_RULES is None:
        regions = pn.COUNTRY_CODE_TO_REGION_CODE[1]
        metadata = PhoneMetadata.metadata_for_region("US")
        if regions[0] != "US" or metadata is None or metadata.leading_digits is not None:
            _US_RULES = ((),)
            return None
        general = _usable(metadata.general_desc, 10)
        # The order number_type_for (and phonenumbers) tries the types in.
        ordered = [(_usable(getattr(metadata, name), 10), kind) for name, kind in _SPECIAL_TYPES]
        fixed_kind = pn.PhoneNumberType.FIXED_LINE_OR_MOBILE
        same = bool(metadata.same_mobile_and_fixed_line_pattern)
        fixed, mobile = _usable(metadata.fixed_line, 10), _usable(metadata.mobile, 10)
        keys = [k for k in TIMEZONE_DATA if k.startswith("1") and len(k) <= TIMEZONE_LONGEST_PREFIX]
        zones = pl.DataFrame(
            {"prefix": keys, "zones": [",".join(z for z in TIMEZONE_DATA[k] if z != "Etc/Unknown") or None for k in keys]},
            schema={"prefix": pl.String, "zones": pl.String},
        )
        _US_RULES = (general, [(p, k) for p, k in ordered if p], fixed, mobile, same, fixed_kind, zones)
    return None if len(_US_RULES) == 1 else _US_RULES


def _us_vectorised(candidates: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """Valid geographic US numbers among "+1XXXXXXXXXX" candidates, decided in Polars with the
    metadata's own patterns (same order as number_type_for); the rest is returned for the
    per-number path (other +1 regions, invalid numbers, toll-free and other non-geographic types)."""
    rules = _us_rules()
    empty = pl.DataFrame(schema={"key": pl.String, **dict.fromkeys(list(RESULT_SCHEMA)[1:], pl.String)})
    if rules is None or not candidates:
        return empty, candidates
    general, ordered, fixed, mobile, same, _, zones = rules
    frame = pl.DataFrame({"key": candidates}, schema={"key": pl.String}).with_columns(pl.col("key").str.slice(2).alias("nsn"))

    def full(pattern: str) -> pl.Expr:
        return pl.col("nsn").str.contains(f"^(?:{pattern})$")

    unknown = pl.lit(pn.PhoneNumberType.UNKNOWN)
    kind = pl.when(~full(general)).then(unknown) if general else pl.when(pl.lit(True)).then(unknown)
    for pattern, special in ordered:
        kind = kind.when(full(pattern)).then(pl.lit(special))
    if fixed:
        both = pl.lit(True) if same else (full(mobile) if mobile else pl.lit(False))
        kind = kind.when(full(fixed)).then(
            pl.when(both).then(pl.lit(pn.PhoneNumberType.FIXED_LINE_OR_MOBILE)).otherwise(pl.lit(pn.PhoneNumberType.FIXED_LINE))
        )
    if mobile and not same:
        kind = kind.when(full(mobile)).then(pl.lit(pn.PhoneNumberType.MOBILE))
    frame = frame.with_columns(kind.otherwise(unknown).alias("kind"))
    geographic = [k for k in _TYPE_NAMES if k != pn.PhoneNumberType.UNKNOWN and pn.is_number_type_geographical(k, 1)]
    done = frame.filter(pl.col("kind").is_in(geographic))
    rest = frame.filter(~pl.col("kind").is_in(geographic))["key"].to_list()
    # Time zones: the longest prefix (of the digits after "+") present in phonenumbers' table wins.
    lengths = sorted(set(zones["prefix"].str.len_chars().to_list()), reverse=True)
    found = [f"z{n}" for n in lengths]
    for n in lengths:
        table = zones.filter(pl.col("prefix").str.len_chars() == n).rename({"prefix": f"p{n}", "zones": f"z{n}"})
        done = done.with_columns(pl.col("key").str.slice(1, n).alias(f"p{n}")).join(table, on=f"p{n}", how="left")
    names = pl.DataFrame({"kind": list(_TYPE_NAMES), "number_type": list(_TYPE_NAMES.values())}, schema_overrides={"kind": pl.Int32})
    done = done.with_columns(pl.col("kind").cast(pl.Int32)).join(names, on="kind", how="left")
    resolved = done.select(
        "key",
        pl.col("key").alias("phone_e164"),
        "number_type",
        pl.lit("US").alias("region"),
        pl.coalesce(found).alias("time_zones") if found else pl.lit(None, dtype=pl.String).alias("time_zones"),
        pl.lit(None, dtype=pl.String).alias("phone_error"),
    )
    return resolved, rest


def _split(values: list[str], parts: int) -> list[list[str]]:
    size = -(-len(values) // parts)
    return [values[i * size : (i + 1) * size] for i in range(parts)]


def _run(nanp: list[str], raw: list[str], default_region: str | None, workers: int,
         refuse_extension: bool = False) -> Columns:
    """Five result columns for nanp + raw, in that order; several processes for large inputs."""
    if workers <= 1 or len(nanp) + len(raw) < POOL_MIN_DISTINCT:
        parts = [_normalise_chunk((nanp, raw, default_region, refuse_extension))]
    else:
        jobs = list(zip(_split(nanp, workers), _split(raw, workers), [default_region] * workers,
                        [refuse_extension] * workers))
        # This process works on the first share while workers-1 spawned processes do the rest.
        # Spawned, not forked: forking a process that runs Polars threads can deadlock.
        with ProcessPoolExecutor(max_workers=workers - 1, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_normalise_chunk, job) for job in jobs[1:]]
            parts = [_normalise_chunk(jobs[0])] + [future.result() for future in futures]
    return tuple(
        [value for part in parts for value in part[0][c]] + [value for part in parts for value in part[1][c]]
        for c in range(5)
    )  # type: ignore[return-value]


def normalise_phones(raw: pl.Series, default_region: str | None, workers: int | None = None,
                     refuse_extension: bool = False) -> pl.DataFrame:
    """Each distinct raw phone of ``raw`` normalised once: one row per distinct value (RESULT_SCHEMA).

    Values that are plainly North American (``+1 602 555 0199``, or 10/11 digits when the
    default region is in the NANP) skip the parser and are validated per distinct E.164 (US ones
    vectorised); all others go through ``phonenumbers.parse`` with ``default_region``. A number with
    an extension is its main line, or refused with EXTENSION_REASON when ``refuse_extension``.
    """
    region = check_region(default_region)
    distinct = raw.cast(pl.String).unique().drop_nulls().rename("phone_raw")
    candidate = _candidates(distinct, region)
    frame = pl.DataFrame({"phone_raw": distinct, "candidate": candidate})
    fast = frame.filter(pl.col("candidate").is_not_null())
    slow = frame.filter(pl.col("candidate").is_null())["phone_raw"].to_list()
    us, nanp = _us_vectorised(fast["candidate"].unique().to_list())
    columns = _run(nanp, slow, region, workers if workers is not None else (os.cpu_count() or 1), refuse_extension)
    described = pl.concat([
        us,
        pl.DataFrame(
            {"key": nanp + slow, **dict(zip(list(RESULT_SCHEMA)[1:], columns))},
            schema={"key": pl.String, **dict.fromkeys(list(RESULT_SCHEMA)[1:], pl.String)},
        ),
    ]).with_columns(pl.col("time_zones").str.split(","))
    keyed = frame.select("phone_raw", pl.coalesce("candidate", "phone_raw").alias("key"))
    out = keyed.join(described, on="key", how="left").drop("key")
    if raw.null_count():
        out = pl.concat([out, pl.DataFrame({"phone_raw": [None], "phone_error": ["phone is empty"]}, schema_overrides={"phone_raw": pl.String})], how="diagonal_relaxed")
    return out.select(RESULT_SCHEMA.keys()).cast(RESULT_SCHEMA)

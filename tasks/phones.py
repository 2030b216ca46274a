"""Phone normalisation to E.164 with phonenumbers: one parse per distinct value, a vectorised fast
path for North American numbers, and a process pool for files with many distinct numbers."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import phonenumbers as pn
import polars as pl
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import NumberParseException, ValidationResult, _number_type_helper

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

Result = tuple[str | None, str | None, str | None, list[str] | None, str | None]


def check_region(region: str | None) -> str | None:
    """The region code upper-cased, or None; a code phonenumbers does not know is refused."""
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    if code not in pn.SUPPORTED_REGIONS:
        from tasks.errors import ValidationError

        raise ValidationError("country", f"unknown country code {region!r} (use ISO 3166 alpha-2, e.g. US)")
    return code


_TZ_CACHE: dict[str, tuple[str, ...]] = {}


def _geo_time_zones(number: pn.PhoneNumber, e164: str) -> tuple[str, ...]:
    # Time zone data is keyed by at most the first 9 digits of the E.164 number, so those digits
    # decide the answer and repeated area code + exchange pairs are looked up once.
    prefix = e164[1:10]
    zones = _TZ_CACHE.get(prefix)
    if zones is None:
        zones = _TZ_CACHE[prefix] = tuple(pn_timezone.time_zones_for_geographical_number(number))
    return zones


def describe(number: pn.PhoneNumber, default_region: str | None) -> Result:
    """(e164, number_type, region, time_zones, None) for a valid number, else (…None, reason)."""
    # number_type() and region_code_for_number() each re-detect the region (the costly regex
    # matching): detect it once and classify with the region's metadata, as number_type() does.
    region = pn.region_code_for_number(number)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, region) if region else None
    if metadata is None:
        number_type = pn.PhoneNumberType.UNKNOWN
    else:
        number_type = _number_type_helper(pn.national_significant_number(number), metadata)
    if number_type == pn.PhoneNumberType.UNKNOWN:
        possible = pn.is_possible_number_with_reason(number)
        if possible in _POSSIBLE_REASONS:
            return None, None, None, None, _POSSIBLE_REASONS[possible]
        home = pn.region_code_for_country_code(number.country_code)
        where = home if home not in (None, "ZZ", "001") else f"+{number.country_code}"
        return None, None, None, None, f"not a valid number for region {where}"
    e164 = pn.format_number(number, pn.PhoneNumberFormat.E164)
    if pn.is_number_type_geographical(number_type, number.country_code):
        zones = list(_geo_time_zones(number, e164))
    else:
        zones = list(pn_timezone.time_zones_for_number(number))
    zones = [z for z in zones if z != "Etc/Unknown"] or None
    return e164, _TYPE_NAMES[number_type], region, zones, None


def normalise_phone(raw: str | None, default_region: str | None) -> Result:
    """One raw phone string to (e164, number_type, region, time_zones, reject reason)."""
    text = (raw or "").strip()
    if not text:
        return None, None, None, None, "phone is empty"
    try:
        number = pn.parse(text, default_region)
    except NumberParseException as error:
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if default_region is None and not text.lstrip().startswith(("+", "00")):
                return None, None, None, None, "missing country code and no default country"
            return None, None, None, None, "invalid country code"
        return None, None, None, None, _PARSE_REASONS.get(error.error_type, "not a phone number")
    return describe(number, default_region)


def _nanp(e164: str) -> Result:
    # `e164` is "+1" and ten digits (built by the vectorised fast path): no parse needed.
    return describe(pn.PhoneNumber(country_code=1, national_number=int(e164[2:])), "US")


def _normalise_chunk(args: tuple[list[str], list[str], str | None]) -> list[Result]:
    """Worker entry: NANP candidates, then raw values, each normalised once."""
    nanp, raw, default_region = args
    return [_nanp(v) for v in nanp] + [normalise_phone(v, default_region) for v in raw]


def _candidates(values: pl.Series, default_region: str | None) -> pl.Series:
    """A "+1NXXNXXXXXX" candidate where the raw value is plainly a North American number, else null."""
    text = values.str.strip_chars()
    digits = text.str.replace_all(r"\D", "")
    frame = pl.DataFrame({"plain": text.str.contains(r"^\+?[\d\s().\-/]+$"), "digits": digits, "intl": text.str.starts_with("+")})
    nanp_digits = pl.col("digits").str.contains(r"^1?[2-9]\d{9}$")
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


def _run(nanp: list[str], raw: list[str], default_region: str | None, workers: int) -> list[Result]:
    if workers <= 1 or len(nanp) + len(raw) < POOL_MIN_DISTINCT:
        return _normalise_chunk((nanp, raw, default_region))
    # Spawned (not forked) workers: forking a process that runs Polars threads can deadlock.
    chunks = workers * 4
    jobs = [
        (nanp[i::chunks], raw[i::chunks], default_region) for i in range(chunks)
    ]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_normalise_chunk, jobs))
    # Re-interleave the strided chunks back into the input order.
    out_nanp: list[Result] = [None] * len(nanp)  # type: ignore[list-item]
    out_raw: list[Result] = [None] * len(raw)  # type: ignore[list-item]
    for i, part in enumerate(parts):
        n = len(nanp[i::chunks])
        out_nanp[i::chunks] = part[:n]
        out_raw[i::chunks] = part[n:]
    return out_nanp + out_raw


def normalise_phones(raw: pl.Series, default_region: str | None, workers: int | None = None) -> pl.DataFrame:
    """Each distinct raw phone of ``raw`` normalised once: one row per distinct value (RESULT_SCHEMA).

    Values that are plainly North American (``+1 602 555 0199``, or 10/11 digits when the
    default region is in the NANP) skip the parser and are validated per distinct E.164; all
    others go through ``phonenumbers.parse`` with ``default_region``.
    """
    region = check_region(default_region)
    distinct = raw.cast(pl.String).unique().drop_nulls().rename("phone_raw")
    candidate = _candidates(distinct, region)
    frame = pl.DataFrame({"phone_raw": distinct, "candidate": candidate})
    fast = frame.filter(pl.col("candidate").is_not_null())
    slow = frame.filter(pl.col("candidate").is_null())["phone_raw"].to_list()
    nanp = fast["candidate"].unique().to_list()
    results = _run(nanp, slow, region, workers if workers is not None else (os.cpu_count() or 1))
    columns = list(zip(*results)) if results else [[]] * 5
    described = pl.DataFrame(
        {"key": nanp + slow, **{name: list(col) for name, col in zip(list(RESULT_SCHEMA)[1:], columns)}},
        schema={"key": pl.String, **{k: v for k, v in RESULT_SCHEMA.items() if k != "phone_raw"}},
    )
    keyed = frame.select("phone_raw", pl.coalesce("candidate", "phone_raw").alias("key"))
    out = keyed.join(described, on="key", how="left").drop("key")
    if raw.null_count():
        out = pl.concat([out, pl.DataFrame({"phone_raw": [None], "phone_error": ["phone is empty"]}, schema_overrides={"phone_raw": pl.String})], how="diagonal_relaxed")
    return out.select(RESULT_SCHEMA.keys()).cast(RESULT_SCHEMA)

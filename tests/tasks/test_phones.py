"""Phone normalisation: E.164, number facts, reject reasons, the NANP fast path and the process pool."""

from __future__ import annotations

import phonenumbers as pn
import polars as pl
import pytest

from tasks.errors import ValidationError
from tasks.phones import check_region, normalise_phone, normalise_phones


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(602) 555-0199", "US", "+16025550199"),
        ("602.555.0199", "US", "+16025550199"),
        ("1-602-555-0199", "US", "+16025550199"),  # "1" is the national prefix
        ("+1 602 555 0199", None, "+16025550199"),  # international needs no region
        ("+52 55 1234 5678", "US", "+525512345678"),  # a foreign number in a US campaign
        ("301 234 5678", "CO", "+573012345678"),  # national in Colombia
        ("(416) 555-0123", "CA", "+14165550123"),
    ],
)
def test_valid_numbers_become_e164(raw, region, e164):
    assert normalise_phone(raw, region)[0] == e164


def test_a_valid_number_carries_type_region_and_time_zones():
    assert normalise_phone("602-555-0199", "US") == (
        "+16025550199", "FIXED_LINE_OR_MOBILE", "US", ["America/Phoenix"], None,
    )


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", "US", "phone is empty"),
        ("123", "US", "too short"),
        ("6025550199999999", "US", "too long"),
        ("call me", "US", "not a phone number"),
        ("(111) 555-0100", "US", "not a valid number for region US"),  # no area code starts with 1
        ("6025550199", None, "missing country code and no default country"),
        ("+999 1234567", None, "invalid country code"),
    ],
)
def test_rejects_carry_the_reason(raw, region, reason):
    assert normalise_phone(raw, region) == (None, None, None, None, reason)


RAW_VALUES = [
    "(602) 555-0199", "602.555.0199", "+16025550199", "1 602 555 0199", "+1 480 555 0123", "4805550123",
    "+52 55 1234 5678", "+57 301 234 5678", "(111) 555-0100", "123", "call me", "0123456789", "+1 011 555 0199",
    "602-555-0199 ext. 12", "+44 20 7946 0958",
]


@pytest.mark.parametrize("region", ["US", "MX", None])
def test_fast_path_agrees_with_phonenumbers_parse(region):
    # Every value, whichever path it takes, gets what phonenumbers.parse + is_valid_number say.
    out = normalise_phones(pl.Series(RAW_VALUES), region, workers=1)
    got = dict(zip(out["phone_raw"], out["phone_e164"]))
    for raw in RAW_VALUES:
        try:
            number = pn.parse(raw, region)
            expected = pn.format_number(number, pn.PhoneNumberFormat.E164) if pn.is_valid_number(number) else None
        except pn.NumberParseException:
            expected = None
        assert got[raw] == expected, raw


def test_each_distinct_value_is_one_output_row_and_nulls_are_empty():
    out = normalise_phones(pl.Series(["602-555-0199", "602-555-0199", None, "(602) 555-0199"]), "US", workers=1)
    assert out.height == 3
    assert out.filter(pl.col("phone_raw").is_null())["phone_error"].to_list() == ["phone is empty"]
    assert set(out["phone_e164"].drop_nulls()) == {"+16025550199"}


def test_process_pool_gives_the_same_answers(monkeypatch):
    import tasks.phones as phones

    values = pl.Series([f"(602) 555-{i:04d}" for i in range(300)] + ["+52 55 1234 5678", "123"])
    single = normalise_phones(values, "US", workers=1).sort("phone_raw")
    monkeypatch.setattr(phones, "POOL_MIN_DISTINCT", 10)  # force the pool on a small input
    pooled = normalise_phones(values, "US", workers=2).sort("phone_raw")
    assert pooled.equals(single)


@pytest.mark.parametrize(("given", "expected"), [("us", "US"), (" mx ", "MX"), (None, None), ("", None)])
def test_check_region(given, expected):
    assert check_region(given) == expected


def test_check_region_refuses_unknown_codes():
    with pytest.raises(ValidationError, match="unknown country code 'XX'"):
        check_region("XX")


def test_region_and_type_agree_with_phonenumbers_on_random_numbers():
    # The precompiled classifier must decide exactly as number_type + region_code_for_number.
    import random

    from tasks.phones import region_and_type

    rng = random.Random(5)
    checked = 0
    for country_code in (1, 52, 57, 44, 49, 34, 55, 61, 91, 800, 979):
        for _ in range(400):
            number = pn.PhoneNumber(country_code=country_code, national_number=rng.randint(10**6, 10**11))
            assert region_and_type(number) == (pn.region_code_for_number(number), pn.number_type(number)), number
            checked += 1
    assert checked == 4400


def test_region_and_type_agree_on_every_example_number_of_every_region_and_type():
    from tasks.phones import region_and_type

    examples = [
        pn.example_number_for_type(region, kind)
        for region in sorted(pn.SUPPORTED_REGIONS)
        for kind in (pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.TOLL_FREE,
                     pn.PhoneNumberType.PREMIUM_RATE, pn.PhoneNumberType.VOIP, pn.PhoneNumberType.UAN)
    ]
    examples = [n for n in examples if n is not None]
    assert len(examples) > 500
    for number in examples:
        assert region_and_type(number) == (pn.region_code_for_number(number), pn.number_type(number)), number


def test_vectorised_us_path_agrees_with_phonenumbers_on_random_north_american_numbers():
    # E.164, type, region and time zones exactly as phonenumbers gives them, whichever path decides.
    import random

    from phonenumbers import timezone as pn_timezone

    rng = random.Random(11)
    raws = [f"+1{rng.choice('23456789')}{rng.randint(0, 10**9 - 1):09d}" for _ in range(3000)]
    raws += ["+18005550199", "+19005550199", "+15235550199", "+14165550123", "+12685550123"]  # toll-free, premium, personal, CA, AG
    out = normalise_phones(pl.Series(raws), "US", workers=1)
    got = {r["phone_raw"]: r for r in out.iter_rows(named=True)}
    valid = 0
    for raw in raws:
        number = pn.parse(raw, None)
        row = got[raw]
        if not pn.is_valid_number(number):
            assert row["phone_e164"] is None and row["phone_error"], raw
            continue
        valid += 1
        zones = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"] or None
        kind = {v: k for k, v in vars(pn.PhoneNumberType).items() if k.isupper()}[pn.number_type(number)]
        assert (row["phone_e164"], row["number_type"], row["region"], row["time_zones"]) == (
            raw, kind, pn.region_code_for_number(number), zones,
        ), raw
    assert valid > 1000

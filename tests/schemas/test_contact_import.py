"""The import contract: target parsing, snake_case property names, the Pandera model's checks."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pytest

from schemas.contact_import import check_reason, import_schema, parse_target, snake_case
from tasks.errors import ValidationError


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Plan", "plan"),
        ("Plan Tier (2024)", "plan_tier_2024"),
        ("Ciudad/Población", "ciudad_poblacion"),  # accents stripped
        ("customerID", "customer_id"),
        ("2nd Phone", "col_2nd_phone"),  # must start with a letter
        ("***", "column"),
    ],
)
def test_snake_case(header, key):
    assert snake_case(header) == key


@pytest.mark.parametrize(
    ("text", "target"),
    [("contact_phone", "contact_phone"), (" EMAIL ", "email"), ("ignore", "ignore"), ("custom:Last Order", "custom:last_order")],
)
def test_parse_target(text, target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["phone", "custom:", "custom:  "])
def test_parse_target_refuses_unknown_targets(text):
    with pytest.raises(ValidationError):
        parse_target(text)


def _frame(**columns) -> pl.DataFrame:
    base = {"row": [2], "phone_e164": ["+16025550199"], "contact_name": [None], "company_name": [None], "email": [None]}
    base.update(columns)
    return pl.DataFrame(base, schema_overrides={k: pl.String for k in base if k != "row"})


def test_a_clean_row_passes():
    import_schema([]).validate(_frame(email=["ann@example.com"], contact_name=["Ann"]))


@pytest.mark.parametrize(
    ("columns", "column", "reason"),
    [
        ({"phone_e164": [None]}, "phone_e164", "required value is missing"),
        ({"email": ["ann@example"]}, "email", "not a valid e-mail address"),
        ({"email": ["ann @example.com"]}, "email", "not a valid e-mail address"),
        ({"contact_name": ["x" * 201]}, "contact_name", "longer than 200 characters"),
        ({"custom:plan": ["x" * 1001]}, "custom:plan", "longer than 1000 characters"),
    ],
)
def test_each_check_fails_with_its_reason(columns, column, reason):
    frame = _frame(**columns)
    customs = [c for c in frame.columns if c.startswith("custom:")]
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        import_schema(customs).validate(frame, lazy=True)
    cases = caught.value.failure_cases
    assert [(c["column"], check_reason(c["column"], c["check"]), c["index"]) for c in cases.iter_rows(named=True)] == [
        (column, reason, 0)
    ]

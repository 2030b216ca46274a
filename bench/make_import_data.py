"""Data for bench_import: a contacts CSV of N rows (88% distinct numbers, 10% duplicates typed in
another format, 2% invalid phones) with name, e-mail, company and 3 custom columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

AREA_CODES = np.array(["602", "480", "623", "520", "928", "212", "305", "312", "415", "713", "303", "702"])
FIRST = np.array(["Ana", "José", "María", "John", "Emily", "Luis", "Sofía", "Michael", "Sarah", "David"])
LAST = np.array(["García", "Smith", "Martínez", "Johnson", "Hernández", "Brown", "López", "Davis", "Muñoz", "Lee"])
PLANS = np.array(["Basic", "Pro", "Enterprise", "Trial", ""])
CITIES = np.array(["Phoenix", "Mesa", "Tucson", "Flagstaff", "Glendale", "Chandler", "Scottsdale", ""])
SEGMENTS = np.array(["smb", "mid", "ent", "gov", ""])
BAD = np.array(["123", "n/a", "555-0199", "(111) 555-0100", "call me", "+44 20", "", "602-555-01"])


def _formats(area: np.ndarray, exchange: np.ndarray, line: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The number typed in one of six ways (style 0..5); style 0 is well-formed E.164."""
    e164 = np.char.add(np.char.add(np.char.add("+1", area), exchange), line)
    shapes = [
        e164,
        np.char.add(np.char.add(np.char.add(np.char.add("(", area), ") "), np.char.add(exchange, "-")), line),
        np.char.add(np.char.add(np.char.add(area, "-"), np.char.add(exchange, "-")), line),
        np.char.add(np.char.add(np.char.add(area, "."), np.char.add(exchange, ".")), line),
        np.char.add(np.char.add(area, exchange), line),
        np.char.add(np.char.add(np.char.add("+1 ", area), np.char.add(" ", exchange)), np.char.add(" ", line)),
    ]
    return np.choose(style, shapes)


def generate(path: Path, rows: int, seed: int = 7) -> Path:
    """Write the CSV and return its path."""
    rng = np.random.default_rng(seed)
    distinct = int(rows * 0.88)
    duplicates = int(rows * 0.10)
    invalid = rows - distinct - duplicates
    area = rng.choice(AREA_CODES, distinct)
    exchange = rng.integers(200, 1000, distinct).astype(str)
    line = np.char.zfill(rng.integers(0, 10000, distinct).astype(str), 4)
    # Most numbers arrive well-formed (E.164 from a CRM export); the rest typed by hand.
    style = np.where(rng.random(distinct) < 0.6, 0, rng.integers(1, 6, distinct))
    phones = _formats(area, exchange, line, style)
    pick = rng.integers(0, distinct, duplicates)
    dup_style = (style[pick] + rng.integers(1, 6, duplicates)) % 6  # always a different format
    dup_phones = _formats(area[pick], exchange[pick], line[pick], dup_style)
    all_phones = np.concatenate([phones, dup_phones, rng.choice(BAD, invalid)])
    order = rng.permutation(rows)
    first, last = rng.choice(FIRST, rows), rng.choice(LAST, rows)
    frame = pl.DataFrame({
        "Full Name": np.char.add(np.char.add(first, " "), last),
        "Phone Number": all_phones[order],
        "E-mail": np.char.add(np.char.add(np.char.lower(first.astype("U")), "@example.com"), ""),
        "Company": np.char.add("Company ", rng.integers(0, 5000, rows).astype(str)),
        "Plan": rng.choice(PLANS, rows),
        "City": rng.choice(CITIES, rows),
        "Segment": rng.choice(SEGMENTS, rows),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path

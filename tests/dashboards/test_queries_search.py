"""The dashboard's text search: what it finds is exactly `contains_folded` (case and accents aside); the regular
expression that narrows the values first never drops one the comparison finds."""

from __future__ import annotations

import re

import duckdb
import pytest

from dashboards.queries.search import PATTERN_CHARS, ascii_folds, prefilter, text_search
from tasks.export_calls import contains_folded

SEPARATOR = r"[^\x00-\x7f]*"
NAMES = [
    "Lucía López", "LUCIA LOPEZ", "lucia lopez", "Zoe\u0308 Ñúñez", "İstanbul Çelik", "Straße", "Øre Ørsted",
    "Łukasz Dvořák", "Nguyễn Văn Anh", "東京 Tanaka", "ﬁle", "Ｌｕｃｉａ", "🙂 Lucia", "person\x00 0", "Renée", None, "",
]
TERMS = [
    "lucia", "LÚCÍA", "lopez", "lópez", "zoë", "nunez", "istanbul", "celik", "strasse", "straße", "ore", "ørsted",
    "lukasz", "dvorak", "nguyen", "van anh", "東京", "tanaka", "file", "ｌｕｃｉａ", "🙂", "\x00", "e\u0301", "a", "%",
]


@pytest.fixture(scope="module")
def conn():
    with duckdb.connect() as conn:
        yield conn


def _matches(conn, condition: str, params: dict, texts: list) -> list:
    conn.execute("create or replace temp table texts as select unnest($texts::varchar[]) as t", {"texts": texts})
    return [row[0] for row in conn.execute(f"select t from texts where {condition} order by t", params).fetchall()]


@pytest.mark.parametrize("term", TERMS)
def test_the_search_finds_what_the_folded_comparison_finds(conn, term):
    params: dict = {}
    found = _matches(conn, text_search(["t"], term, params), params, NAMES)
    assert found == _matches(conn, contains_folded("t", "term"), {"term": term}, NAMES)


@pytest.mark.parametrize(("term", "expected"), [
    ("lucia", ["LUCIA LOPEZ", "Lucía López", "lucia lopez", "🙂 Lucia"]),
    ("LÓPEZ", ["LUCIA LOPEZ", "Lucía López", "lucia lopez"]),
    ("zoë", ["Zoe\u0308 Ñúñez"]),  # a decomposed ë in the name, a composed one typed
    ("istanbul", ["İstanbul Çelik"]),
    ("dvorak", ["Łukasz Dvořák"]),
    ("ore", []),  # Ø is a letter of its own, not an O with an accent (Unicode gives it no decomposition)
    ("ørsted", ["Øre Ørsted"]),
    ("strasse", []),  # ß stays ß
    ("ｌｕｃｉａ", ["Ｌｕｃｉａ"]),  # full-width letters stay full-width
])
def test_what_folds_and_what_does_not(conn, term, expected):
    params: dict = {}
    assert _matches(conn, text_search(["t"], term, params), params, NAMES) == sorted(expected)


def test_every_character_folding_to_ascii_is_found_in_its_class(conn):
    # each character DuckDB folds to an ASCII one (é, Ĺ, ...), between two letters and followed by a combining
    # accent, against the term it folds to: the expression must keep every text the comparison keeps
    folds = ascii_folds()
    texts = [f"q{ch}\u0301q" for ch, fold in folds.items() if fold and fold.isalnum()]
    terms = sorted({f"q{fold}q" for fold in folds.values() if fold.isalnum()})
    conn.execute("create or replace temp table texts as select unnest($texts::varchar[]) as t", {"texts": texts})
    conn.execute("create or replace temp table terms as select unnest($terms::varchar[]) as term,"
                 " unnest($patterns::varchar[]) as pattern",
                 {"terms": terms, "patterns": [prefilter(term) for term in terms]})
    missed, found = conn.execute(
        "select count(*) filter (where not regexp_matches(t, pattern)), count(*) from texts, terms"
        " where contains(strip_accents(lower(t)), strip_accents(lower(term)))"
    ).fetchone()
    assert (missed, found) == (0, len(texts))


def test_characters_that_fold_to_nothing_are_never_ascii():
    # the expression lets any non-ASCII run stand between two characters for them: an ASCII one would be missed
    assert not [ch for ch, fold in ascii_folds().items() if fold == "" and ord(ch) < 128]


@pytest.mark.parametrize("term", ["ß", "東京", "ø", "\u0301", "🙂"])
def test_no_shortcut_for_a_term_folding_outside_ascii_or_to_nothing(term):
    assert prefilter(term) is None


@pytest.mark.parametrize("term", ["]", "\\", ".*", "(?i)a", "[^a]", "\x00", "a" * 200])
def test_the_expression_spells_code_points_never_typed_text(term):
    pattern = prefilter(term)
    # nothing but classes of \x{...} code points and the runs allowed between them
    assert set(re.sub(r"\\x\{[0-9a-f]+\}", "", pattern).replace(SEPARATOR, "")) == {"[", "]"}
    assert pattern.count(SEPARATOR) == min(len(term), PATTERN_CHARS) - 1  # a long search: its first characters

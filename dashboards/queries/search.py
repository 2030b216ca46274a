"""The dashboard's text searches (names, companies, e-mails): case and accents aside, fast on a million contacts.

What matches is `tasks.export_calls.contains_folded`: DuckDB's lower() and strip_accents() on both sides, so
"lopez" finds "López" and "LUCÍA" finds "Lucia", in the tabs and the Call Logs export alike. strip_accents
costs little on ASCII text but about 0.3 µs per value holding another character (a million accented names:
0.3 s a column, five times the lower()-only search it replaced). So such values are first narrowed by a
regular expression (RE2, about as fast as that search) and only those it keeps are folded and compared.
The expression finds every value the comparison finds, and maybe a few more (the comparison decides):
each character of the folded term becomes the class of every character DuckDB folds to it, and any run of
non-ASCII characters (the combining accents of a decomposed "é", which fold to nothing) may come between.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import duckdb

from tasks.export_calls import contains_folded

# Characters of the folded term the expression spells out: enough to keep few values, and a short
# expression (a 200-character search would compile to a large one).
PATTERN_CHARS = 16
_NON_ASCII_RUN = r"[^\x00-\x7f]*"


@lru_cache(maxsize=1)
def ascii_folds() -> dict[str, str]:
    """{character: its fold} for every character DuckDB's strip_accents(lower(...)) turns into one ASCII character
    or into nothing (combining accents); the folds of every other character are not ASCII."""
    with duckdb.connect() as conn:  # the same DuckDB as the store's connections: the same folds
        return dict(conn.execute(
            """
            with codepoint as (
                -- every code point but the UTF-16 surrogates (U+D800..U+DFFF, no characters), skipped over
                select chr((i + case when i >= 55296 then 2048 else 0 end)::integer) as ch
                from range(0, 1112064) r(i)
            ),
            final as (
                select ch, strip_accents(lower(ch)) as fold from codepoint
            )
            -- folded to nothing, or to one ASCII character (any other character takes two bytes or more)
            select * from final where strlen(fold) <= 1
            """
        ).fetchall())


@lru_cache(maxsize=1)
def _preimages() -> dict[str, list[str]]:
    """{ASCII character: every character that folds to it}, in code point order."""
    found: dict[str, list[str]] = {}
    for ch, fold in sorted(ascii_folds().items()):
        if fold:
            found.setdefault(fold, []).append(ch)
    return found


def prefilter(term: str) -> str | None:
    """An RE2 expression finding every text whose fold holds the term's fold, or None when there is no shortcut
    (the term folds to nothing, or to a character outside ASCII: then every value is folded)."""
    folds = ascii_folds()
    if any(ch not in folds for ch in term):
        return None
    folded = "".join(folds[ch] for ch in term)[:PATTERN_CHARS]
    if not folded:
        return None
    preimages = _preimages()
    # code points, never the characters themselves: nothing the user typed is read as expression syntax
    classes = ("[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in preimages[char]) + "]" for char in folded)
    return _NON_ASCII_RUN.join(classes)


def text_search(columns: Iterable[str], term: str, params: dict) -> str:
    """SQL true where one of the text columns holds the term, case and accents aside (`contains_folded`), null
    values never; binds $search (and $search_pattern) in `params`. Columns are trusted SQL, never user text."""
    params["search"] = term
    pattern = prefilter(term)
    if pattern is not None:
        params["search_pattern"] = pattern
    conditions = []
    for column in columns:
        match = contains_folded(column, "search")
        # An ASCII value (as many bytes as characters) is cheap to fold: strip_accents returns it as is. The
        # others are folded only when the expression finds them. CASE, not AND/OR: DuckDB could order those
        # by its own cost guess and fold every value first.
        conditions.append(match if pattern is None else
                          f"case when strlen({column}) = length({column}) then {match}"
                          f" when regexp_matches({column}, $search_pattern) then {match} else false end")
    return "(" + " or ".join(conditions) + ")"

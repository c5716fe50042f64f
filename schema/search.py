"""Vietnamese search over incidents, the same on PostgreSQL and SQLite.

The projection stores `incidents.search_text = search_document(description, address)`:
the folded text (schema.text.fold: lower case, tone and other marks removed, đ→d), then, when
it differs, a newline and the lower-case text with its marks. A query is folded the same way
(`search_terms`) and every folded word must occur in the document (`LIKE '%word%'`, served
by a pg_trgm GIN index on PostgreSQL). So upper case, NFD input and toneless typing ("chay
nha") all find "Cháy nhà". The words as typed, lower case with their marks, occur only when
the text has them exactly: `exact_rank` is 0 then, 1 otherwise, and lists put exact-diacritic
matches first. Both sides are folded in Python, so no database collation is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, literal
from sqlmodel import col

from schema.tables import Incident
from schema.text import clean_line, fold

MAX_WORDS = 8


def _exact(value: str) -> str:
    return clean_line(value).casefold()


def search_document(*texts: str | None) -> str:
    """The `search_text` of an incident made of `texts` (description, address)."""
    joined = " ".join(t for t in texts if t)
    folded, exact = fold(joined), _exact(joined)
    return folded if folded == exact else f"{folded}\n{exact}"


@dataclass(frozen=True)
class SearchTerms:
    """A query as words: `folded` to match, `exact` (lower case, marks kept) to rank."""

    folded: tuple[str, ...]
    exact: tuple[str, ...]


def search_terms(query: str | None) -> SearchTerms | None:
    """The words of `query` (at most MAX_WORDS), or None when nothing is left to search."""
    exact = tuple(w for w in _exact(query or "").split() if fold(w))[:MAX_WORDS]
    if not exact:
        return None
    return SearchTerms(folded=tuple(fold(w) for w in exact), exact=exact)


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches(terms: SearchTerms) -> ColumnElement[bool]:
    """Every folded word occurs in the incident's search document."""
    column = col(Incident.search_text)
    return and_(*[column.like(_like(w), escape="\\") for w in terms.folded])


def exact_rank(terms: SearchTerms) -> ColumnElement[int]:
    """0 when every word occurs with its marks as typed, else 1 (sort ascending)."""
    column = col(Incident.search_text)
    exact = and_(*[column.like(_like(w), escape="\\") for w in terms.exact])
    if terms.exact == terms.folded:
        return literal(0)
    return case((exact, 0), else_=1)


def row_rank(terms: SearchTerms, document: str) -> int:
    """`exact_rank` computed in Python for a fetched row (for the next page's cursor)."""
    return 0 if all(w in document for w in terms.exact) else 1


def ranked(terms: SearchTerms | None) -> bool:
    """Whether lists order by `exact_rank` first (the query has marks or capitals)."""
    return terms is not None and terms.exact != terms.folded

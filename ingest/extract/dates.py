"""Date strings as pages write them, to timezone-aware datetimes.

Machine-readable dates (ISO 8601 in JSON-LD, OpenGraph, ``<time datetime>``) cover most
pages; the textual forms below ("May 21, 2025", "21 May 2025", "21. Mai 2025",
"21 de mayo de 2025", "2025年5月21日", "21.05.2025") cover visible bylines.

A datetime keeps the UTC offset the page wrote ("2025-05-21T23:30:00-05:00" stays at
-05:00): the instant is exact either way, and only the page's own offset gives the day
the page states (in UTC that one is already May 22). A date without a zone, or without a
time, is taken as UTC: a bare "May 21, 2025" becomes midnight UTC of that day, so its day
is still the day written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

# Month names and abbreviations in the languages we ingest most (en, de, fr, es, it, pt,
# nl). A name only counts beside a day number and a four-digit year, so short ones that
# are also words ("may", "mar", "set") do not make false dates in running text.
_MONTH_NAMES = (
    "jan january januar jänner janvier janv enero ene gennaio gen janeiro januari",
    "feb february februar février fevrier févr fevr febrero febbraio fevereiro fev februari",
    "mar march märz maerz mär mrz mars marzo março marco maart mrt",
    "apr april avril avr abril abr aprile",
    "may mai mayo maggio mag maio mei",
    "jun june juni juin junio giugno giu junho",
    "jul july juli juillet juil julio luglio lug julho",
    "aug august août aout agosto ago augustus",
    "sep sept september septembre septiembre setiembre settembre set setembro",
    "oct october oktober okt octobre octubre ottobre ott outubro out",
    "nov november novembre noviembre novembro",
    "dec december dezember dez décembre decembre déc diciembre dic dicembre dezembro",
)
_MONTHS = {
    name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()
}
# The patterns match any word where a month name goes and _make keeps the words of
# _MONTHS: an alternation of the hundred names at every position of a page costs ten
# times more.
_MONTH = r"([^\W\d_]{3,10})\.?"
_YEAR = r"((?:19|20)\d\d)"
# A pattern is searched for much faster when it opens with the characters it can start
# with: re then skips the rest in C. So the look back that keeps a date from starting
# inside a longer number comes after the first characters, reaching back past them:
# "\d(?<!\d\d)" is "(?<!\d)\d". (Two to three times faster on the texts the date search
# reads; tests/test_extract.py checks the patterns against those written the plain way.)
_ISO_DAY = re.compile(r"((?:19|20)(?<![\d.][12]\d)\d\d)([-/.])(\d{1,2})\2(\d{1,2})(?![\d])")
_CJK = re.compile(_YEAR + r"\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MDY = re.compile(
    r"(?<![^\W\d_])" + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+" + _YEAR + r"(?!\d)",
    re.IGNORECASE,
)
# Every match of _MDY holds this; it opens with a digit, so it is searched for fast, and
# _MDY (which can start at any letter, and cannot be turned around as the others are)
# runs only on texts that hold it: about a third of them.
_DAY_YEAR = re.compile(r"\d(?:st|nd|rd|th)?,?\s+(?:19|20)\d\d(?!\d)", re.IGNORECASE)
# "21 May 2025", "21st of May, 2025", "21. Mai 2025", "1er mai 2025", "21 de mayo de 2025".
_DMY = re.compile(
    r"(\d(?<!\d\d)\d?)(?:st|nd|rd|th|er|º)?\.?\s*(?:of\s+|de\s+)?"
    + _MONTH
    + r",?\s+(?:de\s+)?"
    + _YEAR
    + r"(?!\d)",
    re.IGNORECASE,
)
# 21.05.2025 and 21/05/2025. Dotted dates are day-first wherever they are used (central
# and northern Europe); slashed ones are day-first in Europe and month-first in the US,
# so a slashed date is only read when one of its numbers is over 12 and settles it.
_NUMERIC = re.compile(r"(\d(?<![\d./]\d)\d?)([./])(\d{1,2})\2" + _YEAR + r"(?![\d])")
_ANY_YEAR = re.compile(_YEAR)
# In a URL path: /2025/05/21/, /2025-05-21-slug, /2023/october/03/.
_URL_DAY = re.compile(
    r"(?<!\d)" + _YEAR + r"[/_-](\d{1,2}|[a-z]{3,9})[/_-](\d{1,2})(?!\d)", re.IGNORECASE
)
# Years outside this range in page markup are typos or placeholders ("0001-01-01").
_MIN_YEAR, _MAX_YEAR = 1995, 2100

# Words just before a date that say which date it is. "Updated"-like labels mark the
# modified date, which must not be taken for the publication date; checked in the
# languages of _MONTH_NAMES.
_MODIFIED_LABEL = (
    r"updated|update|modified|revised|reviewed|edited|refreshed|aktualisiert|geändert"
    r"|stand|mis\s+à\s+jour|mise\s+à\s+jour|modifié|actualizado|actualización|modificado"
    r"|aggiornato|aggiornamento|atualizado|atualização|bijgewerkt|gewijzigd"
)
_PUBLISHED_LABEL = (
    r"published|publish\s+date|posted|written|created|released|veröffentlicht|erschienen"
    r"|publié|publiée|mis\s+en\s+ligne|publicado|pubblicato|gepubliceerd|geplaatst"
)
_LABEL = re.compile(
    rf"(?<![^\W\d_])(?:(?P<modified>{_MODIFIED_LABEL})|(?P<published>{_PUBLISHED_LABEL}))"
    r"(?![^\W\d_])",
    re.IGNORECASE,
)
# How far before a date its label may stand: "Updated on" fits, as does "Published by
# Jane Roe on"; a label further back belongs to something else.
LABEL_REACH = 60


@dataclass(frozen=True, slots=True)
class TextDate:
    """A date found in running text: where, what, and what its label says it is."""

    start: int
    when: datetime
    kind: str | None  # "published", "modified" or None (unlabelled)


def parse_date(value: str | None) -> datetime | None:
    """Parse a machine-readable or textual date; None if nothing usable."""
    if not value:
        return None
    value = value.strip()[:100]
    parsed = _parse_iso(value) or _parse_rfc2822(value) or parse_text_date(value)
    return parsed if parsed is not None and _plausible(parsed) else None


def is_iso_date(value: str | None) -> bool:
    """Whether a value starts as ISO 8601 does (what schema.org asks for)."""
    return bool(value) and re.match(r"\s*(?:19|20)\d\d-\d\d-\d\d", value or "") is not None


def parse_text_date(value: str) -> datetime | None:
    """The first day-precise date written in running text, at midnight UTC."""
    found = text_dates(value)
    return found[0].when if found else None


def text_dates(text: str) -> list[TextDate]:
    """Every day-precise date in ``text``, in order, each with the label before it."""
    # Every pattern holds a year, which starts "19" or "20": two substring tests, then one
    # scan for a year, rule out most texts (a byline level, a date-named element)
    # without running the five patterns over them.
    if ("19" not in text and "20" not in text) or _ANY_YEAR.search(text) is None:
        return []
    spans: list[tuple[int, int, datetime]] = []
    for start, end, when in _matches(text):
        if all(end <= s or start >= e for s, e, _ in spans):
            spans.append((start, end, when))
    spans.sort(key=lambda span: span[0])
    found = []
    previous_end = 0
    for start, end, when in spans:
        window = text[max(previous_end, start - LABEL_REACH) : start]
        found.append(TextDate(start, when, date_label(window)))
        previous_end = end
    return found


def date_from_url(url: str | None) -> datetime | None:
    """A /2025/05/21/ style date in a URL path, which many news CMSes use."""
    if not url:
        return None
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return None
    for match in _URL_DAY.finditer(path):
        found = _make(*match.groups())
        if found is not None:
            return found
    return None


def _matches(text: str) -> list[tuple[int, int, datetime]]:
    """(start, end, date) of every pattern's matches; earlier patterns win overlaps."""
    found = []
    for match in _ISO_DAY.finditer(text):
        found.append((match, _make(match[1], match[3], match[4])))
    for match in _CJK.finditer(text):
        found.append((match, _make(match[1], match[2], match[3])))
    if _DAY_YEAR.search(text):
        for match in _MDY.finditer(text):
            found.append((match, _make(match[3], match[1], match[2])))
    for match in _DMY.finditer(text):
        found.append((match, _make(match[3], match[2], match[1])))
    for match in _NUMERIC.finditer(text):
        found.append((match, _numeric(match)))
    return [(m.start(), m.end(), when) for m, when in found if when is not None]


def _numeric(match: re.Match[str]) -> datetime | None:
    first, separator, second, year = match.groups()
    day, month = int(first), int(second)
    if separator == "/" and day <= 12 and month <= 12:
        return None  # 05/06/2025: May 6 or 5 June, nothing on the page says which
    if separator == "/" and month > 12:
        day, month = month, day
    return _make(year, str(month), str(day))


def date_label(window: str) -> str | None:
    """What the last label in ``window`` (the text just before a date) calls the date:
    "published", "modified", or None."""
    kind = None
    for match in _LABEL.finditer(window):
        kind = "modified" if match.group("modified") else "published"
    return kind


def _parse_iso(value: str) -> datetime | None:
    text = value.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", value) else value
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    # "+0300" offsets are common in meta tags; fromisoformat wants "+03:00" before 3.11
    # on some inputs, so normalise them.
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _aware(parsed)


def _parse_rfc2822(value: str) -> datetime | None:
    if not re.match(r"[A-Za-z]{3},? ", value):
        return None
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _make(year: str, month: str, day: str) -> datetime | None:
    name = month.lower().rstrip(".")
    number = _MONTHS.get(name) if not name.isdigit() else int(name)
    if number is None:
        return None
    try:
        return datetime(int(year), number, int(day), tzinfo=UTC)
    except ValueError:
        return None


def _aware(value: datetime) -> datetime | None:
    """The datetime with its own offset, or UTC when it has none; None if unusable."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)  # an offset that pushes the instant out of range
    except OverflowError:
        return None
    return value


def _plausible(value: datetime) -> bool:
    return _MIN_YEAR <= value.year <= _MAX_YEAR

"""Date strings as pages write them, to timezone-aware UTC datetimes.

Machine-readable dates (ISO 8601 in JSON-LD, OpenGraph, ``<time datetime>``) cover most
pages; the textual forms below ("May 21, 2025", "21 May 2025", "2025/05/21") cover
visible bylines. A date without a zone is taken as UTC: wrong by hours at worst, while
guessing the site's zone would be wrong as often and less predictable.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ISO_DAY = re.compile(r"(?<!\d)((?:19|20)\d\d)[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_MDY = re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)", re.IGNORECASE)
_DMY = re.compile(
    r"(\d{1,2})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?" + _MONTH + r",?\s+((?:19|20)\d\d)", re.IGNORECASE
)
# 12.12.2025: the dotted numeric form is day-first wherever it is used (Europe).
_DOTTED = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.((?:19|20)\d\d)(?![\d.])")
_URL_DAY = re.compile(r"/((?:19|20)\d\d)[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$)")
# Years outside this range in page markup are typos or placeholders ("0001-01-01").
_MIN_YEAR, _MAX_YEAR = 1995, 2100


def parse_date(value: str | None) -> datetime | None:
    """Parse a machine-readable or textual date; None if nothing usable."""
    if not value:
        return None
    value = value.strip()[:100]
    parsed = _parse_iso(value) or _parse_rfc2822(value) or parse_text_date(value)
    return parsed if parsed is not None and _plausible(parsed) else None


def parse_text_date(value: str) -> datetime | None:
    """The first day-precise date written in running text, at midnight UTC."""
    for pattern, order in ((_ISO_DAY, "ymd"), (_MDY, "mdy"), (_DMY, "dmy"), (_DOTTED, "dmy")):
        match = pattern.search(value)
        if match is None:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        found = _make(parts["y"], parts["m"], parts["d"])
        if found is not None:
            return found
    return None


def date_from_url(url: str | None) -> datetime | None:
    """A /2025/05/21/ style date in a URL path, which many news CMSes use."""
    if not url:
        return None
    match = _URL_DAY.search(url)
    return _make(*match.groups()) if match else None


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
    return _utc(parsed)


def _parse_rfc2822(value: str) -> datetime | None:
    if not re.match(r"[A-Za-z]{3},? ", value):
        return None
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _make(year: str, month: str, day: str) -> datetime | None:
    month_number = (
        _MONTHS.get(month.lower().rstrip(".")) if month.isalpha() or "." in month else None
    )
    try:
        number = month_number if month_number is not None else int(month)
        return datetime(int(year), number, int(day), tzinfo=UTC)
    except ValueError:
        return None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _plausible(value: datetime) -> bool:
    return _MIN_YEAR <= value.year <= _MAX_YEAR

"""Who an entry is, decided from the feed alone, before any page is fetched.

Identity is layered, strongest first:

1. the feed's GUID, scoped to its source (GUIDs are only promised unique within one
   feed), while the source's GUIDs are trustworthy;
2. the canonical URL (``urls.normalize_url``), global, so the same link in two feeds
   is fetched once;
3. for an entry with neither, a fallback from the source, the publication date and the
   summary's words: a title edit does not change it.

Any one key matching a recorded key means the entry was seen. A source's GUIDs stop
being trusted, for good, when the feeds show them to be unreliable (``guid_problem``):
one GUID naming two links in one feed (a constant or per-page GUID), one GUID coming
back for another story (another link and another date), or one link coming back under a
new GUID (GUIDs generated per request). From then on that source is identified by URL.

A seen entry is refetched ("updated") when its feed says it changed: a newer
``updated``/``published`` date, another title, or (with a trusted GUID) another link,
the usual sign of a slug rewritten after a title edit. Only records of the same source
count, so two feeds that disagree about a shared story do not refetch it forever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from ingest.dedup.neardup import words
from ingest.dedup.urls import normalize_url
from ingest.models import Classified, Entry, EntryRecord


def guid_key(source: str, guid: str) -> str:
    return f"guid:{source}:{guid}"


def url_key(url: str) -> str:
    return f"url:{normalize_url(url)}"


def entry_keys(entry: Entry, *, source: str, trust_guid: bool = True) -> tuple[str, ...]:
    """The keys under which an entry counts as seen: any one matching means seen.

    The last key is the entry's identity (``identity_key``): its URL when it has one.
    """
    keys = []
    if entry.guid and trust_guid:
        keys.append(guid_key(source, entry.guid))
    if entry.url:
        keys.append(url_key(entry.url))
    elif not keys and (entry.guid or entry.published or entry.summary):
        keys.append(_fallback_key(entry, source=source))
    return tuple(keys)


def _fallback_key(entry: Entry, *, source: str) -> str:
    stamp = entry.published.isoformat() if entry.published else ""
    body = " ".join(words(entry.summary or ""))
    digest = hashlib.sha256(f"{entry.guid or ''}\n{stamp}\n{body}".encode()).hexdigest()
    return f"entry:{source}:{digest[:32]}"


def article_id(key: str) -> str:
    """A short, stable id from an identity key: the same page gets the same id on a rerun."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def lookup_keys(entries: Iterable[Entry], *, source: str) -> list[str]:
    """Every key the store must be asked about to classify ``entries`` (GUIDs included)."""
    return sorted({key for entry in entries for key in entry_keys(entry, source=source)})


def guid_problem(
    entries: Iterable[Entry], *, source: str, records: Mapping[str, EntryRecord]
) -> str | None:
    """Why this source's GUIDs cannot identify its entries, or None if they can."""
    links: dict[str, str] = {}
    for entry in entries:
        if not (entry.guid and entry.url):
            continue
        link = normalize_url(entry.url)
        if links.setdefault(entry.guid, link) != link:
            return f"guid {entry.guid!r} names two links in one feed"
        by_guid = records.get(guid_key(source, entry.guid))
        if by_guid is not None and _another_story(entry, link, by_guid):
            return f"guid {entry.guid!r} came back for another story"
        by_url = records.get(url_key(entry.url))
        if by_url is not None and by_url.source == source and by_url.guid not in (None, entry.guid):
            return f"link {link} came back under a new guid {entry.guid!r}"
    return None


def _another_story(entry: Entry, link: str, record: EntryRecord) -> bool:
    """Another link and another publication date: not an edit, a reused GUID."""
    moved = record.url is not None and normalize_url(record.url) != link
    redated = None not in (entry.published, record.published) and entry.published != (
        record.published
    )
    return moved and redated


def classify(
    entries: Iterable[Entry],
    *,
    source: str,
    trust_guid: bool,
    records: Mapping[str, EntryRecord],
) -> list[Classified]:
    """Decide, per entry, whether to fetch it (new), refetch it (updated) or leave it."""
    result = []
    for entry in entries:
        keys = entry_keys(entry, source=source, trust_guid=trust_guid)
        matched = [records[key] for key in keys if key in records]
        if not matched:
            result.append(Classified(entry, keys, "new"))
            continue
        record = next((r for r in matched if r.status == "stored"), matched[0])
        if record.status == "stored" and record.source == source and _changed(entry, record):
            result.append(Classified(entry, keys, "updated", record.article_id))
        else:
            result.append(Classified(entry, keys, "seen", record.article_id))
    return result


def _changed(entry: Entry, record: EntryRecord) -> bool:
    stamp = entry.updated or entry.published
    last = record.updated or record.published
    if stamp is not None and last is not None and stamp > last:
        return True
    if entry.title and record.title and words(entry.title) != words(record.title):
        return True
    return bool(
        entry.guid
        and entry.url
        and record.url
        and record.guid == entry.guid
        and normalize_url(entry.url) != normalize_url(record.url)
    )

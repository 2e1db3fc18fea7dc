"""The article JSON document: the contract with every tool that reads our output.

Field names are stable: add fields freely, rename none. ``SCHEMA_VERSION`` goes up only
when a field's meaning changes. The JSON Schema is ``ingest/schema/article.schema.json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ingest.models import Article

SCHEMA_VERSION = 1


def to_document(article: Article) -> dict[str, Any]:
    """The JSON-ready dict of an article, fields in contract order."""
    return {
        "id": article.id,
        "schema_version": SCHEMA_VERSION,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "title": article.title,
        "authors": list(article.authors),
        "published": _iso(article.published),
        "modified": _iso(article.modified),
        "language": article.language,
        "site_name": article.site_name,
        "description": article.description,
        "image": article.image,
        "tags": list(article.tags),
        "text": article.text,
        "html": article.html,
        "markdown": article.markdown,
        "fetched_at": _iso(article.fetched_at),
        "fingerprint": article.fingerprint,
        "entry_guid": article.entry_guid,
        "version": article.version,
        "duplicate_of": article.duplicate_of,
        "cluster": article.duplicate_of or article.id,
    }


def dumps(article: Article, *, indent: int | None = None) -> str:
    """The document as JSON text (UTF-8 safe, non-ASCII kept as is)."""
    return json.dumps(to_document(article), ensure_ascii=False, indent=indent)


def from_document(doc: dict[str, Any]) -> Article:
    """Read a document back; unknown fields (from newer writers) are ignored."""
    return Article(
        id=doc["id"],
        url=doc["url"],
        canonical_url=doc.get("canonical_url"),
        source=doc.get("source"),
        title=doc.get("title"),
        authors=tuple(doc.get("authors") or ()),
        published=_parse(doc.get("published")),
        modified=_parse(doc.get("modified")),
        language=doc.get("language"),
        site_name=doc.get("site_name"),
        description=doc.get("description"),
        image=doc.get("image"),
        tags=tuple(doc.get("tags") or ()),
        text=doc.get("text") or "",
        html=doc.get("html") or "",
        markdown=doc.get("markdown") or "",
        fetched_at=_parse(doc.get("fetched_at")),
        fingerprint=doc.get("fingerprint") or "",
        entry_guid=doc.get("entry_guid"),
        version=int(doc.get("version") or 1),
        duplicate_of=doc.get("duplicate_of"),
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # never produced by our stages; guard the contract anyway
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None

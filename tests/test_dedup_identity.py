"""Entry identity before fetching: layered keys, GUID trust, new / seen / updated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.dedup import classify, entry_keys, guid_problem, lookup_keys
from ingest.models import Entry, EntryRecord

T0 = datetime(2025, 3, 4, 8, tzinfo=UTC)


def record(key: str, entry: Entry, *, source: str = "s", article: str = "a1") -> EntryRecord:
    return EntryRecord(
        key=key,
        source=source,
        status="stored",
        article_id=article,
        guid=entry.guid,
        url=entry.url,
        published=entry.published,
        updated=entry.updated,
        title=entry.title,
    )


def records_for(entry: Entry, **kw: str) -> dict[str, EntryRecord]:
    return {k: record(k, entry, **kw) for k in entry_keys(entry, source="s")}


SEEN = Entry(guid="g1", url="https://x.org/story", title="Bridge reopens", published=T0)


def test_untrusted_guid_leaves_the_url() -> None:
    """Without GUID trust an entry is known by its canonical URL only."""
    assert entry_keys(SEEN, source="s", trust_guid=False) == ("url:https://x.org/story",)
    assert entry_keys(SEEN, source="s")[0] == "guid:s:g1"


def test_fallback_key_survives_a_title_edit() -> None:
    """An entry without a link is still recognised after its title changes."""
    a = Entry(guid=None, url=None, title="Old", published=T0, summary="The bridge reopened.")
    b = Entry(guid=None, url=None, title="New", published=T0, summary="The bridge reopened!")
    assert entry_keys(a, source="s") == entry_keys(b, source="s")
    assert entry_keys(a, source="s")[0].startswith("entry:s:")


def test_new_seen_and_updated() -> None:
    """Unknown is new; known and unchanged is seen; a newer date or title is updated."""
    records = records_for(SEEN)
    entries = [
        Entry(guid="g2", url="https://x.org/other", published=T0),
        SEEN,
        Entry(guid="g1", url=SEEN.url, title=SEEN.title, published=T0, updated=T0 + timedelta(1)),
        Entry(guid="g1", url=SEEN.url, title="Bridge reopens, minister says", published=T0),
        Entry(guid="g1", url="https://x.org/story-renamed", title=SEEN.title, published=T0),
    ]
    judged = classify(entries, source="s", trust_guid=True, records=records)
    assert [c.state for c in judged] == ["new", "seen", "updated", "updated", "updated"]
    assert {c.article_id for c in judged[2:]} == {"a1"}


def test_other_sources_records_never_trigger_a_refetch() -> None:
    """Two feeds disagreeing about a shared link do not refetch it on every poll."""
    records = records_for(SEEN, source="other")
    changed = Entry(guid=None, url=SEEN.url, title="Another title", published=T0 + timedelta(1))
    (judged,) = classify([changed], source="s", trust_guid=True, records=records)
    assert judged.state == "seen"


def test_guid_reused_in_one_feed() -> None:
    """One GUID naming two links in one feed is not an identity."""
    entries = [Entry(guid="post", url="https://x.org/a"), Entry(guid="post", url="https://x.org/b")]
    assert "two links" in str(guid_problem(entries, source="s", records={}))


def test_guid_reused_across_polls() -> None:
    """A known GUID back with another link and another date is another story."""
    later = Entry(guid="g1", url="https://x.org/next", published=T0 + timedelta(days=2))
    problem = guid_problem([later], source="s", records=records_for(SEEN))
    assert "another story" in str(problem)
    retitled = Entry(guid="g1", url="https://x.org/story-renamed", published=T0)
    assert guid_problem([retitled], source="s", records=records_for(SEEN)) is None


def test_rotating_guids() -> None:
    """A known link back under a new GUID means the GUIDs are generated per request."""
    rotated = Entry(guid="g-random-2", url=SEEN.url, published=T0)
    assert "new guid" in str(guid_problem([rotated], source="s", records=records_for(SEEN)))


def test_lookup_keys_cover_guid_and_url() -> None:
    """The store is asked about GUID and URL keys alike, deduplicated and sorted."""
    assert lookup_keys([SEEN, SEEN], source="s") == ["guid:s:g1", "url:https://x.org/story"]

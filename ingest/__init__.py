"""ingest: poll feeds, fetch and extract articles, store them deduplicated on disk."""

__version__ = "0.1.0"

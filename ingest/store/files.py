"""Article documents on disk: stable date-partitioned paths and atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from datetime import UTC
from pathlib import Path

from ingest import document
from ingest.models import Article

ARTICLES_DIR = "articles"


def relative_path(article: Article) -> str:
    """``articles/YYYY/MM/DD/<id>.json``, dated by publication (else fetch) day in UTC.

    The date comes from the article, not from the clock, so a rerun after a crash
    writes the same path again instead of leaving a second copy elsewhere.
    """
    when = article.published or article.fetched_at
    if when is None:
        raise ValueError("an article needs a published or fetched_at time to be stored")
    day = when.astimezone(UTC)
    return f"{ARTICLES_DIR}/{day:%Y/%m/%d}/{article.id}.json"


def write_atomic(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half.

    Temp file in the same directory, fsync, then rename (POSIX rename is atomic within
    one file system) and fsync the directory so the rename is durable. With
    ``replace=False`` the temp file is hard-linked instead, which fails with
    FileExistsError rather than overwrite an existing file.
    """
    publish(prepare(path, data), path, replace=replace)


def prepare(path: Path, data: bytes) -> Path:
    """The first half of `write_atomic`: ``data`` in a synced temp file beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        discard(Path(tmp))
        raise
    return Path(tmp)


def publish(tmp: Path, path: Path, *, replace: bool) -> None:
    """The second half: the prepared ``tmp`` becomes ``path``, durably; ``tmp`` is gone.

    Without ``replace``, an error leaves nothing at ``path`` that was not there before:
    FileExistsError when a file was, and a file linked but not synced is removed.
    """
    try:
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        discard(tmp)
    try:
        _fsync_dir(path.parent)
    except OSError:
        if not replace:
            discard(path)
        raise


def age(path: Path) -> float:
    """Seconds since ``path`` was last written (a document is linked at its name right
    after its temp file is written)."""
    return time.time() - path.stat().st_mtime


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_article(root: Path, article: Article, *, replace: bool = False) -> str:
    """Write the article's new document under ``root``; return its relative path.

    Never overwrites (a document already at that path raises FileExistsError) unless
    ``replace``: for a file the catalog does not know, left by a lost write.
    """
    rel = relative_path(article)
    write_document(root, rel, article, replace=replace)
    return rel


def version_path(first: str, version: int) -> str:
    """Where version ``version`` (2, 3, ...) of an article lives: beside its first
    document, ``articles/YYYY/MM/DD/<id>.v<version>.json``."""
    stem = first.removesuffix(".json")
    return f"{stem}.v{version}.json"


def write_document(root: Path, rel: str, article: Article, *, replace: bool = False) -> None:
    """Write ``article`` at ``rel`` under ``root``, never over an existing file unless
    ``replace``."""
    write_atomic(root / rel, document_bytes(article), replace=replace)


def document_bytes(article: Article) -> bytes:
    """The bytes of the article's document file."""
    return (document.dumps(article, indent=2) + "\n").encode()


def remove_leftovers(root: Path, rel: str) -> None:
    """Undo a write that never reached the catalog: the file and any temp files beside it."""
    path = root / rel
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if path.parent.is_dir():
        for tmp in path.parent.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

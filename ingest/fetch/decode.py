"""Undo a Content-Encoding chain in bounded pieces.

httpx decodes each network chunk in one call, so 300 bytes of brotli can become 200 MB
before any cap is checked. `Decoder` inflates in pieces of at most about `_PIECE` bytes,
so the client's size cap really bounds what is held in memory (a compression bomb stops
at the cap). Fed from httpx's `aiter_raw()` by the client.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import brotli

from ingest.errors import FetchError

logger = logging.getLogger(__name__)

ACCEPT_ENCODING = "gzip, deflate, br"  # exactly what Decoder can undo
_PIECE = 64 * 1024  # largest piece a decoder hands out at once


class _Stage(Protocol):
    """Undoes one content coding, handing out pieces of at most about `_PIECE` bytes."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def flush(self) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Inflate:
    """gzip, or zlib-wrapped deflate, or raw deflate, depending on `wbits`."""

    def __init__(self, wbits: int) -> None:
        self._inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._inflater.decompress(data, _PIECE)
            if out:
                yield out
            data = self._inflater.unconsumed_tail
            if not data and len(out) < _PIECE:
                return  # all input used and nothing held back

    def flush(self) -> Iterator[bytes]:
        if rest := self._inflater.flush():
            yield rest


class _Deflate:
    """HTTP "deflate" is meant to be zlib-wrapped (RFC 9112 §7.2); IIS sends it raw."""

    def __init__(self) -> None:
        self._head = b""  # the first two bytes tell which, and may arrive one by one
        self._inner: _Inflate | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return iter(())
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inner = _Inflate(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self._inner.feed(data)

    def flush(self) -> Iterator[bytes]:
        if self._inner is None:  # a body of one byte: let raw inflate judge it
            self._inner = _Inflate(-zlib.MAX_WBITS)
            yield from self._inner.feed(self._head)
        yield from self._inner.flush()


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield self._decompressor.process(data, output_buffer_limit=_PIECE)
        while not self._decompressor.can_accept_more_data():
            yield self._decompressor.process(b"", output_buffer_limit=_PIECE)

    def flush(self) -> Iterator[bytes]:
        # can_accept_more_data() may be true with output still pending: drain it.
        while not self._decompressor.is_finished():
            out: bytes = self._decompressor.process(b"", output_buffer_limit=_PIECE)
            if not out:
                return
            yield out


_STAGES: dict[str, Callable[[], _Stage]] = {
    "gzip": lambda: _Inflate(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _Inflate(16 + zlib.MAX_WBITS),
    "deflate": _Deflate,
    "br": _Brotli,
}


class Decoder:
    """Undo a Content-Encoding chain in bounded pieces (see the module docstring)."""

    def __init__(self, content_encoding: str, *, url: str) -> None:
        # Codings are listed in the order applied (RFC 9110 §8.4), so undone in reverse.
        codings = [c.strip().lower() for c in reversed(content_encoding.split(","))]
        self._codings = [c for c in codings if c not in ("", "identity")]
        self._url = url
        self._stages: list[_Stage] = []
        for coding in self._codings:
            if coding not in _STAGES:
                # Like httpx, pass it through: misconfigured servers label plain bodies
                # "utf-8" or "none". Said out loud rather than silently.
                logger.warning("fetch unknown content-encoding url=%s error=%s", url, coding)
            self._stages.append(_STAGES.get(coding, _Identity)())

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk."""
        return self._guarded(self._through(0, iter((data,))))

    def finish(self) -> Iterator[bytes]:
        """Whatever the stages still hold once the raw body has ended."""
        return self._guarded(
            piece
            for index, stage in enumerate(self._stages)
            for piece in self._through(index + 1, stage.flush())
        )

    def _through(self, index: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from (piece for piece in pieces if piece)
            return
        for piece in pieces:
            yield from self._through(index + 1, self._stages[index].feed(piece))

    def _guarded(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from pieces
        except (zlib.error, brotli.error) as exc:
            coding = ", ".join(self._codings)
            raise FetchError(f"cannot decode {coding} body", url=self._url) from exc

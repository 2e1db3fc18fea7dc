"""Bytes to text: the page's charset as a browser would pick it, never failing.

The order follows the WHATWG encoding sniffing algorithm, simplified, with one addition
for pages that lie about their encoding:

1. a byte-order mark wins;
2. bytes that are valid UTF-8 are read as UTF-8, whatever the label says (servers often
   label UTF-8 pages iso-8859-1 by default; trafilatura #231);
3. the HTTP ``charset`` parameter, else a ``<meta charset>`` or ``<meta http-equiv>``
   in the first few kilobytes;
4. a page that declares UTF-8 (or nothing) but is not UTF-8: what the bytes look like
   (charset-normalizer: windows-1251, latin-1, Shift JIS, ...), else windows-1252, as
   browsers do for undeclared Western pages.

Decoding always uses ``errors="replace"`` so that a wrong guess costs a few replacement
characters, not the page.
"""

from __future__ import annotations

import codecs
import re

from ingest import charsets

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# The spec looks at the first 1024 bytes; real pages put long <script> blocks before the
# meta, so we look a little further (cheap: one regex over a bounded prefix).
_SNIFF_BYTES = 8192
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,500}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]{1,40})""", re.IGNORECASE
)

# WHATWG maps these labels to windows-1252, a superset that decodes what the page meant.
_LATIN1_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "ascii", "us-ascii"})


def decode_html(body: bytes, *, charset: str | None = None) -> str:
    """Decode a page body to text; never raises."""
    for bom, bom_encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_encoding, errors="replace")
    declared = _known_encoding(charset) or _known_encoding(_sniff_meta(body))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    # Valid UTF-8 wins over any other label: multi-byte UTF-8 sequences almost never
    # occur by chance in legacy-encoded text, while pages labelled iso-8859-1 by a
    # server default but written in UTF-8 are common (trafilatura #231).
    if text is not None:
        return text
    if declared is not None and declared != "utf-8":
        return body.decode(declared, errors="replace")
    # Declared UTF-8 (or nothing) yet not UTF-8: a mislabelled legacy page. Guess from
    # the bytes (windows-1251, latin-1, Shift JIS, ...), else windows-1252 as browsers do.
    return body.decode(_known_encoding(charsets.detect(body)) or "cp1252", errors="replace")


def _sniff_meta(body: bytes) -> str | None:
    match = _META_CHARSET.search(body, 0, _SNIFF_BYTES)
    return match.group(1).decode("ascii", errors="replace") if match else None


def _known_encoding(label: str | None) -> str | None:
    """The Python codec for a charset label, or None if unknown or unusable."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _LATIN1_LABELS:
        return "cp1252"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # codecs also knows bytes-to-bytes codecs (base64, zlib, rot13): not text encodings.
    if not getattr(info, "_is_text_encoding", True):
        return None
    name = info.name
    # A page that declares UTF-16 in a meta tag was necessarily read as ASCII-compatible
    # bytes to find that tag, so the declaration is wrong (the spec says use UTF-8).
    if name.startswith("utf-16") or name.startswith("utf-32"):
        return "utf-8"
    return name


def utf8_bytes(body: bytes, *, charset: str | None = None) -> bytes:
    """The page as valid UTF-8 bytes (what the parser reads), re-encoding only if needed.

    Most pages are UTF-8 already; handing their bytes through untouched saves decoding
    and re-encoding a few hundred kilobytes per page.
    """
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    elif not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = _known_encoding(charset) or _known_encoding(_sniff_meta(body))
        if declared in (None, "utf-8") and body.isascii():
            return body
        if declared in (None, "utf-8") and is_utf8(body):
            return body
    return decode_html(body, charset=charset).encode("utf-8", errors="replace")


# Chunks small enough to stay in cache while they are checked.
_CHECK_CHUNK = 16384


def is_utf8(body: bytes, *, chunk: int = _CHECK_CHUNK) -> bool:
    """Is ``body`` valid UTF-8 (as ``body.decode("utf-8")`` would say)?

    Decoding the whole page builds a string of it (two or four bytes a character once
    one curly quote is in it) only to throw it away. Chunk by chunk, chunks of ASCII
    are skipped and the rest decoded into small strings, the decoder carrying a
    sequence cut at a chunk's end into the next: 0.085 -> 0.050 ms a page on the
    benchmark pages. A sequence cut off by a chunk of ASCII is invalid, as it is in
    the whole page (no byte of a multi-byte sequence is ASCII).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(body), chunk):
            piece = body[start : start + chunk]
            if piece.isascii():
                decoder.decode(b"", True)  # raises if a sequence was left open
            else:
                decoder.decode(piece)
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return False
    return True

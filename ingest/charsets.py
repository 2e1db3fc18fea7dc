"""Guessing a text encoding from bytes, for pages and feeds that declare the wrong one.

charset-normalizer is imported here and nowhere else.
"""

from __future__ import annotations

import codecs

import charset_normalizer

# Detection reads this much: enough text for a confident guess, bounded cost per document.
DETECT_BYTES = 32768
# Below this the detector guesses wildly (it calls b"caf\xe9" UTF-16): not worth asking.
MIN_SAMPLE = 256


def detect(body: bytes) -> str | None:
    """The Python codec name of the most likely encoding of ``body``, or None if unsure."""
    sample = body[:DETECT_BYTES]
    if len(sample) < MIN_SAMPLE:
        return None
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return None
    try:
        name = codecs.lookup(best.encoding).name
        if name.startswith(("utf-16", "utf-32")):  # without a BOM: a misreading of ASCII
            return None
        # A guess that cannot decode the sample is no guess (short samples fool the
        # detector: it may answer UTF-8 for bytes that are not UTF-8).
        sample.decode(name, errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None
    return name

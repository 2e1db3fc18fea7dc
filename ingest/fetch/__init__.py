"""Fetch one URL over HTTP, politely and safely: the one package that imports httpx.

    client.py     Fetcher: one shared httpx transport, redirects, limits, error translation
    transport.py  DNS pinning: resolve once, check every address, connect to a checked one;
                  idle connections kept per origin
    http11.py     one HTTP/1.1 exchange at a time on a connection (the module that imports h11)
    addresses.py  which addresses are refused (private, loopback, metadata, ...)
    hosts.py      per-host politeness: concurrency, delay, Retry-After waits
    robots.py     robots.txt for article pages (the one module that imports protego)
    content.py    Content-Type parsing and "clearly not what you asked for"
    decode.py     Content-Encoding undone in bounded pieces (compression bombs)

The reliability of all this, fault by fault, is in RELIABILITY.md.
"""

from ingest.fetch.addresses import is_blocked_address
from ingest.fetch.client import DEFAULT_ACCEPT, Fetcher, user_agent
from ingest.fetch.hosts import parse_retry_after

__all__ = ["DEFAULT_ACCEPT", "Fetcher", "is_blocked_address", "parse_retry_after", "user_agent"]

"""Feeds over HTTP: RSS 2.0, Atom and Google News sitemaps -> article pages, politely.

:class:`Fetcher` is the only network code of the package and is used only by
``rag ingest`` (search and answers never touch the network). It honours
robots.txt, sends conditional requests (ETag / Last-Modified remembered in the
caller's state), keeps at least ``min_interval`` seconds between requests to
one host, times out, and retries timeouts, connection errors and 5xx answers
with exponential back-off; 4xx answers are final. Every failure is a
:class:`FetchError` naming the URL, so the caller can report it and go on.

:func:`parse_feed` turns feed bytes into :class:`FeedItem`\\ s with feedparser
(RSS, Atom) or ElementTree (sitemaps); :func:`decode_page` finds a page's
character set (header, ``<meta charset>``, UTF-8, then cp949 for Korean sites).
Writing articles and indexing them is :mod:`rag.store.feedindex`'s job.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from rag.errors import RagError
from rag.ingest.dates import iso_date

USER_AGENT = "rag-ingest/1 (+https://github.com/; news Q&A indexer)"
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.I)


class FetchError(RagError):
    """A feed or page could not be fetched or read; the message names the URL."""


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed: the article's URL and what the feed says about it."""

    url: str
    title: str = ""
    published: str = ""  # ISO date when the feed gives one
    outlet: str = ""  # the feed's title (the publication)


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int  # 200, or 304 when the conditional request found nothing new
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fetcher:
    """Polite HTTP GET (module docstring). ``validators`` maps URL -> {"etag", "last_modified"}."""

    timeout: float = 10.0  # seconds per request
    retries: int = 2  # further tries after a timeout, connection error or 5xx
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    min_interval: float = 1.0  # seconds between two requests to one host
    user_agent: str = USER_AGENT
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)
    _robots: dict[str, urllib.robotparser.RobotFileParser | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, url: str, conditional: bool = True) -> Response:
        """GET ``url``; FetchError when robots.txt forbids it or it fails after the retries."""
        if not self.allowed(url):
            raise FetchError(f"{url}: disallowed by robots.txt; skipped")
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        known = self.validators.get(url, {}) if conditional else {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        delay = self.backoff
        for attempt in range(self.retries + 1):
            self._wait(url)
            try:
                resp = self._open(url, headers)
            except _Retry as e:
                if attempt == self.retries:
                    raise FetchError(f"{url}: {e} (gave up after {self.retries + 1} tries)") from None
                time.sleep(delay)
                delay *= 2
                continue
            if resp.status == 200 and conditional:
                v = {k: resp.headers[h] for k, h in (("etag", "etag"), ("last_modified", "last-modified"))
                     if resp.headers.get(h)}
                if v:
                    self.validators[url] = v
            return resp
        raise AssertionError("unreachable")

    def _open(self, url: str, headers: dict[str, str]) -> Response:
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                body = r.read()
                return Response(r.geturl(), r.status, body, {k.lower(): v for k, v in r.headers.items()})
        except urllib.error.HTTPError as e:
            if e.code == 304:
                return Response(url, 304)
            if e.code >= 500 or e.code == 429:
                raise _Retry(f"HTTP {e.code} {e.reason}") from None
            raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise _Retry(f"timed out after {self.timeout:g}s" if "timed out" in str(reason) else str(reason)) from None

    def _wait(self, url: str) -> None:
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            wait = self._last.get(host, -1e9) + self.min_interval - now
            self._last[host] = now + max(0.0, wait)
        if wait > 0:
            time.sleep(wait)

    def allowed(self, url: str) -> bool:
        """robots.txt of the URL's host allows our user agent (a missing robots.txt allows everything;
        one that cannot be fetched, after retries, disallows, as RFC 9309 asks)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"{url}: only http and https URLs can be fetched")
        host = f"{parts.scheme}://{parts.netloc}"
        if host not in self._robots:
            self._robots[host] = self._read_robots(host)
        rp = self._robots[host]
        return True if rp is None else rp.can_fetch(self.user_agent, url)

    def _read_robots(self, host: str) -> urllib.robotparser.RobotFileParser | None:
        rp = urllib.robotparser.RobotFileParser(host + "/robots.txt")
        try:
            resp = self.get_robots(host + "/robots.txt")
        except FetchError as e:
            if re.search(r"HTTP 4\d\d", str(e)):
                return None  # no robots.txt: everything is allowed
            rp.parse(["User-agent: *", "Disallow: /"])
            return rp
        rp.parse(decode_page(resp.body, resp.headers).splitlines())
        return rp

    def get_robots(self, url: str) -> Response:
        headers = {"User-Agent": self.user_agent}
        delay = self.backoff
        for attempt in range(self.retries + 1):
            self._wait(url)
            try:
                return self._open(url, headers)
            except _Retry as e:
                if attempt == self.retries:
                    raise FetchError(f"{url}: {e}") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


class _Retry(Exception):
    """A failure worth another try (timeout, connection error, 5xx)."""


def decode_page(body: bytes, headers: dict[str, str] | None = None) -> str:
    """Page bytes as text: the charset the server or the page declares, else UTF-8, else cp949."""
    declared = []
    m = re.search(r"charset=([A-Za-z0-9_-]+)", (headers or {}).get("content-type", ""), re.I)
    if m:
        declared.append(m.group(1))
    m2 = _META_CHARSET.search(body[:4096])
    if m2:
        declared.append(m2.group(1).decode("ascii"))
    for enc in [*declared, "utf-8", "cp949"]:
        try:
            return body.decode("cp949" if enc.lower() in ("euc-kr", "ks_c_5601-1987") else enc)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("utf-8", errors="replace")


def parse_feed(body: bytes, url: str) -> list[FeedItem]:
    """Items of an RSS 2.0 / Atom feed or a (Google News) sitemap; FetchError naming ``url`` when it is
    neither or is broken."""
    head = body[:2048].lstrip()
    if b"<urlset" in head or b"<sitemapindex" in head:
        return _parse_sitemap(body, url)
    import feedparser

    parsed: Any = feedparser.parse(body)
    exc = parsed.get("bozo_exception")
    benign = isinstance(exc, feedparser.CharacterEncodingOverride)  # declared charset was wrong, text is fine
    if (parsed.bozo and not benign) or not parsed.get("version"):
        raise FetchError(f"{url}: not a readable RSS/Atom feed ({exc or 'no RSS or Atom root element'})")
    outlet = str(parsed.feed.get("title", "")).strip()
    items = []
    for e in parsed.entries:
        link = str(e.get("link", "")).strip()
        if not link:
            continue
        date = e.get("published") or e.get("updated") or ""
        items.append(FeedItem(urljoin(url, link), " ".join(str(e.get("title", "")).split()),
                              iso_date(str(date))[:10] if date else "", outlet))
    return items


def _parse_sitemap(body: bytes, url: str) -> list[FeedItem]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise FetchError(f"{url}: broken sitemap XML ({e})") from None
    items = []
    for u in root.iter(f"{_SITEMAP_NS}url"):
        loc = (u.findtext(f"{_SITEMAP_NS}loc") or "").strip()
        if not loc:
            continue
        news = u.find(f"{_NEWS_NS}news")
        title = date = outlet = ""
        if news is not None:
            title = " ".join((news.findtext(f"{_NEWS_NS}title") or "").split())
            date = (news.findtext(f"{_NEWS_NS}publication_date") or "").strip()
            outlet = (news.findtext(f"{_NEWS_NS}publication/{_NEWS_NS}name") or "").strip()
        date = date or (u.findtext(f"{_SITEMAP_NS}lastmod") or "").strip()
        items.append(FeedItem(urljoin(url, loc), title, iso_date(date)[:10] if date else "", outlet))
    return items

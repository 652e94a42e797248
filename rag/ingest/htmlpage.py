"""A saved web page -> its main text and metadata (title, author, date, url, site name, lang).

trafilatura extracts the article when it is installed and can; the standard
library's HTML parser is the fallback (visible text with paragraph breaks and
the ``<title>``). Values come back as found; :mod:`rag.ingest.corpus` cleans them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from rag.text import normalize

_SKIP_TAGS = frozenset(("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg"))
_BLOCK_TAGS = frozenset(("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "section"))


class _HtmlText(HTMLParser):
    """Stdlib fallback: visible text with paragraph breaks, and the <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in _SKIP_TAGS
        self._in_title = self._in_title or tag == "title"
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in _SKIP_TAGS and self._skip > 0
        self._in_title = self._in_title and tag != "title"
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def _trafilatura(html: str) -> dict[str, str]:
    try:
        import trafilatura

        result: Any = trafilatura.bare_extraction(
            html, with_metadata=True, include_comments=False,
            date_extraction_params={"extensive_search": False, "original_date": True},
        )  # fmt: skip
        data = result.as_dict() if hasattr(result, "as_dict") else dict(result or {})
    except Exception:  # optional extractor: any failure falls back to the stdlib parser
        return {}
    return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}


def html_main_text(html: str) -> tuple[dict[str, str], str]:
    """Raw metadata (title, author, published, url, outlet, lang) and the normalised main text."""
    found = _trafilatura(html)
    scan = _HtmlText()
    scan.feed(html)
    scan.close()
    lang = re.search(r"<html[^>]*?\slang=[\"']?([A-Za-z-]+)", html, re.I)
    meta = {
        "title": found.get("title") or scan.title,
        "author": found.get("author", ""),
        "published": found.get("date", ""),
        "url": found.get("url", ""),
        "outlet": found.get("sitename", ""),
        "lang": lang.group(1) if lang else "",
    }
    return meta, normalize(found.get("text", "").replace("\n", "\n\n") or "".join(scan.parts))

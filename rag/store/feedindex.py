"""``rag ingest``: new feed items -> article records on disk -> the index, incrementally.

One round: every feed is fetched (conditionally: an unchanged feed costs one
304), every item's page is fetched (conditionally too) and extracted with the
existing HTML path (:func:`rag.ingest.htmlpage.html_main_text`), and each article is
written as a one-record JSONL file under the feed folder
(``<folder>/<host>/<hash of the URL>.jsonl``, id ``feed/<host>/<hash>``). Then
:func:`rag.store.index.build_index` updates the index: only new and changed passages
are embedded.

Nothing indexed is removed: article files are only written, never deleted,
and the index is rebuilt from the configured corpus, the feed folder and every
file the previous index was built from. A feed or page that fails (HTTP
error, timeout, broken XML, no article text, robots.txt) is reported by URL
in ``problems`` and skipped; the rest of the round goes on.

De-duplication (:mod:`rag.ingest.dedup`): a page whose text is a near-duplicate of a
stored article from another outlet is not stored again; the stored record
keeps the earliest publisher and lists the others (``"copies"``, and as text in
``"also"``, which the index keeps and citations carry). A later
near-duplicate from the same outlet, or new text at the same URL, is a
correction: it replaces the older version in place (same id).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rag.config import Settings
from rag.errors import RagError
from rag.ingest.dates import iso_date
from rag.ingest.dedup import Article, NearDuplicates, also_text, classify, signatures
from rag.ingest.feeds import FeedItem, Fetcher, FetchError, decode_page, parse_feed
from rag.ingest.htmlpage import html_main_text

STATE_FORMAT = "rag-feeds/1"
STATE_FILE = ".feeds-state.json"  # hidden: the corpus loader skips it
MAX_ITEMS = 200  # items read per feed and round (a sitemap can list thousands)


@dataclass
class IngestReport:
    feeds: int = 0
    items: int = 0
    new: list[str] = field(default_factory=list)  # URLs stored for the first time
    updated: list[str] = field(default_factory=list)  # URLs whose stored text changed (corrections)
    unchanged: int = 0
    duplicates: list[dict[str, str]] = field(default_factory=list)  # {"url","of","kind"}
    problems: list[dict[str, str]] = field(default_factory=list)  # {"url","error"}
    index: dict[str, Any] | None = None  # rag.store.index.BuildReport.to_json() when the index was updated
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 2)
        return d


def read_feed_list(path: str | Path) -> list[str]:
    """Feed URLs from a text file: one a line; blank lines and ``#`` comments ignored."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RagError(f"--feeds {p}: cannot read it ({e}); expected one feed URL a line") from None
    urls = [ln.split("#", 1)[0].strip() for ln in lines]
    bad = [u for u in urls if u and not re.match(r"https?://", u)]
    if bad:
        raise RagError(f"--feeds {p}: {bad[0]!r} is not an http(s) URL; one feed URL a line")
    return [u for u in urls if u]


def default_folder(settings: Settings) -> Path:
    """Where feed articles are written: ``<first corpus folder>/feeds``, so ``rag index`` keeps them."""
    first = Path(settings.corpus[0]) if settings.corpus else Path("corpus")
    return (first if first.suffix.lower() != ".jsonl" else first.parent) / "feeds"


class Ingestor:
    """Fetches feeds into ``folder`` and keeps the index of ``settings`` up to date."""

    def __init__(self, settings: Settings, folder: Path, fetcher: Fetcher,
                 log: Callable[[str], None] = lambda m: None) -> None:
        self.settings = settings
        self.folder = Path(folder)
        self.fetcher = fetcher
        self.log = log
        self.state = self._load_state()
        fetcher.validators = self.state.setdefault("http", {})

    # ------------------------------------------------------------ state
    def _state_path(self) -> Path:
        return self.folder / STATE_FILE

    def _load_state(self) -> dict[str, Any]:
        p = self._state_path()
        if not p.exists():
            return {"format": STATE_FORMAT}
        try:
            state = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RagError(f"{p}: unreadable feed state ({e}); delete it to fetch everything again") from None
        if state.get("format") != STATE_FORMAT:
            raise RagError(f"{p}: format {state.get('format')!r}, expected {STATE_FORMAT}; delete it to start over")
        return dict(state)

    def _save_state(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self._state_path())

    # ------------------------------------------------------------ records
    def _path_for(self, url: str) -> Path:
        host = re.sub(r"[^\w.-]+", "_", urlsplit(url).netloc) or "local"
        return self.folder / host / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".jsonl")

    def _records(self) -> dict[Path, dict[str, Any]]:
        out = {}
        for p in sorted(self.folder.glob("*/*.jsonl")):
            try:
                out[p] = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        return out

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    # ------------------------------------------------------------ a round
    def run(self, feeds: Sequence[str], index: bool = True, progress: bool = False, embedder: Any = None
            ) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport(feeds=len(feeds))
        records = self._records()
        dups = NearDuplicates()
        known = list(records.items())
        # stored articles' signatures come from the cache: a round does not analyse them again
        sigs = signatures([r.get("text", "") for _, r in known], Path(self.settings.cache_dir) / "minhash.sqlite")
        for (p, r), m in zip(known, sigs, strict=True):
            dups.add(_article(str(p), r), m)
        for feed in feeds:
            self._feed(feed, report, records, dups)
        self._save_state()
        if index and (report.new or report.updated):
            from rag.store.index import build_index

            self.log(f"rag: indexing {len(report.new)} new and {len(report.updated)} changed articles")
            built = build_index(self.settings, self._corpus(), self.settings.index_dir, progress=progress,
                                embedder=embedder)
            report.index = built.to_json()
        report.seconds = time.perf_counter() - t0
        return report

    def _feed(self, feed: str, report: IngestReport, records: dict[Path, dict[str, Any]],
              dups: NearDuplicates) -> None:
        try:
            resp = self.fetcher.get(feed)
            if resp.status == 304:
                self.log(f"rag: {feed}: not modified")
                return
            items = parse_feed(resp.body, feed)[:MAX_ITEMS]
        except FetchError as e:
            self.log(f"rag: skipped feed {e}")
            report.problems.append({"url": feed, "error": str(e)})
            return
        self.log(f"rag: {feed}: {len(items)} items")
        for item in items:
            report.items += 1
            try:
                self._item(item, report, records, dups)
            except FetchError as e:
                self.log(f"rag: skipped page {e}")
                report.problems.append({"url": item.url, "error": str(e)})

    def _item(self, item: FeedItem, report: IngestReport, records: dict[Path, dict[str, Any]],
              dups: NearDuplicates) -> None:
        path = self._path_for(item.url)
        resp = self.fetcher.get(item.url, conditional=path.exists())
        if resp.status == 304:
            report.unchanged += 1
            return
        meta, body = html_main_text(decode_page(resp.body, resp.headers))
        if len(body.strip()) < 20:
            raise FetchError(f"{item.url}: no article text on the page")
        published = iso_date(meta.get("published", ""))[:10] or item.published
        record = {
            "id": "feed/" + path.parent.name + "/" + path.stem, "title": item.title or meta.get("title", ""),
            "text": body, "url": item.url, "published": published, "outlet": item.outlet or meta.get("outlet", ""),
            "lang": meta.get("lang", ""),
        }
        old = records.get(path)
        if old is not None and old.get("text") == body:
            report.unchanged += 1
            return
        kind, other = classify(_article(str(path), record), dups) if old is None else ("correction", None)
        if kind == "same":
            report.unchanged += 1
            return
        if kind == "syndicated" and other is not None:
            self._syndicated(Path(other.key), record, records, dups, report)
            return
        if kind == "correction" and other is not None:  # a later version of a stored story: replace it in place
            target = Path(other.key)
            record["id"] = records[target]["id"]
            for k in ("copies", "also"):
                if records[target].get(k):
                    record[k] = records[target][k]
            path = target
        self._write(path, record)
        is_new = path not in records
        records[path] = record
        dups.add(_article(str(path), record))
        (report.new if is_new else report.updated).append(item.url)
        self.log(f"rag: {'new' if is_new else 'updated'} {item.url}")

    def _syndicated(self, target: Path, record: dict[str, Any], records: dict[Path, dict[str, Any]],
                    dups: NearDuplicates, report: IngestReport) -> None:
        """One copy per story: the earliest publisher's text; the others listed under "also"."""
        kept = records[target]
        copies = list(kept.get("copies", []))
        newer = dict(record)
        swapped = bool(record["published"] and kept.get("published") and record["published"] < kept["published"])
        if swapped:  # the new copy was published first: it becomes the kept one (same id, same file)
            newer, kept = kept, {**record, "id": kept["id"]}
        entry = {k: newer.get(k, "") for k in ("outlet", "url", "published", "title")}
        if entry["url"] not in {a.get("url") for a in copies}:
            copies.append(entry)
        kept = {**kept, "copies": copies, "also": also_text(copies)}
        self._write(target, kept)
        records[target] = kept
        dups.add(_article(str(target), kept))
        report.duplicates.append({"url": record["url"], "of": str(kept["url"]), "kind": "syndicated"})
        if swapped:
            report.updated.append(record["url"])

    def _corpus(self) -> list[str]:
        """The configured corpus that exists, the feed folder, and every file the index holds now."""
        paths = [p for p in self.settings.corpus if Path(p).exists()]
        folder = self.folder.resolve()
        if not any(_inside(folder, Path(p)) for p in paths):
            paths.append(str(self.folder))
        try:
            from rag.store.indexfiles import load_index

            old = load_index(self.settings.index_dir, self.settings)
        except RagError:
            return paths
        for meta in old.docs.values():
            src = re.sub(r":\d+$", "", meta.get("source", ""))
            if src and Path(src).exists() and not any(_inside(Path(src).resolve(), Path(p)) for p in paths):
                paths.append(src)
        return list(dict.fromkeys(paths))


def _inside(path: Path, root: Path) -> bool:
    root = root.resolve()
    return path == root or root in path.parents


def _article(key: str, r: dict[str, Any]) -> Article:
    return Article(key, r.get("text", ""), r.get("outlet", ""), r.get("published", ""), r.get("url", ""))


def parse_every(text: str) -> float:
    """"15m", "30s", "1h", "90" (seconds) -> seconds; ValueError naming the fix."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; write e.g. 15m, 30s or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]

"""Corpus loading: article files and JSONL records -> :class:`~rag.records.Document`.

What it does: walks folders (sorted, recursively; hidden files and README files
skipped) and reads ``.md``/``.markdown`` (optional YAML front matter), ``.txt``
(headline line), ``.html``/``.htm`` (trafilatura main text and metadata, a
stdlib fallback) and ``.jsonl`` (one ``{"id","title","text",...}`` record a
line). Every text is normalised (:func:`rag.text.normalize`) and cleared of web
boilerplate (:func:`strip_boilerplate`: comment forms, copyright and share
lines, a trailing byline whose name becomes ``author``). Ids are stable: the
record's ``id``, the front matter ``id``, else the file's relative path.

Bad input never aborts a build: an unreadable file or a malformed record
becomes a :class:`Problem` (path, line, what to fix) and the rest loads. Only a
path the user named that does not exist (or has an unsupported type) raises
:class:`~rag.errors.CorpusError`.

What it deliberately does not do: chunk, embed or fetch anything over the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import CorpusError
from rag.ingest.boilerplate import strip_boilerplate
from rag.ingest.dates import iso_date
from rag.ingest.htmlpage import html_main_text
from rag.ingest.safefile import MAX_FILE_BYTES, MAX_LINE_BYTES, read_bytes, reason
from rag.ingest.safefile import Skip as _Skip
from rag.ingest.safefile import decode as _decode
from rag.records import Document
from rag.text import detect_lang, normalize

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
SUFFIXES = (*ARTICLE_SUFFIXES, ".jsonl")
META_FIELDS = ("title", "url", "published", "outlet", "author", "lang")
EXTRA_FIELDS = ("also",)  # optional; kept out of the sha256 when empty, so older indexes stay up to date
_ALIASES = {"date": "published", "source": "outlet", "sitename": "outlet", "language": "lang"}


@dataclass(frozen=True)
class Problem:
    """A file or record that was skipped, and why."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass(frozen=True)
class LoadResult:
    documents: tuple[Document, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass
class _Raw:
    """A parsed article before ids and hashes are assigned."""

    text: str
    meta: dict[str, str]
    path: str
    line: int | None = None  # JSONL line
    id: str | None = None  # explicit id (JSONL, front matter)
    auto_id: str = ""  # fallback id derived from the path

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


# ---------------------------------------------------------------- reading


def _meta_value(key: str, value: Any, strict: bool = False) -> str:
    """A metadata value as text; YAML dates, numbers and lists of names are converted unless ``strict``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if strict:
        raise _Skip(f"field {key!r} must be a string, got {type(value).__name__}")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(v.strip() for v in value)
    raise _Skip(f"field {key!r} must be text, got {type(value).__name__}")


def _collect_meta(data: dict[str, Any], strict: bool = False) -> dict[str, str]:
    meta: dict[str, str] = {}
    for key, value in data.items():
        name = _ALIASES.get(str(key).lower(), str(key).lower())
        if (name in META_FIELDS or name in EXTRA_FIELDS) and not meta.get(name):
            meta[name] = _meta_value(str(key), value, strict)
    if meta.get("published"):  # "2025. 8. 4.", "Aug 4, 2025" -> "2025-08-04"; anything else stays as written
        meta["published"] = iso_date(meta["published"]) or meta["published"]
    return meta


_FENCE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---`` YAML front matter from the body; the body is returned unchanged."""
    if not text.startswith("---\n"):
        return {}, text
    close = _FENCE.search(text, 4)
    if not close:
        raise _Skip("front matter opened with '---' is never closed; add a '---' line after it", 1)
    import yaml

    try:
        data = yaml.safe_load(text[4 : close.start()])
    except RecursionError:
        raise _Skip("front matter is nested too deeply; use flat 'key: value' lines", 2) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(e, "problem", None) or "invalid YAML"
        raise _Skip(
            f"malformed YAML front matter: {reason}; fix it or delete the '---' block", line
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _Skip("front matter must be 'key: value' lines (title, outlet, author, published, url)", 2)
    return data, text[close.end() :]


def _drop_heading(body: str, title: str) -> tuple[str, str]:
    """Drop a leading ``# Heading`` equal to the title (or use it as the missing title)."""
    m = re.match(r"\s*#[ \t]+(.+?)[ \t#]*(?:\n|$)", body)
    if m and (not title or m.group(1).strip() == title):
        return body[m.end() :], title or m.group(1).strip()
    return body, title


def _parse_text_file(text: str, markdown: bool) -> tuple[dict[str, str], str]:
    data, body = _front_matter(text)
    meta = _collect_meta(data)
    if data.get("id") is not None:
        meta["id"] = _meta_value("id", data["id"])
    if markdown:
        body, meta["title"] = _drop_heading(body, meta.get("title", ""))
    elif not meta.get("title"):
        m = re.match(r"\s*([^\n]+)\n[ \t]*\n(?=\s*\S)", body)
        head = m.group(1).strip() if m else ""
        if head and len(head) < 200 and not (head.endswith(".") and not head.endswith("..")):
            meta["title"] = head
            body = body[m.end() :] if m else body
    return meta, body


def _load_jsonl(
    path: Path, source: str, max_bytes: int = MAX_FILE_BYTES, max_line: int = MAX_LINE_BYTES
) -> Iterator[_Raw | Problem]:
    try:
        data = read_bytes(path, max_bytes)
        if b"\x00" in data:
            raise _Skip("binary file (contains NUL bytes); JSONL must be UTF-8 text")
    except _Skip as e:
        yield Problem(source, None, str(e))
        return
    for lineno, raw_line in enumerate(data.split(b"\n"), 1):
        if not raw_line.strip():
            continue
        try:
            if len(raw_line) > max_line:
                raise _Skip(f"line is {len(raw_line):,} bytes, over the limit of {max_line:,} "
                            "(RAG_MAX_LINE_BYTES); split the record or raise the limit")
            obj = json.loads(_decode(raw_line))
            if not isinstance(obj, dict):
                raise _Skip(f"expected a JSON object, got {type(obj).__name__}")
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                got = "empty" if isinstance(text, str) else type(text).__name__
                raise _Skip(f'"text" must be a non-empty string ({"missing" if text is None else got})')
            rid = obj.get("id")
            if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
                raise _Skip(f'"id" must be a string, got {type(rid).__name__}')
            meta = _collect_meta({k: v for k, v in obj.items() if k not in ("id", "text")}, strict=True)
        except json.JSONDecodeError as e:
            yield Problem(source, lineno, f"invalid JSON: {e.msg} (column {e.colno})")
            continue
        except _Skip as e:
            yield Problem(source, lineno, str(e))
            continue
        except RecursionError:
            yield Problem(source, lineno, "invalid JSON: nested too deeply")
            continue
        except Exception as e:  # e.g. ValueError for an integer of thousands of digits: this line only
            yield Problem(source, lineno, f"invalid JSON: {reason(e)}")
            continue
        rid_s = str(rid).strip() if rid is not None else ""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        yield _Raw(text, meta, source, lineno, id=rid_s or None, auto_id=f"{_slug(path.stem)}-{digest}")


def _parse_html(html: str) -> tuple[dict[str, str], str]:
    """Main text and metadata (title, author, date, url, site name, lang) of a saved web page."""
    raw_meta, body = html_main_text(html)
    meta = _collect_meta(raw_meta)
    first, _, rest = body.partition("\n")
    if meta["title"] and " ".join(first.split()) == meta["title"]:
        body = rest
    return meta, body


def _load_article(path: Path, source: str, rel: str, max_bytes: int = MAX_FILE_BYTES) -> _Raw:
    suffix = path.suffix.lower()
    raw = _decode(read_bytes(path, max_bytes))
    if suffix in (".html", ".htm"):
        meta, body = _parse_html(raw)
    else:
        meta, body = _parse_text_file(normalize(raw), markdown=suffix in (".md", ".markdown"))
    rid = meta.pop("id", "") or None
    return _Raw(body, meta, source, id=rid, auto_id=_slug(rel))


# ---------------------------------------------------------------- ids and documents


def _slug(rel: str) -> str:
    stem = re.sub(r"\.[^./]+$", "", rel.replace(os.sep, "/"))
    return re.sub(r"[^\w.\-/]+", "-", stem).strip("-/") or "doc"


def _finish(raw: _Raw, doc_id: str) -> Document | None:
    body, found = strip_boilerplate(normalize(raw.text))
    if not body:
        return None
    meta = {k: raw.meta.get(k, "") or found.get(k, "") for k in META_FIELDS}
    meta["title"] = " ".join(normalize(meta["title"]).split())
    lang = re.split(r"[-_]", meta["lang"].lower())[0] if meta["lang"] else ""
    meta["lang"] = lang or detect_lang(meta["title"] + "\n" + body)
    header = metadata_header(meta)
    text = f"{header}\n\n{body}" if header else body
    extra = {k: raw.meta[k] for k in EXTRA_FIELDS if raw.meta.get(k)}
    payload = json.dumps({"doc_id": doc_id, "text": text, **meta, **extra}, sort_keys=True, ensure_ascii=False)
    sha = hashlib.sha256(payload.encode()).hexdigest()
    body_start = len(header) + 2 if header else 0
    return Document(doc_id=doc_id, text=text, source=raw.source, sha256=sha, body_start=body_start, **meta,
                    **extra)


HEADER_LABELS = {
    "ko": {"outlet": "매체", "author": "기자", "published": "날짜"},
    "en": {"outlet": "Outlet", "author": "Author", "published": "Published"},
}


def metadata_header(meta: dict[str, str]) -> str:
    """A short header paragraph rendered from the article's metadata.

    It becomes the first passage of the document so that questions such as
    "which outlet published this?" find, and cite, an exact span. It is built
    only from metadata (the original byline line is removed from the body) and
    only when the article states an outlet, author or date.
    """
    labels = HEADER_LABELS["ko" if meta.get("lang") == "ko" else "en"]
    fields = [f"{label}: {meta[key]}" for key, label in labels.items() if meta.get(key)]
    if not fields:
        return ""
    return "\n".join(x for x in (meta.get("title", ""), " | ".join(fields)) if x)


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and not name.lower().startswith("readme."):
                yield Path(dirpath) / name


def _targets(paths: Sequence[str | Path] | str | Path) -> Iterator[tuple[Path, str]]:
    """(file, id path) pairs; raises CorpusError for a path the user got wrong."""
    for given in [paths] if isinstance(paths, str | Path) else paths:
        p = Path(given)
        if p.is_dir():
            for f in _files(p):
                yield f, str(f.relative_to(p))
        elif p.is_file() or (p.exists() and p.suffix.lower() in SUFFIXES):  # a FIFO: reported when read
            if p.suffix.lower() not in SUFFIXES:
                kinds = ", ".join(SUFFIXES)
                raise CorpusError(f"{p}: unsupported file type {p.suffix!r}; pass a folder or a {kinds} file")
            yield p, p.name
        else:
            raise CorpusError(f"{p}: no such file or folder; pass a corpus folder or a .jsonl file")


def _real(f: Path) -> Path:
    try:
        return f.resolve()
    except (OSError, RuntimeError):  # a symlink loop: reported when the file is read
        return f.absolute()


def _load_file(f: Path, rel: str, max_bytes: int, max_line: int) -> tuple[list[_Raw], list[Problem]]:
    source, suffix = str(f), f.suffix.lower()
    if suffix == ".jsonl":
        items = list(_load_jsonl(f, source, max_bytes, max_line))
        return [r for r in items if isinstance(r, _Raw)], [p for p in items if isinstance(p, Problem)]
    if suffix in ARTICLE_SUFFIXES:
        try:
            return [_load_article(f, source, rel, max_bytes)], []
        except _Skip as e:
            return [], [Problem(source, e.line, str(e))]
    return [], [Problem(source, None, f"unsupported file type {suffix!r}; skipped")]


def load_corpus(
    paths: Sequence[str | Path] | str | Path, max_file_bytes: int = MAX_FILE_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> LoadResult:
    """Load every article under ``paths`` (folders and/or files), sorted and deduplicated.

    Whatever goes wrong with one file (any exception: deep nesting, huge numbers, a parser bug)
    skips that file with a :class:`Problem` naming it; the build goes on.
    """
    raws: list[_Raw] = []
    problems: list[Problem] = []
    seen_files: set[Path] = set()
    for f, rel in list(_targets(paths)):  # every path is checked before anything is read
        real = _real(f)
        if real in seen_files:
            continue
        seen_files.add(real)
        try:
            got, bad = _load_file(f, rel, max_file_bytes, max_line_bytes)
        except RecursionError:
            got, bad = [], [Problem(str(f), None, "nested too deeply to read; skipped")]
        except Exception as e:  # the file boundary: one bad file never aborts the build
            got, bad = [], [Problem(str(f), None, f"cannot be read ({reason(e)}); skipped")]
        raws += got
        problems += bad
    return _assign_ids(raws, problems)


def _assign_ids(raws: list[_Raw], problems: list[Problem]) -> LoadResult:
    taken: dict[str, str] = {}
    for r in raws:
        if r.id and r.id not in taken:
            taken[r.id] = r.source
    docs: list[Document] = []
    claimed: set[str] = set()
    for r in raws:
        if r.id:
            if r.id in claimed:
                msg = f"duplicate id {r.id!r} (first used by {taken[r.id]}); give each record its own id"
                problems.append(Problem(r.path, r.line, msg))
                continue
            doc_id = r.id
        else:
            doc_id, n = r.auto_id, 1
            while doc_id in taken or doc_id in claimed:
                n += 1
                doc_id = f"{r.auto_id}-{n}"
        claimed.add(doc_id)
        try:
            doc = _finish(r, doc_id)
        except Exception as e:  # the record boundary, as in load_corpus
            problems.append(Problem(r.path, r.line, f"cannot be read ({reason(e)}); skipped"))
            continue
        if doc is None:
            problems.append(Problem(r.path, r.line, "no article text (empty body, or only page boilerplate)"))
            continue
        docs.append(doc)
    return LoadResult(tuple(docs), tuple(problems))

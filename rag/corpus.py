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
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rag.errors import CorpusError
from rag.records import Document
from rag.text import detect_lang, has_hangul, normalize

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
SUFFIXES = (*ARTICLE_SUFFIXES, ".jsonl")
META_FIELDS = ("title", "url", "published", "outlet", "author", "lang")
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


class _Skip(Exception):
    """Internal: this file or record cannot be used (becomes a Problem)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


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


# ---------------------------------------------------------------- boilerplate

_SHORT = 160  # only lines up to this long are judged by pattern; real prose is left alone
_COMMENT_START = re.compile(
    r"^(?:답글\s*남기기|댓글\s*(?:남기기|달기|쓰기)|댓글\s*\d*\s*개?|\d+\s*개의\s*댓글|"
    r"leave\s+a\s+(?:reply|comment)|post\s+a\s+comment|add\s+a\s+comment|\d*\s*comments?|"
    r"join\s+the\s+(?:discussion|conversation)|이메일\s*주소는\s*공개되지\s*않습니다.*|"
    r"your\s+email\s+address\s+will\s+not\s+be\s+published.*)\s*[:：]?$",
    re.I,
)
_FOOTER = re.compile(
    r"^(?:(?:ⓒ|©|\(c\))\s*\S.*|copyright\s*(?:[©ⓒ:]|\(c\)|\d{4}).*|\[?저작권자\s*(?:[©ⓒ:(]|\(c\)).*|"
    r".*(?:무단\s*전재|재배포\s*금지|all\s+rights\s+reserved|recaptcha).*|"
    r"(?:공유하기|공유|구독하기|구독|share(?:\s+this)?(?:\s+(?:article|story|post))?|share\s+on\s+\w+|"
    r"subscribe(?:\s+now|\s+to\s+[^.]{0,60})?|newsletter|sign\s+up\s+for\s+[^.]{0,40}newsletter)\s*[!.:：]?|"
    r"(?:이름|이메일|웹사이트|name|e-?mail|website|comment|댓글)\s*\*?\s*[:：]?|"
    r"(?:다음\s*번\s*댓글\s*작성을\s*위해.*|save\s+my\s+name,\s+email.*|댓글\s*등록|post\s+comment|"
    r"submit\s+comment|reply)|<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?)$",
    re.I,
)
_EMAIL = r"(?:<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?)"
_KO_BYLINE = re.compile(
    r"^[-—/]?\s*[<(\[]?\s*([가-힣]{2,4}(?:\s*[·,]\s*[가-힣]{2,4})*)\s*"
    r"(?:기자|특파원|선임기자|전문기자|객원기자|인턴기자|에디터|칼럼니스트)\s*[>)\]]?\s*" + _EMAIL + r"?\s*$"
)
_EN_BYLINE = re.compile(
    r"^[-—–]?\s*(?:By|BY)\s+((?:[A-Z][\w.'’-]*)(?:\s+(?:[A-Z][\w.'’-]*|de|van|von|der|da|la|and))*)"
    r"(?:\s*[,|/]\s*[A-Z][\w.'’& -]{0,40})?\s*" + _EMAIL + r"?$"
)
_CREDIT = re.compile(r"^(?:글|기사|취재)\s*[.:·]\s*(\S.{0,40})$")


def _byline(line: str) -> str:
    m = _KO_BYLINE.match(line) or _EN_BYLINE.match(line)
    return re.sub(r"\s*[·]\s*", ", ", m.group(1)).strip() if m else ""


def strip_boilerplate(text: str) -> tuple[str, dict[str, str]]:
    """Remove web-page boilerplate from a normalised article text.

    Cuts a trailing comment-form block (from "답글 남기기"/"Leave a Reply"/the
    e-mail notice to the end, when it starts after the first 30% of the text),
    then trailing footer and byline lines, then short standalone footer lines
    anywhere (copyright, 무단전재, reCAPTCHA, share/subscribe). Returns the body
    and metadata found on the way: ``author`` from a byline ("NAME 기자 e-mail",
    "By NAME"), ``outlet`` from a "글. OUTLET" credit next to a byline. The
    credit line itself stays in the body: it is the only place in the text that
    names the outlet, so "who published this?" can be answered with a citation.
    """
    lines = text.split("\n")
    found: dict[str, str] = {}
    pos = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if pos >= 0.3 * len(text) and len(s) <= _SHORT and _COMMENT_START.match(s):
            lines = lines[:i]
            break
        pos += len(line) + 1
    credit, i = "", len(lines)
    while i > 0:  # trailing footer/byline lines; a "글. OUTLET" credit stays (it can be cited)
        i -= 1
        s = lines[i].strip()
        if len(s) > _SHORT:
            break
        name, credit_m = _byline(s), _CREDIT.match(s)
        if credit_m:
            credit = credit_m.group(1).strip()
            continue
        if name:
            found.setdefault("author", name)
        elif s and not (_FOOTER.match(s) or _COMMENT_START.match(s)):
            break
        lines[i] = ""
    if credit:  # "글. 홍길동" names a writer, "글. 바이라인네트워크" the outlet
        person = "author" not in found and re.fullmatch(r"[가-힣]{2,4}", credit)
        found.setdefault("author" if person else "outlet", credit)
    head = [i for i, line in enumerate(lines[:4]) if line.strip()][:2]
    for i in head:
        m = _EN_BYLINE.match(lines[i].strip())
        if m and "author" not in found:
            found["author"] = m.group(1).strip()
            lines[i] = ""
    kept = [ln for ln in lines if not (len(ln.strip()) <= _SHORT and _FOOTER.match(ln.strip()))]
    return normalize("\n".join(kept)), found


# ---------------------------------------------------------------- reading


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else legacy Korean cp949/euc-kr; anything else is skipped."""
    if b"\x00" in data:
        raise _Skip("binary file (contains NUL bytes); only UTF-8 text articles can be indexed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        err = e
    try:
        legacy = data.decode("cp949")
    except UnicodeDecodeError:
        legacy = ""
    if legacy and has_hangul(legacy) and not re.search(r"[\x00-\x08\x0e-\x1f]", legacy):
        return legacy
    raise _Skip(
        f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}) nor Korean cp949/euc-kr; "
        "re-save the file as UTF-8"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _Skip(f"cannot read file: {e.strerror or e}") from None
    if not data.strip():
        raise _Skip("empty file")
    return data


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
        if name in META_FIELDS and not meta.get(name):
            meta[name] = _meta_value(str(key), value, strict)
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


def _load_jsonl(path: Path, source: str) -> Iterator[_Raw | Problem]:
    try:
        data = _read_bytes(path)
        if b"\x00" in data:
            raise _Skip("binary file (contains NUL bytes); JSONL must be UTF-8 text")
    except _Skip as e:
        yield Problem(source, None, str(e))
        return
    for lineno, raw_line in enumerate(data.split(b"\n"), 1):
        if not raw_line.strip():
            continue
        try:
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
        rid_s = str(rid).strip() if rid is not None else ""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        yield _Raw(text, meta, source, lineno, id=rid_s or None, auto_id=f"{_slug(path.stem)}-{digest}")


# ---------------------------------------------------------------- HTML

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


def _parse_html(html: str) -> tuple[dict[str, str], str]:
    """Main text and metadata (title, author, date, url, site name, lang) of a saved web page."""
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
    meta = _collect_meta(meta)
    body = normalize(found.get("text", "").replace("\n", "\n\n") or "".join(scan.parts))
    first, _, rest = body.partition("\n")
    if meta["title"] and " ".join(first.split()) == meta["title"]:
        body = rest
    return meta, body


def _load_article(path: Path, source: str, rel: str) -> _Raw:
    suffix = path.suffix.lower()
    raw = _decode(_read_bytes(path))
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
    payload = json.dumps({"doc_id": doc_id, "text": text, **meta}, sort_keys=True, ensure_ascii=False)
    sha = hashlib.sha256(payload.encode()).hexdigest()
    body_start = len(header) + 2 if header else 0
    return Document(doc_id=doc_id, text=text, source=raw.source, sha256=sha, body_start=body_start, **meta)


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
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                kinds = ", ".join(SUFFIXES)
                raise CorpusError(f"{p}: unsupported file type {p.suffix!r}; pass a folder or a {kinds} file")
            yield p, p.name
        else:
            raise CorpusError(f"{p}: no such file or folder; pass a corpus folder or a .jsonl file")


def load_corpus(paths: Sequence[str | Path] | str | Path) -> LoadResult:
    """Load every article under ``paths`` (folders and/or files), sorted and deduplicated."""
    raws: list[_Raw] = []
    problems: list[Problem] = []
    seen_files: set[Path] = set()
    for f, rel in list(_targets(paths)):  # every path is checked before anything is read
        if f.resolve() in seen_files:
            continue
        seen_files.add(f.resolve())
        source, suffix = str(f), f.suffix.lower()
        if suffix == ".jsonl":
            for item in _load_jsonl(f, source):
                if isinstance(item, Problem):
                    problems.append(item)
                else:
                    raws.append(item)
        elif suffix in ARTICLE_SUFFIXES:
            try:
                raws.append(_load_article(f, source, rel))
            except _Skip as e:
                problems.append(Problem(source, e.line, str(e)))
        else:
            problems.append(Problem(source, None, f"unsupported file type {suffix!r}; skipped"))
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
        doc = _finish(r, doc_id)
        if doc is None:
            problems.append(Problem(r.path, r.line, "no article text (empty body, or only page boilerplate)"))
            continue
        docs.append(doc)
    return LoadResult(tuple(docs), tuple(problems))

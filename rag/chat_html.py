"""HTML fragments of the chat page: messages, citations, the source panel, UI strings.

Every piece of text that comes from an article, a question or an answer goes
through :func:`esc` before it touches markup, and links are emitted only for
http(s) URLs (:func:`safe_url`). The chat messages are additionally sanitised by
Gradio's Chatbot; the source panel is not, so this module is the only guard
there. Elements carry their turn and citation number in class names
(``rag-t-3 rag-n-1``) because the Chatbot's sanitiser drops ``data-*``
attributes. Pure functions only: no Gradio import, no I/O.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from rag.records import Answer, Citation, understood_as

LANGS = ("ko", "en")

STRINGS: dict[str, dict[str, str]] = {
    "ko": {
        "title": "뉴스 Q&A",
        "subtitle": "기사에 근거해서만 답하고, 모든 문장에 출처 번호를 답니다. "
        "번호를 누르면 원문 문장이 보입니다.",
        "chat": "대화",
        "placeholder": "기사에 대해 질문하세요",
        "send": "보내기",
        "new": "새 대화",
        "examples": "예시 질문",
        "lang": "언어",
        "sources": "출처",
        "copy": "복사",
        "copied": "복사됨",
        "abstain": "기사에서 답을 찾지 못했습니다",
        "unsupported": "출처로 확인되지 않은 문장",
        "unsupported_legend": "⚠ 표시된 문장은 인용한 기사에서 확인되지 않았습니다.",
        "panel_title": "출처",
        "panel_empty": "답변의 [1] 같은 번호를 누르면 출처 기사와 인용된 문장이 여기에 나옵니다.",
        "outlet": "언론사",
        "author": "기자",
        "date": "날짜",
        "link": "링크",
        "none": "—",
        "not_web": "(웹 주소가 아니어서 열지 않습니다)",
        "passage": "인용 문단",
        "close": "닫기",
        "thinking": "기사를 찾는 중…",
        "error": "답변을 만드는 중 오류가 발생했습니다",
        "too_long": "질문이 너무 깁니다 ({n}자). {max}자 이하로 줄여 주세요.",
        "not_ready": "검색 색인이 아직 준비되지 않았습니다",
        "empty_chat": "기사에 대해 한국어나 영어로 물어보세요. "
        "답변의 번호를 누르면 근거 문장을 확인할 수 있습니다.",
    },
    "en": {
        "title": "News Q&A",
        "subtitle": "Answers only from the articles; every sentence carries a source number. "
        "Click a number to see the source sentence.",
        "chat": "Conversation",
        "placeholder": "Ask about the articles",
        "send": "Send",
        "new": "New chat",
        "examples": "Example questions",
        "lang": "Language",
        "sources": "Sources",
        "copy": "Copy",
        "copied": "Copied",
        "abstain": "No answer found in the articles",
        "unsupported": "Not supported by the cited source",
        "unsupported_legend": "⚠ Marked sentences are not supported by the cited articles.",
        "panel_title": "Source",
        "panel_empty": "Click a number such as [1] in an answer to see its article and the cited sentence "
        "here.",
        "outlet": "Outlet",
        "author": "Author",
        "date": "Date",
        "link": "Link",
        "none": "—",
        "not_web": "(not a web address, not opened)",
        "passage": "Cited passage",
        "close": "Close",
        "thinking": "Searching the articles…",
        "error": "Something went wrong while answering",
        "too_long": "The question is too long ({n} characters). Please keep it under {max}.",
        "not_ready": "The search index is not ready yet",
        "empty_chat": "Ask about the articles in English or Korean. Click a number in an answer to check its "
        "source sentence.",
    },
}

_MARKER_RE = re.compile(r"\[(\d{1,3})\]")


def t(lang: str, key: str) -> str:
    """The UI string ``key`` in ``lang`` (English when unknown)."""
    return STRINGS.get(lang, STRINGS["en"])[key]


def pick_lang(preferred: str) -> str:
    """``"ko"`` or ``"en"`` from a browser's language list (``"ko-KR,en-US"``); English otherwise."""
    for tag in preferred.replace(";", ",").split(","):
        code = tag.strip().lower()[:2]
        if code in LANGS:
            return code
    return "en"


def esc(text: object) -> str:
    """Escape for element content and quoted attribute values."""
    return html.escape(str(text), quote=True)


def safe_url(url: str) -> str | None:
    """``url`` when it is an absolute http(s) URL without control characters, else None."""
    url = url.strip()
    if not url or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _text(text: str) -> str:
    """Escaped text with line breaks as <br> (no literal newline: it would end the HTML block in markdown)."""
    return esc(text).replace("\r\n", "\n").replace("\n", "<br>")


def _cite_button(turn: int, n: int, title: str) -> str:
    return (f'<button type="button" class="rag-cite rag-t-{turn} rag-n-{n}" title="{esc(title)}">'
            f"[{n}]</button>")


def _linkify(text: str, turn: int, titles: dict[int, str]) -> str:
    """Escape ``text``; ``[n]`` markers of known citations become buttons."""
    out, pos = [], 0
    for m in _MARKER_RE.finditer(text):
        n = int(m.group(1))
        if n not in titles:
            continue
        out.append(_text(text[pos:m.start()]))
        out.append(_cite_button(turn, n, titles[n]))
        pos = m.end()
    out.append(_text(text[pos:]))
    return "".join(out)


def _unsupported(body: str, lang: str) -> str:
    return f'<span class="rag-unsupported" title="{esc(t(lang, "unsupported"))}">⚠ {body}</span>'


def _answer_body(answer: Answer, turn: int, lang: str, titles: dict[int, str]) -> str:
    """The answer text, with unsupported sentences wrapped where they can be found."""
    text = answer.answer
    bad = [s for s in answer.sentences if not s.supported and s.text.strip()]
    if not bad:
        return _linkify(text, turn, titles)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for s in answer.sentences:
        i = text.find(s.text, cursor)
        if i < 0:  # sentences do not tile the answer: render them one by one instead
            return " ".join(
                _unsupported(_linkify(s.text, turn, titles), lang) if not s.supported
                else _linkify(s.text, turn, titles)
                for s in answer.sentences
            )
        if not s.supported and s.text.strip():
            spans.append((i, i + len(s.text)))
        cursor = i + len(s.text)
    out, pos = [], 0
    for a, b in spans:
        out.append(_linkify(text[pos:a], turn, titles))
        out.append(_unsupported(_linkify(text[a:b], turn, titles), lang))
        pos = b
    out.append(_linkify(text[pos:], turn, titles))
    return "".join(out)


def _source_lines(citations: tuple[Citation, ...], turn: int) -> str:
    """One line per article: its citation numbers (each opens the panel), title, outlet, date."""
    by_doc: dict[str, list[Citation]] = {}
    for c in citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    lines = []
    for cites in by_doc.values():
        c = cites[0]
        nums = "".join(f'<button type="button" class="rag-src rag-t-{turn} rag-n-{x.n}">[{x.n}]</button>'
                       for x in cites)
        bits = [esc(b) for b in (c.outlet, c.published[:10]) if b]
        meta = f' <span class="rag-src-meta">· {" · ".join(bits)}</span>' if bits else ""
        lines.append(f'<li><span class="rag-src-n">{nums}</span> {esc(c.title or c.doc_id)}{meta}</li>')
    return "".join(lines)


def _understood(answer: Answer, lang: str) -> str:
    """ "이렇게 이해했습니다: ..." / "Understood as: ..." above a rewritten follow-up's answer."""
    line = understood_as(answer.question, answer.resolved_question, lang)
    return f'<div class="rag-understood">{_text(line)}</div>' if line else ""


def _short_body(answer: Answer, turn: int, titles: dict[int, str]) -> str:
    """The answer text with the short answer in <strong> inside the first quote ("" when there is
    none, it cannot be placed, or a sentence is unsupported)."""
    short = answer.extra.get("short")
    if not short or not answer.citations or any(not s.supported for s in answer.sentences):
        return ""
    c = answer.citations[0]
    a, b = int(short["start"]) - c.start, int(short["end"]) - c.start
    if not (0 <= a < b <= len(c.quote)) or c.quote[a:b] != short["text"]:
        return ""
    i = answer.answer.find(c.quote + f" [{c.n}]")
    if i < 0:
        return ""
    text = answer.answer
    return (_linkify(text[: i + a], turn, titles) + f"<strong>{_text(text[i + a : i + b])}</strong>"
            + _linkify(text[i + b :], turn, titles))


def render_answer(answer: Answer, turn: int, lang: str) -> str:
    """The final assistant message: text with clickable [n], sources, copy button, notices."""
    titles = {c.n: c.title or c.doc_id for c in answer.citations}
    kind = "rag-abstain" if answer.abstained else "rag-answer"
    parts = [f'<div class="rag-msg {kind}">']
    if answer.abstained:
        parts.append(f'<div class="rag-badge">ⓘ {esc(t(lang, "abstain"))}</div>')
    parts.append(_understood(answer, lang))
    body = _short_body(answer, turn, titles) or _answer_body(answer, turn, lang, titles)
    parts.append(f'<div class="rag-text">{body}</div>')
    if any(not s.supported for s in answer.sentences):
        parts.append(f'<div class="rag-legend">{esc(t(lang, "unsupported_legend"))}</div>')
    if answer.citations:
        head = f'<div class="rag-sources-h">{esc(t(lang, "sources"))}</div>'
        parts.append(f'<div class="rag-sources">{head}<ol>')
        parts.append(_source_lines(answer.citations, turn))
        parts.append("</ol></div>")
    if answer.notice:
        parts.append(f'<div class="rag-notice">{_text(answer.notice)}</div>')
    copy = esc(t(lang, "copy"))
    parts.append(f'<div class="rag-tools"><button type="button" class="rag-copy" title="{copy}">'
                 f'<span class="rag-copy-label">{copy}</span></button></div>')
    parts.append("</div>")
    return "".join(parts)


def render_question(question: str) -> str:
    return f'<div class="rag-q">{_text(question)}</div>'


def render_streaming(text: str, lang: str) -> str:
    """An answer still arriving: plain escaped text (markers become buttons at the end)."""
    body = _text(text) if text else f'<span class="rag-thinking">{esc(t(lang, "thinking"))}</span>'
    caret = '<span class="rag-caret">▍</span>'
    return f'<div class="rag-msg rag-streaming"><div class="rag-text">{body}{caret}</div></div>'


def render_problem(message: str, lang: str, key: str = "error") -> str:
    """An error or refusal shown in place of an answer."""
    return (f'<div class="rag-msg rag-error"><div class="rag-badge">⚠ {esc(t(lang, key))}</div>'
            f'<div class="rag-text">{_text(message)}</div></div>')


def _highlight(c: Citation) -> str:
    """The passage with the cited span in <mark>; the quote alone when the passage is unknown."""
    passage, quote = c.passage, c.quote
    a, b = c.start - c.passage_start, c.end - c.passage_start
    if not passage or not (0 <= a <= b <= len(passage)) or passage[a:b] != quote:
        i = passage.find(quote) if passage and quote else -1
        if i < 0:
            marked = f"<mark>{_text(quote)}</mark>"
            return marked if not passage else f"{_text(passage)}<br>{marked}"
        a, b = i, i + len(quote)
    return f"{_text(passage[:a])}<mark>{_text(passage[a:b])}</mark>{_text(passage[b:])}"


def render_panel(c: Citation | None, lang: str, nonce: int = 0) -> str:
    """The side panel: one source with its metadata and the highlighted sentence, or a hint."""
    if c is None:
        return (f'<div class="rag-panel rag-panel-empty"><div class="rag-panel-h">'
                f'{esc(t(lang, "panel_title"))}</div>'
                f'<p class="rag-hint">{esc(t(lang, "panel_empty"))}</p></div>')
    none = f'<span class="rag-muted">{esc(t(lang, "none"))}</span>'
    url = safe_url(c.url)
    if url:
        link = f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer nofollow">{esc(url)}</a>'
    elif c.url.strip():
        link = (f'<span class="rag-badurl">{esc(c.url)}</span> '
                f'<span class="rag-muted">{esc(t(lang, "not_web"))}</span>')
    else:
        link = none
    rows = [("outlet", esc(c.outlet) if c.outlet else none), ("author", esc(c.author) if c.author else none),
            ("date", esc(c.published[:10]) if c.published else none), ("link", link)]
    meta = "".join(f"<dt>{esc(t(lang, k))}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<div class="rag-panel is-open rag-nonce-{int(nonce)}">'
        f'<div class="rag-panel-h"><span class="rag-panel-n">[{c.n}]</span>'
        f'<button type="button" class="rag-panel-close" title="{esc(t(lang, "close"))}" '
        f'aria-label="{esc(t(lang, "close"))}">×</button></div>'
        f'<h3 class="rag-panel-title">{esc(c.title or c.doc_id)}</h3>'
        f'<dl class="rag-meta">{meta}</dl>'
        f'<div class="rag-passage-h">{esc(t(lang, "passage"))}</div>'
        f'<blockquote class="rag-passage">{_highlight(c)}</blockquote>'
        f'<div class="rag-ids">{esc(c.doc_id)} · {esc(c.chunk_id)} · {c.start}–{c.end}</div>'
        "</div>"
    )

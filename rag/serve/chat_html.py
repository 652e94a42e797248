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
        "undated": "날짜 없음",
        "time_off": "기간 조건 없이 다시 묻기",
        "also": "같은 기사",
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
        "question": "질문",
        "cite_label": "출처 {n} 보기: {title}",
        "panel_opened": "출처 [{n}] 열림: {title}",
        "panel_closed": "출처 창을 닫았습니다",
        "prev": "이전 출처",
        "next": "다음 출처",
        "of": "{n} / {total}",
        "open_link": "원문 기사 열기",
        "details": "세부 정보 (문서 ID, 위치)",
        "doc_id": "문서 ID",
        "chunk_id": "문단 ID",
        "offsets": "문자 위치",
        "abstain_text": "기사에서 관련 근거를 찾지 못했습니다.",
        "helpful": "도움됐어요",
        "not_helpful": "아쉬워요",
        "feedback_thanks": "고맙습니다! 의견을 남기시면 더 나아지는 데 쓰겠습니다 (선택).",
        "comment": "의견 (선택)",
        "comment_placeholder": "무엇이 좋았거나 부족했나요?",
        "comment_send": "의견 보내기",
        "comment_thanks": "의견 고맙습니다. 저장했습니다.",
        "rate_limited": "요청이 너무 많습니다. {s}초 후에 다시 시도하세요.",
        "not_ready_hint": "관리자가 `rag index`로 색인을 만들면 서버를 다시 시작하지 않아도 바로 쓸 수 있습니다.",
        "technical": "기술 정보",
        "coverage": "기사 {docs}건 · 언론사 {outlets}곳 · {first} ~ {last}",
        "coverage_nodate": "기사 {docs}건 · 언론사 {outlets}곳",
        "filters": "검색 범위",
        "outlet_all": "모든 언론사",
        "date_from": "시작일 (YYYY-MM-DD)",
        "date_to": "종료일 (YYYY-MM-DD)",
        "remove_filter": "{what} 조건 지우기",
        "bad_date": "날짜는 2025-08-05처럼 적어 주세요: {value}",
        "from_after_to": "시작일이 종료일보다 늦습니다",
        "you": "질문",
        "bot": "답변",
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
        "undated": "undated",
        "time_off": "Ask again without the date range",
        "also": "also",
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
        "question": "Question",
        "cite_label": "Show source {n}: {title}",
        "panel_opened": "Source [{n}] opened: {title}",
        "panel_closed": "Source panel closed",
        "prev": "Previous source",
        "next": "Next source",
        "of": "{n} of {total}",
        "open_link": "Open the article",
        "details": "Details (document id, position)",
        "doc_id": "Document id",
        "chunk_id": "Passage id",
        "offsets": "Characters",
        "abstain_text": "I could not find evidence for this in the articles.",
        "helpful": "Helpful",
        "not_helpful": "Not helpful",
        "feedback_thanks": "Thank you! A comment helps us improve (optional).",
        "comment": "Comment (optional)",
        "comment_placeholder": "What was good or missing?",
        "comment_send": "Send comment",
        "comment_thanks": "Thanks for the comment; it is saved.",
        "rate_limited": "Too many requests: try again in {s} s.",
        "not_ready_hint": "Once an administrator builds it with `rag index`, it works without a restart.",
        "technical": "Technical details",
        "coverage": "{docs} articles · {outlets} outlets · {first} to {last}",
        "coverage_nodate": "{docs} articles · {outlets} outlets",
        "filters": "Search in",
        "outlet_all": "All outlets",
        "date_from": "From (YYYY-MM-DD)",
        "date_to": "To (YYYY-MM-DD)",
        "remove_filter": "Remove the {what} filter",
        "bad_date": "Write dates like 2025-08-05: {value}",
        "from_after_to": "The start date is after the end date",
        "you": "Question",
        "bot": "Answer",
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


def _cite_button(turn: int, n: int, title: str, lang: str = "en") -> str:
    label = t(lang, "cite_label").format(n=n, title=title)
    # the Chatbot drops aria-* attributes: the page copies title into aria-label (rag.serve.chat_js)
    return (f'<button type="button" class="rag-cite rag-t-{turn} rag-n-{n}" title="{esc(label)}">[{n}]</button>')


def _linkify(text: str, turn: int, titles: dict[int, str], lang: str = "en") -> str:
    """Escape ``text``; ``[n]`` markers of known citations become buttons."""
    out, pos = [], 0
    for m in _MARKER_RE.finditer(text):
        n = int(m.group(1))
        if n not in titles:
            continue
        out.append(_text(text[pos:m.start()]))
        out.append(_cite_button(turn, n, titles[n], lang))
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
        return _linkify(text, turn, titles, lang)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for s in answer.sentences:
        i = text.find(s.text, cursor)
        if i < 0:  # sentences do not tile the answer: render them one by one instead
            return " ".join(
                _unsupported(_linkify(s.text, turn, titles, lang), lang) if not s.supported
                else _linkify(s.text, turn, titles, lang)
                for s in answer.sentences
            )
        if not s.supported and s.text.strip():
            spans.append((i, i + len(s.text)))
        cursor = i + len(s.text)
    out, pos = [], 0
    for a, b in spans:
        out.append(_linkify(text[pos:a], turn, titles, lang))
        out.append(_unsupported(_linkify(text[a:b], turn, titles, lang), lang))
        pos = b
    out.append(_linkify(text[pos:], turn, titles, lang))
    return "".join(out)


def _source_lines(citations: tuple[Citation, ...], turn: int, lang: str = "en") -> str:
    """One line per article: its citation numbers (each opens the panel), title, outlet, date."""
    by_doc: dict[str, list[Citation]] = {}
    for c in citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    lines = []
    for cites in by_doc.values():
        c = cites[0]
        label = t(lang, "cite_label")
        nums = "".join(f'<button type="button" class="rag-src rag-t-{turn} rag-n-{x.n}" '
                       f'title="{esc(label.format(n=x.n, title=x.title or x.doc_id))}">[{x.n}]</button>'
                       for x in cites)
        bits = [esc(b) for b in (c.outlet, c.published[:10] or t(lang, "undated")) if b]
        if c.also:  # the same story from other outlets; this one published it first
            bits.append(esc(f'{t(lang, "also")}: {c.also}'))
        meta = f' <span class="rag-src-meta">· {" · ".join(bits)}</span>' if bits else ""
        lines.append(f'<li><span class="rag-src-n">{nums}</span> {esc(c.title or c.doc_id)}{meta}</li>')
    return "".join(lines)


def _copy_text(answer: Answer, lang: str, shown: str) -> str:
    """What the copy button puts on the clipboard: the answer, then each source with its quoted sentence.
    One ``<span>`` a line (the page joins them with newlines); hidden by CSS."""
    lines = [shown]
    if answer.citations:
        lines += ["", t(lang, "sources") + ":"]
        for c in answer.citations:
            meta = " · ".join(b for b in (c.outlet, c.published[:10]) if b)
            lines.append(f"[{c.n}] {c.title or c.doc_id}" + (f" ({meta})" if meta else "")
                         + (f" {c.url}" if safe_url(c.url) else ""))
            lines.append(f"    “{' '.join(c.quote.split())}”")
    spans = "".join(f'<span class="rag-copy-line">{esc(line)}</span>' for line in lines)
    return f'<div class="rag-copytext" aria-hidden="true">{spans}</div>'


def _tools(answer: Answer, turn: int, lang: str, shown: str) -> str:
    """Thumbs (answers only, never under errors) and the copy button, labelled in the page language."""
    up, down, copy, done = (esc(t(lang, k)) for k in ("helpful", "not_helpful", "copy", "copied"))
    return (
        '<div class="rag-tools">'
        f'<button type="button" class="rag-fb rag-fb-up rag-t-{turn}" title="{up}">{up}</button>'
        f'<button type="button" class="rag-fb rag-fb-down rag-t-{turn}" title="{down}">{down}</button>'
        f'<button type="button" class="rag-copy" title="{copy}"><span class="rag-copy-label">{copy}</span>'
        f'<span class="rag-copy-done">{done}</span></button>'
        f"{_copy_text(answer, lang, shown)}</div>"
    )


def _understood(answer: Answer, lang: str) -> str:
    """ "이렇게 이해했습니다: ..." / "Understood as: ..." above a rewritten follow-up's answer."""
    line = understood_as(answer.question, answer.resolved_question, lang)
    return f'<div class="rag-understood">{_text(line)}</div>' if line else ""


def _short_body(answer: Answer, turn: int, lang: str, titles: dict[int, str]) -> str:
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
    return (_linkify(text[: i + a], turn, titles, lang) + f"<strong>{_text(text[i + a : i + b])}</strong>"
            + _linkify(text[i + b :], turn, titles, lang))


def _time_chip(answer: Answer, turn: int, lang: str) -> str:
    """The dates searched (rag.answer.timeline); a range read from the question has a × that asks again without it."""
    tm = answer.time or {}
    if not tm.get("label"):
        return ""
    off = ""
    if tm.get("source") == "question" and tm.get("from") and tm.get("applied", True):
        label = esc(t(lang, "time_off"))
        off = (f' <button type="button" class="rag-time-off rag-t-{turn}" title="{label}" '
               f'aria-label="{label}">×</button>')
    return f'<div class="rag-time">🗓 {esc(tm["label"])}{off}</div>'


def render_answer(answer: Answer, turn: int, lang: str) -> str:
    """The final assistant message: text with clickable [n], sources, feedback and copy buttons, notices.

    Labels follow the page language ``lang``; the answer text keeps the question's language
    (``answer.lang``), except a refusal, which is said in the page language like every other label."""
    titles = {c.n: c.title or c.doc_id for c in answer.citations}
    kind = "rag-abstain" if answer.abstained else "rag-answer"
    parts = [f'<div class="rag-msg {kind}">']
    if answer.abstained:
        parts.append(f'<div class="rag-badge">ⓘ {esc(t(lang, "abstain"))}</div>')
    refusal = answer.abstained and not answer.citations
    shown = t(lang, "abstain_text") if refusal else answer.answer
    parts.append(_understood(answer, lang))
    parts.append(_time_chip(answer, turn, lang))
    if refusal:
        parts.append(f'<div class="rag-text" lang="{esc(lang)}">{esc(shown)}</div>')
    else:
        body = _short_body(answer, turn, lang, titles) or _answer_body(answer, turn, lang, titles)
        parts.append(f'<div class="rag-text" lang="{esc(answer.lang or lang)}">{body}</div>')
    if any(not s.supported for s in answer.sentences):
        parts.append(f'<div class="rag-legend">{esc(t(lang, "unsupported_legend"))}</div>')
    if answer.citations:
        head = f'<div class="rag-sources-h">{esc(t(lang, "sources"))}</div>'
        parts.append(f'<div class="rag-sources">{head}<ol>')
        parts.append(_source_lines(answer.citations, turn, lang))
        parts.append("</ol></div>")
    if answer.notice:
        parts.append(f'<div class="rag-notice">{_text(answer.notice)}</div>')
    parts.append(_tools(answer, turn, lang, shown))
    parts.append("</div>")
    return "".join(parts)


def render_question(question: str) -> str:
    return f'<div class="rag-q">{_text(question)}</div>'


def render_streaming(text: str, lang: str) -> str:
    """An answer still arriving: plain escaped text (markers become buttons at the end)."""
    body = _text(text) if text else f'<span class="rag-thinking">{esc(t(lang, "thinking"))}</span>'
    caret = '<span class="rag-caret">▍</span>'
    return f'<div class="rag-msg rag-streaming"><div class="rag-text">{body}{caret}</div></div>'


def render_problem(message: str, lang: str, key: str = "error", detail: str = "") -> str:
    """An error or refusal shown in place of an answer: badge and ``message`` in the page language;
    ``detail`` (e.g. an exception's text, often English) folded away under "technical details"."""
    more = (f'<details class="rag-detail"><summary>{esc(t(lang, "technical"))}</summary>{_text(detail)}</details>'
            if detail else "")
    return (f'<div class="rag-msg rag-error"><div class="rag-badge">⚠ {esc(t(lang, key))}</div>'
            f'<div class="rag-text">{_text(message)}</div>{more}</div>')


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


def _panel_nav(c: Citation, turn: int, numbers: tuple[int, ...], lang: str) -> str:
    """"[2] of 3" and previous/next buttons between the answer's citations (disabled at the ends)."""
    if turn < 0 or len(numbers) < 2 or c.n not in numbers:
        return f'<span class="rag-panel-n">[{c.n}]</span>'
    i = numbers.index(c.n)

    def step(j: int, key: str, arrow: str) -> str:
        label = esc(t(lang, key))
        if not 0 <= j < len(numbers):
            return f'<button type="button" class="rag-step" disabled aria-label="{label}">{arrow}</button>'
        return (f'<button type="button" class="rag-step rag-src rag-t-{turn} rag-n-{numbers[j]}" '
                f'aria-label="{label} [{numbers[j]}]" title="{label}">{arrow}</button>')

    where = esc(t(lang, "of").format(n=f"[{c.n}]", total=len(numbers)))
    return (f'<span class="rag-panel-nav">{step(i - 1, "prev", "‹")}'
            f'<span class="rag-panel-n">{where}</span>{step(i + 1, "next", "›")}</span>')


def render_panel(c: Citation | None, lang: str, nonce: int = 0, turn: int = -1,
                 numbers: tuple[int, ...] = ()) -> str:
    """The side panel: one source with what is known about it and the highlighted sentence, or a hint.

    Rows appear only for known metadata; internal ids sit in a closed ``<details>``. ``turn`` and
    ``numbers`` (the answer's citation numbers) give previous/next buttons; the panel's classes name
    the open citation (``rag-t-0 rag-n-2``) so the page can mark its ``[n]`` in the answer."""
    hint = f'<p class="rag-hint">{esc(t(lang, "panel_empty"))}</p>'
    head = f'<div class="rag-panel-h"><h2 class="rag-panel-label">{esc(t(lang, "panel_title"))}</h2>'
    if c is None:
        return f'<div class="rag-panel rag-panel-empty">{head}</div>{hint}</div>'
    rows = [(k, esc(v)) for k, v in (("outlet", c.outlet), ("date", c.published[:10] or t(lang, "undated")),
                                     ("author", c.author), ("also", c.also)) if v.strip()]
    url = safe_url(c.url)
    if url:
        rows.append(("link", f'<a class="rag-out" href="{esc(url)}" target="_blank" '
                             f'rel="noopener noreferrer nofollow">{esc(t(lang, "open_link"))} ↗</a>'))
    elif c.url.strip():
        rows.append(("link", f'<span class="rag-badurl">{esc(c.url)}</span> '
                             f'<span class="rag-muted">{esc(t(lang, "not_web"))}</span>'))
    meta = "".join(f"<dt>{esc(t(lang, k))}</dt><dd>{v}</dd>" for k, v in rows)
    title = c.title or c.doc_id
    close = esc(t(lang, "close"))
    ids = "".join(f"<dt>{esc(t(lang, k))}</dt><dd>{esc(v)}</dd>" for k, v in
                  (("doc_id", c.doc_id), ("chunk_id", c.chunk_id), ("offsets", f"{c.start}–{c.end}")))
    announce = esc(t(lang, "panel_opened").format(n=c.n, title=title))
    return (
        f'<div class="rag-panel is-open rag-nonce-{int(nonce)} rag-t-{int(turn)} rag-n-{c.n}">'
        f'{head}{_panel_nav(c, turn, numbers, lang)}'
        f'<button type="button" class="rag-panel-close" title="{close}" aria-label="{close}">×</button></div>'
        f'<h3 class="rag-panel-title" tabindex="-1">{esc(title)}</h3>'
        + (f'<dl class="rag-meta">{meta}</dl>' if meta else "")
        + f'<div class="rag-passage-h" id="rag-passage-h">{esc(t(lang, "passage"))}</div>'
        f'<blockquote class="rag-passage" tabindex="0" aria-labelledby="rag-passage-h">{_highlight(c)}</blockquote>'
        f'<details class="rag-ids"><summary>{esc(t(lang, "details"))}</summary><dl>{ids}</dl></details>'
        f'<span class="rag-announce">{announce}</span>'
        f'<span class="rag-announce-close">{esc(t(lang, "panel_closed"))}</span>{hint}'
        "</div>"
    )

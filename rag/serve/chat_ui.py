"""The chat page: Gradio Blocks with streamed answers, clickable citations, filters and feedback.

The page talks to a :class:`ChatBackend` (implemented by ``rag.serve.service``) and
keeps each browser session's conversation in a ``gr.State``: the messages shown,
the ``Answer`` objects behind them (for the source panel and feedback) and the
turns passed to follow-up resolution. The answers are also kept in the
browser's localStorage (``gr.BrowserState``, see ``rag.serve.chat_store``) so a
reload shows the conversation again; "new conversation" clears both.
All markup comes from ``rag.serve.chat_html``, the JavaScript from ``rag.serve.chat_js``,
the stylesheet from ``rag.serve.chat_css``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import gradio as gr

from rag.ingest.dates import check_range, filter_day
from rag.records import Answer, Turn
from rag.search.retrieve import Filters
from rag.serve import chat_store
from rag.serve.chat_css import CSS, FONTS
from rag.serve.chat_html import (
    esc,
    pick_lang,
    render_answer,
    render_panel,
    render_problem,
    render_question,
    render_streaming,
    t,
)
from rag.serve.chat_js import ASK_JS, CHIPS_JS, LOAD_JS, PANEL_JS, SAVE_LANG_JS

__all__ = ["CSS", "ChatBackend", "build_chat", "theme"]

log = logging.getLogger("rag.chat")
N_EXAMPLES = 4
STORAGE_KEY = "rag-conversation"
# The conversation stays in the user's own browser; BrowserState encrypts what it stores, and a fixed
# key keeps the conversation readable after the server restarts (a random one would lose it).
STORAGE_SECRET = "rag-chat-page-conversation-v1"


class ChatBackend(Protocol):
    """What the page needs from the server."""

    max_question_chars: int

    def problem(self) -> str:
        """Why no answer can be given right now (index missing), or ""."""
        ...

    def info(self) -> dict[str, Any]:
        """``/api/info``: what the index covers (documents, outlets, first and last date)."""
        ...

    def examples(self, lang: str) -> list[str]: ...

    def rate_key(self, headers: Mapping[str, str], peer: str) -> str:
        """The rate-limit key of an anonymous page user: the client behind a trusted proxy, as the API's."""
        ...

    def check_rate(self, user_id: str) -> float:
        """0 when the user may ask now, else seconds to wait."""
        ...

    def stream(self, question: str, history: Sequence[Turn] = (),
               filters: Filters | None = None, question_time: bool = True) -> Iterator[dict[str, Any]]: ...

    def save_feedback(self, record: dict[str, Any]) -> None: ...


def coverage(info: dict[str, Any], lang: str) -> str:
    """One line saying what the index covers, from ``/api/info``; "" when there is no index."""
    idx = info.get("index") or {}
    if not idx:
        return ""
    span = idx.get("published") or {}
    n_docs, n_outlets = int(idx.get("documents", 0)), len(idx.get("outlets") or [])
    if span.get("first"):
        return t(lang, "coverage").format(docs=n_docs, outlets=n_outlets, first=span["first"], last=span["last"])
    return t(lang, "coverage_nodate").format(docs=n_docs, outlets=n_outlets)


def _header(lang: str, cover: str = "") -> str:
    line = f'<p class="rag-coverage">{esc(cover)}</p>' if cover else ""
    return (f'<div class="rag-title"><h1>{esc(t(lang, "title"))}</h1><p>{esc(t(lang, "subtitle"))}</p>'
            f"{line}</div>")


def render_chips(outlet: str, date_from: str, date_to: str, lang: str) -> str:
    """The active filters as chips, each with a × that removes it."""
    chips = []
    for key, label, value in (("outlet", t(lang, "outlet"), outlet), ("from", t(lang, "date_from"), date_from),
                              ("to", t(lang, "date_to"), date_to)):
        if value:
            name = label.split(" (")[0]
            remove = esc(t(lang, "remove_filter").format(what=f"{name}: {value}"))
            chips.append(f'<span class="rag-chip">{esc(name)}: {esc(value)}<button type="button" '
                         f'class="rag-chip-x rag-chip-{key}" aria-label="{remove}" title="{remove}">×</button></span>')
    return f'<div class="rag-chips">{"".join(chips)}</div>' if chips else ""


def parse_filters(outlet: str, date_from: str, date_to: str, lang: str) -> tuple[Filters | None, str]:
    """The page's filter fields as ``Filters`` (None when empty), or an error message in ``lang``."""
    days = []
    for raw in (date_from, date_to):
        try:
            days.append(filter_day(raw) if (raw or "").strip() else "")
        except ValueError:
            return None, t(lang, "bad_date").format(value=raw)
    try:
        check_range(days[0], days[1])
    except ValueError:
        return None, t(lang, "from_after_to")
    f = Filters(outlet=(outlet or "").strip(), date_from=days[0], date_to=days[1])
    return (f if f.active() else None), ""


def _new_conv() -> dict[str, Any]:
    return {"messages": [], "answers": [], "turns": [], "msg_answer": {}}


def conv_from_answers(answers: list[Answer], lang: str) -> dict[str, Any]:
    """A conversation rebuilt from stored answers, its messages rendered in ``lang``."""
    conv = _new_conv()
    for turn, a in enumerate(answers):
        conv["messages"] += [{"role": "user", "content": render_question(a.question)},
                             {"role": "assistant", "content": render_answer(a, turn, lang)}]
        conv["answers"].append(a)
        conv["turns"] += [Turn("user", a.question), Turn("assistant", a.answer)]
        conv["msg_answer"][len(conv["messages"]) - 1] = turn
    return conv


def _user_id(request: Any, backend: ChatBackend | None = None) -> str:
    name = getattr(request, "username", None) if request is not None else None
    if name:
        return "user:" + str(name)
    client = getattr(request, "client", None)
    peer = getattr(client, "host", "") or "unknown"
    if backend is None:
        return "ip:" + peer
    headers = {str(k).lower(): str(v) for k, v in dict(getattr(request, "headers", None) or {}).items()}
    return backend.rate_key(headers, peer)  # behind nginx: the client, not the proxy (RAG_TRUSTED_PROXIES)


def _feedback_record(answer: Answer, rating: str, comment: str, lang: str, request: Any) -> dict[str, Any]:
    return {
        "rating": rating, "comment": comment, "question": answer.question, "answer": answer.answer,
        "answer_id": answer.id, "abstained": answer.abstained, "mode": answer.mode, "lang": answer.lang,
        "ui_lang": lang,
        "citations": [{k: v for k, v in c.to_json().items() if k not in ("passage", "passage_start")}
                      for c in answer.citations],
        "user": _user_id(request) if getattr(request, "username", None) else "", "via": "chat",
    }


def build_chat(backend: ChatBackend, title: str = "News Q&A · 뉴스 Q&A") -> Any:
    """The Blocks of the chat page (not launched: ``rag.serve.server`` mounts it)."""

    def outlets() -> list[str]:
        return list((backend.info().get("index") or {}).get("outlets") or [])

    def lang_updates(lang: str) -> list[Any]:
        ex = backend.examples(lang)[:N_EXAMPLES]
        buttons = [gr.update(value=ex[i], visible=True) if i < len(ex) else gr.update(visible=False)
                   for i in range(N_EXAMPLES)]
        return [
            _header(lang, coverage(backend.info(), lang)),
            gr.update(placeholder=t(lang, "placeholder"), label=t(lang, "question")),
            gr.update(value=t(lang, "send")),
            gr.update(value=t(lang, "new")),
            gr.update(placeholder=t(lang, "empty_chat"), label=t(lang, "chat")),
            gr.update(label=t(lang, "filters")),
            gr.update(label=t(lang, "outlet"), choices=[(t(lang, "outlet_all"), ""), *[(o, o) for o in outlets()]]),
            gr.update(label=t(lang, "date_from")),
            gr.update(label=t(lang, "date_to")),
            gr.update(label=t(lang, "comment"), placeholder=t(lang, "comment_placeholder")),
            gr.update(value=t(lang, "comment_send")),
            *buttons,
        ]

    def respond(question: str, lang: str, conv: dict[str, Any], outlet: str, date_from: str, date_to: str,
                request: gr.Request, question_time: bool = True) -> Iterator[Any]:
        lang = pick_lang(lang or "")
        q = (question or "").strip()
        if not q:
            yield gr.update(), conv["messages"], conv, gr.update()
            return
        conv = {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in conv.items()}
        msgs = conv["messages"]
        msgs.append({"role": "user", "content": render_question(q)})

        def finish(html: str) -> tuple[Any, list[dict[str, str]], dict[str, Any], Any]:
            msgs.append({"role": "assistant", "content": html})
            return "", msgs, conv, gr.update()

        if problem := backend.problem():
            yield finish(render_problem(t(lang, "not_ready_hint"), lang, "not_ready", detail=problem))
            return
        if len(q) > backend.max_question_chars:
            yield finish(render_problem(t(lang, "too_long").format(n=len(q), max=backend.max_question_chars), lang))
            return
        filters, bad = parse_filters(outlet, date_from, date_to, lang)
        if bad:
            yield finish(render_problem(bad, lang))
            return
        if wait := backend.check_rate(_user_id(request, backend)):
            yield finish(render_problem(t(lang, "rate_limited").format(s=max(1, math.ceil(wait))), lang))
            return
        msgs.append({"role": "assistant", "content": render_streaming("", lang)})
        yield "", msgs, conv, gr.update()
        text, final, last = "", None, 0.0
        try:
            for ev in backend.stream(q, tuple(conv["turns"]), filters, question_time):
                if ev.get("type") == "delta":
                    text += str(ev.get("text", ""))
                    msgs[-1] = {"role": "assistant", "content": render_streaming(text, lang)}
                    if time.monotonic() - last > 0.04:  # at most ~25 updates a second
                        last = time.monotonic()
                        yield "", msgs, conv, gr.update()
                elif ev.get("type") == "answer":
                    final = ev["answer"]
        except Exception as e:  # shown in the chat; the server keeps running
            log.exception("answering %r failed", q[:80])
            msgs[-1] = {"role": "assistant",
                        "content": render_problem(t(lang, "error"), lang, detail=str(e) or type(e).__name__)}
            yield "", msgs, conv, gr.update()
            return
        if not isinstance(final, Answer):
            msgs[-1] = {"role": "assistant", "content": render_problem(t(lang, "error"), lang)}
            yield "", msgs, conv, gr.update()
            return
        turn = len(conv["answers"])
        conv["answers"].append(final)
        conv["turns"] += [Turn("user", q), Turn("assistant", final.answer)]
        conv["msg_answer"][len(msgs) - 1] = turn
        msgs[-1] = {"role": "assistant", "content": render_answer(final, turn, lang)}
        yield "", msgs, conv, chat_store.dump(conv["answers"])

    def without_time(lang: str, conv: dict[str, Any], outlet: str, date_from: str, date_to: str,
                     request: gr.Request, evt: gr.EventData) -> Iterator[Any]:
        """The range chip's ×: the same question again, its time words ignored (rag.answer.timeline)."""
        data = getattr(evt, "_data", None) or {}
        try:
            q = conv["answers"][int(data["turn"])].question if data.get("action") == "time-off" else ""
        except (KeyError, IndexError, TypeError, ValueError):
            q = ""
        if not q:
            yield gr.update(), gr.update(), gr.update(), gr.update()
            return
        yield from respond(q, lang, conv, outlet, date_from, date_to, request, question_time=False)

    def on_panel(conv: dict[str, Any], lang: str, evt: gr.EventData, request: gr.Request) -> list[Any]:
        """A click forwarded by the page: a citation (open it) or a thumb (store it, ask for a comment)."""
        data = getattr(evt, "_data", None) or {}
        if data.get("action"):  # handled by without_time
            return [gr.update(), gr.update(), gr.update(), gr.update(), gr.update()]
        try:
            answer: Answer = conv["answers"][int(data["turn"])]
        except (KeyError, IndexError, TypeError, ValueError):
            return [render_panel(None, lang), gr.update(), gr.update(), gr.update(), gr.update()]
        turn = int(data["turn"])
        if data.get("fb") in ("up", "down"):
            rating = str(data["fb"])
            backend.save_feedback(_feedback_record(answer, rating, "", lang, request))
            thanks = f'<p role="status">{esc(t(lang, "feedback_thanks"))}</p>'
            return [gr.update(), gr.update(visible=True), thanks, gr.update(value="", visible=True),
                    {"turn": turn, "rating": rating}]
        try:
            n = int(data["n"])
        except (KeyError, TypeError, ValueError):
            return [render_panel(None, lang), gr.update(), gr.update(), gr.update(), gr.update()]
        cite = next((c for c in answer.citations if c.n == n), None)
        numbers = tuple(c.n for c in answer.citations)
        return [render_panel(cite, lang, nonce=time.monotonic_ns(), turn=turn, numbers=numbers),
                gr.update(), gr.update(), gr.update(), gr.update()]

    def on_comment(comment: str, pending: dict[str, Any], conv: dict[str, Any], lang: str,
                   request: gr.Request) -> list[Any]:
        text = (comment or "").strip()[:2000]
        try:
            answer: Answer = conv["answers"][int(pending["turn"])]
        except (KeyError, IndexError, TypeError, ValueError):
            return [gr.update(visible=False), "", gr.update(), None]
        if text:
            backend.save_feedback(_feedback_record(answer, str(pending["rating"]), text, lang, request))
        thanks = f'<p role="status">{esc(t(lang, "comment_thanks"))}</p>'
        return [gr.update(visible=True), thanks, gr.update(value="", visible=False), None]

    def on_load(lang: str, stored: Any) -> list[Any]:
        lang = pick_lang(lang or "")
        conv = conv_from_answers(chat_store.load(stored), lang)
        return [lang, conv["messages"], conv, render_panel(None, lang), *lang_updates(lang)]

    def on_lang(lang: str, conv: dict[str, Any]) -> list[Any]:
        """The toggle: every label, and the messages kept so far, in the new language."""
        again = conv_from_answers(list(conv["answers"]), lang)
        return [again["messages"], again, render_panel(None, lang), *lang_updates(lang)]

    def new_chat(lang: str) -> list[Any]:
        return [[], _new_conv(), render_panel(None, lang), chat_store.dump([]), gr.update(visible=False)]

    def filter_chips(outlet: str, date_from: str, date_to: str, lang: str) -> str:
        return render_chips(outlet, date_from, date_to, lang)

    def remove_chip(outlet: str, date_from: str, date_to: str, lang: str, evt: gr.EventData) -> list[Any]:
        what = (getattr(evt, "_data", None) or {}).get("remove")
        outlet, date_from, date_to = ("" if what == "outlet" else outlet, "" if what == "from" else date_from,
                                      "" if what == "to" else date_to)
        return [outlet, date_from, date_to, render_chips(outlet, date_from, date_to, lang)]

    with gr.Blocks(title=title) as demo:
        conv = gr.State(_new_conv())
        pending = gr.State(None)
        stored = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        with gr.Row(elem_id="rag-header"):
            header = gr.HTML(_header("en"), elem_id="rag-title")
            lang = gr.Radio([("한국어", "ko"), ("English", "en")], value="en", show_label=False,
                            label="Language · 언어", container=False, elem_id="rag-lang", scale=0)
        gr.HTML('<div id="rag-live" class="rag-sr" role="status" aria-live="polite" aria-atomic="true"></div>',
                elem_id="rag-live-wrap", padding=False)
        with gr.Row(elem_id="rag-main", equal_height=False):
            with gr.Column(scale=3, min_width=300, elem_id="rag-chat-col"):
                chat = gr.Chatbot(label=t("en", "chat"), show_label=False, elem_id="rag-chat",
                                  height="min(62vh, 760px)", min_height=320, latex_delimiters=[], buttons=[],
                                  layout="bubble", placeholder=t("en", "empty_chat"), feedback_options=None)
                with gr.Row(elem_id="rag-input"):
                    box = gr.Textbox(show_label=False, label=t("en", "question"), placeholder=t("en", "placeholder"),
                                     lines=1, max_lines=5, container=False, scale=6, elem_id="rag-box",
                                     autofocus=True, max_length=backend.max_question_chars)
                    send = gr.Button(t("en", "send"), variant="primary", scale=0, min_width=84, elem_id="rag-send")
                with gr.Group(visible=False, elem_id="rag-feedback") as fb_group:
                    fb_note = gr.HTML("", padding=False)
                    fb_comment = gr.Textbox(label=t("en", "comment"), lines=2, max_lines=6, max_length=2000,
                                            placeholder=t("en", "comment_placeholder"), elem_id="rag-comment")
                    fb_send = gr.Button(t("en", "comment_send"), size="sm", elem_id="rag-comment-send")
                with gr.Accordion(t("en", "filters"), open=False, elem_id="rag-filters") as filters_box, gr.Row():
                        outlet = gr.Dropdown([(t("en", "outlet_all"), "")], value="", label=t("en", "outlet"),
                                             elem_id="rag-outlet", allow_custom_value=False)
                        date_from = gr.Textbox(label=t("en", "date_from"), placeholder="2025-01-01",
                                               max_length=10, elem_id="rag-from")
                        date_to = gr.Textbox(label=t("en", "date_to"), placeholder="2025-12-31",
                                             max_length=10, elem_id="rag-to")
                chips = gr.HTML("", elem_id="rag-chips", js_on_load=CHIPS_JS, padding=False)
                with gr.Row(elem_id="rag-examples"):
                    examples = [gr.Button("", visible=False, size="sm", variant="secondary",
                                          elem_classes=["rag-example"]) for _ in range(N_EXAMPLES)]
                    new_btn = gr.Button(t("en", "new"), size="sm", variant="secondary", elem_id="rag-new")
            with gr.Column(scale=2, min_width=280, elem_id="rag-side"):
                panel = gr.HTML(render_panel(None, "en"), elem_id="rag-panel", js_on_load=PANEL_JS)
        browser = gr.Textbox(visible=False)

        outs = [box, chat, conv, stored]
        opts: dict[str, Any] = {"concurrency_limit": 4, "show_progress": "hidden", "js": ASK_JS}
        ask_in = [lang, conv, outlet, date_from, date_to]
        box.submit(respond, [box, *ask_in], outs, **opts)
        send.click(respond, [box, *ask_in], outs, **opts)
        for b in examples:
            b.click(respond, [b, *ask_in], outs, **opts)
        panel.click(on_panel, [conv, lang], [panel, fb_group, fb_note, fb_comment, pending], show_progress="hidden")
        panel.click(without_time, [lang, conv, outlet, date_from, date_to], outs, concurrency_limit=4,
                    show_progress="hidden")
        fb_send.click(on_comment, [fb_comment, pending, conv, lang], [fb_group, fb_note, fb_comment, pending],
                      show_progress="hidden")
        fb_comment.submit(on_comment, [fb_comment, pending, conv, lang], [fb_group, fb_note, fb_comment, pending],
                          show_progress="hidden")
        new_btn.click(new_chat, [lang], [chat, conv, panel, stored, fb_group], show_progress="hidden")
        for f in (outlet, date_from, date_to):
            f.change(filter_chips, [outlet, date_from, date_to, lang], chips, show_progress="hidden")
        chips.click(remove_chip, [outlet, date_from, date_to, lang], [outlet, date_from, date_to, chips],
                    show_progress="hidden")
        labelled = [header, box, send, new_btn, chat, filters_box, outlet, date_from, date_to, fb_comment, fb_send,
                    *examples]
        # .input fires for the user's own choice only, which is what gets remembered
        lang.input(on_lang, [lang, conv], [chat, conv, panel, *labelled], js=SAVE_LANG_JS, show_progress="hidden")
        demo.load(on_load, [browser, stored], [lang, chat, conv, panel, *labelled], js=LOAD_JS,
                  show_progress="hidden")
    return demo


def theme() -> Any:
    """Gradio's default look with system fonts (Korean ones first): nothing is fetched from a font CDN."""
    return gr.themes.Default(primary_hue="blue", font=FONTS, font_mono=["ui-monospace", "monospace"])

"""The chat page: Gradio Blocks with streamed answers, clickable citations and feedback.

The page talks to a :class:`ChatBackend` (implemented by ``rag.server``) and
keeps each browser session's conversation in a ``gr.State``: the messages shown,
the ``Answer`` objects behind them (for the source panel and feedback) and the
turns passed to follow-up resolution. All markup comes from ``rag.chat_html``;
the little JavaScript here only forwards clicks on ``[n]`` to the server,
copies answers and closes the panel. It never builds markup from data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import gradio as gr

from rag.auth import rate_limit_message
from rag.chat_html import (
    esc,
    pick_lang,
    render_answer,
    render_panel,
    render_problem,
    render_question,
    render_streaming,
    t,
)
from rag.records import Answer, Turn

log = logging.getLogger("rag.chat")
N_EXAMPLES = 4


class ChatBackend(Protocol):
    """What the page needs from the server."""

    max_question_chars: int

    def problem(self) -> str:
        """Why no answer can be given right now (index missing), or ""."""
        ...

    def examples(self, lang: str) -> list[str]: ...

    def check_rate(self, user_id: str) -> float:
        """0 when the user may ask now, else seconds to wait."""
        ...

    def stream(self, question: str, history: Sequence[Turn], *, question_time: bool = True
               ) -> Iterator[dict[str, Any]]: ...

    def save_feedback(self, record: dict[str, Any]) -> None: ...


# The panel's js_on_load: one delegated click handler on the page (or the <gradio-app> element).
PANEL_JS = r"""
const root = element.closest('gradio-app') || document;
root.__ragTrigger = trigger;
if (!root.__ragBound) {
  root.__ragBound = true;
  const copyText = (text, done) => {
    const fallback = () => {
      const ta = document.createElement('textarea');
      ta.value = text; ta.setAttribute('readonly', ''); ta.style.position = 'fixed'; ta.style.opacity = '0';
      document.body.appendChild(ta); ta.select();
      try { document.execCommand('copy'); } catch (err) { /* nothing more to try */ }
      ta.remove(); done();
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else fallback();
  };
  root.addEventListener('click', (e) => {
    const el = e.target instanceof Element ? e.target : null;
    if (!el) return;
    const off = el.closest('.rag-time-off');
    if (off) {
      const turn = off.className.match(/rag-t-(\d+)/);
      if (turn) { e.preventDefault(); root.__ragTrigger('click', {turn: +turn[1], action: 'time-off'}); }
      return;
    }
    const cite = el.closest('.rag-cite, .rag-src');
    if (cite) {
      const turn = cite.className.match(/rag-t-(\d+)/), n = cite.className.match(/rag-n-(\d+)/);
      if (turn && n) { e.preventDefault(); root.__ragTrigger('click', {turn: +turn[1], n: +n[1]}); }
      return;
    }
    const copy = el.closest('.rag-copy');
    if (copy) {
      const msg = copy.closest('.rag-msg');
      const body = msg && msg.querySelector('.rag-text');
      const src = msg && msg.querySelector('.rag-sources ol');
      const text = (body ? body.innerText : '') + (src ? '\n\n' + src.innerText : '');
      copyText(text.trim(), () => {
        copy.classList.add('is-done');
        setTimeout(() => copy.classList.remove('is-done'), 1600);
      });
      return;
    }
    const close = el.closest('.rag-panel-close');
    if (close) { const p = close.closest('.rag-panel'); if (p) p.classList.remove('is-open'); }
  });
}
"""

LOAD_JS = """(x) => {
  let saved = null;
  try { saved = localStorage.getItem('rag-lang'); } catch (e) { saved = null; }
  const nav = navigator.languages;
  const langs = nav && nav.length ? nav : [navigator.language];
  return saved || langs.join(',');
}"""

SAVE_LANG_JS = "(v) => { try { localStorage.setItem('rag-lang', v); } catch (e) { /* private */ } return v; }"

CSS = """
.gradio-container { max-width: 1240px !important; margin: 0 auto !important; }
/* outside any @media on purpose: Gradio scopes rules in media queries below .contain */
.gradio-container .main.app { padding: 16px clamp(10px, 2.5vw, 32px) !important; }
#rag-header { align-items: center; gap: 8px; flex-wrap: nowrap; }
#rag-header .rag-title h1 { font-size: 1.35rem; margin: 0; line-height: 1.3; white-space: nowrap; }
#rag-header .rag-title p { margin: 2px 0 0; color: var(--body-text-color-subdued); font-size: .9rem; }
#rag-lang { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
#rag-lang .wrap { flex-wrap: nowrap; }
#rag-input { align-items: stretch; gap: 8px; }
#rag-input #rag-send { min-width: 84px; }
#rag-examples { flex-wrap: wrap; gap: 6px; }
#rag-examples button { flex: 0 1 auto !important; min-width: 0 !important; white-space: normal;
  text-align: left; font-weight: 400; border-radius: 999px; }
#rag-examples #rag-new { margin-left: auto; border-radius: 6px; }
.rag-q { white-space: normal; }
.rag-msg .rag-text { line-height: 1.65; }
.rag-cite, .rag-src { font: inherit; border: 0; background: none; cursor: pointer; padding: 0;
  color: var(--color-accent); }
.rag-cite { font-size: .8em; font-weight: 600; vertical-align: super; line-height: 1; padding: 0 1px; }
.rag-cite:hover, .rag-src:hover { text-decoration: underline; }
.rag-cite:focus-visible, .rag-src:focus-visible, .rag-copy:focus-visible {
  outline: 2px solid var(--color-accent); }
.rag-sources { margin-top: 10px; padding-top: 8px; border-top: 1px solid var(--border-color-primary);
  font-size: .88em; }
.rag-sources-h { font-weight: 600; margin-bottom: 2px; color: var(--body-text-color-subdued); }
.rag-sources ol { list-style: none; padding: 0; margin: 0; }
.rag-sources li { margin: 2px 0; }
.rag-src { color: var(--color-accent); font-weight: 600; margin-right: 2px; }
.rag-src-meta { color: var(--body-text-color-subdued); }
.rag-tools { margin-top: 8px; display: flex; justify-content: flex-end; }
.rag-copy { font: inherit; font-size: .82em; cursor: pointer; border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: 2px 8px; background: var(--background-fill-primary);
  color: var(--body-text-color-subdued); }
.rag-copy.is-done::after { content: " ✓"; color: #16a34a; }
.rag-badge { display: inline-block; font-size: .82em; font-weight: 600; padding: 2px 8px;
  border-radius: 999px; margin-bottom: 6px; }
.rag-abstain .rag-badge { background: #fef3c7; color: #92400e; }
.rag-abstain .rag-text { color: var(--body-text-color-subdued); font-style: italic; }
.rag-error .rag-badge { background: #fee2e2; color: #991b1b; }
.rag-unsupported { text-decoration: underline wavy #d97706; text-underline-offset: 3px;
  background: #fffbeb; }
.rag-legend, .rag-notice { font-size: .8em; color: #92400e; margin-top: 6px; }
.rag-notice { color: var(--body-text-color-subdued); }
.rag-time { display: inline-flex; align-items: center; gap: 4px; font-size: .8em; margin-bottom: 6px;
  padding: 1px 8px; border-radius: 999px; background: var(--background-fill-secondary); }
.rag-time-off { font: inherit; border: 0; background: none; cursor: pointer; padding: 0 2px; font-weight: 700; }
.rag-caret { animation: rag-blink 1s steps(2) infinite; color: var(--color-accent); }
.rag-thinking { color: var(--body-text-color-subdued); }
@keyframes rag-blink { 50% { opacity: 0; } }
#rag-side { position: sticky; top: 8px; align-self: flex-start; }
#rag-panel .html-container, #rag-title .html-container { padding: 0 !important; }
#rag-chat .placeholder { padding: 0 24px; color: var(--body-text-color-subdued); text-align: center; }
.rag-panel { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 14px 16px;
  background: var(--background-fill-primary); overflow-wrap: anywhere; }
.rag-panel-h { display: flex; justify-content: space-between; align-items: center; font-weight: 600;
  color: var(--body-text-color-subdued); font-size: .9rem; }
.rag-panel-n { color: var(--color-accent); }
.rag-panel-close { display: none; font-size: 1.4rem; line-height: 1; border: 0; background: none;
  cursor: pointer; color: var(--body-text-color-subdued); }
.rag-panel-title { font-size: 1.05rem; margin: 6px 0 8px; line-height: 1.4; }
.rag-meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 10px;
  font-size: .88rem; }
.rag-meta dt { color: var(--body-text-color-subdued); }
.rag-meta dd { margin: 0; }
.rag-muted, .rag-hint { color: var(--body-text-color-subdued); }
.rag-hint { font-size: .9rem; margin: 6px 0 0; }
.rag-passage-h { font-size: .8rem; font-weight: 600; color: var(--body-text-color-subdued);
  margin-bottom: 4px; }
.rag-passage { margin: 0; padding: 10px 12px; border-left: 3px solid var(--color-accent);
  border-radius: 4px; background: var(--background-fill-secondary); line-height: 1.7; font-size: .92rem;
  max-height: 46vh; overflow: auto; }
.rag-passage mark { background: #fde68a; color: inherit; padding: 1px 0; border-radius: 2px; }
.rag-ids { margin-top: 8px; font-size: .75rem; color: var(--body-text-color-subdued);
  font-family: var(--font-mono); }
@media (max-width: 820px) {
  #rag-header .rag-title p { display: none; }
  #rag-header .rag-title h1 { font-size: 1.15rem; }
  #rag-lang label { padding: 4px 8px !important; }
  #rag-side { display: none; }
  #rag-side:has(.rag-panel.is-open) { display: block; position: fixed; left: 0; right: 0; bottom: 0;
    top: auto;
    z-index: 1000; max-height: 70vh; overflow: auto; padding: 0; margin: 0; width: 100% !important;
box-shadow: 0 -6px 24px rgba(0, 0, 0, .22); border-radius: 14px 14px 0 0;
      background: var(--background-fill-primary); }
  #rag-side .rag-panel { border: 0; border-radius: 14px 14px 0 0; }
  .rag-panel-close { display: block; }
  .rag-passage { max-height: 38vh; }
}
"""


def _header(lang: str) -> str:
    return f'<div class="rag-title"><h1>{esc(t(lang, "title"))}</h1><p>{esc(t(lang, "subtitle"))}</p></div>'


def _new_conv() -> dict[str, Any]:
    return {"messages": [], "answers": [], "turns": [], "msg_answer": {}}


def _user_id(request: Any) -> str:
    name = getattr(request, "username", None) if request is not None else None
    if name:
        return "user:" + str(name)
    client = getattr(request, "client", None)
    return "ip:" + (getattr(client, "host", "") or "unknown")


def build_chat(backend: ChatBackend, title: str = "News Q&A · 뉴스 Q&A") -> Any:
    """The Blocks of the chat page (not launched: ``rag.server`` mounts it)."""
    def lang_updates(lang: str) -> list[Any]:
        ex = backend.examples(lang)[:N_EXAMPLES]
        buttons = [gr.update(value=ex[i], visible=True) if i < len(ex) else gr.update(visible=False)
                   for i in range(N_EXAMPLES)]
        return [
            _header(lang),
            gr.update(placeholder=t(lang, "placeholder")),
            gr.update(value=t(lang, "send")),
            gr.update(value=t(lang, "new")),
            gr.update(placeholder=t(lang, "empty_chat"), label=t(lang, "chat")),
            render_panel(None, lang),
            *buttons,
        ]

    def respond(question: str, conv: dict[str, Any], lang: str, request: gr.Request,
                question_time: bool = True) -> Iterator[Any]:
        q = (question or "").strip()
        if not q:
            yield gr.update(), conv["messages"], conv
            return
        conv = {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in conv.items()}
        msgs = conv["messages"]
        msgs.append({"role": "user", "content": render_question(q)})

        def finish(html: str) -> tuple[Any, list[dict[str, str]], dict[str, Any]]:
            msgs.append({"role": "assistant", "content": html})
            return "", msgs, conv

        if problem := backend.problem():
            yield finish(render_problem(problem, lang, "not_ready"))
            return
        if len(q) > backend.max_question_chars:
            msg = t(lang, "too_long").format(n=len(q), max=backend.max_question_chars)
            yield finish(render_problem(msg, lang))
            return
        if wait := backend.check_rate(_user_id(request)):
            yield finish(render_problem(rate_limit_message(wait), lang))
            return
        msgs.append({"role": "assistant", "content": render_streaming("", lang)})
        yield "", msgs, conv
        text, final, last = "", None, 0.0
        try:
            for ev in backend.stream(q, tuple(conv["turns"]), question_time=question_time):
                if ev.get("type") == "delta":
                    text += str(ev.get("text", ""))
                    msgs[-1] = {"role": "assistant", "content": render_streaming(text, lang)}
                    if time.monotonic() - last > 0.04:  # at most ~25 updates a second
                        last = time.monotonic()
                        yield "", msgs, conv
                elif ev.get("type") == "answer":
                    final = ev["answer"]
        except Exception as e:  # shown in the chat; the server keeps running
            log.exception("answering %r failed", q[:80])
            msgs[-1] = {"role": "assistant", "content": render_problem(str(e) or type(e).__name__, lang)}
            yield "", msgs, conv
            return
        if not isinstance(final, Answer):
            msgs[-1] = {"role": "assistant", "content": render_problem("no answer", lang)}
            yield "", msgs, conv
            return
        turn = len(conv["answers"])
        conv["answers"].append(final)
        conv["turns"] += [Turn("user", q), Turn("assistant", final.answer)]
        conv["msg_answer"][len(msgs) - 1] = turn
        msgs[-1] = {"role": "assistant", "content": render_answer(final, turn, lang)}
        yield "", msgs, conv

    def without_time(conv: dict[str, Any], lang: str, request: gr.Request, evt: gr.EventData) -> Iterator[Any]:
        """The range chip's ×: the same question again, its time words ignored (rag.timeline)."""
        data = getattr(evt, "_data", None) or {}
        try:
            q = conv["answers"][int(data["turn"])].question if data.get("action") == "time-off" else ""
        except (KeyError, IndexError, TypeError, ValueError):
            q = ""
        if not q:
            yield gr.update(), gr.update(), gr.update()
            return
        yield from respond(q, conv, lang, request, question_time=False)

    def show_source(conv: dict[str, Any], lang: str, evt: gr.EventData) -> Any:
        data = getattr(evt, "_data", None) or {}
        if data.get("action"):
            return gr.update()
        try:
            answer = conv["answers"][int(data["turn"])]
            n = int(data["n"])
        except (KeyError, IndexError, TypeError, ValueError):
            return render_panel(None, lang)
        cite = next((c for c in answer.citations if c.n == n), None)
        return render_panel(cite, lang, nonce=time.monotonic_ns())

    def on_like(conv: dict[str, Any], lang: str, data: gr.LikeData, request: gr.Request) -> None:
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = conv["msg_answer"].get(int(idx))
        if turn is None:
            return
        answer: Answer = conv["answers"][turn]
        liked = data.liked
        rating = ("up" if liked is True or liked == "Like"
                  else "down" if liked is False or liked == "Dislike" else str(liked))
        backend.save_feedback({
            "rating": rating, "question": answer.question, "answer": answer.answer, "answer_id": answer.id,
            "abstained": answer.abstained, "mode": answer.mode, "lang": answer.lang, "ui_lang": lang,
            "citations": [{k: v for k, v in c.to_json().items() if k not in ("passage", "passage_start")}
                          for c in answer.citations],
            "user": _user_id(request) if getattr(request, "username", None) else "", "via": "chat",
        })

    def on_load(preferred: str) -> list[Any]:
        lang = pick_lang(preferred or "")
        return [lang, *lang_updates(lang)]

    def new_chat(lang: str) -> tuple[list[Any], dict[str, Any], str]:
        return [], _new_conv(), render_panel(None, lang)

    with gr.Blocks(title=title) as demo:
        conv = gr.State(_new_conv())
        with gr.Row(elem_id="rag-header"):
            header = gr.HTML(_header("en"), js_on_load=None, elem_id="rag-title")
            lang = gr.Radio([("한국어", "ko"), ("English", "en")], value="en", show_label=False,
                            container=False, elem_id="rag-lang", scale=0)
        with gr.Row(elem_id="rag-main", equal_height=False):
            with gr.Column(scale=3, min_width=300, elem_id="rag-chat-col"):
                chat = gr.Chatbot(label=t("en", "chat"), show_label=False, elem_id="rag-chat",
                                  height="min(62vh, 760px)",
                                  min_height=320, latex_delimiters=[], buttons=[], layout="bubble",
                                  placeholder=t("en", "empty_chat"), feedback_options=("Like", "Dislike"))
                with gr.Row(elem_id="rag-input"):
                    box = gr.Textbox(show_label=False, placeholder=t("en", "placeholder"), lines=1,
                                     max_lines=5, container=False, scale=6, elem_id="rag-box", autofocus=True)
                    send = gr.Button(t("en", "send"), variant="primary", scale=0, min_width=84,
                                     elem_id="rag-send")
                with gr.Row(elem_id="rag-examples"):
                    ex0 = backend.examples("en")[:N_EXAMPLES]
                    examples = [gr.Button(ex0[i] if i < len(ex0) else "", visible=i < len(ex0), size="sm",
                                          variant="secondary", elem_classes=["rag-example"])
                                for i in range(N_EXAMPLES)]
                    new_btn = gr.Button(t("en", "new"), size="sm", variant="secondary", elem_id="rag-new")
            with gr.Column(scale=2, min_width=280, elem_id="rag-side"):
                panel = gr.HTML(render_panel(None, "en"), elem_id="rag-panel", js_on_load=PANEL_JS)
        browser = gr.Textbox(visible=False)

        outs = [box, chat, conv]
        opts: dict[str, Any] = {"concurrency_limit": 4, "show_progress": "hidden"}
        box.submit(respond, [box, conv, lang], outs, **opts)
        send.click(respond, [box, conv, lang], outs, **opts)
        for b in examples:
            b.click(respond, [b, conv, lang], outs, **opts)
        panel.click(show_source, [conv, lang], panel, show_progress="hidden")
        panel.click(without_time, [conv, lang], outs, **opts)
        chat.like(on_like, [conv, lang], None)
        new_btn.click(new_chat, [lang], [chat, conv, panel], show_progress="hidden")
        chat.clear(new_chat, [lang], [chat, conv, panel], show_progress="hidden")
        labelled = [header, box, send, new_btn, chat, panel, *examples]
        # .input fires for the user's own choice only, which is what gets remembered
        lang.input(lang_updates, [lang], labelled, js=SAVE_LANG_JS, show_progress="hidden")
        demo.load(on_load, [browser], [lang, *labelled], js=LOAD_JS, show_progress="hidden")
    return demo


def theme() -> Any:
    """Gradio's default look with system fonts: nothing is fetched from a font CDN."""
    sans = ["Pretendard", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", "system-ui", "sans-serif"]
    return gr.themes.Default(primary_hue="blue", font=sans, font_mono=["ui-monospace", "monospace"])

"""The chat page's stylesheet: layout, light/dark colours that pass WCAG 2.1 AA, Korean typography.

Colours are our own variables (``--rag-*``), set for light and for Gradio's
``.dark`` mode, each checked by axe-core in ``tests/test_browser.py`` (text
contrast 4.5:1 or more). Korean text never breaks inside a word
(``word-break: keep-all``), is never slanted by a synthetic italic
(``font-synthesis: none``; refusals are not italic), and the font stack starts
with the CJK fonts Debian's ``fonts-noto-cjk`` installs.
"""

from __future__ import annotations

# Noto Sans CJK KR is what fonts-noto-cjk provides; the others are the usual Korean system fonts
FONTS = ["Pretendard", "Noto Sans CJK KR", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic",
         "system-ui", "sans-serif"]

CSS = """
.gradio-container { max-width: 1240px !important; margin: 0 auto !important;
  --rag-muted: #52525b; --rag-link: #1d4ed8; --rag-mark-bg: #fde68a; --rag-mark-fg: #1f2937;
  --rag-warn-fg: #92400e; --rag-warn-bg: #fef3c7; --rag-err-fg: #991b1b; --rag-err-bg: #fee2e2;
  --rag-ok: #166534; --rag-unsup-bg: #fffbeb; --rag-primary: #1d4ed8; --rag-primary-hover: #1e40af; }
.dark .gradio-container, .gradio-container.dark {
  --rag-muted: #c4c4cc; --rag-link: #93c5fd; --rag-mark-bg: #facc15; --rag-mark-fg: #111827;
  --rag-warn-fg: #fde68a; --rag-warn-bg: #422006; --rag-err-fg: #fecaca; --rag-err-bg: #450a0a;
  --rag-ok: #86efac; --rag-unsup-bg: #3b2f0b; --rag-primary: #2563eb; --rag-primary-hover: #1d4ed8; }
/* Korean typography: whole words only, no fake italics, the CJK fonts first */
.gradio-container, .gradio-container textarea, .gradio-container button {
  word-break: keep-all; overflow-wrap: anywhere; font-synthesis: none; line-break: strict; }
.gradio-container em, .gradio-container i { font-style: normal; font-weight: 600; }
/* outside any @media on purpose: Gradio scopes rules in media queries below .contain */
.gradio-container .main.app { padding: 16px clamp(10px, 2.5vw, 32px) !important; }
#rag-header { align-items: center; gap: 8px; flex-wrap: nowrap; }
#rag-header .rag-title h1 { font-size: 1.35rem; margin: 0; line-height: 1.3; white-space: nowrap; }
#rag-header .rag-title p { margin: 2px 0 0; color: var(--rag-muted); font-size: .9rem; }
#rag-header .rag-title p.rag-coverage { font-size: .82rem; }
#rag-lang { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
#rag-lang .wrap { flex-wrap: nowrap; }
#rag-input { align-items: stretch; gap: 8px; }
#rag-input #rag-send { min-width: 84px; }
#rag-send { background: var(--rag-primary) !important; color: #fff !important;
  border-color: var(--rag-primary) !important; }
#rag-send:hover { background: var(--rag-primary-hover) !important; }
#rag-examples { flex-wrap: wrap; gap: 6px; }
#rag-examples button { flex: 0 1 auto !important; min-width: 0 !important; white-space: normal;
  text-align: left; font-weight: 400; border-radius: 999px; }
#rag-examples #rag-new { margin-left: auto; border-radius: 6px; }
.rag-sr, .rag-announce, .rag-announce-close, .rag-copytext { position: absolute !important; width: 1px;
  height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.rag-copytext, .rag-announce, .rag-announce-close { display: none; }
#rag-chat .icon-button-wrapper.top-panel { display: none; }  /* one clear control: "new conversation" */
#rag-chat .prose { opacity: 1 !important; }  /* Gradio dims messages to .8: below 4.5:1 */
.rag-q { white-space: normal; }
.rag-msg .rag-text { line-height: 1.65; }
.rag-cite, .rag-src { font: inherit; border: 0; background: none; cursor: pointer; padding: 0;
  color: var(--rag-link); }
.rag-cite { font-size: .85em; font-weight: 700; vertical-align: super; line-height: 1; padding: 0 1px; }
.rag-cite:hover, .rag-src:hover { text-decoration: underline; }
.rag-cite.is-current, .rag-src.is-current { background: var(--rag-link); color: var(--background-fill-primary);
  border-radius: 3px; }
.gradio-container .rag-cite:focus-visible, .gradio-container .rag-src:focus-visible,
.gradio-container .rag-copy:focus-visible, .gradio-container .rag-fb:focus-visible,
.gradio-container .rag-panel button:focus-visible, .rag-panel-title:focus-visible,
.rag-passage:focus-visible { outline: 2px solid var(--rag-link); outline-offset: 2px; }
.rag-sources { margin-top: 10px; padding-top: 8px; border-top: 1px solid var(--border-color-primary);
  font-size: .9em; }
.rag-sources-h { font-weight: 600; margin-bottom: 2px; color: var(--rag-muted); }
.rag-sources ol { list-style: none; padding: 0; margin: 0; }
.rag-sources li { margin: 2px 0; }
.rag-src { font-weight: 700; margin-right: 2px; }
.rag-src-meta { color: var(--rag-muted); }
.rag-tools { margin-top: 8px; display: flex; justify-content: flex-end; gap: 6px; align-items: center; }
.rag-copy, .rag-fb { font: inherit; font-size: .85em; cursor: pointer; border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: 2px 8px; background: var(--background-fill-primary); color: var(--rag-muted); }
.rag-fb[aria-pressed="true"] { border-color: var(--rag-link); box-shadow: inset 0 0 0 1px var(--rag-link); }
.rag-copy-done { display: none; }
.rag-copy.is-done .rag-copy-label { display: none; }
.rag-copy.is-done .rag-copy-done { display: inline; color: var(--rag-ok); }
.rag-copy.is-done .rag-copy-done::after { content: " ✓"; }
.rag-badge { display: inline-block; font-size: .85em; font-weight: 600; padding: 2px 8px;
  border-radius: 999px; margin-bottom: 6px; }
.rag-abstain .rag-badge { background: var(--rag-warn-bg); color: var(--rag-warn-fg); }
.rag-abstain .rag-text { color: var(--rag-muted); font-style: normal; }
.rag-error .rag-badge { background: var(--rag-err-bg); color: var(--rag-err-fg); }
.rag-detail { margin-top: 6px; font-size: .85em; color: var(--rag-muted); }
.rag-unsupported { text-decoration: underline wavy #d97706; text-underline-offset: 3px;
  background: var(--rag-unsup-bg); }
.rag-legend, .rag-notice { font-size: .85em; color: var(--rag-warn-fg); margin-top: 6px; }
.rag-notice { color: var(--rag-muted); }
.rag-time { display: inline-flex; align-items: center; gap: 4px; font-size: .85em; margin-bottom: 6px;
  padding: 1px 8px; border-radius: 999px; background: var(--background-fill-secondary); color: var(--rag-muted); }
.rag-time-off { font: inherit; border: 0; background: none; cursor: pointer; padding: 0 4px; font-weight: 700;
  color: inherit; min-width: 24px; min-height: 24px; }
.rag-caret { animation: rag-blink 1s steps(2) infinite; color: var(--rag-link); }
.rag-thinking { color: var(--rag-muted); }
@keyframes rag-blink { 50% { opacity: 0; } }
@media (prefers-reduced-motion: reduce) { .rag-caret { animation: none; } }
#rag-side { position: sticky; top: 8px; align-self: flex-start; }
#rag-panel .html-container, #rag-title .html-container, #rag-chips .html-container { padding: 0 !important; }
#rag-chat .placeholder { padding: 0 24px; color: var(--rag-muted); text-align: center; }
.rag-chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 2px 0; }
.rag-chip { display: inline-flex; align-items: center; gap: 4px; border: 1px solid var(--border-color-primary);
  border-radius: 999px; padding: 1px 4px 1px 10px; font-size: .85rem; background: var(--background-fill-secondary); }
.rag-chip-x { font: inherit; border: 0; background: none; cursor: pointer; color: var(--rag-muted);
  font-size: 1.05rem; line-height: 1; padding: 2px 6px; border-radius: 999px; }
.rag-chip-x:hover { background: var(--border-color-primary); }
#rag-feedback { padding: 8px 10px; }
.rag-panel { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 14px 16px;
  background: var(--background-fill-primary); overflow-wrap: anywhere; }
.rag-panel-h { display: flex; gap: 8px; align-items: center; font-weight: 600; color: var(--rag-muted);
  font-size: .9rem; }
.rag-panel-h h2 { font-size: .9rem; margin: 0; color: var(--rag-muted); }
.rag-panel-nav { display: inline-flex; align-items: center; gap: 2px; margin-left: auto; }
.rag-panel-n { color: var(--rag-link); }
.rag-step { font: inherit; font-size: 1.1rem; line-height: 1; border: 1px solid var(--border-color-primary) !important;
  border-radius: 6px; padding: 2px 9px !important; margin: 0 4px; background: var(--background-fill-primary) !important;
  color: var(--rag-link) !important; }
.rag-step:disabled { opacity: .45; cursor: default; }
.rag-panel-close { font-size: 1.4rem; line-height: 1; border: 0; background: none; cursor: pointer;
  color: var(--rag-muted); padding: 0 4px; }
.rag-panel-empty .rag-panel-close { display: none; }
.rag-panel-title { font-size: 1.05rem; margin: 8px 0; line-height: 1.4; }
.rag-meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 10px;
  font-size: .9rem; }
.rag-meta dt { color: var(--rag-muted); }
.rag-meta dd { margin: 0; }
.rag-panel a { color: var(--rag-link); }
.rag-muted, .rag-hint { color: var(--rag-muted); }
.rag-hint { font-size: .9rem; margin: 6px 0 0; }
.rag-panel.is-open .rag-hint { display: none; }
.rag-panel.is-closed > :not(.rag-panel-h):not(.rag-hint), .rag-panel.is-closed .rag-panel-nav,
.rag-panel.is-closed .rag-panel-close { display: none; }
.rag-passage-h { font-size: .82rem; font-weight: 600; color: var(--rag-muted); margin-bottom: 4px; }
.rag-passage { margin: 0; padding: 10px 12px; border-left: 3px solid var(--rag-link);
  border-radius: 4px; background: var(--background-fill-secondary); line-height: 1.7; font-size: .92rem;
  max-height: 46vh; overflow: auto; }
.rag-passage mark { background: var(--rag-mark-bg); color: var(--rag-mark-fg); padding: 1px 0; border-radius: 2px; }
.rag-ids { margin-top: 8px; font-size: .8rem; color: var(--rag-muted); }
.rag-ids dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 4px 0 0;
  font-family: var(--font-mono); }
.rag-ids dd { margin: 0; }
@media (max-width: 820px) {
  #rag-header .rag-title p { display: none; }
  #rag-header .rag-title h1 { font-size: 1.15rem; }
  #rag-lang label { padding: 4px 8px !important; }
  #rag-side { display: none; }
  #rag-side:has(.rag-panel.is-open) { display: block; position: fixed; left: 0; right: 0; bottom: 0;
    top: auto; z-index: 1000; max-height: 70vh; overflow: auto; padding: 0; margin: 0; width: 100% !important;
    box-shadow: 0 -6px 24px rgba(0, 0, 0, .22); border-radius: 14px 14px 0 0;
    background: var(--background-fill-primary); }
  #rag-side .rag-panel { border: 0; border-radius: 14px 14px 0 0; }
  .rag-passage { max-height: 38vh; }
}
"""

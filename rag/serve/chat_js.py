"""The chat page's little JavaScript, as strings for Gradio's ``js``/``js_on_load`` hooks.

It never builds markup from data. It picks the page language (the saved toggle,
then the browser), forwards clicks on ``[n]``, previous/next and thumbs to the
server, copies answers, closes the source panel (button or Escape) and returns
focus to the citation that opened it, marks the open ``[n]``, scrolls the
highlighted sentence into view and announces the panel in an aria-live region.
"""

from __future__ import annotations

# the page language: the user's own choice (saved by the toggle), else the browser's first ko/en language
PICK_LANG = """(() => {
  let saved = null;
  try { saved = localStorage.getItem('rag-lang'); } catch (e) { saved = null; }
  if (saved === 'ko' || saved === 'en') return saved;
  const nav = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of nav) { const c = (tag || '').slice(0, 2).toLowerCase(); if (c === 'ko' || c === 'en') return c; }
  return 'en';
})()"""

# demo.load: the language, set on <html lang> at once (before the server answers)
LOAD_JS = f"""(x, stored) => {{
  const lang = {PICK_LANG};
  document.documentElement.lang = lang;
  return [lang, stored];
}}"""

SAVE_LANG_JS = """(v, ...rest) => {
  try { localStorage.setItem('rag-lang', v); } catch (e) { /* private mode */ }
  document.documentElement.lang = v;
  return [v, ...rest];
}"""

# question events: the language is read here, so asking before the page finished loading still uses it
ASK_JS = f"(q, lang, ...rest) => [q, {PICK_LANG}, ...rest]"

# the source panel's js_on_load: one delegated handler on the page (or the <gradio-app> element)
PANEL_JS = r"""
const root = element.closest('gradio-app') || document;
root.__ragTrigger = trigger;
const q = (sel) => root.querySelector(sel);
const announce = (text) => {
  const live = q('#rag-live');
  if (!live || !text) return;
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 60);
};
const citeOf = (el) => {
  const turn = el.className.match(/rag-t-(-?\d+)/), n = el.className.match(/rag-n-(\d+)/);
  return turn && n ? {turn: +turn[1], n: +n[1]} : null;
};
const chatCite = (c) => c && q(`#rag-chat .rag-cite.rag-t-${c.turn}.rag-n-${c.n}`) ||
  q(`#rag-chat .rag-src.rag-t-${c.turn}.rag-n-${c.n}`);
const closePanel = () => {
  const p = q('#rag-panel .rag-panel.is-open');
  if (!p) return false;
  p.classList.remove('is-open');
  p.classList.add('is-closed');
  root.querySelectorAll('#rag-chat .is-current').forEach((b) => {
    b.classList.remove('is-current'); b.removeAttribute('aria-current');
  });
  const back = chatCite(root.__ragOpen);
  if (back) back.focus();
  const said = p.querySelector('.rag-announce-close');
  announce(said ? said.textContent : '');
  return true;
};
const panelShown = () => {
  const p = q('#rag-panel .rag-panel.is-open');
  const nonce = p && p.className.match(/rag-nonce-\d+/);
  if (!nonce || root.__ragSeen === nonce[0]) return;  // the page may morph the old panel in place
  root.__ragSeen = nonce[0];
  const c = citeOf(p);
  root.__ragOpen = c;
  root.querySelectorAll('#rag-chat .is-current').forEach((b) => {
    b.classList.remove('is-current'); b.removeAttribute('aria-current');
  });
  if (c) root.querySelectorAll(`#rag-chat .rag-t-${c.turn}.rag-n-${c.n}`).forEach((b) => {
    b.classList.add('is-current'); b.setAttribute('aria-current', 'true');
  });
  const passage = p.querySelector('.rag-passage'), mark = p.querySelector('.rag-passage mark');
  if (passage && mark) passage.scrollTop = Math.max(0, mark.offsetTop - passage.offsetTop - passage.clientHeight / 3);
  const title = p.querySelector('.rag-panel-title');
  if (title) title.focus({preventScroll: window.innerWidth > 820});
  const said = p.querySelector('.rag-announce');
  announce(said ? said.textContent : '');
};
new MutationObserver(panelShown).observe(element, {childList: true, subtree: true});
// The Chatbot's sanitiser drops aria-* attributes and labels each message with its raw HTML: the
// messages are read as their text, and the buttons get their names (kept in title) back.
const fixChat = () => {
  root.querySelectorAll('#rag-chat [data-testid][aria-label]').forEach((m) => m.removeAttribute('aria-label'));
  root.querySelectorAll('#rag-chat .rag-cite[title], #rag-chat .rag-src[title], #rag-chat .rag-fb[title]')
    .forEach((b) => {
      if (b.getAttribute('aria-label') !== b.title) b.setAttribute('aria-label', b.title);
      if (!b.classList.contains('rag-fb')) b.setAttribute('aria-controls', 'rag-panel');
      else if (!b.hasAttribute('aria-pressed')) b.setAttribute('aria-pressed', 'false');
    });
};
const watchChat = (tries) => {
  const chatEl = q('#rag-chat');
  if (!chatEl) { if (tries > 0) setTimeout(() => watchChat(tries - 1), 200); return; }
  if (chatEl.__ragFixed) return;
  chatEl.__ragFixed = true;
  fixChat();
  new MutationObserver(fixChat).observe(chatEl, {childList: true, subtree: true, attributes: true,
                                                 attributeFilter: ['aria-label']});
};
watchChat(50);
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
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && closePanel()) e.preventDefault();
  });
  root.addEventListener('click', (e) => {
    const el = e.target instanceof Element ? e.target : null;
    if (!el) return;
    const off = el.closest('.rag-time-off');
    if (off) {  // the range chip's ×: ask the same question again without the question's dates
      const t = off.className.match(/rag-t-(\d+)/);
      if (t) { e.preventDefault(); root.__ragTrigger('click', {turn: +t[1], action: 'time-off'}); }
      return;
    }
    const cite = el.closest('.rag-cite, .rag-src');
    if (cite) {
      const c = citeOf(cite);
      if (c) { e.preventDefault(); root.__ragTrigger('click', {turn: c.turn, n: c.n}); }
      return;
    }
    const fb = el.closest('.rag-fb');
    if (fb) {
      const c = fb.className.match(/rag-t-(\d+)/);
      const rating = fb.classList.contains('rag-fb-up') ? 'up' : 'down';
      fb.parentElement.querySelectorAll('.rag-fb').forEach((b) => b.setAttribute('aria-pressed', String(b === fb)));
      if (c) root.__ragTrigger('click', {turn: +c[1], fb: rating});
      return;
    }
    const copy = el.closest('.rag-copy');
    if (copy) {
      const msg = copy.closest('.rag-msg');
      const lines = msg ? [...msg.querySelectorAll('.rag-copytext .rag-copy-line')].map((s) => s.textContent) : [];
      copyText(lines.join('\n').trim(), () => {
        copy.classList.add('is-done');
        const done = copy.querySelector('.rag-copy-done');
        announce(done ? done.textContent : '');
        setTimeout(() => copy.classList.remove('is-done'), 2000);
      });
      return;
    }
    if (el.closest('.rag-panel-close')) closePanel();
  });
}
"""

# the filter chips' js_on_load: a chip's × clears that filter on the server
CHIPS_JS = r"""
element.addEventListener('click', (e) => {
  const x = e.target instanceof Element ? e.target.closest('.rag-chip-x') : null;
  if (!x) return;
  const what = x.className.match(/rag-chip-(outlet|from|to)/);
  if (what) trigger('click', {remove: what[1]});
});
"""

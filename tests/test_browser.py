"""The chat page in a real browser: Playwright driving Debian's Chromium.

One set of servers per module, each uvicorn in a thread on 127.0.0.1:
``main`` (the chat page and API, the portal's origin allowed), ``portal`` (the
static ``examples/portal`` page on another origin), ``stranger`` (the same page
on an origin that is not allowed), ``proxy`` (a tiny reverse proxy that serves
the ``root_path=/chat`` app under ``/chat/``) and ``locked`` (api-key mode).
The index is the seed corpus plus an article full of markup (XSS checks).
Every request the browser makes is logged; none may leave 127.0.0.1.
Screenshots go to the tests' tmp folders.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rag.config import Settings

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:::gradio.queueing")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fake_llm import FakeLLM  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response, StreamingResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from rag.serve.server import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY = "browser-test-key-0123456789"
KO_Q = "KT 컨소시엄에 참여한 공공기관은?"
EN_Q = "Which police agency joined KT's consortium?"
NO_Q = "What is the stock price of Naver today?"
XSS_Q = "What did Zorblax Corporation unveil?"
XSS_DOC = {
    "id": "xss-kettle",
    "title": '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> '
             "Zorblax unveils a quantum kettle",
    "url": "javascript:window.__xss=3",
    "outlet": "<b>Evil Times</b>",
    "author": "<img src=x onerror=window.__xss=4>Mallory",
    "published": "2024-05-01",
    "text": "Zorblax Corporation unveiled a quantum kettle named <script>window.__xss=5</script> "
            "KettleMax on Monday in Seoul. The kettle boils a litre of water in three seconds, Zorblax "
            'said, <img src=x onerror="window.__xss=6"> according to its own tests. Buyers can order the '
            'kettle at [the shop](javascript:window.__xss=7) or <a href="javascript:window.__xss=8">this '
            "link</a> from June.",
}
LOOPBACK = {"127.0.0.1", "localhost"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def _start(app: Any, host: str = "127.0.0.1") -> Running:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           proxy_headers=False, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    return Running(f"http://{host}:{port}", server, thread)


def _proxy(backend: str, prefix: str, log: list[str]) -> Starlette:
    """A reverse proxy like nginx's ``location /chat/ { proxy_pass http://backend/; }``."""
    client = httpx.AsyncClient(base_url=backend, timeout=60)
    hop = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}

    async def forward(request: Request) -> Response:
        path = request.url.path
        log.append(path)
        if not path.startswith(prefix + "/"):
            return Response("not under " + prefix, status_code=404)
        upstream = path[len(prefix):] + (("?" + request.url.query) if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in hop]
        req = client.build_request(request.method, upstream, headers=headers, content=await request.body())
        resp = await client.send(req, stream=True)
        out = [(k, v) for k, v in resp.headers.raw if k.decode().lower() not in hop]
        streaming = StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, background=None)
        streaming.raw_headers = out
        return streaming

    methods = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def _static() -> Starlette:
    return Starlette(routes=[Mount("/", StaticFiles(directory=ROOT / "examples" / "portal", html=True))])


@pytest.fixture(scope="module")
def stack(settings: Settings, seed_index: Path, embedder: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from rag.search.retrieve import Retriever
    from rag.store.index import build_index

    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "xss.jsonl").write_text(json.dumps(XSS_DOC, ensure_ascii=False) + "\n", encoding="utf-8")
    index = tmp / "index"
    shutil.copytree(seed_index, index)  # the update embeds only the new article
    build_index(settings, [ROOT / "corpus", tmp / "xss.jsonl"], index, progress=False, embedder=embedder)
    retriever = Retriever.open(settings, index)
    base = replace(settings, index_dir=str(index), data_dir=str(tmp / "data"), rate_limit=0)

    portal_port = _free_port()
    portal_origin = f"http://localhost:{portal_port}"
    servers: dict[str, Running] = {}
    servers["main"] = _start(create_app(replace(base, allowed_origins=portal_origin), retriever))
    srv = uvicorn.Server(uvicorn.Config(_static(), host="127.0.0.1", port=portal_port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    while not srv.started:
        time.sleep(0.05)
    servers["portal"] = Running(portal_origin, srv, th)
    servers["stranger"] = _start(_static())
    sub = _start(create_app(replace(base, root_path="/chat"), retriever))
    proxy_log: list[str] = []
    servers["sub"] = sub
    servers["proxy"] = _start(_proxy(sub.url, "/chat", proxy_log))
    servers["locked"] = _start(create_app(replace(base, auth="api-key", api_keys=KEY), retriever))
    llm = FakeLLM().start()  # LLM mode: one supported and one invented sentence
    # the passage numbering depends on retrieval: the true sentence cites all three
    llm.reply = "KT 컨소시엄에는 경찰청이 참여했다 [1][2][3]. 이 컨소시엄은 화성에 우주 기지를 세웠다 [1]."
    servers["llm"] = _start(create_app(replace(base, llm_base_url=llm.base_url, llm_model="fake"), retriever))
    yield {"servers": servers, "urls": {k: v.url for k, v in servers.items()}, "proxy_log": proxy_log,
           "data": Path(base.data_dir)}
    for r in servers.values():
        r.server.should_exit = True
    for r in servers.values():
        r.thread.join(timeout=5)
    llm.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Session:
    """One browser context with a request log, console errors and dialogs recorded."""

    def __init__(self, browser: Browser, shots: Path, locale: str = "en-US",
                 viewport: tuple[int, int] = (1280, 800), scheme: str = "light") -> None:
        self.ctx: BrowserContext = browser.new_context(
            locale=locale, viewport={"width": viewport[0], "height": viewport[1]},
            color_scheme=scheme)  # type: ignore[arg-type]
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.ctx.on("request", lambda r: self.requests.append(r.url))
        self.ctx.on("response",
                    lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page: Page = self.ctx.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.console.append(m.text))
        self.shots = shots

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def foreign(self) -> list[str]:
        web = [u for u in self.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
        return [u for u in web if urlsplit(u).hostname not in LOOPBACK]

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture
def new_session(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    """``new_session(locale, viewport)``; afterwards: no request left 127.0.0.1, no dialog opened."""
    made: list[Session] = []

    def make(locale: str = "en-US", viewport: tuple[int, int] = (1280, 800), scheme: str = "light") -> Session:
        made.append(Session(browser, tmp_path, locale, viewport, scheme))
        return made[-1]

    yield make
    for s in made:
        assert not s.foreign(), f"requests left 127.0.0.1: {s.foreign()}"
        assert not s.dialogs, f"a dialog opened: {s.dialogs}"
        s.close()


@pytest.fixture
def session(new_session: Any) -> Session:
    return new_session()  # type: ignore[no-any-return]


def open_chat(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#rag-box textarea", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('.pending')", timeout=10_000)


def wait_label(page: Page, text: str) -> None:
    """Wait until the send button speaks the expected language (set after the page loads)."""
    page.wait_for_function("(t) => document.querySelector('#rag-send').innerText.trim() === t", arg=text,
                           timeout=15_000)


def watch_streaming(page: Page) -> None:
    """Record whether a still-arriving answer was ever on screen."""
    page.evaluate("""() => { window.__sawStreaming = false;
      new MutationObserver(() => {
        if (document.querySelector('.rag-streaming')) window.__sawStreaming = true;
      }).observe(document.body, {subtree: true, childList: true}); }""")


def ask(page: Page, question: str, n: int = 1) -> Any:
    """Type a question, press Enter, wait for the ``n``-th final message; return it."""
    page.fill("#rag-box textarea", question)
    page.press("#rag-box textarea", "Enter")
    sel = ".rag-answer, .rag-abstain, .rag-error"
    page.wait_for_function(f"() => document.querySelectorAll('{sel}').length >= {n}", timeout=60_000)
    return page.locator(sel).nth(n - 1)


# ----------------------------------------------------------------- the chat page
def test_korean_question_streams_and_cites(new_session: Any, stack: dict[str, Any]) -> None:
    s = new_session(locale="ko-KR")
    page = s.page
    open_chat(page, stack["urls"]["main"] + "/")
    wait_label(page, "보내기")  # follows the browser language
    s.shot("desktop-ko-empty")
    watch_streaming(page)
    msg = ask(page, KO_Q)
    assert page.evaluate("window.__sawStreaming") is True
    assert "rag-answer" in (msg.get_attribute("class") or "")
    assert "경찰청" in msg.inner_text()
    msg.locator(".rag-cite").first.click()
    mark = page.locator("#rag-panel mark")
    mark.wait_for(timeout=10_000)
    panel = page.inner_text("#rag-panel")
    assert "바이라인네트워크" in panel and "언론사" in panel
    assert mark.inner_text().strip() in msg.inner_text()
    s.shot("desktop-ko-answer")


def test_english_on_phone_with_source_sheet(new_session: Any, stack: dict[str, Any]) -> None:
    s = new_session(locale="en-US", viewport=(390, 844))
    page = s.page
    open_chat(page, stack["urls"]["main"] + "/")
    wait_label(page, "Send")
    assert not page.locator("#rag-side").is_visible()  # no panel until a source is opened
    s.shot("phone-en-empty")
    msg = ask(page, EN_Q)
    assert "rag-answer" in (msg.get_attribute("class") or "")
    msg.locator(".rag-cite").first.click()
    page.locator("#rag-panel mark").wait_for(timeout=10_000)
    assert page.locator("#rag-side").is_visible()
    box = page.locator("#rag-side").bounding_box()
    assert box and box["width"] <= 391 and box["y"] > 200  # a bottom sheet inside the screen
    s.shot("phone-en-source")
    page.click(".rag-panel-close")
    page.wait_for_timeout(200)
    assert not page.locator("#rag-side").is_visible()
    s.shot("phone-en-answer")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"page scrolls sideways on a phone ({width}px)"


def test_abstention_looks_different(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    open_chat(page, stack["urls"]["main"] + "/")
    msg = ask(page, NO_Q)
    assert "rag-abstain" in (msg.get_attribute("class") or "")
    assert msg.locator(".rag-badge").is_visible() and msg.locator(".rag-cite").count() == 0
    bg = msg.locator(".rag-badge").evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "transparent")
    session.shot("abstention")


def test_language_switch_examples_follow_up_copy_feedback(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    session.ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(page, stack["urls"]["main"] + "/")
    wait_label(page, "Send")
    page.get_by_label("한국어").check()
    wait_label(page, "보내기")
    assert page.locator("#rag-examples button:visible").count() >= 1
    page.locator("#rag-examples button:visible").first.click()  # an example question
    page.wait_for_function("() => document.querySelectorAll('.rag-answer, .rag-abstain').length >= 1",
                           timeout=60_000)
    ask(page, KO_Q, n=2)
    second = ask(page, "그럼 카카오는?", n=3)  # a follow-up in the same conversation
    assert second.inner_text().strip()
    # copy the KT answer
    answer = page.locator(".rag-answer").filter(has_text="경찰청").first
    answer.locator(".rag-copy").click()
    page.wait_for_function("() => document.querySelector('.rag-copy.is-done')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "경찰청" in copied and "[1]" in copied and "<" not in copied
    assert "“" in copied and "출처:" in copied  # the quoted sentences come along
    page.wait_for_function("() => document.querySelector('#rag-live').textContent === '복사됨'")
    # thumbs up on the KT answer, then a comment: both stored with question, answer and citations
    answer.locator(".rag-fb-up").click()
    page.locator("#rag-feedback").get_by_text("고맙습니다").wait_for(timeout=10_000)
    page.fill("#rag-comment textarea", "출처가 정확해요")
    page.click("#rag-comment-send")
    page.locator("#rag-feedback").get_by_text("의견 고맙습니다").wait_for(timeout=10_000)
    feedback = stack["data"] / "feedback.jsonl"
    recs = [json.loads(x) for x in feedback.read_text(encoding="utf-8").splitlines()]
    mine = [r for r in recs if r["question"] == KO_Q and r["via"] == "chat"]
    assert [r["rating"] for r in mine[-2:]] == ["up", "up"] and mine[-1]["comment"] == "출처가 정확해요"
    assert mine[-1]["citations"] and "경찰청" in mine[-1]["answer"]
    # no thumbs under anything but answers; one clear control
    assert page.locator("#rag-chat .rag-error .rag-fb, #rag-chat .rag-q .rag-fb").count() == 0
    assert page.locator("#rag-chat .icon-button-wrapper.top-panel:visible").count() == 0
    # the language and the conversation are remembered for the next visit
    page.reload()
    page.wait_for_selector("#rag-box textarea")
    wait_label(page, "보내기")
    page.locator(".rag-answer").filter(has_text="경찰청").first.wait_for(timeout=15_000)
    assert page.locator(".rag-q").count() == 3
    # which a "new conversation" forgets, also after a reload
    page.click("#rag-new")
    page.wait_for_function("() => document.querySelectorAll('.rag-q').length === 0")
    page.wait_for_timeout(300)
    page.reload()
    page.wait_for_selector("#rag-box textarea")
    wait_label(page, "보내기")
    page.wait_for_timeout(1000)
    assert page.locator(".rag-q").count() == 0
    session.shot("language-switched")


def test_markup_in_articles_and_questions_stays_text(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    open_chat(page, stack["urls"]["main"] + "/")
    msg = ask(page, XSS_Q)
    text = msg.inner_text()
    assert "<script>" in text or "<img" in text, text
    msg.locator(".rag-cite").first.click()
    page.locator("#rag-panel mark").wait_for(timeout=10_000)
    panel = page.inner_text("#rag-panel")
    assert "<script>window.__xss=1</script>" in panel and "<b>Evil Times</b>" in panel
    assert "javascript:window.__xss=3" in panel  # shown, not linked
    ask(page, '<img src=x onerror="window.__xss=9">Zorblax kettle <script>window.__xss=10</script>?', n=2)
    assert "<img src=x" in page.locator(".rag-q").last.inner_text()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if not h.startswith(("http://", "https://", "#", "./", "/"))], hrefs
    assert page.locator("#rag-chat script, #rag-panel script, #rag-chat img[onerror]").count() == 0
    session.shot("xss")


def test_question_range_shown_and_removed_with_one_click(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    open_chat(page, stack["urls"]["main"] + "/")
    msg = ask(page, "What did Zorblax Corporation unveil in May 2024?")
    chip = msg.locator(".rag-time")
    assert "2024-05-01 ~ 2024-05-31" in chip.inner_text()
    assert "2024-05-01" in msg.locator(".rag-sources").inner_text()  # the citation's date
    chip.locator(".rag-time-off").click()
    again = page.locator(".rag-answer, .rag-abstain, .rag-error")
    page.wait_for_function("() => document.querySelectorAll('.rag-answer, .rag-abstain, .rag-error').length >= 2",
                           timeout=60_000)
    assert again.nth(1).locator(".rag-time").count() == 0  # asked again over all dates
    assert page.locator(".rag-q").last.inner_text().startswith("What did Zorblax Corporation unveil in May 2024?")
    session.shot("time-range-removed")


def test_llm_answer_marks_unsupported_sentences(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    open_chat(page, stack["urls"]["llm"] + "/")
    msg = ask(page, KO_Q)
    bad = msg.locator(".rag-unsupported")
    assert bad.count() == 1, msg.inner_html()[-700:]
    assert "화성" in bad.inner_text() and "경찰청" not in bad.inner_text()
    assert msg.locator(".rag-legend").is_visible() and msg.locator(".rag-cite").count() >= 2
    session.shot("llm-unsupported")


# ----------------------------------------------------------------- accessibility, language, filters, docs
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
DESKTOP, PHONE = (1366, 900), (390, 844)


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_timeout(400)  # let transitions settle: axe measures colours as they are now
    result = Axe().run(page, options=WCAG_AA)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:5]} {v['nodes'][0]['failureSummary'][:300]}"
            for v in result.response["violations"]]


TYPO_JS = """(sel) => { const s = getComputedStyle(document.querySelector(sel));
  return {wordBreak: s.wordBreak, synthesis: s.fontSynthesis, fontStyle: s.fontStyle, family: s.fontFamily}; }"""


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_on_desktop_and_phone(new_session: Any, stack: dict[str, Any], scheme: str) -> None:
    """WCAG 2.1 AA: idle, after an answer and with the source panel open; Korean typography by computed style."""
    for viewport, locale, question in ((DESKTOP, "ko-KR", KO_Q), (PHONE, "en-US", EN_Q)):
        s = new_session(locale=locale, viewport=viewport, scheme=scheme)
        page = s.page
        open_chat(page, f"{stack['urls']['main']}/?__theme={scheme}")
        wait_label(page, "보내기" if locale == "ko-KR" else "Send")
        where = f"{scheme} {viewport} {locale}"
        assert page.evaluate("document.documentElement.lang") == locale[:2]
        assert axe_violations(page) == [], f"idle, {where}"
        msg = ask(page, question)
        if viewport == DESKTOP:
            ask(page, NO_Q, n=2)  # a refusal on screen too
        assert axe_violations(page) == [], f"after an answer, {where}"
        msg.locator(".rag-cite").first.click()
        page.locator("#rag-panel mark").wait_for(timeout=10_000)
        assert axe_violations(page) == [], f"source panel open, {where}"
        s.shot(f"axe-{scheme}-{viewport[0]}")
        # typography: whole words, no synthetic italic, a CJK font first that fonts-noto-cjk provides
        shown = [".rag-answer .rag-text", "#rag-panel .rag-passage"]
        for sel in [*shown, ".rag-abstain .rag-text"] if viewport == DESKTOP else shown:
            style = page.evaluate(TYPO_JS, sel)
            assert style["wordBreak"] == "keep-all" and style["fontStyle"] == "normal", (sel, style)
            assert style["synthesis"] == "none" and "Noto Sans CJK KR" in style["family"], (sel, style)
        if locale == "ko-KR":
            assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK KR\"', '카카오는')"), \
                "fonts-noto-cjk is not installed"
        s.close()


def test_keyboard_only(new_session: Any, stack: dict[str, Any]) -> None:
    """Ask, move between citations, open the panel, step, close with Escape, focus back on the [n]."""
    s = new_session(locale="ko-KR", viewport=DESKTOP)
    page = s.page
    open_chat(page, stack["urls"]["llm"] + "/")  # the fake LLM's answer cites [1][2][3]
    wait_label(page, "보내기")
    box = page.locator("#rag-box textarea")
    assert page.get_by_role("textbox", name="질문", exact=True).count() == 1  # not "Textbox"
    assert box.get_attribute("maxlength") == "2000"
    box.focus()
    page.keyboard.type(KO_Q)
    page.keyboard.press("Enter")
    msg = page.locator(".rag-answer").first
    msg.wait_for(timeout=60_000)
    cites = msg.locator(".rag-cite")
    assert cites.count() >= 2
    assert (cites.first.get_attribute("aria-label") or "").startswith("출처 1 보기: ")
    assert cites.first.get_attribute("aria-controls") == "rag-panel"
    # messages are read as their text, not as markup
    labels = page.eval_on_selector_all("#rag-chat [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")
    assert not [x for x in labels if "<" in x], labels
    # from the box, Shift+Tab reaches the answer's citations; [1] and [2] are neighbours
    for _ in range(60):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.matches('.rag-answer .rag-cite.rag-n-2')"):
            break
    else:
        pytest.fail("Shift+Tab never reached citation [2]")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.matches('.rag-cite.rag-n-1')")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('.rag-cite.rag-n-2')")
    page.keyboard.press("Enter")
    page.locator("#rag-panel .rag-panel.rag-n-2 mark").wait_for(timeout=10_000)
    page.wait_for_function("() => document.activeElement.matches('.rag-panel-title')")
    page.wait_for_function("() => document.querySelector('#rag-live').textContent.startsWith('출처 [2] 열림')")
    assert page.locator("#rag-chat .rag-cite.rag-n-2.is-current[aria-current='true']").count() == 1
    # the highlighted sentence is scrolled into the passage's view
    inside = page.evaluate("""() => { const p = document.querySelector('.rag-passage').getBoundingClientRect();
        const m = document.querySelector('.rag-passage mark').getBoundingClientRect();
        return m.top >= p.top - 1 && m.top < p.bottom; }""")
    assert inside
    # previous source, by keyboard
    page.locator("#rag-panel .rag-step").first.focus()
    page.keyboard.press("Enter")
    page.locator("#rag-panel .rag-panel.rag-n-1 mark").wait_for(timeout=10_000)
    assert "[1] / " in page.inner_text("#rag-panel .rag-panel-nav")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#rag-panel .rag-panel.is-open')")
    assert page.evaluate("document.activeElement.matches('.rag-answer .rag-n-1')")
    s.shot("keyboard")
    # on a phone, Escape closes the bottom sheet and focus returns to the citation too
    phone = new_session(locale="en-US", viewport=PHONE)
    open_chat(phone.page, stack["urls"]["main"] + "/")
    ask(phone.page, EN_Q).locator(".rag-cite").first.click()
    phone.page.locator("#rag-side .rag-panel.is-open").wait_for(timeout=10_000)
    phone.page.keyboard.press("Escape")
    phone.page.wait_for_function("() => !document.querySelector('#rag-panel .rag-panel.is-open')")
    assert not phone.page.locator("#rag-side").is_visible()
    assert phone.page.evaluate("document.activeElement.matches('.rag-answer .rag-cite')")


@pytest.mark.parametrize(("locale", "lang"), [("ko-KR", "ko"), ("en-US", "en")])
def test_asking_at_once_after_load_speaks_the_page_language(new_session: Any, stack: dict[str, Any],
                                                             locale: str, lang: str) -> None:
    """The race: the question is sent as soon as the box exists, before the page has set its labels."""
    page = new_session(locale=locale).page
    page.goto(stack["urls"]["main"] + "/")
    page.wait_for_selector("#rag-box textarea", timeout=30_000)
    page.fill("#rag-box textarea", NO_Q)  # an English question: the refusal is still in the page language
    page.press("#rag-box textarea", "Enter")
    msg = page.locator(".rag-abstain").first
    msg.wait_for(timeout=60_000)
    wait_label(page, {"ko": "보내기", "en": "Send"}[lang])
    text = msg.inner_text()
    if lang == "ko":
        assert "기사에서" in text and "복사" in text and "could not" not in text and "Copy" not in text, text
        assert page.locator("#rag-lang input[value='ko']").is_checked()
    else:
        assert "could not find" in text and "Copy" in text and "기사" not in text, text
    assert page.evaluate("document.documentElement.lang") == lang
    # the page's own words are all in that language (article titles in examples may be either)
    for sel in ("#rag-title", "#rag-panel", "#rag-new", "#rag-filters", "#rag-send"):
        words = page.inner_text(sel)
        hangul = any("가" <= ch <= "힣" for ch in words)
        assert hangul == (lang == "ko"), (sel, words)
    placeholder = page.get_attribute("#rag-box textarea", "placeholder") or ""
    assert any("가" <= ch <= "힣" for ch in placeholder) == (lang == "ko"), placeholder


def test_outlet_and_date_filters_are_removable_chips(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    open_chat(page, stack["urls"]["main"] + "/")
    wait_label(page, "Send")
    # the coverage line comes from /api/info after the page has loaded: wait for it, then read it
    page.wait_for_function(r"() => /\d articles?\b/.test(document.querySelector('#rag-title')?.innerText || '')",
                           timeout=15_000)
    assert "2 articles" in page.inner_text("#rag-title")
    page.click("#rag-filters button, #rag-filters .label-wrap")
    page.fill("#rag-from textarea, #rag-from input", "2030-01-01")
    page.locator("#rag-from textarea, #rag-from input").press("Tab")
    chip = page.locator("#rag-chips .rag-chip")
    chip.first.wait_for(timeout=10_000)
    assert "2030-01-01" in chip.first.inner_text()
    assert "rag-abstain" in (ask(page, XSS_Q).get_attribute("class") or "")  # nothing published after 2030
    page.click("#rag-chips .rag-chip-from")
    page.wait_for_function("() => !document.querySelector('#rag-chips .rag-chip')")
    assert page.input_value("#rag-from textarea, #rag-from input") == ""
    assert "rag-answer" in (ask(page, XSS_Q, n=2).get_attribute("class") or "")
    session.shot("filters")


def test_api_docs_work_offline(session: Session, stack: dict[str, Any]) -> None:
    page = session.page
    page.goto(stack["urls"]["main"] + "/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
    page.get_by_text("/api/ask").first.wait_for(timeout=10_000)
    assert any(u.endswith("/docs-assets/swagger-ui-bundle.js") for u in session.requests)
    session.shot("docs")  # the fixture asserts that no request left 127.0.0.1


# ----------------------------------------------------------------- embedding
def test_portal_embeds_iframe_and_web_component(session: Session, stack: dict[str, Any]) -> None:
    urls = stack["urls"]
    page = session.page
    page.set_viewport_size({"width": 1280, "height": 2400})
    page.goto(f"{urls['portal']}/?chat={urls['main']}")
    frame = page.frame_locator("#chat-iframe")
    frame.locator("#rag-box textarea").wait_for(timeout=30_000)
    wc = page.locator("gradio-app #rag-box textarea")
    wc.wait_for(timeout=30_000)
    # the web component works: ask through it
    wc.fill(KO_Q)
    wc.press("Enter")
    page.locator("gradio-app .rag-answer").wait_for(timeout=60_000)
    # the JSON API from the portal's origin, streamed
    page.fill("#question", EN_Q)
    page.click("#ask-form button")
    page.locator("#citations li").first.wait_for(timeout=60_000)
    assert page.inner_text("#status") == ""
    # and the iframe
    frame.locator("#rag-box textarea").fill(NO_Q)
    frame.locator("#rag-box textarea").press("Enter")
    frame.locator(".rag-abstain").wait_for(timeout=60_000)
    session.shot("portal")
    scripts = [u for u in session.requests if u.endswith(".js")]
    assert any(u.startswith(urls["main"] + "/gradio.js") for u in scripts)
    assert all(urlsplit(u).hostname in LOOPBACK for u in scripts)


def test_foreign_origin_can_neither_frame_nor_call(session: Session, stack: dict[str, Any]) -> None:
    urls = stack["urls"]
    page = session.page
    page.goto(f"{urls['stranger']}/?chat={urls['main']}")
    page.fill("#question", KO_Q)
    page.click("#ask-form button")
    page.wait_for_function("() => document.querySelector('#status').textContent.length > 0", timeout=20_000)
    assert "not allowed" in page.inner_text("#status")  # a CORS refusal, not "cannot reach"
    assert page.inner_text("#answer") == ""
    deadline = time.monotonic() + 15
    while not any("frame-ancestors" in m for m in session.console) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert any("frame-ancestors" in m for m in session.console), session.console
    assert all(f.query_selector("#rag-box") is None for f in page.frames)
    assert page.locator("gradio-app #rag-box").count() == 0


def test_sub_path_behind_reverse_proxy(session: Session, stack: dict[str, Any]) -> None:
    proxy = stack["urls"]["proxy"]
    log: list[str] = stack["proxy_log"]
    log.clear()
    page = session.page
    open_chat(page, proxy + "/chat/")
    msg = ask(page, KO_Q)
    msg.locator(".rag-cite").first.click()
    page.locator("#rag-panel mark").wait_for(timeout=10_000)
    assert log and all(p.startswith("/chat/") for p in log), [p for p in log if not p.startswith("/chat/")]
    bad = [f for f in session.failed if "/chat/" in f]
    assert not bad, bad
    api = page.evaluate("""async (u) => (await fetch(u + '/chat/api/search', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({question: 'KT', k: 1})})).status""", proxy)
    assert api == 200
    session.shot("sub-path")


def test_auth_refusals(session: Session, stack: dict[str, Any]) -> None:
    locked = stack["urls"]["locked"]
    page = session.page
    page.goto(locked + "/")
    page.locator("input[type=password]").wait_for(timeout=30_000)  # the page asks for the key
    assert KEY not in page.content()
    status = page.evaluate("""async (u) => (await fetch(u + '/api/ask', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({question: 'KT'})})).status""", locked)
    assert status == 401
    login = page.locator("button:has-text('Login'), button:has-text('로그인')").first
    page.locator("input[type=text]").first.fill("kim")
    page.locator("input[type=password]").fill("wrong-key-000000000000")
    login.click()
    page.wait_for_timeout(1000)
    assert page.locator("#rag-box").count() == 0
    page.locator("input[type=text]").first.fill("kim")
    page.locator("input[type=password]").fill(KEY)
    login.click()
    page.wait_for_selector("#rag-box textarea", timeout=30_000)
    assert KEY not in page.content()
    session.shot("auth-login")

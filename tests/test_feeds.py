"""Feeds against a real local HTTP server that the test starts: broken XML, 404, 500, slow pages,
redirects, a non-UTF-8 page, a changed article, robots.txt, conditional requests, syndicated copies."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.config import Settings
from rag.ingest.feeds import Fetcher, FetchError, decode_page, parse_feed
from rag.store.feedindex import Ingestor, parse_every, read_feed_list


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str = ""


class Site:
    """Routes served by the local server; ``hits`` counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.conditional: list[str] = []
        self.base = ""


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            import time

            site.hits[self.path] = site.hits.get(self.path, 0) + 1
            r = site.routes.get(self.path)
            if r is None:
                self.send_response(404)
                self.end_headers()
                return
            if r.delay:
                time.sleep(r.delay)
            if r.etag and self.headers.get("If-None-Match") == r.etag:
                site.conditional.append(self.path)
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(r.status)
            for k, v in r.headers.items():
                self.send_header(k, v)
            if r.etag:
                self.send_header("ETag", r.etag)
            self.send_header("Content-Length", str(len(r.body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(r.body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.base = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield s
    server.shutdown()
    server.server_close()


def page(title: str, body: str, date: str = "2025-08-05", charset: str = "utf-8", lang: str = "ko") -> bytes:
    paras = "".join(f"<p>{p}</p>" for p in body.split("\n"))
    html = (f'<html lang="{lang}"><head><meta charset="{charset}"><title>{title}</title>'
            f'<meta property="article:published_time" content="{date}"></head>'
            f"<body><article><h1>{title}</h1>{paras}</article></body></html>")
    return html.encode(charset)


def rss(base: str, items: list[tuple[str, str, str]], title: str = "테크데일리") -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>{base}{path}</link><pubDate>{d}</pubDate></item>" for path, t, d in items
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>{base}/</link>{entries}</channel></rss>").encode()


GOOD = ("K-AI 파운데이션 모델 프로젝트에 5개 팀이 선정됐다. 과기정통부는 각 팀에 GPU와 데이터를 지원한다고 밝혔다.\n"
        "선정된 팀은 6개월마다 단계 평가를 받는다. 평가 결과에 따라 하위 팀은 탈락할 수 있다.")
EUCKR = ("리벨리온이 새 투자를 유치해 차세대 추론 칩 개발을 앞당긴다. 회사는 해외 데이터센터 고객도 확보했다.\n"
         "이번 투자에는 국내외 기관 투자자 다섯 곳이 참여했다.")
MOVED = ("서울시가 마포구에 공공 AI 데이터센터를 열었다. 센터는 스타트업에 GPU 500장을 할인된 가격에 빌려준다.\n"
         "시 관계자는 개소 일주일 만에 신청이 공급을 넘어섰다고 말했다.")


def fast_fetcher(**kw: float) -> Fetcher:
    args = {"timeout": 1.0, "retries": 1, "backoff": 0.01, "min_interval": 0.0, **kw}
    return Fetcher(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ parsing (no network)


def test_atom_and_google_news_sitemap_are_read() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
      <title>Korea Tech Times</title><entry><title>Four teams</title><link href="/a/1"/>
      <updated>2025-08-11T09:00:00+09:00</updated></entry></feed>"""
    items = parse_feed(atom, "http://example.test/feed.atom")
    assert [(i.url, i.title, i.published, i.outlet) for i in items] == [
        ("http://example.test/a/1", "Four teams", "2025-08-11", "Korea Tech Times")]
    sitemap = """<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
      <url><loc>http://example.test/n/2</loc><news:news><news:publication><news:name>바이라인네트워크</news:name>
      <news:language>ko</news:language></news:publication><news:publication_date>2025-08-04</news:publication_date>
      <news:title>5개 팀 선정</news:title></news:news></url></urlset>""".encode()
    items = parse_feed(sitemap, "http://example.test/sitemap.xml")
    assert [(i.url, i.title, i.published, i.outlet) for i in items] == [
        ("http://example.test/n/2", "5개 팀 선정", "2025-08-04", "바이라인네트워크")]


def test_broken_feeds_name_the_url() -> None:
    for body in (b"<rss><channel><item><title>unterminated", b"<urlset><url><loc>x</loc>", b"not xml at all"):
        with pytest.raises(FetchError, match=r"http://example\.test/broken"):
            parse_feed(body, "http://example.test/broken")


def test_page_charset_from_meta_or_fallback() -> None:
    text = "한국어 기사 본문입니다"
    assert text in decode_page(page("제목", text, charset="euc-kr"))
    assert decode_page(text.encode("cp949"), {"content-type": "text/html"}) == text
    assert decode_page(text.encode("utf-8"), {"content-type": "text/html; charset=utf-8"}) == text


def test_feed_list_file_and_durations(tmp_path: Path) -> None:
    f = tmp_path / "feeds.txt"
    f.write_text("# news\nhttp://a.test/rss\n\nhttps://b.test/atom  # english\n", encoding="utf-8")
    assert read_feed_list(f) == ["http://a.test/rss", "https://b.test/atom"]
    f.write_text("ftp://nope\n", encoding="utf-8")
    with pytest.raises(Exception, match="not an http"):
        read_feed_list(f)
    assert (parse_every("15m"), parse_every("30s"), parse_every("1h"), parse_every("90")) == (900, 30, 3600, 90)
    with pytest.raises(ValueError, match="15m"):
        parse_every("soon")


# ------------------------------------------------------------------ fetching


def test_fetcher_retries_5xx_then_reports(site: Site) -> None:
    site.routes["/flaky"] = Route(b"oops", status=500)
    with pytest.raises(FetchError, match=r"/flaky: HTTP 500.*2 tries"):
        fast_fetcher().get(site.base + "/flaky")
    assert site.hits["/flaky"] == 2  # one try and one retry
    site.routes["/gone"] = Route(status=404)
    with pytest.raises(FetchError, match="/gone: HTTP 404"):
        fast_fetcher().get(site.base + "/gone")
    assert site.hits["/gone"] == 1  # a 4xx is final


def test_fetcher_times_out_and_honours_robots(site: Site) -> None:
    site.routes["/robots.txt"] = Route(b"User-agent: *\nDisallow: /private/\n")
    site.routes["/slow"] = Route(b"late", delay=1.5)
    site.routes["/private/x"] = Route(b"secret")
    f = fast_fetcher(timeout=0.3, retries=0)
    with pytest.raises(FetchError, match="/slow: timed out"):
        f.get(site.base + "/slow")
    with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
        f.get(site.base + "/private/x")
    assert "/private/x" not in site.hits


def test_conditional_requests_send_etag(site: Site) -> None:
    site.routes["/feed"] = Route(b"x", etag='"v1"')
    f = fast_fetcher()
    assert f.get(site.base + "/feed").status == 200
    assert f.get(site.base + "/feed").status == 304
    assert site.conditional == ["/feed"]


# ------------------------------------------------------------------ ingest rounds (real index)


@pytest.mark.slow
def test_ingest_rounds_against_a_local_site(site: Site, tmp_path: Path, settings: Settings, embedder: object
                                            ) -> None:
    b = site.base
    site.routes["/a/good"] = Route(page("K-AI 5개 팀 선정", GOOD))
    site.routes["/a/euckr"] = Route(page("리벨리온 투자 유치", EUCKR, charset="euc-kr"),
                                    headers={"Content-Type": "text/html"})
    site.routes["/old-url"] = Route(status=301, headers={"Location": "/a/moved"})
    site.routes["/a/moved"] = Route(page("서울 공공 AI 데이터센터", MOVED))
    site.routes["/a/error"] = Route(b"", status=500)
    site.routes["/a/slow"] = Route(page("느린 기사", GOOD), delay=1.5)
    items = [("/a/good", "K-AI 5개 팀 선정", "Mon, 04 Aug 2025 10:00:00 +0900"),
             ("/a/euckr", "리벨리온 투자 유치", "Tue, 05 Aug 2025 10:00:00 +0900"),
             ("/old-url", "서울 공공 AI 데이터센터", "Tue, 12 Aug 2025 10:00:00 +0900"),
             ("/a/missing", "없는 기사", "Tue, 12 Aug 2025 10:00:00 +0900"),
             ("/a/error", "오류 기사", "Tue, 12 Aug 2025 10:00:00 +0900"),
             ("/a/slow", "느린 기사", "Tue, 12 Aug 2025 10:00:00 +0900")]
    site.routes["/rss"] = Route(rss(b, items), etag='"feed-1"')
    site.routes["/broken.xml"] = Route(b"<rss><channel><item><title>broken")
    s = Settings(cache_dir=settings.cache_dir, index_dir=str(tmp_path / "index"), corpus=(str(tmp_path / "corpus"),))
    folder = tmp_path / "corpus" / "feeds"
    logs: list[str] = []
    ing = Ingestor(s, folder, fast_fetcher(timeout=0.5, retries=1), log=logs.append)

    r1 = ing.run([b + "/broken.xml", b + "/rss", b + "/dead-feed"], embedder=embedder)
    assert sorted(r1.new) == sorted([b + "/a/good", b + "/a/euckr", b + "/old-url"])
    failed = {p["url"] for p in r1.problems}
    assert failed == {b + "/broken.xml", b + "/dead-feed", b + "/a/missing", b + "/a/error", b + "/a/slow"}
    assert all(p["url"] in p["error"] for p in r1.problems)  # every problem names its URL
    assert r1.index is not None and r1.index["documents"] == 3

    from rag.store.indexfiles import load_index

    idx = load_index(s.index_dir, s)
    texts = "\n".join(c.text for c in idx.chunks)
    assert "차세대 추론 칩" in texts  # the euc-kr page decoded
    assert "마포구" in texts  # the redirected page
    by_url = {m["url"]: m for m in idx.docs.values()}
    assert by_url[b + "/a/good"]["published"].startswith("2025-08-0")
    assert by_url[b + "/a/good"]["outlet"] == "테크데일리"

    # round 2: the feed answers 304, nothing is fetched again or re-indexed, nothing removed
    r2 = ing.run([b + "/rss"], embedder=embedder)
    assert (r2.new, r2.updated, r2.index) == ([], [], None)
    assert "/rss" in site.conditional

    # round 3: an article is corrected (new text, new feed ETag): it replaces the old version
    site.routes["/a/good"] = Route(page("K-AI 4개 팀으로 줄어", GOOD.replace("5개 팀이 선정됐다", "4개 팀으로 줄었다")))
    site.routes["/rss"] = Route(rss(b, items), etag='"feed-2"')
    site.routes["/a/euckr"] = Route(status=500)  # a page that breaks later keeps its indexed version
    r3 = ing.run([b + "/rss"], embedder=embedder)
    assert r3.updated == [b + "/a/good"] and r3.new == []
    idx = load_index(s.index_dir, s)
    texts = "\n".join(c.text for c in idx.chunks)
    assert "4개 팀으로 줄었다" in texts and "5개 팀이 선정됐다" not in texts
    assert "차세대 추론 칩" in texts and len(idx.docs) == 3


def test_syndicated_copy_is_stored_once_and_listed(site: Site, tmp_path: Path) -> None:
    wire = ("정부가 연말까지 GPU 1만 장을 확보하겠다는 계획을 발표했다. 확보한 GPU는 국가 AI 컴퓨팅 센터에 배치된다.\n"
            "민간 기업도 저렴한 가격에 GPU를 빌려 쓸 수 있다. 정부는 내년 상반기까지 배치를 마칠 계획이다.")
    edited = wire.replace("발표했다", "밝혔다").replace("저렴한", "싼")
    b = site.base
    site.routes["/wire"] = Route(page("GPU 1만 장 확보", wire, date="2025-08-13"))
    site.routes["/copy"] = Route(page("정부 GPU 1만 장 확보 계획", edited, date="2025-08-14"))
    site.routes["/rss1"] = Route(rss(b, [("/wire", "GPU 1만 장 확보", "Wed, 13 Aug 2025 09:00:00 +0900")], "연합뉴스"))
    site.routes["/rss2"] = Route(rss(b, [("/copy", "정부 GPU 확보", "Thu, 14 Aug 2025 09:00:00 +0900")], "테크데일리"))
    ing = Ingestor(Settings(index_dir=str(tmp_path / "index")), tmp_path / "feeds", fast_fetcher())
    r = ing.run([b + "/rss1", b + "/rss2"], index=False)
    assert r.new == [b + "/wire"]
    assert r.duplicates == [{"url": b + "/copy", "of": b + "/wire", "kind": "syndicated"}]
    stored = [json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "feeds").glob("*/*.jsonl")]
    assert len(stored) == 1 and stored[0]["outlet"] == "연합뉴스"  # the earliest publisher
    assert [a["outlet"] for a in stored[0]["copies"]] == ["테크데일리"]
    assert stored[0]["also"] == f"테크데일리 (2025-08-14, {b}/copy)"


def test_cli_ingest_reports_json_and_progress(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    from rag.cli import main

    site.routes["/rss"] = Route(rss(site.base, [("/a/missing", "없는 기사", "Mon, 04 Aug 2025 10:00:00 +0900")]))
    site.routes["/bad.xml"] = Route(b"<<<")
    rc = main(["ingest", "--feed", site.base + "/rss", "--feed", site.base + "/bad.xml", "--into",
               str(tmp_path / "feeds"), "--index", str(tmp_path / "index"), "--rate", "0", "--retries", "0",
               "--timeout", "2", "--watch", "--every", "0.01s", "--rounds", "2"])
    out, err = capsys.readouterr()
    assert rc == 0
    rounds = [json.loads(line) for line in out.splitlines()]
    assert len(rounds) == 2
    assert {p["url"] for p in rounds[0]["problems"]} == {site.base + "/a/missing", site.base + "/bad.xml"}
    assert "round 1" in err and "skipped" in err and "/a/missing" in err

"""rag.ingest.corpus: every input format, boilerplate removal, ids, and bad input that must not abort."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rag.ingest.htmlpage as htmlpage_mod
from rag.errors import CorpusError
from rag.ingest.boilerplate import strip_boilerplate
from rag.ingest.chunking import chunk
from rag.ingest.corpus import LoadResult, Problem, load_corpus

ROOT = Path(__file__).resolve().parents[1]
SEED = Path("/work/shared/corpus/000_e4d86b841106c12c.txt")
if not SEED.exists():  # the shared folder sits next to the checkout
    SEED = ROOT.parent / "shared" / "corpus" / "000_e4d86b841106c12c.txt"
SHIPPED = ROOT / "corpus" / "byline-k-ai-eliminated-teams.md"
BOILERPLATE = ("답글 남기기", "이메일 주소는 공개되지 않습니다", "reCAPTCHA", "최가람 기자", "ggchoi@")

ARTICLE_EN = (
    "The central bank raised rates by 0.25 points on Wednesday. "
    "Mr. Powell said the economy was resilient.\n\n"
    "Analysts expect one more increase this year."
)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def by_id(result: LoadResult) -> dict[str, object]:
    return {d.doc_id: d for d in result.documents}


def messages(result: LoadResult) -> list[str]:
    return [str(p) for p in result.problems]


# ---------------------------------------------------------------- formats


def test_markdown_with_front_matter(tmp_path: Path) -> None:
    write(
        tmp_path / "news" / "rates.md",
        "---\ntitle: Rates rise\noutlet: Example Times\nauthor: [Jane Doe, John Roe]\n"
        "published: 2024-03-05\nurl: https://example.com/rates\nid: rates-2024\n---\n\n"
        "# Rates rise\n\n" + ARTICLE_EN + "\n",
    )
    res = load_corpus([tmp_path])
    assert res.problems == ()
    (doc,) = res.documents
    assert doc.doc_id == "rates-2024"
    assert (doc.title, doc.outlet, doc.author) == ("Rates rise", "Example Times", "Jane Doe, John Roe")
    assert (doc.published, doc.url, doc.lang) == ("2024-03-05", "https://example.com/rates", "en")
    assert doc.text[doc.body_start :] == ARTICLE_EN  # the duplicate "# Rates rise" heading is gone
    assert doc.text[: doc.body_start] == (
        "Rates rise\nOutlet: Example Times | Author: Jane Doe, John Roe | Published: 2024-03-05\n\n"
    )  # the metadata header, rendered from the front matter
    assert doc.source == str(tmp_path / "news" / "rates.md")
    assert len(doc.sha256) == 64


def test_markdown_without_front_matter_takes_heading_as_title(tmp_path: Path) -> None:
    write(tmp_path / "plain.markdown", "# 제목입니다\n\n본문 첫 문장이다. 둘째 문장이다.\n")
    (doc,) = load_corpus([tmp_path]).documents
    assert (doc.doc_id, doc.title, doc.text, doc.lang) == (
        "plain",
        "제목입니다",
        "본문 첫 문장이다. 둘째 문장이다.",
        "ko",
    )


def test_txt_headline_and_body(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Rates rise again\n\n" + ARTICLE_EN)
    write(tmp_path / "b.txt", "No headline here, the text starts with a full sentence.\n\nMore text.")
    docs = by_id(load_corpus([tmp_path]))
    assert docs["a"].title == "Rates rise again" and docs["a"].text == ARTICLE_EN  # type: ignore[attr-defined]
    assert docs["b"].title == "" and docs["b"].text.startswith("No headline")  # type: ignore[attr-defined]


HTML = """<!doctype html><html lang="en-GB"><head><title>Rates rise | Example Times</title>
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<meta property="og:site_name" content="Example Times">
<link rel="canonical" href="https://example.com/rates"></head>
<body><nav>Home | World | Business</nav><article><h1>Rates rise</h1>
<p>The central bank raised rates by 0.25 points on Wednesday, its fourth increase this year.</p>
<p>Mr. Powell said the economy remained resilient despite higher borrowing costs for households.</p>
<p>Analysts expect one more increase before the end of the year, according to a survey.</p>
</article><footer>Copyright 2024 Example Times. All rights reserved.</footer>
<script>var x = 1;</script></body></html>"""


def test_html_main_text_and_metadata(tmp_path: Path) -> None:
    write(tmp_path / "page.html", HTML)
    res = load_corpus([tmp_path])
    assert res.problems == ()
    (doc,) = res.documents
    assert doc.title == "Rates rise"
    assert (doc.author, doc.published, doc.outlet) == ("Jane Doe", "2024-03-05", "Example Times")
    assert doc.url == "https://example.com/rates" and doc.lang == "en"
    assert doc.text[doc.body_start :].startswith("The central bank raised rates")
    assert "Mr. Powell said" in doc.text and "\n\n" in doc.text
    for junk in ("Home | World", "Copyright", "var x", "Rates rise"):
        assert junk not in doc.text[doc.body_start :]


def test_html_falls_back_to_stdlib_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htmlpage_mod, "_trafilatura", lambda html: {})
    write(tmp_path / "page.htm", HTML)
    (doc,) = load_corpus([tmp_path]).documents
    assert doc.title == "Rates rise | Example Times"
    assert "The central bank raised rates" in doc.text and "Mr. Powell said" in doc.text
    assert (
        "var x" not in doc.text and "Home | World" not in doc.text and "All rights reserved" not in doc.text
    )


def test_jsonl_records_folder_and_single_file(tmp_path: Path) -> None:
    lines = [
        {
            "id": "ko-1",
            "title": "제목",
            "text": "정부가 발표했다.",
            "source": "연합뉴스",
            "date": "2024-01-02",
        },
        {
            "id": 7,
            "title": "Seven",
            "text": ARTICLE_EN,
            "url": "https://x.test/7",
            "lang": "EN-us",
            "extra": [1],
        },
        {"title": "No id", "text": "An article without an id still loads."},
    ]
    path = write(
        tmp_path / "data" / "records.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    )
    for target in (tmp_path / "data", path, str(path)):
        res = load_corpus([target])
        assert res.problems == ()
        docs = by_id(res)
        ko, seven = docs["ko-1"], docs["7"]
        assert (ko.outlet, ko.published, ko.lang, ko.source) == ("연합뉴스", "2024-01-02", "ko", f"{path}:1")  # type: ignore[attr-defined]
        assert (seven.title, seven.url, seven.lang) == ("Seven", "https://x.test/7", "en")  # type: ignore[attr-defined]
        auto = [d for d in res.documents if d.doc_id.startswith("records-")]
        assert len(auto) == 1 and auto[0].source == f"{path}:3"
    assert load_corpus(path).documents == load_corpus([path]).documents  # a bare path is accepted too


def test_ids_are_stable_unique_and_sorted(tmp_path: Path) -> None:
    write(tmp_path / "b" / "story one.md", "Body one here.")
    write(tmp_path / "a.md", "Body a.")
    write(tmp_path / "a.txt", "Body a as text.")
    write(tmp_path / "README.md", "# About this corpus")
    write(tmp_path / ".hidden.md", "hidden")
    write(tmp_path / ".git" / "x.md", "hidden folder")
    first, second = load_corpus([tmp_path]), load_corpus([tmp_path])
    assert [d.doc_id for d in first.documents] == ["a", "a-2", "b/story-one"]
    assert first == second
    assert first.problems == ()


def test_metadata_change_changes_sha256(tmp_path: Path) -> None:
    path = write(tmp_path / "x.md", "---\ntitle: One\n---\nSame body.")
    before = load_corpus([tmp_path]).documents[0].sha256
    write(path, "---\ntitle: One\nauthor: Someone\n---\nSame body.")
    assert load_corpus([tmp_path]).documents[0].sha256 != before


def test_legacy_korean_encoding_is_read(tmp_path: Path) -> None:
    write(tmp_path / "legacy.txt", "옛 인코딩 기사\n\n본문은 EUC-KR로 저장되었다.".encode("cp949"))
    write(tmp_path / "bom.txt", "\ufeffBOM title\n\nBody with a byte order mark.".encode())
    docs = by_id(load_corpus([tmp_path]))
    assert docs["legacy"].title == "옛 인코딩 기사"  # type: ignore[attr-defined]
    assert docs["bom"].title == "BOM title"  # type: ignore[attr-defined]


# ---------------------------------------------------------------- bad input


def test_bad_files_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    write(tmp_path / "good.md", "A good article survives.")
    write(tmp_path / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path / "latin1.txt", "café crème à la carte".encode("latin-1"))
    write(tmp_path / "empty.md", "")
    write(tmp_path / "blank.txt", "  \n\n ")
    write(tmp_path / "badfm.md", "---\ntitle: a: b\nauthor: x\n---\nBody.")
    write(tmp_path / "openfm.md", "---\ntitle: never closed\nBody.")
    write(tmp_path / "listfm.md", "---\n- a\n- b\n---\nBody.")
    write(tmp_path / "only-form.txt", "답글 남기기\n\n이메일 주소는 공개되지 않습니다.")
    write(tmp_path / "notes.pdf", b"%PDF-1.4")
    res = load_corpus([tmp_path])
    assert [d.doc_id for d in res.documents] == ["good"]
    problems = {Path(p.path).name: p for p in res.problems}
    assert set(problems) == {
        "binary.txt", "latin1.txt", "empty.md", "blank.txt", "badfm.md", "openfm.md", "listfm.md",
        "only-form.txt", "notes.pdf",
    }  # fmt: skip
    assert "binary" in problems["binary.txt"].message
    assert "UTF-8" in problems["latin1.txt"].message
    assert problems["empty.md"].message == "empty file"
    assert problems["badfm.md"].line == 2 and "front matter" in problems["badfm.md"].message
    assert "never closed" in problems["openfm.md"].message
    assert all(p.path.startswith(str(tmp_path)) for p in res.problems)


def test_bad_jsonl_lines_name_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.jsonl",
        "\n".join(
            [
                json.dumps({"id": "a", "text": "First good record."}),
                '{"id": "b", "text": "broken JSON"',
                json.dumps({"id": "c", "title": "no text"}),
                json.dumps({"id": "d", "text": "   "}),
                json.dumps({"id": "a", "text": "Duplicate id."}),
                json.dumps({"id": "e", "text": "Bad title type.", "title": 5}),
                json.dumps(["not", "an", "object"]),
                "",
                json.dumps({"id": "f", "text": "Last good record."}),
            ]
        )
        + "\n",
    )
    write(tmp_path / "d.jsonl", json.dumps({"id": "f", "text": "Same id in another file."}))
    res = load_corpus([tmp_path])
    assert [d.doc_id for d in res.documents] == ["a", "f"]
    lines = {(Path(p.path).name, p.line): p.message for p in res.problems}
    assert set(lines) == {("c.jsonl", n) for n in (2, 3, 4, 5, 6, 7)} | {("d.jsonl", 1)}
    assert "invalid JSON" in lines[("c.jsonl", 2)]
    assert '"text"' in lines[("c.jsonl", 3)] and "missing" in lines[("c.jsonl", 3)]
    assert "duplicate id 'a'" in lines[("c.jsonl", 5)] and f"{path}:1" in lines[("c.jsonl", 5)]
    assert "'title'" in lines[("c.jsonl", 6)]
    assert "duplicate id 'f'" in lines[("d.jsonl", 1)]


def test_bad_utf8_jsonl_line_skips_only_that_line(tmp_path: Path) -> None:
    good = json.dumps({"id": "ok", "text": "Fine."}).encode()
    write(tmp_path / "x.jsonl", good + b'\n{"id": "bad", "text": "caf\xe9"}\n')
    res = load_corpus([tmp_path / "x.jsonl"])
    assert [d.doc_id for d in res.documents] == ["ok"]
    assert [(p.line, "UTF-8" in p.message) for p in res.problems] == [(2, True)]


def test_unreadable_file_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = write(tmp_path / "secret.md", "text")
    write(tmp_path / "open.md", "Readable text.")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.md":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    res = load_corpus([tmp_path])
    assert [d.doc_id for d in res.documents] == ["open"]
    assert res.problems == (Problem(str(secret), None, "cannot read file: Permission denied"),)


def test_wrong_paths_raise_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="missing-folder"):
        load_corpus([tmp_path / "missing-folder"])
    write(tmp_path / "data.csv", "a,b")
    with pytest.raises(CorpusError, match="unsupported"):
        load_corpus([tmp_path / "data.csv"])
    assert load_corpus([]) == LoadResult()
    assert isinstance(Problem("p", 3, "m"), Problem) and str(Problem("p", 3, "m")) == "p:3: m"


# ---------------------------------------------------------------- boilerplate and the seed article


def test_seed_txt_loads_without_boilerplate(tmp_path: Path) -> None:
    shutil.copy(SEED, tmp_path / SEED.name)
    res = load_corpus([tmp_path])
    assert res.problems == ()
    (doc,) = res.documents
    assert doc.title == "아쉽게 떨어진 K-AI 도전팀, 향후 계획은?"
    assert (doc.author, doc.outlet, doc.lang, doc.published, doc.url) == (
        "최가람",
        "바이라인네트워크",
        "ko",
        "",
        "",
    )
    assert doc.text[doc.body_start :].startswith("우리나라를 대표할 인공지능(AI)")
    assert doc.text.endswith("추후 발표할 예정이다.\n\n글. 바이라인네트워크")
    chunks = chunk(doc)
    assert chunks
    for c in chunks:
        for junk in BOILERPLATE:
            assert junk not in c.text
    assert any("바이라인네트워크" in c.text for c in chunks)  # the credit line can be cited


def test_shipped_corpus_matches_the_seed(tmp_path: Path) -> None:
    res = load_corpus([ROOT / "corpus"])
    assert res.problems == ()
    docs = by_id(res)
    doc = docs["byline-k-ai-eliminated-teams"]
    assert (doc.title, doc.outlet, doc.author, doc.lang) == (  # type: ignore[attr-defined]
        "아쉽게 떨어진 K-AI 도전팀, 향후 계획은?",
        "바이라인네트워크",
        "최가람",
        "ko",
    )
    assert doc.published == "" and doc.url == ""  # type: ignore[attr-defined]
    raw = SHIPPED.read_text(encoding="utf-8")
    for junk in BOILERPLATE:
        assert junk not in raw
    shutil.copy(SEED, tmp_path / SEED.name)
    assert load_corpus([tmp_path]).documents[0].text == doc.text  # type: ignore[attr-defined]


def test_strip_boilerplate_generic_rules() -> None:
    body = "\n\n".join(["A real first paragraph that is long enough to matter here."] * 4)
    text = (
        "By Jane Doe\n\n"
        + body
        + "\n\nShare this article\n\nCopyright © 2024 Example Media. All rights reserved.\n\n"
        "Leave a Reply\n\nYour email address will not be published. Required fields are marked *\n\n"
        "Comment *\n\nName *\n\nEmail *\n\nWebsite\n\nThis site is protected by reCAPTCHA."
    )
    out, meta = strip_boilerplate(text)
    assert out == body and meta == {"author": "Jane Doe"}
    ko = (
        "기사 본문이다. " * 30
        + "\n\n[저작권자ⓒ 바이라인. 무단전재 및 재배포 금지]\n\n"
        + "홍길동·김철수 기자 hong@example.com\n\n구독"
    )
    out, meta = strip_boilerplate(ko)
    assert out == ("기사 본문이다. " * 30).strip() and meta == {"author": "홍길동, 김철수"}


def test_strip_boilerplate_keeps_real_sentences() -> None:
    text = (
        "Copyright infringement cases rose sharply last year, the report said.\n\n"
        "Subscribers to the service grew 5% as comments on the plan poured in.\n\n"
        "By Monday the company had filed its reply with the court, lawyers said."
    )
    assert strip_boilerplate(text) == (text, {})

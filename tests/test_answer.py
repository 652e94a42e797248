"""Extractive answers on real retrieval: citations, quotes, abstention, languages, streaming."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.answer.answer_eval import evaluate_answers
from rag.answer.compose import ABSTAIN, SOURCE_LANG_NOTE, answer, stream_answer
from rag.config import Settings
from rag.ingest.corpus import load_corpus
from rag.records import Answer
from rag.search.retrieve import Filters, Retriever
from rag.store.index import build_index

ROOT = Path(__file__).resolve().parent.parent
SEED_QUESTIONS = ROOT.parent / "shared" / "eval" / "seed" / "questions.jsonl"

RAIN = (
    "2일 부산에 시간당 80mm가 넘는 폭우가 쏟아져 도심 터널 세 곳이 통제됐다. "
    "부산시는 오후 3시 재난문자를 보내 외출 자제를 당부했다.\n\n"
    "기상청은 비가 3일 오전까지 이어질 것으로 내다봤다. 해운대구 일부 도로는 침수돼 차량 통행이 금지됐다.\n"
)
CHIPS = (
    "South Korea's semiconductor exports rose 21 percent in February from a year earlier, "
    "the trade ministry said on Monday.\n\n"
    "Memory makers benefited from strong demand for high-bandwidth memory used in AI servers. "
    "Shipments to China fell for a third month.\n"
)
SMALL = {
    "rain.md": "---\ntitle: 부산 폭우로 도심 터널 통제\noutlet: 테스트일보\nauthor: 김하늘\n"
    "published: 2024-08-02\n---\n\n" + RAIN,
    "chips.md": "---\ntitle: Chip exports rebound on AI demand\noutlet: Test Herald\nauthor: Jane Roe\n"
    "published: 2025-03-10\n---\n\n" + CHIPS,
}


def _docs(paths: list[Path]) -> dict[str, str]:
    return {d.doc_id: d.text for d in load_corpus(paths).documents}


def _indexed(tmp: Path, files: dict[str, str], settings: Settings, embedder: Any) -> tuple[Retriever, dict]:
    """An index of these article files (name -> text) under ``tmp``, opened, and the documents' texts."""
    folder = tmp / "corpus"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    build_index(settings, [folder], tmp / "index", progress=False, embedder=embedder)
    return Retriever.open(settings, tmp / "index"), _docs([folder])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, settings: Settings, embedder: Any) -> tuple[Retriever, dict]:
    return _indexed(tmp_path_factory.mktemp("answers"), SMALL, settings, embedder)


@pytest.fixture(scope="module")
def seed_docs() -> dict[str, str]:
    return _docs([ROOT / "corpus"])


def assert_grounded(a: Answer, docs: dict[str, str], max_quotes: int = 3) -> None:
    """Every citation quotes its document exactly and every marker has a citation."""
    assert not a.abstained
    assert 1 <= len(a.citations) <= max_quotes
    for c in a.citations:
        assert docs[c.doc_id][c.start : c.end] == c.quote
        assert c.quote and c.quote in c.passage
        assert docs[c.doc_id][c.passage_start : c.passage_start + len(c.passage)] == c.passage
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", a.answer)}
    assert markers == {c.n for c in a.citations}
    assert [c.n for c in a.citations] == list(range(1, len(a.citations) + 1))


def test_korean_answer_quotes_source_sentences(small: tuple[Retriever, dict]) -> None:
    retriever, docs = small
    a = answer(retriever, "부산 폭우로 통제된 터널은 몇 곳인가?")
    assert_grounded(a, docs)
    assert a.lang == "ko" and a.mode == "extractive"
    assert "터널 세 곳이 통제됐다" in a.answer
    first = a.citations[0]
    assert first.doc_id == "rain" and first.outlet == "테스트일보" and first.title.startswith("부산 폭우")
    # a sentence is cited, not the whole passage
    assert len(first.quote) < len(first.passage)
    assert a.sentences and all(s.supported and s.citations for s in a.sentences)


def test_english_answer_and_json_contract(small: tuple[Retriever, dict]) -> None:
    retriever, docs = small
    a = answer(retriever, "How much did semiconductor exports rise in February?")
    assert_grounded(a, docs)
    assert "21 percent" in a.answer and a.lang == "en"
    j = json.loads(json.dumps(a.to_json(), ensure_ascii=False))
    assert {"id", "question", "lang", "answer", "abstained", "citations", "sentences"} <= set(j)
    assert {"n", "doc_id", "chunk_id", "title", "url", "quote", "start", "end"} <= set(j["citations"][0])
    assert set(j["sentences"][0]) == {"text", "citations", "supported"}


def test_lead_first_then_support_in_source_order_and_markers_follow_sentences(
    small: tuple[Retriever, dict],
) -> None:
    retriever, _ = small
    a = answer(retriever, "부산 폭우 피해와 기상청 전망은?")
    starts = [(c.doc_id, c.start) for c in a.citations[1:]]  # the lead is first, its support follows
    assert starts == sorted(starts)
    for c in a.citations:  # each quote is immediately followed by its marker
        assert f"{c.quote} [{c.n}]" in a.answer


def test_english_question_over_korean_source_quotes_korean(small: tuple[Retriever, dict]) -> None:
    retriever, docs = small
    a = answer(retriever, "How many tunnels were closed in Busan because of the heavy rain?")
    assert_grounded(a, docs)
    assert a.lang == "en"
    facts, note = a.answer.splitlines()[:2]
    assert facts == "In the Korean source: 3 [1]"  # "세 곳", language-independent and first
    assert note == SOURCE_LANG_NOTE[("en", "ko")]
    assert a.extra["short"]["text"] == "세 곳"
    for c in a.citations:  # quoted as written, in Korean: no invented translation
        assert re.search("[가-힣]", c.quote)
        assert c.quote in a.answer


@pytest.mark.parametrize(
    ("question", "lang"),
    [("오늘 저녁 메뉴로 김치찌개 끓이는 법 알려줘", "ko"), ("Who won the Super Bowl last year?", "en")],
)
def test_abstains_in_the_question_language(small: tuple[Retriever, dict], question: str, lang: str) -> None:
    retriever, _ = small
    a = answer(retriever, question)
    assert a.abstained and a.citations == () and a.answer == ABSTAIN[lang] and a.lang == lang


def test_min_answer_score_makes_abstention_stricter(small: tuple[Retriever, dict], settings: Settings) -> None:
    retriever, _ = small
    question = "부산 폭우로 통제된 터널은 몇 곳인가?"
    plain = answer(retriever, question, settings=settings)
    cos = plain.extra["scores"]["cos"]
    assert not plain.abstained and 0 < cos < 0.99
    assert not answer(retriever, question, settings=replace(settings, min_answer_score=cos - 0.01)).abstained
    strict = answer(retriever, question, settings=replace(settings, min_answer_score=cos + 0.01))
    assert strict.abstained and strict.answer == ABSTAIN["ko"] and "RAG_MIN_ANSWER_SCORE" in strict.extra["reason"]


def test_filters_that_exclude_everything_abstain(small: tuple[Retriever, dict]) -> None:
    retriever, _ = small
    a = answer(retriever, "부산 폭우로 통제된 터널은?", filters=Filters(outlet="없는 매체"))
    assert a.abstained and not a.citations


def test_metadata_question_cites_the_header(small: tuple[Retriever, dict]) -> None:
    retriever, docs = small
    a = answer(retriever, "Which outlet published the article about chip exports?")
    assert_grounded(a, docs)
    assert "Test Herald" in a.answer and a.citations[0].doc_id == "chips"


def test_stream_yields_deltas_then_one_answer(small: tuple[Retriever, dict]) -> None:
    retriever, _ = small
    events = list(stream_answer(retriever, "부산 폭우 피해와 기상청 전망은?"))
    assert [e["type"] for e in events[:-1]] == ["delta"] * (len(events) - 1)
    assert events[-1]["type"] == "answer" and len(events) >= 2
    final: Answer = events[-1]["answer"]
    assert "".join(e["text"] for e in events[:-1]) == final.answer


def test_empty_question_abstains(small: tuple[Retriever, dict]) -> None:
    retriever, _ = small
    a = answer(retriever, "   ")
    assert a.abstained and not a.citations


# ------------------------------------------------------------------ seed article


def _seed() -> list[dict[str, Any]]:
    if not SEED_QUESTIONS.is_file():
        return []
    return [json.loads(line) for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.skipif(not SEED_QUESTIONS.is_file(), reason="../shared/eval is not present")
@pytest.mark.parametrize("q", _seed(), ids=lambda q: q["id"])
def test_seed_questions(seed_retriever: Retriever, seed_docs: dict[str, str], q: dict[str, Any]) -> None:
    a = answer(seed_retriever, q["question"])
    if not q["answerable"]:
        assert a.abstained and not a.citations, a.answer
        return
    assert_grounded(a, seed_docs)
    assert any(g in a.answer for g in q["answer_any"]), a.answer


def test_overlapping_passages_are_not_quoted_twice(seed_retriever: Retriever) -> None:
    for question in ("KT 컨소시엄에 참여한 기관은?", "모티프테크놀로지스는 언제 출범했나?"):
        a = answer(seed_retriever, question)
        spans = sorted((c.start, c.end) for c in a.citations)
        assert all(e1 <= s2 for (_, e1), (s2, _) in itertools.pairwise(spans)), spans


def test_offtopic_set_abstains(seed_retriever: Retriever, settings: Settings) -> None:
    rows = [json.loads(x) for x in (ROOT / "eval" / "offtopic.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 60 and {r["lang"] for r in rows} == {"ko", "en"}
    result = evaluate_answers(seed_retriever, rows, settings)
    assert result["unanswerable"]["abstain_rate"] >= 0.9, result["wrong"]


HEAT = (
    "---\ntitle: 폭염 대책\noutlet: 테스트일보\npublished: 2025-08-01\n---\n\n"
    "올여름 폭염으로 야외 노동자의 온열질환이 지난해보다 두 배로 늘었다고 서울시가 밝혔다. "
    "이 문제를 해결하기 위해 시는 이동식 무더위 쉼터 버스를 도입하였다. "
    "쉼터 버스는 공사 현장을 돌며 냉방과 식수를 제공한다.\n\n"
    "한편 기상청은 다음 주에도 낮 최고기온이 35도를 넘을 것으로 내다봤다.\n"
)


def test_the_sentence_after_a_lead_that_restates_the_question_is_quoted(
    tmp_path: Path, settings: Settings, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best sentence restates the question; the next one holds the asked word ("도입") and the answer."""
    from rag.answer import evidence

    retriever, docs = _indexed(tmp_path, {"heat.md": HEAT}, settings, embedder)
    question = "야외 노동자의 온열질환이 두 배로 늘자 서울시가 도입한 것은?"
    a = answer(retriever, question, settings=settings)
    assert not a.abstained and "무더위 쉼터 버스" in a.answer
    assert a.citations[0].quote.startswith("올여름 폭염으로")  # the lead stays first
    assert_grounded(a, docs)
    monkeypatch.setattr(evidence, "NEIGHBOUR_ADDS", 0.0)  # without the rule the answer stops at the lead
    assert "무더위 쉼터 버스" not in answer(retriever, question, settings=settings).answer


def _source(title: str, chunk_id: str, index: int, text: str, score: float, lex: float) -> Any:
    from rag.answer.evidence import Source
    from rag.records import Chunk, Hit

    doc = chunk_id.split("#")[0]
    hit = Hit(rank=1, score=0.5, chunk=Chunk(chunk_id, doc, text, 0, len(text), "ko"), title=title)
    return Source(hit, index, 0, len(text), 0, len(text), text, "ko", lex=lex, score=score)


def test_a_support_need_not_repeat_the_subject_in_its_own_article() -> None:
    """A sentence that does not name the asked subject supports the lead when it is in the lead's
    passage or in an article whose title names the subject; not when it is about someone else."""
    from rag.answer.evidence import Evidence

    lead = _source("코난테크놀로지", "konan-1#0000", 0, "코난테크놀로지는 컨소시엄을 꾸렸다.", 2.0, 0.6)
    same_passage = _source("코난테크놀로지", "konan-1#0000", 3, "두 번째 모델은 내년에 나온다.", 1.9, 0.5)
    titled = _source("코난테크놀로지 연혁", "konan-2#0000", 0, "이 회사는 1999년에 세워졌다.", 1.9, 0.5)
    other = _source("카카오의 전략", "kakao-1#0000", 0, "이 회사는 모델 라인업을 공개했다.", 1.95, 0.5)
    ev = Evidence("코난테크놀로지의 계획은?", "코난테크놀로지의 계획은?", "ko", [], [lead, same_passage, titled, other],
                  abstain=False, subject="코난테크놀로지")
    chosen = ev.select(4)
    assert chosen[0] is lead and same_passage in chosen and titled in chosen and other not in chosen


def test_a_korean_compound_counts_as_written() -> None:
    """Kiwi cuts "타이틀곡은" as one word and "타이틀곡인" as two; the sentence after the lead that holds
    the asked word as written still completes the answer."""
    from rag.answer.evidence import Evidence, word_shares

    text = "그리하여 1990년 윤상은 첫 정규 앨범《1집》을 발매했고 성공적으로 데뷔했다."
    lead = _source("윤상", "yoon-1#0000", 2, text, 1.6, 0.9)
    after = _source("윤상", "yoon-1#0000", 3, "타이틀곡인 〈이별의 그늘〉이 큰 인기를 얻었다.", 1.0, 0.0)
    question = "1990년 발매된 윤상의 첫 정규앨범 1집의 타이틀곡은?"
    ev = Evidence(question, question, "ko", [], [lead, after], abstain=False, subject="윤상")
    word_shares(ev)
    assert after.lex > 0  # "타이틀곡" found as written
    assert [s.text for s in ev.select(3)] == [lead.text, after.text]


def test_a_close_sentence_holding_the_asked_words_leads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The best sentence names the subject but none of the asked words ("행정권"); a sentence of the same
    article a little below holds them and leads. One of another article that does not name the subject
    does not."""
    from rag.answer import evidence
    from rag.answer.evidence import Evidence

    text = "초기 오스트레일리아 식민지 주민들은 정부를 개혁하려 했다."
    best = _source("오스트레일리아", "au-1#0000", 4, text, 1.49, 0.5)
    asked = _source("오스트레일리아", "au-1#0000", 1, "그 때 당시의 행정권은 총독에 있었다.", 1.33, 0.5)
    question = "오스트레일리아의 행정권은 누구에게 있었는가?"

    def lead(*sources: Any) -> str:
        ev = Evidence(question, question, "ko", [], list(sources), abstain=False, subject="오스트레일리아")
        evidence.word_shares(ev)  # the sentences' ``ask``; their scores stay as given
        return ev.select(1)[0].text

    assert lead(best, asked) == asked.text
    elsewhere = _source("뉴질랜드", "nz-1#0000", 1, "그 때 당시의 행정권은 총독에 있었다.", 1.33, 0.5)
    assert lead(best, elsewhere) == best.text
    monkeypatch.setattr(evidence, "ASK_MARGIN", 0.0)
    assert lead(best, asked) == best.text

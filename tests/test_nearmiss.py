"""Answers that answer: the lead sentence first, the short span, near misses refused, follow-ups.

Pure rules are tested on strings; the behaviour a user sees is tested on the
shipped article with the real model and index (the issue's own questions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.answer.compose import answer
from rag.answer.followup import resolve
from rag.answer.nearmiss import gap
from rag.answer.shortspan import in_english, short_span
from rag.answer.support import answer_type
from rag.records import Turn
from rag.serve.chat_html import render_answer

ROOT = Path(__file__).resolve().parent.parent
FIRST_STAGE = "이르면 8월 초 5개팀과 협약을 체결하고, 12월 말에 1차 단계 평가를 추진해 5개팀에서 4개팀으로 줄어든다."


def _doc() -> str:
    from rag.ingest.corpus import load_corpus

    return load_corpus([ROOT / "corpus"]).documents[0].text


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("KT 컨소시엄에는 몇 개 기관이 참여했나요?", "number"),
        ("모레는 투자를 얼마나 유치했어?", "money"),
        ("How much did Naver Cloud invest in its model?", "money"),
        ("카카오가 탈락한 이유로 거론된 것은 무엇인가요?", "reason"),
        ("When will the first-stage evaluation take place?", "time"),
        ("LG AI연구원이 공개한 모델의 이름은?", "name"),
        # the noun a question closes on names the kind of answer (KorQuAD asks this way)
        ("임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?", "time"),
        ("K-AI 파운데이션 모델 공모 마감일은?", "time"),
        ("몇 천명의 학생들이 민주화를 요구하는 시위를 벌인 곳은?", "name"),
        ("부산 폭우로 통제된 터널은 몇 곳인가?", "number"),  # "곳" counts here
        ("누리랩스는 어떤 회사인가?", ""),  # a kind, not a name
        ("문제를 제기하는 사람들이 고소된 것은 비합리적이라고 지적한 교수는?", "name"),
        ("한나라당이 불법선거자금을 모금한 액수는?", "money"),
        # "when" as a conjunction asks for no time
        ("According to the passage, what happens when a nucleus is split?", ""),
        ("When did Peter Lenz die?", "time"),
        # measures ask for a number, so the measure is then checked ("how old" -> years)
        ("How old was George W. Bush when he arrived in Singapore?", "number"),
        ("What wind speed did hurricane Felicia reach?", "number"),
    ],
)
def test_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_counters_and_measures_decide_whether_a_number_answers() -> None:
    from rag.answer.nearmiss import counted, measured

    assert counted("몇 명의 법률가가 시국선언을 발표했는가?", "변호사 등 법률가 342명은 시국선언을 발표했다.")
    assert counted("경찰관 몇 명이 사망했나?", "이 사건으로 경찰관 5명이 죽었으며")  # "사망" is not what is counted
    assert counted("세자로 책봉된 아들은 태조의 몇 번째 아들이었는가?", "여덟째 아들 방석을 세자로 책봉하였다")
    assert not counted("KT 컨소시엄에는 몇 개 기관이 참여했나요?", "5개 팀이 선정됐다")
    assert measured("How many people died in the earthquake?", "The quake killed 60,000 people.")
    assert not measured("How many people died in the earthquake?", "The city was destroyed in 1755.")
    assert not measured("How old was Bush when he arrived?", "Bush arrived in Singapore in 2008.")
    assert measured("허리케인 펠리시아의 최대 풍속은 얼마였나?", "최대 풍속은 시속 190킬로미터였다")


def test_asked_attributes_are_checked_in_both_languages() -> None:
    from rag.answer.nearmiss import asked_attribute_missing

    lead = "KT는 컨소시엄을 솔트룩스 등 18개 기관으로 구성했었다."
    assert asked_attribute_missing("How many employees does KT have?", lead)
    assert asked_attribute_missing("KT의 직원 수는 몇 명인가?", lead)
    assert not asked_attribute_missing("How many institutions joined KT's consortium?", lead)
    assert not asked_attribute_missing("When did Moreh raise its Series B?", "모레는 300억원 투자 유치에 성공했다.")
    # "lead to" and "established friendly relations" ask for no leader and no founding
    assert not asked_attribute_missing("What could lead to an additional charge?", "A surcharge applies at night.")
    assert not asked_attribute_missing("Who established friendly relations with invaders?", "The king welcomed them.")
    # a model's name: the lead must name a model ("foundation model project" asks for none)
    lg = "KAIST는 LG AI연구원 컨소시엄을 제외했다."
    assert asked_attribute_missing("What is the name of LG AI Research's model?", lg)
    assert not asked_attribute_missing("Which model does KT have?", "보유한 대표 LLM은 ‘믿:음 2.0’이다.")
    assert asked_attribute_missing("Which model does KT have?", "KT 역시 유력한 후보로 꼽혔으나 탈락했다.")
    assert not asked_attribute_missing("Who left the K-AI foundation model project?", "카카오 등은 고배를 마셨다.")


def test_subjects_are_names_written_as_words() -> None:
    from rag.answer.nearmiss import _present, subject_names

    assert not _present("KT", "최종 선발된 5개 컨소시엄은 ▲SKT ▲NC AI 등이다.")
    assert _present("Hurricane Felicia", "Felicia, once a Category 4 storm, weakened.")
    assert _present("Iraqi", "the prison in Iraq")
    assert subject_names("Following the explosion, who was treated for serious injuries?", cross=False) == []
    assert subject_names("지상파 3사중 유일하게 SBS만 단독중계를 하게 된 이유는?", cross=False) == ["SBS"]


def test_latin_names_are_heard_in_hangul_words() -> None:
    from rag.answer.soundalike import found

    for name, text in (
        ("Naver Cloud", "▲네이버클라우드 ▲업스테이지"),
        ("Upstage", "▲업스테이지 ▲SKT"),
        ("Mathpresso", "▲매스프레소 ▲투모로 로보틱스"),
        ("Kakao", "카카오는 상세 컨소시엄을 공개하지 않았지만"),
        ("Hurricane Felicia", "허리케인 펠리시아는 약해졌다"),
        ("Singapore", "싱가포르에 도착했다"),
    ):
        assert found(name, text), name
    assert not found("Naver", "엔비디아가 아닌 AMD GPU 기반 인프라로")  # two sounds must be the whole word
    assert not found("Upstage", "모회사인 모레는 300억원 규모 투자 유치에 성공했다")
    assert not found("Naver Cloud", "클라우드 기반 서비스를 제공한다")  # "Cloud" alone is not the name


def test_a_subject_named_in_another_passage_marks_the_lead_as_off_subject() -> None:
    moreh = "모회사인 모레는 지난 2023년 300억원 규모 시리즈B 투자 유치에 성공한 바 있다."
    winners = "최종 선발된 5개 컨소시엄은 ▲네이버클라우드 ▲업스테이지 ▲SKT ▲NC AI ▲LG AI연구원 등이다."
    g = gap("How much did Naver Cloud invest in its model?", moreh, 0.74, [moreh, winners], True, lead_passage=moreh)
    assert g is not None and g.kind == "fact" and g.subject == "Naver Cloud"
    # named nowhere by sound: nothing is decided by the subject (transliterations vary too much)
    assert gap("How much did Moreh invest?", moreh, 0.74, [moreh], True, lead_passage=moreh) is None
    motif = "모티프테크놀로지스는 엔비디아가 아닌 AMD GPU 기반 인프라로 AI 모델을 구축한다."
    q = "NC AI는 어떤 GPU를 사용하나?"
    g = gap(q, motif, 0.85, [motif, winners], False, lead_passage=motif, same_doc=[winners])
    assert g is not None and g.subject == "NC AI"  # "AI" names no one: "NC" is the subject
    assert gap("모티프테크놀로지스는 어떤 GPU를 쓰나?", motif, 0.85, [motif], False, lead_passage=motif) is None


def test_english_counted_nouns_need_a_korean_counter() -> None:
    from rag.answer.nearmiss import counted_across

    assert not counted_across("How many teams applied from Naver?", "최종 선발된 5개 컨소시엄은 네이버클라우드 등이다.")
    assert counted_across("How many teams applied?", "접수한 15개팀 중 1차 서면 평가를 진행했다.")
    assert counted_across("How many institutions joined KT's consortium?", "18개 기관으로 구성했었다.")
    assert not counted_across("How many employees does Moreh have?", "1020억 파라미터 LLM을 개발한 핵심 인력")
    assert counted_across("How many people died?", "The quake killed 60,000 people.")  # English text: not checked


def test_short_span_picks_the_date_near_the_asked_words() -> None:
    for q in (
        "When will the first-stage evaluation that cuts five teams to four take place?",
        "1차 단계 평가는 언제야?",
    ):
        s = short_span(q, FIRST_STAGE)
        assert s is not None and s.text == "12월 말" == FIRST_STAGE[s.start : s.end]
    s = short_span("협약은 언제 체결하나?", FIRST_STAGE)
    assert s is not None and s.text == "8월 초"


def test_short_span_number_with_counter_and_none_without_one() -> None:
    sentence = "KT는 컨소시엄을 솔트룩스 등 18개 기관으로 구성했었다."
    s = short_span("KT 컨소시엄에는 몇 개 기관이 참여했나요?", sentence)
    assert s is not None and s.text == "18개" and sentence[s.start : s.end] == "18개"
    assert short_span("KT 컨소시엄에는 몇 개 기관이 참여했나요?", "KT는 솔트룩스와 함께했다.") is None


def test_english_renderings_of_korean_dates_and_amounts() -> None:
    assert in_english("12월 말") == "late December"
    assert in_english("300억원") == "30 billion won"
    assert in_english("18개") == "18"
    assert in_english("AMD") == "AMD"


def test_gap_subject_absent_and_fact_missing() -> None:
    doc = _doc()
    g = gap(
        "삼성SDS는 어떤 컨소시엄에 참여했나?",
        "컨소시엄 구성에 참여한 기업들 역시 열심히 준비했다.",
        0.85,
        [doc],
        cross=False,
    )
    assert g is not None and g.kind == "subject"
    g = gap(
        "KT 컨소시엄에는 몇 개 기관이 참여했나요?", "KT 역시 유력한 후보로 꼽혔으나 탈락했다.", 0.85, [doc], cross=False
    )
    assert g is not None and g.kind == "fact" and g.subject == "KT"
    lead = "KT는 컨소시엄을 솔트룩스 등 18개 기관으로 구성했었다."
    assert gap("KT 컨소시엄에는 몇 개 기관이 참여했나요?", lead, 0.85, [doc], cross=False) is None


def test_followup_keeps_the_users_subject_not_the_answers_partners() -> None:
    history = [
        Turn("user", "코난테크놀로지는 어떤 컨소시엄을 구성했나?"),
        Turn(
            "assistant", "코난테크놀로지는 ▲사이냅소프트 ▲알체라 ▲페블러스 등 총 8개 기관으로 컨소시엄을 구성했다. [1]"
        ),
    ]
    assert resolve("그 회사의 향후 계획은?", history) == "코난테크놀로지 회사의 향후 계획은?"
    history = [
        Turn("user", "K-AI 사업에서 탈락한 기업 중 올해 2월 출범한 곳은 어디야?"),
        Turn("assistant", "올해 2월 출범한 모티프테크놀로지스는 기술력으로 새롭게 주목받았다. [1]"),
    ]
    assert resolve("그 회사의 모회사는 어디야?", history).startswith("모티프테크놀로지스")


# ------------------------------------------------------------------ on the shipped article


@pytest.fixture(scope="module")
def doc() -> str:
    return _doc()


@pytest.mark.slow
def test_issue_questions_lead_with_the_answer(seed_retriever: Any, doc: str) -> None:
    a = answer(seed_retriever, "카카오가 탈락한 이유로 거론된 것은 무엇인가요?")
    assert not a.abstained and "생태계 구축 전략 부재" in a.citations[0].quote
    a = answer(seed_retriever, "KT 컨소시엄에는 몇 개 기관이 참여했나요?")
    assert "18개 기관" in a.citations[0].quote and len(a.citations) == 1
    assert a.extra["short"]["text"] == "18개"
    s = a.to_json()["short"]
    assert doc[s["start"] : s["end"]] == s["text"]
    html = render_answer(a, 0, "ko")
    assert "<strong>18개</strong>" in html


@pytest.mark.slow
def test_english_over_korean_puts_the_facts_first(seed_retriever: Any) -> None:
    a = answer(seed_retriever, "When will the first-stage evaluation that cuts five teams to four take place?")
    assert not a.abstained
    assert a.answer.startswith("In the Korean source: late December [1]")
    assert "The source is in Korean" in a.answer and "12월 말" in a.citations[0].quote
    a = answer(seed_retriever, "What GPU vendor does Motif Technologies build on?")
    assert "AMD" in a.answer.splitlines()[0] and "AMD" in a.citations[0].quote and len(a.citations) == 1


@pytest.mark.slow
def test_near_misses_are_refused_or_qualified(seed_retriever: Any) -> None:
    a = answer(seed_retriever, "삼성SDS는 어떤 컨소시엄에 참여했나?")
    assert a.abstained and not a.citations
    for q in (
        "업스테이지의 대표 모델 이름은 무엇인가?",
        "KT가 이번 사업에 투자한 금액은 얼마인가?",
        "솔트룩스의 루시아3는 파라미터가 몇 개인가?",  # a number about another company is no answer
        "How many employees does KT have?",  # across languages: the asked attribute is not stated
        "How much did Naver Cloud invest in its model?",  # Moreh's 300억원 is about another company
        "NC AI는 어떤 GPU를 사용하나?",  # Motif's AMD GPU
    ):
        a = answer(seed_retriever, q)
        assert a.abstained or a.to_json()["qualified"] is True, q


@pytest.mark.slow
def test_answerable_questions_near_the_near_misses_stay_answered(seed_retriever: Any) -> None:
    for q, gold in (
        ("모티프테크놀로지스는 언제 출범했나?", "2월"),
        ("모레는 투자를 얼마나 유치했어?", "300억원"),
        ("모티프 2.6B의 파라미터는 몇 개인가?", "26억개"),
        ("How many institutions joined KT's consortium?", "18개 기관"),
    ):
        a = answer(seed_retriever, q)
        assert not a.abstained and not a.to_json()["qualified"] and gold in a.citations[0].quote, q


@pytest.mark.slow
def test_understood_as_is_shown_for_a_rewritten_followup(seed_retriever: Any) -> None:
    first = answer(seed_retriever, "코난테크놀로지는 어떤 컨소시엄을 구성했나?")
    history = [Turn("user", first.question), Turn("assistant", first.answer)]
    a = answer(seed_retriever, "그 회사의 향후 계획은?", history)
    assert a.resolved_question == "코난테크놀로지 회사의 향후 계획은?"
    assert a.to_json()["understood_as"] == "이렇게 이해했습니다: 코난테크놀로지 회사의 향후 계획은?"
    assert "이렇게 이해했습니다: 코난테크놀로지 회사의 향후 계획은?" in render_answer(a, 1, "ko")
    assert "사이냅소프트" not in a.citations[0].quote
    assert answer(seed_retriever, "코난테크놀로지는 어떤 컨소시엄을 구성했나?").to_json()["understood_as"] == ""


def test_chat_page_bolds_the_short_span_and_shows_the_resolved_question() -> None:
    from rag.records import Answer, Citation, Sentence

    quote = "KT는 <b>18개 기관</b>으로 구성했었다."
    c = Citation(n=1, doc_id="d", chunk_id="d#0", title="t", url="", quote=quote, start=100, end=100 + len(quote))
    i = quote.index("18개")
    a = Answer(
        question="그 회사는 몇 개 기관과 함께했어?",
        lang="ko",
        answer=f"{quote} [1]",
        abstained=False,
        citations=(c,),
        sentences=(Sentence(f"{quote} [1]", (1,), True),),
        resolved_question="KT 회사는 몇 개 기관과 함께했어?",
        extra={"short": {"text": "18개", "start": 100 + i, "end": 100 + i + 3}},
    )
    html = render_answer(a, 0, "ko")
    assert "<strong>18개</strong>" in html and "&lt;b&gt;" in html and "<b>" not in html  # escaped around it
    assert "이렇게 이해했습니다: KT 회사는 몇 개 기관과 함께했어?" in html
    assert "Understood as: KT 회사는" in render_answer(a, 0, "en")
    wrong = Answer(**{**a.__dict__, "extra": {"short": {"text": "19개", "start": 100 + i, "end": 100 + i + 3}}})
    assert "<strong>" not in render_answer(wrong, 0, "ko")  # never bold text that is not the source's

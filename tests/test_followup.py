"""Follow-up resolution: rules on their own, then the dialogue set with real retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.answer.answer_eval import evaluate_dialogues
from rag.answer.compose import answer
from rag.answer.followup import names, resolve
from rag.config import Settings
from rag.records import Turn
from rag.search.retrieve import Retriever

ROOT = Path(__file__).resolve().parent.parent


def _h(*pairs: str) -> list[Turn]:
    turns = []
    for i, text in enumerate(pairs):
        turns.append(Turn("user" if i % 2 == 0 else "assistant", text))
    return turns


def test_no_history_leaves_question_alone() -> None:
    assert resolve("KT 컨소시엄에 참여한 공공기관은?") == "KT 컨소시엄에 참여한 공공기관은?"
    assert resolve("  What about KT?  ", []) == "What about KT?"


def test_korean_anaphor_takes_the_name_from_the_previous_answer() -> None:
    history = _h(
        "올해 2월 출범한 곳은 어디야?",
        "올해 2월 출범한 모티프테크놀로지스는 기술력으로 새롭게 주목받았다. [1]",
    )
    out = resolve("그 회사의 모회사는 어디야?", history)
    assert "모티프테크놀로지스" in out and "모회사" in out and "그 회사" not in out


def test_korean_anaphor_keeps_the_subject_of_the_previous_question() -> None:
    history = _h("KT의 대표 LLM은 뭐야?", "보유한 대표 LLM은 ‘믿:음 2.0’이다. [1]")
    out = resolve("그 모델의 특징은?", history)
    assert "KT" in out and "믿:음 2.0" in out and "특징" in out


def test_english_what_about_replaces_the_name() -> None:
    history = _h("Which police agency joined KT's consortium?", "경찰청 [1]")
    assert (
        resolve("What about Konan Technology?", history) == "Which police agency joined Konan Technology's consortium?"
    )


def test_korean_ellipsis_replaces_the_name_or_topic() -> None:
    assert resolve("KT는?", _h("카카오의 자체 개발 LLM 이름은 뭐야?", "")) == "KT의 자체 개발 LLM 이름은 뭐야?"
    assert resolve("탈락한 곳은?", _h("최종 선발된 컨소시엄은 어디야?", "")) == "탈락한 곳은 어디야?"


def test_english_pronouns() -> None:
    history = _h("What does Kakao plan to release in the second half?", "...")
    assert resolve("Are its models open source?", history) == "Are Kakao's models open source?"


def test_earlier_followups_are_resolved_in_order() -> None:
    history = _h("카카오의 자체 개발 LLM 이름은 뭐야?", "‘카나나’ [1]", "KT는?", "‘믿:음 2.0’ [1]")
    assert "KT" in resolve("그 모델의 특징은?", history)


def test_standalone_question_is_not_rewritten() -> None:
    history = _h("카카오는 왜 탈락했어?", "...")
    q = "코난테크놀로지 컨소시엄에 참여한 대학은 어디야?"
    assert resolve(q, history) == q


def test_names() -> None:
    assert names("Which police agency joined KT's consortium?") == ["KT"]
    assert "믿:음 2.0" in names("보유한 대표 LLM은 ‘믿:음 2.0’이다.")
    assert "LLM" not in names("What LLM does KT have?")


def test_history_changes_retrieval_and_is_reported(seed_retriever: Retriever) -> None:
    history = [
        Turn("user", "KT의 대표 LLM은 뭐야?"),
        Turn("assistant", "보유한 대표 LLM은 ‘믿:음 2.0’이다. [1]"),
    ]
    a = answer(seed_retriever, "그 모델의 특징은?", history)
    assert a.resolved_question != a.question and "KT" in a.resolved_question
    assert not a.abstained and "믿:음 2.0" in a.citations[0].quote  # the lead is about the model meant
    assert any("저작권" in c.passage for c in a.citations)  # ... from the passage that states its feature


def test_dialogue_set_followups_retrieve_evidence(seed_retriever: Retriever, settings: Settings) -> None:
    rows = [json.loads(x) for x in (ROOT / "eval" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 20 and {r["lang"] for r in rows} == {"ko", "en"}
    assert all(2 <= len(r["turns"]) <= 3 for r in rows)
    result = evaluate_dialogues(seed_retriever, rows, settings, k=3)
    assert result["followups"]["hit@3"] >= 0.9, result["misses"]


@pytest.mark.parametrize("role", ["system", "tool", ""])
def test_unknown_roles_are_ignored(role: str) -> None:
    assert resolve("What about KT?", [Turn(role, "hello")]) == "What about KT?"


@pytest.mark.parametrize("follow", ["그거 뭐야?", "그 회사는?", "What about it?", "And its owner?", "What is that?"])
def test_backslashes_in_earlier_turns_are_text_not_regex_templates(follow: str) -> None:
    history = _h(r"C:\new\q 는 뭐야?", r"경로 C:\new\q 에 대한 답 \1 \g<0> [1]")
    out = resolve(follow, history)  # raised "bad escape \q" before
    assert isinstance(out, str) and out
    out = resolve(follow, _h(r"What is C:\new\q?", r"The path C:\new\q \g<1> [1]"))
    assert isinstance(out, str) and out

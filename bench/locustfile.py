"""Locust users for bench/load.py: each asks /api/ask unique questions about the seed article."""

from __future__ import annotations

import itertools

from locust import HttpUser, between, task

QUESTIONS = [
    "KT 컨소시엄에 참여한 공공기관은?", "Which police agency joined KT's consortium?",
    "독자 AI 파운데이션 모델 사업의 최종 팀은 몇 개야?", "What is the name of Kakao's LLM?",
    "모티프테크놀로지스는 언제 출범했어?", "Who announced the final teams?",
]
_counter = itertools.count()


class Asker(HttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def ask(self) -> None:
        n = next(_counter)
        question = f"{QUESTIONS[n % len(QUESTIONS)]} ({n})"  # unique: no cache helps
        with self.client.post("/api/ask", json={"question": question}, name="/api/ask", catch_response=True) as r:
            if r.status_code != 200 or "answer" not in r.json():
                r.failure(f"{r.status_code}: {r.text[:200]}")

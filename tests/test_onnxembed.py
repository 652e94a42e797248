"""The ONNX export that embeds questions: same vectors as sentence-transformers, no torch.

Real model and real ONNX Runtime. The export is made once per session into a
tmp cache folder (the bundled model is linked in), the way ``rag index`` makes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.model.e5convert import bundled_model_dir
from rag.model.embed import Embedder, model_checksum
from rag.model.encoder import load_query_embedder, prepare_query_embedder
from rag.model.onnxembed import MODEL, WEIGHTS, OnnxEmbedder, folder_for, read_meta
from rag.search.retrieve import Retriever
from rag.store.indexfiles import load_index

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [t for t in (ROOT / "tests" / "data" / "fidelity_texts.txt").read_text(encoding="utf-8").split("\n") if t]
QUESTIONS = [
    "KT 컨소시엄에 참여한 공공기관은?",
    "Which teams were eliminated from the national AI foundation model project?",
    "네이버클라우드는 왜 탈락했나?",
    "What did the ministry say about the second evaluation?",
    "오늘 점심 메뉴 추천해줘",
]


def _cache_with_model(model_cache: str, folder: Path) -> Path:
    """A fresh cache folder that holds (a link to) the converted bundled model."""
    real = bundled_model_dir(model_cache)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / real.name).symlink_to(real, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def onnx_cache(model_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = _cache_with_model(model_cache, tmp_path_factory.mktemp("onnx") / "cache")
    messages: list[str] = []
    meta = prepare_query_embedder(Settings(cache_dir=str(cache)), messages.append)
    assert meta is not None and meta["ok"], (meta, messages)
    return cache


def test_export_embeds_like_sentence_transformers(onnx_cache: Path, embedder: Embedder) -> None:
    fast = load_query_embedder(Settings(cache_dir=str(onnx_cache)))
    assert isinstance(fast, OnnxEmbedder)
    assert (fast.model_id, fast.checksum, fast.dim) == (embedder.model_id, embedder.checksum, embedder.dim)
    assert len(TEXTS) >= 100
    for ref, got in ((embedder.encode_queries, fast.encode_queries), (embedder.encode_passages, fast.encode_passages)):
        cos = np.sum(ref(TEXTS) * got(TEXTS), axis=1)
        assert cos.min() >= 0.9999, (float(cos.min()), TEXTS[int(cos.argmin())])
    # one text at a time (no padding) gives the same vector as in a batch
    single = np.stack([fast.encode_queries([t])[0] for t in TEXTS[:10]])
    assert np.allclose(single, fast.encode_queries(TEXTS[:10]), atol=1e-5)
    # the same token ids as the model's own tokenizer, on Korean news text
    for text in TEXTS[:30]:
        prompted = embedder.query_prompt + embedder.prenormalize(text)
        want = embedder.model.tokenizer(prompted, truncation=True, max_length=embedder.max_tokens)["input_ids"]
        assert fast.tokenizer.encode(prompted).ids == want
    assert fast.count_tokens(TEXTS[0]) == embedder.count_tokens(TEXTS[0])
    folder = folder_for(onnx_cache, embedder.checksum)
    meta = read_meta(folder, embedder.checksum)
    assert meta is not None and meta["min_cosine"] >= 0.9999 and meta["probe_texts"] >= 50
    # readable by other users (a service account), like the rest of the cache
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in [folder, *folder.iterdir()])


def test_search_with_the_export_ranks_as_sentence_transformers(
    onnx_cache: Path, settings: Settings, seed_index: Path, embedder: Embedder
) -> None:
    fast = Retriever.open(replace(settings, cache_dir=str(onnx_cache)), seed_index)
    assert isinstance(fast.embedder, OnnxEmbedder)
    slow = Retriever(load_index(seed_index, settings), embedder, settings)
    for q in QUESTIONS:
        a, b = fast.search(q, k=5), slow.search(q, k=5)
        assert [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b], q
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_answering_process_never_imports_torch(onnx_cache: Path, seed_index: Path) -> None:
    code = (
        "import json, sys\n"
        "from rag.config import Settings\n"
        "from rag.search.retrieve import Retriever\n"
        "from rag.answer.compose import answer\n"
        "s = Settings.from_env()\n"
        "a = answer(Retriever.open(s), 'KT 컨소시엄에 참여한 공공기관은?', settings=s)\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'cited': len(a.citations), 'abstained': a.abstained}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CACHE_DIR=str(onnx_cache), RAG_INDEX_DIR=str(seed_index))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "cited": result["cited"], "abstained": False} and result["cited"] >= 1


def _copy_export(onnx_cache: Path, model_cache: str, dest: Path) -> tuple[Settings, Path]:
    cache = _cache_with_model(model_cache, dest)
    settings = Settings(cache_dir=str(cache))
    checksum = model_checksum(settings)
    shutil.copytree(folder_for(onnx_cache, checksum), folder_for(cache, checksum))
    return settings, folder_for(cache, checksum)


def test_truncated_export_is_ignored_and_rag_index_makes_it_again(
    onnx_cache: Path, model_cache: str, tmp_path: Path
) -> None:
    settings, folder = _copy_export(onnx_cache, model_cache, tmp_path / "cache")
    with open(folder / WEIGHTS, "r+b") as f:
        f.truncate(1000)
    assert isinstance(load_query_embedder(settings), Embedder)  # sentence-transformers, still searching
    logged: list[str] = []
    meta = prepare_query_embedder(settings, logged.append)
    assert meta is not None and meta["ok"] and logged
    assert isinstance(load_query_embedder(settings), OnnxEmbedder)


def test_unreadable_export_warns_with_its_folder_and_falls_back(
    onnx_cache: Path, model_cache: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, folder = _copy_export(onnx_cache, model_cache, tmp_path / "cache")
    size = (folder / MODEL).stat().st_size
    (folder / MODEL).write_bytes(b"\0garbage" * (size // 8) + b"\0" * (size % 8))  # same size, not a graph
    assert isinstance(load_query_embedder(settings), Embedder)
    err = capsys.readouterr().err
    assert str(folder) in err and "rag index" in err


def test_weights_damaged_in_place_are_caught_by_the_probe_vector(
    onnx_cache: Path, model_cache: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, folder = _copy_export(onnx_cache, model_cache, tmp_path / "cache")
    size = (folder / WEIGHTS).stat().st_size
    with open(folder / WEIGHTS, "r+b") as f:  # same size, so only the numbers can tell
        f.seek(size - 8_000_000)
        f.write(np.full(2_000_000, 0.5, dtype=np.float32).tobytes())
    assert isinstance(load_query_embedder(settings), Embedder)
    assert "checked vector" in capsys.readouterr().err


def test_export_that_failed_its_check_is_not_used(onnx_cache: Path, model_cache: str, tmp_path: Path) -> None:
    settings, folder = _copy_export(onnx_cache, model_cache, tmp_path / "cache")
    meta = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    (folder / "encoder.json").write_text(json.dumps({**meta, "ok": False}), encoding="utf-8")
    assert isinstance(load_query_embedder(settings), Embedder)
    assert prepare_query_embedder(settings, print) is None  # not retried at every `rag index`


def test_export_can_be_switched_off(onnx_cache: Path) -> None:
    settings = Settings(cache_dir=str(onnx_cache), onnx=False)
    assert isinstance(load_query_embedder(settings), Embedder)
    assert prepare_query_embedder(settings, print) is None


def test_export_gives_the_models_sentence_vectors(onnx_cache: Path, embedder: Embedder) -> None:
    """top.onnx: sentence vectors from the passage's pass (the last layers again, within each
    sentence, int8 weights) are sentence-transformers' on Korean and English news passages, within
    what int8 moves them; the passage vectors of that pass are exact."""
    from rag.model.pooled import encode_pooled
    from rag.text import split_sentences

    fast = load_query_embedder(Settings(cache_dir=str(onnx_cache)))
    texts = [t for t in TEXTS if len(split_sentences(t)) >= 2][:12]
    assert len(texts) >= 4
    spans = [split_sentences(t) for t in texts]
    p_ref, s_ref = encode_pooled(embedder, texts, spans)
    p_got, s_got = encode_pooled(fast, texts, spans)
    assert np.sum(p_ref * p_got, axis=1).min() >= 0.9999
    cos = np.concatenate([np.sum(a * b, axis=1) for a, b in zip(s_ref, s_got, strict=True)])
    assert len(cos) >= 8 and cos.min() >= 0.995, float(cos.min())
    assert cos.mean() >= 0.998, float(cos.mean())


def test_index_terms_go_through_the_int8_graph_and_stay_near_the_float_model(
    onnx_cache: Path, embedder: Embedder
) -> None:
    """terms.onnx embeds BM25 terms (index time) near sentence-transformers, and each term's nearest
    float vector among the others is its own: translations are looked up among nearest terms."""
    from rag.store.crosslex import embed_terms

    fast = load_query_embedder(Settings(cache_dir=str(onnx_cache)))
    words = ["소련", "신경", "대통령", "반도체", "올림픽", "soviet", "nerve", "president", "semiconductor",
             "olympics", "컨소시엄", "평가", "evaluation", "Upstage", "금리", "interest"]
    ref = embedder.encode_queries(words)
    got = embed_terms(fast, words, False)
    assert isinstance(fast, OnnxEmbedder) and fast.terms.available()
    cos = np.sum(ref * got, axis=1)
    assert cos.min() >= 0.97 and cos.mean() >= 0.99, cos
    assert list(np.argmax(got @ ref.T, axis=1)) == list(range(len(words)))
    assert np.allclose(embed_terms(fast, words, False, int8=False), ref, atol=1e-3)  # the table's way


def test_an_export_removes_the_same_models_older_formats(tmp_path: Path) -> None:
    from rag.model.onnxembed import _remove_older_formats

    onnx = tmp_path / "onnx"
    for name in ("abc-1", "abc-2", "abc-3", "other-2", "abc-x"):
        (onnx / name).mkdir(parents=True)
        (onnx / name / MODEL).write_bytes(b"0")
    _remove_older_formats(onnx / "abc-3")
    assert sorted(p.name for p in onnx.iterdir()) == ["abc-3", "abc-x", "other-2"]


def test_an_upgraded_install_answers_with_its_previous_export_until_rag_index(
    onnx_cache: Path, model_cache: str, tmp_path: Path
) -> None:
    """Formats 2 (no top layers) and 3 (no terms.onnx) still embed questions without torch; they
    are never used to index."""
    settings, folder = _copy_export(onnx_cache, model_cache, tmp_path / "cache")
    old = folder.with_name(folder.name.rsplit("-", 1)[0] + "-3")
    folder.rename(old)
    (old / "terms.onnx").unlink()
    meta = json.loads((old / "encoder.json").read_text(encoding="utf-8"))
    meta["format"] = "rag-onnx/3"
    del meta["files"]["terms.onnx"]
    (old / "encoder.json").write_text(json.dumps(meta), encoding="utf-8")
    got = load_query_embedder(settings)
    assert isinstance(got, OnnxEmbedder) and not got.can_index()
    assert float(got.encode_queries([QUESTIONS[0]])[0] @ load_query_embedder(
        Settings(cache_dir=str(onnx_cache))).encode_queries([QUESTIONS[0]])[0]) > 0.9999

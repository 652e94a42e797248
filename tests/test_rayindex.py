"""``rag index --engine ray`` on a real local Ray (2 CPUs): the index equals the local one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.store.indexfiles import load_index

CORPUS = Path(__file__).parent / "data" / "belebele12.jsonl"


@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_index_equals_local(tmp_path: Path, settings: Settings, embedder: Any, ray_local: Any) -> None:
    from rag.store.index import build_index
    from rag.store.rayindex import RayEmbedder

    rows = CORPUS.read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "six.jsonl"  # 4 Korean and 2 English articles
    corpus.write_text("\n".join(rows[:4] + rows[8:10]) + "\n", encoding="utf-8")
    settings = replace(settings, sentence_pooling=False)  # sentences encoded alone first; the default below
    local = build_index(settings, [corpus], tmp_path / "local", progress=False, embedder=embedder)
    remote = RayEmbedder(settings, embedder, workers=2)
    report = build_index(settings, [corpus], tmp_path / "ray", progress=False, embedder=remote)
    assert remote.workers == 2 and remote.encoded >= report.chunks == local.chunks > 6
    a, b = load_index(tmp_path / "local", settings), load_index(tmp_path / "ray", settings)
    assert [(c.chunk_id, c.text, c.start, c.end) for c in a.chunks] == [(c.chunk_id, c.text, c.start, c.end)
                                                                         for c in b.chunks]
    assert np.min(np.sum(a.vectors() * b.vectors(), axis=1)) > 1 - 1e-4
    assert a.sentences is not None and b.sentences is not None
    assert np.array_equal(a.sentences.offsets, b.sentences.offsets)
    every = np.arange(a.sentences.offsets[-1])
    sa, sb = a.sentences.rows(every), b.sentences.rows(every)  # int8 codes times their scales
    assert len(sa) > 0 and np.min(np.sum(sa * sb, axis=1)) > 1 - 2e-3  # int8 on disk
    assert a.terms is not None and b.terms is not None and a.terms.terms == b.terms.terms
    for q in (["냉전", "소련"], ["greek", "politicians"], ["없는말"]):
        assert np.array_equal(a.lexical.term_scores(q), b.lexical.term_scores(q))
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedding"]["checksum"] == a.manifest["embedding"]["checksum"]
    # an unchanged corpus embeds nothing, on Ray as locally
    again = build_index(settings, [corpus], tmp_path / "ray", progress=False, embedder=remote)
    assert again.up_to_date and again.embedded == 0
    # pooled sentence vectors (from the passage's token states) are computed in the actors, and equal
    # the local build's; the three kinds of model calls of both builds went to one pool of 2 actors
    pooled = replace(settings, sentence_pooling=True)  # the default
    corpus2 = tmp_path / "two.jsonl"
    corpus2.write_text("\n".join(rows[:1] + rows[8:9]) + "\n", encoding="utf-8")
    build_index(pooled, [corpus2], tmp_path / "local-pooled", progress=False, embedder=embedder)
    sent_before = remote.encoded
    build_index(pooled, [corpus2], tmp_path / "ray-pooled", progress=False, embedder=remote)
    assert remote.encoded > sent_before and remote.pools_started == 1 and len(remote.start()) == 2
    a, b = load_index(tmp_path / "local-pooled", pooled), load_index(tmp_path / "ray-pooled", pooled)
    assert a.manifest["params"]["sentence_vectors"] == b.manifest["params"]["sentence_vectors"] == "pooled-top3"
    assert a.sentences is not None and b.sentences is not None
    assert np.array_equal(a.sentences.offsets, b.sentences.offsets)
    sa, sb = a.sentences.vectors.astype(np.float32), b.sentences.vectors.astype(np.float32)
    assert len(sa) > 0 and np.min(np.sum(sa * sb, axis=1)) > 1 - 1e-3
    # the two kinds differ, so the comparison above can tell them apart
    c = load_index(tmp_path / "ray", settings)
    row_c = {ch.chunk_id: i for i, ch in enumerate(c.chunks)}
    assert c.sentences is not None
    cos = [float(np.min(np.sum(np.asarray(a.sentences.of(i), np.float32)
                                * np.asarray(c.sentences.of(row_c[ch.chunk_id]), np.float32), axis=1)))
           for i, ch in enumerate(a.chunks) if ch.chunk_id in row_c and len(a.sentences.of(i))]
    assert cos and min(cos) < 0.99
    remote.close()

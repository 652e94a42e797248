"""``rag index --engine ray``: the model work of an index build runs on a Ray cluster.

:class:`RayEmbedder` has the embedder's interface; its ``encode_passages`` and
``encode_queries`` send the texts through a Ray Data actor pool, one model per
actor (``num_gpus=1`` per actor when the cluster has GPUs, else one CPU). The
build itself is the ordinary one (:func:`rag.store.index.build_index` with this
embedder): the same chunking, the same per-batch functions for passage,
sentence and term vectors, the same BM25 and files, so the index equals the
local one and format changes flow through. Without an address a local Ray
instance is started. Corpus reading and chunking stay in the driver (they are
cheap next to the model); this module does nothing but distribute embedding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import RagError

BATCHES_PER_TASK = 4  # embedder batches per Ray Data batch: few tasks, still balanced over actors


class _Encode:
    """One Ray actor: loads the model once, embeds the batches it is given."""

    def __init__(self, settings: Settings, kind: str) -> None:
        from rag.model.embed import load_embedder

        self.embedder = load_embedder(settings)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        fn = self.embedder.encode_passages if self.kind == "passage" else self.embedder.encode_queries
        return {"i": batch["i"], "vector": np.asarray(fn(texts), dtype=np.float32)}


def start_ray(address: str = "", num_cpus: int | None = None) -> Any:
    """Connect to the cluster at ``address`` (``ray://host:10001`` or ``auto``), or start a local one."""
    try:
        import ray
    except ImportError:
        raise RagError("--engine ray needs Ray: pip install -e '.[ray]'") from None
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # ConnectionError, RuntimeError, ... from the Ray client
        raise RagError(f"cannot start or reach Ray at {address or 'a local instance'} ({e}); "
                       "check --ray-address (e.g. ray://head:10001 or auto)") from None
    return ray


class RayEmbedder:
    """The local embedder's metadata and tokenizer; its encoding runs in a Ray actor pool."""

    def __init__(self, settings: Settings, local: Any, workers: int = 0, address: str = "") -> None:
        self.settings = settings
        self.local = local  # chunking counts tokens in the driver; dim, model id and checksum come from it
        self.ray = start_ray(address)
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.num_gpus = 1 if gpus else 0
        self.workers = workers or (gpus or max(1, cpus))
        self.encoded = 0

    def __getattr__(self, name: str) -> Any:  # model_id, checksum, dim, count_tokens, ...
        return getattr(self.local, name)

    def encode_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode("passage", texts, progress)

    def encode_queries(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode("query", texts, progress)

    def _encode(self, kind: str, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.local.dim), np.float32)
        import ray.data

        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        out = ds.map_batches(
            _Encode, fn_constructor_args=(self.settings, kind), batch_format="numpy",
            batch_size=self.settings.embed_batch_size * BATCHES_PER_TASK,
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(texts))),
            num_gpus=self.num_gpus, num_cpus=0 if self.num_gpus else 1,
        )
        vecs = np.zeros((len(texts), self.local.dim), np.float32)
        for batch in out.iter_batches(batch_format="numpy", batch_size=None):
            vecs[np.asarray(batch["i"], dtype=np.int64)] = batch["vector"]
            if progress is not None:
                progress(len(batch["i"]))
        self.encoded += len(texts)
        print(f"rag: ray: {len(texts)} {kind} texts embedded by {self.workers} worker(s)", file=sys.stderr)
        return vecs

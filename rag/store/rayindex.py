"""``rag index --engine ray``: the model work of an index build runs on a Ray cluster.

:class:`RayEmbedder` has the embedder's interface. On its first call it starts
one pool of Ray actors for the whole build, one model per actor
(``num_gpus=1`` per actor when the cluster has GPUs, else one CPU), and every
later call (passage vectors, sentence vectors, term vectors, each checkpoint
block) goes to the same actors, so each loads the model once per build.
Passages and their sentence vectors go to the actors together and the actors run
:func:`rag.model.pooled.encode_pooled`, the function the local build runs: the
sentence vectors are the kind the manifest records (``params.sentence_vectors``:
``alone`` or ``pooled``, the latter from the model's token states in the actor).

The build itself is the ordinary one (:func:`rag.store.index.build_index` with
this embedder): the same chunking, BM25 and files, so the index equals the local
one and format changes flow through. Without an address a local Ray instance is
started. Corpus reading and chunking stay in the driver (cheap next to the
model); this module does nothing but distribute model calls. Ray Core actors
(``ray.util.ActorPool``) are used rather than Ray Data's ``map_batches``, whose
actor pool lives for one dataset only and so loaded the model three times a build.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import RagError

BATCHES_PER_TASK = 4  # embedder batches per actor call: few calls, still balanced over actors
# model access stays in the actors
_DRIVER_ONLY = frozenset({"passage_states", "top_states", "model", "encode", "_lock"})

Span = tuple[int, int]


class _Encoder:
    """One Ray actor: loads the model once, then embeds whatever it is sent."""

    def __init__(self, settings: Settings) -> None:
        from rag.model.embed import load_embedder

        self.embedder = load_embedder(settings)

    def ready(self) -> bool:
        return True

    def encode(self, kind: str, texts: list[str]) -> np.ndarray:
        fn = self.embedder.encode_passages if kind == "passage" else self.embedder.encode_queries
        return np.asarray(fn(texts), dtype=np.float32)

    def pooled(self, texts: list[str], spans: list[list[Span]], pooled: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        from rag.model.pooled import encode_pooled

        return encode_pooled(self.embedder, texts, spans, None, pooled)


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
    """The local embedder's metadata and tokenizer; its model calls run in one Ray actor pool."""

    def __init__(self, settings: Settings, local: Any, workers: int = 0, address: str = "") -> None:
        self.settings = settings
        self.local = local  # chunking counts tokens in the driver; dim, model id and checksum come from it
        self.ray = start_ray(address)
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.num_gpus = 1 if gpus else 0
        self.workers = workers or (gpus or max(1, cpus))
        self.encoded = 0  # texts sent to the actors
        self.pools_started = 0
        self._actors: list[Any] = []

    def __getattr__(self, name: str) -> Any:  # model_id, checksum, dim, count_tokens, prenormalize, ...
        if name in _DRIVER_ONLY or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.local, name)

    # ------------------------------------------------------------- pool
    def start(self) -> list[Any]:
        """The actor pool, started on first use (each actor loads the model; waits until all have)."""
        if not self._actors:
            remote = self.ray.remote(num_cpus=0 if self.num_gpus else 1, num_gpus=self.num_gpus)(_Encoder)
            self._actors = [remote.remote(self.settings) for _ in range(self.workers)]
            self.ray.get([a.ready.remote() for a in self._actors])
            self.pools_started += 1
        return self._actors

    def close(self) -> None:
        """End the actors (a finished build; a driver that exits ends them too)."""
        for a in self._actors:
            self.ray.kill(a)
        self._actors = []

    def _map(self, calls: list[tuple[str, tuple[Any, ...], int]], progress: Callable[[int], None] | None) -> list[Any]:
        """Run ``(method, args, n_texts)`` calls on the pool, results in call order."""
        from ray.util import ActorPool

        pool = ActorPool(self.start())
        out = []
        for (_, _, n), result in zip(calls, pool.map(lambda a, c: getattr(a, c[0]).remote(*c[1]), calls),
                                     strict=True):
            out.append(result)
            self.encoded += n
            if progress is not None:
                progress(n)
        return out

    def _step(self) -> int:
        return max(1, self.settings.embed_batch_size * BATCHES_PER_TASK)

    # --------------------------------------------------- embedder interface
    def encode_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode("passage", texts, progress)

    def encode_queries(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode("query", texts, progress)

    def _encode(self, kind: str, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.local.dim), np.float32)
        step = self._step()
        calls = [("encode", (kind, list(texts[i : i + step])), len(texts[i : i + step]))
                 for i in range(0, len(texts), step)]
        vecs = np.concatenate(self._map(calls, progress))
        print(f"rag: ray: {len(texts)} {kind} texts embedded by {self.workers} worker(s)", file=sys.stderr)
        return vecs

    def encode_with_sentences(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: Callable[[int], None] | None,
        pooled: bool,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """:func:`rag.model.pooled.encode_pooled`, run in the actors (``pooled``: sentence vectors from
        the passage's token states, else each sentence alone), results in ``texts`` order."""
        if not texts:
            return np.zeros((0, self.local.dim), np.float32), []
        step = self._step()
        calls = [("pooled", (list(texts[i : i + step]), [list(s) for s in spans[i : i + step]], pooled),
                  len(texts[i : i + step])) for i in range(0, len(texts), step)]
        results = self._map(calls, progress)
        print(f"rag: ray: {len(texts)} passages and their sentences embedded by {self.workers} worker(s)",
              file=sys.stderr)
        return np.concatenate([r[0] for r in results]), [s for r in results for s in r[1]]

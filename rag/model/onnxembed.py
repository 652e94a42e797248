"""The embedding model on ONNX Runtime, for questions: same vectors, no torch at run time.

Scope: exporting a loaded sentence-transformers :class:`rag.model.embed.Embedder` to
ONNX once per model (torch's exporter, into the cache folder), proving that the
export computes the same vectors as sentence-transformers (probe texts, both
prompts, cosine at least ``FIDELITY``), and loading it as an
:class:`OnnxEmbedder` with the Embedder's API. Searching, asking and serving use
it when it is there: they then import neither torch nor transformers nor
sentence-transformers (about 8 s of start-up on 2 cores) and one forward pass
takes about a third of the time. Index building keeps sentence-transformers
(the model of record). Not here: deciding which embedder a command uses
(``rag.model.encoder.load_query_embedder``).

Folder ``<cache_dir>/onnx/<checksum[:16]>-4/``: ``model.onnx`` (the whole
sentence-transformers module: transformer, pooling, normalisation),
``model.onnx.data`` (its weights), ``top.onnx`` (the model's last layers again, for
sentence vectors at index time: ``rag.model.pooled``; int8 weights), ``terms.onnx``
(``model.onnx`` with int8 weights, for BM25 term vectors at index time:
``rag.store.crosslex``), ``tokenizer.json`` (the model's fast tokenizer), the bundled
model's character map when it has one, and ``encoder.json`` written last (what was
exported and the measured fidelity). A folder without a valid ``encoder.json`` is ignored and
rebuilt by the next ``rag index``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.cachefiles import clean_leftovers, files_complete, fix_modes, swap_in
from rag.model.batching import encode_sorted
from rag.model.pooled import TOP_LAYERS, encode_pooled, top_layers_torch, transformer_layers
from rag.text import everyday_texts

FORMAT = "rag-onnx/4"  # 2: token states; 3: states below the top layers + top.onnx; 4: int8 top.onnx + terms.onnx
PREVIOUS_FORMATS = ("rag-onnx/3", "rag-onnx/2")  # their model.onnx embeds questions as format 4's does
META = "encoder.json"
MODEL = "model.onnx"
WEIGHTS = "model.onnx.data"  # the graph's weights (ONNX external data)
TOP = "top.onnx"  # the last TOP_LAYERS layers with a per-token attention mask (sentence vectors), int8
TERMS = "terms.onnx"  # model.onnx with int8 weights: BM25 term vectors at index time (rag.store.crosslex)
TOKENIZER = "tokenizer.json"
FIDELITY = 0.9999  # least cosine between an exported and a sentence-transformers vector
# int8 weights (dynamic quantisation, per channel), measured on 160 Belebele ko passages and their
# 1,581 new terms (session 24): sentence vectors cosine >= .998 to the float top layers' (top pass
# 1.3x faster), term vectors >= .985, mean .997 (2.3x faster); checked on the probe texts at export
INT8_FIDELITY = {"sentences": 0.995, "terms": 0.97}
PROBE = "KT 컨소시엄 평가 결과 / evaluation results"  # re-embedded at each load: catches damaged weights
INPUTS = ("input_ids", "attention_mask")


def folder_for(cache_dir: str | Path, checksum: str) -> Path:
    """Where the export of the model with this checksum lives."""
    return Path(cache_dir).expanduser() / "onnx" / f"{checksum[:16]}-{FORMAT.rsplit('/', 1)[-1]}"


class LazySession:
    """An ONNX Runtime session opened on first use (thread-safe)."""

    def __init__(self, path: str, options: Any) -> None:
        self.path, self.options, self._session, self._lock = path, options, None, threading.Lock()

    def available(self) -> bool:
        """Whether the graph file is there (an export of the previous format has none)."""
        return Path(self.path).is_file()

    def close(self) -> None:
        """Drop the session (its weights and buffers); the next :meth:`get` opens it again."""
        with self._lock:
            self._session = None

    def get(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                self._session = ort.InferenceSession(self.path, self.options, providers=["CPUExecutionProvider"])
            return self._session


@dataclass(frozen=True)
class OnnxEmbedder:
    """Query and passage vectors from the exported model; API of :class:`rag.model.embed.Embedder`."""

    model_id: str
    checksum: str
    dim: int
    max_tokens: int
    query_prompt: str
    passage_prompt: str
    batch_size: int
    session: Any = field(repr=False, compare=False)  # onnxruntime.InferenceSession
    top: LazySession = field(repr=False, compare=False)  # top.onnx, opened by the first index build that needs it
    terms: LazySession = field(repr=False, compare=False)  # terms.onnx, likewise
    tokenizer: Any = field(repr=False, compare=False)  # tokenizers.Tokenizer: truncating, padding
    counter: Callable[[str], int] = field(repr=False, compare=False)
    prenormalize: Callable[[str], str] = field(repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def encode_queries(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, self.query_prompt, progress)

    def encode_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, progress)

    def encode_terms(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Index terms as questions' words are embedded (query prompt), through the int8 ``terms.onnx``
        (``INT8_FIDELITY``): a term only has to find its translation among its nearest terms."""
        return self._encode(texts, self.query_prompt, progress, self.terms.get())

    def release_index_graphs(self) -> None:
        """Free ``top.onnx`` and ``terms.onnx`` (130 MB) once a build has embedded everything: its
        last stage (writing) holds the most memory."""
        self.top.close()
        self.terms.close()

    def can_index(self) -> bool:
        """Whether this export has the index-time graphs (an earlier format's serves questions only)."""
        return self.top.available() and self.terms.available()

    def count_tokens(self, text: str) -> int:
        return self.counter(text)

    def _encode(
        self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None, session: Any = None
    ) -> np.ndarray:
        graph = self.session if session is None else session

        def run(batch: list[str]) -> np.ndarray:
            with self._lock:  # the tokenizer is shared; the session uses every core anyway
                enc = self.tokenizer.encode_batch([prompt + t for t in batch])
                feeds = {
                    "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                }
                vecs = np.asarray(graph.run(["embedding"], feeds)[0], dtype=np.float32)
            return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

        return encode_sorted(texts, self.prenormalize, self.batch_size, self.dim, run, progress)

    def passage_states(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For ``texts`` as given (prompt and prenormalisation already applied): L2-normalised
        pooled vectors ``(B, dim)``, the token states below the model's last ``TOP_LAYERS`` layers
        ``(B, L, H)``, each token's character span ``(B, L, 2)`` (empty for special and padding
        tokens) and the attention mask ``(B, L)``; see ``rag.model.pooled``."""
        with self._lock:
            enc = self.tokenizer.encode_batch(texts)
            feeds = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            }
            pooled, middle = self.session.run(["embedding", "middle"], feeds)
        offsets = np.array([e.offsets for e in enc], dtype=np.int64).reshape(len(enc), -1, 2)
        pooled = np.asarray(pooled, dtype=np.float32)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled, np.asarray(middle), offsets, feeds["attention_mask"]

    def top_states(self, middle: np.ndarray, allow: np.ndarray) -> np.ndarray:
        """``middle`` (from :meth:`passage_states`) through the last ``TOP_LAYERS`` layers, each token
        attending only where ``allow`` ``(B, L, L)`` says."""
        with self._lock:
            return np.asarray(self.top.get().run(["tokens"], {"hidden": np.ascontiguousarray(middle, dtype=np.float32),
                                                        "allow": np.ascontiguousarray(allow, dtype=bool)})[0])


def probe_texts() -> list[str]:
    """Korean, English and mixed texts, short to over-long, that an export must embed faithfully."""
    lines = everyday_texts()
    long_ko = " ".join(x for x in lines if any("가" <= ch <= "힣" for ch in x))
    return [
        *lines,
        "",
        "KT 컨소시엄, AI 파운데이션 모델 2차 평가 통과 (2026년 1월)",
        "Naver Cloud and NC AI were eliminated; LG AI Research, SK Telecom and Upstage advanced.",
        (long_ko + " ") * 12,  # longer than the model's window: truncated alike
    ]


def export(embedder: Any, folder: Path, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Export ``embedder`` (a loaded :class:`rag.model.embed.Embedder`) into ``folder`` atomically and
    check it against sentence-transformers. Returns the metadata; ``ok`` is False (and the
    reason given) when the export does not reproduce the model, e.g. a tokenizer without a fast
    version or a pooling that leaves out the prompt."""
    backend = getattr(embedder.model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        return {"ok": False, "reason": "the model has no fast tokenizer"}
    if any(getattr(m, "include_prompt", True) is False for m in embedder.model):
        return {"ok": False, "reason": "the model's pooling leaves out the prompt, which the export cannot"}
    folder.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(folder)  # an interrupted export's temporary folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        t0 = time.perf_counter()
        _export_graph(embedder, backend, tmp)
        (tmp / TOKENIZER).write_text(backend.to_str(), encoding="utf-8")
        charmap = embedder.charmap
        if charmap:
            shutil.copyfile(charmap, tmp / Path(charmap).name)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "model_id": embedder.model_id,
            "checksum": embedder.checksum,
            "dim": embedder.dim,
            "max_tokens": embedder.max_tokens,
            "model_prompts": dict(getattr(embedder.model, "prompts", None) or {}),
            "charmap": Path(charmap).name if charmap else "",
            "pad": list(_pad_of(embedder.model.tokenizer)),
            "split_special_tokens": bool(getattr(embedder.model.tokenizer, "split_special_tokens", False)),
            "export_seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"exported the embedding model to ONNX in {meta['export_seconds']} s; checking it")
        meta["folder"] = str(folder)
        meta.update(_fidelity(embedder, load(tmp, meta, (embedder.query_prompt, embedder.passage_prompt),
                                             embedder.batch_size)))
        meta["probe"] = {"text": PROBE, "prompt": embedder.query_prompt,
                         "vector": [round(float(x), 7) for x in embedder.encode_queries([PROBE])[0]]}
        meta["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        (tmp / META).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        fix_modes(tmp)  # mkdtemp made it private; other users (a service account) may read it
        swap_in(tmp, folder)
        _remove_older_formats(folder)
        return meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_older_formats(folder: Path) -> None:
    """Delete the exports of this model in earlier formats (``<checksum16>-1``, ``-2``): half a
    gigabyte each, never read again."""
    stem, _, current = folder.name.rpartition("-")
    for old in folder.parent.glob(f"{stem}-*"):
        version = old.name.rpartition("-")[2]
        if old.is_dir() and version.isdigit() and current.isdigit() and int(version) < int(current):
            shutil.rmtree(old, ignore_errors=True)


def _export_graph(embedder: Any, backend: Any, out: Path) -> None:
    import torch

    st = embedder.model
    found = transformer_layers(st)
    if found is None:
        raise ValueError("the model is not a BERT-like encoder (no encoder layers to split)")
    layers: list[Any] = found

    class Graph(torch.nn.Module):  # the sentence-transformers modules with plain tensor inputs
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            got: list[Any] = []
            hook = layers[-TOP_LAYERS - 1].register_forward_hook(lambda _m, _i, o: got.append(o))
            try:
                out = self.st({"input_ids": input_ids, "attention_mask": attention_mask})
            finally:
                hook.remove()
            middle = got[-1][0] if isinstance(got[-1], tuple) else got[-1]
            return out["sentence_embedding"], middle

    class Top(torch.nn.Module):  # the last layers, attention limited per token pair
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(layers[-TOP_LAYERS:])

        def forward(self, hidden: Any, allow: Any) -> Any:
            return top_layers_torch(self.layers, hidden, allow)

    pad_id, pad = _pad_of(st.tokenizer)
    sample = _tokenizer(backend.to_str(), embedder.max_tokens, pad_id, pad, split_special=False).encode_batch(
        ["query: 예시 문장입니다", "passage: a longer example sentence with more words in it"]
    )
    args = tuple(torch.tensor([getattr(e, n) for e in sample], dtype=torch.long) for n in ("ids", "attention_mask"))
    axes = {n: {0: "batch", 1: "tokens"} for n in INPUTS}
    width = int(layers[0].output.dense.out_features) if hasattr(layers[0], "output") else embedder.dim
    hidden = torch.zeros((2, 5, width), dtype=torch.float32)
    allow = torch.ones((2, 5, 5), dtype=torch.bool)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; fidelity is checked after
        torch.onnx.export(
            Graph().eval(), args, str(out / "traced.onnx"), input_names=list(INPUTS),
            output_names=["embedding", "middle"],
            dynamic_axes={**axes, "embedding": {0: "batch"}, "middle": {0: "batch", 1: "tokens"}},
            opset_version=17, dynamo=False,
        )
        torch.onnx.export(
            Top().eval(), (hidden, allow), str(out / "top-float.onnx"), input_names=["hidden", "allow"],
            output_names=["tokens"],
            dynamic_axes={"hidden": {0: "batch", 1: "tokens"}, "allow": {0: "batch", 1: "tokens", 2: "tokens"},
                          "tokens": {0: "batch", 1: "tokens"}},
            opset_version=17, dynamo=False,
        )
    import onnx

    # weights in a file of their own: ONNX Runtime maps them instead of parsing them (0.3 s, not 2 s)
    graph = onnx.load(str(out / "traced.onnx"))
    onnx.save_model(graph, str(out / MODEL), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=WEIGHTS, size_threshold=1024)
    (out / "traced.onnx").unlink()
    _quantise(out / "top-float.onnx", out / TOP, ["MatMul"])
    (out / "top-float.onnx").unlink()
    _quantise(out / MODEL, out / TERMS, ["MatMul", "Gather"])  # Gather: the word embeddings, 384 -> 96 MB


def _quantise(src: Path, dst: Path, ops: list[str]) -> None:
    """``src`` with int8 weights for ``ops`` (dynamic quantisation: activations stay float, scaled per
    batch; weights per output channel), into one file."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice, once per call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=ops, extra_options={"MatMulConstBOnly": True})
    finally:
        logging.getLogger().setLevel(quiet)


def _fidelity(embedder: Any, exported: OnnxEmbedder) -> dict[str, Any]:
    """Least cosines of the export's vectors to sentence-transformers': queries and passages (float,
    ``FIDELITY``), sentence vectors (int8 top layers) and term vectors (int8 model), ``INT8_FIDELITY``."""
    texts = probe_texts()
    cos = [
        float(np.min(np.sum(ref(group) * got(group), axis=1)))
        for ref, got in (
            (embedder.encode_queries, exported.encode_queries),
            (embedder.encode_passages, exported.encode_passages),
        )
        for group in (texts[:-1], texts[-1:])  # the over-long text alone: a batch pads to its longest
    ]
    spans = [[m.span() for m in re.finditer(r"[^.!?]+[.!?]?", t) if m.group().strip()] for t in texts]
    sent: list[float] = []
    for group in (slice(0, -1), slice(-1, None)):  # sentence vectors: the top layers, both ways
        ref_s, got_s = (encode_pooled(e, texts[group], spans[group])[1] for e in (embedder, exported))
        sent += [float(np.min(np.sum(r * g, axis=1))) for r, g in zip(ref_s, got_s, strict=True) if len(r)]
    words = sorted({w for t in texts[:-1] for w in re.findall(r"[^\W\d_]+", t)})
    terms = float(np.min(np.sum(embedder.encode_queries(words) * exported.encode_terms(words), axis=1)))
    worst = min(cos)
    checks = [(worst, FIDELITY, "queries and passages"), (min(sent), INT8_FIDELITY["sentences"], "sentences"),
              (terms, INT8_FIDELITY["terms"], "terms")]
    failed = [f"{what}: least cosine with sentence-transformers {got:.6f} < {want}" for got, want, what in checks
              if got < want]
    return {"ok": not failed, "reason": "; ".join(failed), "probe_texts": len(texts), "min_cosine": round(worst, 7),
            "min_cosine_sentences": round(min(sent), 7), "min_cosine_terms": round(terms, 7)}


def read_meta(folder: Path, checksum: str) -> dict[str, Any] | None:
    """The export of the model ``checksum`` in ``folder`` when complete (files of the recorded
    sizes), else None. ``ok`` in it says whether it passed the fidelity check."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("checksum") != checksum:
        return None
    return meta if files_complete(folder, meta.get("files")) else None


def previous_export(cache_dir: str | Path, checksum: str) -> tuple[Path, dict[str, Any]] | None:
    """A complete, checked export of an earlier format (``PREVIOUS_FORMATS``, newest first) of this
    model, or None. Its ``model.onnx`` embeds questions exactly as the current format's does (only
    the files for index-time sentence and term vectors differ), so a server upgraded without a new
    ``rag index`` keeps answering without torch until the next ``rag index`` exports the current
    format (which then removes it)."""
    for fmt in PREVIOUS_FORMATS:
        folder = Path(cache_dir).expanduser() / "onnx" / f"{checksum[:16]}-{fmt.rsplit('/', 1)[-1]}"
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("format") != fmt or meta.get("checksum") != checksum:
            continue
        if meta.get("ok") and files_complete(folder, meta.get("files")):
            return folder, meta
    return None


def _tokenizer(spec: str, max_tokens: int, pad_id: int, pad: str, split_special: bool) -> Any:
    """The fast tokenizer as sentence-transformers calls it: truncating to the model's window,
    padding each batch to its longest text."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(spec)
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=pad_id, pad_token=pad)
    if hasattr(tok, "encode_special_tokens"):
        tok.encode_special_tokens = split_special
    return tok


def _pad_of(hf_tokenizer: Any) -> tuple[int, str]:
    pad_id = getattr(hf_tokenizer, "pad_token_id", None)
    return (0, "") if pad_id is None else (int(pad_id), str(hf_tokenizer.pad_token))


def load(folder: Path, meta: dict[str, Any], prompts: tuple[str, str], batch_size: int) -> OnnxEmbedder:
    """Open an exported model with (query, passage) ``prompts``; raises on unreadable files
    (callers fall back to sentence-transformers)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from rag.model.tokencount import LazyCounter, charmap_prenormalizer, fast_counter, identity

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # idle threads sleep instead of spinning: ~2 ms slower on an idle machine, but when other
    # processes want the cores (a busy server, CI) a question took 44 instead of 60 ms (p95 53 vs 89)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(folder / MODEL), opts, providers=["CPUExecutionProvider"])
    top = LazySession(str(folder / TOP), opts)  # servers never open these two
    terms = LazySession(str(folder / TERMS), opts)
    spec = (folder / TOKENIZER).read_text(encoding="utf-8")
    split = bool(meta.get("split_special_tokens"))
    pad_id, pad = meta["pad"]
    prenormalize = charmap_prenormalizer(folder / meta["charmap"]) if meta.get("charmap") else identity
    embedder = OnnxEmbedder(
        model_id=str(meta["model_id"]),
        checksum=str(meta["checksum"]),
        dim=int(meta["dim"]),
        max_tokens=int(meta["max_tokens"]),
        query_prompt=prompts[0],
        passage_prompt=prompts[1],
        batch_size=max(1, batch_size),
        session=session,
        top=top,
        terms=terms,
        tokenizer=_tokenizer(spec, int(meta["max_tokens"]), int(pad_id), str(pad), split),
        counter=LazyCounter(lambda: fast_counter(Tokenizer.from_str(spec), prenormalize, split)),
        prenormalize=prenormalize,
    )
    probe = meta.get("probe")
    if probe:  # sizes were checked by read_meta; this checks the numbers
        got = embedder._encode([str(probe["text"])], str(probe["prompt"]), None)[0]
        cos = float(got @ np.asarray(probe["vector"], dtype=np.float32))
        if cos < FIDELITY:
            raise ValueError(f"the weights no longer give the checked vector (cosine {cos:.4f})")
    return embedder

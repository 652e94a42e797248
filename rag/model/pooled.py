"""Passage vectors and their sentences' vectors from one forward pass ("late chunking").

A sentence vector used to be a second encoding of the sentence on its own,
which doubled the text that went through the model. Here each passage goes
through the model once (with the passage prompt, as sentence-transformers
encodes it) and each sentence's vector is the mean of the passage's token
states inside that sentence's character span, L2-normalised: the tokens
"read" the whole passage, so the vector is contextual. The passage vector is
the model's own pooled output of the same pass (identical to
``Embedder.encode_passages``).

Offsets: the tokenizer reports each token's character span in the string it
was given (prompt + prenormalised text); spans of the original text are moved
through the prenormaliser (a per-codepoint map, see ``rag.model.tokencount``) and
past the prompt. A token belongs to a sentence when their character spans
overlap. A sentence cut by the model's window keeps the tokens that fit; one
wholly past the window gets no token, and is then embedded on its own (the
old way), so every requested sentence has a vector.

Plain functions over one batch of texts, so other indexing paths (Ray
workers) call the same code. Not here: which sentences get a vector
(``rag.store.sentvec``), storing them, FAISS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.model.batching import batches

Span = tuple[int, int]


def char_positions(text: str, prenormalize: Callable[[str], str]) -> np.ndarray | None:
    """``pos[i]`` = index in ``prenormalize(text)`` where ``text[i]`` lands (length ``len(text)+1``);
    None when the prenormaliser keeps every character in place (the common case)."""
    if len(prenormalize(text)) == len(text) and prenormalize(text) == text:
        return None
    lens = [len(prenormalize(ch)) for ch in text]
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


def token_masks(offsets: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """Bool ``(len(spans), n_tokens)``: the tokens (character ``offsets``, ``(n, 2)``, in the
    tokenised string) whose span overlaps each ``(start, end)``; special and padding tokens
    (empty spans) belong to none."""
    if not spans:
        return np.zeros((0, len(offsets)), dtype=bool)
    starts, ends = offsets[:, 0][None, :], offsets[:, 1][None, :]
    sp = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    return (ends > starts) & (ends > sp[:, :1]) & (starts < sp[:, 1:])


def mean_normalised(states: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per mask row, the L2-normalised mean of the ``states`` rows it selects (zeros when none)."""
    counts = masks.sum(axis=1, keepdims=True)
    sums = masks.astype(np.float32) @ states.astype(np.float32)
    means = sums / np.maximum(counts, 1)
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def _shifted(spans: Sequence[Span], pos: np.ndarray | None, shift: int) -> list[Span]:
    if pos is None:
        return [(s + shift, e + shift) for s, e in spans]
    return [(int(pos[s]) + shift, int(pos[e]) + shift) for s, e in spans]


def _forward(embedder: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pooled passage vectors ``(B, dim)``, token states ``(B, L, H)``, offsets ``(B, L, 2)``)
    of prompt-prefixed ``texts`` through the model, as ``encode`` runs it: the ONNX export's
    :meth:`~rag.model.onnxembed.OnnxEmbedder.token_states`, or sentence-transformers."""
    if hasattr(embedder, "token_states"):
        pooled, states, offsets = embedder.token_states(texts)
        return pooled, states, offsets
    import torch

    tok = embedder.model.tokenizer
    with embedder._lock, torch.inference_mode():
        enc = tok(texts, padding=True, truncation="longest_first", max_length=embedder.max_tokens,
                  return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping").numpy()
        out = embedder.model(dict(enc))
        pooled = out["sentence_embedding"].float().numpy()
        states = out["token_embeddings"].float().numpy()
    pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled, states, offsets


def supports_pooling(embedder: Any) -> bool:
    """Whether ``embedder`` exposes token states (the ONNX export, or a sentence-transformers
    :class:`rag.model.embed.Embedder` with a fast tokenizer); others get sentence vectors from separate
    encodings."""
    if hasattr(embedder, "token_states"):
        return True
    tok = getattr(getattr(embedder, "model", None), "tokenizer", None)
    return bool(getattr(tok, "is_fast", False))


def encode_pooled(
    embedder: Any, texts: Sequence[str], spans: Sequence[Sequence[Span]],
    progress: Callable[[int], None] | None = None, pooled: bool = True,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passage vectors ``(n, dim)`` float32 of ``texts`` and, per text, float32 ``(len(spans[i]), dim)``
    vectors of its sentences (``spans[i]``: character spans into ``texts[i]``), one forward pass
    per batch; ``progress(k)`` after each batch of ``k`` texts. ``pooled=False`` (or an embedder
    without token states): each sentence is encoded alone instead, a second pass."""
    if len(texts) != len(spans):
        raise ValueError(f"encode_pooled: {len(texts)} texts but {len(spans)} span lists")
    remote = getattr(embedder, "encode_with_sentences", None)
    if remote is not None:  # the model lives elsewhere (rag.store.rayindex): this function runs there
        vectors, sents = remote(texts, spans, progress, pooled)
        return vectors, list(sents)
    dim = embedder.dim
    passages = np.zeros((len(texts), dim), dtype=np.float32)
    sentences = [np.zeros((len(s), dim), dtype=np.float32) for s in spans]
    if not pooled or not supports_pooling(embedder):
        passages[:] = embedder.encode_passages(list(texts), progress=progress) if len(texts) else passages
        _encode_alone(embedder, texts, spans, [list(range(len(s))) for s in spans], sentences)
        return passages, sentences
    prompt = embedder.passage_prompt
    prenormalize = embedder.prenormalize
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    missed: list[list[int]] = [[] for _ in texts]
    for part in batches([len(texts[i]) for i in order], embedder.batch_size):
        idx = order[part]
        pvecs, states, offsets = _forward(embedder, [prompt + prenormalize(texts[i]) for i in idx])
        for b, i in enumerate(idx):
            passages[i] = pvecs[b]
            if not spans[i]:
                continue
            masks = token_masks(offsets[b], _shifted(spans[i], char_positions(texts[i], prenormalize), len(prompt)))
            sentences[i] = mean_normalised(states[b], masks)
            missed[i] = [k for k in range(len(spans[i])) if not masks[k].any()]
        if progress is not None:
            progress(len(idx))
    _encode_alone(embedder, texts, spans, missed, sentences)
    return passages, sentences


def _encode_alone(
    embedder: Any, texts: Sequence[str], spans: Sequence[Sequence[Span]], which: list[list[int]],
    out: list[np.ndarray],
) -> None:
    """Embed the sentences ``which[i]`` of text ``i`` on their own into ``out[i]``; a sentence that
    occurs more than once (the overlap between neighbouring passages) is embedded once."""
    todo = [(i, k) for i, ks in enumerate(which) for k in ks]
    if not todo:
        return
    sentences = [texts[i][spans[i][k][0] : spans[i][k][1]] for i, k in todo]
    row = {s: j for j, s in enumerate(dict.fromkeys(sentences))}
    vecs = embedder.encode_passages(list(row))
    for (i, k), s in zip(todo, sentences, strict=True):
        out[i][k] = vecs[row[s]]

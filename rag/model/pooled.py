"""Passage vectors and their sentences' vectors from one forward pass ("late chunking").

A sentence vector used to be a second encoding of the sentence on its own,
which doubled the text that went through the model. Here each passage goes
through the model once (with the passage prompt, as sentence-transformers
encodes it); the passage vector is the model's own pooled output of that pass
(identical to ``Embedder.encode_passages``). For the sentences, the states the
passage reached below the model's last ``TOP_LAYERS`` layers go through those
layers once more, with each sentence's tokens attending only to the tokens of
their own sentence and to the tokens outside every sentence (the prompt, the
special tokens, sentences too short for a vector); each sentence's vector is
the mean of those top states inside its character span, L2-normalised. So a
sentence has read its passage in the lower layers but is summed up on its own,
as a question about it is: plain late chunking (the mean of the passage's own
top states) keeps too much of the passage and cost 0.4-2.7 points of R@5 on
Belebele ko, en2ko and ko2en; the top layers again cost about a quarter of a
pass instead of a second pass over every sentence (see docs/retrieval.md).

Offsets: the tokenizer reports each token's character span in the string it
was given (prompt + prenormalised text); spans of the original text are moved
through the prenormaliser (a per-codepoint map, see ``rag.model.tokencount``) and
past the prompt. A token belongs to a sentence when their character spans
overlap. A sentence cut by the model's window keeps the tokens that fit; one
wholly past the window gets no token, and is then embedded on its own (the
old way), so every requested sentence has a vector.

Two model primitives make a pass: ``passage_states(texts)`` (pooled vectors, the
states below the top layers, offsets, attention mask) and ``top_states(states,
allow)``: the ONNX export's (:class:`rag.model.onnxembed.OnnxEmbedder`) or, for a
sentence-transformers :class:`rag.model.embed.Embedder`, the torch functions
here, which the export is checked against. Plain functions over one batch of
texts, so other indexing paths (Ray workers) call the same code. Not here:
which sentences get a vector (``rag.store.sentvec``), storing them, FAISS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.model.batching import batches

Span = tuple[int, int]
TOP_LAYERS = 3  # last layers re-run per sentence; 1-2 kept ko2en R@5 at .77-.78, 3 reached .80 (docs/retrieval.md)


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


def transformer_layers(model: Any) -> list[Any] | None:
    """The encoder layers of a sentence-transformers model whose first module wraps a BERT-like
    transformer (``auto_model.encoder.layer``), or None for other architectures."""
    try:
        layers = model[0].auto_model.encoder.layer
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return list(layers) if len(layers) > TOP_LAYERS else None


def allow_masks(masks: Sequence[np.ndarray], attention: np.ndarray) -> np.ndarray:
    """Bool ``(B, L, L)``: ``[b, i, j]`` says whether token ``i`` of text ``b`` may attend to token
    ``j`` in the top layers: ``j`` is a real token and either both are in one sentence
    (``masks[b]``, as from :func:`token_masks`) or one of them is in none."""
    real = np.asarray(attention, dtype=bool)
    allow = np.repeat(real[:, None, :], real.shape[1], axis=1)
    for b, m in enumerate(masks):
        if not len(m):
            continue
        mi = m.astype(np.float32)
        inside = np.asarray(m.any(axis=0), dtype=bool)
        allow[b] &= ((mi.T @ mi) > 0) | ~inside[None, :] | ~inside[:, None]
    return allow


def _passage_pass(embedder: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pooled passage vectors ``(B, dim)``, token states below the top layers ``(B, L, H)``,
    offsets ``(B, L, 2)``, attention mask ``(B, L)``) of prompt-prefixed ``texts``, as ``encode``
    runs them: the ONNX export's :meth:`~rag.model.onnxembed.OnnxEmbedder.passage_states`, or
    sentence-transformers."""
    if hasattr(embedder, "passage_states"):
        pooled, middle, offsets, attention = embedder.passage_states(texts)
        return pooled, middle, offsets, attention
    import torch

    tok = embedder.model.tokenizer
    layers = transformer_layers(embedder.model)
    assert layers is not None  # supports_pooling said so
    got: list[Any] = []
    hook = layers[-TOP_LAYERS - 1].register_forward_hook(lambda _m, _i, out: got.append(out))
    try:
        with embedder._lock, torch.inference_mode():
            enc = tok(texts, padding=True, truncation="longest_first", max_length=embedder.max_tokens,
                      return_tensors="pt", return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping").numpy()
            pooled = embedder.model(dict(enc))["sentence_embedding"].float().numpy()
    finally:
        hook.remove()
    middle = got[-1][0] if isinstance(got[-1], tuple) else got[-1]
    pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled, middle.float().numpy(), offsets, enc["attention_mask"].numpy()


def top_layers_torch(layers: Any, middle: Any, allow: Any) -> Any:
    """Run ``middle`` (a float tensor ``(B, L, H)``) through ``layers`` with attention limited by
    ``allow`` (a bool tensor ``(B, L, L)``); the ONNX export traces this same function."""
    import torch

    add = (1.0 - allow[:, None, :, :].to(middle.dtype)) * torch.finfo(middle.dtype).min
    hidden = middle
    for layer in layers:
        out = layer(hidden, attention_mask=add)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _top_pass(embedder: Any, middle: np.ndarray, allow: np.ndarray) -> np.ndarray:
    """The token states ``(B, L, H)`` after the top layers under ``allow`` (:func:`allow_masks`)."""
    if hasattr(embedder, "top_states"):
        return np.asarray(embedder.top_states(middle, allow))
    import torch

    layers = transformer_layers(embedder.model)
    assert layers is not None
    with embedder._lock, torch.inference_mode():
        out = top_layers_torch(layers[-TOP_LAYERS:], torch.from_numpy(np.ascontiguousarray(middle)),
                               torch.from_numpy(allow))
    return np.asarray(out.float().numpy())


def supports_pooling(embedder: Any) -> bool:
    """Whether ``embedder`` can give sentence vectors from the passage's pass (the ONNX export, or
    a sentence-transformers :class:`rag.model.embed.Embedder` with a fast tokenizer and a BERT-like
    encoder); others get sentence vectors from separate encodings."""
    if hasattr(embedder, "top_states"):
        return True
    model = getattr(embedder, "model", None)
    tok = getattr(model, "tokenizer", None)
    return bool(getattr(tok, "is_fast", False)) and transformer_layers(model) is not None


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
        pvecs, middle, offsets, attention = _passage_pass(embedder, [prompt + prenormalize(texts[i]) for i in idx])
        passages[idx] = pvecs
        rows = [b for b, i in enumerate(idx) if spans[i]]
        masks = [token_masks(offsets[b], _shifted(spans[idx[b]], char_positions(texts[idx[b]], prenormalize),
                                                  len(prompt))) for b in rows]
        if rows:
            top = _top_pass(embedder, middle[rows], allow_masks(masks, attention[rows]))
            for r, (b, m) in enumerate(zip(rows, masks, strict=True)):
                sentences[idx[b]] = mean_normalised(top[r], m)
                missed[idx[b]] = [k for k in range(len(m)) if not m[k].any()]
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

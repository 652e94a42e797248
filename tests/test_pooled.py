"""rag.model.pooled: sentence vectors from the passage's own forward pass (late chunking, top layers per sentence)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rag.model.pooled import allow_masks, char_positions, encode_pooled, token_masks
from rag.text import split_sentences

KO = "서울은 한국의 수도이다. 부산은 바다가 보이는 항구 도시이다. 제주도는 감귤로 유명한 섬이다."
EN = "Paris is the capital of France. Berlin lies on the river Spree. Rome was not built in a day."


def _sentence_tokens(embedder: Any, text: str) -> list[str]:
    """The tokens each sentence of ``text`` is pooled from, decoded back to text."""
    prompt = embedder.passage_prompt
    tok = embedder.model.tokenizer
    enc = tok(prompt + embedder.prenormalize(text), return_offsets_mapping=True)
    offsets = np.asarray(enc["offset_mapping"])
    pos = char_positions(text, embedder.prenormalize)
    spans = [(s + len(prompt), e + len(prompt)) if pos is None else (int(pos[s]) + len(prompt),
             int(pos[e]) + len(prompt)) for s, e in split_sentences(text)]
    masks = token_masks(offsets, spans)
    ids = np.asarray(enc["input_ids"])
    return [tok.decode(ids[m].tolist()).strip() for m in masks]


@pytest.mark.parametrize("text", [KO, EN])
def test_offsets_select_exactly_each_sentences_tokens(embedder: Any, text: str) -> None:
    decoded = _sentence_tokens(embedder, text)
    assert decoded == [text[s:e] for s, e in split_sentences(text)]


def test_passage_vector_is_the_models_and_sentences_point_at_their_topic(embedder: Any) -> None:
    spans = [split_sentences(t) for t in (KO, EN)]
    passages, sentences = encode_pooled(embedder, [KO, EN], spans)
    np.testing.assert_allclose(np.sum(passages * embedder.encode_passages([KO, EN]), axis=1), 1.0, atol=1e-4)
    assert [s.shape for s in sentences] == [(3, 384), (3, 384)]
    np.testing.assert_allclose(np.linalg.norm(sentences[1], axis=1), 1.0, atol=1e-5)
    q = embedder.encode_queries(["Which river flows through Berlin?", "귤로 유명한 섬은?"])
    assert int(np.argmax(sentences[1] @ q[0])) == 1 and int(np.argmax(sentences[0] @ q[1])) == 2


def test_top_layers_attend_within_each_sentence() -> None:
    # tokens: [CLS] p p | a a | b b b | [SEP] pad  (two sentences; pad is padding)
    masks = np.zeros((2, 11), dtype=bool)
    masks[0, 3:5] = True
    masks[1, 5:8] = True
    attention = np.array([[1] * 9 + [0, 0]])[:, :11]
    allow = allow_masks([masks], attention)[0]
    assert allow[3, 4] and not allow[3, 5] and not allow[6, 3]  # a sentence sees only itself...
    assert allow[3, 0] and allow[6, 8] and allow[0, 6]  # ...and the prompt/special tokens, which see all
    assert not allow[:, 9:].any() and allow[9, :9].all()  # nobody attends to padding


def test_top_layers_make_a_sentence_vector_closer_to_the_sentence_alone(embedder: Any) -> None:
    """The reason for the top layers: plain late chunking (the mean of the passage's own top states)
    leaves a sentence's vector near its passage; the top layers run again within the sentence bring
    it towards the sentence encoded on its own, which is what a question about it matches."""
    import rag.model.pooled as pooled

    texts = [KO, EN]
    spans = [split_sentences(t) for t in texts]
    _, top = encode_pooled(embedder, texts, spans)
    alone = [embedder.encode_passages([t[s:e] for s, e in sp]) for t, sp in zip(texts, spans, strict=True)]
    # plain late chunking: every token may attend everywhere in the top layers too
    everywhere = pooled.allow_masks
    try:
        pooled.allow_masks = lambda masks, attention: everywhere([m[:0] for m in masks], attention)
        _, plain = encode_pooled(embedder, texts, spans)
    finally:
        pooled.allow_masks = everywhere
    for a, t, p in zip(alone, top, plain, strict=True):
        near_top, near_plain = np.sum(a * t, axis=1), np.sum(a * p, axis=1)
        assert np.all(near_top > near_plain + 0.01), (near_top, near_plain)


def test_a_sentence_cut_by_truncation(embedder: Any) -> None:
    filler = " ".join(f"Sentence number {i} talks about nothing in particular." for i in range(70))
    text = f"{filler} The last sentence mentions volcanic islands near Iceland."
    spans = split_sentences(text)
    n_tokens = len(embedder.model.tokenizer(embedder.passage_prompt + text)["input_ids"])
    assert n_tokens > embedder.max_tokens  # the window cuts the passage
    cut = next(k for k, (s, e) in enumerate(spans) if len(embedder.model.tokenizer(
        embedder.passage_prompt + text[:e])["input_ids"]) > embedder.max_tokens)
    _, sentences = encode_pooled(embedder, [text], [spans])
    vecs = sentences[0]
    assert vecs.shape == (len(spans), 384) and np.all(np.abs(np.linalg.norm(vecs, axis=1) - 1) < 1e-4)
    # the sentence the window cuts keeps the tokens that fit; one wholly past it is embedded on its own
    alone = embedder.encode_passages([text[s:e] for s, e in spans[cut:]])
    assert float(vecs[cut] @ alone[0]) < 0.999
    np.testing.assert_allclose(vecs[-1], alone[-1], atol=1e-4)


def test_token_masks_and_character_map() -> None:
    offsets = np.array([[0, 0], [0, 3], [3, 5], [6, 9], [9, 10], [0, 0]])
    masks = token_masks(offsets, [(0, 5), (6, 10)])
    assert masks.tolist() == [[False, True, True, False, False, False], [False, False, False, True, True, False]]
    expand = str.maketrans({"ﬁ": "fi"})
    pos = char_positions("a ﬁne day", lambda t: t.translate(expand))
    assert pos is not None and pos.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert char_positions("plain", lambda t: t) is None


def test_sentences_alone_embed_an_overlapping_sentence_once(embedder: Any) -> None:
    """Neighbouring passages share a sentence (chunk overlap): encoded alone, it goes through the
    model once, and both passages get the vector it has on its own."""
    seen: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(embedder, name)

        def encode_passages(self, texts: list[str], progress: Any = None) -> np.ndarray:
            seen.extend(texts)
            return embedder.encode_passages(texts, progress=progress)

    shared = "부산은 바다가 보이는 항구 도시이다."
    first, second = f"서울은 한국의 수도이다. {shared}", f"{shared} 제주도는 감귤로 유명한 섬이다."
    spans = [split_sentences(first), split_sentences(second)]
    _, sents = encode_pooled(Counting(), [first, second], spans, pooled=False)
    assert seen.count(shared) == 1 and len(seen) == 2 + 3  # two passages, three distinct sentences
    alone = embedder.encode_passages([shared])[0]
    assert float(sents[0][1] @ alone) > 0.9999 and float(sents[1][0] @ alone) > 0.9999


def test_long_texts_go_in_smaller_batches() -> None:
    """A batch stops at ``batch_size`` texts or where count x longest would pass the budget;
    every text is in exactly one batch, in the given (longest-first) order."""
    from rag.model.batching import batches

    lengths = [3000, 1000, 500, 400, 300, 100, 50, 50, 50, 10, 10]
    got = batches(lengths, batch_size=4, budget=1024)
    assert [len(lengths[s]) for s in got] == [1, 1, 2, 3, 4]
    assert all(len(lengths[s]) * lengths[s][0] <= 1024 or len(lengths[s]) == 1 for s in got)
    assert [i for s in got for i in range(len(lengths))[s]] == list(range(len(lengths)))
    assert batches([], 32) == [] and len(batches([10] * 100, 32, budget=10**9)) == 4

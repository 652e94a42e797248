"""Chunking time on hostile texts (1 MB without whitespace, one 1 MB line), JSON to stdout.

    python bench/chunking.py [--mb 1]

Times the default token estimate and the bundled model's tokenizer (the one `rag index` uses),
and a 100 KB text of the same kind as a baseline measured in the same run: linear chunking
keeps ``ratio`` (1 MB time / 100 KB time) near 10.
"""

from __future__ import annotations

import argparse
import json
import time

from rag.config import Settings
from rag.ingest.chunking import approx_tokens, chunk
from rag.model.embed import load_tokenizer_only
from rag.records import Document

KINDS = {"latin": "abcdefghij", "hangul": "가나다라마바사아자차", "one-line": "word "}


def _text(kind: str, nbytes: int) -> str:
    unit = KINDS[kind]
    return unit * max(1, nbytes // len(unit.encode()))


def _seconds(text: str, counter: object) -> float:
    t0 = time.perf_counter()
    chunk(Document(doc_id="x", text=text), 256, 1, counter)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    model = load_tokenizer_only(Settings())
    model("warm-up")
    out = []
    for kind in KINDS:
        for name, counter in (("approx", approx_tokens), ("model", model)):
            small = _seconds(_text(kind, int(args.mb * 100_000)), counter)
            big = _seconds(_text(kind, int(args.mb * 1_000_000)), counter)
            out.append({"text": kind, "counter": name, "mb": args.mb, "seconds": round(big, 2),
                        "baseline_tenth_seconds": round(small, 3), "ratio": round(big / max(small, 1e-6), 1)})
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()

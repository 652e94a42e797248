"""A folder of hostile article files, made fresh by each test that needs one.

Each entry is a file that once aborted or hung ``rag index`` (issue 17): deep
nesting, huge numbers, symlink loops, a FIFO, files over the size limit, plus
two good articles (one of them UTF-16) that must still be indexed.
"""

from __future__ import annotations

import os
from pathlib import Path

GOOD = {
    "good.md": "---\ntitle: Busan port\n---\nBusan port handled record container traffic in May.\n",
    "utf16.txt": "부산항 물동량\n\n부산항은 5월에 사상 최대 컨테이너 물동량을 처리했다.\n",
}
# file name -> words its Problem message must contain
BAD = {
    "deep-front.md": "nested too deeply",
    "deep.jsonl": "nested too deeply",
    "bigint.jsonl": "invalid JSON",
    "loop-a.md": "cannot read file",
    "loop-b.md": "cannot read file",
    "self.md": "cannot read file",
    "dangling.md": "cannot read file",
    "pipe.md": "FIFO",
    "huge.txt": "RAG_MAX_FILE_BYTES",
    "longline.jsonl": "RAG_MAX_LINE_BYTES",
}


def make_hostile_corpus(folder: Path) -> Path:
    """Write the hostile corpus into ``folder``; return it. Needs a POSIX file system (FIFO, symlinks)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.md").write_text(GOOD["good.md"], encoding="utf-8")
    (folder / "utf16.txt").write_bytes(GOOD["utf16.txt"].encode("utf-16"))  # with a BOM, as Notepad saves
    (folder / "deep-front.md").write_text("---\ntitle: " + "[" * 5000 + "]" * 5000 + "\n---\nBody text.\n")
    (folder / "deep.jsonl").write_text("[" * 100_000 + "\n")
    (folder / "bigint.jsonl").write_text('{"id": ' + "9" * 5000 + ', "text": "Some text."}\n')
    os.symlink("loop-b.md", folder / "loop-a.md")
    os.symlink("loop-a.md", folder / "loop-b.md")
    os.symlink("self.md", folder / "self.md")
    os.symlink("missing.md", folder / "dangling.md")
    os.mkfifo(folder / "pipe.md")
    with open(folder / "huge.txt", "wb") as fh:  # sparse: 25 MB on paper, nothing on disk
        fh.truncate(25_000_000)
    (folder / "longline.jsonl").write_text('{"id": "long", "text": "' + "가" * 1_000_000 + '"}\n')
    (folder / "sub").mkdir()
    os.symlink("..", folder / "sub" / "up")  # a folder loop: never followed
    return folder

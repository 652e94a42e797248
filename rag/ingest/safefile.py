"""Reading one corpus file without trusting it: its type, its size, its encoding.

``read_bytes`` refuses what must not be opened (a FIFO would block forever;
devices, sockets, symlink loops) and files over ``Settings.max_file_bytes``,
before reading; ``decode`` accepts UTF-8 (BOM or not), UTF-16 with a BOM and
legacy Korean cp949/euc-kr. Every refusal is a :class:`Skip` whose message says
what to fix; ``rag.ingest.corpus`` turns it into a reported, skipped file. Parsing the
text is not done here.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from rag.text import has_hangul

MAX_FILE_BYTES = 20_000_000  # Settings.max_file_bytes: larger files are skipped and reported
MAX_LINE_BYTES = 2_000_000  # Settings.max_line_bytes: longer JSONL lines are skipped and reported


class Skip(Exception):
    """This file or record cannot be used (``rag.ingest.corpus`` reports it as a Problem)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else legacy Korean cp949/euc-kr; anything else
    is skipped."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and not data.startswith(b"\xff\xfe\x00\x00"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise Skip(f"not valid UTF-16 (offset {e.start}); re-save the file as UTF-8") from None
    if b"\x00" in data:
        raise Skip("binary file (contains NUL bytes); only UTF-8 text articles can be indexed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        err = e
    try:
        legacy = data.decode("cp949")
    except UnicodeDecodeError:
        legacy = ""
    if legacy and has_hangul(legacy) and not re.search(r"[\x00-\x08\x0e-\x1f]", legacy):
        return legacy
    raise Skip(
        f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}) nor Korean cp949/euc-kr; "
        "re-save the file as UTF-8"
    )


def check_file(path: Path, max_bytes: int) -> None:
    """Skip what must not be opened: FIFOs (opening one waits forever), devices, sockets, symlink
    loops, and files over the size limit."""
    try:
        st = path.stat()
    except OSError as e:  # ELOOP for a symlink loop, ENOENT for a dangling link
        raise Skip(f"cannot read file: {e.strerror or e}") from None
    except RuntimeError:  # some Python versions raise this for symlink loops
        raise Skip("cannot read file: symbolic link loop") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise Skip(f"{kind}, not an article file; skipped")
    if st.st_size > max_bytes:
        raise Skip(f"file is {st.st_size:,} bytes, over the limit of {max_bytes:,} (RAG_MAX_FILE_BYTES); "
                    "split it or raise the limit")


def read_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    check_file(path, max_bytes)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Skip(f"cannot read file: {e.strerror or e}") from None
    if not data.strip():
        raise Skip("empty file")
    return data


def reason(e: BaseException) -> str:
    """An unexpected exception as one short line: its type and (trimmed) message."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__

"""A new user's first run: clean packaging, a README that lists every setting, a clean Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting_and_the_port_recipe() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"RAG_{f.name.upper()}" for f in fields(Settings) if f"`RAG_{f.name.upper()}`" not in readme]
    assert not missing, f"README.md's settings table lacks {missing}"
    assert "RAG_PORT=7861 make run" in readme


@pytest.mark.slow
def test_wheel_builds_without_packaging_warnings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    top = {".venv", ".git", "index", "data", "build", "notes"}

    def skip(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if (Path(folder) == ROOT and n in top) or n.endswith((".egg-info", "cache__"))
                or (n.startswith(".") and n.endswith("cache"))}

    shutil.copytree(ROOT, src, ignore=skip)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    assert "absent from" not in log and "BuildBackendWarning" not in log, log[-3000:]
    wheel = next((tmp_path / "wheel").glob("rag-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "rag/data/background.txt" in names and "rag/py.typed" in names


@pytest.mark.slow
def test_ctrl_c_says_the_server_stopped(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(tmp_path / "no-index"),
           "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_PORT": str(port)}
    code = "import sys; from rag.cli import main; sys.exit(main(['serve']))"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while "ready at" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert f":{port}/" in line, line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "server stopped" in err and "서버를 멈췄습니다" in err, err[-1500:]
    assert "unchanged" not in err and "Traceback" not in err, err[-1500:]

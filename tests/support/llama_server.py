"""llama.cpp's own `llama-server` on the demo model, for tests that need the real server (token mode, its
grammars). .ci/run builds it from the llama.cpp source that PyPI's llama-cpp-python sdist carries and sets
LLAMA_SERVER_BIN (the binary) and LLAMA_CPP_DIR (that source: its convert_hf_to_gguf.py and gguf-py turn
the demo checkpoint into the GGUF file the server loads)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit.net import free_port

START_S = 120  # loading a 200 MB GGUF; polled, so a quick start is not held up
NOT_BUILT = ("llama.cpp's llama-server is not built here: .ci/run builds it from the llama-cpp-python sdist "
             "and sets LLAMA_SERVER_BIN and LLAMA_CPP_DIR")


def gguf_of(checkpoint: Path, out: Path) -> Path:
    """The checkpoint as a GGUF file, by llama.cpp's own converter (f32: the same numbers as transformers)."""
    source = Path(os.environ["LLAMA_CPP_DIR"])
    env = {**os.environ, "PYTHONPATH": str(source / "gguf-py"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(source / "convert_hf_to_gguf.py"), str(checkpoint), "--outfile",
                           str(out), "--outtype", "f32"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@contextmanager
def llama_server(checkpoint: Path, workdir: Path):
    """A running llama-server on the checkpoint; yields its root URL."""
    binary = os.environ.get("LLAMA_SERVER_BIN")
    if not binary or not os.environ.get("LLAMA_CPP_DIR"):
        pytest.skip(NOT_BUILT)
    model = gguf_of(checkpoint, workdir / "model.gguf")
    port = free_port()
    with open(workdir / "llama-server.log", "w") as log:
        proc = subprocess.Popen([binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "8192",
                                 "-np", "2", "--threads", "2"], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_S
            while not _healthy(url):
                assert proc.poll() is None, f"llama-server exited; see {workdir / 'llama-server.log'}"
                assert time.monotonic() < deadline, "llama-server did not become healthy"
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False

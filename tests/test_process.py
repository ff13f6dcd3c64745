"""`python app.py` as a process: falls back to the demo model offline; survives kill -9 mid-answer."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.net import free_port
from tests.conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")
START_TIMEOUT_S = 240  # the first start builds the demo model folder


def start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log = open(data_dir / f"app-{port}.log", "ab")
    return subprocess.Popen([sys.executable, "app.py", "--data-dir", str(data_dir), "--port", str(port),
                             "--save-interval-s", "0.05"], cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_ready(url: str, proc: subprocess.Popen):
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        assert proc.poll() is None, "the app exited"
        try:
            client = gradio_client.Client(url, verbose=False)
            status = client.predict(api_name="/status")[0]
            if "Loading" not in status:
                return client, status
        except Exception:  # not up yet
            pass
        time.sleep(1)
    raise TimeoutError("the app did not become ready")


def test_offline_start_uses_the_demo_model_and_survives_kill_9(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start(tmp_path, port)
    try:
        client, status = wait_ready(url, proc)
        assert "demo model" in status and "To run gpt-oss-20b" in status
        job = client.submit("Count the letter r in strawberry.", "", "high", "", 1.0, 4000, api_name="/send")
        db = sqlite3.connect(tmp_path / "chat.db")
        deadline, partial = time.time() + 60, None
        while time.time() < deadline and not partial:
            row = db.execute("SELECT reasoning, status FROM messages WHERE role='assistant'").fetchone()
            if row and row[0] and row[1] == "streaming":
                partial = row[0]
            time.sleep(0.005)
        assert partial, "no partial answer was saved while streaming"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        del job
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = start(tmp_path, port)
    try:
        client, _ = wait_ready(url, proc)
        conversations = client.predict(api_name="/list_conversations")
        conv = client.predict(conversations[0]["id"], api_name="/open_conversation")
        user, answer = conv["messages"]
        assert user["content"] == "Count the letter r in strawberry."
        assert answer["status"] == "interrupted" and answer["reasoning"].startswith(partial[:10])
    finally:
        proc.kill()
        proc.wait(10)
    for private in (tmp_path, tmp_path / "chat.db", tmp_path / "chat.db-wal", tmp_path / "demo-model"):
        if private.exists():
            assert private.stat().st_mode & 0o077 == 0, f"{private.name} is readable by others"
    log = (tmp_path / f"app-{port}.log").read_text()
    assert "database schema" in log and "model ready: demo model" in log  # what a person needs
    for chatter in ("setup plugin", "bos_token_id", "eos_token_id", "ContinuousBatchingLogger", "httpx"):
        near = [line for line in log.splitlines() if chatter in line]
        assert chatter not in log, f"start-up log still prints {chatter!r}: {near}"


def test_sigterm_saves_an_answer_in_progress_as_interrupted(tmp_path):
    port = free_port()
    proc = start(tmp_path, port)
    try:
        client, _ = wait_ready(f"http://127.0.0.1:{port}/", proc)
        client.submit("Count the letter r in strawberry.", "", "high", "", 1.0, 4000, api_name="/send")
        db = sqlite3.connect(tmp_path / "chat.db")
        deadline = time.time() + 60
        while time.time() < deadline and not db.execute(
                "SELECT 1 FROM messages WHERE role='assistant' AND status='streaming'").fetchone():
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)  # docker stop, systemd, a Space restart
        assert proc.wait(30) is not None  # it stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    status = sqlite3.connect(tmp_path / "chat.db").execute(
        "SELECT status FROM messages WHERE role='assistant'").fetchone()[0]
    assert status == "interrupted"  # saved as after a crash, never left "streaming"
    assert "stopped" in (tmp_path / f"app-{port}.log").read_text()

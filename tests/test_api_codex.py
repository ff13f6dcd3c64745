"""Codex CLI (`@openai/codex` from npm) pointed at the app's Responses API: one non-interactive run
completes against the model (the forced tiny model here: the protocol is the point, not the answer)."""

import os
import shutil
import subprocess

import pytest

from core.config import Config
from testkit.net import free_port

CODEX = os.environ.get("CODEX_BIN") or shutil.which("codex")


@pytest.mark.skipif(not CODEX, reason="no Codex CLI (npm install -g @openai/codex; .ci/run installs it)")
def test_codex_exec_completes_against_the_app(launched, tmp_path):
    config = Config(data_dir=str(tmp_path / "data"), port=free_port(), max_new_tokens=400)
    parts = launched(config)
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "tiny-test"\nmodel_provider = "app"\nweb_search = "disabled"\n\n[model_providers.app]\nname = "gpt-oss chat"\n'
        f'base_url = "http://127.0.0.1:{config.port}/v1"\nwire_api = "responses"\n')
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "Say hello."], cwd=work, capture_output=True,
                         text=True, timeout=240, env={**os.environ, "CODEX_HOME": str(home), "NO_COLOR": "1"})
    print(run.stdout[-3000:], run.stderr[-3000:])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Hello! <b>How</b> can I help?" in run.stdout + run.stderr
    requests = [e for e in parts.oversight.audit.store.entries() if e.action == "api_request"]
    assert requests

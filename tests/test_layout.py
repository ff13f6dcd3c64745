"""ui/layout.py: the page's own script parses (one syntax error would silently take every guard in it
with it: the IME Enter guard, the branch arrows, the answer's copy button, the finished-answer notices)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ui.layout import HEAD


def test_the_pages_script_parses(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs it for Codex CLI)")
    script = tmp_path / "head.js"
    script.write_text(HEAD.removeprefix("<script>").removesuffix("</script>"))
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr

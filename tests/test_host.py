"""The model host: loads in the background, reports progress, and fails with a plain sentence."""

from backend.serving.host import MODEL_FAILED, ModelHost
from core.errors import GenerationError, ModelLoadError
from ui.status import status_markdown


def failing(message):
    def build(progress):
        progress("Loading weights of /srv/secret/models/gpt-oss", None)
        raise ModelLoadError(message)
    return build


def test_a_failed_load_tells_visitors_a_plain_sentence_and_the_operator_why(codec):
    host = ModelHost(failing("Could not load '/srv/secret/models/gpt-oss': out of memory"), codec, {})
    host.start(background=False)
    status = host.status()
    assert status.state == "failed" and status.error == MODEL_FAILED and "/srv/secret" in status.detail
    assert "/srv/secret" not in status_markdown(status)  # what a visitor sees
    assert "/srv/secret" in status_markdown(status, details=True)  # the one local user runs the server
    try:
        host.worker()
    except GenerationError as exc:
        assert "/srv/secret" not in exc.user_message and MODEL_FAILED in exc.user_message
    else:
        raise AssertionError("a failed host handed out a worker")


def test_an_unexpected_error_is_no_traceback_on_the_page(codec):
    def broken(progress):
        raise RuntimeError("CUDA driver /usr/lib/libcuda.so.1 exploded")

    host = ModelHost(broken, codec, {})
    host.start(background=False)
    assert host.status().error == MODEL_FAILED and "libcuda" in host.status().detail


def test_progress_then_ready(make_host):
    host = make_host()
    status = host.status()
    assert status.state == "ready" and status.description.model == "tiny-test"

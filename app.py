"""gpt-oss chat: start the web app. Wiring only; the parts live in backend/, storage/ and ui/.

    python app.py --help
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from dataclasses import dataclass

from starlette.middleware import Middleware

from backend.api.service import OpenAIApi
from backend.engines.choose import build_engine_for
from backend.harmony.codec import HarmonyCodec
from backend.harmony.vocab import load_encoding
from backend.identity.signin import ClientAddressMiddleware, HFSignInAudit, SessionGuard, password_sign_in
from backend.identity.users import UserDirectory
from backend.observability.audit import Audit
from backend.observability.limits import Limits
from backend.observability.metrics import Metrics
from backend.observability.oversight import Oversight
from backend.services.admin import Admin, admin_names
from backend.services.chat import ChatService
from backend.services.conversations import Conversations, Sharing
from backend.services.policy import ReasoningPolicy
from backend.serving.host import ModelHost
from backend.tools.setup import build_toolbox
from core.config import Config, parse_config
from core.logs import setup_logging
from storage.api_keys import ApiKeys
from storage.audit import AuditStore
from storage.documents import Documents
from storage.repository import Repository
from storage.shares import Shares
from ui.guards import BodyLimit, HostCheck
from ui.identity import HF_PREFIX, LOCAL_OWNER, Identity
from ui.layout import CSS, HEAD, build_layout
from ui.routes import ApiErrors, PageSecurityHeaders, api_routes, http_routes
from ui.runtime import queue_events
from ui.wiring import wire

QUEUED_EVENTS_PER_CHAT = 4  # a chat's tab may have a turn's start, its stream and sidebar refreshes queued

@dataclass
class Parts:
    demo: object  # gr.Blocks
    host: ModelHost
    service: ChatService
    conversations: Conversations
    sharing: Sharing
    config: Config
    auth: object  # Gradio's auth= check for password users, or None (no login)
    identity: Identity  # who owns a request: the page's events and the plain HTTP routes agree
    documents: Documents  # what the browser tool searches offline (--browser-docs)
    api: OpenAIApi  # /v1: the same worker for programs
    oversight: Oversight  # per-user limits, the audit log, metrics
    admin: Admin  # the admin view's data, for --admins only

    @property
    def password_login(self) -> bool:
        return self.auth is not None


def build_app(config: Config, parts: Parts):
    hf_login = parts.identity.hf_login
    toolbox = parts.service.toolbox
    page = build_layout(config.max_new_tokens, config.share_link_expiry, config.share_link_reasoning, hf_login,
                        parts.password_login, toolbox.names, {**toolbox.unavailable, **toolbox.status()},
                        config.reasoning_display)
    with page.demo:
        wire(page, chat=parts.service, conversations=parts.conversations, sharing=parts.sharing, host=parts.host,
             identity=parts.identity, admin=parts.admin,
             concurrency=QUEUED_EVENTS_PER_CHAT * (config.max_active + config.max_waiting),
             details=not (parts.password_login or hf_login))  # the one local user runs the server: show why
    return page.demo


def create(config: Config, build_engine=None) -> Parts:
    """Everything but launching: used by main and by the tests (which pass their own build_engine)."""
    codec = HarmonyCodec(load_encoding(config.data_path / "vocab"))
    repo = Repository.open(config.db_url)
    build_engine = build_engine or build_engine_for(config, codec)
    host = ModelHost(build_engine, codec, dict(max_active=config.max_active, max_waiting=config.max_waiting,
                                               time_limit_s=config.time_limit_s))
    host.start()
    oversight = build_oversight(config, repo, host)
    policy = ReasoningPolicy(config.reasoning_display, config.hidden_reasoning)
    oversight.audit.policy(config.reasoning_display)  # logged when it changed since the last start
    auth = password_sign_in(config.users_path, on_result=sign_in_result(oversight))  # read once: page and login agree
    documents = Documents(repo)
    toolbox = build_toolbox(config, documents, several_users=auth is not None or config.hf_login)
    service = ChatService(repo, host, config.max_message_chars, config.save_interval_s, toolbox,
                          config.max_tool_calls, oversight=oversight, policy=policy)
    one_user = auth is None and not config.hf_login  # no users at all: the API needs no key either
    api = OpenAIApi(service.pipeline, ApiKeys(repo), keyless_owner=LOCAL_OWNER if one_user else None, store=config.api_store,
                    max_new_tokens=config.max_new_tokens,
                    is_user=UserDirectory(config.users_path, hf_login=config.hf_login, hf_prefix=HF_PREFIX).has)
    admin = Admin(admin_names(config.admins), service, oversight.audit.store)
    parts = Parts(demo=None, host=host, config=config, documents=documents, service=service, api=api, admin=admin,
                  oversight=oversight, conversations=Conversations(repo, oversight.audit, policy),
                  sharing=Sharing(Shares(repo), oversight.audit, policy), auth=auth,
                  # Password users (a users file) gate the whole app; HF sign-in only without them.
                  identity=Identity(hf_login=config.hf_login and auth is None))
    parts.demo = build_app(config, parts)
    return parts


def build_oversight(config: Config, repo: Repository, host: ModelHost) -> Oversight:
    store = AuditStore(repo)
    audit = Audit(store, content=config.audit_content, retention_days=config.audit_retention_days)
    metrics = Metrics()
    metrics.watch(host)
    return Oversight(audit, Limits(store, messages_per_minute=config.limit_messages_per_minute,
                                   tokens_per_day=config.limit_tokens_per_day), metrics)


def sign_in_result(oversight: Oversight):
    def heard(name: str, outcome: str, address: str) -> None:
        oversight.audit.record(name, "sign_in", outcome=outcome, address=address)
        if outcome != "ok":
            oversight.metrics.sign_in_failures.inc()
    return heard


def launch(parts: Parts, **kwargs) -> None:
    """Serve the page, with /healthz and the share-link pages beside it (outside the login)."""
    config = parts.config
    if parts.password_login:  # password users: end sessions of removed users, changed passwords, old ones
        SessionGuard(config.users_path, config.session_hours * 3600).watch(
            lambda: parts.demo.server_app.tokens if getattr(parts.demo, "is_running", False) else None)
    # Bounded: beyond the worker's capacity a chat is refused at once ("busy"), never parked unseen. The
    # queue itself holds every tab's events (starting a turn, its stream, the sidebar's refresh), so it
    # is sized for several per chat.
    capacity = config.max_active + config.max_waiting
    if config.metrics_port:  # Prometheus scrapes a port of its own (keep it private: no token there)
        from prometheus_client import start_http_server
        start_http_server(config.metrics_port, addr=config.host, registry=parts.oversight.metrics.registry)
    queue_events(parts.demo, capacity, QUEUED_EVENTS_PER_CHAT * capacity)
    # Gradio runs at most `max_threads` queued events at once (default 40), whatever their concurrency
    # limits: each chat's stream holds one for its whole answer, so 40 would cap the chats shown at 40
    # and make the 41st wait for someone's answer to end. (Streams are async: no thread each.)
    # Everything built so far (Gradio's blocks and schemas, the services, the imports) lives as long as
    # the process: frozen, it is no longer walked by every full collection. Measured with
    # bench.app_ceiling (in-process, seven alternating pairs): the start of 16 chats at once, p95
    # 208-294 ms frozen against 190-527 ms (mostly ~500: a collection mid-burst) without.
    gc.freeze()
    # Gradio builds uvicorn's Config without this setting; uvicorn reads it from the environment then.
    os.environ["FORWARDED_ALLOW_IPS"] = config.forwarded_allow_ips
    parts.demo.launch(server_name=config.host, server_port=config.port, share=config.share, css=CSS, head=HEAD,
                      auth=parts.auth, max_threads=QUEUED_EVENTS_PER_CHAT * capacity,
                      # Our handlers turn every failure into a sentence (ui/errors.py); this shows Gradio's own
                      # input checks too ("Expected a float, but ... 'lots'"), which were "error: null".
                      show_error=True,
                      app_kwargs=app_kwargs(parts), **kwargs)


def app_kwargs(parts: Parts) -> dict:
    """What Gradio's FastAPI app gets besides the page: /healthz, /s/<token>, /v1 (API keys) and
    /metrics (its token) outside the login, the client address for sign-in throttling, and (with
    --hide-api) no OpenAPI listing."""
    kwargs = {"routes": http_routes(parts.sharing, parts.host, parts.conversations, parts.identity,
                                    parts.password_login, parts.documents) +
              api_routes(parts.api, parts.oversight.metrics, parts.config.metrics_token),
              "middleware": [Middleware(BodyLimit), Middleware(ClientAddressMiddleware), Middleware(PageSecurityHeaders),
                             Middleware(ApiErrors)]}
    if parts.api.keyless_owner:  # no users: answer only to names that cannot be rebound (ui/guards.py)
        kwargs["middleware"].insert(0, Middleware(HostCheck, allowed=parts.config.allowed_hosts))
    if parts.identity.hf_login:  # HF sign-ins go to the audit log too (password ones are heard by the check)
        kwargs["middleware"].append(Middleware(HFSignInAudit, on_result=sign_in_result(parts.oversight),
                                               prefix=HF_PREFIX))
    if parts.config.hide_api:
        kwargs.update(openapi_url=None, docs_url=None, redoc_url=None)
    return kwargs


def _stop_on_signals(parts: Parts) -> None:
    """SIGTERM (docker stop, systemd, a Space restart) and Ctrl-C end the server the same way:
    answers being written are saved at once as "interrupted" (as after a crash), then Gradio closes."""
    def handler(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # once: a second signal must not cut the saving short
        parts.service.shutdown()
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def private_files(data_dir) -> None:
    """Chats, exports and users are the users' business: everything this process creates is readable
    by its own account only (files 0600, folders 0700), the data folder included."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(argv)
    setup_logging()
    private_files(config.data_path)
    parts = create(config)
    _stop_on_signals(parts)
    try:
        launch(parts)  # blocks; Gradio closes its server on Ctrl-C / SIGTERM and returns
    finally:
        # Answers being written are saved as "interrupted" (as after a crash), never left "streaming".
        parts.service.shutdown()
        parts.host.close()
        logging.getLogger(__name__).info("stopped")


if __name__ == "__main__":
    main(sys.argv[1:])

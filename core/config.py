"""Configuration: one dataclass, filled from flags and GPT_OSS_CHAT_* env vars in main.

Nothing is read at import time. Limits are named constants, checked at the
boundary (ui handlers and worker submit), never scattered as literals.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints

DEFAULT_MODEL = "openai/gpt-oss-20b"
ENV_PREFIX = "GPT_OSS_CHAT_"
SPACE_STORAGE = "/data"  # where a Hugging Face Space mounts its persistent storage

# Defaults typed once: the page, the chat service, harmony and the API all read them from here.
EFFORTS = ("low", "medium", "high")  # harmony's reasoning efforts
DEFAULT_EFFORT = "medium"
DEFAULT_TEMPERATURE = 1.0  # gpt-oss's recommended sampling: temperature 1.0, top_p 1.0
# The bundled demo model's page default: the tiny model is right 418/420 at 0.3 against 390/420 at
# 1.0 (README, "The demo model"); at 1.0 a rare token outside what it learned gets drawn now and then.
DEMO_TEMPERATURE = 0.3
DEFAULT_TOP_P = 1.0
DEFAULT_SHARE_EXPIRY = "7 days"

# Limits (checked at the boundary)
MAX_MESSAGE_CHARS = 32_000
MAX_NEW_TOKENS_LIMIT = 32_768  # the page's slider
MODEL_WINDOW = 131_072  # gpt-oss's context window (max_position_embeddings): an API request's budget at most
DEFAULT_MAX_NEW_TOKENS = 4_096
MAX_INSTRUCTIONS_CHARS = 16_000
MAX_TITLE_CHARS = 200
MAX_SEARCH_CHARS = 500
TEMPERATURE_RANGE = (0.0, 2.0)
ENGINES = ("transformers", "openai")
SERVER_APIS = ("auto", "completions", "llamacpp", "chat", "ollama")
SHARE_LINK_EXPIRIES = ("1 hour", "1 day", "7 days", "never")
REASONING_DISPLAYS = ("raw", "summary", "hidden")  # what users (page, API, shares, exports) see of the reasoning
HIDDEN_REASONING = ("keep", "drop")  # not raw: is the raw reasoning still stored on the server?
SAVE_INTERVAL_S = 2.0  # how often a streaming answer is saved: the most a crash can lose


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    quantization: str = "auto"  # auto | bf16 | bnb-4bit | bnb-8bit
    engine: str = "transformers"  # transformers (in-process) | openai (an inference server)
    base_url: str = "http://127.0.0.1:8000/v1"  # --engine openai: the server's OpenAI-compatible API
    api_key: str = ""  # --engine openai: sent as a bearer token
    served_model: str = ""  # --engine openai: the server's model name; empty: the first it lists
    server_api: str = "auto"  # --engine openai: auto | completions / llamacpp (token ids) | chat | ollama
    server_timeout_s: float = 120.0  # --engine openai: longest silence from the server
    server_wait_s: float = 300.0  # --engine openai: how long to wait at start for a server still loading
    device_map: str = "auto"
    data_dir: str = "data"
    database_url: str = ""  # empty: sqlite file in data_dir
    host: str = "127.0.0.1"
    port: int = 7860
    max_active: int = 32  # requests decoding at once in the engine
    max_waiting: int = 64  # requests queued behind them; beyond that: "busy"
    time_limit_s: float = 600.0
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    max_message_chars: int = MAX_MESSAGE_CHARS
    max_batch_tokens: int | None = None  # continuous batching; None = transformers decides
    num_blocks: int | None = None
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses or networks, * for any):
    # sign-in throttling and the audit log see the real client behind them. uvicorn's own default.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # With no users (no login, no keys): host names the app answers to besides localhost and IP
    # addresses, against DNS rebinding (comma-separated; * for any)
    allowed_hosts: str = ""
    session_hours: float = 168.0  # a password sign-in lasts at most this long (7 days), then log in again
    hide_api: bool = False  # no /openapi.json or /docs listing of the server's routes
    share: bool = False  # Gradio's temporary public tunnel to the whole app (needs internet)
    users_file: str = ""  # JSON of password users (python -m backend.identity.users add NAME); empty: no login
    hf_login: bool = False  # "Sign in with Hugging Face"; on by itself on a Space with hf_oauth: true
    share_link_expiry: str = DEFAULT_SHARE_EXPIRY  # default expiry offered for share links: 1 hour | 1 day | 7 days | never
    share_link_reasoning: bool = False  # share links include reasoning by default?
    save_interval_s: float = SAVE_INTERVAL_S
    tools: str = "auto"  # tools that exist: python,browser,calculate,current_time | auto | none (see README)
    max_tool_calls: int = 8  # tool calls per turn before the turn ends
    tool_timeout_s: float = 30.0  # wall time of one python run (and of one MCP tool call)
    mcp_config: str = ""  # a JSON file of MCP servers ({"mcpServers": {...}}) whose tools the model may use
    browser_docs: str = ""  # a folder of Markdown/text/HTML/PDF the browser tool searches (offline)
    searxng_url: str = ""  # a self-hosted SearXNG the browser tool searches instead (web)
    exa_api_key: str = ""  # or Exa's search API (web; a key)
    reasoning_display: str = "raw"  # raw | summary | hidden: what users see of the model's reasoning
    hidden_reasoning: str = "keep"  # keep | drop: with summary/hidden, is the raw reasoning stored?
    api_store: bool = False  # API requests are saved as conversations (a request's "store" decides too)
    audit_content: bool = False  # the audit log keeps message text too (otherwise only who, what, when)
    audit_retention_days: int = 0  # audit entries older than this are removed; 0: kept
    metrics_token: str = ""  # serve Prometheus metrics on /metrics to this bearer token
    metrics_port: int = 0  # or on a port of their own (no token; keep it private); 0: off
    limit_messages_per_minute: int = 0  # per user, page and API together; 0: no limit
    limit_tokens_per_day: int = 0  # per user, prompt and answer tokens over 24 hours; 0: no limit
    admins: str = ""  # users who see the admin view (comma-separated names; hf:NAME for HF users)
    demo: bool = False  # run the bundled demo model
    model_in_app_process: bool = False  # run the model in the app's process (else its own: no shared GIL)
    model_explicit: bool = False  # set by parse_config: a named model never falls back to the demo

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def users_path(self):
        return Path(self.users_file) if self.users_file else self.data_path / "users.json"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'chat.db'}"


def add_database_flags(parser: argparse.ArgumentParser, users: bool = False) -> None:
    """The app's own database flags, for the command lines that open its database (keys, audit);
    with `users`, its --users-file too (whose users may own keys)."""
    parser.add_argument("--database-url", default="", help="as the app's --database-url (default: DATA_DIR/chat.db)")
    parser.add_argument("--data-dir", default="data")
    if users:
        parser.add_argument("--users-file", default="", help="as the app's --users-file (default: DATA_DIR/users.json)")


def users_path(args) -> Path:
    """The users file those flags name, by the app's own rule (Config.users_path)."""
    return Config(data_dir=args.data_dir, users_file=args.users_file).users_path


def database_url(args) -> str:
    """The URL those flags name, by the app's own rule (Config.db_url)."""
    return Config(data_dir=args.data_dir, database_url=args.database_url).db_url


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def field_type(hint, name: str) -> type:
    """The type a flag parses to, from the field's annotation (`X | None` parses as X)."""
    union = get_origin(hint) in (Union, UnionType)
    kinds = [t for t in get_args(hint) if t is not type(None)] if union else [hint]
    if len(kinds) != 1 or kinds[0] not in (bool, int, float, str):
        raise TypeError(f"Config.{name}: cannot parse a flag of type {hint}")
    return kinds[0]


def _defaults(environ) -> Config:
    """On a Hugging Face Space: listen on all interfaces, and keep data on persistent storage
    (/data) when the Space has it, so chats survive restarts."""
    if not environ.get("SPACE_ID"):
        return Config()
    data = SPACE_STORAGE if os.path.isdir(SPACE_STORAGE) and os.access(SPACE_STORAGE, os.W_OK) else "data"
    # A Space is reached only through Hugging Face's proxy: without trusting it, every visitor would
    # share the proxy's address (one sign-in throttle for all).
    return Config(host="0.0.0.0", data_dir=data, forwarded_allow_ips="*", allowed_hosts="*")


def parse_config(argv: list[str] | None = None, environ: dict | None = None) -> Config:
    """Flags win over env vars, which win over defaults."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(description="Chat with gpt-oss in the browser.")
    defaults, hints = _defaults(environ), get_type_hints(Config)
    for f in fields(Config):
        if f.name == "model_explicit":
            continue
        flag = "--" + f.name.replace("_", "-")
        env = environ.get(_env_name(f.name))
        default = getattr(defaults, f.name)
        if hints[f.name] is bool:
            parser.add_argument(flag, action="store_true", default=_parse_bool(env) if env else default)
            continue
        kind = field_type(hints[f.name], f.name)
        value = kind(env) if env else default
        parser.add_argument(flag, type=kind, default=value, help=f"env {_env_name(f.name)}")
    args = parser.parse_args(argv)
    named = any(a == "--model" or a.startswith("--model=") for a in (argv or [])) or bool(environ.get(_env_name("model")))
    config = Config(**vars(args), model_explicit=named)
    # A Space with `hf_oauth: true` in its README gets OAUTH_CLIENT_ID: sign-in is then on by itself.
    config.hf_login = config.hf_login or bool(environ.get("SPACE_ID") and environ.get("OAUTH_CLIENT_ID"))
    for name, choices in (("engine", ENGINES), ("server_api", SERVER_APIS), ("share_link_expiry", SHARE_LINK_EXPIRIES),
                          ("reasoning_display", REASONING_DISPLAYS), ("hidden_reasoning", HIDDEN_REASONING)):
        if getattr(config, name) not in choices:
            parser.error(f"--{name.replace('_', '-')} must be one of: {', '.join(choices)}")
    if not 1 <= config.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        parser.error(f"--max-new-tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}")
    return config

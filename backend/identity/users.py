"""Password users for Gradio's login: a JSON file of salted PBKDF2 hashes, and a tiny CLI.

    python -m backend.identity.users add alice --file data/users.json   # asks for the password
    python -m backend.identity.users key create alice [--label laptop]  # an API key, shown once
    python -m backend.identity.users key list [alice]                   # keys by id, owner, prefix, use
    python -m backend.identity.users key revoke 3                       # the key with id 3 stops working

API keys live in the database (hashed), so `key` takes the app's --database-url or --data-dir.

With no users file the app stays a single local user with no login. Signing in is
backend/identity/signin.py (off the event loop, throttled).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from pathlib import Path

ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-SHA256
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    try:
        method, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if method != "pbkdf2_sha256":
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations)).hex()
    return hmac.compare_digest(candidate, digest)


def load_users(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.is_file() else {}


def add_user(path: Path, name: str, password: str, iterations: int = ITERATIONS) -> None:
    if not USERNAME.match(name):
        raise ValueError("user names are 1-64 letters, digits or _ . @ -")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"passwords need at least {MIN_PASSWORD} characters")
    users = load_users(path)
    users[name] = hash_password(password, iterations)
    save_users(path, users)


def save_users(path: Path, users: dict[str, str]) -> None:
    """Write whole or not at all (a crash never leaves half a file), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # owner-only from the first byte
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(users, indent=2))
    tmp.replace(path)


def key_command(argv: list[str]) -> None:
    from core.config import add_database_flags, database_url  # noqa: PLC0415 - the key commands only
    from core.errors import ChatError  # noqa: PLC0415
    from storage.api_keys import ApiKeys  # noqa: PLC0415
    from storage.repository import Repository  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m backend.identity.users key", description="Manage API keys.")
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("what", nargs="?", help="create: the user; list: a user (optional); revoke: the key id")
    parser.add_argument("--label", default="", help="create: a note to tell keys apart")
    add_database_flags(parser)
    args = parser.parse_args(argv)
    keys = ApiKeys(Repository.open(database_url(args)))
    try:
        if args.action == "create":
            if not args.what:
                parser.error("give the user the key is for")
            key, info = keys.create(args.what, args.label)
            print(f"API key {info.id} for {info.owner} (shown once; keep it secret):\n{key}")
        elif args.action == "list":
            for k in keys.list(args.what):
                state = "revoked" if k.revoked else f"last used {k.last_used or 'never'}"
                print(f"{k.id}\t{k.owner}\t{k.prefix}…\t{k.label}\tcreated {k.created}\t{state}")
        else:
            if not (args.what or "").isdigit():
                parser.error("give the id of the key to revoke (see `key list`)")
            info = keys.revoke(int(args.what))
            print(f"revoked API key {info.id} of {info.owner}")
    except ChatError as exc:
        parser.exit(2, f"error: {exc.user_message}\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["key"]:
        key_command(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Manage the app's password users (and, with `key`, API keys).")
    parser.add_argument("command", choices=["add", "remove", "list"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--file", default="data/users.json")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    path = Path(args.file)
    if args.command == "list":
        print("\n".join(sorted(load_users(path))))
        return
    if not args.name:
        parser.error("give a user name")
    if args.command == "remove":
        users = load_users(path)
        users.pop(args.name, None)
        save_users(path, users)
        return
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    try:
        add_user(path, args.name, password)
    except ValueError as exc:  # a person's mistake: a sentence, not a traceback
        parser.exit(2, f"error: {exc}\n")
    print(f"added {args.name} to {path}")


if __name__ == "__main__":
    main()

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
import logging
import os
import re
import secrets
import sys
from pathlib import Path

log = logging.getLogger(__name__)
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
    """name -> stored hash; {} where there is no file. A file that is not one says so (ValueError)."""
    if not path.exists():
        return {}
    try:
        users = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a users file this app can read ({exc.__class__.__name__}); "
                         "fix or remove it, then add users with `python -m backend.identity.users add NAME`") from exc
    if not isinstance(users, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in users.items()):
        raise ValueError(f"{path} is not a users file: it should map each user name to a password hash")
    return users


class UserDirectory:
    """Who may own an API key now: a user in the users file (re-read when the file changes, so a
    removed user's keys stop at their next request), or, with Hugging Face sign-in, an hf: name."""

    def __init__(self, path: Path, hf_login: bool = False, hf_prefix: str = "hf:"):
        self.path, self.hf_login, self.hf_prefix = path, hf_login, hf_prefix
        self._stamp: tuple | None = None
        self._names: frozenset[str] = frozenset()

    def has(self, name: str) -> bool:
        if name.startswith(self.hf_prefix):
            return self.hf_login
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            try:
                self._names = frozenset(load_users(self.path)) if stamp else frozenset()
            except ValueError:
                log.exception("the users file cannot be read: no password user's API key works until it is fixed")
                self._names = frozenset()
            self._stamp = stamp
        return name in self._names


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
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - the key commands only

    from core.config import add_database_flags, database_url, users_path  # noqa: PLC0415
    from core.errors import ChatError  # noqa: PLC0415
    from storage.api_keys import ApiKeys  # noqa: PLC0415
    from storage.repository import Repository  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m backend.identity.users key", description="Manage API keys.")
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("what", nargs="?", help="create: the user; list: a user (optional); revoke: the key id")
    parser.add_argument("--label", default="", help="create: a note to tell keys apart")
    add_database_flags(parser, users=True)
    args = parser.parse_args(argv)
    os.umask(0o077)  # a database this command creates is the owner's only, as the app's is
    try:
        if args.action == "create":
            if not args.what:
                parser.error("give the user the key is for")
            if not args.what.startswith("hf:") and not UserDirectory(users_path(args)).has(args.what):
                parser.exit(2, f"error: {args.what!r} is not a user in {users_path(args)}: add them first "
                               f"(python -m backend.identity.users add NAME), or name a Hugging Face user as hf:NAME\n")
            keys = ApiKeys(Repository.open(database_url(args), recover=False))
            key, info = keys.create(args.what, args.label)
            print(f"API key {info.id} for {info.owner} (shown once; keep it secret):\n{key}")
        elif args.action == "list":
            for k in ApiKeys(Repository.open(database_url(args), recover=False)).list(args.what):
                state = "revoked" if k.revoked else f"last used {k.last_used or 'never'}"
                print(f"{k.id}\t{k.owner}\t{k.prefix}…\t{k.label}\tcreated {k.created}\t{state}")
        else:
            if not (args.what or "").isdigit():
                parser.error("give the id of the key to revoke (see `key list`)")
            info = ApiKeys(Repository.open(database_url(args), recover=False)).revoke(int(args.what))
            print(f"revoked API key {info.id} of {info.owner}")
    except ChatError as exc:
        parser.exit(2, f"error: {exc.user_message}\n")
    except (ValueError, SQLAlchemyError) as exc:  # a users file or database this command cannot use
        parser.exit(2, f"error: {_first_line(exc)}\n")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]


def remove_user(path: Path, name: str, database: str | None) -> int:
    """Take `name` out of the users file and revoke their API keys (when the database exists): keys
    die with their user, so a later user of the same name does not inherit them. How many were revoked."""
    from storage.api_keys import ApiKeys  # noqa: PLC0415
    from storage.repository import Repository  # noqa: PLC0415

    users = load_users(path)
    users.pop(name, None)
    save_users(path, users)
    if database is None:
        return 0
    return ApiKeys(Repository.open(database, recover=False)).revoke_owner(name)


def existing_database(args) -> str | None:
    """The database the flags name, unless it is a SQLite file that does not exist (nothing to revoke:
    removing a user must not create one)."""
    from core.config import database_url  # noqa: PLC0415

    url = database_url(args)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return url


def main(argv: list[str] | None = None) -> None:
    from core.config import add_database_flags  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["key"]:
        key_command(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Manage the app's password users (and, with `key`, API keys).")
    parser.add_argument("command", choices=["add", "remove", "list"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--file", default="data/users.json")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add_database_flags(parser)  # remove: where the user's API keys are revoked
    args = parser.parse_args(argv)
    path = Path(args.file)
    os.umask(0o077)
    try:
        if args.command == "list":
            print("\n".join(sorted(load_users(path))))
        elif not args.name:
            parser.error("give a user name")
        elif args.command == "remove":
            revoked = remove_user(path, args.name, existing_database(args))
            print(f"removed {args.name} from {path}" + (f"; revoked {revoked} API key(s)" if revoked else ""))
        else:
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
            add_user(path, args.name, password)
            print(f"added {args.name} to {path}")
    except (OSError, ValueError) as exc:  # a person's mistake: a sentence, not a traceback
        parser.exit(2, f"error: {_first_line(exc)}\n")
    except Exception as exc:  # the database: the user is out of the file, their keys may still work
        parser.exit(2, f"error: {_first_line(exc)} (revoke the user's keys with `key list` / `key revoke`)\n")


if __name__ == "__main__":
    main()

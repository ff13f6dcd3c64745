"""Storage at scale: 10,000 conversations and 1,000,000 messages on SQLite.

Prints JSON: median milliseconds to list the first page of conversations, to
open a 1,000-message conversation (a tree: every fourth question was answered twice, so the branch
shown is ~890 of its messages), to move to another branch of it, and to run a full-text search.
Targets: <= 20 ms, <= 50 ms (open and move), <= 100 ms.

    python -m bench.storage [--conversations 10000] [--messages 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from storage.repository import Repository
from storage.schema import Conversation, Message

OWNER = "bench"


def words(rng: random.Random, n: int) -> str:
    # A Zipf-like vocabulary: w0 is everywhere, w1999 is rare.
    return " ".join(f"w{min(int(rng.paretovariate(1.1)) - 1, 1999)}" for _ in range(n))


def conversation_rows(cid: str, count: int, first_id: int, branched: bool, stamp, rng: random.Random) -> list[dict]:
    """`count` messages with ids from `first_id`, each after the one before; `branched`: every fourth
    question has a second, older answer beside the one shown (a regenerate)."""
    rows, parent, questions = [], None, 0
    while len(rows) < count:
        role = "user" if not rows or rows[-1]["role"] == "assistant" else "assistant"
        questions += role == "user"
        twice = branched and role == "assistant" and questions % 4 == 0 and len(rows) + 2 <= count
        for _ in range(2 if twice else 1):  # the older answer first: the newer one is on the branch shown
            rows.append(dict(id=first_id + len(rows), conversation_id=cid, position=len(rows), parent_id=parent,
                             role=role, content=words(rng, 30), reasoning=words(rng, 20) if role == "assistant" else "",
                             trace="[]", harmony="[]", status="complete", created=stamp))
        parent = rows[-1]["id"]
    return rows


def populate(repo: Repository, conversations: int, messages: int, rng: random.Random) -> str:
    rest = conversations - 1  # conversation 0 holds 1,000 messages; the others share the remainder
    per, extra = divmod(messages - 1000, max(1, rest))
    big = None
    base = dt.datetime(2026, 1, 1)
    conv_rows, msg_rows, next_id = [], [], 1
    with repo.engine.begin() as conn:
        for i in range(conversations):
            cid = secrets.token_hex(16)
            count = 1000 if i == 0 else per + (1 if i <= extra else 0)
            big = big or cid
            stamp = base + dt.timedelta(minutes=i)
            rows = conversation_rows(cid, count, next_id, i == 0, stamp, rng)
            next_id += len(rows)
            conv_rows.append(dict(id=cid, owner=OWNER, title=f"conversation {i}", created=stamp, updated=stamp,
                                  settings="{}", leaf_id=rows[-1]["id"] if rows else None))
            msg_rows += rows
            if len(msg_rows) >= 20_000:
                conn.execute(Conversation.__table__.insert(), conv_rows)
                conn.execute(Message.__table__.insert(), msg_rows)
                conv_rows, msg_rows = [], []
        if conv_rows:
            conn.execute(Conversation.__table__.insert(), conv_rows)
        if msg_rows:
            conn.execute(Message.__table__.insert(), msg_rows)
    return big


def timed(fn, repeat: int = 20) -> float:
    fn()  # warm the cache
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    repo = Repository.open(f"sqlite:///{folder / 'bench.db'}")
    t = time.perf_counter()
    big = populate(repo, args.conversations, args.messages, random.Random(0))
    load_s = time.perf_counter() - t
    with repo.engine.connect() as conn:
        n_messages = conn.exec_driver_sql("SELECT count(*) FROM messages").scalar()
    other_answer = next(m.siblings[0] for m in repo.get(OWNER, big).messages if len(m.siblings) > 1)
    report = {
        "conversations": args.conversations, "messages": n_messages, "load_seconds": round(load_s, 1),
        "list_first_page_ms": timed(lambda: repo.list_conversations(OWNER)),
        "open_1000_message_conversation_ms": timed(lambda: repo.get(OWNER, big)),
        "branch_shown_messages": len(repo.get(OWNER, big).messages),
        "move_to_another_branch_ms": timed(lambda: repo.show_branch(OWNER, big, other_answer)),
        "search_rare_word_ms": timed(lambda: repo.search(OWNER, "w1500")),
        "search_common_word_ms": timed(lambda: repo.search(OWNER, "w3")),
        "search_two_words_with_reasoning_ms": timed(lambda: repo.search(OWNER, "w40 w41", include_reasoning=True)),
        "targets_ms": {"list": 20, "open": 50, "search": 100},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

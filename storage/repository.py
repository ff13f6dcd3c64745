"""All reads and writes of conversations, always scoped to an owner.

Every public method takes the owner: a conversation that is not theirs is
"not found", exactly like one that does not exist. Methods return plain
dataclasses, never live ORM objects.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import unicodedata
from contextlib import contextmanager, nullcontext
from enum import Enum

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import sessionmaker

from core.errors import NotFoundError
from core.records import ConversationView, MessageStatus, MessageView, SearchHit
from core.trace import Step, ToolCallStep, ToolResultStep, from_json, to_json
from storage.db import open_engine, upgrade
from storage.exports import conversation_json, conversation_markdown
from storage.schema import Conversation, Message, Share, utcnow
from storage.tree import Tree

CONVERSATION_ID = re.compile(r"^[0-9a-f]{32}$")
TITLE_CHARS = 60
PAGE_SIZE = 50
MESSAGE_FIELDS = ("content", "reasoning", "reasoning_summary", "effort", "status", "error", "stop_reason",
                  "reasoning_tokens", "answer_tokens", "ttft", "reasoning_time", "tokens_per_s", "context_tokens",
                  "context_window", "left_out", "malformed")

# The statements every chat's start and end runs, built once and executed with their values as
# parameters: SQLAlchemy then compiles each once and reuses it. Built per call with .values(...),
# they coerced every literal and computed a cache key each time: most of a turn's database CPU (side
# by side, 100 sequential turns on bench/synthetic.py's engine: 42 -> 36 ms of app CPU per turn).
_CONVERSATIONS, _MESSAGES = Conversation.__table__, Message.__table__
_INSERT_CONVERSATION = insert(_CONVERSATIONS)
_INSERT_MESSAGE = insert(_MESSAGES)
_UPDATE_CONVERSATION = update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("p_id"))  # SET: the other keys
_UPDATE_MESSAGE = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("p_mid"))
_OWNER_OF = select(_CONVERSATIONS.c.owner, _CONVERSATIONS.c.leaf_id).where(_CONVERSATIONS.c.id == bindparam("p_id"))
_NEXT_POSITION = (select(func.coalesce(func.max(_MESSAGES.c.position), -1) + 1)
                  .where(_MESSAGES.c.conversation_id == bindparam("p_id")))
_OWNED_MESSAGE = (select(_MESSAGES.c.conversation_id)
                  .join(_CONVERSATIONS, _CONVERSATIONS.c.id == _MESSAGES.c.conversation_id)
                  .where(_MESSAGES.c.id == bindparam("p_mid"), _CONVERSATIONS.c.owner == bindparam("p_owner")))
_TITLES = (select(_CONVERSATIONS.c.id, _CONVERSATIONS.c.title).where(_CONVERSATIONS.c.owner == bindparam("p_owner"))
           .order_by(_CONVERSATIONS.c.updated.desc()).limit(bindparam("p_limit")))
_LEAF_MESSAGE = select(Message).where(Message.id == bindparam("p_leaf"), Message.conversation_id == bindparam("p_id"))
LEAF = object()  # a new message's parent by default: the last message of the branch shown


def title_from(text_: str) -> str:
    """One clean line: no control characters (NUL, BEL, ESC …), no lone surrogates, at most TITLE_CHARS."""
    text_ = (text_ or "").encode("utf-8", errors="replace").decode("utf-8")
    line = " ".join("".join(ch if unicodedata.category(ch) != "Cc" else " " for ch in text_).split())
    return (line[: TITLE_CHARS - 1] + "…") if len(line) > TITLE_CHARS else (line or "New chat")


def _message_view(m: Message, tree: Tree | None = None) -> MessageView:
    values = {f: getattr(m, f) for f in MESSAGE_FIELDS}
    return MessageView(id=m.id, position=m.position, role=m.role, trace=from_json(json.loads(m.trace or "[]")),
                       harmony=json.loads(m.harmony or "[]"), created=m.created.isoformat(), parent_id=m.parent_id,
                       siblings=tree.siblings(m.id) if tree else [], **values)


def _conversation_view(c: Conversation, messages: list[Message] | None = None, tree: Tree | None = None,
                       leaf_id: int | None = None) -> ConversationView:
    return ConversationView(id=c.id, title=c.title, created=c.created.isoformat(), updated=c.updated.isoformat(),
                            settings=json.loads(c.settings or "{}"), leaf_id=leaf_id,
                            messages=[_message_view(m, tree) for m in (messages or [])])


def tools_text(steps: list[Step]) -> str:
    """The searchable text of a turn's tool calls (recipient and arguments) and results."""
    parts = []
    for step in steps:
        if isinstance(step, ToolCallStep):
            parts.append(f"{step.recipient} {step.arguments}")
        elif isinstance(step, ToolResultStep):
            parts.append(step.output)
    return "\n".join(parts)


def fts_query(query: str) -> str:
    """Turn user words into an FTS5 query of quoted terms (no FTS syntax from users)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


class Repository:
    def __init__(self, engine):
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)
        self.fts = engine.dialect.name == "sqlite"
        # SQLite takes one writer at a time and makes the others sleep and retry (its busy handler
        # backs off up to 100 ms a try): with many chats starting at once that was most of their
        # start-up time. Writers of this process queue on a lock instead; servers (PostgreSQL) need none.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def writing(self):
        """A write transaction (committed at the end of the block)."""
        with self._write_lock, self.session.begin() as s:
            yield s

    @classmethod
    def open(cls, url: str, recover: bool = True) -> "Repository":
        """Open (creating or upgrading the schema) and mark crashed answers as interrupted. A command
        line beside a running app opens it with recover=False: its answers are streaming, not crashed."""
        engine = open_engine(url)
        upgrade(engine)
        repo = cls(engine)
        if recover:
            repo.recover_interrupted()
        return repo

    def recover_interrupted(self) -> int:
        """Answers that were streaming when the process died are shown as interrupted."""
        with self.writing() as s:
            result = s.execute(update(Message).where(Message.status == MessageStatus.STREAMING)
                                 .values(status=MessageStatus.INTERRUPTED))
            return result.rowcount

    # -- conversations ----------------------------------------------------------------

    @staticmethod
    def _not_found_unless(ok: object) -> None:
        """Another owner's conversation, a missing one and a malformed id all read the same."""
        if not ok:
            raise NotFoundError("This conversation does not exist.")

    def _owned(self, s, owner: str, conversation_id: str) -> Conversation:
        """The owner's conversation as an ORM object (for the methods that change it through the ORM)."""
        self._not_found_unless(isinstance(conversation_id, str) and CONVERSATION_ID.match(conversation_id))
        conv = s.get(Conversation, conversation_id)
        self._not_found_unless(conv is not None and conv.owner == owner)
        return conv

    def _check_owned(self, connection, owner: str, conversation_id: str) -> int | None:
        """NotFoundError unless the conversation exists and is the owner's (one primary-key read); returns
        the last message of its branch shown."""
        self._not_found_unless(isinstance(conversation_id, str) and CONVERSATION_ID.match(conversation_id))
        row = connection.execute(_OWNER_OF, {"p_id": conversation_id}).first()
        self._not_found_unless(row is not None and row.owner == owner)
        return row.leaf_id

    def create_conversation(self, owner: str, title: str = "New chat", settings: dict | None = None) -> str:
        conv_id = self.new_conversation_id()
        with self.writing() as s:
            s.add(Conversation(id=conv_id, owner=owner, title=title_from(title),
                               settings=json.dumps(settings or {})))
        return conv_id

    def list_conversations(self, owner: str, limit: int = PAGE_SIZE, offset: int = 0) -> list[ConversationView]:
        with self.session() as s:
            rows = s.scalars(select(Conversation).where(Conversation.owner == owner)
                             .order_by(Conversation.updated.desc()).limit(limit).offset(offset))
            return [_conversation_view(c) for c in rows]

    def list_titles(self, owner: str, limit: int = PAGE_SIZE) -> list[tuple[str, str]]:
        """(id, title) of the owner's conversations, newest first: the sidebar, which every open tab
        refreshes every few seconds, so it reads two columns and builds no objects."""
        with self.engine.connect() as c:
            return [(cid, title) for cid, title in c.execute(_TITLES, {"p_owner": owner, "p_limit": limit})]

    def _read(self, s, owner: str, conversation_id: str) -> tuple[Conversation, list[Message], Tree]:
        conv = self._owned(s, owner, conversation_id)
        messages = s.scalars(select(Message).where(Message.conversation_id == conv.id)
                             .order_by(Message.position)).all()
        return conv, list(messages), Tree.of(messages)

    def get(self, owner: str, conversation_id: str, upto: int | None = None) -> ConversationView:
        """The conversation with the branch shown (top to its leaf), or the branch that ends at message `upto`
        (NotFoundError when not the conversation's). Each message lists its siblings; `leaf_id` is always
        where the branch shown ends."""
        with self.session() as s:
            conv, messages, tree = self._read(s, owner, conversation_id)
            if upto is not None and upto not in tree.nodes:
                raise NotFoundError("This message does not exist.")
            shown = tree.path(conv.leaf_id)
            path = shown if upto is None else tree.path(upto)
            view = _conversation_view(conv, [tree.nodes[i] for i in path], tree, shown[-1] if shown else None)
            last = tree.nodes[path[-1]] if path and upto is None else None
            if last is not None and last.role == "user":  # a comparison: the answers below the branch shown
                view.compared = [_message_view(tree.nodes[i], tree) for i in tree.children.get(last.id, ())
                                 if tree.nodes[i].role == "assistant"]
            return view

    def tree(self, owner: str, conversation_id: str) -> ConversationView:
        """The conversation with every message of every branch, in the order written (`leaf_id`: the
        branch shown ends there)."""
        with self.session() as s:
            conv, messages, tree = self._read(s, owner, conversation_id)
            path = tree.path(conv.leaf_id)
            return _conversation_view(conv, messages, tree, path[-1] if path else None)

    def show_branch(self, owner: str, conversation_id: str, message_id: int, descend: bool = True) -> int:
        """Show the branch through a message (its newest answers below it, unless not `descend`) from now
        on, on every page and for the next message; returns the branch's last message."""
        with self.writing() as s:
            conv, messages, tree = self._read(s, owner, conversation_id)
            if message_id not in tree.nodes:
                raise NotFoundError("This message does not exist.")
            conv.leaf_id = tree.newest_leaf(message_id) if descend else message_id
            return conv.leaf_id

    def last_message(self, owner: str, conversation_id: str) -> MessageView | None:
        """The last message of the branch shown (None when there is none), without reading the others."""
        with self.session() as s:
            leaf = self._check_owned(s.connection(), owner, conversation_id)
            m = s.scalars(_LEAF_MESSAGE, {"p_id": conversation_id, "p_leaf": leaf}).first()
            return _message_view(m) if m is not None else None

    def rename(self, owner: str, conversation_id: str, title: str) -> None:
        with self.writing() as s:
            self._owned(s, owner, conversation_id).title = title_from(title)

    @staticmethod
    def _next_position(s, conversation_id: str) -> int:
        """Where the next message of a conversation goes (call inside its write transaction; `s` is a
        session or a connection)."""
        return s.execute(_NEXT_POSITION, {"p_id": conversation_id}).scalar_one()

    def check_owner(self, owner: str, conversation_id: str) -> None:
        """NotFoundError unless the conversation exists and is the owner's (one primary-key read)."""
        with self.engine.connect() as c:
            self._check_owned(c, owner, conversation_id)

    @staticmethod
    def new_conversation_id() -> str:
        return secrets.token_hex(16)  # 128 bits: ids in URLs are not guessable

    def add_user_message(self, owner: str, conversation_id: str, text_: str, settings: dict, *,
                         new: bool = False, answer: dict | None = None) -> int | None:
        """A user's message with the chat's settings in one transaction, committed at once (the text is
        safe before the model runs), after the last message of the branch shown. `new`: the conversation
        is created too, titled by the message. `answer`: the fields of the answer's placeholder, stored
        after it. Returns the id of the last message stored (the placeholder's, or the user message's).

        Plain SQL statements, not the ORM's unit of work: every chat's start passes through here, and
        the shorter the transaction, the sooner the next chat starts."""
        now, encoded = utcnow(), json.dumps(settings)
        rows = [{"role": "user", "content": text_}]
        if answer is not None:
            rows.append({"role": "assistant", "content": "", **self._encode(answer)})
        with self.writing() as s:
            c = s.connection()
            if new:
                c.execute(_INSERT_CONVERSATION, {"id": conversation_id, "owner": owner, "title": title_from(text_),
                                                 "settings": encoded, "created": now, "updated": now})
                position, last = 0, None
            else:
                last = self._check_owned(c, owner, conversation_id)
                position = self._next_position(c, conversation_id)
            for i, row in enumerate(rows):
                last = c.execute(_INSERT_MESSAGE, {"conversation_id": conversation_id, "position": position + i,
                                                   "created": now, "parent_id": last, **row}).inserted_primary_key[0]
            c.execute(_UPDATE_CONVERSATION, {"p_id": conversation_id, "settings": encoded, "updated": now,
                                             "leaf_id": last})
            return last

    def delete(self, owner: str, conversation_id: str) -> None:
        with self.writing() as s:
            conv = self._owned(s, owner, conversation_id)
            s.execute(delete(Message).where(Message.conversation_id == conv.id))
            s.execute(delete(Share).where(Share.conversation_id == conv.id))  # its links die with it
            s.delete(conv)

    # -- messages ------------------------------------------------------------------------

    def add_message(self, owner: str, conversation_id: str, role: str, content: str, parent=LEAF, **fields) -> int:
        """Add a message after `parent` (by default the last of the branch shown; None: a new first
        message) and commit at once (the user's text is safe before the model runs). The branch shown
        ends at it from now on."""
        with self.writing() as s:
            conv = self._owned(s, owner, conversation_id)
            position = self._next_position(s, conv.id)
            parent = conv.leaf_id if parent is LEAF else parent
            message = Message(conversation_id=conv.id, position=position, role=role, content=content,
                              parent_id=parent, **self._encode(fields))
            s.add(message)
            conv.updated = utcnow()
            s.flush()
            conv.leaf_id = message.id
            return message.id

    def add_answers(self, owner: str, conversation_id: str, parent: int, answers: list[dict]) -> list[int]:
        """Several answers to one message at once (a comparison: one per effort), in one transaction; the
        branch shown ends at that message until one of them is kept (`show_branch`)."""
        with self.writing() as s:
            conv = self._owned(s, owner, conversation_id)
            position, now = self._next_position(s, conv.id), utcnow()
            c = s.connection()
            ids = [c.execute(_INSERT_MESSAGE, {"conversation_id": conv.id, "position": position + i, "created": now,
                                               "parent_id": parent, "role": "assistant", "content": "",
                                               **self._encode(fields)}).inserted_primary_key[0]
                   for i, fields in enumerate(answers)]
            conv.updated, conv.leaf_id = now, parent
            return ids

    def save_message(self, owner: str, message_id: int, **fields) -> None:
        """Update a message (the end of an answer) and its conversation's time, if the owner's."""
        values = self._encode(fields)
        with self.writing() as s:
            c = s.connection()
            conversation_id = c.execute(_OWNED_MESSAGE, {"p_mid": message_id, "p_owner": owner}).scalar()
            if conversation_id is None:
                raise NotFoundError("This message does not exist.")
            if values:
                c.execute(_UPDATE_MESSAGE, {"p_mid": message_id, **values})
            c.execute(_UPDATE_CONVERSATION, {"p_id": conversation_id, "updated": utcnow()})

    def save_partials(self, items: list[tuple[str, int, dict]]) -> None:
        """Save the text so far of many answers being written, as (owner, message id, {content,
        reasoning, trace}): one statement batch, one commit. Each row is written only if its
        conversation belongs to that owner."""
        if not items:
            return
        messages, conversations = Message.__table__, Conversation.__table__
        owned = select(conversations.c.id).where(conversations.c.owner == bindparam("p_owner"))
        stmt = (update(messages)
                .where(messages.c.id == bindparam("p_id"), messages.c.conversation_id.in_(owned))
                .values(content=bindparam("p_content"), reasoning=bindparam("p_reasoning"),
                        trace=bindparam("p_trace"), tools_text=bindparam("p_tools")))
        rows = [{"p_owner": owner, "p_id": mid, "p_content": f["content"], "p_reasoning": f["reasoning"],
                 "p_trace": json.dumps(to_json(f.get("trace") or [])), "p_tools": tools_text(f.get("trace") or [])}
                for owner, mid, f in items]
        with self.writing() as s:
            s.connection().execute(stmt, rows)

    @staticmethod
    def _encode(fields: dict) -> dict:
        # Enum members (status, stop reason) are stored as their plain string values.
        out = {k: (v.value if isinstance(v, Enum) else v) for k, v in fields.items() if k in MESSAGE_FIELDS}
        if "harmony" in fields:
            out["harmony"] = json.dumps(list(fields["harmony"]))
        if "trace" in fields:
            out["trace"] = json.dumps(to_json(fields["trace"]))
            out["tools_text"] = tools_text(fields["trace"])
        unknown = set(fields) - set(out)
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        return out

    # -- search and export -------------------------------------------------------------------

    def search(self, owner: str, query: str, include_reasoning: bool = False,
               limit: int = PAGE_SIZE) -> list[SearchHit]:
        if not query.strip():
            return []
        with self.session() as s:
            rows = self._search_fts(s, owner, query, include_reasoning, limit) if self.fts \
                else self._search_like(s, owner, query, include_reasoning, limit)
            return [SearchHit(*row) for row in rows]

    def _search_fts(self, s, owner, query, include_reasoning, limit):
        terms = fts_query(query)
        match = terms if include_reasoning else f"{{content tools_text}} : ({terms})"  # tool results too
        sql = text("""
            SELECT c.id, c.title, m.id, m.role,
                   snippet(messages_fts, -1, '[', ']', '…', 12)
            FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
            JOIN conversations c ON c.id = m.conversation_id
            WHERE messages_fts MATCH :match AND c.owner = :owner
            ORDER BY messages_fts.rowid DESC LIMIT :limit""")
        # Newest messages first, walking the FTS index backwards: a common word stops after
        # `limit` hits instead of sorting every match.
        return s.execute(sql, {"match": match, "owner": owner, "limit": limit}).all()

    def _search_like(self, s, owner, query, include_reasoning, limit):
        pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond = Message.content.ilike(pattern, escape="\\") | Message.tools_text.ilike(pattern, escape="\\")
        if include_reasoning:
            cond = cond | Message.reasoning.ilike(pattern, escape="\\")
        rows = s.execute(select(Conversation.id, Conversation.title, Message.id, Message.role, Message.content)
                         .join(Message, Message.conversation_id == Conversation.id)
                         .where(Conversation.owner == owner, cond)
                         .order_by(Conversation.updated.desc(), Message.position).limit(limit)).all()
        return [(cid, title, mid, role, content[:120]) for cid, title, mid, role, content in rows]

    def export_json(self, owner: str, conversation_id: str, view=None) -> dict:
        """Every branch (storage/exports.py). `view`: what the caller may show of the messages (the policy)."""
        return conversation_json(self.tree(owner, conversation_id), view)

    def export_markdown(self, owner: str, conversation_id: str, include_reasoning: bool = True, view=None) -> str:
        """The branch shown (storage/exports.py)."""
        return conversation_markdown(self.get(owner, conversation_id), include_reasoning, view)

"""The answers being written now, per conversation: one answer, or a comparison's several (one per effort).

A conversation has at most one turn in progress: a turn is one LiveAnswer, or a comparison's LiveAnswers
that answer the same message at each effort together. A request claims the conversation before it stores
anything, so two tabs sending at the same instant cannot both pass; the turn takes the claim over when it
starts and gives it back when its last answer ends. Pages ask here which conversations are being written
(the sidebar's mark) and which ended while nobody watched.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from core.errors import GenerationError, InputError

_CLAIM = object()  # a conversation's turn is requested but its answers have not started yet


class Turns:
    def __init__(self):
        self._lock = threading.Lock()
        self._live: dict[str, object] = {}  # conversation id -> its LiveAnswers (or _CLAIM while starting)
        self._unseen: dict[str, set[str]] = {}  # owner -> conversations whose turn ended unwatched
        self._watched: dict[str, bool] = {}  # conversation id -> whether any page watched its turn
        self.closing = False

    @contextmanager
    def claimed(self, conversation_id: str, hand_over: bool = True):
        """Hold the conversation's one turn from the request on. `start` takes the claim over (and the end
        of the turn frees it); any failure before that frees it here. Not `hand_over`: a change that starts
        no answer (moving between branches) holds it only for the block."""
        with self._lock:
            if self.closing:
                raise GenerationError("The server is shutting down; your message was not sent. Try again "
                                      "in a moment.")
            if conversation_id in self._live:
                raise InputError("An answer is still being written in this conversation: stop it or wait.")
            self._live[conversation_id] = _CLAIM
        handed = False
        try:
            yield
            handed = hand_over
        finally:
            if not handed:
                with self._lock:
                    if self._live.get(conversation_id) is _CLAIM:
                        del self._live[conversation_id]

    def start(self, conversation_id: str, answers: list) -> bool:
        """Register the turn's answers (taking the claim over) and start them, as one step: a shutdown sees
        no answer that is not running. Returns False when the server began stopping meanwhile (the caller
        then interrupts them)."""
        with self._lock:
            self._live[conversation_id] = list(answers)
            self._watched[conversation_id] = False
            for answer in answers:
                answer.start()
            return not self.closing

    def ended(self, answer) -> bool:
        """One answer ended. When it was the turn's last, the conversation is free again, and marked
        unseen for its owner if no page watched any of it; returns True then."""
        cid = answer.conversation_id
        with self._lock:
            answers = self._live.get(cid)
            if not isinstance(answers, list) or answer not in answers:
                return False
            self._watched[cid] = self._watched.get(cid, False) or bool(answer.watchers)
            answers.remove(answer)
            if answers:
                return False
            del self._live[cid]
            if not self._watched.pop(cid, False):
                self._unseen.setdefault(answer.owner, set()).add(cid)
            return True

    def of(self, conversation_id: str) -> list:
        """The conversation's answers being written ([] when none)."""
        with self._lock:
            answers = self._live.get(conversation_id)
            return list(answers) if isinstance(answers, list) else []

    def everyone(self) -> list:
        """Every answer being written now, anyone's."""
        with self._lock:
            return [a for answers in self._live.values() if isinstance(answers, list) for a in answers]

    def writing(self, owner: str) -> set[str]:
        """The owner's conversations with an answer being written now."""
        with self._lock:
            return {cid for cid, answers in self._live.items()
                    if isinstance(answers, list) and answers and answers[0].owner == owner}

    def unseen(self, owner: str) -> set[str]:
        with self._lock:
            return set(self._unseen.get(owner, ()))

    def seen(self, owner: str, conversation_id: str) -> None:
        with self._lock:
            self._unseen.get(owner, set()).discard(conversation_id)

    def close(self) -> list:
        """No new turn from now on; returns the answers still being written."""
        with self._lock:
            self.closing = True
        return self.everyone()

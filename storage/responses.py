"""Stored Responses API answers: the response object as the client got it, kept with the conversation
its exchange was stored in (the owner's, visible in their sidebar). Owner-only: another user's id reads
as unknown. Deleting a conversation deletes its responses (the foreign keys cascade).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete

from core.errors import NotFoundError
from storage.repository import Repository
from storage.schema import ApiResponse

ID = re.compile(r"^resp_[0-9a-f]{48}$")
UNKNOWN = "There is no stored response {id!r} (never stored, deleted, or not yours)."


@dataclass(frozen=True)
class StoredResponse:
    id: str
    owner: str
    conversation_id: str
    message_id: int
    body: dict


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


class ResponseStore:
    def __init__(self, repo: Repository):
        self.repo = repo

    def save(self, response_id: str, owner: str, conversation_id: str, message_id: int, body: dict) -> None:
        with self.repo.writing() as s:
            self.repo._check_owned(s.connection(), owner, conversation_id)
            s.merge(ApiResponse(id=response_id, owner=owner, conversation_id=conversation_id, message_id=message_id,
                                body=json.dumps(body)))

    def get(self, owner: str, response_id: str) -> StoredResponse:
        if not isinstance(response_id, str) or not ID.match(response_id):
            raise NotFoundError(UNKNOWN.format(id=str(response_id)[:80]))
        with self.repo.session() as s:
            row = s.get(ApiResponse, response_id)
            if row is None or row.owner != owner:
                raise NotFoundError(UNKNOWN.format(id=response_id))
            return StoredResponse(row.id, row.owner, row.conversation_id, row.message_id, json.loads(row.body))

    def delete(self, owner: str, response_id: str) -> None:
        self.get(owner, response_id)  # unknown or another's: a 404
        with self.repo.writing() as s:
            s.execute(delete(ApiResponse).where(ApiResponse.id == response_id, ApiResponse.owner == owner))

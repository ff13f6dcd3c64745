"""The OpenAI-compatible API's logic: who asks (API keys), what runs (the same turn pipeline, worker,
continuous batching and harmony parsing as the page: backend/services/pipeline.py), what comes back
(backend/api/chat.py, backend/api/responses.py). It only translates: a request into ChatOptions and
harmony turns (backend/api/messages.py), the turn's events into the API's format (backend/api/run.py
reads them once for both). The HTTP side is ui/routes.py; this module returns plain dicts.

With `store` (or --api-store) the exchange is saved as a conversation of the key's owner, so it shows
in their sidebar.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePath

from backend.api.chat import ChatRun
from backend.api.messages import ApiCall, parse_body
from backend.api.responses import ResponsesRun
from backend.api.responses_input import Turns, parse_responses
from backend.api.run import ApiTurn
from backend.engines.base import EngineInfo
from backend.services.pipeline import TurnPipeline, prompt_turns
from backend.tools.user_functions import offered_recipients
from core.config import DEFAULT_EFFORT, DEFAULT_MAX_NEW_TOKENS
from core.errors import AuthError, InputError, NotFoundError
from storage.api_keys import KEY_PREFIX, SHOWN_CHARS
from storage.responses import ResponseStore, new_response_id

DEMO_ID = "gpt-oss-chat-demo"  # the bundled demo model, as the API names it
NO_KEY = ("This API needs a key: send `Authorization: Bearer <key>`. Whoever runs this server makes keys with "
          "`python -m backend.identity.users key create NAME`.")


def served_name(description: EngineInfo) -> str:
    """The model's name as the API lists it: a folder path becomes its last part (no server paths out)."""
    if description.demo:
        return DEMO_ID
    model = description.model if description.model not in ("", "?") else "gpt-oss"
    return PurePath(model).name if model.startswith(("/", ".")) else model


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class OpenAIApi:
    def __init__(self, pipeline: TurnPipeline, keys, *, keyless_owner: str | None, store: bool = False,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, responses: ResponseStore | None = None,
                 is_user=lambda owner: True):
        self.pipeline, self.keys = pipeline, keys
        self.is_user = is_user  # a key works only while its owner is a user (UserDirectory.has)
        self.responses = responses or ResponseStore(pipeline.repo)  # stored Responses answers
        self.keyless_owner = keyless_owner  # no users configured: the one local user, as on the page
        self.store, self.max_new_tokens = store, max_new_tokens

    @staticmethod
    def shown_key(authorization: str | None) -> str | None:
        """The part of a request's key the audit log keeps (its prefix, as `key list` shows it)."""
        return bearer(authorization)[:SHOWN_CHARS] or None

    def owner(self, authorization: str | None) -> str:
        """The key's owner. Where the app has no users at all, any other bearer (clients insist on
        sending one: "EMPTY", "sk-none") or none is the one local user, as on the page."""
        key = bearer(authorization)
        if key.startswith(KEY_PREFIX):
            owner = self.keys.owner_of(key)
            if owner is None or not self.is_user(owner):
                raise AuthError("This API key is not valid (unknown, revoked, or its user was removed).")
            return owner
        if self.keyless_owner:
            return self.keyless_owner
        raise AuthError(NO_KEY)

    def model(self) -> str:
        return served_name(self.pipeline.ready_engine())  # a clear error while loading or after a failure

    def models(self) -> dict:
        return {"object": "list", "data": [self._model_entry(self.model())]}

    def model_info(self, model_id: str) -> dict:
        """GET /v1/models/{id}: the served model, or a 404 that names it."""
        model = self.model()
        if model_id not in (model, PurePath(model).name):
            raise NotFoundError(f"This server serves {model!r}, not {model_id!r}.")
        return self._model_entry(model)

    @staticmethod
    def _model_entry(model: str) -> dict:
        return {"id": model, "object": "model", "created": 0, "owned_by": "gpt-oss-chat"}

    def _check_model(self, asked: str) -> str:
        model = self.model()
        if asked and asked not in (model, PurePath(model).name):
            raise NotFoundError(f"This server serves {model!r}, not {asked!r} (see /v1/models).")
        return model

    def start(self, owner: str, body, key: str | None = None) -> ChatRun:
        """A chat completion: check the request, submit it (busy or loading fail here, before any answer
        starts), and store the exchange first when asked."""
        call = parse_body(body, limit=self.pipeline.max_message_chars, max_new_tokens=self.max_new_tokens,
                          default_effort=DEFAULT_EFFORT, store=self.store)
        model = self._check_model(call.model)
        return ChatRun(self.begin(owner, call, key), model)

    def refused(self, owner: str | None, path: str, status: int, reason: str, key: str | None) -> None:
        """A request refused before it ran (no key, bad input, busy...), in the audit log: who, where, why."""
        self.pipeline.audit(owner, "api_refused", outcome=str(status), path=path, reason=reason[:300], key=key)

    def start_response(self, owner: str, body, key: str | None = None) -> ResponsesRun:
        """/v1/responses: the request, on top of the stored response it goes on from (previous_response_id)."""
        request = parse_responses(body, limit=self.pipeline.max_message_chars, max_new_tokens=self.max_new_tokens,
                                  default_effort=DEFAULT_EFFORT)
        model = self._check_model(request.api.model)
        base, calls, history = None, {}, []
        if request.previous_response_id:
            previous = self.responses.get(owner, request.previous_response_id)
            base, history = self.pipeline.history(owner, previous.conversation_id, previous.message_id)
            calls = {i["call_id"]: f"{i.get('namespace') or 'functions'}.{i['name']}"
                     for i in previous.body.get("output", []) if i["type"] == "function_call"}
        turns = Turns(prompt_turns(history), calls, self.pipeline.max_message_chars)
        for item in request.items:
            turns.add(item)
        instructions = "\n\n".join(t for t in [request.api.options.instructions, *turns.instructions] if t)
        call = replace(request.api, turns=turns.checked(), texts=turns.users,
                       options=replace(request.api.options, instructions=instructions))
        if base is not None and not call.store:
            raise InputError("A request that goes on from a stored response is stored too: leave `store` out or "
                             "send true.")
        response_id = new_response_id()
        turn = self.begin(owner, call, key, base=(base, history) if base else None)
        keep = (lambda body: self.responses.save(response_id, owner, turn.stored[0], turn.stored[1], body)) \
            if turn.stored else None
        return ResponsesRun(turn, request, model, response_id, on_end=keep)

    def retrieve(self, owner: str, response_id: str) -> dict:
        return self.responses.get(owner, response_id).body

    def delete_response(self, owner: str, response_id: str) -> dict:
        self.responses.delete(owner, response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    def begin(self, owner: str, call: ApiCall, key: str | None, *, base=None) -> ApiTurn:
        """Admit, submit and (when asked) store one API request: the part both APIs share. `base`: the
        conversation and stored messages a Responses request goes on from."""
        pipeline = self.pipeline
        # The client's own functions only (none of the deployment's tools): any name is the client's.
        call = replace(call, options=pipeline.admit(owner, call.options, client_functions=True))
        job = pipeline.submit(call.turns, call.options, client_functions=True, call=call.call)
        answer = None
        try:
            if call.store and base is not None:
                cid, mid, answer = pipeline.continue_exchange(owner, base[0], base[1], call.turns, call.options)
                stored = (cid, mid)
            else:
                stored = self._store(owner, call) if call.store else None
        except BaseException:
            job.discard()
            raise
        pipeline.audit(owner, "api_request", text=call.texts[-1] if call.texts else None, effort=call.options.effort,
                       conversation_id=stored[0] if stored else None, key=key, end_user=call.end_user,
                       client=call.labels or None)
        last = call.turns[-1]  # a turn that goes on after a function's result keeps its earlier steps
        prior = list(last.harmony) if last.role == "assistant" else []
        offered = offered_recipients(call.options.functions, call.options.namespaces)
        return ApiTurn(pipeline, owner, call, job, stored, offered=offered, prior=prior, answer=answer)

    def _store(self, owner: str, call: ApiCall):
        first = call.texts[0] if call.texts else ""
        return self.pipeline.store_exchange(owner, call.turns, call.options, first, via="api", metadata=call.metadata)

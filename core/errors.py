"""The one error hierarchy of the app.

Every error a person can cause or meet carries a message written for them
(`user_message`): what failed and what to do next. The UI turns these into
`gr.Error` in exactly one place (ui/errors.py); everything else is a bug and
is logged with its traceback.
"""


LINK_GONE = "This link is no longer available."  # every dead share link says exactly this


class ChatError(Exception):
    """Base class: `str(err)` is safe to show to the user."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


class InputError(ChatError):
    """The user's input was refused (empty, too long, bad characters)."""


class ContextLengthError(InputError):
    """The prompt does not fit what the model (or its engine) can read at once."""

    code = "context_length_exceeded"  # OpenAI's code for it

    def __init__(self, prompt_tokens: int, window: int):
        super().__init__(f"This conversation is {prompt_tokens:,} tokens long, and the model can read at most "
                         f"{window:,} at once (prompt and answer together). Start a new conversation, or send less.")
        self.prompt_tokens, self.window = prompt_tokens, window


class BusyError(ChatError):
    """The worker's queue is full; the request was not accepted."""

    def __init__(self, ahead: int):
        super().__init__(
            f"The server is busy: {ahead} request(s) are ahead of you. "
            "Please try again in a moment."
        )
        self.ahead = ahead


class GenerationError(ChatError):
    """Generation failed for this request (the worker keeps serving others)."""


class ModelLoadError(ChatError):
    """The model could not be loaded."""


class VocabularyError(ChatError):
    """The o200k vocabulary for harmony could not be found offline or online."""


class NotFoundError(ChatError):
    """A conversation or link does not exist (or is not yours)."""


class SignInError(ChatError):
    """The app needs a signed-in user for this (Sign in with Hugging Face on a Space)."""


class LimitError(ChatError):
    """A per-user limit of this deployment was reached; the message says when to try again."""

    def __init__(self, user_message: str, retry_after_s: float):
        super().__init__(user_message)
        self.retry_after_s = retry_after_s


class AuthError(ChatError):
    """An API request without a working key."""

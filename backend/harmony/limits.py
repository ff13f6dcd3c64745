"""What the harmony renderer is given is checked first, because its time is not linear in everything.

openai-harmony's tokenizer splits text into pieces (words, runs of letters) and merges bytes within
each piece in time that grows with the square of the piece's length: measured here, a run of 10,000
random CJK characters takes 343 ms, 100,000 letters "x" 4.8 s, 400,000 of them 79 s, while the same
400,000 characters as words take 0.11 s. And it holds Python's interpreter lock throughout, so every
other chat and request of the process waits meanwhile. So before any render:

- the whole prompt's text is at most `MAX_PROMPT_CHARS` (eight characters for each token of the
  model's window: text longer than that cannot fit it in any language);
- no run of letters (and combining marks) with no space, digit or punctuation is longer than
  `MAX_RUN`, and such runs over `SHORT_RUN` together stay under `RUN_BUDGET` (the sum of their
  squared lengths, what the tokenizer's time follows). Ordinary prose, code, JSON, base64 and CJK
  text (which has punctuation) stay far below; the limits stop text made to stall the server.
"""

from __future__ import annotations

import re
import unicodedata

from core.config import MODEL_WINDOW
from core.errors import InputError

MAX_PROMPT_CHARS = 8 * MODEL_WINDOW
MAX_RUN = 4_000
SHORT_RUN = 100  # runs up to this long cost next to nothing and are not counted
RUN_BUDGET = 2 * MAX_RUN**2  # about 0.1 s of the tokenizer's time in the worst case measured
# Candidates: long stretches with no whitespace, digit or ASCII punctuation (found by the fast C regex);
# only these are split exactly, by Unicode category, into what the tokenizer takes as one piece.
_CANDIDATE = re.compile(r"[^\s\d!-/:-@\[-`{-~]{%d,}" % (SHORT_RUN + 1))


def texts(value) -> list[str]:
    """Every string in `value` (dicts' keys and values, lists, dataclass-like objects' __dict__)."""
    found, pending = [], [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif hasattr(item, "__dict__"):
            pending.extend(vars(item).values())
    return found


def unwritable(value) -> str | None:
    """The first text in `value` that is not writable Unicode (JSON's escapes can spell a lone surrogate,
    "\\ud800", which no encoder takes), shown escaped; None when all is well."""
    for text in texts(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace")[:60].decode("ascii", "replace")
    return None


def _letter_runs(candidate: str) -> list[int]:
    runs, length = [], 0
    for ch in candidate:
        if unicodedata.category(ch)[0] in "LM":
            length += 1
        else:
            if length > SHORT_RUN:
                runs.append(length)
            length = 0
    if length > SHORT_RUN:
        runs.append(length)
    return runs


def check_renderable(turns, settings) -> None:
    """Raise InputError (a sentence) when the prompt could hold the renderer too long."""
    strings = texts(turns) + texts(settings)
    total = sum(map(len, strings))
    if total > MAX_PROMPT_CHARS:
        raise InputError(f"The conversation is too long for the model: {total:,} characters cannot fit its window "
                         f"of {MODEL_WINDOW:,} tokens. Start a new conversation, or send less.")
    runs = [run for text in strings for candidate in _CANDIDATE.findall(text) for run in _letter_runs(candidate)]
    if runs and (max(runs) > MAX_RUN or sum(r * r for r in runs) > RUN_BUDGET):
        raise InputError(f"The text holds {'a run' if len(runs) == 1 else f'{len(runs)} runs'} of letters with no "
                         f"space, digit or punctuation (the longest {max(runs):,} characters). The tokenizer's time "
                         f"grows with the square of such runs, so this server takes runs of at most {MAX_RUN:,} "
                         "(fewer when there are many). Break them up with spaces.")

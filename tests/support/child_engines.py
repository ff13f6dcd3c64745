"""Engine factories a ProcessEngine's child can import (module-level, so they pickle by name)."""

from __future__ import annotations

import os
import time

from backend.engines.base import EngineInfo


def forced_tiny(folder: str, ids: list[int], progress):
    """The tiny GptOss from `folder`, forced to write `ids` (testkit.forcing)."""
    from backend.engines.loader import load_model
    from backend.engines.transformers_engine import TransformersEngine
    from testkit.forcing import ForceSequence

    progress("Loading weights of tiny", None)
    model = load_model(folder, "auto", "auto").model
    return TransformersEngine(model, do_sample=False, logits_processors=[ForceSequence(ids)],
                              description=EngineInfo(model="tiny-test (own process)"))


def failing(progress):
    from core.errors import ModelLoadError

    progress("Loading weights", 0.5)
    raise ModelLoadError("The weights folder is empty: download the model first.")


def dies_when_asked(progress):
    """An engine whose process exits (as after a crash) on its first request."""
    from backend.engines.base import TokenStream

    class Dies:
        description = EngineInfo(model="dies")

        def submit(self, prompt_ids, params, stop_ids, chat=None):
            stream = TokenStream()
            stream.push([1, 2, 3])
            time.sleep(0.2)  # the ids reach the parent before the crash
            os._exit(3)

        def close(self):
            pass

    return Dies()


def dies_on_word(progress):
    """An engine that answers [7, 8, 9] and ends, except that a prompt holding id 666 kills its process."""
    from backend.engines.base import TokenStream
    from core.events import StopReason

    progress("Loading weights of dies-on-word", None)

    class DiesOnWord:
        description = EngineInfo(model="dies-on-word")

        def submit(self, prompt_ids, params, stop_ids, chat=None):
            if 666 in prompt_ids:
                os._exit(9)
            stream = TokenStream()
            stream.push([7, 8, 9])
            stream.close(StopReason.STOP_ID)
            return stream

        def close(self):
            pass

    return DiesOnWord()


def restarted_twice(progress):
    """An engine whose batching manager was started again twice (what /metrics reports), answering [7]."""
    from backend.engines.base import TokenStream
    from core.events import StopReason

    class Restarted:
        description = EngineInfo(model="restarted")
        manager_restarts = 2

        def submit(self, prompt_ids, params, stop_ids, chat=None):
            stream = TokenStream()
            stream.push([7])
            stream.close(StopReason.STOP_ID)
            return stream

        def close(self):
            pass

    return Restarted()

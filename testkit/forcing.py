"""A logits processor that makes the real tiny model emit chosen harmony sequences."""

ASSISTANT_ID = 173781  # "assistant": the last prompt token, after <|start|>


class ForceSequence:
    """Force `ids` token by token through transformers' continuous batching; with `more`, each
    later request (a turn's next step after a tool call) is forced to the next sequence, the last
    one repeating.

    The batch hands processors one row per request that needs a token, with
    the last token as input. Tests drive one forced request at a time, so a
    step counter says where we are; a prefill (input "assistant" that we did
    not force ourselves) starts the next sequence.
    """

    def __init__(self, ids, *more):
        self.sequences = [list(ids), *[list(m) for m in more]]
        self.ids, self.step, self.index, self.started = self.sequences[0], 0, 0, False

    def __call__(self, input_ids, scores):
        last = int(input_ids.reshape(-1)[-1])
        previous = self.ids[min(self.step, len(self.ids)) - 1] if self.step else None
        if last == ASSISTANT_ID and previous != ASSISTANT_ID:
            if self.started:
                self.index = min(self.index + 1, len(self.sequences) - 1)
            self.ids, self.step, self.started = self.sequences[self.index], 0, True
        target = self.ids[min(self.step, len(self.ids) - 1)]
        self.step += 1
        forced = scores.new_full(scores.shape, -float("inf"))
        forced[..., target] = 0.0
        return forced

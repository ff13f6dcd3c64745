"""A logits processor that makes the real tiny model emit a chosen harmony sequence."""

ASSISTANT_ID = 173781  # "assistant": the last prompt token, after <|start|>


class ForceSequence:
    """Force `ids` token by token through transformers' continuous batching.

    The batch hands processors one row per request that needs a token, with
    the last token as input. Tests drive one forced request at a time, so a
    step counter says where we are; a prefill (input "assistant" that we did
    not force ourselves) starts the sequence again for the next request.
    """

    def __init__(self, ids):
        self.ids, self.step = list(ids), 0

    def __call__(self, input_ids, scores):
        last = int(input_ids.reshape(-1)[-1])
        previous = self.ids[min(self.step, len(self.ids)) - 1] if self.step else None
        if last == ASSISTANT_ID and previous != ASSISTANT_ID:
            self.step = 0
        target = self.ids[min(self.step, len(self.ids) - 1)]
        self.step += 1
        forced = scores.new_full(scores.shape, -float("inf"))
        forced[..., target] = 0.0
        return forced

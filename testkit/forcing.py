"""A logits processor that makes the real tiny model emit chosen harmony sequences."""

# The tokens a prompt ends with: "assistant" (after <|start|>), or the end of a call header the app
# began for the model: `<|message|>` (a named function) or "functions" (tool_choice required).
PROMPT_ENDS = {173781, 200008, 44580}


class ForceSequence:
    """Force `ids` token by token through transformers' continuous batching; with `more`, each
    later request (a turn's next step after a tool call) is forced to the next sequence, the last
    one repeating.

    The batch hands processors one row per request that needs a token, with
    the last token as input. Tests drive one forced request at a time, so a
    step counter says where we are; a prompt's last token (PROMPT_ENDS) that we
    did not force ourselves starts the next sequence. (The batch may also call
    with a prompt token before that, whose result it drops: it starts nothing.)
    """

    def __init__(self, ids, *more):
        self.sequences = [list(ids), *[list(m) for m in more]]
        self.ids, self.step, self.index, self.started = self.sequences[0], 0, 0, False

    def __call__(self, input_ids, scores):
        last = int(input_ids.reshape(-1)[-1])
        previous = self.ids[min(self.step, len(self.ids)) - 1] if self.step else None
        if last in PROMPT_ENDS and last != previous:
            if self.started:
                self.index = min(self.index + 1, len(self.sequences) - 1)
            self.ids, self.step, self.started = self.sequences[self.index], 0, True
        target = self.ids[min(self.step, len(self.ids) - 1)]
        self.step += 1
        forced = scores.new_full(scores.shape, -float("inf"))
        forced[..., target] = 0.0
        return forced

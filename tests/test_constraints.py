"""backend/engines/constraints.py in transformers' continuous batching: a request's constraint masks its
own row of each step, a request beside it in the same batch is untouched, and a bitmask reads as tokens.
The constraint here is a small fake at its seam (the harmony one is tests/test_structured.py's); the
model, the batching and the masking are the real ones (the tiny checkpoint, random weights)."""

from types import SimpleNamespace

import torch

from backend.engines.base import SamplingParams
from backend.engines.constraints import NONE, ConstraintMasks, allowed_tokens
from backend.engines.transformers_engine import TransformersEngine


def bitmask(allowed: set[int], vocab: int) -> torch.Tensor:
    mask = torch.zeros((vocab + 31) // 32, dtype=torch.int32)
    for token in allowed:
        word = int(mask[token // 32]) & 0xFFFFFFFF | (1 << (token % 32))
        mask[token // 32] = word - (1 << 32) if word >= 1 << 31 else word  # int32 wraps
    return mask


class Only:
    """A constraint that allows one token after `after` tokens were generated (free before)."""

    def __init__(self, token: int, vocab: int, after: int = 0):
        self.mask, self.after, self.seen = bitmask({token}, vocab), after, []

    def start(self):
        return self

    def allowed(self, generated):
        self.seen.append(len(generated))
        return self.mask if len(generated) >= self.after else None


def test_a_bitmask_reads_as_one_flag_per_token():
    mask = bitmask({0, 31, 32, 70}, 80)
    flags = allowed_tokens(mask, 80, "cpu")
    assert flags.nonzero().flatten().tolist() == [0, 31, 32, 70]
    assert allowed_tokens(mask, 100, "cpu").shape == (100,)  # a wider row: the rest not allowed


def test_each_row_gets_its_own_requests_mask():
    masks = ConstraintMasks()
    masks.add("a", Only(3, 8))
    rows = [SimpleNamespace(state=SimpleNamespace(request_id=rid, generated_tokens=[])) for rid in ("b", "a")]
    arg = masks.prepare_tensor_args(rows)
    assert arg.tolist() == [NONE, 0]
    scores = masks(torch.zeros(2, 8), arg)
    assert torch.isinf(scores[1]).sum() == 7 and scores[1, 3] == 0 and not torch.isinf(scores[0]).any()
    masks.forget("a")
    assert masks.prepare_tensor_args(rows).tolist() == [NONE, NONE]


def test_the_engine_masks_a_constrained_request_and_not_the_one_beside_it(tiny_model):
    engine = TransformersEngine(tiny_model, do_sample=False)
    try:
        vocab = tiny_model.config.vocab_size
        free = engine.submit([1, 2, 3], SamplingParams(max_new_tokens=6), stop_ids=[])
        constraint = Only(7, vocab, after=2)
        held = engine.submit([1, 2, 3], SamplingParams(max_new_tokens=6, constraint=constraint), stop_ids=[])
        out_free, out_held = read_all(free), read_all(held)
        assert out_held[2:] == [7] * 4  # masked from its third token on, as its constraint said
        assert out_held[:2] == out_free[:2] and out_free[2:] != [7] * 4  # same greedy start; the other is free
        assert constraint.seen[:3] == [0, 1, 2]  # asked before each token, with what was generated so far
    finally:
        engine.close()


def read_all(stream) -> list[int]:
    out = []
    while (chunk := stream.read(timeout=60)) is not None:
        out += chunk
    return out

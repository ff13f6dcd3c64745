"""Per-request constrained decoding inside transformers' continuous batching.

A request may carry a constraint (SamplingParams.constraint: anything with `allowed(generated_ids)`
returning a bitmask of the tokens it allows next, or None for "any"). transformers' batching applies
logits processors to the whole batch and does not tell a plain processor which row is which request; its
per-request processors (`ContinuousBatchingLogitsProcessor`) do get each step's requests, in the order of
the rows, before the step (`prepare_tensor_args`). `ConstraintMasks` is one of those: it asks each
constrained request for its mask there, and applies the masks to those rows when the logits come. It
needs the batching to run synchronously (a step prepared after the previous step's tokens are known),
which the engine sets.
"""

from __future__ import annotations

import threading

import torch
from transformers.generation.continuous_batching.cb_logits_processors import ContinuousBatchingLogitsProcessor

NONE = -1  # a row no constraint applies to


class ConstraintMasks(ContinuousBatchingLogitsProcessor):
    supported_kwargs: dict[str, type] = {}
    ignored_kwargs: tuple[str, ...] = ()

    def __init__(self):
        self._constraints: dict[str, object] = {}  # request id -> its constraint
        self._lock = threading.Lock()
        self._masks: list = []  # this step's masks; the rows' argument indexes them

    # -- the engine's side ----------------------------------------------------------------------

    def add(self, request_id: str, constraint) -> None:
        with self._lock:
            self._constraints[request_id] = constraint

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._constraints.pop(request_id, None)

    @staticmethod
    def reserve(processors) -> None:
        """transformers sizes the per-request arguments' storage from the processors it converted itself;
        ours needs one row of it too (call after the manager is built, before it starts)."""
        processors.tensors_required += 1

    # -- transformers' side ---------------------------------------------------------------------

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.fill_(NONE)

    def prepare_tensor_args(self, requests_with_new_token) -> torch.Tensor:
        with self._lock:
            constraints = dict(self._constraints) if self._constraints else None
        masks, rows = [], []
        for future in requests_with_new_token:
            constraint = constraints and constraints.get(future.state.request_id)
            mask = constraint.allowed(future.state.generated_tokens) if constraint else None
            rows.append(NONE if mask is None else len(masks))
            if mask is not None:
                masks.append(mask)
        self._masks = masks
        return torch.tensor(rows, dtype=torch.int32)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        if not self._masks:
            return scores
        for row, index in enumerate(tensor_arg[: scores.shape[0]].tolist()):
            if index != NONE:
                scores[row].masked_fill_(~allowed_tokens(self._masks[index], scores.shape[-1], scores.device),
                                         float("-inf"))
        return scores


BITS = torch.tensor([1 << i for i in range(32)], dtype=torch.int64)


def allowed_tokens(bitmask: torch.Tensor, width: int, device) -> torch.Tensor:
    """A bitmask (int32 words, bit i of word w = token 32w + i) as one bool per token, `width` long."""
    words = bitmask.to(torch.int64) & 0xFFFFFFFF
    bits = (words.unsqueeze(-1) & BITS) != 0
    flat = bits.reshape(-1)
    if flat.numel() < width:
        flat = torch.cat([flat, torch.zeros(width - flat.numel(), dtype=torch.bool)])
    return flat[:width].to(device)

"""Train the demo model: a tiny GptOss on harmony conversations, its weights saved to
backend/demo/weights.safetensors (the runtime side, backend/demo/model.py, expands them into a folder).

The output softmax over 201,088 ids would dominate training on a CPU, so we
train over only the ids the corpus uses (K of them) plus one extra logit fixed
at log(201,088 - K), which stands for all the others. Copying the trained rows
into a full-size GptOss whose other rows are zero gives exactly the same
distribution: every unused id then has logit 0, and together they weigh
exactly what the extra logit did.

    python -m lab.train --train   # retrain, then build data/demo-model
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Callable

from backend.demo.model import (
    ARTIFACT,
    FULL_VOCAB,
    SpecialIds,
    build,
    save_artifact,
    tiny_config,
)
from backend.harmony.codec import HarmonyCodec, PromptMessage, PromptSettings
from backend.tools.sandbox import TIMEOUT_S
from backend.tools.toolbox import python_namespace
from lab.copying import CopyPractice
from lab.data import WEATHER_TOOL, Sample, make_samples, python_output

# Two: the machine the training budget is for has two cores; one thread took 0.47 s a conversation step
# instead of 0.30 s (over 20 minutes in all).
TRAIN_THREADS = 2
# copy_lr 1e-3: at 3e-3 the copying circuit never formed (copying.py). copy_mix: practice sequences added
# to each batch of conversations, on average, so the circuit is not trained away.
# compile: torch.compile the model for training (1) or not (0); see `train`.
DEFAULTS = dict(hidden=128, layers=3, experts=4, heads=4, steps=3600, batch=20, lr=3e-3, seed=1234, samples=16000,
                copy_steps=3000, list_steps=400, copy_batch=64, copy_lr=1e-3, copy_mix=0.15, compile=1)


def _message(role, text: str, channel: str, recipient: str | None = None, content_type: str | None = None):
    from openai_harmony import Message

    m = Message.from_role_and_content(role, text).with_channel(channel)
    m = m.with_recipient(recipient) if recipient else m
    return m.with_content_type(content_type) if content_type else m


def sample_ids(codec: HarmonyCodec, s: Sample, rng: random.Random) -> tuple[list[int], list[bool]]:
    """One conversation as ids, and which of them the model must learn (what the assistant writes; not
    the prompt, not a tool's output). With python: the thought and the call, the tool's output (read,
    not learned), then the thought after it and the answer, exactly as the app renders each step."""
    from openai_harmony import Author, Message, Role

    date = f"20{rng.randint(25, 27)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    tools = [WEATHER_TOOL] if s.tool or (s.functions is not False and rng.random() < 0.15) else []
    namespaces = [python_namespace(TIMEOUT_S)] if s.python else []
    turns = [turn for earlier in s.earlier for turn in earlier_turns(earlier)] + [PromptMessage("user", s.question)]
    prompt = codec.render(turns, PromptSettings(effort=s.effort, date=date, tools=tools, namespaces=namespaces))
    enc, ids = codec.encoding, SpecialIds.of(codec)

    def said(*messages, end: int) -> list[int]:  # the assistant's messages, after the prompt's <|start|>assistant
        out = [t for m in messages for t in enc.render(m)][2:]
        return out[:-1] + [end]

    analysis = _message(Role.ASSISTANT, s.reasoning, "analysis")
    if s.tool:
        call = _message(Role.ASSISTANT, s.answer, "commentary", "functions.get_weather", "<|constrain|>json")
        return _learn(prompt, said(analysis, call, end=ids.call))
    final = _message(Role.ASSISTANT, s.answer, "final")
    if s.code is None:
        return _learn(prompt, said(analysis, final, end=ids.ret))
    call = _message(Role.ASSISTANT, s.code, "analysis", "python", "code")
    output = python_output(s.code)
    result = Message.from_author_and_content(Author.new(Role.TOOL, "python"), output).with_channel(
        "analysis").with_recipient("assistant")
    read = list(enc.render(result)) + [codec.start_id] + enc.encode("assistant", allowed_special="all")
    ids_, learn = _learn(prompt, said(analysis, call, end=ids.call))
    more, more_learn = _learn(read, said(_message(Role.ASSISTANT, s.after, "analysis"), final, end=ids.ret))
    return ids_ + more, learn + more_learn


def earlier_turns(s: Sample) -> list[PromptMessage]:
    """An earlier question of the chat and its answer as the app stores them (the answer's harmony messages:
    the thought, python's call and output, the thought after, the answer); rendering keeps what harmony
    keeps of an earlier turn."""
    from openai_harmony import Author, Message, Role

    messages = [_message(Role.ASSISTANT, s.reasoning, "analysis")]
    if s.code is not None:
        messages += [_message(Role.ASSISTANT, s.code, "analysis", "python", "code"),
                     Message.from_author_and_content(Author.new(Role.TOOL, "python"), python_output(s.code))
                     .with_channel("analysis").with_recipient("assistant"),
                     _message(Role.ASSISTANT, s.after, "analysis")]
    messages.append(_message(Role.ASSISTANT, s.answer, "final"))
    return [PromptMessage("user", s.question), PromptMessage("assistant", s.answer, s.reasoning,
                                                             [m.to_dict() for m in messages])]


def _learn(given: list[int], written: list[int]) -> tuple[list[int], list[bool]]:
    return list(given) + written, [False] * len(given) + [True] * len(written)


def build_corpus(codec: HarmonyCodec, n: int, seed: int):
    rng = random.Random(seed)
    return [sample_ids(codec, s, rng) for s in make_samples(n, seed)]


def trained_ids(corpus, ids: SpecialIds, practice: CopyPractice) -> list[int]:
    """The ids the small model is trained over: every id of the corpus and of practice, and the ends."""
    return sorted({t for seq, _ in corpus for t in seq} | {ids.ret, ids.call, ids.pad} | practice.ids())


def train(corpus, args, ids: SpecialIds, progress: Callable[[str, float | None], None],
          practice: CopyPractice):
    """Train over the used ids only; return (model, used ids, the practice step at which it learned to
    copy or None). First copy practice (see copying.py), then the conversations with some practice mixed
    in, so the copying circuit is kept."""
    import torch
    from transformers import GptOssForCausalLM

    # Flush denormal floats to zero while training: as attention sharpens, more of its values underflow
    # into denormals, which x86 computes in microcode; a conversation step slowed from 0.46 s to 0.61 s
    # over a run. With the flush, a step on trained weights took 0.44 s instead of 0.59 s. Before the
    # model is built, so the thread pool its first kernels start inherits it too.
    torch.set_flush_denormal(True)
    torch.manual_seed(args["seed"])
    used = trained_ids(corpus, ids, practice)
    index = {t: i for i, t in enumerate(used)}
    model = GptOssForCausalLM(tiny_config(len(used), args["hidden"], args["layers"], args["experts"], ids, index,
                                           args.get("heads", 4)))
    model.train()
    if args.get("compile"):
        # Fuses the attention's elementwise passes (mask, sinks, softmax) and their backward: a
        # conversation step took 0.37 s instead of 0.47 s on 2 cores (side by side), for under a minute of compiling.
        # In place, so the weights keep their names. dynamic: every slice has another length.
        model.model.compile(dynamic=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args["lr"], weight_decay=0.0)
    run = _Run(model, opt, args, ids, index, progress, math.log(FULL_VOCAB - len(used)))
    # Without this, two runs in one process on one machine gave different weights after 120 steps (some
    # kernel sums in a varying order), and which run learns a task well is that kind of luck.
    # A fixed number of threads, so the weights do not depend on how many cores the machine has either
    # (a sum split over more threads adds in another order).
    was_deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(TRAIN_THREADS)
    try:
        copied_at = run.phase("tokens", corpus, practice)  # practice stops once it copies
        run.phase("lists", corpus, practice)
        run.phase("chats", corpus, practice)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)  # torch's default
    return model.eval(), used, copied_at


# Copy practice ends once the loss, averaged over the last COPIED_WINDOW steps, is under COPIED_LOSS
# (copying learned: the run's first id cannot be known, the rest can), or after `copy_steps`.
COPIED_LOSS, COPIED_WINDOW = 0.8, 50


class _Run:
    """One training run through the phases, with the step count and progress across them."""

    def __init__(self, model, opt, args: dict, ids: SpecialIds, index: dict, progress: Callable, others: float):
        self.model, self.opt, self.args, self.ids, self.index, self.progress = model, opt, args, ids, index, progress
        self.others = others  # the weight of every id the corpus never uses
        self.rng, self.done, self.t0 = random.Random(args["seed"]), 0, time.time()
        self.total = args["copy_steps"] + args["list_steps"] + args["steps"]

    def phase(self, phase: str, corpus, practice: CopyPractice) -> int | None:
        """Run one phase; for practice, the step at which it learned to copy (None: never did)."""
        steps = self.args[{"tokens": "copy_steps", "lists": "list_steps", "chats": "steps"}[phase]]
        recent: list[float] = []
        for step in range(steps):
            samples = _phase_batch(phase, self.rng, corpus, practice, self.args)
            lr = _phase_lr(phase, step, steps, self.done, self.args)
            loss = _step(self.model, self.opt, lr, samples, self.index, self.ids.pad, self.others)
            self.done += 1
            recent = (recent + [loss])[-COPIED_WINDOW:]
            copied = phase == "tokens" and len(recent) == COPIED_WINDOW and sum(recent) / COPIED_WINDOW < COPIED_LOSS
            if copied:
                self.total -= steps - step - 1
            if step % 25 == 0 or step == steps - 1 or copied:
                self.progress(f"Training the demo model ({PHASES[phase]}): step {self.done}/{self.total}, "
                              f"loss {loss:.3f}, {time.time() - self.t0:.0f} s", self.done / self.total)
            if copied:
                return step + 1
        return None


PHASES = {"tokens": "copy practice", "lists": "copying lists", "chats": "conversations"}


def _phase_batch(phase: str, rng: random.Random, corpus, practice: CopyPractice, args: dict):
    if phase != "chats":
        return [practice.draw(rng, phase) for _ in range(args["copy_batch"])]
    mixed = int(args["copy_mix"] * args["batch"] + rng.random())  # practice kept up, on average copy_mix
    return ([corpus[rng.randrange(len(corpus))] for _ in range(args["batch"])]
            + [practice.draw(rng, "lists") for _ in range(mixed)])


def _phase_lr(phase: str, step: int, steps: int, done: int, args: dict) -> float:
    """Practice: flat after one warm-up over both practice phases. Conversations: a fresh warm-up, then
    cosine down to a tenth."""
    if phase != "chats":
        return args["copy_lr"] * min(1.0, (done + 1) / 50)
    return args["lr"] * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))


SLICES = 4  # a batch runs in slices of similar length: far less padding, the same gradient


def _step(model, opt, lr: float, samples, index, pad: int, others: float, slices: int = SLICES) -> float:
    """One optimizer step on the mean loss over every learned token of `samples`. The samples are
    sorted by length and run in `slices` parts whose gradients add up to the whole batch's."""
    import torch

    for group in opt.param_groups:
        group["lr"] = lr
    ordered = sorted(samples, key=lambda s: len(s[0]))
    learned = sum(sum(learn[1:]) for _, learn in samples)  # targets are the ids after the first
    size, total = math.ceil(len(ordered) / slices), 0.0
    opt.zero_grad()
    for start in range(0, len(ordered), size):
        batch, mask = _batch(ordered[start:start + size], index, pad)
        logits = model(input_ids=batch).logits[:, :-1]
        logits = torch.cat([logits, logits.new_full((*logits.shape[:2], 1), others)], dim=-1)
        target, m = batch[:, 1:], mask[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits[m], target[m], reduction="sum") / learned
        loss.backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return total


def _batch(samples, index, pad: int):
    """Padded ids and the mask of what is learned (the assistant's own tokens)."""
    import torch

    width = max(len(seq) for seq, _ in samples)
    ids = torch.full((len(samples), width), index[pad], dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.bool)
    for row, (seq, learn) in enumerate(samples):
        ids[row, : len(seq)] = torch.tensor([index[t] for t in seq])
        mask[row, : len(seq)] = torch.tensor(learn)
    return ids, mask


def train_artifact(codec: HarmonyCodec, progress: Callable, path: Path = ARTIFACT, **overrides) -> None:
    args = {**DEFAULTS, **overrides}
    progress("Building the demo model: writing practice conversations", 0.0)
    corpus = build_corpus(codec, args["samples"], args["seed"])
    practice = CopyPractice(codec.encoding, corpus, set(codec.special_names()))
    small, used, copied_at = train(corpus, args, SpecialIds.of(codec), progress, practice)
    if copied_at is None:  # the chats would then copy no number right: keep the weights there are
        raise RuntimeError(f"Copy practice did not learn to copy in {args['copy_steps']} steps, so the weights "
                           "were not saved. Retrain with another --seed or more --copy_steps.")
    save_artifact(small, used, args, path)


def main() -> None:
    from backend.harmony.vocab import load_encoding

    parser = argparse.ArgumentParser(description="Build the demo model folder (or retrain its weights).")
    parser.add_argument("--out", default="data/demo-model")
    parser.add_argument("--train", action="store_true", help=f"retrain and overwrite {ARTIFACT.name}")
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key, type=type(value), default=value)
    args = vars(parser.parse_args())
    if args["train"]:
        import torch

        torch.set_flush_denormal(True)  # before any kernel starts a thread (see `train`)
    out, retrain = Path(args.pop("out")), args.pop("train")
    codec = HarmonyCodec(load_encoding(out.parent / "vocab"))
    progress = lambda stage, fraction: print(stage, flush=True)  # noqa: E731
    if retrain:
        train_artifact(codec, progress, **args)
    build(out, codec, progress)
    print(f"saved {out}")


if __name__ == "__main__":
    main()

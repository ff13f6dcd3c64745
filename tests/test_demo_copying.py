"""Copy practice for the demo model: the second copy is what is learned, and it really is a copy."""

import random

import pytest

from backend.demo import build as demo_build
from backend.demo.copying import MODES, CopyPractice


@pytest.fixture(scope="module")
def practice(codec):
    corpus = demo_build.build_corpus(codec, 60, 7)
    return CopyPractice(codec.encoding, corpus, set(codec.special_names())), corpus


@pytest.mark.parametrize("mode", MODES)
def test_what_is_learned_is_a_copy_of_what_was_given(practice, codec, mode):
    copying, _ = practice
    rng = random.Random(3)
    closers = sorted({tuple(wrap[3]) for wrap in copying.wraps}, key=len, reverse=True)  # longest first
    for _ in range(50):
        ids, learn = copying.draw(rng, mode)
        first = learn.index(True)
        assert all(learn[first:]) and not any(learn[:first])  # only the second copy, to the end
        written = ids[first:]
        run = next(written[:-len(c)] for c in closers if tuple(written[-len(c):]) == c)
        given = ids[:first]
        assert any(given[i:i + len(run)] == run for i in range(len(given) - len(run) + 1)), codec.decode(ids)


def test_lists_repeat_their_separators_and_tokens_hold_no_harmony(practice, codec):
    copying, _ = practice
    rng = random.Random(4)
    text = codec.decode(copying.number_list(random.Random(1)))
    assert ", " in text and all(part.isdigit() for part in text.split(", "))
    special = set(codec.special_names())
    for _ in range(50):
        ids, learn = copying.draw(rng, "tokens")
        assert not special & {t for t, learned in zip(ids, learn) if learned}


def test_every_id_practice_writes_is_in_the_trained_vocabulary(practice):
    copying, corpus = practice
    known = {t for seq, _ in corpus for t in seq} | copying.ids()
    rng = random.Random(5)
    for mode in MODES * 30:
        assert set(copying.draw(rng, mode)[0]) <= known


def test_training_runs_every_phase_and_reports_progress(practice, codec):
    copying, corpus = practice
    stages = []
    args = {**demo_build.DEFAULTS, "hidden": 16, "layers": 2, "experts": 2, "copy_steps": 2, "list_steps": 2,
            "steps": 2, "batch": 2, "copy_batch": 2}
    model, used = demo_build.train(corpus, args, demo_build.SpecialIds.of(codec), lambda s, f: stages.append(s),
                                   copying)
    assert [s.split("(")[1].split(")")[0] for s in stages] == ["copy practice"] * 2 + ["copying lists"] * 2 \
        + ["conversations"] * 2
    assert stages[-1].startswith("Training the demo model (conversations): step 6/6")
    assert copying.ids() <= set(used) and model.config.vocab_size == len(used)

"""Decoding strategies (keras_s2s.decoding) against fake encode/step callables, no model:
greedy on scripted argmaxes, beam search on scripted probability trees with known n-best
lists and scores, the GNMT length penalty, state reordering, and beam width 1 == greedy."""

import math

import numpy as np
import pytest

from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID
from keras_s2s.decoding import Beam, Greedy, Hypothesis, decode, greedy_decode, log_softmax

VOCAB = 10
A, B, C = 4, 5, 6  # plain tokens of the scripted trees (EOS_ID is 3)
LOG = math.log


# --- fakes -------------------------------------------------------------------------------------
class ScriptedModel:
    """encode/step whose argmax at step t of row r is script[r][t] (then EOS forever), with
    probability P_TOP (every other token 0.05). Records the tokens fed to every step."""

    P_TOP = 0.55

    def __init__(self, script):
        self.script = script
        self.fed: list[list[int]] = []
        self.encoded = None

    def encode(self, source_ids):
        self.encoded = np.array(source_ids)
        return {"step": np.zeros(len(source_ids), np.int32)}

    def step(self, token_ids, state):
        assert token_ids.shape == (len(self.script), 1)
        assert token_ids.dtype == np.int32
        t = int(state["step"][0])
        self.fed.append(token_ids[:, 0].tolist())
        probs = np.full((len(self.script), VOCAB), 0.05)
        for row, tokens in enumerate(self.script):
            probs[row, tokens[t] if t < len(tokens) else EOS_ID] = self.P_TOP
        return np.log(probs).astype(np.float32), {"step": state["step"] + 1}

    @property
    def steps(self) -> int:
        return len(self.fed)


def greedy(script, max_length=20, **kwargs):
    model = ScriptedModel(script)
    source = np.ones((len(script), 4), np.int32)
    return decode(model.encode, model.step, source, Greedy(), max_length=max_length, **kwargs), model


def hyp(ids, log_prob, finished=True):
    """An expected Hypothesis with approximate floats, scored without length penalty."""
    return Hypothesis(tuple(ids), pytest.approx(log_prob), pytest.approx(log_prob), finished)


def ids_of(hypotheses):
    return [[list(h.ids) for h in row] for row in hypotheses]


class TreeModel:
    """A step function reading next-token probabilities off a tree of generated prefixes:
    ``tree[prefix] = {token: probability}`` (any other prefix: EOS with probability 1).

    The state holds ``fed`` [N, t] (every token fed so far, SOS first, appended by each step)
    and ``memory`` [N, 2] (never changed). The prefix of a row is read from its own ``fed``
    state, so a beam whose state did not follow its parent gets the wrong probabilities.
    """

    def __init__(self, tree, vocab=8):
        self.tree, self.vocab = tree, vocab
        self.calls: list[dict] = []  # per step: the tokens and the state arrays received

    def encode(self, source_ids):
        self.memory = np.arange(len(source_ids) * 2, dtype=np.float32).reshape(-1, 2)
        return {"fed": np.zeros((len(source_ids), 0), np.int32), "memory": self.memory}

    def step(self, token_ids, state):
        self.calls.append({"tokens": token_ids[:, 0].tolist(), **state})
        fed = np.concatenate([state["fed"], token_ids], axis=1)
        log_probs = np.full((len(token_ids), self.vocab), -np.inf, np.float32)
        for row, history in enumerate(fed):
            for token, p in self.tree.get(tuple(history[1:].tolist()), {EOS_ID: 1.0}).items():
                log_probs[row, token] = LOG(p)
        return log_probs, {"fed": fed, "memory": state["memory"]}

    def decode(self, strategy, max_length=10, **kwargs):
        source = np.ones((1, 3), np.int32)
        return decode(self.encode, self.step, source, strategy, max_length=max_length, **kwargs)


# Greedy takes A (0.6) then C (0.55): A C EOS has p = 0.6 * 0.55 * 0.9 = 0.297, while B EOS has
# p = 0.4 * 0.9 = 0.36 and A EOS p = 0.6 * 0.45 = 0.27.
GREEDY_IS_WRONG = {
    (): {A: 0.6, B: 0.4},
    (A,): {C: 0.55, EOS_ID: 0.45},
    (B,): {EOS_ID: 0.9, C: 0.1},
    (A, C): {EOS_ID: 0.9, C: 0.1},
}


class RandomModel:
    """A deterministic random step function: the log-probs of a row are a fixed random table's
    row picked by a hash of the source row and every token fed so far. Sources listed in
    ``no_eos`` never get EOS. ``quantize`` rounds the logits to 1 decimal (many exact ties)."""

    def __init__(self, seed, vocab=7, no_eos=(), quantize=False):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0.0, 2.0, size=(97, vocab))
        self.table = log_softmax(np.round(logits, 1) if quantize else logits)
        self.no_eos = set(no_eos)

    def encode(self, source_ids):
        return {"hash": source_ids[:, 0].astype(np.int64) * 7 + 1, "eos": ~np.isin(source_ids[:, 0], list(self.no_eos))}

    def step(self, token_ids, state):
        hash_ = (state["hash"] * 31 + token_ids[:, 0]) % 97
        log_probs = self.table[hash_].copy()
        log_probs[~state["eos"], EOS_ID] = -np.inf
        return log_probs, {"hash": hash_, "eos": state["eos"]}


# --- greedy ------------------------------------------------------------------------------------
def test_greedy_follows_the_argmax_and_drops_the_final_eos():
    (outputs,), _ = greedy([[5, 6, 7, EOS_ID]])
    assert outputs == [hyp([5, 6, 7], 4 * LOG(0.55))]


def test_greedy_score_is_the_sum_of_the_chosen_log_probs_including_eos():
    (outputs,), _ = greedy([[5, EOS_ID]])
    (best,) = outputs
    assert best.log_prob == pytest.approx(2 * LOG(0.55), rel=1e-6)
    assert best.score == best.log_prob


def test_first_step_is_fed_sos_and_later_steps_the_previous_argmax():
    _, model = greedy([[5, 6, EOS_ID], [8, 4, EOS_ID]])
    assert model.fed == [[SOS_ID, SOS_ID], [5, 8], [6, 4]]


def test_argmax_picks_the_largest_log_prob_not_the_first_nonzero():
    def step(token_ids, state):
        logits = np.array([[0.1, 0.3, -2.0, 0.2, 0.9, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
        if state["t"][0] == 1:
            logits[0, EOS_ID] = 5.0
        return log_softmax(logits), {"t": state["t"] + 1}

    assert greedy_decode(lambda s: {"t": np.zeros(1)}, step, np.ones((1, 2), np.int32), max_length=5) == [[4]]


def test_greedy_ties_go_to_the_lowest_id():
    step = lambda token_ids, state: (np.log(np.full((1, 8), 1 / 8, np.float32)), state)  # noqa: E731
    (outputs,) = decode(lambda s: {}, step, np.ones((1, 2), np.int32), max_length=2)
    assert outputs[0].ids == (PAD_ID, PAD_ID)


@pytest.mark.parametrize("source", [np.ones((1, 4), np.int64), [[1, 1, 1, 1]]], ids=["int64", "list"])
def test_encode_receives_the_source_ids_as_int32(source):
    model = ScriptedModel([[EOS_ID]])
    decode(model.encode, model.step, source, Greedy(), max_length=3)
    assert model.encoded.dtype == np.int32
    assert model.encoded.shape == (1, 4)


def test_each_row_stops_at_its_first_eos():
    outputs, _ = greedy([[5, EOS_ID, 6, 7, EOS_ID]])
    assert ids_of(outputs) == [[[5]]]


def test_output_never_contains_eos():
    outputs, _ = greedy([[EOS_ID, 5], [4, EOS_ID], [4, 4, 4]], max_length=3)
    assert ids_of(outputs) == [[[]], [[4]], [[4, 4, 4]]]
    assert [row[0].finished for row in outputs] == [True, True, False]


def test_ids_are_returned_as_predicted_and_vocabulary_decode_drops_sos_and_pad():
    from keras_s2s.vocab import Vocabulary

    outputs, _ = greedy([[5, SOS_ID, 6, EOS_ID]])
    assert ids_of(outputs) == [[[5, SOS_ID, 6]]]
    vocab = Vocabulary(["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c"])
    assert vocab.decode(outputs[0][0].ids) == ["b", "c"]


def test_batched_rows_finish_independently():
    outputs, model = greedy([[4, EOS_ID], [5, 6, 7, 8, EOS_ID], [EOS_ID], [9, 9, EOS_ID]])
    assert ids_of(outputs) == [[[4]], [[5, 6, 7, 8]], [[]], [[9, 9]]]
    assert [row[0].log_prob for row in outputs] == pytest.approx([LOG(0.55) * n for n in (2, 5, 1, 3)], rel=1e-6)
    assert model.steps == 5  # the loop ends when the last row emits EOS


def test_a_finished_row_ignores_what_the_model_predicts_later():
    outputs, _ = greedy([[4, EOS_ID, 5, 6, 7], [4, 4, 4, 4, 4, EOS_ID]])
    assert outputs[0][0].ids == (4,)
    assert outputs[0][0].log_prob == pytest.approx(2 * LOG(0.55), rel=1e-6)


def test_greedy_stops_after_max_length_steps_without_eos():
    outputs, model = greedy([[4] * 100, [5, EOS_ID]], max_length=7)
    assert ids_of(outputs) == [[[4] * 7], [[5]]]
    assert (outputs[0][0].finished, outputs[1][0].finished) == (False, True)
    assert outputs[0][0].log_prob == pytest.approx(7 * LOG(0.55), rel=1e-6)  # no EOS to count
    assert model.steps == 7


def test_max_length_one_runs_a_single_step():
    outputs, model = greedy([[4, 5, EOS_ID]], max_length=1)
    assert (ids_of(outputs), model.steps) == ([[[4]]], 1)


def test_custom_sos_and_eos_ids_are_honoured():
    outputs, model = greedy([[EOS_ID, 7, 8, 9]], sos_id=5, eos_id=8)
    assert ids_of(outputs) == [[[EOS_ID, 7]]]
    assert model.fed[0] == [5]


def test_greedy_decode_returns_the_plain_id_lists():
    model = ScriptedModel([[6, 5, EOS_ID], [EOS_ID]])
    assert greedy_decode(model.encode, model.step, np.ones((2, 3), np.int32), max_length=9) == [[6, 5], []]


def test_an_empty_batch_decodes_to_nothing_without_calling_the_model():
    def fail(*args):
        raise AssertionError("called")

    assert decode(fail, fail, np.zeros((0, 3), np.int32), Beam(width=2), max_length=5) == []


# --- beam search: known n-best lists -----------------------------------------------------------
def test_beam_of_two_finds_the_sequence_greedy_misses():
    (greedy_best,) = TreeModel(GREEDY_IS_WRONG).decode(Greedy())[0]
    assert greedy_best.ids == (A, C)
    assert greedy_best.log_prob == pytest.approx(LOG(0.6) + LOG(0.55) + LOG(0.9))

    (nbest,) = TreeModel(GREEDY_IS_WRONG).decode(Beam(width=2, nbest=2))
    assert nbest == [
        hyp([B], LOG(0.4) + LOG(0.9)),
        hyp([A, C], LOG(0.6) + LOG(0.55) + LOG(0.9)),
    ]


def test_nbest_is_a_prefix_of_the_full_ranking():
    (top1,) = TreeModel(GREEDY_IS_WRONG).decode(Beam(width=3, nbest=1))
    (top3,) = TreeModel(GREEDY_IS_WRONG).decode(Beam(width=3, nbest=3))
    assert [h.ids for h in top3] == [(B,), (A, C), (A,)]  # distinct: only beam 0 expands at step 0
    assert [h.log_prob for h in top3] == pytest.approx([LOG(0.36), LOG(0.297), LOG(0.27)])
    assert top1 == top3[:1]


def test_beam_stops_once_every_beam_has_finished():
    model = TreeModel(GREEDY_IS_WRONG)
    model.decode(Beam(width=2), max_length=50)
    assert len(model.calls) == 3  # A|B, then B EOS / A C, then A C EOS


def test_a_finished_beam_keeps_its_score_while_others_grow():
    # B EOS finishes at step 1 (p 0.36) and stays in the beam while A A grows and ends below it.
    tree = {(): {A: 0.55, B: 0.45}, (B,): {EOS_ID: 0.8, C: 0.2}, (A,): {A: 1.0}, (A, A): {A: 0.4, EOS_ID: 0.6}}
    (nbest,) = TreeModel(tree).decode(Beam(width=2, nbest=2))
    assert [(h.ids, h.finished) for h in nbest] == [((B,), True), ((A, A), True)]
    assert [h.log_prob for h in nbest] == pytest.approx([LOG(0.36), LOG(0.33)])


def test_unfinished_hypotheses_fill_in_after_the_finished_ones_at_max_length():
    # A A A ... never ends and keeps p 0.7, above the only finished B EOS (p 0.2).
    tree = {(): {A: 0.7, B: 0.2, C: 0.1}, (B,): {EOS_ID: 1.0}, **{(A,) * n: {A: 1.0} for n in range(1, 9)}}
    model = TreeModel(tree)
    (nbest,) = model.decode(Beam(width=2, nbest=2), max_length=4)
    assert nbest == [
        hyp([B], LOG(0.2)),
        hyp([A] * 4, LOG(0.7), finished=False),
    ]
    assert len(model.calls) == 4


# --- beam search: GNMT length penalty ---------------------------------------------------------
# Short: B EOS, p = 0.6 * 0.9 = 0.54 (2 tokens). Long: A A A A A EOS, p = 0.4 (6 tokens).
SHORT_OR_LONG = {(): {B: 0.6, A: 0.4}, (B,): {EOS_ID: 0.9, C: 0.1}, **{(A,) * n: {A: 1.0} for n in range(1, 5)}}


def gnmt(log_prob, length, alpha):
    return log_prob / ((5 + length) / 6) ** alpha


def test_without_length_penalty_the_short_hypothesis_wins():
    (nbest,) = TreeModel(SHORT_OR_LONG).decode(Beam(width=2, nbest=2, length_penalty=0.0))
    assert [h.ids for h in nbest] == [(B,), (A,) * 5]
    assert [h.score for h in nbest] == pytest.approx([LOG(0.54), LOG(0.4)])


def test_length_penalty_one_prefers_the_longer_hypothesis():
    (nbest,) = TreeModel(SHORT_OR_LONG).decode(Beam(width=2, nbest=2, length_penalty=1.0))
    assert [h.ids for h in nbest] == [(A,) * 5, (B,)]
    # len counts the EOS: 6 tokens for A A A A A EOS, 2 for B EOS.
    assert [h.score for h in nbest] == pytest.approx([LOG(0.4) * 6 / 11, LOG(0.54) * 6 / 7])
    assert [h.log_prob for h in nbest] == pytest.approx([LOG(0.4), LOG(0.54)])


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.6, 1.0, 2.0])
def test_scores_follow_the_gnmt_formula(alpha):
    (nbest,) = TreeModel(SHORT_OR_LONG).decode(Beam(width=2, nbest=2, length_penalty=alpha))
    for h in nbest:
        assert h.score == pytest.approx(gnmt(h.log_prob, len(h.ids) + 1, alpha))
    assert nbest[0].score >= nbest[1].score


def test_a_finished_beam_is_ranked_by_its_own_length_not_the_step_count():
    # B EOS (p 0.2, 2 tokens) finishes at step 1. At step 2 it scores log(0.2) / (7/6) = -1.379
    # against A A C at log(0.184) / (8/6) = -1.270, so it must leave the beam; counted as 3
    # tokens long it would score -1.207 and wrongly push A A C out.
    tree = {(): {A: 0.8, B: 0.2}, (B,): {EOS_ID: 1.0}, (A,): {A: 1.0}, (A, A): {A: 0.75, C: 0.23, EOS_ID: 0.02}}
    (nbest,) = TreeModel(tree).decode(Beam(width=2, nbest=2, length_penalty=1.0))
    assert [h.ids for h in nbest] == [(A, A, A), (A, A, C)]
    assert [h.score for h in nbest] == pytest.approx([gnmt(LOG(0.6), 4, 1.0), gnmt(LOG(0.184), 4, 1.0)])


def test_unfinished_hypotheses_are_penalized_by_their_length_without_eos():
    (nbest,) = TreeModel(SHORT_OR_LONG).decode(Beam(width=2, nbest=2, length_penalty=1.0), max_length=3)
    unfinished = [h for h in nbest if not h.finished]
    assert [h.ids for h in unfinished] == [(A,) * 3]
    assert unfinished[0].score == pytest.approx(gnmt(LOG(0.4), 3, 1.0))


# --- beam search: state --------------------------------------------------------------------------
def test_state_follows_each_beams_parent_and_constant_state_is_never_gathered():
    model = TreeModel(GREEDY_IS_WRONG)
    model.decode(Beam(width=2, nbest=2), constant_state={"memory"})
    first, second, third = model.calls
    # The source's state is repeated for each beam; only beam 0 is live at step 0.
    assert first["tokens"] == [SOS_ID, SOS_ID]
    np.testing.assert_array_equal(first["memory"], np.repeat(model.memory, 2, axis=0))
    # Step 1 kept [A, B]; step 2 kept [B EOS, A C]: rows swapped parents, and so did `fed`.
    assert second["tokens"] == [A, B]
    assert second["fed"].tolist() == [[SOS_ID], [SOS_ID]]
    assert third["tokens"] == [EOS_ID, C]
    assert third["fed"].tolist() == [[SOS_ID, B], [SOS_ID, A]]
    # The constant array is the very object the first step returned, untouched.
    assert second["memory"] is first["memory"] and third["memory"] is first["memory"]


def test_state_not_declared_constant_is_gathered_by_parent():
    model = TreeModel(GREEDY_IS_WRONG)
    model.decode(Beam(width=2))
    assert model.calls[2]["memory"] is not model.calls[0]["memory"]
    np.testing.assert_array_equal(model.calls[2]["memory"], np.repeat(model.memory, 2, axis=0))


def test_state_arrays_are_repeated_width_times_per_source():
    seen = []

    def step(token_ids, state):
        seen.append(state["x"])
        return np.zeros((len(token_ids), 5), np.float32) + np.log(0.2), state

    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    decode(lambda s: {"x": x}, step, np.ones((2, 3), np.int32), Beam(width=3), max_length=1, constant_state=["x"])
    np.testing.assert_array_equal(seen[0], [[1, 2], [1, 2], [1, 2], [3, 4], [3, 4], [3, 4]])


def test_unknown_constant_state_names_are_rejected():
    with pytest.raises(ValueError, match=r"`constant_state` names \['memroy'\]"):
        TreeModel(GREEDY_IS_WRONG).decode(Beam(width=2), constant_state={"memroy"})


# --- beam search: consistency ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("quantize", [False, True])
def test_beam_width_one_is_greedy(seed, quantize):
    model = RandomModel(seed, no_eos={2, 4}, quantize=quantize)
    source = np.arange(6, dtype=np.int32)[:, None].repeat(3, axis=1)  # rows 2 and 4 never end
    greedy_out = decode(model.encode, model.step, source, Greedy(), max_length=12)
    beam_out = decode(model.encode, model.step, source, Beam(width=1), max_length=12)
    assert ids_of(beam_out) == ids_of(greedy_out)
    assert [h.finished for (h,) in beam_out] == [h.finished for (h,) in greedy_out]
    assert [h.log_prob for (h,) in beam_out] == pytest.approx([h.log_prob for (h,) in greedy_out])
    assert not greedy_out[2][0].finished and len(greedy_out[2][0].ids) == 12


@pytest.mark.parametrize("seed", range(3))
def test_beam_decodes_each_batch_row_independently(seed):
    model = RandomModel(seed, no_eos={1})
    source = np.array([[3, 0], [1, 0], [0, 0], [5, 0]], np.int32)
    strategy = Beam(width=3, nbest=3, length_penalty=0.6)
    together = decode(model.encode, model.step, source, strategy, max_length=8)
    alone = [decode(model.encode, model.step, row[None], strategy, max_length=8)[0] for row in source]
    assert together == alone  # ids, scores and flags, exactly


@pytest.mark.parametrize("seed", range(3))
def test_beam_hypotheses_are_distinct_and_sorted_by_score(seed):
    model = RandomModel(seed, quantize=True)
    source = np.arange(3, dtype=np.int32)[:, None]
    for row in decode(model.encode, model.step, source, Beam(width=4, nbest=4, length_penalty=0.5), max_length=6):
        assert len({h.ids for h in row}) == 4
        for done in (True, False):  # finished first, then any cut at max_length; each by score
            scores = [h.score for h in row if h.finished == done]
            assert scores == sorted(scores, reverse=True)
        assert [h.finished for h in row] == sorted((h.finished for h in row), reverse=True)


# --- log_softmax ----------------------------------------------------------------------------------
def test_log_softmax_is_float32_log_probabilities_along_the_last_axis():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float64)
    out = log_softmax(logits)
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_allclose(np.exp(out).sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[1], np.log(1 / 3), rtol=1e-6)


def test_log_softmax_is_stable_for_huge_logits_and_honours_axis():
    out = log_softmax(np.array([1000.0, 0.0, -1000.0]))
    assert np.isfinite(out[:2]).all() and out[0] == pytest.approx(0.0)
    np.testing.assert_allclose(log_softmax(np.eye(3), axis=0), log_softmax(np.eye(3), axis=-1).T)


# --- invalid input --------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", [Greedy(), Beam(width=2)])
@pytest.mark.parametrize("max_length", [0, -1])
def test_max_length_below_one_is_rejected(strategy, max_length):
    with pytest.raises(ValueError, match=rf"argument `max_length`, expected a positive integer, got {max_length}"):
        TreeModel(GREEDY_IS_WRONG).decode(strategy, max_length=max_length)


@pytest.mark.parametrize("shape", [(3,), (1, 2, 3)])
def test_source_ids_must_be_two_dimensional(shape):
    model = TreeModel(GREEDY_IS_WRONG)
    with pytest.raises(ValueError, match=r"argument `source_ids`, expected a 2-D array .* got shape \["):
        decode(model.encode, model.step, np.ones(shape, np.int32), max_length=3)


@pytest.mark.parametrize("strategy", [Greedy(), Beam(width=2)])
def test_a_step_returning_logits_with_a_time_axis_is_rejected(strategy):
    def step(token_ids, state):
        return np.zeros((len(token_ids), 1, 5), np.float32), state

    with pytest.raises(ValueError, match=r"shape \[B, V\] = \[\d, vocabulary_size\], got shape \[\d, 1, 5\]"):
        decode(lambda s: {}, step, np.ones((1, 2), np.int32), strategy, max_length=3)


def test_a_step_returning_one_row_per_source_instead_of_per_beam_is_rejected():
    with pytest.raises(ValueError, match=r"shape \[B, V\] = \[6, vocabulary_size\], got shape \[2, 5\]"):
        decode(lambda s: {}, lambda t, s: (np.zeros((2, 5)), s), np.ones((2, 2), np.int32), Beam(width=3), max_length=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "argument `width`, expected a positive integer, got 0."),
        ({"width": -2}, "argument `width`, expected a positive integer, got -2."),
        ({"width": 2.0}, "argument `width`, expected a positive integer, got 2.0."),
        ({"nbest": 0}, "argument `nbest`, expected a positive integer, got 0."),
        ({"width": 2, "nbest": 3}, r"argument `nbest`, expected at most `width` \(2\) hypotheses, got 3."),
        ({"length_penalty": -0.5}, "argument `length_penalty`, expected a non-negative finite number, got -0.5."),
        ({"length_penalty": math.nan}, "argument `length_penalty`, expected a non-negative finite number, got nan."),
    ],
)
def test_invalid_beam_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=rf"Received an invalid value for {message}"):
        Beam(**kwargs)


def test_an_unknown_strategy_is_rejected():
    with pytest.raises(TypeError, match="Greedy\\(\\) or Beam"):
        TreeModel(GREEDY_IS_WRONG).decode("beam")

"""Decoding strategies (greedy, beam search with n-best) over any runtime, numpy only.

Every runtime (Keras, SavedModel, ONNX Runtime) supplies the same two callables:

    encode(source_ids [B, S] int32) -> state
    step(token_ids [B, 1] int32, state) -> (log_probs [B, V] float32, new state)

A state is a mapping of named numpy arrays with the batch on axis 0. ``decode`` runs one
strategy over them and returns, per source row, a best-first list of ``Hypothesis``:

    decode(translator.encode, translator.step, source_ids, Beam(width=5, nbest=3), max_length=50)

``step`` returns log-probabilities; ``log_softmax`` turns a model's logits into them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Callable, Collection, Mapping

import numpy as np

from keras_s2s.constants import EOS_ID, FINISHED, LOG_PROB, OUTPUT_IDS, OUTPUT_LENGTHS, SCORE, SOS_ID

State = Mapping[str, np.ndarray]
EncodeFn = Callable[[np.ndarray], State]
StepFn = Callable[[np.ndarray, State], tuple[np.ndarray, State]]


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence.

    ids: the generated token ids without the final EOS (otherwise exactly as predicted: a
        predicted SOS or PAD stays, ``Vocabulary.decode`` drops it when making text).
    score: the ranking score, ``log_prob / lp(len)`` (``log_prob`` for Greedy or alpha 0).
    log_prob: the sum of the log-probabilities of every generated token, the EOS included
        when one was generated.
    finished: True if the sequence ended with EOS, False if it was cut at ``max_length``.
    """

    ids: tuple[int, ...]
    score: float
    log_prob: float
    finished: bool


@dataclasses.dataclass(frozen=True)
class Greedy:
    """The most likely next token at every step; one hypothesis per source."""


@dataclasses.dataclass(frozen=True)
class Beam:
    """Beam search keeping ``width`` hypotheses per source and returning the ``nbest`` best.

    Hypotheses are ranked by ``log_prob / lp(len)`` with the GNMT length penalty
    ``lp(len) = ((5 + len) / 6) ** length_penalty`` (Wu et al. 2016), where ``len`` is the
    number of generated tokens including the EOS. ``length_penalty=0`` ranks by log_prob;
    larger values favour longer hypotheses.
    """

    width: int = 5
    length_penalty: float = 0.0
    nbest: int = 1

    def __post_init__(self) -> None:
        _check_positive_int("width", self.width)
        _check_positive_int("nbest", self.nbest)
        if self.nbest > self.width:
            raise ValueError(
                "Received an invalid value for argument `nbest`, expected at most `width` "
                f"({self.width}) hypotheses, got {self.nbest}."
            )
        alpha = self.length_penalty
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha < math.inf:
            raise ValueError(
                "Received an invalid value for argument `length_penalty`, expected a non-negative "
                f"finite number, got {alpha!r}."
            )


Strategy = Greedy | Beam


def greedy_hypotheses(outputs: Mapping[str, np.ndarray]) -> list[list[Hypothesis]]:
    """The outputs of a greedy graph (keras_s2s.export.greedy: ``output_ids`` [B, L] int32,
    ``output_lengths`` [B] int32, ``log_prob`` [B] float32, ``finished`` [B] bool) as the
    one-hypothesis lists ``decode(..., Greedy())`` returns."""
    ids, lengths = outputs[OUTPUT_IDS].tolist(), outputs[OUTPUT_LENGTHS].tolist()
    return [
        [Hypothesis(tuple(row_ids[:length]), log_prob, log_prob, finished)]
        for row_ids, length, log_prob, finished in zip(ids, lengths, outputs[LOG_PROB].tolist(), outputs[FINISHED].tolist())
    ]


def beam_hypotheses(outputs: Mapping[str, np.ndarray]) -> list[list[Hypothesis]]:
    """The outputs of a beam graph (keras_s2s.export.beam: ``output_ids`` [B, K, L] int32,
    ``output_lengths``, ``score``, ``log_prob``, ``finished`` [B, K]) as the K-hypothesis
    lists ``decode(..., Beam(nbest=K))`` returns."""
    ids, lengths = outputs[OUTPUT_IDS].tolist(), outputs[OUTPUT_LENGTHS].tolist()
    columns = zip(ids, lengths, outputs[SCORE].tolist(), outputs[LOG_PROB].tolist(), outputs[FINISHED].tolist())
    return [
        [Hypothesis(tuple(row_ids[:length]), score, log_prob, finished) for row_ids, length, score, log_prob, finished
         in zip(*row)]
        for row in columns
    ]


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Logits [..., V] -> log-probabilities of the same shape, float32 (max-shifted, stable)."""
    x = np.asarray(logits, dtype=np.float32)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def decode(
    encode: EncodeFn,
    step: StepFn,
    source_ids: np.ndarray,
    strategy: Strategy = Greedy(),
    *,
    max_length: int,
    sos_id: int = SOS_ID,
    eos_id: int = EOS_ID,
    constant_state: Collection[str] = (),
) -> list[list[Hypothesis]]:
    """Decodes every row of ``source_ids`` [B, S] (cast to int32) with ``strategy``.

    Returns one list per source row, best first: 1 hypothesis for ``Greedy``, ``nbest`` for
    ``Beam`` (finished ones by score descending; if fewer than ``nbest`` finished, the best
    unfinished ones, cut at ``max_length``, fill in after them). The first step is fed
    ``sos_id``; a hypothesis ends at its first ``eos_id``, and decoding stops when all have
    ended or after ``max_length`` steps. Ties go to the lowest beam index, then the lowest
    token id, so ``Beam(width=1)`` gives exactly the ids of ``Greedy()``.

    ``constant_state`` names state arrays that are the same for every beam of a source (an
    attention memory, a source mask): beam search repeats them ``width`` times once and never
    reorders them. Every other state array follows its hypothesis' parent after each step.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 1:
        raise ValueError(
            f"Received an invalid value for argument `max_length`, expected a positive integer, got {max_length!r}."
        )
    source_ids = np.asarray(source_ids, dtype=np.int32)
    if source_ids.ndim != 2:
        raise ValueError(
            "Received an invalid value for argument `source_ids`, expected a 2-D array of shape "
            f"[batch, source_length], got shape {list(source_ids.shape)}."
        )
    if len(source_ids) == 0:
        return []
    if isinstance(strategy, Greedy):
        return _greedy(encode, step, source_ids, max_length, sos_id, eos_id)
    if isinstance(strategy, Beam):
        return _beam(encode, step, source_ids, strategy, max_length, sos_id, eos_id, frozenset(constant_state))
    raise TypeError(f"Expected `strategy` to be Greedy() or Beam(...), got {strategy!r}.")


def greedy_decode(
    encode: EncodeFn,
    step: StepFn,
    source_ids: np.ndarray,
    *,
    max_length: int,
    sos_id: int = SOS_ID,
    eos_id: int = EOS_ID,
) -> list[list[int]]:
    """The greedy token ids per source row (``decode(..., Greedy())`` without the scores)."""
    hypotheses = decode(encode, step, source_ids, Greedy(), max_length=max_length, sos_id=sos_id, eos_id=eos_id)
    return [list(best.ids) for best, in hypotheses]


def _greedy(encode, step, source_ids, max_length, sos_id, eos_id) -> list[list[Hypothesis]]:
    batch = len(source_ids)
    state = encode(source_ids)
    tokens = np.full((batch, 1), sos_id, dtype=np.int32)
    finished = np.zeros(batch, dtype=bool)
    log_prob = np.zeros(batch)  # float64 sums of float32 log-probs, as in _beam
    ids: list[list[int]] = [[] for _ in range(batch)]
    for _ in range(max_length):
        log_probs, state = _call_step(step, tokens, state)
        next_ids = log_probs.argmax(axis=-1).astype(np.int32)  # ties: the lowest id
        for row in np.flatnonzero(~finished):
            log_prob[row] += log_probs[row, next_ids[row]]
            if next_ids[row] == eos_id:
                finished[row] = True
            else:
                ids[row].append(int(next_ids[row]))
        if finished.all():
            break
        tokens = next_ids[:, None]
    return [[Hypothesis(tuple(ids[r]), float(lp), float(lp), bool(finished[r]))] for r, lp in enumerate(log_prob)]


def _beam(encode, step, source_ids, beam, max_length, sos_id, eos_id, constant_state) -> list[list[Hypothesis]]:
    """Row ``b * width + k`` of the expanded batch is beam k of source b; below, [B, W] arrays."""
    batch, width = len(source_ids), beam.width
    state = dict(encode(source_ids))
    unknown = sorted(constant_state - set(state))
    if unknown:
        raise ValueError(f"`constant_state` names {unknown}, which are not in the state {sorted(state)}.")
    state = {name: np.repeat(value, width, axis=0) for name, value in state.items()}
    # Only beam 0 is live at first, so the first expansion does not make `width` copies.
    log_prob = np.tile(np.array([0.0] + [-np.inf] * (width - 1)), (batch, 1))  # float64
    length = np.zeros((batch, width), dtype=np.int64)  # generated tokens, the EOS included
    finished = np.zeros((batch, width), dtype=bool)
    ids = np.zeros((batch, width, 0), dtype=np.int32)  # finished beams are padded with EOS
    tokens = np.full((batch * width, 1), sos_id, dtype=np.int32)
    rows = np.arange(batch)[:, None]
    for _ in range(max_length):
        log_probs, state = _call_step(step, tokens, state)
        vocab = log_probs.shape[1]
        # A finished beam can only be extended by EOS at log-prob 0: it keeps its score and length.
        eos_only = np.where(np.arange(vocab) == eos_id, 0.0, -np.inf)
        log_probs = np.where(finished[..., None], eos_only, log_probs.reshape(batch, width, vocab))
        total = log_prob[..., None] + log_probs  # [B, W, V]
        new_length = length + ~finished
        score = total / _length_penalty(new_length, beam.length_penalty)[..., None]
        # Stable sort of the flattened [W * V] candidates: ties go to the lowest parent, then token.
        best = np.argsort(-score.reshape(batch, -1), axis=1, kind="stable")[:, :width]
        parent, token = np.divmod(best, vocab)
        log_prob = total[rows, parent, token]
        length = new_length[rows, parent]
        finished = finished[rows, parent] | (token == eos_id)
        ids = np.concatenate([ids[rows, parent], token[..., None].astype(np.int32)], axis=2)
        if finished.all():
            break
        parents = (rows * width + parent).reshape(-1)
        state = {n: v if n in constant_state else np.take(v, parents, axis=0) for n, v in state.items()}
        tokens = token.reshape(-1, 1).astype(np.int32)

    score = log_prob / _length_penalty(length, beam.length_penalty)
    results = []
    for b in range(batch):
        # Finished before unfinished, each by score; impossible (-inf) hypotheses last.
        order = sorted(range(width), key=lambda k: (log_prob[b, k] == -np.inf, not finished[b, k], -score[b, k]))
        results.append([
            Hypothesis(
                tuple(int(i) for i in ids[b, k, : length[b, k] - finished[b, k]]),
                float(score[b, k]),
                float(log_prob[b, k]),
                bool(finished[b, k]),
            )
            for k in order[: beam.nbest]
        ])
    return results


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a positive integer, got {value!r}."
        )


def _length_penalty(length: np.ndarray, alpha: float) -> np.ndarray:
    """GNMT: ((5 + len) / 6) ** alpha (exactly 1 for alpha 0)."""
    return ((5.0 + length) / 6.0) ** alpha


def _call_step(step: StepFn, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    log_probs, state = step(tokens, state)
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[0] != len(tokens) or log_probs.shape[1] == 0:
        raise ValueError(
            f"`step` must return log_probs of shape [B, V] = [{len(tokens)}, vocabulary_size], "
            f"got shape {list(log_probs.shape)}."
        )
    return log_probs, state

"""Greedy decoding over any runtime, written against two callables (numpy in, numpy out):

    encode(source_ids [B, S] int32) -> state            (opaque to the decoder loop)
    step(token_ids [B, 1] int32, state) -> (logits [B, V] float32, state)

Keras, SavedModel and ONNX Runtime translators supply these; the loop is the same for all.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from keras_s2s.constants import EOS_ID, SOS_ID

EncodeFn = Callable[[np.ndarray], Any]
StepFn = Callable[[np.ndarray, Any], "tuple[np.ndarray, Any]"]


def greedy_decode(
    encode: EncodeFn,
    step: StepFn,
    source_ids: np.ndarray,
    *,
    max_length: int,
    sos_id: int = SOS_ID,
    eos_id: int = EOS_ID,
) -> list[list[int]]:
    """Argmax token ids per source row, up to (not including) the first EOS.

    Ids are returned exactly as predicted (a predicted SOS or PAD stays in the list, as it
    was fed back to the decoder); ``Vocabulary.decode`` drops them when making text.

    A row stops at its first EOS; the loop stops when every row has, or after
    ``max_length`` steps (so it can never run forever).
    """
    if max_length < 1:
        raise ValueError(f"Received an invalid value for argument `max_length`, expected a positive integer, got {max_length}.")
    source_ids = np.asarray(source_ids, dtype=np.int32)
    batch = source_ids.shape[0]
    state = encode(source_ids)
    tokens = np.full((batch, 1), sos_id, dtype=np.int32)
    finished = np.zeros(batch, dtype=bool)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    for _ in range(max_length):
        logits, state = step(tokens, state)
        next_ids = np.asarray(logits).reshape(batch, -1).argmax(axis=-1).astype(np.int32)
        for row in np.flatnonzero(~finished):
            if next_ids[row] == eos_id:
                finished[row] = True
            else:
                outputs[row].append(int(next_ids[row]))
        if finished.all():
            break
        tokens = next_ids[:, None]
    return outputs

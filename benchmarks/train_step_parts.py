"""Where an attention train step's time goes: one fixed batch, four models that add one part each.

    .venv/bin/python benchmarks/train_step_parts.py VARIANT xla|noxla   # plain, bi-sum, uni-luong, bi-sum-luong

The plain G2P config (pipelines/configs/g2p_cmudict_plain.json: LSTM 256, batch 128) with a bidirectional encoder (sum bridge) and/or
Luong attention; one batch of 128 right-padded rows (source lengths 5..10, S = T = 10), 5 warm-up
steps, then three fits of 30 steps; prints one JSON line with the ms per step of each fit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402

VARIANTS = {
    "plain": {},
    "bi-sum": {"bidirectional": True, "bridge": "sum"},
    "uni-luong": {"attention": "luong"},
    "bi-sum-luong": {"bidirectional": True, "bridge": "sum", "attention": "luong"},
}
BATCH, LENGTH, SOURCE_VOCAB, TARGET_VOCAB = 128, 10, 31, 73


def fixed_batch() -> tuple:
    """One teacher-forcing batch, ``((source_ids, decoder_input_ids), target_ids)``, each
    [128, 10] int32: random ids of the default G2P vocabularies' sizes, the sources
    right-padded to lengths 5..10."""
    import numpy as np

    rng = np.random.RandomState(0)
    lengths = rng.randint(5, LENGTH + 1, BATCH)
    source = rng.randint(4, SOURCE_VOCAB, (BATCH, LENGTH)).astype("int32")
    source[np.arange(LENGTH)[None] >= lengths[:, None]] = 0
    inputs = (source, rng.randint(4, TARGET_VOCAB, (BATCH, LENGTH)).astype("int32"))
    return inputs, rng.randint(4, TARGET_VOCAB, (BATCH, LENGTH)).astype("int32")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS or sys.argv[2] not in ("xla", "noxla"):
        raise SystemExit(__doc__)
    import_tensorflow_quietly()
    import tensorflow as tf

    from keras_s2s import Seq2SeqConfig
    from keras_s2s.models import build_seq2seq
    from keras_s2s.training import compile_trainer

    name, jit = sys.argv[1], sys.argv[2] == "xla"
    config = Seq2SeqConfig.from_json(REPO / "pipelines" / "configs" / "g2p_cmudict_plain.json").replace(**VARIANTS[name])
    model = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
    compile_trainer(model.trainer, jit_compile=jit)
    batches = tf.data.Dataset.from_tensors(fixed_batch()).repeat(200)
    model.trainer.fit(batches.take(5), verbose=0)
    milliseconds = []
    for _ in range(3):
        started = time.perf_counter()
        model.trainer.fit(batches.take(30), verbose=0)
        milliseconds.append(round((time.perf_counter() - started) / 30 * 1000, 1))
    print(json.dumps({"variant": name, "xla": jit, "ms_per_step": milliseconds}))


if __name__ == "__main__":
    main()

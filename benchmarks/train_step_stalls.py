"""Stalls of the train step on this VM: the time of every step of the plain G2P model on one
fixed batch, and how many steps took far longer than the typical one.

    .venv/bin/python benchmarks/train_step_stalls.py [--steps 180]
    # the VM's idle policy, as root: 0 = halt an idle vCPU at once (this VM's default)
    echo 200000 > /sys/module/haltpoll/parameters/guest_halt_poll_ns

The plain G2P model (g2p_cmudict_plain.json: LSTM 256, XLA) on one batch of 128 right-padded rows (S = T = 10), 5
warm-up steps, then ``--steps`` steps through ``model.fit``, each timed by a callback. A fixed
batch takes the same work every step, so a step much slower than the median waited for a
thread that was not running. Prints a markdown table row and the VM's halt-poll setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from inference_vs_peers import halt_poll_setting  # noqa: E402
from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
from train_step_parts import SOURCE_VOCAB, TARGET_VOCAB, fixed_batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=180)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error(f"--steps must be at least 2 (a median and percentiles of step times), got {args.steps}")
    import_tensorflow_quietly()
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_s2s import Seq2SeqConfig
    from keras_s2s.models import build_seq2seq
    from keras_s2s.training import compile_trainer

    config = Seq2SeqConfig.from_json(REPO / "pipelines" / "configs" / "g2p_cmudict_plain.json")
    model = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
    compile_trainer(model.trainer, jit_compile=config.jit_compile)
    batches = tf.data.Dataset.from_tensors(fixed_batch()).repeat()

    class StepClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None) -> None:
            self.ends.append(time.perf_counter())

    model.trainer.fit(batches.take(5), verbose=0, shuffle=False)
    clock = StepClock()
    started, cpu_started = time.perf_counter(), time.process_time()
    model.trainer.fit(batches.take(args.steps), verbose=0, shuffle=False, callbacks=[clock])
    wall = time.perf_counter() - started
    busy = (time.process_time() - cpu_started) / wall
    milliseconds = np.diff(np.array([started] + clock.ends)) * 1000
    median = float(np.median(milliseconds))
    stalled = milliseconds > 1.5 * median
    print("| steps | median ms | p90 ms | p99 ms | max ms | steps > 1.5× median | their share of the time | mean ms | busy cores |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    p90, p99 = np.percentile(milliseconds, [90, 99])
    print(f"| {len(milliseconds)} | {median:.1f} | {p90:.1f} | {p99:.1f} | {milliseconds.max():.1f} | {int(stalled.sum())} "
          f"| {milliseconds[stalled].sum() / milliseconds.sum():.0%} | {milliseconds.mean():.1f} | {busy:.2f} |")
    print(f"\nGuest halt polling: {halt_poll_setting()}.")


if __name__ == "__main__":
    main()

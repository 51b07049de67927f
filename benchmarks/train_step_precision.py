"""Train-step time per dtype policy (float32 / mixed_bfloat16), with and without XLA.

    .venv/bin/python benchmarks/train_step_precision.py [--rounds 3] [--configs g2p_cmudict_plain.json,g2p_cmudict_best.json]

Each config of pipelines/configs/ is built with the CMUdict G2P vocabulary sizes and trained on
one fixed batch (benchmarks/train_step_parts.py: 128 right-padded rows, S = T = 10): 5 warm-up
steps, then three fits of 20 steps, compiled with ``compile_trainer``'s defaults (no label
smoothing); a measurement is the fastest fit's ms per step. Every
(config, policy, XLA) runs in a fresh process (Keras' dtype policy is process-wide, and each
keeps its own XLA cache), once per round, interleaved, so a slow phase of the VM hits all of
them. Prints the CPU's AMX flags (oneDNN runs bfloat16 matmuls on AMX tiles where it has
them) and a table: median (min–max) ms per step over the rounds, and the ratio to float32 at
the same XLA setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "pipelines" / "configs"
POLICIES = ("float32", "mixed_bfloat16")
WARMUP_STEPS, FIT_STEPS, FITS = 5, 20, 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="g2p_cmudict_plain.json,g2p_cmudict_best.json",
                        help="comma-separated file names in pipelines/configs/")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "POLICY", "XLA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.child:
        print(json.dumps({"ms_per_step": child(*args.child)}))
        return 0
    configs = args.configs.split(",")
    missing = [name for name in configs if not (CONFIGS / name).is_file()]
    if missing:
        parser.error(f"no such config in {CONFIGS}: {', '.join(missing)}")
    print(f"CPU AMX flags: {', '.join(amx_flags()) or 'none'}", file=sys.stderr)
    cases = [(config, policy, xla) for config in configs for xla in ("xla", "noxla") for policy in POLICIES]
    times: dict[tuple, list[float]] = {}
    for round_index in range(args.rounds):
        for case in cases:
            output = subprocess.run(
                [sys.executable, __file__, "--child", *case], capture_output=True, text=True, check=True, cwd=REPO,
            ).stdout
            milliseconds = json.loads(output.strip().splitlines()[-1])["ms_per_step"]
            times.setdefault(case, []).append(milliseconds)
            print(f"  round {round_index + 1}: {' '.join(case)}: {milliseconds:.1f} ms/step", file=sys.stderr)
    print(f"\nCPU AMX flags: {', '.join(amx_flags()) or 'none'}; {args.rounds} rounds\n")
    print("| config | XLA | dtype policy | ms per step, median (min–max) | vs float32 |")
    print("|---|---|---|---:|---:|")
    for config, policy, xla in cases:
        values = times[config, policy, xla]
        baseline = statistics.median(times[config, "float32", xla])
        print(f"| {config} | {'on' if xla == 'xla' else 'off'} | {policy} | {statistics.median(values):.1f} "
              f"({min(values):.1f}–{max(values):.1f}) | {baseline / statistics.median(values):.2f}× |")
    return 0


def amx_flags() -> list[str]:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].splitlines()[0].split()
    except (OSError, IndexError):
        return []
    return sorted({flag for flag in flags if flag.startswith("amx")})


def child(config_name: str, policy: str, xla: str) -> float:
    """The fastest fit's ms per train step of one (config, policy, XLA) in this process."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf
    from train_step_parts import SOURCE_VOCAB, TARGET_VOCAB, fixed_batch

    from keras_s2s import Seq2SeqConfig
    from keras_s2s.models import build_seq2seq
    from keras_s2s.training import compile_trainer

    config = Seq2SeqConfig.from_json(CONFIGS / config_name).replace(dtype_policy=policy)
    model = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
    compile_trainer(model.trainer, jit_compile=xla == "xla")
    batches = tf.data.Dataset.from_tensors(fixed_batch()).repeat()
    model.trainer.fit(batches.take(WARMUP_STEPS), verbose=0)
    fits = []
    for _ in range(FITS):
        started = time.perf_counter()
        model.trainer.fit(batches.take(FIT_STEPS), verbose=0)
        fits.append((time.perf_counter() - started) / FIT_STEPS * 1000)
    return min(fits)


if __name__ == "__main__":
    sys.exit(main())

"""Two exports of one trained run, the same decoding path timed side by side: what a change to the
export (not to the model) buys, on the same weights.

    .venv/bin/keras-s2s export RUN --out exported/NAME-before   # with the code before (a git worktree)
    .venv/bin/keras-s2s export RUN --out exported/NAME-after    # with the code after
    .venv/bin/python benchmarks/export_ab.py --run-dir RUN --before exported/NAME-before \\
        --after exported/NAME-after [--runtime onnx] [--words 1000] [--rounds 3]

Translates the first ``--words`` test words of the run with each export's greedy graph (the
default path of ``keras-s2s translate``) at batch 1 and 64, in interleaved rounds (benchmarks/
interleaved.py), and prints a markdown table (medians with min–max, whether the outputs equal
the Keras step loop's) and the after/before ratio per batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
from interleaved import BATCH_SIZES, print_ratio, print_table, time_paths  # noqa: E402
from sample_words import first_test_words  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="the trained run (its test words, the Keras reference)")
    parser.add_argument("--before", type=Path, required=True, help="an export of the run made with the code before")
    parser.add_argument("--after", type=Path, required=True, help="an export of the run made with the code after")
    parser.add_argument("--runtime", choices=("onnx", "savedmodel"), default="onnx")
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import_tensorflow_quietly()
    from keras_s2s.runtime import load_translator

    words = first_test_words(args.run_dir, args.words)
    reference = load_translator(args.run_dir, "keras").translate(words, batch_size=64)
    paths = {
        f"{args.runtime} greedy graph, {label}": load_translator(export_dir, args.runtime).translate
        for label, export_dir in (("before", args.before), ("after", args.after))
    }
    rates, same = time_paths(paths, words, args.rounds, reference)
    print(f"\n{len(words)} CMUdict test words, greedy, 2 CPU cores, {args.rounds} interleaved rounds\n")
    print_table(rates, same, "the Keras step loop")
    before, after = paths
    for batch_size in BATCH_SIZES:
        print_ratio(rates, after, before, batch_size)


if __name__ == "__main__":
    main()

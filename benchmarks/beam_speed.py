"""Beam search speed per runtime path: the step loop against the SavedModel's beam graph.

    make demo    # once: trains runs/g2p_cmudict and exports exported/g2p_cmudict
    # the plain model (make demo's until 2026-12-06): --run-dir runs/g2p_plain --export-dir exported/g2p_plain from
    .venv/bin/python -m pipelines.demo --config pipelines/configs/g2p_cmudict_plain.json --run-dir runs/g2p_plain --export-dir exported/g2p_plain
    .venv/bin/python benchmarks/beam_speed.py [--words 256] [--rounds 3] [--width 5] [--run-dir R --export-dir E]

Translates the first ``--words`` test words with ``Beam(width)`` one at a time (batch 1) and
in batches of 64: the step loop (``keras_s2s.decoding`` over the decoder-step graph: Python
bookkeeping between graph calls) on ONNX Runtime and on the SavedModel, and the SavedModel's
beam graph (one call per batch), XLA-compiled (``beam_xla``, what the SavedModel runtime uses)
and uncompiled (``serving_default``, what TF Serving runs without
--xla_cpu_compilation_enabled). Rounds interleave; a warm-up first translates one word per
source length and one batch of 64, outside the timing (XLA compiles per shape). Prints a
markdown table (benchmarks/interleaved.py): words/s, median (min–max), and whether the outputs
equal the ONNX step loop's.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
from interleaved import BATCH_SIZES, print_ratio, print_table, time_paths  # noqa: E402
from sample_words import first_test_words  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=Path("runs/g2p_cmudict"))
    parser.add_argument("--export-dir", type=Path, default=Path("exported/g2p_cmudict"))
    parser.add_argument("--words", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=5)
    args = parser.parse_args()
    import_tensorflow_quietly()
    from keras_s2s.decoding import Beam
    from keras_s2s.runtime import load_translator

    beam = Beam(width=args.width)
    words = first_test_words(args.run_dir, args.words)
    translators = {
        "onnx step loop": load_translator(args.export_dir, "onnx"),
        "savedmodel step loop": load_translator(args.export_dir, "savedmodel"),
        "savedmodel beam graph, beam_xla": load_translator(args.export_dir, "savedmodel"),
        "savedmodel beam graph, serving_default": load_translator(args.export_dir, "savedmodel", compiled=False),
    }
    translators["savedmodel step loop"].use_beam_graph = False
    if not translators["savedmodel beam graph, beam_xla"].use_beam_graph:
        sys.exit(f"{args.export_dir} has no beam graph (exports since 2026-12-05): re-export it")
    paths = {name: functools.partial(translator.translate, strategy=beam) for name, translator in translators.items()}
    reference = paths["onnx step loop"](words, batch_size=64)
    rates, same = time_paths(paths, words, args.rounds, reference)
    print(f"\n{len(words)} CMUdict test words, beam width {args.width}, 2 CPU cores, {args.rounds} interleaved round(s)\n")
    print_table(rates, same, "the ONNX step loop")
    for batch_size in BATCH_SIZES:
        print_ratio(rates, "savedmodel beam graph, beam_xla", "savedmodel step loop", batch_size)

if __name__ == "__main__":
    main()

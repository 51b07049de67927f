"""Beam search speed per runtime path: the step loop against the SavedModel's beam graph.

    make demo    # once: trains runs/g2p_cmudict and exports exported/g2p_cmudict
    .venv/bin/python benchmarks/beam_speed.py [--words 256] [--rounds 3] [--width 5] [--run-dir R --export-dir E]

Translates the first ``--words`` test words with ``Beam(width)`` one at a time (batch 1) and
in batches of 64: the step loop (``keras_s2s.decoding`` over the decoder-step graph: Python
bookkeeping between graph calls) on ONNX Runtime and on the SavedModel, and the SavedModel's
beam graph (one call per batch), XLA-compiled (``beam_xla``, what the SavedModel runtime uses)
and uncompiled (``serving_default``, what TF Serving runs without
--xla_cpu_compilation_enabled). Rounds interleave; a warm-up first translates one word per
source length and one batch of 64, outside the timing (XLA compiles per shape). Prints a
markdown table: words/s, median (min–max), and whether the outputs equal the first row's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
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
    from keras_s2s.runtime.exported import load_exported_translator

    beam = Beam(width=args.width)
    words = first_test_words(args.run_dir, args.words)
    translators = {
        "onnx step loop": load_exported_translator(args.export_dir, "onnx"),
        "savedmodel step loop": load_exported_translator(args.export_dir, "savedmodel"),
        "savedmodel beam graph, beam_xla": load_exported_translator(args.export_dir, "savedmodel"),
        "savedmodel beam graph, serving_default": load_exported_translator(args.export_dir, "savedmodel", compiled=False),
    }
    translators["savedmodel step loop"].use_beam_graph = False
    if not translators["savedmodel beam graph, beam_xla"].use_beam_graph:
        sys.exit(f"{args.export_dir} has no beam graph (exports since 2026-12-05): re-export it")
    for translator in translators.values():
        translator.translate(list({len(word): word for word in words}.values()), batch_size=1, strategy=beam)
        translator.translate(words, batch_size=64, strategy=beam)
    rates: dict[tuple[str, int], list[float]] = {}
    same: dict[tuple[str, int], bool] = {}
    reference = None
    for round_index in range(args.rounds):
        for name, translator in translators.items():
            for batch_size in (1, 64):
                start = time.perf_counter()
                outputs = translator.translate(words, batch_size=batch_size, strategy=beam)
                rate = len(words) / (time.perf_counter() - start)
                reference = reference or outputs
                rates.setdefault((name, batch_size), []).append(rate)
                same[name, batch_size] = same.get((name, batch_size), True) and outputs == reference
                print(f"  round {round_index + 1}: {name} batch {batch_size}: {rate:,.0f} words/s", file=sys.stderr)

    print(f"\n{len(words)} CMUdict test words, beam width {args.width}, 2 CPU cores, {args.rounds} interleaved round(s)\n")
    print("| path | batch | words/s, median (min–max) | same output as the first row |")
    print("|---|---:|---:|---|")
    for (name, batch_size), values in rates.items():
        spread = f" ({min(values):,.0f}–{max(values):,.0f})" if len(values) > 1 else ""
        print(f"| {name} | {batch_size} | {statistics.median(values):,.0f}{spread} | {'yes' if same[name, batch_size] else 'NO'} |")
    for batch_size in (1, 64):
        loop, graph = rates["savedmodel step loop", batch_size], rates["savedmodel beam graph, beam_xla", batch_size]
        print(f"\nbeam_xla vs the SavedModel step loop at batch {batch_size}: "
              f"{statistics.median(graph) / statistics.median(loop):.2f}× "
              f"(per round: {', '.join(f'{g / l:.2f}×' for g, l in zip(graph, loop))})")


if __name__ == "__main__":
    main()

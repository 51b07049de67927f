"""Greedy translation speed of the trained default G2P model on each runtime: words per second.

    make demo    # once: trains runs/g2p_cmudict and exports exported/g2p_cmudict
    .venv/bin/python benchmarks/inference_speed.py [--words 512] [--rounds 3]

Translates the first ``--words`` test words one at a time (batch 1: one request per word)
and in batches of 64, with Keras (tf.function per step), the SavedModel signatures and ONNX
Runtime: the step loop (keras_s2s.decoding over the encoder and decoder-step graphs) for
all, the exported greedy graph (one call per batch, the default for exports; for the
SavedModel its XLA-compiled signature and, as TF Serving runs it by default, its
uncompiled ``serving_default``), and the
translate SavedModel (strings in, strings out: tokenization and detokenization in-graph, what
TF Serving runs; skipped for exports made before it existed). Prints a markdown table.
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


class TranslateSavedModel:
    """The export's translate SavedModel behind ``translate(texts, batch_size)``."""

    def __init__(self, export_dir: Path) -> None:
        import json

        import tensorflow as tf

        self.tf = tf
        metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
        self.serve = tf.saved_model.load(str(export_dir / metadata["translate"]["savedmodel"])).signatures["serving_default"]

    def translate(self, texts: list[str], batch_size: int) -> list[str]:
        outputs = []
        for start in range(0, len(texts), batch_size):
            batch = self.tf.constant(texts[start : start + batch_size], self.tf.string)
            outputs += [t.decode("utf-8") for t in self.serve(text=batch)["output_text"].numpy()]
        return outputs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=Path("runs/g2p_cmudict"))
    parser.add_argument("--export-dir", type=Path, default=Path("exported/g2p_cmudict"))
    parser.add_argument("--words", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the table shows medians (min–max)")
    args = parser.parse_args()
    import_tensorflow_quietly()
    from keras_s2s.runtime import load_translator
    from keras_s2s.runtime.exported import load_exported_translator

    words = first_test_words(args.run_dir, args.words)
    translators = {"keras step loop": load_translator(args.run_dir, "keras")}
    for runtime in ("savedmodel", "onnx"):
        translators[f"{runtime} step loop"] = load_translator(args.export_dir, runtime)
        translators[f"{runtime} step loop"].use_greedy_graph = False
        translators[f"{runtime} greedy graph"] = load_translator(args.export_dir, runtime)
    # What TF Serving runs without --xla_cpu_compilation_enabled (the row above: the XLA-compiled signature)
    translators["savedmodel greedy graph, uncompiled (serving_default)"] = load_exported_translator(
        args.export_dir, "savedmodel", compiled=False
    )
    if (args.export_dir / "translate").is_dir():
        translators["translate SavedModel (text in/out)"] = TranslateSavedModel(args.export_dir)
    reference = translators["keras step loop"].translate(words, batch_size=64)
    for translator in translators.values():
        # warm-up: tracing, session init, and one XLA compilation per source length bucket
        translator.translate(list({len(word): word for word in words}.values()), batch_size=1)
        translator.translate(words[:64], batch_size=64)
    rates: dict[tuple[str, int], list[float]] = {}
    same: dict[tuple[str, int], bool] = {}
    for round_index in range(args.rounds):  # interleaved: every runtime once per round
        for name, translator in translators.items():
            for batch_size in (1, 64):
                start = time.perf_counter()
                outputs = translator.translate(words, batch_size=batch_size)
                rate = len(words) / (time.perf_counter() - start)
                rates.setdefault((name, batch_size), []).append(rate)
                same[name, batch_size] = same.get((name, batch_size), True) and outputs == reference
                print(f"  round {round_index + 1}: {name} batch {batch_size}: {rate:,.0f} words/s", file=sys.stderr)

    print(f"\n{len(words)} CMUdict test words, greedy decoding, 2 CPU cores, {args.rounds} interleaved round(s)\n")
    print("| runtime | batch | words/s, median (min–max) | same output as Keras |")
    print("|---|---:|---:|---|")
    for (name, batch_size), values in rates.items():
        spread = f" ({min(values):,.0f}–{max(values):,.0f})" if len(values) > 1 else ""
        print(f"| {name} | {batch_size} | {statistics.median(values):,.0f}{spread} | {'yes' if same[name, batch_size] else 'NO'} |")
    loop, graph = rates["savedmodel step loop", 1], rates["savedmodel greedy graph", 1]
    print(f"\nSavedModel greedy graph vs its step loop at batch 1: {statistics.median(graph) / statistics.median(loop):.2f}× "
          f"(per round: {', '.join(f'{g / l:.2f}×' for g, l in zip(graph, loop))})")

if __name__ == "__main__":
    main()

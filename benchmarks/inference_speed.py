"""Greedy translation speed of a trained G2P model on each runtime: words per second.

    make demo    # once: trains runs/g2p_cmudict and exports exported/g2p_cmudict
    # the plain model (make demo's until 2026-12-06): --run-dir runs/g2p_plain --export-dir exported/g2p_plain from
    .venv/bin/python -m pipelines.demo --config pipelines/configs/g2p_cmudict_plain.json --run-dir runs/g2p_plain --export-dir exported/g2p_plain
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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
from interleaved import print_ratio, print_table, time_paths  # noqa: E402
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
    words = first_test_words(args.run_dir, args.words)
    translators = {"keras step loop": load_translator(args.run_dir, "keras")}
    for runtime in ("savedmodel", "onnx"):
        translators[f"{runtime} step loop"] = load_translator(args.export_dir, runtime)
        translators[f"{runtime} step loop"].use_greedy_graph = False
        translators[f"{runtime} greedy graph"] = load_translator(args.export_dir, runtime)
    # What TF Serving runs without --xla_cpu_compilation_enabled (the row above: the XLA-compiled signature)
    translators["savedmodel greedy graph, uncompiled (serving_default)"] = load_translator(
        args.export_dir, "savedmodel", compiled=False
    )
    if (args.export_dir / "translate").is_dir():
        translators["translate SavedModel (text in/out)"] = TranslateSavedModel(args.export_dir)
    reference = translators["keras step loop"].translate(words, batch_size=64)
    paths = {name: translator.translate for name, translator in translators.items()}
    rates, same = time_paths(paths, words, args.rounds, reference)
    print(f"\n{len(words)} CMUdict test words, greedy decoding, 2 CPU cores, {args.rounds} interleaved round(s)\n")
    print_table(rates, same, "Keras")
    print_ratio(rates, "savedmodel greedy graph", "savedmodel step loop", 1)

if __name__ == "__main__":
    main()

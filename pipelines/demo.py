"""The main job (README command 1): English grapheme-to-phoneme on CMUdict, end to end.

    python -m pipelines.demo [--config pipelines/configs/g2p_cmudict.json] [--epochs N]

1. train    model.fit on the CMUdict train split (word -> ARPAbet phones)
2. evaluate WER / PER on the held-out test split (multi-reference), greedy and beam 5,
            with the stress digits kept and stripped
3. export   encoder + decoder-step graphs as SavedModel (TF Serving) and ONNX
4. infer    translate words with ONNX Runtime (beam 5) from the export and check that the
            outputs equal the Keras model's (greedy and beam tokens, one step's logits);
            for an attention model, write the attention heatmap of one word
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

ATTENTION_WORD = "pronunciation"
SAMPLE_WORDS = ["hello", "world", "keras", "tensorflow", "sequence", "encoder", "decoder", "pronunciation"]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("pipelines/configs/g2p_cmudict.json"))
    parser.add_argument("--run-dir", type=Path, default=Path("runs/g2p_cmudict"))
    parser.add_argument("--export-dir", type=Path, default=Path("exported/g2p_cmudict"))
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    args = parser.parse_args(argv)

    from keras_s2s.tensorflow_setup import import_tensorflow_quietly
    from keras_s2s.errors import KerasS2SError

    import_tensorflow_quietly()
    try:
        return run(args)
    except KerasS2SError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.constants import SOS_ID
    from keras_s2s.decoding import Beam, Greedy
    from keras_s2s.plots import plot_attention
    from keras_s2s.evaluation import evaluate
    from keras_s2s.export import export_and_report
    from keras_s2s.runtime import load_translator
    from keras_s2s.runtime.artifact import ExportLayout
    from keras_s2s.training import train_model

    warnings.filterwarnings("ignore", module="keras")
    started = time.perf_counter()
    beam = Beam(width=5)
    config = Seq2SeqConfig.from_json(args.config)
    if args.epochs:
        config = config.replace(epochs=args.epochs)

    _banner(f"1/4 train: {args.config} -> {args.run_dir}")
    summary = train_model(config, args.run_dir, overwrite=True)

    _banner("2/4 evaluate on the held-out test split (a word is right if it matches any pronunciation)")
    keras_translator = load_translator(args.run_dir, "keras")
    test_file = Seq2SeqConfig.from_json(args.run_dir / "config.json").test_file
    stress_views = (False, True) if config.dataset == "cmudict" and not config.strip_stress else (False,)
    for strategy in (Greedy(), beam):
        for strip_stress in stress_views:
            scores = evaluate(keras_translator, test_file, strategy=strategy, strip_stress=strip_stress)
            label = f"{'greedy' if isinstance(strategy, Greedy) else f'beam {strategy.width}':<7} " + (
                "stress stripped" if strip_stress else "stress kept    " if len(stress_views) > 1 else ""
            )
            print(f"{label}  WER {scores['wer']:6.2%}   PER {scores['per']:6.2%}")
    print(f"test words {scores['sources']:,} ({scores['pairs']:,} pronunciations); "
          f"teacher-forced token accuracy {scores['token_accuracy']:.2%}")

    _banner(f"3/4 export -> {args.export_dir}")
    if ExportLayout(args.export_dir).metadata.is_file():
        print(f"(replacing the previous demo export in {args.export_dir})")
        shutil.rmtree(args.export_dir)
    export_and_report(args.run_dir, args.export_dir)

    _banner(f"4/4 ONNX Runtime inference from the export, beam {beam.width} (no TensorFlow in this path)")
    onnx_translator = load_translator(args.export_dir, "onnx")
    words = SAMPLE_WORDS + _first_sources(test_file, 8)
    onnx_outputs = onnx_translator.translate(words, strategy=beam)
    for word, phones in zip(words, onnx_outputs):
        print(f"  {word:<16} {phones}")
    same = sum(a == b for a, b in zip(onnx_outputs, keras_translator.translate(words, strategy=beam)))
    same_greedy = sum(a == b for a, b in zip(onnx_translator.translate(words), keras_translator.translate(words)))
    source_ids = onnx_translator.source.to_ids([onnx_translator.source.spec.tokenize(w) for w in words])
    tokens = np.full((len(words), 1), SOS_ID, np.int32)
    onnx_logits, _ = onnx_translator.step(tokens, onnx_translator.encode(source_ids))
    keras_logits, _ = keras_translator.step(tokens, keras_translator.encode(source_ids))
    difference = float(np.abs(onnx_logits - keras_logits).max())
    print(f"ONNX Runtime == Keras: {same}/{len(words)} beam and {same_greedy}/{len(words)} greedy outputs identical; "
          f"first-step logits max |difference| {difference:.1e}")
    if onnx_translator.has_attention:
        heatmap = args.run_dir / "attention.png"
        plot_attention(onnx_translator.attention_map(ATTENTION_WORD, strategy=beam), heatmap, title=ATTENTION_WORD)
        print(f"attention heatmap of '{ATTENTION_WORD}': {heatmap}")

    print(f"\ndone in {time.perf_counter() - started:.0f} s (training {summary['wall_seconds']:.0f} s, "
          f"{_epochs(summary)}, {summary['target_tokens_per_second']:,.0f} target tokens/s)")
    identical = same == same_greedy == len(words)
    return 0 if identical and difference < 1e-4 else 1


def _epochs(summary: dict) -> str:
    """"9 epochs", or "9 epochs, the last cut at 62% by the time budget"."""
    fraction = summary.get("last_epoch_fraction", 1.0)
    if fraction == 1.0:
        return f"{summary['epochs_run']} epochs"
    share = f"{fraction:.0%}" if fraction is not None else "an unknown share"
    return f"{summary['epochs_run']} epochs, the last cut at {share} by the time budget"


def _first_sources(path: str, count: int) -> list[str]:
    sources: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            source = line.split("\t", 1)[0]
            if source not in sources:
                sources.append(source)
            if len(sources) == count:
                break
    return sources


def _banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of model.fit on CMUdict G2P: target tokens per second.

    .venv/bin/python benchmarks/train_throughput.py [--epochs 2] [--train-pairs 40000]

Compares XLA (jit_compile) on/off and length bucketing on/off for the default G2P model
(embedding 64, LSTM 256, batch 128). Each variant trains ``--epochs`` epochs on the first
``--train-pairs`` CMUdict training pairs; the first epoch (tracing + XLA compilation) is
reported separately from the median of the later ones. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402

VARIANTS = [
    ("XLA + buckets of 4 (default)", True, 4),
    ("no XLA + buckets of 4", False, 4),
    ("XLA, pad to batch max", True, 0),
    ("no XLA, pad to batch max", False, 0),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-pairs", type=int, default=40_000)
    args = parser.parse_args()
    import_tensorflow_quietly()
    import keras

    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.data import SideEncoding, count_dataset_tokens, teacher_forcing_dataset
    from keras_s2s.datasets import write_cmudict_splits
    from keras_s2s.models import build_seq2seq
    from keras_s2s.tokenization import TextSpec
    from keras_s2s.training import ThroughputLogger, compile_trainer
    from keras_s2s.tsv import read_parallel_tsv
    from keras_s2s.vocab import Vocabulary

    work = Path(tempfile.mkdtemp())
    write_cmudict_splits(work)
    lines = (work / "train.tsv").read_text(encoding="utf-8").splitlines()[: args.train_pairs]
    train_file = work / "subset.tsv"
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source_spec, target_spec = TextSpec("char", lowercase=True), TextSpec("word")
    _, report = read_parallel_tsv(train_file, source_spec, target_spec)
    source_counts, target_counts = count_dataset_tokens(train_file, source_spec, target_spec)
    source = SideEncoding(source_spec, Vocabulary.build(source_counts), 30)
    target = SideEncoding(target_spec, Vocabulary.build(target_counts), 30)

    rows = []
    for name, jit, bucket_width in VARIANTS:
        keras.utils.set_random_seed(0)
        batches = teacher_forcing_dataset(train_file, source, target, batch_size=128, bucket_width=bucket_width, shuffle_seed=0)
        config = Seq2SeqConfig(train_file=str(train_file), embedding_size=64, hidden_size=256)
        model = build_seq2seq(config, len(source.vocab), len(target.vocab))
        compile_trainer(model.trainer, jit_compile=jit)
        throughput = ThroughputLogger(report.target_tokens)
        model.trainer.fit(batches, epochs=args.epochs, verbose=0, callbacks=[throughput])
        first, later = throughput.epoch_seconds[0], statistics.median(throughput.epoch_seconds[1:])
        rows.append((name, first, report.target_tokens / later))
        print(f"  {name}: first epoch {first:.1f} s, then {report.target_tokens / later:,.0f} tokens/s", file=sys.stderr)

    print(f"\n{report.kept:,} pairs, {report.target_tokens:,} target tokens per epoch, batch 128, "
          f"LSTM 256, {args.epochs} epochs per variant\n")
    print("| variant | first epoch (s, incl. compile) | steady target tokens/s |")
    print("|---|---:|---:|")
    for name, first, tokens_per_second in rows:
        print(f"| {name} | {first:.1f} | {tokens_per_second:,.0f} |")


if __name__ == "__main__":
    main()

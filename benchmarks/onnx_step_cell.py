"""One LSTM decoding step inside an ONNX ``Loop``, three ways, in ONNX Runtime: what a step of the
greedy graph costs and what a fused ``LSTM`` op would save.

    .venv/bin/python benchmarks/onnx_step_cell.py [--rounds 7] [--steps 8]

Hand-built graphs with random weights of the default G2P model's sizes (hidden 256, embedding
64, 75 target ids), each a ``Loop`` of ``--steps`` iterations carrying ``h, c``:

- ``op by op``: the cell as the exported greedy graph computes it (keras_s2s.models._TokenLSTMStep):
  a row gather from the folded ``[V, 4H]`` input table, ``h @ R``, Add, Split, three Sigmoid,
  two Tanh, three Mul, Add (13 ops);
- ``fused LSTM op``: an embedding gather and one ONNX ``LSTM`` op over a sequence of length 1
  (unfolded weights: it also multiplies the embedding by the input kernel);
- ``h @ R only``: the recurrent matmul alone (the part no graph rewrite removes).

Batch 1 runs on one intra-op thread (as ``keras_s2s.runtime.onnx_backend`` does for small
batches), batch 256 on two. Rounds interleave the graphs; each cell is the median microseconds
per step with the min-max over the rounds. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HIDDEN, EMBEDDING, VOCAB = 256, 64, 75


def _loop_model(body_nodes: list, initializers: dict[str, np.ndarray], steps: int, state_shape: str):
    """A model ``tokens, h, c -> h, c`` running ``body_nodes`` ``steps`` times; the body reads
    ``tokens``, ``h``, ``c`` and writes ``h_next``, ``c_next``."""

    def value(name: str, dtype=TensorProto.FLOAT, shape=None):
        return helper.make_tensor_value_info(name, dtype, shape)

    body = helper.make_graph(
        body_nodes + [helper.make_node("Identity", ["cond"], ["cond_next"])],
        "body",
        [value("step", TensorProto.INT64, []), value("cond", TensorProto.BOOL, []), value("h"), value("c")],
        [value("cond_next", TensorProto.BOOL, []), value("h_next"), value("c_next")],
    )
    loop = helper.make_node("Loop", ["steps", "", "h0", "c0"], ["h_last", "c_last"], body=body)
    graph = helper.make_graph(
        [loop],
        f"step_cell_{state_shape}",
        [value("tokens", TensorProto.INT64), value("h0"), value("c0")],
        [value("h_last"), value("c_last")],
        initializer=[numpy_helper.from_array(np.array(steps, np.int64), "steps")]
        + [numpy_helper.from_array(array, name) for name, array in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_models(steps: int, rng: np.random.Generator) -> dict:
    """name -> (serialized model, whether its tokens and states carry a leading length-1 axis)."""
    table = rng.standard_normal((VOCAB, 4 * HIDDEN)).astype(np.float32) * 0.1
    recurrent = rng.standard_normal((HIDDEN, 4 * HIDDEN)).astype(np.float32) * 0.05
    node = helper.make_node
    op_by_op = [
        node("Gather", ["table", "tokens"], ["x"]),
        node("MatMul", ["h", "recurrent"], ["hr"]),
        node("Add", ["x", "hr"], ["z"]),
        node("Split", ["z", "gate_sizes"], ["i", "f", "g", "o"], axis=-1),
        node("Sigmoid", ["i"], ["si"]), node("Sigmoid", ["f"], ["sf"]),
        node("Tanh", ["g"], ["tg"]), node("Sigmoid", ["o"], ["so"]),
        node("Mul", ["sf", "c"], ["fc"]), node("Mul", ["si", "tg"], ["ig"]),
        node("Add", ["fc", "ig"], ["c_next"]),
        node("Tanh", ["c_next"], ["tc"]), node("Mul", ["so", "tc"], ["h_next"]),
    ]
    fused = [
        node("Gather", ["embedding", "tokens"], ["x"]),  # tokens [1, B] -> [1, B, E]
        node("LSTM", ["x", "kernel", "recurrent_onnx", "bias", "", "h", "c"], ["y", "h_next", "c_next"],
             hidden_size=HIDDEN),
    ]
    matmul_only = [
        node("MatMul", ["h", "recurrent"], ["hr"]),
        node("Slice", ["hr", "zero", "hidden", "last_axis"], ["h_next"]),
        node("Identity", ["c"], ["c_next"]),
    ]
    return {
        "op by op (13 ops)": (_loop_model(op_by_op, {
            "table": table, "recurrent": recurrent, "gate_sizes": np.array([HIDDEN] * 4, np.int64),
        }, steps, "2d"), False),
        "fused LSTM op": (_loop_model(fused, {
            "embedding": rng.standard_normal((VOCAB, EMBEDDING)).astype(np.float32) * 0.1,
            "kernel": rng.standard_normal((1, 4 * HIDDEN, EMBEDDING)).astype(np.float32) * 0.1,
            "recurrent_onnx": recurrent.T[None].copy(),
            "bias": np.zeros((1, 8 * HIDDEN), np.float32),
        }, steps, "3d"), True),
        "h @ R only": (_loop_model(matmul_only, {
            "recurrent": recurrent, "zero": np.array([0], np.int64), "hidden": np.array([HIDDEN], np.int64),
            "last_axis": np.array([1], np.int64),
        }, steps, "2d"), False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=8, help="Loop iterations per session.run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    models = build_models(args.steps, rng)
    rows = []
    for batch, threads in ((1, 1), (256, 2)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        sessions = {}
        for name, (model, leading_axis) in models.items():
            tokens = rng.integers(0, VOCAB, batch)
            state = np.zeros((batch, HIDDEN), np.float32)
            feeds = {"tokens": tokens[None] if leading_axis else tokens,
                     "h0": state[None] if leading_axis else state, "c0": state[None] if leading_axis else state}
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            sessions[name] = (session, feeds)
        calls = max(20, 24_000 // (batch * args.steps))
        micros: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, (session, feeds) in sessions.items():
                session.run(None, feeds)
                started = time.perf_counter()
                for _ in range(calls):
                    session.run(None, feeds)
                micros[name].append((time.perf_counter() - started) / calls / args.steps * 1e6)
        for name, values in micros.items():
            rows.append(f"| {batch} | {threads} | {name} | {statistics.median(values):,.1f} "
                        f"({min(values):,.1f}–{max(values):,.1f}) |")
    print(f"ONNX Runtime {ort.__version__}, Loop of {args.steps} steps, hidden {HIDDEN}, "
          f"{args.rounds} interleaved rounds\n")
    print("| batch | threads | step | µs per step |")
    print("|---:|---:|---|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

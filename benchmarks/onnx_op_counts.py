"""ONNX ops per graph of an export: the main graph and each ``Loop`` body (one kernel call per op,
per step inside a loop; at batch 1 their dispatch is a large share of a decoding step).

    .venv/bin/python benchmarks/onnx_op_counts.py EXPORT [EXPORT ...]

Prints a markdown table: export, graph, ops in the main graph, ops per ``Loop`` body, and the
most frequent op types of the largest body.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def loop_bodies(graph) -> list:
    """The body graphs of the ``Loop`` nodes of ``graph``, nested ones and those inside ``If``
    branches included (the greedy graph's two decoding loops sit in the branches of an If)."""
    bodies = []
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                if node.op_type == "Loop":
                    bodies.append(attribute.g)
                bodies.extend(loop_bodies(attribute.g))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", type=Path)
    args = parser.parse_args()
    missing = [str(e) for e in args.exports if not (e / "onnx").is_dir()]
    if missing:
        parser.error(f"not export directories (no onnx/ inside): {', '.join(missing)}")
    import onnx

    print("| export | graph | main-graph ops | ops per Loop body | largest body's ops |")
    print("|---|---|---:|---|---|")
    for export in args.exports:
        for path in sorted((export / "onnx").glob("*.onnx")):
            graph = onnx.load(str(path)).graph
            bodies = loop_bodies(graph)
            sizes = ", ".join(str(len(body.node)) for body in bodies) or "none"
            largest = max(bodies, key=lambda body: len(body.node), default=None)
            common = ", ".join(f"{op} {n}" for op, n in Counter(n.op_type for n in largest.node).most_common(6)) if largest else ""
            print(f"| {export.name} | {path.stem} | {len(graph.node)} | {sizes} | {common} |")


if __name__ == "__main__":
    main()

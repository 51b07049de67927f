"""Where a greedy ONNX decode spends its time: ONNX Runtime's own profile of the exported greedy
graph, summed per op type.

    make demo    # once: runs/g2p_cmudict + exported/g2p_cmudict
    # the plain model (make demo's until 2026-12-06): --run-dir runs/g2p_plain --export-dir exported/g2p_plain from
    .venv/bin/python -m pipelines.demo --config pipelines/configs/g2p_cmudict_plain.json --run-dir runs/g2p_plain --export-dir exported/g2p_plain
    .venv/bin/python benchmarks/onnx_profile.py [--run-dir RUN] [--export-dir EXPORT] [--batch 1] [--words 1000]

Feeds the first ``--words`` test words of the run's test split in batches of ``--batch`` (sorted by length, as
``Translator.translate`` batches them) to the greedy graph on a profiling session with the
threads ``keras-s2s translate`` uses for that batch size, and prints a markdown table: per op
type, microseconds per ``session.run`` and per call, and calls per run. The ``Loop`` row is the
whole decoding loop (its body's ops are also listed by type). Profiling adds a few
microseconds to every op, so compare rows with each other, not with untraced timings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sample_words import first_test_words  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "g2p_cmudict", help="for its test split")
    parser.add_argument("--export-dir", type=Path, default=REPO / "exported" / "g2p_cmudict")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--words", type=int, default=1000)
    args = parser.parse_args()
    if not (args.export_dir / "onnx" / "greedy.onnx").is_file():
        parser.error(f"{args.export_dir} has no onnx/greedy.onnx (run `make demo` first, or pass --export-dir)")
    import onnxruntime as ort

    from keras_s2s.runtime import load_translator
    from keras_s2s.runtime.onnx_backend import session_options

    translator = load_translator(args.export_dir, "onnx")
    words = first_test_words(args.run_dir, args.words)
    token_lists = sorted((translator.source.spec.tokenize(word) for word in words), key=len)
    batches = [translator.source.to_ids(token_lists[i : i + args.batch]) for i in range(0, len(token_lists), args.batch)]

    options = session_options(spinning=True)  # as the runtime loads the greedy graph
    options.enable_profiling = True
    options.profile_file_prefix = str(Path("/tmp") / "keras_s2s_onnx_profile")
    session = ort.InferenceSession(str(args.export_dir / "onnx" / "greedy.onnx"), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    feed_name = translator.decoding.source_input
    for source_ids in batches:
        session.run(names, {feed_name: source_ids})
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()

    micros: Counter = Counter()
    calls: Counter = Counter()
    run_micros = 0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            micros[event["args"]["op_name"]] += event["dur"]
            calls[event["args"]["op_name"]] += 1
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            run_micros += event["dur"]
    runs = len(batches)
    print(f"{args.export_dir.name}: greedy graph, batch {args.batch}, {len(token_lists)} words, {runs} runs, "
          f"{run_micros / runs:,.0f} µs per run (profiled)\n")
    print("| op type | µs per run | calls per run | µs per call |")
    print("|---|---:|---:|---:|")
    for op, total in micros.most_common():
        print(f"| {op} | {total / runs:,.1f} | {calls[op] / runs:.1f} | {total / calls[op]:,.2f} |")


if __name__ == "__main__":
    main()

"""Wall time of `keras-s2s export RUN` in a fresh process, for one or more checkouts of the code.

    .venv/bin/python benchmarks/export_time.py --run-dir RUN [--rounds 3] [--code /path/to/checkout ...]

Each round exports RUN once per checkout (interleaved, so a slow phase of the VM hits every
checkout), into a temporary directory, with a fresh Python process whose ``PYTHONPATH`` is the
checkout (started outside it, so that the working directory cannot shadow it). Without
``--code``, the checkout is this repository. Prints the seconds per round, then a markdown table
of medians (min–max) of the process's wall time and of the export's own SavedModel and ONNX times
(its ``[export] version ...`` line).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPORT_LINE = re.compile(r"\[export\] version \d+ -> .* in ([\d.]+) s \(SavedModel ([\d.]+) s, ONNX ([\d.]+) s\)")
SCRIPT = (
    "import sys; import keras_s2s; assert keras_s2s.__file__.startswith(sys.argv[1]), keras_s2s.__file__; "
    "from keras_s2s.cli import main; sys.exit(main(['export', sys.argv[2], '--out', sys.argv[3]]))"
)


def export_once(code: Path, run_dir: Path, scratch: Path) -> dict[str, float]:
    """Seconds of one fresh-process export of ``run_dir`` with the package under ``code``."""
    out = Path(tempfile.mkdtemp(dir=scratch)) / "export"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(code), str(run_dir), str(out)],
        cwd=scratch, env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"export with {code} failed:\n{done.stderr[-2000:]}")
    match = EXPORT_LINE.search(done.stdout)
    if match is None:
        sys.exit(f"no '[export] version' line in the output of the export with {code}:\n{done.stdout[-2000:]}")
    return {"wall": wall, "export": float(match[1]), "savedmodel": float(match[2]), "onnx": float(match[3])}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, nargs="+", default=[REPO],
                        help="checkouts whose keras_s2s to time (default: this repository)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    run_dir, codes = args.run_dir.resolve(), [c.resolve() for c in args.code]
    if not (run_dir / "config.json").is_file():
        parser.error(f"--run-dir {run_dir}: not a training run directory (no config.json)")
    for code in codes:
        if not (code / "keras_s2s" / "__init__.py").is_file():
            parser.error(f"--code {code}: not a keras-s2s checkout (no keras_s2s/__init__.py)")
    times: dict[Path, list[dict[str, float]]] = {code: [] for code in codes}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for code in codes:
                seconds = export_once(code, run_dir, Path(scratch))
                times[code].append(seconds)
                print(f"  round {round_index + 1}: {code}: {seconds['wall']:.1f} s", file=sys.stderr)
    print(f"\n`keras-s2s export {run_dir}`, {args.rounds} rounds, seconds, median (min–max):\n")
    print("| code | wall, fresh process | export | SavedModel | ONNX |")
    print("|---|---:|---:|---:|---:|")
    for code, rounds in times.items():
        cells = [spread([r[key] for r in rounds]) for key in ("wall", "export", "savedmodel", "onnx")]
        print(f"| {code} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

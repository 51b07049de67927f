"""Export a trained run as separate encoder / decoder-step graphs (SavedModel + ONNX): a script to copy.

    python pipelines/export.py runs/toy [--out exported/toy] [--version N]
    python -m pipelines.export ...           (from the repository root)

It needs only the installed ``keras_s2s`` library (``keras_s2s.export_and_report``), so a copy
works from any directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="run directory written by training")
    parser.add_argument("--out", type=Path, help="export directory (default: exported/<run name>)")
    parser.add_argument("--version", type=int, help="TF Serving version number (default: newest + 1)")
    args = parser.parse_args(argv)

    from keras_s2s.errors import KerasS2SError
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    try:
        import_tensorflow_quietly()
        from keras_s2s import export_and_report

        out = args.out or Path("exported") / args.run_dir.resolve().name
        export_and_report(args.run_dir, out, version=args.version)
    except KerasS2SError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

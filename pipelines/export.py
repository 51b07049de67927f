"""Export a trained run as separate encoder / decoder-step graphs (SavedModel + ONNX).

    python -m pipelines.export runs/toy [--out exported/toy] [--version N]
    (the same as: keras-s2s export runs/toy ...)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, TextIO

from keras_s2s.export import ExportResult, export_run


def export(
    run_dir: str | Path, out_dir: str | Path, *, version: Optional[int] = None, log: Optional[TextIO] = None
) -> ExportResult:
    log = log or sys.stdout
    result = export_run(run_dir, out_dir, version=version)
    print(f"[export] version {result.version} -> {result.path} in {result.seconds['total']:.1f} s "
          f"(SavedModel {result.seconds['savedmodel']:.1f} s, ONNX {result.seconds['onnx']:.1f} s)", file=log)
    for artifact, size in result.sizes.items():
        print(f"[export]   {artifact:<22} {size / 1024:>9.1f} KiB", file=log)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    from keras_s2s.cli import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

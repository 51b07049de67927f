"""``keras-s2s``: train | translate | evaluate | export.

    keras-s2s train --config pipelines/configs/toy.json --out runs/toy [--epochs N]
    keras-s2s translate runs/toy "I go home" ...        (no text: one input per stdin line)
    keras-s2s evaluate runs/toy --data test [--json]
    keras-s2s export runs/toy --out exported/toy [--version N]
    keras-s2s translate exported/toy "I go home" --runtime onnx|savedmodel

Importing this module imports neither TensorFlow nor Keras: ``--runtime onnx`` runs where
TensorFlow is not installed. Failures print one line on stderr and return a non-zero code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

from keras_s2s.errors import KerasS2SError

_SPLITS = ("train", "validation", "test")


def main(argv: Optional[list[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return args.command(args)
    except KerasS2SError as err:
        print(f"keras-s2s: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"keras-s2s: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keras-s2s: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not bad input: keep it short but findable
        if os.environ.get("KERAS_S2S_DEBUG"):
            raise
        print(f"keras-s2s: internal error: {type(err).__name__}: {err} (set KERAS_S2S_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-s2s", description="RNN sequence-to-sequence models in Keras.")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model with model.fit into a run directory")
    train.add_argument("--config", required=True, type=Path, help="JSON config (see pipelines/configs/)")
    train.add_argument("--out", required=True, type=Path, help="run directory to write")
    train.add_argument("--epochs", type=int, help="override the config's epochs")
    train.add_argument("--train-file", help="override the config's train_file (dataset 'tsv')")
    train.add_argument("--validation-file", help="override the config's validation_file")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.set_defaults(command=_train)

    translate = commands.add_parser("translate", help="greedy-decode texts with a run or an export")
    translate.add_argument("path", type=Path, help="run directory or export directory")
    translate.add_argument("texts", nargs="*", help="inputs; none: read one input per line from stdin")
    _runtime_argument(translate)
    translate.add_argument("--batch-size", type=int, default=64)
    translate.set_defaults(command=_translate)

    evaluate = commands.add_parser("evaluate", help="score a run or an export on a TSV file")
    evaluate.add_argument("path", type=Path, help="run directory or export directory")
    evaluate.add_argument("--data", required=True,
                          help="a source<TAB>target file, or train|validation|test for a run's own splits")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--skip-malformed", action="store_true", help="skip (and count) malformed lines")
    _runtime_argument(evaluate)
    evaluate.set_defaults(command=_evaluate)

    export = commands.add_parser("export", help="export encoder and decoder as SavedModel + ONNX")
    export.add_argument("run_dir", type=Path, help="run directory written by train")
    export.add_argument("--out", type=Path, help="export directory (default: exported/<run name>)")
    export.add_argument("--version", type=int, help="TF Serving version number (default: newest + 1)")
    export.set_defaults(command=_export)
    return parser


def _runtime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=("keras", "savedmodel", "onnx"),
                        help="keras for a run directory (default); onnx (default) or savedmodel for an export")


# --- commands ------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    from keras_s2s.config import Seq2SeqConfig

    config = Seq2SeqConfig.from_json(args.config)
    overrides = {"epochs": args.epochs, "train_file": args.train_file, "validation_file": args.validation_file}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.train_file:
        overrides["dataset"] = "tsv"
    config = config.replace(**overrides)
    _load_tensorflow()
    from pipelines.train import train

    train(config, args.out, overwrite=args.overwrite)
    return 0


def _translate(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise KerasS2SError(f"--batch-size must be a positive integer, got {args.batch_size}")
    translator = _load_translator(args.path, args.runtime)
    texts = args.texts if args.texts else [line.rstrip("\r\n") for line in sys.stdin]
    for output in translator.translate(texts, batch_size=args.batch_size):
        print(output)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from keras_s2s.evaluation import evaluate

    data = _resolve_data(args.path, args.data)
    translator = _load_translator(args.path, args.runtime)
    scores = evaluate(translator, data, skip_malformed=args.skip_malformed)
    if args.json:
        print(json.dumps(scores, ensure_ascii=False))
        return 0
    print(f"data:              {data} ({scores['pairs']} pairs, {scores['sources']} distinct sources)")
    print(f"token accuracy:    {scores['token_accuracy']:.4f}  (teacher-forced, next token)")
    print(f"sequence accuracy: {scores['sequence_accuracy']:.4f}  (greedy output equals a reference)")
    print(f"WER:               {scores['wer']:.4f}  (sources whose output matches no reference)")
    print(f"PER:               {scores['per']:.4f}  (token edit distance / reference tokens)")
    print(f"CER:               {scores['cer']:.4f}  (character edit distance / reference characters)")
    return 0


def _export(args: argparse.Namespace) -> int:
    _load_tensorflow()
    from pipelines.export import export

    export(args.run_dir, args.out or Path("exported") / args.run_dir.resolve().name, version=args.version)
    return 0


# --- helpers -------------------------------------------------------------------------
def _load_tensorflow() -> None:
    from keras_s2s.backend import import_tensorflow_quietly

    import_tensorflow_quietly()
    warnings.filterwarnings("ignore", module="keras")


def _load_translator(path: Path, runtime: Optional[str]):
    from keras_s2s.run import RunDir
    from keras_s2s.runtime import load_translator

    if runtime in ("keras", "savedmodel") or (runtime is None and RunDir.is_run_dir(path)):
        _load_tensorflow()
    return load_translator(path, runtime)


def _resolve_data(path: Path, data: str) -> Path:
    """``train|validation|test`` name the split files recorded in the config of a run
    (``config.json``) or of an export (``assets/config.json``)."""
    if data not in _SPLITS:
        return Path(data)
    from keras_s2s.config import Seq2SeqConfig

    configs = [path / "config.json", path / "assets" / "config.json"]
    config_file = next((c for c in configs if c.is_file()), None)
    if config_file is None:
        raise KerasS2SError(f"--data {data} names a split of the training data, but {path} holds no config.json; pass a file")
    split_file = getattr(Seq2SeqConfig.from_json(config_file), f"{data}_file")
    if not split_file:
        raise KerasS2SError(f"the run behind {path} has no {data} file; pass --data FILE")
    return Path(split_file)


if __name__ == "__main__":
    sys.exit(main())

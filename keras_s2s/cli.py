"""``keras-s2s``: train | translate | evaluate | export.

    keras-s2s train --config pipelines/configs/toy.json --out runs/toy [--epochs N] [--strategy mirrored|multi-worker]
    keras-s2s translate runs/toy "I go home" ...        (no text: one input per stdin line)
    keras-s2s translate runs/toy "I go home" --beam 5 --nbest 3 [--json] [--plot-attention out.png]
    keras-s2s evaluate runs/toy --data test [--beam N [--length-penalty A]] [--json]
    keras-s2s evaluate runs/a --data test --compare-with runs/b     (paired: is the WER difference chance?)
    keras-s2s export runs/toy --out exported/toy [--version N]
    keras-s2s translate exported/toy --runtime onnx|savedmodel "I go home"
    keras-s2s serve-request exported/toy "I go home" [--grpc] [--columns]

Options may come before, between or after the positional arguments.

Importing this module imports neither TensorFlow nor Keras: ``--runtime onnx`` runs where
TensorFlow is not installed. Failures print one line on stderr and return a non-zero code:
1 for a user error (bad input, option or file), 2 for bad usage (argparse), 70 (EX_SOFTWARE)
for an internal error, i.e. a bug (KERAS_S2S_DEBUG=1 shows its traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

from keras_s2s.cluster import STRATEGIES, read_tf_config
from keras_s2s.constants import UNK_TOKEN
from keras_s2s.errors import KerasS2SError

_SPLITS = ("train", "validation", "test")


def main(argv: Optional[list[str]] = None) -> int:
    try:
        args = _parse_args(sys.argv[1:] if argv is None else list(argv))
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
        return 70  # EX_SOFTWARE: a bug, distinct from a user error (1)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    """Options may come before, between or after the positionals (``translate PATH --runtime onnx
    hello``). ``parse_intermixed_args`` allows that but not with subparsers, so the command's own
    parser reads everything after the command name; the top-level parser handles the rest
    (``--help``, a missing or unknown command: usage error, exit 2)."""
    parser, commands = _parser()
    if argv and argv[0] in commands:
        return commands[argv[0]].parse_intermixed_args(argv[1:])
    return parser.parse_args(argv)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's parser, by name."""
    parser = argparse.ArgumentParser(prog="keras-s2s", description="RNN sequence-to-sequence models in Keras.")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model with model.fit into a run directory")
    train.add_argument("--config", required=True, type=Path, help="JSON config (see pipelines/configs/)")
    train.add_argument("--out", required=True, type=Path, help="run directory to write")
    train.add_argument("--epochs", type=int, help="override the config's epochs")
    train.add_argument("--train-file", help="override the config's train_file (dataset 'tsv')")
    train.add_argument("--validation-file", help="override the config's validation_file")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument(
        "--resume", action="store_true",
        help="continue the unfinished run in --out from its last completed epoch (same config and data files; "
             "an empty or missing --out starts a new run)",
    )
    train.add_argument(
        "--strategy", choices=STRATEGIES, default="default",
        help="tf.distribute strategy: default (one device), mirrored (every GPU of this machine), multi-worker "
             "(one process per machine, cluster from TF_CONFIG); the config's batch_size is the global batch",
    )
    train.set_defaults(command=_train)

    translate = commands.add_parser(
        "translate", help="translate texts with a run or an export (greedy or beam search)",
        description="Translates each TEXT (none: one input per stdin line) and prints one output line "
                    "per input. Options may come before, between or after the texts; '--' ends the options.",
    )
    translate.add_argument("path", type=Path, help="run directory or export directory")
    translate.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; none: read one input per line from stdin")
    _runtime_argument(translate)
    translate.add_argument("--batch-size", type=int, default=64, metavar="N", help="inputs decoded together (default 64)")
    _decoding_arguments(translate)
    translate.add_argument(
        "--nbest", type=int, metavar="K",
        help="print the K best hypotheses of each input, K lines 'output<TAB>score' (score: log-probability, "
             "length-penalized, 4 decimals); without --beam, beam search of width K",
    )
    translate.add_argument(
        "--json", action="store_true",
        help='print one JSON object per input: {"input": TEXT, "hypotheses": [{"output", "score", "log_prob"}, ...]} '
             "(the --nbest best, or 1)",
    )
    translate.add_argument(
        "--plot-attention", type=Path, metavar="PNG",
        help="also write the attention heatmap (source tokens x output tokens) of every input: to PNG for "
             "one input; for several, to numbered files beside it (out.png -> out-1.png, out-2.png, ... in "
             "input order); models with attention only",
    )
    translate.set_defaults(command=_translate)

    evaluate = commands.add_parser("evaluate", help="score a run or an export on a TSV file")
    evaluate.add_argument("path", type=Path, help="run directory or export directory")
    evaluate.add_argument("--data", required=True,
                          help="a source<TAB>target file, or train|validation|test for a run's own splits")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--skip-malformed", action="store_true", help="skip (and count) malformed lines")
    evaluate.add_argument("--strip-stress", action="store_true",
                          help="G2P: drop ARPAbet stress digits (AH0 -> AH) from outputs and references before scoring")
    evaluate.add_argument(
        "--compare-with", type=Path, metavar="PATH",
        help="a second run or export, decoded and scored the same way: prints both WERs and PERs, the sources only "
             "one of them gets wrong, McNemar's exact p-value and a paired bootstrap 95%% interval of the WER "
             "difference (data names a split of PATH's run, the first one)",
    )
    _runtime_argument(evaluate)
    _decoding_arguments(evaluate)
    evaluate.set_defaults(command=_evaluate)

    export = commands.add_parser("export", help="export encoder and decoder as SavedModel + ONNX")
    export.add_argument("run_dir", type=Path, help="run directory written by train")
    export.add_argument("--out", type=Path, help="export directory (default: exported/<run name>)")
    export.add_argument("--version", type=int, help="TF Serving version number (default: newest + 1)")
    export.add_argument(
        "--translate-beam", type=int, metavar="N",
        help="the translate SavedModel decodes with beam search keeping N hypotheses (default: greedy)",
    )
    export.add_argument("--translate-nbest", type=int, metavar="K",
                        help="with --translate-beam: return the K best per input (default 1)")
    export.add_argument("--translate-length-penalty", type=float, metavar="A",
                        help="with --translate-beam: GNMT length penalty alpha >= 0 (default 0)")
    export.set_defaults(command=_export)

    request = commands.add_parser(
        "serve-request", help="print the TF Serving request (REST body or gRPC PredictRequest) translating TEXT",
        description="Prints what a client sends to the export's translate model on TF Serving (or keras-s2s serve): "
                    "the REST URL and JSON body, or with --grpc the PredictRequest in protobuf text format.",
    )
    request.add_argument("path", type=Path, help="export directory (with a translate model)")
    request.add_argument("texts", nargs="+", metavar="TEXT", help="inputs to translate")
    request.add_argument("--grpc", action="store_true", help="a gRPC PredictRequest instead of a REST body")
    request.add_argument("--columns", action="store_true",
                         help='REST column format {"inputs": {"text": [...]}} instead of rows {"instances": [...]}')
    request.add_argument("--host", default="localhost", help="server host for the REST URL (default localhost)")
    request.add_argument("--port", type=int, default=8501, help="REST port for the URL (default 8501)")
    request.set_defaults(command=_serve_request)

    serve = commands.add_parser(
        "serve", help="serve the export's translate model over TF Serving's REST API (ONNX Runtime, no TensorFlow)",
        description="Runs an HTTP server speaking TF Serving's REST API for the export's translate model: "
                    "GET /v1/models/NAME, GET /v1/models/NAME/metadata, POST /v1/models/NAME:predict "
                    "(instances or inputs), GET /healthz. Concurrent requests are batched together. "
                    "Stops on Ctrl-C or SIGTERM.",
    )
    serve.add_argument("path", type=Path, help="export directory (with a translate model)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's REST port; 0: any free)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="ONNX Runtime translators (own sessions each) decoding batches concurrently (default 1)")
    serve.add_argument("--max-batch-size", type=int, default=64, metavar="B",
                       help="most texts decoded in one batch (default 64)")
    serve.add_argument("--max-wait-ms", type=float, default=2.0, metavar="MS",
                       help="how long a batch waits for more texts after its first (default 2 ms)")
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20, metavar="BYTES",
                       help="larger request bodies get 413 (default 1 MiB)")
    serve.set_defaults(command=_serve)
    return parser, dict(commands.choices)


def _runtime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=("keras", "savedmodel", "onnx"),
                        help="keras for a run directory (default); onnx (default) or savedmodel for an export")


def _decoding_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam", type=int, metavar="N", help="beam search keeping N hypotheses (default: greedy)")
    parser.add_argument(
        "--length-penalty", type=float, metavar="A",
        help="beam search: GNMT length penalty alpha >= 0 (default 0: rank by log-probability; "
             "larger values favour longer outputs, 0.6-1.0 is usual)",
    )


# --- commands ------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    from keras_s2s.config import Seq2SeqConfig

    config = Seq2SeqConfig.from_json(args.config)
    overrides = {"epochs": args.epochs, "train_file": args.train_file, "validation_file": args.validation_file}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.train_file:
        overrides["dataset"] = "tsv"
    config = config.replace(**overrides)
    if args.strategy == "multi-worker":
        read_tf_config()  # a mistake there is reported before TensorFlow loads
    _load_tensorflow()
    from keras_s2s.training import train_model

    train_model(config, args.out, overwrite=args.overwrite, resume=args.resume, strategy=args.strategy)
    return 0


def _translate(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise KerasS2SError(f"--batch-size must be a positive integer, got {args.batch_size}")
    strategy = _strategy(args)
    if args.plot_attention and args.plot_attention.suffix.lower() != ".png":
        raise KerasS2SError(f"--plot-attention expects a .png file name, got {str(args.plot_attention)!r}")
    translator = _load_translator(args.path, args.runtime)
    if args.plot_attention and not translator.has_attention:
        raise KerasS2SError(
            f"--plot-attention: the model at {args.path} has no attention (config attention: none), so there "
            "are no attention weights to plot; train with \"attention\": \"luong\" or \"bahdanau\""
        )
    texts = args.texts if args.texts else [line.rstrip("\r\n") for line in sys.stdin]
    attention_maps = []
    if args.plot_attention:  # before printing anything: an input without tokens is an error here
        plot_paths = _attention_paths(args.plot_attention, len(texts))
        for number, text in enumerate(texts, start=1):
            if not translator.source.spec.tokenize(text):
                raise KerasS2SError(f"--plot-attention: input {number} ({text!r}) has no tokens, so nothing to plot")
            attention_maps.append(translator.attention_map(text, strategy=strategy))
    results = translator.translate_inputs(texts, batch_size=args.batch_size, strategy=strategy)
    for number, (text, result) in enumerate(zip(texts, results), start=1):
        _warn_about_input(number, result)
        hypotheses = result.hypotheses
        if args.json:
            listed = [{"output": h.text, "score": float(h.score), "log_prob": float(h.log_prob)} for h in hypotheses]
            print(json.dumps({
                "input": text, "hypotheses": listed,
                "unknown_tokens": result.source.unknown_tokens, "truncated": result.source.truncated,
            }, ensure_ascii=False))
        elif args.nbest:
            # An input without tokens has one empty translation: repeat it so every input has K lines.
            hypotheses = hypotheses + hypotheses[-1:] * (args.nbest - len(hypotheses))
            for hypothesis in hypotheses:
                print(f"{hypothesis.text}\t{hypothesis.score:.4f}")
        else:
            print(hypotheses[0].text)
    if attention_maps:
        from keras_s2s.plots import plot_attention

        for text, attention_map, path in zip(texts, attention_maps, plot_paths):
            plot_attention(attention_map, path, title=text)
            print(f"[attention] {path}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from keras_s2s.evaluation import evaluate

    strategy = _strategy(args)
    data = _resolve_data(args.path, args.data)
    translator = _load_translator(args.path, args.runtime)
    if args.compare_with is not None:
        return _compare(args, translator, data, strategy)
    scores = evaluate(
        translator, data, strategy=strategy, skip_malformed=args.skip_malformed, strip_stress=args.strip_stress
    )
    if args.json:
        print(json.dumps(scores, ensure_ascii=False))
        return 0
    decoding = scores["strategy"]
    if decoding["name"] == "beam":
        decoding = f"beam search, width {decoding['width']}, length penalty {decoding['length_penalty']:g}"
    else:
        decoding = decoding["name"]
    print(f"data:              {data} ({scores['pairs']} pairs, {scores['sources']} distinct sources)")
    print(f"strategy:          {decoding}" + ("; stress digits stripped before scoring" if args.strip_stress else ""))
    print(f"token accuracy:    {scores['token_accuracy']:.4f}  (teacher-forced, next token)")
    print(f"sequence accuracy: {scores['sequence_accuracy']:.4f}  (output equals a reference)")
    print(f"WER:               {scores['wer']:.4f}  (sources whose output matches no reference)")
    print(f"PER:               {scores['per']:.4f}  (token edit distance / reference tokens)")
    print(f"CER:               {scores['cer']:.4f}  (character edit distance / reference characters)")
    print(f"BLEU:              {scores['bleu']:.2f}  (sacrebleu corpus BLEU, 0-100; {scores['bleu_signature']})")
    print(f"chrF:              {scores['chrf']:.2f}  (sacrebleu corpus chrF, 0-100; {scores['chrf_signature']})")
    print(f"unknown tokens:    {scores['unknown_source_tokens']} source tokens mapped to {UNK_TOKEN}, "
          f"in {scores['sources_with_unknown_tokens']} of {scores['sources']} distinct sources")
    print(f"truncated:         {scores['sources_truncated']} of {scores['sources']} distinct sources "
          f"(longer than the model's maximum of {scores['max_source_length']} source tokens; it read the first ones)")
    return 0


def _compare(args: argparse.Namespace, translator, data: Path, strategy) -> int:
    from keras_s2s.evaluation import compare_models

    other = _load_translator(args.compare_with, args.runtime)
    result = compare_models(
        translator, other, data, strategy=strategy, skip_malformed=args.skip_malformed, strip_stress=args.strip_stress
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"data:          {data} ({result['pairs']} pairs, {result['sources']} distinct sources)")
    print(f"A:             {args.path}  WER {result['wer_a']:.4f}  PER {result['per_a']:.4f}")
    print(f"B:             {args.compare_with}  WER {result['wer_b']:.4f}  PER {result['per_b']:.4f}")
    print(f"B - A:         WER {result['difference']:+.4f}, 95% interval [{result['interval_low']:+.4f}, "
          f"{result['interval_high']:+.4f}] (paired bootstrap over the sources)")
    print(f"disagreements: {result['only_a_wrong']} sources only A gets wrong, {result['only_b_wrong']} only B")
    print(f"p-value:       {result['p_value']:.4g}  (McNemar's exact test: the models are equally good)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from keras_s2s.decoding import Beam, Greedy

    if args.translate_beam is None and (args.translate_nbest is not None or args.translate_length_penalty is not None):
        raise KerasS2SError("--translate-nbest and --translate-length-penalty need --translate-beam N")
    try:
        strategy = Greedy() if args.translate_beam is None else Beam(
            width=args.translate_beam,
            nbest=1 if args.translate_nbest is None else args.translate_nbest,
            length_penalty=0.0 if args.translate_length_penalty is None else args.translate_length_penalty,
        )
    except ValueError as err:
        raise KerasS2SError(f"--translate-beam/--translate-nbest/--translate-length-penalty: {err}") from None
    _load_tensorflow()
    from keras_s2s.export import export_and_report

    export_and_report(args.run_dir, args.out or Path("exported") / args.run_dir.resolve().name, version=args.version,
                      translate_strategy=strategy)
    return 0


# --- helpers -------------------------------------------------------------------------
def _serve_request(args: argparse.Namespace) -> int:
    from keras_s2s.runtime.artifact import ExportLayout
    from keras_s2s.serving_client import grpc_predict_request, rest_predict_body, rest_predict_url

    metadata = ExportLayout(args.path).read_metadata()
    if "translate" not in metadata:
        raise KerasS2SError(f"{args.path} has no translate model (exported before it existed); re-export the run")
    model_name = metadata["translate"]["serving_model_name"]
    if args.grpc:
        _load_tensorflow()
        print(f"# tensorflow.serving.PredictionService/Predict, model {model_name} (gRPC port 8500 by default)")
        print(grpc_predict_request(args.texts, model_name), end="")
    else:
        print(f"POST {rest_predict_url(args.host, args.port, model_name)}")
        print(json.dumps(rest_predict_body(args.texts, columns=args.columns), ensure_ascii=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from keras_s2s.serving.server import ServeOptions, serve

    for option, value in (("--workers", args.workers), ("--max-batch-size", args.max_batch_size),
                          ("--max-body-bytes", args.max_body_bytes)):
        if value < 1:
            raise KerasS2SError(f"{option} must be a positive integer, got {value}")
    if not 0 <= args.max_wait_ms < math.inf or not 0 <= args.port <= 65535:
        raise KerasS2SError(f"--max-wait-ms must be >= 0 and --port in 0..65535, got {args.max_wait_ms} and {args.port}")
    options = ServeOptions(workers=args.workers, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                           max_body_bytes=args.max_body_bytes, max_queued=max(4096, args.max_batch_size))

    def ready(url: str) -> None:
        print(f"keras-s2s serve: {url} ready (workers {args.workers}, max batch {args.max_batch_size}, "
              f"max wait {args.max_wait_ms:g} ms)", flush=True)

    serve(args.path, args.host, args.port, options, on_ready=ready)
    return 0


def _warn_about_input(number: int, result) -> None:
    """One stderr line per thing the model could not read of input ``number`` (a
    ``TranslatedInput``): source tokens mapped to UNK, tokens past the maximum source length."""
    source = result.source
    where = f"keras-s2s: warning: input {number} {_preview(result.text)!r}"
    if source.truncated:
        kept = len(source.tokens)
        print(f"{where}: {source.length} source tokens, more than the model's maximum of {kept}; "
              f"translated the first {kept} only", file=sys.stderr)
    if source.unknown_tokens:
        count, shown = len(source.unknown_tokens), source.unknown_tokens[:10]
        listed = ", ".join(repr(token) for token in shown) + (", ..." if count > len(shown) else "")
        plural = "s" if count > 1 else ""
        print(f"{where}: {count} unknown source token{plural} mapped to {UNK_TOKEN}: {listed}", file=sys.stderr)


def _preview(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_tensorflow() -> None:
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    warnings.filterwarnings("ignore", module="keras")


def _load_translator(path: Path, runtime: Optional[str]):
    from keras_s2s.runtime import load_translator, resolve_runtime

    resolved = resolve_runtime(path, runtime)
    if resolved in ("keras", "savedmodel"):  # onnx runs without TensorFlow
        _load_tensorflow()
    return load_translator(path, resolved)


def _strategy(args: argparse.Namespace):
    """Greedy, or Beam from --beam / --nbest / --length-penalty (checked here: a usage mistake is a
    one-line error naming the option, not a ValueError from keras_s2s.decoding)."""
    from keras_s2s.decoding import Beam, Greedy

    beam, nbest, alpha = args.beam, getattr(args, "nbest", None), args.length_penalty
    for option, value in (("--beam", beam), ("--nbest", nbest)):
        if value is not None and value < 1:
            raise KerasS2SError(f"{option} must be a positive integer, got {value}")
    if beam is not None and nbest is not None and nbest > beam:
        raise KerasS2SError(
            f"--nbest {nbest} needs a beam at least that wide, got --beam {beam}; raise --beam or leave it out"
        )
    if alpha is not None and not 0 <= alpha < math.inf:
        raise KerasS2SError(f"--length-penalty must be a non-negative number, got {alpha}")
    width = beam or nbest
    if width is None:
        if alpha is not None:
            raise KerasS2SError("--length-penalty only applies to beam search; add --beam N")
        return Greedy()
    return Beam(width=width, length_penalty=alpha or 0.0, nbest=nbest or 1)


def _attention_paths(path: Path, count: int) -> list[Path]:
    """``out.png`` for one input; ``out-1.png``, ``out-2.png``, ... for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{number}{path.suffix}") for number in range(1, count + 1)]


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

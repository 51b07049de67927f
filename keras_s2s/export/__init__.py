"""Export a trained model as separate encoder and decoder-step graphs: SavedModel + ONNX.

``export_run(run_dir, out_dir)`` writes the layout of ``keras_s2s.runtime.artifact``;
``export_and_report`` does the same and prints the version, timings and sizes.
Writes are atomic: everything is built in a hidden sibling directory and renamed into
place; when versions already exist, the new ``encoder/N`` and ``decoder/N`` are moved in
beside them (older versions are never touched) and ``assets/`` (with metadata.json) is
replaced last, so a crash at any point leaves either the previous export or one without
metadata, which the runtimes refuse to load. An error raised while publishing moves
everything back (the previous export loads again); the hidden directories of an export
that was killed are deleted by the next export into the same place.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import re
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Optional, TextIO

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID, UNK_ID
from keras_s2s.decoding import Beam, Greedy, Strategy
from keras_s2s.errors import ExportError
from keras_s2s.runtime.artifact import FORMAT, FORMAT_VERSION, ExportLayout, sha256_of
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature
from keras_s2s.signatures import decoding_interface, signatures_from_models
from keras_s2s.vocab import Vocabulary

GRAPHS = ("encoder", "decoder", "greedy")
"""The exported graphs: encoder and decoder step (the design's separate graphs), and greedy
decoding in one graph (keras_s2s.export.greedy). Each is a SavedModel and an ONNX file."""
SAVEDMODEL_GRAPHS = (*GRAPHS, "beam", "translate")
"""The SavedModels (TF Serving models): the graphs above; ``beam``, beam search in one graph
(keras_s2s.export.beam; SavedModel only: as ONNX it ran at half the speed of the step loop,
benchmarks/RESULTS.md); and ``translate``, strings in and out (keras_s2s.export.translate;
tensorflow-text ops, so SavedModel only)."""
_VERSIONED_LIBRARIES = (
    "keras-s2s", "tensorflow", "keras", "tensorflow-text", "tf2onnx", "onnx", "onnxruntime", "numpy",
)


@dataclasses.dataclass
class ExportResult:
    path: Path
    version: int
    seconds: dict[str, float]
    """Wall time of each phase: savedmodel, onnx, total."""
    sizes: dict[str, int]
    """Bytes per artifact: encoder/N, decoder/N, onnx/encoder.onnx, onnx/decoder.onnx, assets."""


def export_run(
    run_dir: str | Path, out_dir: str | Path, *, version: Optional[int] = None, translate_strategy: Strategy = Greedy()
) -> ExportResult:
    """Exports the final model of a training run to ``out_dir`` as version ``version``
    (default: one more than the newest version there, or 1). ``translate_strategy``: how the
    translate SavedModel decodes (Greedy(), or Beam(width, nbest, length_penalty) for the n-best)."""
    from keras_s2s.run_dir import load_trained_model

    trained = load_trained_model(run_dir)
    return export_models(
        trained.encoder, trained.decoder, out_dir,
        config=trained.config, source_vocab=trained.source_vocab, target_vocab=trained.target_vocab, version=version,
        translate_strategy=translate_strategy,
    )


def export_and_report(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    version: Optional[int] = None,
    translate_strategy: Strategy = Greedy(),
    log: Optional[TextIO] = None,
) -> ExportResult:
    """``export_run``, then one line with the version, path and timings and one line per
    artifact with its size, written to ``log`` (default: the current sys.stdout)."""
    log = log or sys.stdout
    result = export_run(run_dir, out_dir, version=version, translate_strategy=translate_strategy)
    print(f"[export] version {result.version} -> {result.path} in {result.seconds['total']:.1f} s "
          f"(SavedModel {result.seconds['savedmodel']:.1f} s, ONNX {result.seconds['onnx']:.1f} s)", file=log)
    for artifact, size in result.sizes.items():
        print(f"[export]   {artifact:<22} {size / 1024:>9.1f} KiB", file=log)
    return result


def export_models(
    encoder,
    decoder,
    out_dir: str | Path,
    *,
    config: Seq2SeqConfig,
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    version: Optional[int] = None,
    translate_strategy: Strategy = Greedy(),
) -> ExportResult:
    """Exports Keras ``encoder`` and ``decoder`` models (built by keras_s2s.models)."""
    from keras_s2s.export.beam import COMPILED_BEAM_SIGNATURE, beam_signature
    from keras_s2s.export.graphs import beam_serving_function, greedy_serving_function, translate_serving_function
    from keras_s2s.export.greedy import COMPILED_GREEDY_SIGNATURE, greedy_signature
    from keras_s2s.export.translate import TextTables, translate_signature
    from keras_s2s.export.warmup import write_warmup_requests
    from keras_s2s.export.onnx import write_encoder_onnx, write_greedy_onnx, write_onnx
    from keras_s2s.export.savedmodel import write_function_savedmodel, write_savedmodel
    from keras_s2s.models import single_step_decoder, step_encoder

    started = time.perf_counter()
    target = ExportLayout(out_dir)
    version = _choose_version(target, version)
    signatures = signatures_from_models(encoder, decoder)
    greedy = greedy_signature(signatures.encoder, signatures.decoding)
    # The in-graph decoding loops (greedy, beam, translate) run the one-step decoder, started by
    # an encoder that also computes what the step needs once per source (models.step_encoder).
    step_decoder = single_step_decoder(decoder, config)
    loop_encoder = step_encoder(encoder, decoder, config)
    loop_decoding = decoding_interface(loop_encoder, step_decoder)
    target.path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_work_dirs(target)
    staging = ExportLayout(_work_dir(target, "staging"))
    seconds: dict[str, float] = {}
    try:
        clock = time.perf_counter()
        write_savedmodel(encoder, signatures.encoder, staging.savedmodel_dir("encoder", version))
        write_savedmodel(decoder, signatures.decoder, staging.savedmodel_dir("decoder", version))

        # The greedy and beam graphs: serving_default, plus the same decoding XLA-compiled.
        def write_decoding_savedmodel(graph: str, make_function, compiled_signature: str) -> None:
            write_function_savedmodel(
                [loop_encoder, step_decoder], make_function(False), staging.savedmodel_dir(graph, version),
                {compiled_signature: make_function(True)},
            )

        write_decoding_savedmodel("greedy", lambda compiled: greedy_serving_function(
            loop_encoder, step_decoder, greedy, loop_decoding, config.max_decode_length,
            check_inputs=True, compile_small_batches=compiled,
        ), COMPILED_GREEDY_SIGNATURE)
        beam = beam_signature(signatures.encoder, signatures.decoding)
        write_decoding_savedmodel("beam", lambda compiled: beam_serving_function(
            loop_encoder, step_decoder, beam, loop_decoding, config.max_decode_length, compiled=compiled,
        ), COMPILED_BEAM_SIGNATURE)
        tables = TextTables(source_vocab, target_vocab)
        translate_function = translate_serving_function(
            loop_encoder, step_decoder, loop_decoding, tables, config=config, strategy=translate_strategy,
            check_inputs=True,
        )
        write_function_savedmodel(
            [loop_encoder, step_decoder, tables], translate_function, staging.savedmodel_dir("translate", version)
        )
        write_warmup_requests(
            staging.savedmodel_dir("translate", version), f"{target.path.name}_translate", source_vocab,
            config.source_spec(),
        )
        seconds["savedmodel"] = time.perf_counter() - clock
        clock = time.perf_counter()
        staging.onnx_dir.mkdir(parents=True)
        recurrences = {"encoder": write_encoder_onnx(encoder, config, signatures.encoder, staging.onnx_file("encoder"))}
        write_onnx(decoder, signatures.decoder, staging.onnx_file("decoder"))
        recurrences["greedy"] = write_greedy_onnx(
            encoder, decoder, config, greedy, config.max_decode_length, staging.onnx_file("greedy"),
            encoder_recurrence=recurrences["encoder"], step_decoder=step_decoder,
        )
        seconds["onnx"] = time.perf_counter() - clock
        staging.assets.mkdir(parents=True)
        source_vocab.save(staging.source_vocab)
        target_vocab.save(staging.target_vocab)
        config.to_json(staging.config)
        staging.models_config.write_text(serving_config(target.path.name), encoding="utf-8")
        graph_signatures = {"encoder": signatures.encoder, "decoder": signatures.decoder, "greedy": greedy}
        translate = _translate_metadata(target.path.name, version, translate_signature(translate_strategy), translate_strategy)
        metadata = _metadata(staging, target.path.name, version, config, graph_signatures, signatures.decoding, recurrences)
        metadata["translate"] = translate
        metadata["beam"] = _savedmodel_graph_metadata(target.path.name, version, beam, COMPILED_BEAM_SIGNATURE)
        staging.write_metadata(metadata)
        sizes = {
            **{f"{g}/{version}": _size(staging, staging.savedmodel_dir(g, version)) for g in SAVEDMODEL_GRAPHS},
            **{f"onnx/{g}.onnx": _size(staging, staging.onnx_file(g)) for g in GRAPHS},
            "assets": _size(staging, staging.assets),
        }
        _publish(staging, target, version)
    finally:
        shutil.rmtree(staging.path, ignore_errors=True)
    seconds["total"] = time.perf_counter() - started
    return ExportResult(target.path, version, seconds, sizes)


def serving_config(name: str, base: str = "/models") -> str:
    """TF Serving ``--model_config_file`` text serving ``NAME_GRAPH`` from ``{base}/NAME/GRAPH``
    for every SavedModel graph (mount the export at base/NAME)."""
    entries = "".join(
        f'  config {{\n    name: "{name}_{graph}"\n    base_path: "{base}/{name}/{graph}"\n'
        f'    model_platform: "tensorflow"\n  }}\n'
        for graph in SAVEDMODEL_GRAPHS
    )
    return f"model_config_list {{\n{entries}}}\n"


def _choose_version(target: ExportLayout, version: Optional[int]) -> int:
    for path in (target.path, *target.path.parents):  # a file on the way: "[Errno 20] Not a directory"
        if path.exists() and not path.is_dir():
            where = "it is a file" if path == target.path else f"{path} is a file, not a directory"
            raise ExportError(
                f"cannot export to {target.path}: {where}; expected an export directory "
                "(a new or empty directory, or an earlier keras-s2s export to add a version to)"
            )
    existing = sorted(set(target.versions("encoder")) | set(target.versions("decoder")))
    if target.path.exists() and any(target.path.iterdir()) and not existing and not target.metadata.is_file():
        raise ExportError(f"refusing to export into {target.path}: it exists and is not a keras-s2s export")
    if version is None:
        return existing[-1] + 1 if existing else 1
    if version < 1:
        raise ExportError(f"--version must be a positive integer (TF Serving version directory), got {version}")
    if version in existing:
        raise ExportError(
            f"version {version} already exists in {target.path} (versions: {existing}); "
            f"pass --version {existing[-1] + 1} to add a new one"
        )
    return version


def _metadata(
    staging: ExportLayout,
    name: str,
    version: int,
    config: Seq2SeqConfig,
    graph_signatures: dict[str, GraphSignature],
    decoding: DecodingInterface,
    onnx_recurrences: dict[str, str],
) -> dict:
    graphs = {}
    for graph, signature in graph_signatures.items():
        graphs[graph] = {
            "savedmodel": f"{graph}/{version}",
            "onnx": f"onnx/{graph}.onnx",
            "signature_name": "serving_default",
            "serving_model_name": f"{name}_{graph}",
            **signature.to_dict(),
        }
    # How the ONNX encoders (the encoder graph, and the one inside greedy) run their
    # recurrence: "fused" LSTM ops fed sequence_lens, or tf2onnx's "loop" over the masked graph.
    for graph, recurrence in onnx_recurrences.items():
        graphs[graph]["onnx_recurrence"] = recurrence
    if "greedy" in graphs:
        from keras_s2s.export.greedy import COMPILED_GREEDY_SIGNATURE

        graphs["greedy"]["compiled_signature_name"] = COMPILED_GREEDY_SIGNATURE
    files = {
        staging.relative(path): sha256_of(path)
        for path in staging.files_under(staging.path)
        if path != staging.metadata
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graphs": graphs,
        "decoding": decoding.to_dict(),
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "sos": SOS_ID, "eos": EOS_ID},
        "max_source_length": config.max_source_length,
        "max_target_length": config.max_target_length,
        "max_decode_length": config.max_decode_length,
        "text": {"source": config.source_spec().to_dict(), "target": config.target_spec().to_dict()},
        "reverse_source": config.reverse_source,
        "vocabularies": {"source": staging.relative(staging.source_vocab), "target": staging.relative(staging.target_vocab)},
        "config": staging.relative(staging.config),
        "library_versions": {lib: importlib.metadata.version(lib) for lib in _VERSIONED_LIBRARIES},
        "files": files,
    }


def _savedmodel_graph_metadata(name: str, version: int, signature: GraphSignature, compiled_signature: str) -> dict:
    """metadata.json's entry for a SavedModel-only graph with an XLA-compiled signature (``beam``)."""
    return {
        "savedmodel": f"{signature.name}/{version}",
        "signature_name": "serving_default",
        "compiled_signature_name": compiled_signature,
        "serving_model_name": f"{name}_{signature.name}",
        **signature.to_dict(),
    }


def _translate_metadata(name: str, version: int, signature: GraphSignature, strategy: Strategy) -> dict:
    """metadata.json's ``translate`` entry: where the SavedModel is, its tensors and how it decodes."""
    entry = {
        "savedmodel": f"translate/{version}",
        "signature_name": "serving_default",
        "serving_model_name": f"{name}_translate",
        "strategy": "greedy" if isinstance(strategy, Greedy) else "beam",
        **signature.to_dict(),
    }
    if isinstance(strategy, Beam):
        entry["beam"] = {"width": strategy.width, "nbest": strategy.nbest, "length_penalty": strategy.length_penalty}
    return entry


def _publish(staging: ExportLayout, target: ExportLayout, version: int) -> None:
    """Moves the staged export into ``target`` by renames inside one directory tree. Each
    state in between is the previous export or one without metadata (which does not load);
    on an error the renames done so far are undone in reverse order, passing back through
    those same states, and the error is raised again."""
    if not target.path.exists() or not any(target.path.iterdir()):
        os.rename(staging.path, target.path)  # atomic; replaces an empty directory
        return
    trash = _work_dir(target, "replaced")
    trash.mkdir()
    done: list[tuple[Path, Path]] = []

    def move(source: Path, destination: Path) -> None:
        os.rename(source, destination)
        done.append((source, destination))

    try:
        # Old metadata out first: from here until the new assets are in, the export does not load.
        if target.assets.exists():
            move(target.assets, trash / "assets")
        for graph in SAVEDMODEL_GRAPHS:
            (target.path / graph).mkdir(exist_ok=True)
            move(staging.savedmodel_dir(graph, version), target.savedmodel_dir(graph, version))
        if target.onnx_dir.exists():
            move(target.onnx_dir, trash / "onnx")
        move(staging.onnx_dir, target.onnx_dir)
        os.replace(staging.models_config, target.models_config)  # same text for the same name
        move(staging.assets, target.assets)
    except BaseException:
        for source, destination in reversed(done):
            os.rename(destination, source)  # if this fails too, the trash keeps the old files
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _work_dir(target: ExportLayout, kind: str) -> Path:
    """A new hidden sibling of the export, named after the host and process that own it."""
    owner = f"{socket.gethostname()}-{os.getpid()}"
    return target.path.parent / f".{target.path.name}.{kind}-{owner}-{uuid.uuid4().hex[:8]}"


def _remove_abandoned_work_dirs(target: ExportLayout) -> None:
    """Deletes the staging and trash directories of exports into ``target`` whose process,
    on this host, no longer runs (killed mid-export); those of running exports are kept."""
    pattern = re.compile(rf"\.{re.escape(target.path.name)}\.(?:staging|replaced)-(.+)-(\d+)-[0-9a-f]{{8}}")
    for path in target.path.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match[1] == socket.gethostname() and not _process_exists(int(match[2])):
            shutil.rmtree(path, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # no signal-0 probe: keep the directory
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _size(layout: ExportLayout, path: Path) -> int:
    return sum(p.stat().st_size for p in layout.files_under(path))


__all__ = ["ExportResult", "export_and_report", "export_models", "export_run", "serving_config"]

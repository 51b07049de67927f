"""Export a trained model as separate encoder and decoder-step graphs: SavedModel + ONNX.

``export_run(run_dir, out_dir)`` writes the layout of ``keras_s2s.runtime.artifact``;
``export_and_report`` does the same and prints the version, timings and sizes.
Writes are atomic: everything is built in a hidden sibling directory and renamed into
place; when versions already exist, the new ``encoder/N`` and ``decoder/N`` are moved in
beside them (older versions are never touched) and ``assets/`` (with metadata.json) is
replaced last, so a crash at any point leaves either the previous export or one without
metadata, which the runtimes refuse to load.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Optional, TextIO

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID, UNK_ID
from keras_s2s.errors import ExportError
from keras_s2s.runtime.artifact import FORMAT, FORMAT_VERSION, ExportLayout, sha256_of
from keras_s2s.signatures import Signatures, signatures_from_models
from keras_s2s.vocab import Vocabulary

GRAPHS = ("encoder", "decoder")
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


def export_run(run_dir: str | Path, out_dir: str | Path, *, version: Optional[int] = None) -> ExportResult:
    """Exports the final model of a training run to ``out_dir`` as version ``version``
    (default: one more than the newest version there, or 1)."""
    from keras_s2s.run_dir import load_trained_model

    trained = load_trained_model(run_dir)
    return export_models(
        trained.encoder, trained.decoder, out_dir,
        config=trained.config, source_vocab=trained.source_vocab, target_vocab=trained.target_vocab, version=version,
    )


def export_and_report(
    run_dir: str | Path, out_dir: str | Path, *, version: Optional[int] = None, log: Optional[TextIO] = None
) -> ExportResult:
    """``export_run``, then one line with the version, path and timings and one line per
    artifact with its size, written to ``log`` (default: the current sys.stdout)."""
    log = log or sys.stdout
    result = export_run(run_dir, out_dir, version=version)
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
) -> ExportResult:
    """Exports Keras ``encoder`` and ``decoder`` models (built by keras_s2s.models)."""
    from keras_s2s.export.onnx import write_onnx
    from keras_s2s.export.savedmodel import write_savedmodel

    started = time.perf_counter()
    target = ExportLayout(out_dir)
    version = _choose_version(target, version)
    signatures = signatures_from_models(encoder, decoder)
    models = {"encoder": encoder, "decoder": decoder}
    graph_signatures = {"encoder": signatures.encoder, "decoder": signatures.decoder}
    target.path.parent.mkdir(parents=True, exist_ok=True)
    staging = ExportLayout(target.path.parent / f".{target.path.name}.staging-{uuid.uuid4().hex[:8]}")
    seconds: dict[str, float] = {}
    try:
        clock = time.perf_counter()
        for graph in GRAPHS:
            write_savedmodel(models[graph], graph_signatures[graph], staging.savedmodel_dir(graph, version))
        seconds["savedmodel"] = time.perf_counter() - clock
        clock = time.perf_counter()
        staging.onnx_dir.mkdir(parents=True)
        for graph in GRAPHS:
            write_onnx(models[graph], graph_signatures[graph], staging.onnx_file(graph))
        seconds["onnx"] = time.perf_counter() - clock
        staging.assets.mkdir(parents=True)
        source_vocab.save(staging.source_vocab)
        target_vocab.save(staging.target_vocab)
        config.to_json(staging.config)
        staging.models_config.write_text(serving_config(target.path.name), encoding="utf-8")
        metadata = _metadata(staging, target.path.name, version, config, signatures)
        staging.metadata.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        sizes = {
            **{f"{g}/{version}": _size(staging, staging.savedmodel_dir(g, version)) for g in GRAPHS},
            **{f"onnx/{g}.onnx": _size(staging, staging.onnx_file(g)) for g in GRAPHS},
            "assets": _size(staging, staging.assets),
        }
        _publish(staging, target, version)
    finally:
        shutil.rmtree(staging.path, ignore_errors=True)
    seconds["total"] = time.perf_counter() - started
    return ExportResult(target.path, version, seconds, sizes)


def serving_config(name: str, base: str = "/models") -> str:
    """TF Serving ``--model_config_file`` text serving ``NAME_encoder`` and ``NAME_decoder``
    from ``{base}/NAME/encoder`` and ``{base}/NAME/decoder`` (mount the export at base/NAME)."""
    entries = "".join(
        f'  config {{\n    name: "{name}_{graph}"\n    base_path: "{base}/{name}/{graph}"\n'
        f'    model_platform: "tensorflow"\n  }}\n'
        for graph in GRAPHS
    )
    return f"model_config_list {{\n{entries}}}\n"


def _choose_version(target: ExportLayout, version: Optional[int]) -> int:
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


def _metadata(staging: ExportLayout, name: str, version: int, config: Seq2SeqConfig, signatures: Signatures) -> dict:
    graphs = {}
    for graph, signature in (("encoder", signatures.encoder), ("decoder", signatures.decoder)):
        graphs[graph] = {
            "savedmodel": f"{graph}/{version}",
            "onnx": f"onnx/{graph}.onnx",
            "signature_name": "serving_default",
            "serving_model_name": f"{name}_{graph}",
            **signature.to_dict(),
        }
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
        "decoding": signatures.decoding.to_dict(),
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


def _publish(staging: ExportLayout, target: ExportLayout, version: int) -> None:
    if not target.path.exists():
        os.rename(staging.path, target.path)
        return
    trash = target.path.parent / f".{target.path.name}.replaced-{uuid.uuid4().hex[:8]}"
    trash.mkdir()
    # Old metadata out first: from here until the new assets are in, the export does not load.
    if target.assets.exists():
        os.rename(target.assets, trash / "assets")
    for graph in GRAPHS:
        (target.path / graph).mkdir(exist_ok=True)
        os.rename(staging.savedmodel_dir(graph, version), target.savedmodel_dir(graph, version))
    if target.onnx_dir.exists():
        os.rename(target.onnx_dir, trash / "onnx")
    os.rename(staging.onnx_dir, target.onnx_dir)
    os.replace(staging.models_config, target.models_config)
    os.rename(staging.assets, target.assets)
    shutil.rmtree(trash, ignore_errors=True)


def _size(layout: ExportLayout, path: Path) -> int:
    return sum(p.stat().st_size for p in layout.files_under(path))


__all__ = ["ExportResult", "export_and_report", "export_models", "export_run", "serving_config"]

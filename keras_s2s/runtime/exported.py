"""A Translator over an export directory, on ONNX Runtime or SavedModel.

Everything the runtime needs comes from ``assets/metadata.json``: graph files, tensor names,
dtypes and shapes, the decoding interface, text specs and vocabularies. The files the chosen
runtime reads are checked against their sha256 before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from keras_s2s.errors import ExportError
from keras_s2s.runtime.artifact import ExportLayout
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature
from keras_s2s.runtime.translator import TextCodec, Translator
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary


def load_exported_translator(
    path: str | Path, runtime: Literal["onnx", "savedmodel"] = "onnx", *, compiled: bool = True
) -> Translator:
    """A translator over the export at ``path``. SavedModel: greedy decoding and beam search run
    the export's greedy and beam graphs (exports since 2026-12-05 have the beam graph), with
    their XLA-compiled signatures; ``compiled=False``: their ``serving_default``, what TF
    Serving runs without --xla_cpu_compilation_enabled."""
    layout = ExportLayout(path)
    metadata = layout.read_metadata()
    graphs = metadata["graphs"]  # encoder, decoder and (exports since 2026-11-22) greedy
    if runtime in ("onnx", "savedmodel"):
        graph_files = {g: layout.path / graphs[g][runtime] for g in graphs}
    else:
        raise ExportError(f"unknown runtime {runtime!r} for an export; expected 'onnx' or 'savedmodel'")
    beam = metadata.get("beam") if runtime == "savedmodel" else None  # SavedModel only, since 2026-12-05
    layout.verify(metadata, [layout.assets, *graph_files.values(), *([layout.path / beam["savedmodel"]] if beam else [])])

    encoder_signature = GraphSignature.from_dict("encoder", graphs["encoder"])
    decoder_signature = GraphSignature.from_dict("decoder", graphs["decoder"])
    decoding = DecodingInterface.from_dict(metadata["decoding"])
    vocabularies = {side: Vocabulary.load(layout.path / rel) for side, rel in metadata["vocabularies"].items()}
    id_inputs = {
        "source": encoder_signature.input(decoding.source_input),
        "target": decoder_signature.input(decoding.token_input),
    }
    for side, info in id_inputs.items():
        if info.id_range is not None and info.id_range[1] != len(vocabularies[side]):
            raise ExportError(
                f"{layout.path}: the {side} vocabulary has {len(vocabularies[side])} tokens "
                f"but input '{info.name}' expects ids below {info.id_range[1]}"
            )

    if runtime == "onnx":
        from keras_s2s.runtime.onnx_backend import OnnxBackend

        backend = OnnxBackend(graph_files["encoder"], graph_files["decoder"], greedy_path=graph_files.get("greedy"))
    else:
        from keras_s2s.runtime.savedmodel_backend import SavedModelBackend

        backend = SavedModelBackend(
            graph_files["encoder"], graph_files["decoder"], graphs["encoder"]["signature_name"],
            greedy_dir=graph_files.get("greedy"),
            greedy_signature_name=_signature_name(graphs.get("greedy", {}), compiled),
            beam_dir=layout.path / beam["savedmodel"] if beam else None,
            beam_signature_name=_signature_name(beam or {}, compiled),
        )
    return Translator(
        backend,
        encoder_signature=encoder_signature,
        decoder_signature=decoder_signature,
        decoding=decoding,
        source=TextCodec(
            TextSpec.from_dict(metadata["text"]["source"]), vocabularies["source"], reverse=metadata["reverse_source"]
        ),
        target=TextCodec(TextSpec.from_dict(metadata["text"]["target"]), vocabularies["target"]),
        max_decode_length=metadata["max_decode_length"],
        max_source_length=metadata.get("max_source_length"),  # written by every export; None: no limit
        greedy_signature=GraphSignature.from_dict("greedy", graphs["greedy"]) if "greedy" in graphs else None,
        beam_signature=GraphSignature.from_dict("beam", beam) if beam else None,
    )



def _signature_name(graph: dict, compiled: bool) -> str:
    if compiled and "compiled_signature_name" in graph:  # exports since 2026-12-05
        return graph["compiled_signature_name"]
    return graph.get("signature_name", "serving_default")

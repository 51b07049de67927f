"""The translate SavedModel (strings in, strings out, for TF Serving): the same outputs as the
step-loop runtimes on every input, loadable where neither keras nor keras_s2s is installed, and
made only of ops that stock TF Serving links (core TensorFlow and tensorflow-text)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import make_untrained_run
from keras_s2s.constants import (
    FINISHED, LOG_PROB, OUTPUT_IDS, OUTPUT_LENGTHS, OUTPUT_TEXT, SCORE, SOURCE_LENGTHS, TEXT_INPUT, TRUNCATED,
    UNKNOWN_TOKENS,
)
from keras_s2s.decoding import Beam
from keras_s2s.runtime import load_translator

pytestmark = pytest.mark.slow

# Inputs a TF Serving client may send: the training sources, and unknown words, odd spacing
# and case, an over-length input, an empty one and one that is only whitespace.
ODD_INPUTS = [
    "I go to home", "unknown words here", "school home", "  I\u00a0go\u3000home  ", "YOU GO HOME", "",
    " \t ", "I go home I go home I go home I go home", "😀 go",
]
# Character-level inputs: composed and decomposed accents, Hangul, spaces of every kind, case.
CHAR_INPUTS = [
    "Café", "Cafe\u0301", "나는 집에", "ǅemal", "a\u2003b  c", "ÀÉÎ", "x" * 30, "", "ß straße", "ﬁne",
]


def run_translate(export_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops, as TF Serving links them)

    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    model = tf.saved_model.load(str(export_dir / metadata["translate"]["savedmodel"]))
    outputs = model.signatures["serving_default"](**{TEXT_INPUT: tf.constant(texts, tf.string)})
    return {name: value.numpy() for name, value in outputs.items()}


def assert_same_as_the_step_loop(served: dict[str, np.ndarray], translator, texts: list[str]) -> None:
    translator.use_greedy_graph = False  # the reference: one decoder call per output token
    expected = translator.translate_inputs(texts, batch_size=4)
    assert [t.decode("utf-8") for t in served[OUTPUT_TEXT]] == [e.hypotheses[0].text for e in expected]
    np.testing.assert_allclose(served[SCORE], [e.hypotheses[0].score for e in expected], atol=1e-4)
    assert served[SOURCE_LENGTHS].tolist() == [e.source.length for e in expected]
    assert served[TRUNCATED].tolist() == [e.source.truncated for e in expected]
    assert served[UNKNOWN_TOKENS].tolist() == [len(e.source.unknown_tokens) for e in expected]


def test_the_translate_savedmodel_gives_the_step_loop_translations_of_every_input(trained_toy_export):
    from keras_s2s.datasets import toy_pairs

    run_dir, export_dir = trained_toy_export
    texts = [s for s, _ in toy_pairs()] + ODD_INPUTS
    served = run_translate(export_dir, texts)
    for runtime in ("onnx", "savedmodel"):
        assert_same_as_the_step_loop(served, load_translator(export_dir, runtime), texts)
    assert served[OUTPUT_TEXT][0].decode() == "나는 집에 간다"
    assert served[TRUNCATED].tolist()[-2] is True and served[UNKNOWN_TOKENS][-1] == 1


def test_character_level_reversed_lowercased_sources_translate_as_the_python_tokenizer_reads_them(tmp_path):
    from keras_s2s.export import export_run

    run_dir = make_untrained_run(
        tmp_path / "run", "gru", 1, source_tokenizer="char", target_tokenizer="char", source_lowercase=True,
        reverse_source=True, max_source_length=12, bidirectional=True, attention="luong",
    )
    export_run(run_dir, tmp_path / "export")
    served = run_translate(tmp_path / "export", CHAR_INPUTS)
    assert_same_as_the_step_loop(served, load_translator(run_dir, "keras"), CHAR_INPUTS)
    assert any(" " in text.decode() for text in served[OUTPUT_TEXT]), "char outputs join with spaces restored"


def test_an_empty_request_is_an_invalid_argument_naming_the_input(exported_toy):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"translate input .?'text.?': empty tensor; send at least one row"):
        run_translate(exported_toy, [])


def test_the_translate_savedmodel_loads_and_runs_without_keras_or_keras_s2s(exported_toy):
    metadata = json.loads((exported_toy / "assets" / "metadata.json").read_text())
    script = textwrap.dedent(
        """
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        sys.modules["keras"] = None       # any import of keras or keras_s2s would now fail
        sys.modules["keras_s2s"] = None
        import glob, importlib.util
        import tensorflow as tf
        # tensorflow-text's op kernels, as TF Serving links them (its Python package imports keras).
        package = os.path.dirname(importlib.util.find_spec("tensorflow_text").origin)
        for library in glob.glob(os.path.join(package, "python", "ops", "_*.so")):
            tf.load_op_library(library)
        model = tf.saved_model.load(sys.argv[1])
        outputs = model.signatures["serving_default"](text=tf.constant(["I go home", "thank you"]))
        print(json.dumps([t.decode() for t in outputs["output_text"].numpy()]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(exported_toy / metadata["translate"]["savedmodel"])],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served == load_translator(exported_toy, "onnx").translate(["I go home", "thank you"])


# --- op audit ------------------------------------------------------------------------------
FORBIDDEN_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
"""Core ops that call back into Python: a model server has no Python to call."""

OP_AUDIT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    def ops_of(directory):
        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(directory, "saved_model.pb"), "rb") as handle:
            saved.ParseFromString(handle.read())
        ops = set()
        for graph in saved.meta_graphs:
            ops.update(node.op for node in graph.graph_def.node)
            for function in graph.graph_def.library.function:
                ops.update(node.op for node in function.node_def)
        return ops

    used = {d: sorted(ops_of(d)) for d in sys.argv[1:]}
    every = sorted({op for ops in used.values() for op in ops})
    core = [op for op in every if op_def_registry.get(op) is not None]   # before tensorflow_text loads
    import tensorflow_text
    text = [op for op in every if op not in core and op_def_registry.get(op) is not None]
    print(json.dumps({"used": used, "core": core, "tensorflow_text": text}))
    """
)


def test_every_exported_savedmodel_uses_only_core_tensorflow_and_tensorflow_text_ops(trained_toy_export):
    _, export_dir = trained_toy_export
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    directories = [export_dir / g["savedmodel"] for g in (*metadata["graphs"].values(), metadata["translate"])]
    done = subprocess.run([sys.executable, "-c", OP_AUDIT, *map(str, directories)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    audit = json.loads(done.stdout.strip().splitlines()[-1])
    allowed = set(audit["core"]) | set(audit["tensorflow_text"])
    for directory, ops in audit["used"].items():
        assert set(ops) <= allowed, f"{directory}: ops neither core TensorFlow nor tensorflow-text: {set(ops) - allowed}"
        assert not set(ops) & FORBIDDEN_OPS, f"{directory}: Python callbacks {set(ops) & FORBIDDEN_OPS}"
    # The tokenizer is in the translate graph only, and it is tensorflow-text's.
    translate_ops = set(audit["used"][str(export_dir / metadata["translate"]["savedmodel"])])
    assert set(audit["tensorflow_text"]) <= translate_ops and audit["tensorflow_text"], audit["tensorflow_text"]
    assert any("Tokeniz" in op for op in audit["tensorflow_text"])
    assert {"HashTableV2", "LookupTableFindV2"} <= translate_ops  # the vocabulary, saved with the model


def test_models_config_and_metadata_list_the_translate_model(exported_toy):
    metadata = json.loads((exported_toy / "assets" / "metadata.json").read_text())
    translate = metadata["translate"]
    assert translate["savedmodel"] == f"translate/{metadata['version']}"
    assert translate["serving_model_name"] == f"{metadata['name']}_translate" and translate["strategy"] == "greedy"
    assert [t["name"] for t in translate["inputs"]] == [TEXT_INPUT]
    assert {t["name"] for t in translate["outputs"]} >= {OUTPUT_TEXT, SCORE, SOURCE_LENGTHS, TRUNCATED, UNKNOWN_TOKENS}
    config = (exported_toy / "models.config").read_text()
    assert f'name: "{metadata["name"]}_translate"' in config and f'base_path: "/models/{metadata["name"]}/translate"' in config
    assert any(path.startswith("translate/") for path in metadata["files"]), "the translate files are checksummed"


def test_the_warmup_requests_are_real_predict_requests_that_the_translate_model_answers(exported_toy):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from keras_s2s.export.warmup import WARMUP_BATCH_SIZES, WARMUP_FILE

    metadata = json.loads((exported_toy / "assets" / "metadata.json").read_text())
    translate_dir = exported_toy / metadata["translate"]["savedmodel"]
    records = list(tf.data.TFRecordDataset(str(translate_dir / WARMUP_FILE)).as_numpy_iterator())
    requests = [prediction_log_pb2.PredictionLog.FromString(record).predict_log.request for record in records]
    assert [len(r.inputs[TEXT_INPUT].string_val) for r in requests] == list(WARMUP_BATCH_SIZES)
    serve = tf.saved_model.load(str(translate_dir)).signatures["serving_default"]
    for request in requests:
        assert request.model_spec.name == metadata["translate"]["serving_model_name"]
        assert request.model_spec.signature_name == "serving_default"
        outputs = serve(**{name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
        texts = [t.decode() for t in tf.make_ndarray(request.inputs[TEXT_INPUT])]
        assert outputs[UNKNOWN_TOKENS].numpy().tolist() == [0] * len(texts), "warmup texts use known tokens"
        assert [t.decode() for t in outputs[OUTPUT_TEXT].numpy()] == load_translator(exported_toy, "onnx").translate(texts)


# --- beam search in one graph ----------------------------------------------------------------
BEAMS = [Beam(width=3, nbest=2, length_penalty=0.6), Beam(width=5, nbest=5), Beam(width=1)]


@pytest.mark.parametrize("case", [("lstm", 2, {}), ("gru", 1, {"bidirectional": True, "attention": "luong"}),
                                  ("lstm", 1, {"bidirectional": True, "attention": "bahdanau"})], ids=str)
def test_in_graph_beam_search_finds_the_numpy_beam_searchs_hypotheses(tmp_path, case):
    import tensorflow as tf

    from keras_s2s.export.beam import beam_decode
    from keras_s2s.models import single_step_decoder, step_encoder
    from keras_s2s.run_dir import load_trained_model
    from keras_s2s.signatures import decoding_interface

    cell, layers, fields = case
    run_dir = make_untrained_run(tmp_path / "run", cell, layers, **fields)
    trained, translator = load_trained_model(run_dir), load_translator(run_dir, "keras")
    step_decoder = single_step_decoder(trained.decoder, trained.config)
    loop_encoder = step_encoder(trained.encoder, trained.decoder, trained.config)
    source_ids = np.random.default_rng(0).integers(4, 20, size=(5, 6)).astype(np.int32)
    source_ids[1, 3:] = 0
    source_ids[3, 1:] = 0  # padded rows, one of a single token
    for beam, compiled in [(beam, False) for beam in BEAMS] + [(BEAMS[0], True)]:  # compiled: XLA
        expected = translator.decode_ids(source_ids, beam)
        got = beam_decode(loop_encoder, step_decoder, decoding_interface(loop_encoder, step_decoder), tf.constant(source_ids),
                          trained.config.max_decode_length, beam.width, beam.nbest, beam.length_penalty,
                          compiled=compiled)
        got = {name: value.numpy() for name, value in got.items()}
        assert got[OUTPUT_IDS].shape[:2] == (5, beam.nbest)
        for row, hypotheses in enumerate(expected):
            ids = [tuple(got[OUTPUT_IDS][row, k, : got[OUTPUT_LENGTHS][row, k]]) for k in range(beam.nbest)]
            assert ids == [h.ids for h in hypotheses], (beam, compiled, row)
            assert got[FINISHED][row].tolist() == [h.finished for h in hypotheses]
            np.testing.assert_allclose(got[SCORE][row], [h.score for h in hypotheses], atol=1e-4)
            np.testing.assert_allclose(got[LOG_PROB][row], [h.log_prob for h in hypotheses], atol=1e-4)


def test_a_translate_model_exported_with_beam_search_returns_the_translators_n_best(trained_toy_export, tmp_path):
    from keras_s2s.datasets import toy_pairs
    from keras_s2s.export import export_run

    run_dir, _ = trained_toy_export
    beam = Beam(width=3, nbest=2, length_penalty=0.6)
    export_run(run_dir, tmp_path / "export", translate_strategy=beam)
    metadata = json.loads((tmp_path / "export" / "assets" / "metadata.json").read_text())
    assert metadata["translate"]["strategy"] == "beam"
    assert metadata["translate"]["beam"] == {"width": 3, "nbest": 2, "length_penalty": 0.6}
    texts = [s for s, _ in toy_pairs()] + ODD_INPUTS
    served = run_translate(tmp_path / "export", texts)
    assert served[OUTPUT_TEXT].shape == served[SCORE].shape == (len(texts), 2)
    translator = load_translator(tmp_path / "export", "onnx")
    expected = translator.translate_inputs(texts, strategy=beam, batch_size=4)
    for row, result in enumerate(expected):
        got = [t.decode() for t in served[OUTPUT_TEXT][row]][: len(result.hypotheses)]  # an empty input: 1 hypothesis
        assert got == [h.text for h in result.hypotheses], texts[row]
        np.testing.assert_allclose(served[SCORE][row][: len(got)], [h.score for h in result.hypotheses], atol=1e-4)
    assert served[TRUNCATED].tolist() == [r.source.truncated for r in expected]


def test_export_beam_options_are_checked_before_anything_loads(tmp_path, capsys):
    from keras_s2s.cli import main

    assert main(["export", str(tmp_path), "--translate-nbest", "2"]) == 1
    assert "--translate-nbest and --translate-length-penalty need --translate-beam N" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--translate-beam", "2", "--translate-nbest", "3"]) == 1
    assert "expected at most `width` (2) hypotheses, got 3" in capsys.readouterr().err

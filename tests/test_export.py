"""Export: encoder and decoder-step graphs as SavedModel and ONNX, equal to Keras.

Parity is checked on untrained models (random weights exercise every path as well as trained
ones) for every cell type, 1 and 2 layers, both attention kinds and a bidirectional encoder, and
greedy and beam decoding on the trained toy models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import EOS_ID, SOS_ID
from keras_s2s.decoding import Beam, Greedy
from keras_s2s.errors import ExportError, InputError
from keras_s2s.runtime import load_translator
from keras_s2s.runtime.artifact import ExportLayout, sha256_of
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

from conftest import EXPORT_CASES, make_untrained_run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-5


@pytest.fixture(scope="module", params=list(EXPORT_CASES), ids=str)
def exported_pair(request, export_case):
    """(run_dir, export_dir) for one cell type, layer count and encoder/attention kind."""
    return export_case(request.param)


# Checks of the export format that do not depend on the cell type run on one case: the one
# with the most tensors (states, memory, source_mask, attention_weights).
ONE_CASE = "bi-lstm-luong"


@pytest.fixture(scope="module")
def exported_one(export_case):
    """(run_dir, export_dir) of ONE_CASE."""
    return export_case(ONE_CASE)


@pytest.fixture(scope="module")
def pair_translators(exported_pair):
    """The Keras (run), SavedModel and ONNX (export) translators of ``exported_pair``, loaded once."""
    run_dir, export_dir = exported_pair
    return {"keras": load_translator(run_dir, "keras"), **{rt: load_translator(export_dir, rt) for rt in ("savedmodel", "onnx")}}


def random_source_ids(rng, batch: int, length: int, vocab_size: int) -> np.ndarray:
    """[batch, length] int32 real ids, with every row but the first right-padded a little."""
    ids = rng.integers(4, vocab_size, size=(batch, length), dtype=np.int32)
    for row in range(1, batch):
        ids[row, length - rng.integers(0, length) :] = 0
    return ids


# --- parity -------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [2, 7])
def test_encoder_and_one_decoder_step_agree_across_keras_savedmodel_and_onnx(pair_translators, batch, length):
    translators = pair_translators
    rng = np.random.default_rng(batch * 10 + length)
    source_ids = random_source_ids(rng, batch, length, len(translators["keras"].source.vocab))
    tokens = rng.integers(4, len(translators["keras"].target.vocab), size=(batch, 1), dtype=np.int32)

    results = {}
    for runtime, translator in translators.items():
        state = translator.encode(source_ids)
        outputs = translator.run_decoder(tokens, state)
        results[runtime] = (state, outputs, translator.decoding.next_state(state, outputs))

    keras_state, keras_outputs, keras_next = results["keras"]
    keras_logits = keras_outputs["logits"]
    for runtime in ("savedmodel", "onnx"):
        state, outputs, next_state = results[runtime]
        assert outputs.keys() == keras_outputs.keys()
        for name in outputs:
            np.testing.assert_allclose(outputs[name], keras_outputs[name], atol=ATOL, err_msg=f"{runtime} decoder {name}")
        logits = outputs["logits"]
        assert state.keys() == keras_state.keys()
        for name in keras_state:
            np.testing.assert_allclose(state[name], keras_state[name], atol=ATOL, err_msg=f"{runtime} encoder {name}")
            np.testing.assert_allclose(next_state[name], keras_next[name], atol=ATOL, err_msg=f"{runtime} decoder {name}")
        assert logits.shape == keras_logits.shape == (batch, 1, len(translators["keras"].target.vocab))
        np.testing.assert_allclose(logits, keras_logits, atol=ATOL, err_msg=f"{runtime} decoder logits")


@pytest.mark.parametrize(
    "strategy, batch_size",
    [(Greedy(), 8), (Greedy(), 64), (Beam(width=3, nbest=2, length_penalty=0.6), 8)],
    ids=["greedy", "greedy-one-batch", "beam3"],  # one batch of 37 rows: the greedy loop that drops finished rows
)
def test_translations_are_identical_on_keras_savedmodel_and_onnx(trained_toy_export, strategy, batch_size):
    from keras_s2s.datasets import toy_pairs
    from keras_s2s.export.greedy import DROP_FINISHED_MIN_BATCH

    run_dir, export_dir = trained_toy_export
    sources = [s for s, _ in toy_pairs()] + ["I go to home", "unknown words here", "school home"]
    translators = {
        "keras": load_translator(run_dir, "keras"),
        "savedmodel": load_translator(export_dir, "savedmodel"),
        "onnx": load_translator(export_dir, "onnx"),
    }
    assert translators["onnx"].use_greedy_graph and translators["savedmodel"].use_greedy_graph  # greedy: one call
    outputs = {rt: t.translate_nbest(sources, strategy=strategy, batch_size=batch_size) for rt, t in translators.items()}
    texts = {rt: [[h.text for h in hyps] for hyps in result] for rt, result in outputs.items()}
    assert texts["savedmodel"] == texts["keras"]
    assert texts["onnx"] == texts["keras"]
    for runtime in ("savedmodel", "onnx"):
        scores = [[h.score for h in hyps] for hyps in outputs[runtime]]
        np.testing.assert_allclose(scores, [[h.score for h in hyps] for hyps in outputs["keras"]], atol=1e-4)
    assert texts["onnx"][0][0] == "나는 집에 간다"
    assert all(len(hyps) == (2 if isinstance(strategy, Beam) else 1) for hyps in texts["onnx"])
    if batch_size >= DROP_FINISHED_MIN_BATCH:  # rows ended at different steps: some were dropped early
        assert len(sources) >= DROP_FINISHED_MIN_BATCH
        assert len({len(hyps[0].tokens) for hyps in outputs["onnx"]}) > 1


def test_a_reversed_source_model_translates_the_same_from_every_runtime(tmp_path):
    from keras_s2s.export import export_run

    run_dir = make_untrained_run(tmp_path / "run", "gru", 1, reverse_source=True)
    export_run(run_dir, tmp_path / "export")
    assert json.loads((tmp_path / "export" / "assets" / "metadata.json").read_text())["reverse_source"] is True
    sources = ["I go home", "home I go", "we are friends", "the cat sleeps"]
    keras_outputs = load_translator(run_dir, "keras").translate(sources)
    assert load_translator(tmp_path / "export", "onnx").translate(sources) == keras_outputs
    assert load_translator(tmp_path / "export", "savedmodel").translate(sources) == keras_outputs


# --- serving without keras_s2s -------------------------------------------------------------
# Every cell type, both attention kinds, 1 and 2 layers, a bidirectional encoder: the op sets a
# SavedModel can need. (The other cases differ only in sizes; the parity tests load all of them.)
FRESH_PROCESS_CASES = ("lstm-1layer", "rnn-2layer", "bi-lstm-bahdanau", "bi-gru-2layer-luong")


def test_savedmodels_run_in_a_fresh_process_without_keras_or_keras_s2s(export_case):
    """What TF Serving does: load each SavedModel with TensorFlow alone and call its
    signatures, the greedy and beam graphs' XLA-compiled ones too, on a right-padded batch."""
    from keras_s2s.export.beam import COMPILED_BEAM_SIGNATURE
    from keras_s2s.export.greedy import COMPILED_GREEDY_SIGNATURE

    # Every case in one process: one TensorFlow import instead of one per case.
    exports = {name: export_case(name) for name in FRESH_PROCESS_CASES}
    graphs = []
    for _, export_dir in exports.values():
        metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
        graphs.append([str(export_dir / metadata["graphs"][g]["savedmodel"]) for g in ("encoder", "decoder", "greedy")]
                      + [str(export_dir / metadata["beam"]["savedmodel"])])
    script = textwrap.dedent(
        f"""
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        sys.modules["keras"] = None       # any import of keras or keras_s2s would now fail
        sys.modules["keras_s2s"] = None
        import tensorflow as tf
        for encoder_dir, decoder_dir, greedy_dir, beam_dir in json.loads(sys.argv[1]):
            encoder = tf.saved_model.load(encoder_dir)
            decoder = tf.saved_model.load(decoder_dir)
            greedy = tf.saved_model.load(greedy_dir)
            beam = tf.saved_model.load(beam_dir)
            source_ids = tf.constant([[5, 6, 7], [8, 0, 0]], tf.int32)
            states = encoder.signatures["serving_default"](source_ids=source_ids)
            outputs = decoder.signatures["serving_default"](token_ids=tf.constant([[{SOS_ID}], [{SOS_ID}]], tf.int32), **states)
            decoded = greedy.signatures["serving_default"](source_ids=source_ids)
            compiled = greedy.signatures["{COMPILED_GREEDY_SIGNATURE}"](source_ids=source_ids)
            compiled = {{"compiled_" + name: value for name, value in compiled.items()}}
            settings = dict(beam_width=tf.constant(3), nbest=tf.constant(2), length_penalty=tf.constant(0.6))
            beams = {{
                f"{{signature}}_{{name}}": value
                for signature in ("serving_default", "{COMPILED_BEAM_SIGNATURE}")
                for name, value in beam.signatures[signature](source_ids=source_ids, **settings).items()
            }}
            print(json.dumps({{name: value.numpy().tolist() for name, value in {{**states, **outputs, **decoded, **compiled, **beams}}.items()}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(graphs)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()[-len(exports):]
    assert len(lines) == len(exports), done.stdout[-2000:]

    for (name, (run_dir, _)), line in zip(exports.items(), lines, strict=True):
        served = {k: np.array(v) for k, v in json.loads(line).items()}
        keras_translator = load_translator(run_dir, "keras")
        state = keras_translator.encode(np.array([[5, 6, 7], [8, 0, 0]], np.int32))
        logits, next_state = keras_translator.step(np.full((2, 1), SOS_ID, np.int32), state)
        np.testing.assert_allclose(served["logits"], logits, atol=ATOL, err_msg=name)
        for state_name in state:
            np.testing.assert_allclose(served[state_name], state[state_name], atol=ATOL, err_msg=name)
        for carry in keras_translator.decoding.carries:
            if carry.update_from is not None:
                np.testing.assert_allclose(served[carry.update_from], next_state[carry.input], atol=ATOL, err_msg=name)
        greedy = keras_translator.decode_ids(np.array([[5, 6, 7], [8, 0, 0]], np.int32), Greedy())
        for prefix in ("", "compiled_"):  # serving_default, and the XLA-compiled signature
            assert [list(ids[:n]) for ids, n in zip(served[prefix + "output_ids"], served[prefix + "output_lengths"])] == [
                list(row[0].ids) for row in greedy], (name, prefix)
        beam = keras_translator.decode_ids(np.array([[5, 6, 7], [8, 0, 0]], np.int32), Beam(width=3, nbest=2, length_penalty=0.6))
        for signature in ("serving_default", COMPILED_BEAM_SIGNATURE):
            scores = served[f"{signature}_score"]
            assert scores.shape == (2, 2), (name, signature)
            np.testing.assert_allclose(scores, [[h.score for h in row] for row in beam], atol=1e-3, err_msg=f"{name} {signature}")


def test_onnx_translation_runs_where_tensorflow_cannot_be_imported(exported_toy):
    script = textwrap.dedent(
        """
        import sys
        sys.modules["tensorflow"] = None   # `import tensorflow` now raises ImportError
        sys.modules["keras"] = None
        from keras_s2s.cli import main
        code = main(["translate", sys.argv[1], "I go home", "thank you", "--runtime", "onnx"])
        assert "tensorflow_text" not in sys.modules and "tf2onnx" not in sys.modules
        sys.exit(code)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(exported_toy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["나는 집에 간다", "감사합니다"]


@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
# ONNX: 1 or 2 threads; 20 rows: the loop that drops finished rows (DROP_FINISHED_MIN_BATCH)
@pytest.mark.parametrize("batch", [3, 12, 20], ids=["small-batch", "large-batch", "dropping-batch"])
def test_the_greedy_graph_gives_the_step_loop_hypotheses(pair_translators, runtime, batch):
    """One call of the exported greedy graph = Greedy() over the encoder and decoder-step
    graphs, and over the Keras models: same ids, finished flags and log-probabilities, on
    right-padded batches. The models are untrained, so rows run to max_decode_length
    unfinished; rows that end with EOS are compared in the trained-model test above."""
    translator = pair_translators[runtime]
    assert translator.use_greedy_graph
    rng = np.random.default_rng(7)
    source_ids = random_source_ids(rng, batch, 7, len(translator.source.vocab))
    graph = translator.decode_ids(source_ids, Greedy())
    translator.use_greedy_graph = False
    try:
        step_loop = translator.decode_ids(source_ids, Greedy())
    finally:
        translator.use_greedy_graph = True
    keras_loop = pair_translators["keras"].decode_ids(source_ids, Greedy())
    for reference in (step_loop, keras_loop):
        assert [[h.ids for h in row] for row in graph] == [[h.ids for h in row] for row in reference]
        assert [[h.finished for h in row] for row in graph] == [[h.finished for h in row] for row in reference]
        np.testing.assert_allclose([row[0].log_prob for row in graph], [row[0].log_prob for row in reference], atol=1e-4)
        np.testing.assert_allclose([row[0].score for row in graph], [row[0].log_prob for row in reference], atol=1e-4)


# The XLA-compiled signature compiles each beam width and batch it meets (~2 s each), so it is
# checked at one batch size, the larger one.
@pytest.mark.parametrize("compiled, batch", [(True, 20), (False, 3)], ids=["beam_xla-20", "serving_default-3"])
def test_the_savedmodel_beam_graph_gives_the_step_loops_n_best(exported_pair, pair_translators, compiled, batch):
    """One call of the exported beam graph (XLA-compiled or not) = Beam() over the Keras
    models, with the beam's width, n-best and length penalty fed per call: the same scores at
    every rank, and each hypothesis's log_prob is the model's log-probability of its ids.
    (These models are untrained, so candidates tie to float32 rounding, and XLA rounds
    differently: tied hypotheses may swap. The trained toy model's beam outputs are compared
    id for id in test_translations_are_identical_on_keras_savedmodel_and_onnx.)"""
    translator = pair_translators["savedmodel"] if compiled else load_translator(
        exported_pair[1], "savedmodel", compiled=False)
    keras_translator = pair_translators["keras"]
    assert translator.use_beam_graph
    source_ids = random_source_ids(np.random.default_rng(11), batch, 7, len(translator.source.vocab))
    for beam in (Beam(width=3, nbest=2, length_penalty=0.6), Beam(width=1)):
        graph = translator.decode_ids(source_ids, beam)
        reference = keras_translator.decode_ids(source_ids, beam)
        assert [len(row) for row in graph] == [beam.nbest] * batch
        for field in ("score", "log_prob"):  # a swapped near-tie differs by ~1e-5 of a ~-23 score
            np.testing.assert_allclose([[getattr(h, field) for h in row] for row in graph],
                                       [[getattr(h, field) for h in row] for row in reference], atol=1e-3)
        for row, hypotheses in zip(source_ids[:2], graph):  # two rows: each check steps Keras per token
            for h in hypotheses:
                assert len(h.ids) == (len(h.ids) if h.finished else translator.max_decode_length)
                np.testing.assert_allclose(_log_prob_of(keras_translator, row, h), h.log_prob, atol=1e-4)


def _log_prob_of(translator, source_row: np.ndarray, hypothesis) -> float:
    """The model's log-probability of ``hypothesis.ids`` (then EOS if finished), stepping the decoder."""
    state = translator.encode(source_row[None])
    token, total = SOS_ID, 0.0
    for next_id in (*hypothesis.ids, *((EOS_ID,) if hypothesis.finished else ())):
        log_probs, state = translator.step_log_probs(np.array([[token]], np.int32), state)
        total += float(log_probs[0, next_id])
        token = next_id
    return total


def _loops(graph) -> list:
    """The ``Loop`` nodes of ``graph`` and of the ``If`` branches in it (not inside Loop bodies)."""
    found = []
    for node in graph.node:
        if node.op_type == "Loop":
            found.append(node)
        elif node.op_type == "If":
            for attribute in node.attribute:
                found.extend(_loops(attribute.g))
    return found


def _body(loop):
    return next(a.g for a in loop.attribute if a.name == "body")


def _decoding_loops(graph) -> list:
    """The greedy graph's decoding Loops (their bodies pick the next token with an ArgMax)."""
    return [loop for loop in _loops(graph) if "ArgMax" in {node.op_type for node in _body(loop).node}]


def test_the_greedy_onnx_graph_is_two_loops_without_nested_loops(exported_pair):
    """The decoder inside greedy.onnx is the one-step decoder, in two ``Loop``s that an ``If``
    on the batch size picks between (all rows, or dropping finished ones): neither body has a
    loop of its own, and an LSTM encoder stays fused outside them."""
    import onnx

    run_dir, export_dir = exported_pair
    config = Seq2SeqConfig.from_json(run_dir / "config.json")
    graph = onnx.load(str(export_dir / "onnx" / "greedy.onnx")).graph
    decoding_loops = _decoding_loops(graph)
    assert len(decoding_loops) == 2
    assert [n.op_type for n in graph.node].count("If") == 1
    assert all("Loop" not in {node.op_type for node in _body(loop).node} for loop in decoding_loops)
    encoder_loops = [loop for loop in graph.node if loop.op_type == "Loop"]
    fused_encoder = config.cell == "lstm"
    assert encoder_loops == [] if fused_encoder else len(encoder_loops) > 0  # GRU/RNN: the masked encoder's Loops
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    assert metadata["graphs"]["greedy"]["onnx_recurrence"] == ("fused" if fused_encoder else "loop")
    if fused_encoder:
        assert sum(node.op_type == "LSTM" for node in graph.node) == config.num_layers


def test_no_onnx_loop_carries_a_value_its_body_only_passes_through(exported_pair):
    """Weights and the encoder memory are read from the enclosing graph, not carried from one
    iteration to the next (ONNX Runtime copies carried values every step)."""
    import onnx

    _, export_dir = exported_pair
    for path in (export_dir / "onnx").glob("*.onnx"):
        for node in _loops(onnx.load(str(path)).graph):
            body = _body(node)
            carried = len(node.input) - 2
            passed_through = [body.input[2 + k].name for k in range(carried) if body.input[2 + k].name == body.output[1 + k].name]
            assert passed_through == [], f"{path.name}: {passed_through}"


@pytest.mark.parametrize("drops_finished_rows", [True, False], ids=["drops-finished-rows", "all-rows"])
def test_the_greedy_onnx_loop_bodies_hold_no_bookkeeping_the_loop_does_itself(exported_pair, drops_finished_rows):
    """Every op of a decoding ``Loop`` body runs once per output token: the trip count ``M``
    bounds the loop (the body does not re-check the iteration number), no carried value just
    counts steps, and the body holds no constant that nothing reads."""
    import onnx

    _, export_dir = exported_pair
    graph = onnx.load(str(export_dir / "onnx" / "greedy.onnx")).graph
    # The loop that drops finished rows finds the rows to keep with a NonZero.
    [loop] = [n for n in _decoding_loops(graph) if ("NonZero" in {b.op_type for b in _body(n).node}) == drops_finished_rows]
    body = _body(loop)
    assert loop.input[0], "the Loop has a trip count"
    iteration = body.input[0].name
    assert not [n.op_type for n in body.node if iteration in n.input]
    carried = len(loop.input) - 2
    for k in range(carried):
        users = [n for n in body.node if body.input[2 + k].name in n.input]
        next_value_readers = [n for n in body.node if body.output[1 + k].name in n.input]
        only_counts_itself = len(users) == 1 and list(users[0].output) == [body.output[1 + k].name] and not next_value_readers
        assert not only_counts_itself, body.input[2 + k].name
    read = {name for n in body.node for name in n.input} | {o.name for o in body.output}
    assert [i.name for i in body.initializer if i.name not in read] == []


def test_onnx_runtime_loads_every_exported_graph_without_a_warning(exported_pair, capfd):
    """The output of ``keras-s2s translate`` stays clean: no graph of an export holds a
    constant that nothing reads (ONNX Runtime prints one warning per such constant at every
    session load; the graph passes can leave one in the greedy graph's ``If`` branches)."""
    import onnxruntime as ort

    _, export_dir = exported_pair
    capfd.readouterr()
    for path in sorted((export_dir / "onnx").glob("*.onnx")):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    warnings = [line for line in capfd.readouterr().err.splitlines() if "W:onnxruntime" in line]
    assert warnings == []


def test_exporting_logs_no_tf2onnx_warnings(tmp_path, caplog):
    """``keras-s2s export`` and ``make demo`` print only their own lines: tf2onnx warns about
    every loop value whose shape changes across iterations (the greedy graph's loop that drops
    finished rows, by design: ~160 warnings per export), and the export keeps those out."""
    import logging

    from keras_s2s.export import export_run

    run_dir = make_untrained_run(tmp_path / "run", "lstm", 1)
    with caplog.at_level(logging.WARNING, logger="tf2onnx"):
        export_run(run_dir, tmp_path / "export")
    assert [record.getMessage() for record in caplog.records if record.name.startswith("tf2onnx")] == []


@pytest.mark.parametrize("before", [None, "TRUE"], ids=["unset", "set-by-the-user"])
def test_the_conversion_raises_optimizer_failures_and_restores_the_tf2onnx_variable(monkeypatch, before):
    """tf2onnx skips a failing optimizer pass only after deep-copying the graph before every
    pass (a fifth of an export); the conversion turns that off, turns it on (unset: tf2onnx's
    default) for its slow retry, and leaves the process's environment as it found it."""
    from keras_s2s.export.onnx import TF2ONNX_CATCH_ERRORS, _tf2onnx_catch_errors

    if before is None:
        monkeypatch.delenv(TF2ONNX_CATCH_ERRORS, raising=False)
    else:
        monkeypatch.setenv(TF2ONNX_CATCH_ERRORS, before)
    with _tf2onnx_catch_errors(False):
        assert os.environ[TF2ONNX_CATCH_ERRORS] == "FALSE"
    assert os.environ.get(TF2ONNX_CATCH_ERRORS) == before
    with _tf2onnx_catch_errors(True):
        assert TF2ONNX_CATCH_ERRORS not in os.environ
    assert os.environ.get(TF2ONNX_CATCH_ERRORS) == before


def test_an_optimizer_pass_that_fails_is_skipped_with_a_warning_and_the_export_still_agrees_with_keras(
    tmp_path, monkeypatch, caplog
):
    """The fast conversion raises on a failing tf2onnx optimizer pass; the export then converts
    that graph again the slow way, which skips the pass, instead of failing (a pass that fails
    on every graph is added to tf2onnx's own optimizer table here)."""
    import logging

    import tf2onnx.optimizer

    from keras_s2s.export import export_run

    class FailingPass:
        graph_been_opt = False

        def optimize(self, graph, iteration):
            raise RuntimeError("this optimizer pass always fails")

    monkeypatch.setitem(tf2onnx.optimizer._optimizers, "always_fails", FailingPass)
    run_dir = make_untrained_run(tmp_path / "run", "lstm", 1)
    with caplog.at_level(logging.WARNING):
        export_run(run_dir, tmp_path / "export")
    ours = [r for r in caplog.records if r.name == "keras_s2s.export.onnx"]
    assert len(ours) == 3, "each of the three ONNX conversions (encoder, decoder, greedy) fell back once"
    assert all("converting again, skipping optimizer passes that fail" in r.getMessage() for r in ours)
    sources = ["I go home", "we are friends"]
    assert load_translator(tmp_path / "export", "onnx").translate(sources) == load_translator(run_dir, "keras").translate(sources)


def _counting_loop(trip_count: int, guard: float, inside_if: bool = False):
    """An ONNX graph: x = 0; Loop(M=trip_count) { x += 1; continue while iteration < guard
    and x < 100 } -> x, with tf2onnx's guard pattern (Cast, Less, And) and a dead step counter.
    ``inside_if``: the Loop sits in the then-branch of an ``If`` (as the greedy graph's loops
    do) and reads M from the main graph."""
    from onnx import TensorProto, helper, numpy_helper

    scalar = lambda name, kind: helper.make_tensor_value_info(name, kind, [])  # noqa: E731
    body = helper.make_graph(
        [
            helper.make_node("Add", ["x_in", "one"], ["x_out"]),
            helper.make_node("Add", ["t_in", "one"], ["t_out"]),
            helper.make_node("Cast", ["i"], ["i_float"], to=TensorProto.FLOAT),
            helper.make_node("Less", ["i_float", "guard"], ["in_bounds"]),
            helper.make_node("Less", ["x_out", "hundred"], ["small"]),
            helper.make_node("And", ["in_bounds", "small"], ["cond_out"]),
        ],
        "body",
        [scalar("i", TensorProto.INT64), scalar("cond_in", TensorProto.BOOL),
         scalar("x_in", TensorProto.FLOAT), scalar("t_in", TensorProto.FLOAT)],
        [scalar("cond_out", TensorProto.BOOL), scalar("x_out", TensorProto.FLOAT), scalar("t_out", TensorProto.FLOAT)],
        [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("one", 1), ("guard", guard), ("hundred", 100))],
    )
    loop = helper.make_node("Loop", ["M", "true", "zero", "zero"], ["x", "t"], body=body)
    if inside_if:
        branch = lambda name, nodes: helper.make_graph(nodes, name, [], [scalar("x", TensorProto.FLOAT)])  # noqa: E731
        loop = helper.make_node("If", ["true"], ["x"], then_branch=branch("then", [loop]),
                                else_branch=branch("else", [helper.make_node("Identity", ["zero"], ["x"])]))
    graph = helper.make_graph(
        [loop], "counting", [], [scalar("x", TensorProto.FLOAT)],
        [numpy_helper.from_array(np.array(trip_count, np.int64), "M"), numpy_helper.from_array(np.array(True), "true"),
         numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("inside_if", [False, True], ids=["main-graph", "inside-an-if"])
@pytest.mark.parametrize("guard, drops", [(4.0, True), (9.0, True), (2.0, False)])
def test_loop_clean_up_removes_only_what_cannot_change_the_result(guard, drops, inside_if):
    """A body's check of its iteration number goes only when the trip count already implies
    it (guard >= M - 1); a carried value that only counts itself goes; the result stays. The
    same for a Loop inside an ``If`` branch."""
    import onnx
    import onnxruntime as ort

    from keras_s2s.export.onnx import drop_dead_loop_state, drop_redundant_trip_guards

    def run(model):
        onnx.checker.check_model(model, full_check=True)
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})[0]

    model = _counting_loop(5, guard, inside_if)
    before = run(model)
    assert drop_redundant_trip_guards(model) == int(drops)
    assert drop_dead_loop_state(model) == 1
    [loop] = _loops(model.graph)
    body = _body(loop)
    assert {n.op_type for n in body.node} == ({"Add", "Less"} if drops else {"Add", "Cast", "Less", "And"})
    assert run(model) == before == (5.0 if drops else 3.0)


def test_an_lstm_encoder_exports_to_fused_onnx_lstm_ops_fed_the_source_lengths(pair_translators, exported_pair):
    """LSTM encoders (one op per layer, bidirectional included) become fused ``LSTM`` ops
    with ``sequence_lens``, not a ``Loop``; GRU and SimpleRNN keep the masked ``Loop``. The
    parity test above feeds right-padded rows, so both paths are checked against Keras."""
    import onnx

    from keras_s2s.export.onnx import SOURCE_LENGTHS

    run_dir, export_dir = exported_pair
    config = Seq2SeqConfig.from_json(run_dir / "config.json")
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    graph = onnx.load(str(export_dir / "onnx" / "encoder.onnx")).graph
    op_types = [node.op_type for node in graph.node]
    if config.cell == "lstm":
        assert metadata["graphs"]["encoder"]["onnx_recurrence"] == "fused"
        assert "Loop" not in op_types
        lstm_ops = [node for node in graph.node if node.op_type == "LSTM"]
        assert len(lstm_ops) == config.num_layers
        assert all(node.input[4] == SOURCE_LENGTHS for node in lstm_ops)
        directions = {onnx.helper.get_attribute_value(a) for n in lstm_ops for a in n.attribute if a.name == "direction"}
        assert directions == ({b"bidirectional"} if config.bidirectional else {b"forward"})
    else:
        assert metadata["graphs"]["encoder"]["onnx_recurrence"] == "loop"
        assert "Loop" in op_types
    # The greedy graph's encoder is converted the same way (its fused ops sit before the decoding Loop).
    assert metadata["graphs"]["greedy"]["onnx_recurrence"] == metadata["graphs"]["encoder"]["onnx_recurrence"]
    greedy_ops = [n.op_type for n in onnx.load(str(export_dir / "onnx" / "greedy.onnx")).graph.node]
    assert greedy_ops.count("LSTM") == (config.num_layers if config.cell == "lstm" else 0)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_tf2onnx_still_makes_a_loop_of_an_unmasked_gru_or_simplernn_so_only_lstm_encoders_try_the_fused_path(cell):
    """The export converts a GRU or SimpleRNN encoder once, masked (``FUSED_CELLS``), because
    tf2onnx makes a ``Loop`` of its unmasked twin too. If a tf2onnx upgrade fuses one, this
    fails: add the cell to ``FUSED_CELLS`` and its encoders get the fused op."""
    from keras_s2s.export.graphs import serving_function
    from keras_s2s.export.onnx import FUSED_CELLS, FUSED_RECURRENT_OPS, _convert
    from keras_s2s.models import build_seq2seq, unmasked_encoder
    from keras_s2s.signatures import signatures_from_models

    assert FUSED_CELLS == ("lstm",)
    config = Seq2SeqConfig(dataset="toy", cell=cell, num_layers=1, embedding_size=8, hidden_size=16)
    model = build_seq2seq(config, 12, 12)
    signature = signatures_from_models(model.encoder, model.decoder).encoder
    proto = _convert(serving_function(unmasked_encoder(model.encoder, config), signature, check_inputs=False))
    op_types = {node.op_type for node in proto.graph.node}
    assert "Loop" in op_types
    assert not op_types & set(FUSED_RECURRENT_OPS)


def test_saved_model_cli_lists_the_documented_signatures(exported_one):
    _, export_dir = exported_one
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    cli = Path(sys.executable).with_name("saved_model_cli")
    for graph in ("encoder", "decoder"):
        done = subprocess.run(
            [str(cli), "show", "--all", "--dir", str(export_dir / metadata["graphs"][graph]["savedmodel"])],
            capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "signature_def['serving_default']" in done.stdout
        assert "Method name is: tensorflow/serving/predict" in done.stdout
        for tensor in metadata["graphs"][graph]["inputs"]:
            assert f"inputs['{tensor['name']}']" in done.stdout
        for tensor in metadata["graphs"][graph]["outputs"]:
            assert f"outputs['{tensor['name']}']" in done.stdout


def test_every_savedmodel_holds_each_serving_function_traced_once_and_each_weight_once(exported_one):
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    from keras_s2s.run_dir import load_trained_model

    run_dir, export_dir = exported_one
    savedmodels = sorted(path.parent for path in export_dir.glob("*/*/saved_model.pb"))
    assert {path.parent.name for path in savedmodels} == {"encoder", "decoder", "greedy", "beam", "translate"}
    for directory in savedmodels:
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((directory / "saved_model.pb").read_bytes())
        graph = saved.meta_graphs[0]
        signatures = [name for name in graph.signature_def if not name.startswith("__")]
        traces = [f.signature.name for f in graph.graph_def.library.function if f.signature.name.startswith("__inference_serve_")]
        # One trace per signature (greedy and beam: serving_default and the XLA one). Saved through
        # keras.export.ExportArchive each was traced twice, and the SavedModel was twice the size.
        assert len(traces) == len(signatures), (directory, signatures, traces)

    # ExportArchive also stored every weight twice (as the Keras variable and as the tf.Variable
    # inside it): the encoder SavedModel's checkpoint holds exactly the encoder's weights.
    encoder = load_trained_model(run_dir).encoder
    checkpoint = tf.train.load_checkpoint(str(export_dir / "encoder" / "1" / "variables" / "variables"))
    stored = sorted(tuple(shape) for key, shape in checkpoint.get_variable_to_shape_map().items() if key.endswith("VARIABLE_VALUE"))
    assert stored == sorted(tuple(variable.shape) for variable in encoder.variables)


# --- artifacts ----------------------------------------------------------------------------
def test_export_layout_metadata_and_checksums(exported_one):
    import onnx

    run_dir, export_dir = exported_one
    config = Seq2SeqConfig.from_json(run_dir / "config.json")
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    assert metadata["version"] == 1
    assert metadata["special_ids"] == {"pad": 0, "unk": 1, "sos": 2, "eos": 3}
    assert metadata["max_decode_length"] == config.max_target_length + 1
    assert metadata["text"]["source"] == TextSpec("word", "NFKC", False).to_dict()
    assert {"tensorflow", "keras", "tf2onnx", "onnxruntime", "keras-s2s"} <= set(metadata["library_versions"])
    assert set(metadata["graphs"]) == {"encoder", "decoder", "greedy"}
    assert [t["name"] for t in metadata["graphs"]["greedy"]["inputs"]] == ["source_ids"]
    assert {t["name"] for t in metadata["graphs"]["greedy"]["outputs"]} == {
        "output_ids", "output_lengths", "log_prob", "finished"}
    assert metadata["graphs"]["greedy"]["compiled_signature_name"] == "greedy_xla"  # beside serving_default
    beam = metadata["beam"]  # SavedModel only
    assert (beam["savedmodel"], beam["signature_name"], beam["compiled_signature_name"]) == ("beam/1", "serving_default", "beam_xla")
    assert [t["name"] for t in beam["inputs"]] == ["source_ids", "beam_width", "nbest", "length_penalty"]
    assert (export_dir / beam["savedmodel"] / "saved_model.pb").is_file()
    for graph in ("encoder", "decoder", "greedy"):
        info = metadata["graphs"][graph]
        assert (export_dir / info["savedmodel"] / "saved_model.pb").is_file()
        assert info["signature_name"] == "serving_default"
        model = onnx.load(str(export_dir / info["onnx"]))
        onnx.checker.check_model(model, full_check=True)
        assert [i.name for i in model.graph.input] == sorted(t["name"] for t in info["inputs"])
        assert {o.name for o in model.graph.output} == {t["name"] for t in info["outputs"]}
        for value in model.graph.input:
            batch_dim = value.type.tensor_type.shape.dim[0]
            assert not batch_dim.HasField("dim_value"), f"{value.name}: batch axis must be dynamic"
    token_ids = metadata["graphs"]["decoder"]["inputs"][0]
    assert token_ids == {"name": "token_ids", "dtype": "int32", "shape": [None, None],
                         "id_range": [0, len(Vocabulary.load(export_dir / "assets" / "target_vocab.txt"))]}
    exported_files = {p.relative_to(export_dir).as_posix() for p in export_dir.rglob("*") if p.is_file()}
    assert set(metadata["files"]) == exported_files - {"assets/metadata.json"}
    for relative, digest in metadata["files"].items():
        assert sha256_of(export_dir / relative) == digest
    assert 'base_path: "/models/export/encoder"' in (export_dir / "models.config").read_text()


def test_reexport_adds_the_next_version_beside_the_old_one_without_touching_it(export_case, tmp_path):
    import shutil

    from keras_s2s.export import export_run

    run_dir, first_export = export_case("lstm-1layer")
    export_dir = Path(shutil.copytree(first_export, tmp_path / "export"))  # version 1
    layout = ExportLayout(export_dir)
    version_1 = {p: sha256_of(p) for g in ("encoder", "decoder") for p in layout.files_under(layout.savedmodel_dir(g, 1))}
    mtimes = {p: p.stat().st_mtime_ns for p in version_1}

    result = export_run(run_dir, export_dir)
    assert result.version == 2
    assert layout.versions("encoder") == layout.versions("decoder") == [1, 2]
    assert {p: sha256_of(p) for p in version_1} == version_1
    assert {p: p.stat().st_mtime_ns for p in version_1} == mtimes
    assert layout.read_metadata()["version"] == 2
    assert load_translator(export_dir, "savedmodel").translate(["home"]) == load_translator(export_dir, "onnx").translate(["home"])
    with pytest.raises(ExportError, match="version 2 already exists"):
        export_run(run_dir, export_dir, version=2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging directories left behind"


def test_a_crash_during_export_leaves_no_export_that_loads(tmp_path, monkeypatch):
    import keras_s2s.export.savedmodel as savedmodel_export
    from keras_s2s.export import export_run

    run_dir = make_untrained_run(tmp_path / "run", "rnn", 1)

    def crash(*args, **kwargs):  # the encoder's and decoder's SavedModels are staged by then
        raise RuntimeError("simulated crash while writing the greedy SavedModel")

    monkeypatch.setattr(savedmodel_export, "write_function_savedmodel", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_run(run_dir, tmp_path / "export")
    assert not (tmp_path / "export").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"], "no staging directory left behind"


# --- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["lstm-1layer", ONE_CASE])
@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_bad_feeds_are_rejected_with_the_tensor_named(export_case, case, runtime):
    _, export_dir = export_case(case)
    translator = load_translator(export_dir, runtime)
    vocab_size = len(translator.source.vocab)
    with pytest.raises(InputError, match=r"encoder input 'source_ids': expected dtype int32, got float32"):
        translator.encode(np.ones((1, 3), np.float32))
    with pytest.raises(InputError, match=r"'source_ids': expected rank 2"):
        translator.encode(np.ones((3,), np.int32))
    with pytest.raises(InputError, match=r"'source_ids': empty tensor"):
        translator.encode(np.zeros((0, 3), np.int32))
    with pytest.raises(InputError, match=rf"'source_ids': ids must be in \[0, {vocab_size}\).*got {vocab_size + 5}"):
        translator.encode(np.array([[4, vocab_size + 5]], np.int32))
    with pytest.raises(InputError, match=r"'source_ids': ids must be in .* got -1"):
        translator.encode(np.array([[4, -1]], np.int32))
    state = translator.encode(np.array([[4, 5]], np.int32))
    with pytest.raises(InputError, match=r"decoder input 'token_ids': ids must be in"):
        translator.step(np.array([[len(translator.target.vocab)]], np.int32), state)
    first_state = next(iter(state))
    with pytest.raises(InputError, match=rf"decoder input '{first_state}': expected size \d+ on axis 1"):
        translator.step(np.array([[SOS_ID]], np.int32), {**state, first_state: np.zeros((1, 3), np.float32)})
    with pytest.raises(InputError, match=r"batch size \d differs from the other inputs' \d"):
        translator.step(np.array([[SOS_ID], [SOS_ID]], np.int32), state)


def test_the_savedmodel_itself_rejects_out_of_vocabulary_ids_for_tf_serving_clients(exported_one):
    import tensorflow as tf

    _, export_dir = exported_one
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    vocab_size = metadata["graphs"]["encoder"]["inputs"][0]["id_range"][1]
    encoder = tf.saved_model.load(str(export_dir / metadata["graphs"]["encoder"]["savedmodel"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"encoder input .?'source_ids.?': ids must be < "):
        encoder.signatures["serving_default"](source_ids=tf.constant([[4, vocab_size]], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"source_ids.?': empty tensor"):
        encoder.signatures["serving_default"](source_ids=tf.zeros((0, 2), tf.int32))


@pytest.mark.parametrize("signature", ["serving_default", "beam_xla"])
@pytest.mark.parametrize("settings, message", [
    ((0, 1, 0.0), "'beam_width' must be >= 1"),
    ((2, 3, 0.0), "'nbest' must be <= 'beam_width'"),
    ((2, 0, 0.0), "'nbest' must be >= 1"),
    ((2, 1, -0.5), "'length_penalty' must be a finite number >= 0, got\\] \\[-0.5"),
    ((2, 1, float("nan")), "'length_penalty' must be a finite number >= 0, got\\] \\[nan"),
], ids=["width-0", "nbest-above-width", "nbest-0", "negative-penalty", "nan-penalty"])
def test_the_beam_savedmodel_rejects_impossible_beam_settings_for_tf_serving_clients(exported_one, signature, settings, message):
    import tensorflow as tf

    _, export_dir = exported_one
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    beam = tf.saved_model.load(str(export_dir / metadata["beam"]["savedmodel"])).signatures[signature]
    width, nbest, alpha = settings
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("'", r"\\?'")):  # TF escapes quotes
        beam(source_ids=tf.constant([[4, 5]], tf.int32), beam_width=tf.constant(width), nbest=tf.constant(nbest),
             length_penalty=tf.constant(alpha, tf.float32))


@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_missing_or_corrupted_export_files_are_named(export_case, tmp_path, runtime):
    import shutil

    shutil.copytree(export_case("lstm-1layer")[1], tmp_path / "export")
    layout = ExportLayout(tmp_path / "export")
    victim = layout.onnx_file("decoder") if runtime == "onnx" else layout.savedmodel_dir("decoder", 1) / "saved_model.pb"

    pristine = victim.read_bytes()
    victim.write_bytes(pristine[:100] + bytes([pristine[100] ^ 0xFF]) + pristine[101:])
    with pytest.raises(ExportError, match=rf"checksum mismatch for .*{victim.name}"):
        load_translator(layout.path, runtime)

    victim.unlink()
    with pytest.raises(ExportError, match=rf"export file missing: .*{victim.name}"):
        load_translator(layout.path, runtime)

    victim.write_bytes(pristine)
    load_translator(layout.path, runtime)  # intact again
    (layout.assets / "target_vocab.txt").write_text("<pad>\n<unk>\n<s>\n</s>\nX\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"checksum mismatch for .*target_vocab.txt"):
        load_translator(layout.path, runtime)

    shutil.rmtree(layout.assets)
    with pytest.raises(ExportError, match=r"metadata.json is missing"):
        load_translator(layout.path, runtime)


def test_cli_export_then_translate_with_both_runtimes(trained_toy_run, tmp_path, capsys):
    from keras_s2s.cli import main

    out = tmp_path / "exported" / "toy"
    assert main(["export", str(trained_toy_run), "--out", str(out)]) == 0
    assert "version 1" in capsys.readouterr().out
    for runtime in ("onnx", "savedmodel"):
        assert main(["translate", str(out), "I go home", "--runtime", runtime]) == 0
        assert capsys.readouterr().out == "나는 집에 간다\n"
    assert main(["export", str(trained_toy_run), "--out", str(out), "--version", "1"]) == 1
    assert "version 1 already exists" in capsys.readouterr().err
    assert main(["translate", str(out), "I go home", "--runtime", "keras"]) == 1
    assert main(["translate", str(trained_toy_run), "x", "--runtime", "onnx"]) == 1
    assert "export it first" in capsys.readouterr().err

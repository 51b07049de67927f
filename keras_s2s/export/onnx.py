"""Converts one graph to ONNX with tf2onnx (dynamic batch and time axes) and checks it.

The encoder gets a fast path: tf2onnx turns a PAD-masked Keras LSTM into a generic ``Loop``
but an unmasked one into a single fused ``LSTM`` op (a bidirectional layer into one
``direction="bidirectional"`` op). So the encoder is converted from its unmasked twin
(same weights) and every fused recurrent op gets the source lengths as ``sequence_lens``,
which makes its final states those of each row's last real token and, for the backward
direction, starts each row at its own last token, exactly what the Keras mask does. Where
tf2onnx cannot fuse the recurrence (GRU, SimpleRNN) the masked encoder is converted as is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

import keras

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import PAD_ID, SOURCE_IDS, SOURCE_LENGTHS
from keras_s2s.errors import ExportError
from keras_s2s.export.graphs import greedy_serving_function, serving_function
from keras_s2s.models import single_step_decoder, step_encoder, unmasked_encoder
from keras_s2s.runtime.interface import GraphSignature
from keras_s2s.signatures import decoding_interface

OPSET = 17
FUSED_RECURRENT_OPS = ("LSTM", "GRU", "RNN")
FUSED_CELLS = ("lstm",)
"""The cells whose unmasked Keras layers tf2onnx 1.17 fuses into one ONNX op. A GRU or
SimpleRNN becomes a ``Loop`` masked or not (tests/test_export.py checks that it still does),
so their encoders are converted once, masked, instead of trying the unmasked twin first."""
# SOURCE_LENGTHS names the [B] int32 tensor (real tokens per row) fed to the fused ops' ``sequence_lens``.


def write_onnx(model: keras.Model, signature: GraphSignature, path: str | Path) -> None:
    """ONNX file at ``path`` with the signature's input and output names; passes onnx.checker."""
    _save_checked(_convert(serving_function(model, signature, check_inputs=False)), signature, path)


def write_encoder_onnx(encoder: keras.Model, config: Seq2SeqConfig, signature: GraphSignature, path: str | Path) -> str:
    """The encoder as ONNX, with fused recurrent ops where tf2onnx makes them.

    Returns how the recurrence was converted, one of ``ONNX_RECURRENCES``: ``"fused"``
    (``LSTM`` ops with ``sequence_lens``) or ``"loop"`` (the masked graph's ``Loop``)."""
    return _write_with_fast_encoder(
        lambda any_encoder: serving_function(any_encoder, signature, check_inputs=False), encoder, config, signature, path
    )


def write_greedy_onnx(
    encoder: keras.Model,
    decoder: keras.Model,
    config: Seq2SeqConfig,
    signature: GraphSignature,
    max_length: int,
    path: str | Path,
    encoder_recurrence: Optional[str] = None,
    step_decoder: Optional[keras.Model] = None,
) -> str:
    """Greedy decoding as one ONNX graph (keras_s2s.export.greedy): the encoder as in
    ``write_encoder_onnx`` (as ``step_encoder``), then a ``Loop`` over the one-step decoder
    (``step_decoder``: ``single_step_decoder(decoder, config)``, built here unless the caller
    has it). Returns the encoder's recurrence kind. ``encoder_recurrence``: what
    ``write_encoder_onnx`` returned for this encoder; ``"loop"`` skips converting the unmasked
    twin, which tf2onnx would not fuse here either (the greedy graph is the slowest conversion
    of an export)."""
    if step_decoder is None:
        step_decoder = single_step_decoder(decoder, config)

    def function_over(any_encoder: keras.Model):
        loop_encoder = step_encoder(any_encoder, decoder, config)
        return greedy_serving_function(
            loop_encoder, step_decoder, signature, decoding_interface(loop_encoder, step_decoder), max_length,
            check_inputs=False,
        )

    return _write_with_fast_encoder(function_over, encoder, config, signature, path, try_fused=encoder_recurrence != "loop")


def _write_with_fast_encoder(function_over: Callable, encoder: keras.Model, config: Seq2SeqConfig,
                             signature: GraphSignature, path: str | Path, try_fused: bool = True) -> str:
    """Converts ``function_over(unmasked encoder)`` when tf2onnx fuses every encoder layer
    (one fused op per layer in the main graph, outside any decoding ``Loop``) and feeds them
    the source lengths; otherwise (or without ``try_fused``, or for a cell not in
    ``FUSED_CELLS``) converts ``function_over(encoder)`` (masked, a ``Loop``)."""
    if try_fused and config.cell in FUSED_CELLS:
        proto = _convert(function_over(unmasked_encoder(encoder, config)))
        fused = [node for node in proto.graph.node if node.op_type in FUSED_RECURRENT_OPS]
        if len(fused) == config.num_layers:
            _feed_source_lengths(proto)
            _save_checked(proto, signature, path)
            return "fused"
    _save_checked(_convert(function_over(encoder)), signature, path)
    return "loop"


def op_types(path: str | Path) -> Counter:
    """Op type -> count over the main graph of an ONNX file (not inside Loop bodies)."""
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _convert(function):
    import tf2onnx

    def convert():
        return tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=OPSET)[0]

    with _shape_warnings_dropped():
        try:
            with _tf2onnx_catch_errors(False):
                return convert()
        except Exception:  # noqa: BLE001  an optimizer pass failed (or the conversion did: it fails again below)
            logging.getLogger(__name__).warning(
                "tf2onnx failed on this graph; converting again, skipping optimizer passes that fail", exc_info=True)
            with _tf2onnx_catch_errors(True):
                return convert()


# tf2onnx reads this variable to choose whether its graph optimizers may fail.
TF2ONNX_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"


@contextlib.contextmanager
def _tf2onnx_catch_errors(catch: bool):
    """Whether a failing tf2onnx optimizer pass is skipped with a warning (``catch``) or raises.

    To skip a failing pass, tf2onnx deep-copies the whole graph before each of its optimizer
    passes (~180 per greedy graph), a fifth of an export's time. Every graph we export passes
    every optimizer (tests/test_export.py: no tf2onnx warning), so ``_convert`` converts without
    catching and only if that raises converts again with it. tf2onnx 1.17 turns catching off
    whenever the variable is set (it compares the variable's name, not its value, with "TRUE")
    and on when it is unset, so catching means unset, and not catching "FALSE" (right also once
    that is fixed). The process's own value is restored afterwards."""
    previous = os.environ.pop(TF2ONNX_CATCH_ERRORS, None)
    if not catch:
        os.environ[TF2ONNX_CATCH_ERRORS] = "FALSE"
    try:
        yield
    finally:
        os.environ.pop(TF2ONNX_CATCH_ERRORS, None)
        if previous is not None:
            os.environ[TF2ONNX_CATCH_ERRORS] = previous


@contextlib.contextmanager
def _shape_warnings_dropped():
    """Drops tf2onnx's "missing output shape" warnings while converting: it logs one per loop
    value whose shape changes across iterations and per pass over the graph, which the greedy
    graph's loop that drops finished rows does by design (~160 lines per export, in the output
    of ``keras-s2s export`` and ``make demo``). Its other warnings pass."""
    logger = logging.getLogger("tf2onnx.graph")

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("missing output shape")

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _feed_source_lengths(proto) -> None:
    """Adds ``source_lengths = sum(source_ids != PAD, axis=1)`` as int32 and wires it into the
    ``sequence_lens`` input (index 4) of every fused recurrent op."""
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    graph = proto.graph
    pad = numpy_helper.from_array(np.array(PAD_ID, dtype=np.int32), "source_lengths/pad")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "source_lengths/axes")
    graph.initializer.extend([pad, axes])
    nodes = [
        helper.make_node("Equal", [SOURCE_IDS, pad.name], ["source_lengths/is_pad"], name="source_lengths/Equal"),
        helper.make_node("Not", ["source_lengths/is_pad"], ["source_lengths/is_real"], name="source_lengths/Not"),
        helper.make_node("Cast", ["source_lengths/is_real"], ["source_lengths/ones"], to=TensorProto.INT32,
                         name="source_lengths/Cast"),
        helper.make_node("ReduceSum", ["source_lengths/ones", axes.name], [SOURCE_LENGTHS], keepdims=0,
                         name="source_lengths/ReduceSum"),
    ]
    for node in graph.node:
        if node.op_type in FUSED_RECURRENT_OPS:
            inputs = list(node.input) + [""] * max(0, 5 - len(node.input))
            inputs[4] = SOURCE_LENGTHS
            del node.input[:]
            node.input.extend(inputs)
    # Nodes must stay topologically sorted: the lengths come first, from the graph input.
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)


def hoist_loop_invariants(proto) -> int:
    """Turns the ``Loop`` state that a body passes through unchanged into outer-scope references.

    tf2onnx makes every tensor a ``tf.while_loop`` body captures (the weights, the encoder
    memory) a loop-carried value whose body output is its input; ONNX Runtime then copies it
    from one iteration to the next: the decoder's weights at every step, and at batch 256 the
    attention memory, megabytes per step. A body may read the enclosing graph's values by name
    instead. Returns how many values were hoisted."""
    hoisted = 0
    for node, graph, _ in _loops(proto.graph):
        body = next(a.g for a in node.attribute if a.name == "body")
        carried = len(node.input) - 2  # inputs: M, cond, then the carried initial values
        keep = []
        renames = {}
        for k in range(carried):
            body_input, body_output = body.input[2 + k], body.output[1 + k]
            outer_name = node.input[2 + k]
            if body_input.name == body_output.name and outer_name and not _is_used(graph, node.output[k]):
                renames[body_input.name] = outer_name
            else:
                keep.append(k)
        if not renames:
            continue
        _rename_inputs(body, renames)
        _keep_loop_state(node, body, keep)
        kept_value_info = [v for v in body.value_info if v.name not in renames]
        del body.value_info[:]
        body.value_info.extend(kept_value_info)
        hoisted += len(renames)
    return hoisted


def drop_redundant_trip_guards(proto) -> int:
    """Removes a ``Loop`` body's own check of the iteration count when the Loop's trip count
    ``M`` already bounds it.

    tf2onnx converts ``tf.while_loop(..., maximum_iterations=N)`` into a Loop with ``M = N``
    *and* a body condition ``And(Less(Cast(iteration), C), cond)``; with ``C >= M - 1`` the
    guard is true in every iteration the Loop runs, so the body's condition is ``cond`` alone:
    three kernel calls per decoding step fewer. Returns how many guards were dropped."""
    from onnx import numpy_helper

    dropped = 0
    for node, _, constants in _loops(proto.graph):
        if node.input[0] not in constants:
            continue
        trip_count = float(numpy_helper.to_array(constants[node.input[0]]))
        body = next(a.g for a in node.attribute if a.name == "body")
        body_constants = {i.name: numpy_helper.to_array(i) for i in body.initializer}
        producers = {output: n for n in body.node for output in n.output}
        cond = producers.get(body.output[0].name)
        if cond is None or cond.op_type != "And":
            continue
        for guard_index, guard_name in enumerate(cond.input):
            less = producers.get(guard_name)
            if less is None or less.op_type != "Less" or less.input[1] not in body_constants:
                continue
            cast = producers.get(less.input[0])
            counter = cast.input[0] if cast is not None and cast.op_type == "Cast" else less.input[0]
            if counter != body.input[0].name or float(body_constants[less.input[1]]) < trip_count - 1:
                continue
            remaining = cond.input[1 - guard_index]
            removed = [n for n in (cond, less, cast) if n is not None and n.op_type in ("And", "Less", "Cast")]
            kept = [n for n in body.node if all(n is not r for r in removed)]
            removed_outputs = {o for n in removed for o in n.output} - {body.output[0].name}
            if any(name in removed_outputs for n in kept for name in n.input):
                continue  # the guard's values feed something else: leave the body as it is
            del body.node[:]
            body.node.extend(kept)
            body.output[0].name = remaining
            value_info = [v for v in body.value_info if v.name not in removed_outputs]
            del body.value_info[:]
            body.value_info.extend(value_info)
            dropped += 1
            break
    return dropped


def drop_dead_loop_state(proto) -> int:
    """Removes ``Loop`` state that only counts itself: a carried value whose single body use
    is the one node computing its next value, and whose final value nobody reads. (The step
    counter that indexes a ``tf.while_loop``'s TensorArray writes is one: tf2onnx turns the
    writes into scan outputs, which need no index.) Returns how many values were removed."""
    dropped = 0
    for node, graph, _ in _loops(proto.graph):
        body = next(a.g for a in node.attribute if a.name == "body")
        carried = len(node.input) - 2
        dead = []
        for k in range(carried):
            body_input, body_output = body.input[2 + k].name, body.output[1 + k].name
            users = [n for n in body.node if body_input in n.input]
            if (len(users) == 1 and list(users[0].output) == [body_output]
                    and not any(body_output in n.input for n in body.node)
                    and not _is_used(graph, node.output[k])):
                dead.append((k, users[0]))
        if not dead:
            continue
        dead_slots = {k for k, _ in dead}
        kept_nodes = [n for n in body.node if all(n is not update for _, update in dead)]
        del body.node[:]
        body.node.extend(kept_nodes)
        _keep_loop_state(node, body, [k for k in range(carried) if k not in dead_slots])
        dropped += len(dead)
    return dropped


def _loops(graph, outer_constants: Optional[dict] = None):
    """(Loop node, the graph holding it, the initializers it can read, by name) for the Loops
    of ``graph`` and of the ``If`` branches in it (greedy decoding picks its loop with an If)."""
    constants = {**(outer_constants or {}), **{i.name: i for i in graph.initializer}}
    for node in graph.node:
        if node.op_type == "Loop":
            yield node, graph, constants
        elif node.op_type == "If":
            for branch in _subgraphs(node):
                yield from _loops(branch, constants)


def _subgraphs(node):
    """The graphs held by ``node``'s attributes (a Loop's body, an If's branches)."""
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs


def _keep_loop_state(node, body, keep: list[int]) -> None:
    """Keeps only the carried values ``keep`` (indices among the Loop's carried values) in the
    Loop node's inputs and outputs and its body's inputs and outputs; scan outputs stay."""
    carried = len(node.input) - 2
    inputs = [node.input[0], node.input[1]] + [node.input[2 + k] for k in keep]
    outputs = [node.output[k] for k in keep] + list(node.output[carried:])
    body_inputs = list(body.input[:2]) + [body.input[2 + k] for k in keep]
    body_outputs = [body.output[0]] + [body.output[1 + k] for k in keep] + list(body.output[1 + carried:])
    for field, values in ((node.input, inputs), (node.output, outputs), (body.input, body_inputs), (body.output, body_outputs)):
        copies = list(values)
        del field[:]
        field.extend(copies)


def drop_unread_initializers(graph) -> set:
    """Removes the constants that no node of ``graph`` or of its subgraphs reads (a Loop body
    reads its enclosing ``If`` branch's constants by name, so a pass that edits the body can
    leave one unread there; ONNX Runtime prints a warning per unread constant at every session
    load). Returns the names ``graph`` and its subgraphs read, for the enclosing graph."""
    read = {name for node in graph.node for name in node.input}
    for node in graph.node:
        for subgraph in _subgraphs(node):
            read |= drop_unread_initializers(subgraph)
    read |= {value.name for value in (*graph.input, *graph.output)}
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return read


def _is_used(graph, name: str) -> bool:
    return any(name in n.input for n in graph.node) or any(o.name == name for o in graph.output)


def _rename_inputs(graph, renames: dict) -> None:
    """Renames node inputs in ``graph`` and the subgraphs inside it."""
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
        for subgraph in _subgraphs(node):
            _rename_inputs(subgraph, renames)


def _save_checked(proto, signature: GraphSignature, path: str | Path) -> None:
    import onnx

    hoist_loop_invariants(proto)
    drop_redundant_trip_guards(proto)
    drop_dead_loop_state(proto)
    drop_unread_initializers(proto.graph)
    onnx.checker.check_model(proto, full_check=True)
    # tf2onnx orders outputs by name; check that every documented name is there.
    names = {o.name for o in proto.graph.output} | {i.name for i in proto.graph.input}
    missing = [t.name for t in (*signature.inputs, *signature.outputs) if t.name not in names]
    if missing:
        raise ExportError(f"tf2onnx lost the tensor names {missing} of the {signature.name} graph")
    onnx.save(proto, str(path))

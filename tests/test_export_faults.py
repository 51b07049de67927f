"""The paths users take with an export, and what must hold when things go wrong on them.

- The exported decoder on a whole target prefix (T > 1), as ``evaluate`` uses it on an export
  (teacher-forced accuracy): equal to the Keras run and to T single steps.
- Atomic export under faults: an error before publishing, an error at any rename of the
  publish step, a SIGKILL of ``keras-s2s export``. Afterwards the export serves the old version
  or the new one — checked by its metadata, the checksums the runtimes verify and what it
  translates — or refuses to load as "not a complete export"; never a mix of the two.
- ``metadata.json`` that is corrupted, of another format, or missing or mistyping a field the
  runtimes read is refused with an ExportError naming the file and the field; so is a
  vocabulary whose size does not fit the graphs.
- Every range of ``keras_s2s.config._RANGES`` at both bounds.

The two versions are untrained toy models (hidden 16): version 1 a plain LSTM, version 2 a
bidirectional LSTM with Luong attention, so each version's files and translations differ. The
fault tests' exports of version 2 copy its graphs from an intact export of it
(``copy_graphs_instead_of_writing``): what they exercise is the staging and publish steps
around the graph writers; the conversions themselves are tests/test_export.py's.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import typing
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
import pytest

from keras_s2s.config import Seq2SeqConfig, _RANGES
from keras_s2s.constants import SOS_ID
from keras_s2s.errors import ConfigError, ExportError
from keras_s2s.runtime import load_translator
from keras_s2s.runtime.artifact import ExportLayout, sha256_of
from test_export import random_source_ids

RUNTIMES = ("onnx", "savedmodel")
ATOL = 1e-5
MODELS = {"lstm": "lstm-1layer", "bi-lstm-luong": "bi-lstm-luong"}  # name here -> conftest.EXPORT_CASES
OLD, NEW = "lstm", "bi-lstm-luong"  # what versions 1 and 2 of the fault tests export
SENTENCES = ["I go home", "we are friends", "the cat sleeps"]
PROBE_SOURCE = np.array([[5, 6, 7], [8, 9, 0]], np.int32)
PROBE_TOKENS = np.array([[SOS_ID, 5, 6, 7], [SOS_ID, 8, 4, 4]], np.int32)


@pytest.fixture(scope="module")
def exported(export_case) -> dict[str, tuple[Path, Path]]:
    """Model name -> (run directory, its export as version 1 in a directory named ``export``),
    shared with tests/test_export.py: copy before changing."""
    return {name: export_case(case) for name, case in MODELS.items()}


# --- the decoder on a whole target prefix --------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("model", list(MODELS))
def test_the_exported_decoder_on_4_tokens_equals_keras_and_4_single_steps(exported, model, runtime):
    run_dir, export_dir = exported[model]
    translator = load_translator(export_dir, runtime)
    keras_translator = load_translator(run_dir, "keras")
    rng = np.random.default_rng(4)
    source_ids = random_source_ids(rng, 3, 5, len(translator.source.vocab))
    token_ids = np.concatenate(
        [np.full((3, 1), SOS_ID, np.int32), rng.integers(4, len(translator.target.vocab), (3, 3), dtype=np.int32)], axis=1
    )
    state = translator.encode(source_ids)

    logits, next_state = translator.step(token_ids, state)
    keras_logits, keras_next_state = keras_translator.step(token_ids, keras_translator.encode(source_ids))
    assert logits.shape == (3, 4, len(translator.target.vocab))
    np.testing.assert_allclose(logits, keras_logits, atol=ATOL, err_msg=f"{runtime} vs keras: logits over 4 tokens")
    for name in keras_next_state:
        np.testing.assert_allclose(next_state[name], keras_next_state[name], atol=ATOL, err_msg=f"{runtime} vs keras: {name}")

    step_state, step_logits = state, []
    for t in range(4):  # one token at a time, next_state_* fed back as state_*
        logits_t, step_state = translator.step(token_ids[:, t : t + 1], step_state)
        step_logits.append(logits_t)
    np.testing.assert_allclose(logits, np.concatenate(step_logits, axis=1), atol=ATOL,
                               err_msg=f"{runtime}: 4 tokens at once vs one at a time")
    for name in next_state:
        np.testing.assert_allclose(next_state[name], step_state[name], atol=ATOL,
                                   err_msg=f"{runtime}: state after 4 tokens at once vs one at a time: {name}")


# --- what an export serves ------------------------------------------------------------------
class Served(NamedTuple):
    """What one runtime of an export answers: translations and the logits of a fixed probe."""

    translations: list[str]
    logits: np.ndarray


def what_it_serves(export_dir: Path, runtime: str) -> Served:
    """What the export at ``export_dir`` serves on ``runtime``. The SavedModel translator uses
    the graphs' uncompiled signatures: which version's files serve is in question here, and
    the XLA-compiled ones would compile at every load (tests/test_export.py checks them)."""
    translator = load_translator(export_dir, runtime, compiled=False)
    logits, _ = translator.step(PROBE_TOKENS, translator.encode(PROBE_SOURCE))
    return Served(translator.translate(SENTENCES), logits)


@pytest.fixture(scope="module")
def served(exported) -> dict[int, dict[str, Served]]:
    """Version (1: OLD, 2: NEW) -> runtime -> what an intact export of that version serves."""
    versions = {
        version: {rt: what_it_serves(exported[model][1], rt) for rt in RUNTIMES}
        for version, model in ((1, OLD), (2, NEW))
    }
    assert versions[1]["onnx"].translations != versions[2]["onnx"].translations, "the versions must be told apart"
    return versions


def loaded_version(export_dir: Path, expected: dict[int, dict[str, Served]]) -> Optional[int]:
    """The version that ``export_dir`` serves whole — its metadata names a version of ``expected``,
    every runtime loads (verifying the checksums of the files it reads) and serves what that
    version serves — or None when it refuses to load as "not a complete export"."""
    try:
        version = ExportLayout(export_dir).read_metadata()["version"]
    except ExportError as err:
        assert "is not a complete export" in str(err), f"refused with another error: {err}"
        for runtime in RUNTIMES:
            with pytest.raises(ExportError, match="is not a complete export"):
                load_translator(export_dir, runtime)
        return None
    assert version in expected, f"metadata names version {version}, expected one of {sorted(expected)}"
    for runtime in RUNTIMES:
        now = what_it_serves(export_dir, runtime)
        assert now.translations == expected[version][runtime].translations, f"{runtime}: not version {version}'s output"
        np.testing.assert_allclose(now.logits, expected[version][runtime].logits, atol=1e-6,
                                   err_msg=f"{runtime}: not version {version}'s logits")
    return version


def copy_of_version_1(directory: Path, exported) -> Path:
    """A fresh copy of the OLD model's version-1 export at ``directory/export``."""
    return Path(shutil.copytree(exported[OLD][1], directory / "export"))


def hidden_entries(export_dir: Path) -> list[str]:
    """The staging and trash directories (and anything else hidden) beside an export."""
    return sorted(p.name for p in export_dir.parent.iterdir() if p.name.startswith("."))


# --- atomic export under faults -------------------------------------------------------------
@pytest.mark.slow
def test_an_export_that_crashes_while_writing_leaves_the_previous_version_serving(
    exported, served, copying_writers, tmp_path, monkeypatch
):
    import keras_s2s.export.onnx as onnx_export
    from keras_s2s.export import export_run

    target = copy_of_version_1(tmp_path, exported)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing ONNX")

    monkeypatch.setattr(onnx_export, "write_onnx", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_run(exported[NEW][0], target)
    assert loaded_version(target, served) == 1
    assert ExportLayout(target).versions("encoder") == ExportLayout(target).versions("decoder") == [1]
    assert hidden_entries(target) == [], "no staging or trash directory left behind"


class RenameFaults:
    """Stands in for ``os.rename`` and ``os.replace``: call number ``fail_at`` (0-based, both
    counted together) raises OSError(EIO); with ``persistent`` every later call does too (a disk
    gone read-only), otherwise later calls go through (so an undo can run)."""

    def __init__(self, fail_at: int, *, persistent: bool) -> None:
        self.fail_at, self.persistent, self.calls, self.fired = fail_at, persistent, 0, False

    @contextlib.contextmanager
    def installed(self, monkeypatch):
        with monkeypatch.context() as patch:
            for name in ("rename", "replace"):
                patch.setattr(os, name, self._wrap(getattr(os, name)))
            yield self

    def _wrap(self, real: Callable) -> Callable:
        def call(*args, **kwargs):
            index, self.calls = self.calls, self.calls + 1
            if index == self.fail_at or (self.persistent and index > self.fail_at):
                self.fired = True
                raise OSError(errno.EIO, f"simulated I/O error at rename #{index}")
            return real(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def new_model(exported):
    """The NEW model (``keras_s2s.run_dir.TrainedModel``), loaded once."""
    from keras_s2s.run_dir import load_trained_model

    return load_trained_model(exported[NEW][0])


def copy_graphs_instead_of_writing(prebuilt_export: Path, setattr_: Callable, delay: float = 0.0) -> None:
    """Replaces ``export_models``' SavedModel and ONNX writers (every graph's) by copies of the
    files of ``prebuilt_export``, an intact export of the same model, each after ``delay``
    seconds: for the tests of the publish step, which is what they are about, not the graphs.
    ``setattr_``: ``monkeypatch.setattr``, or ``setattr`` in a subprocess."""
    import keras_s2s.export.onnx as onnx_export
    import keras_s2s.export.savedmodel as savedmodel_export

    prebuilt = ExportLayout(prebuilt_export)
    recurrences = {g: v["onnx_recurrence"] for g, v in prebuilt.read_metadata()["graphs"].items() if "onnx_recurrence" in v}

    def copy_savedmodel(directory) -> None:
        time.sleep(delay)
        shutil.copytree(prebuilt.savedmodel_dir(Path(directory).parent.name, 1), directory)

    def copy_onnx(path) -> Optional[str]:
        time.sleep(delay)
        shutil.copyfile(prebuilt.onnx_dir / Path(path).name, path)
        return recurrences.get(Path(path).stem)

    setattr_(savedmodel_export, "write_savedmodel", lambda model, signature, directory: copy_savedmodel(directory))
    setattr_(savedmodel_export, "write_function_savedmodel",
             lambda models, function, directory, *more: copy_savedmodel(directory))
    setattr_(onnx_export, "write_onnx", lambda model, signature, path: copy_onnx(path))
    setattr_(onnx_export, "write_encoder_onnx", lambda *args: copy_onnx(args[-1]))
    setattr_(onnx_export, "write_greedy_onnx", lambda *args, encoder_recurrence, step_decoder: copy_onnx(args[-1]))


@pytest.fixture
def copying_writers(exported, monkeypatch) -> None:
    """Exports of the NEW model in this test copy the graphs of its intact export."""
    copy_graphs_instead_of_writing(exported[NEW][1], monkeypatch.setattr)


@pytest.fixture
def export_new_version(new_model, copying_writers):
    """export(target) -> ExportResult: ``export_models`` of the NEW model into ``target``,
    its graphs copied from NEW's intact export (``copy_graphs_instead_of_writing``), so each
    call is quick."""
    from keras_s2s.export import export_models

    def export(target: Path):
        return export_models(new_model.encoder, new_model.decoder, target, config=new_model.config,
                             source_vocab=new_model.source_vocab, target_vocab=new_model.target_vocab)

    return export


def publish_with_faults(export, target: Path, faults: RenameFaults, monkeypatch) -> bool:
    """Exports NEW over ``target`` with ``faults`` installed; True if a rename failed (and the
    export raised it), False if the export made fewer renames and succeeded."""
    try:
        with faults.installed(monkeypatch):
            export(target)
    except OSError as err:
        assert faults.fired and "simulated I/O error" in str(err), f"unexpected error: {err!r}"
        return True
    assert not faults.fired, "a rename failed but the export did not report it"
    return False


@pytest.mark.slow
def test_an_error_at_any_rename_of_the_publish_step_leaves_the_previous_version_serving(
    exported, served, export_new_version, tmp_path, monkeypatch
):
    for fail_at in itertools.count():
        target = copy_of_version_1(tmp_path / f"rename{fail_at}", exported)
        if not publish_with_faults(export_new_version, target, RenameFaults(fail_at, persistent=False), monkeypatch):
            break
        assert loaded_version(target, served) == 1, f"rename #{fail_at} failed"
        assert ExportLayout(target).versions("encoder") == ExportLayout(target).versions("decoder") == [1]
        assert hidden_entries(target) == [], f"rename #{fail_at} failed: staging or trash left behind"
    assert fail_at >= 3, f"publishing made only {fail_at} renames: this test no longer exercises it"
    assert loaded_version(target, served) == 2, "an export with no failing rename serves the new version"


@pytest.mark.slow
def test_when_every_rename_from_some_point_on_fails_the_export_is_old_or_new_or_refuses_and_a_new_export_repairs_it(
    exported, served, export_new_version, tmp_path, monkeypatch
):
    outcomes = {}
    for fail_at in itertools.count():
        target = copy_of_version_1(tmp_path / f"rename{fail_at}", exported)
        if not publish_with_faults(export_new_version, target, RenameFaults(fail_at, persistent=True), monkeypatch):
            break
        outcomes[fail_at] = loaded_version(target, served)  # 1, 2 or None (refuses); never a mix
        result = export_new_version(target)  # the disk works again
        assert loaded_version(target, {result.version: served[2]}) == result.version, f"after rename #{fail_at} failed"
    assert fail_at >= 3, f"publishing made only {fail_at} renames: this test no longer exercises it"
    assert outcomes[0] == 1, "the first rename failed: nothing changed"


def start_export(run_dir: Path, out: Path, log: Path, rename_delay: float, prebuilt_export: Path) -> subprocess.Popen:
    """``python -m keras_s2s.cli export RUN --out OUT`` in a subprocess whose os.rename and
    os.replace wait ``rename_delay`` seconds first, so that each state of the publish step lasts
    long enough to be seen and killed in. Its graph writers copy ``prebuilt_export``'s files
    (``copy_graphs_instead_of_writing``), each after the same delay, so that writing lasts
    that long too."""
    script = textwrap.dedent(
        f"""
        import os, runpy, sys, time

        def slow(real):
            def call(*args, **kwargs):
                time.sleep({rename_delay})
                return real(*args, **kwargs)
            return call

        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_export_faults import copy_graphs_instead_of_writing

        copy_graphs_instead_of_writing(sys.argv[3], setattr, delay={rename_delay})
        os.rename, os.replace = slow(os.rename), slow(os.replace)
        sys.argv = ["keras-s2s", "export", sys.argv[1], "--out", sys.argv[2]]
        runpy.run_module("keras_s2s.cli", run_name="__main__")
        """
    )
    with open(log, "wb") as output:
        return subprocess.Popen([sys.executable, "-c", script, str(run_dir), str(out), str(prebuilt_export)],
                                stdout=output, stderr=output)


def work_dirs(out: Path, kind: str) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.{kind}-*"))


KILL_POINTS = {
    "writing-savedmodels": lambda out: bool(work_dirs(out, "staging")),
    "publishing-old-metadata-moved-out": lambda out: any((t / "assets").exists() for t in work_dirs(out, "replaced")),
    "publishing-new-graphs-moved-in": lambda out: (out / "decoder" / "2").exists(),
}


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_sigkilled_export_leaves_an_export_that_is_old_or_new_or_refuses_and_the_next_export_succeeds(
    exported, served, copying_writers, tmp_path, kill_point, capsys
):
    from keras_s2s.cli import main

    target = copy_of_version_1(tmp_path, exported)
    log = tmp_path / "export.log"
    process = start_export(exported[NEW][0], target, log, rename_delay=0.5, prebuilt_export=exported[NEW][1])
    try:
        deadline = time.monotonic() + 900  # minutes only on a machine busy with other work
        while not KILL_POINTS[kill_point](target):
            assert process.poll() is None, f"the export ended (exit {process.returncode}) before {kill_point}:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{kill_point} not reached in 900 s"
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert hidden_entries(target), "the kill left the export's work directories behind"

    assert loaded_version(target, served) in (1, 2, None)
    assert main(["export", str(exported[NEW][0]), "--out", str(target)]) == 0
    version = int(re.search(r"\[export\] version (\d+)", capsys.readouterr().out)[1])
    assert loaded_version(target, {version: served[2]}) == version
    assert hidden_entries(target) == [], "the next export deletes the killed export's work directories"


# --- metadata.json ----------------------------------------------------------------------------
def _parent(metadata: dict, path: tuple):
    for key in path[:-1]:
        metadata = metadata[key]
    return metadata


def _without(*path) -> Callable[[dict], dict]:
    def edit(metadata: dict) -> dict:
        del _parent(metadata, path)[path[-1]]
        return metadata

    return edit


def _setting(value, *path) -> Callable[[dict], dict]:
    def edit(metadata: dict) -> dict:
        _parent(metadata, path)[path[-1]] = value
        return metadata

    return edit


METADATA_DAMAGE = {
    # name: (edit of the parsed metadata, returning an object or the text to write; what the error must say)
    "truncated": (lambda metadata: json.dumps(metadata, indent=2)[:1000], "corrupted metadata, not valid JSON"),
    "not-an-object": (lambda metadata: [metadata], "expected a JSON object, got array"),
    "other-format": (_setting("tflite-bundle", "format"), "not a keras-s2s-export v1 metadata file"),
    "newer-format-version": (_setting(2, "format_version"), "not a keras-s2s-export v1 metadata file"),
    "no-graphs": (_without("graphs"), "missing key 'graphs'"),
    "no-decoding": (_without("decoding"), "missing key 'decoding'"),
    "no-decoder-onnx": (_without("graphs", "decoder", "onnx"), "missing key 'graphs.decoder.onnx'"),
    "max-decode-length-not-a-number": (_setting("x", "max_decode_length"),
                                       "'max_decode_length' must be a positive integer, got string \"x\""),
    "shape-not-a-list": (_setting("[?, ?]", "graphs", "decoder", "inputs", 0, "shape"),
                         "'graphs.decoder.inputs[0].shape' must be a list of sizes"),
    "unknown-tokenizer": (_setting("sentence", "text", "source", "level"), "'text.source.level' must be one of 'char', 'word'"),
    "logits-output-not-a-tensor": (_setting("probabilities", "decoding", "logits_output"),
                                   "'decoding.logits_output' is 'probabilities', which is not one of the decoder outputs"),
    "vocabulary-outside-the-export": (_setting("../../etc/passwd", "vocabularies", "source"),
                                      "'vocabularies.source' must be a relative path inside the export"),
    "graphs-of-another-version": (_setting("encoder/7", "graphs", "encoder", "savedmodel"),
                                  "'graphs.encoder.savedmodel' is 'encoder/7' but 'version' is 1"),
    "well-formed-edit": (_setting(3, "max_decode_length"), "metadata checksum mismatch"),
    "no-checksum": (_without("metadata_sha256"), "no 'metadata_sha256'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(METADATA_DAMAGE))
def test_damaged_metadata_is_refused_with_the_file_and_the_problem_named(exported, tmp_path, damage):
    export_dir = Path(shutil.copytree(exported[OLD][1], tmp_path / "export"))
    layout = ExportLayout(export_dir)
    edit, problem = METADATA_DAMAGE[damage]
    damaged = edit(json.loads(layout.metadata.read_text(encoding="utf-8")))
    layout.metadata.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged, indent=2), encoding="utf-8")
    for runtime in RUNTIMES:
        with pytest.raises(ExportError) as raised:
            load_translator(export_dir, runtime)
        assert str(layout.metadata) in str(raised.value) and problem in str(raised.value)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("side, graph", [("source", "encoder"), ("target", "decoder")])
def test_a_vocabulary_that_does_not_fit_the_graphs_is_refused_even_with_consistent_checksums(
    exported, tmp_path, runtime, side, graph
):
    export_dir = Path(shutil.copytree(exported[OLD][1], tmp_path / "export"))
    layout = ExportLayout(export_dir)
    metadata = layout.read_metadata()
    ids = metadata["graphs"][graph]["inputs"][0]  # source_ids / token_ids
    vocab_file = getattr(layout, f"{side}_vocab")
    with open(vocab_file, "a", encoding="utf-8") as vocab:
        vocab.write("one-token-too-many\n")
    metadata["files"][layout.relative(vocab_file)] = sha256_of(vocab_file)
    layout.write_metadata(metadata)  # re-signed: only the size check can tell
    size = ids["id_range"][1]
    with pytest.raises(ExportError, match=rf"the {side} vocabulary has {size + 1} tokens "
                                          rf"but input '{ids['name']}' expects ids below {size}"):
        load_translator(export_dir, runtime)


# --- config ranges ----------------------------------------------------------------------------
def _field_type(name: str) -> type:
    hint = typing.get_type_hints(Seq2SeqConfig)[name]
    (base,) = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return base


def _range_cases():
    """For each bound of each range: the bound itself (accepted) and the nearest value of the
    field's type beyond it (rejected)."""
    for name, (low, high) in sorted(_RANGES.items()):
        for bound, outward in ((low, -math.inf), (high, math.inf)):
            if bound is None:
                continue
            if _field_type(name) is int:
                inside, outside = int(bound), int(bound) + (1 if outward > 0 else -1)
            else:
                inside, outside = float(bound), math.nextafter(float(bound), outward)
            yield pytest.param(name, inside, True, id=f"{name}={inside!r}-accepted")
            yield pytest.param(name, outside, False, id=f"{name}={outside!r}-rejected")


@pytest.mark.parametrize("name, value, accepted", list(_range_cases()))
def test_every_config_range_accepts_its_bounds_and_rejects_just_beyond(name, value, accepted):
    if accepted:
        assert getattr(Seq2SeqConfig(dataset="toy", **{name: value}), name) == value
    else:
        with pytest.raises(ConfigError, match=rf"config field '{name}': expected a value in .*got {re.escape(repr(value))}"):
            Seq2SeqConfig(dataset="toy", **{name: value})

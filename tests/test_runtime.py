"""resolve_runtime decides, from file names alone, which runtime serves a path (no TensorFlow);
importing the package, its CLI and its runtimes loads no TensorFlow either."""

import hashlib
import re
import subprocess
import sys

import pytest

from keras_s2s.errors import KerasS2SError
from keras_s2s.runtime import resolve_runtime
from keras_s2s.runtime.artifact import sha256_of


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text("{}", encoding="utf-8")
    (path / "model.keras").write_bytes(b"")
    return path


@pytest.fixture
def export_dir(tmp_path):
    path = tmp_path / "export"
    (path / "assets").mkdir(parents=True)
    return path


@pytest.mark.parametrize("runtime", [None, "keras"])
def test_a_run_directory_runs_with_keras(run_dir, runtime):
    assert resolve_runtime(run_dir, runtime) == "keras"


@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_a_run_directory_with_an_export_runtime_says_to_export_first(run_dir, runtime):
    expected = f"is a training run directory.*keras-s2s export {re.escape(str(run_dir))}.*--runtime {runtime}"
    with pytest.raises(KerasS2SError, match=expected):
        resolve_runtime(run_dir, runtime)


@pytest.mark.parametrize(("runtime", "expected"), [(None, "onnx"), ("onnx", "onnx"), ("savedmodel", "savedmodel")])
def test_an_export_directory_runs_with_onnx_by_default(export_dir, runtime, expected):
    assert resolve_runtime(export_dir, runtime) == expected


def test_an_export_directory_with_the_keras_runtime_is_refused(export_dir):
    with pytest.raises(KerasS2SError, match="is an export directory: it runs with --runtime onnx or savedmodel"):
        resolve_runtime(export_dir, "keras")


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "missing-dir"])
def test_a_path_that_is_neither_is_named(tmp_path, exists):
    path = tmp_path / "nothing"
    if exists:
        path.mkdir()
    with pytest.raises(KerasS2SError, match="is neither a training run directory"):
        resolve_runtime(path)


def test_sha256_of_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 5000)
    assert sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_importing_the_package_and_the_cli_imports_neither_tensorflow_nor_keras():
    script = (
        "import sys, keras_s2s, keras_s2s.cli, keras_s2s.runtime\n"
        "from keras_s2s import Seq2SeqConfig, Vocabulary, load_translator, greedy_decode\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text', 'tf2onnx') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

"""Shared fixtures and paths: files written to tmp_path, the shipped configs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import contextlib  # noqa: E402
import fcntl  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "pipelines" / "configs"
TOY_CONFIG = CONFIG_DIR / "toy.json"
TOY_ATTENTION_CONFIG = CONFIG_DIR / "toy_attention.json"


@pytest.fixture
def write_bytes(tmp_path):
    """write_bytes(b"...", name="data.tsv") -> path of a file holding exactly those bytes."""

    def write(content: bytes, name: str = "data.tsv") -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return write


@pytest.fixture
def write_text(write_bytes):
    """write_text("src\\ttgt\\n", name=...) -> path of the UTF-8 file (no newline translation)."""

    def write(content: str, name: str = "data.tsv") -> Path:
        return write_bytes(content.encode("utf-8"), name)

    return write



def make_untrained_run(directory: Path, cell: str, num_layers: int, **fields) -> Path:
    """A run directory with a freshly initialised (untrained) model and toy vocabularies;
    ``fields``: more config fields (reverse_source, bidirectional, attention...)."""
    import keras

    from keras_s2s.config import Seq2SeqConfig
    from keras_s2s.datasets import toy_pairs
    from keras_s2s.models import build_seq2seq
    from keras_s2s.run_dir import RunDir
    from keras_s2s.vocab import Vocabulary, count_tokens

    keras.utils.set_random_seed(0)
    defaults = dict(dataset="toy", source_tokenizer="word", embedding_size=8, hidden_size=16,
                    max_source_length=10, max_target_length=10)
    config = Seq2SeqConfig(cell=cell, num_layers=num_layers, **{**defaults, **fields})
    pairs = toy_pairs()
    source_vocab = Vocabulary.build(count_tokens(config.source_spec().tokenize(s) for s, _ in pairs))
    target_vocab = Vocabulary.build(count_tokens(config.target_spec().tokenize(t) for _, t in pairs))
    run = RunDir(directory)
    directory.mkdir(parents=True)
    config.to_json(run.config)
    source_vocab.save(run.source_vocab)
    target_vocab.save(run.target_vocab)
    model = build_seq2seq(config, len(source_vocab), len(target_vocab))
    model.trainer.save(run.model)
    return directory


def _train_with_the_cli(config: Path, run_dir: Path):
    import keras_s2s.training  # noqa: F401  imported before the redirect, so a default bound to the old stdout shows
    from keras_s2s.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "--config", str(config), "--out", str(run_dir)])
    return run_dir, code, stdout.getvalue()


def made_once(tmp_path_factory, name: str, make: Callable[[Path], list]) -> list:
    """``make(directory)``'s JSON-able result, made once per test session even when pytest-xdist
    runs it in several worker processes (`make test`): the first worker to ask makes it under a
    file lock in the session's shared temporary directory, the others wait and read the result.
    Whatever ``make`` writes into ``directory`` is then shared: read it, copy it to change it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    directory, result = shared / f"made-once-{name}", shared / f"made-once-{name}.json"
    with open(shared / f"made-once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            if directory.exists():  # a worker failed half-way: start again
                import shutil

                shutil.rmtree(directory)
            directory.mkdir()
            result.write_text(json.dumps(make(directory)), encoding="utf-8")
        return json.loads(result.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def trained_toy(tmp_path_factory):
    """(run directory, exit code, captured stdout) of one `keras-s2s train` on the toy config,
    shared by every test that needs a trained model (it takes 20-30 s)."""
    run_dir, code, output = made_once(
        tmp_path_factory, "toy", lambda d: [str(x) for x in _train_with_the_cli(TOY_CONFIG, d / "run")])
    return Path(run_dir), int(code), output


@pytest.fixture(scope="session")
def trained_toy_attention_run(tmp_path_factory):
    """The run directory of the toy config with a bidirectional encoder and Bahdanau attention."""
    run_dir, code, output = made_once(
        tmp_path_factory, "toy_attention",
        lambda d: [str(x) for x in _train_with_the_cli(TOY_ATTENTION_CONFIG, d / "run")])
    assert int(code) == 0, f"toy attention training failed:\n{output[-2000:]}"
    return Path(run_dir)


@pytest.fixture
def trained_toy_run(trained_toy):
    run_dir, code, output = trained_toy
    assert code == 0, f"toy training failed:\n{output[-2000:]}"
    return run_dir


@pytest.fixture(scope="session")
def exported_toy(trained_toy, tmp_path_factory):
    """The toy run exported once (SavedModel + ONNX), shared by every test that only reads it
    (copy it before changing it)."""
    from keras_s2s.export import export_run

    run_dir, code, output = trained_toy
    assert code == 0, f"toy training failed:\n{output[-2000:]}"

    def export(directory: Path) -> list:
        export_run(run_dir, directory / "toy")
        return [str(directory / "toy")]

    return Path(made_once(tmp_path_factory, "toy_export", export)[0])


@pytest.fixture(scope="session")
def exported_toy_attention(trained_toy_attention_run, tmp_path_factory):
    """The toy attention run (bi-LSTM + Bahdanau) exported once; copy it before changing it."""
    from keras_s2s.export import export_run

    def export(directory: Path) -> list:
        export_run(trained_toy_attention_run, directory / "export")
        return [str(directory / "export")]

    return Path(made_once(tmp_path_factory, "toy_attention_export", export)[0])


@pytest.fixture(scope="session", params=["plain", "attention"])
def trained_toy_export(request, trained_toy):
    """(run directory, export directory) of the trained toy model: plain LSTM, or bi-LSTM + Bahdanau."""
    if request.param == "plain":
        return trained_toy[0], request.getfixturevalue("exported_toy")
    return request.getfixturevalue("trained_toy_attention_run"), request.getfixturevalue("exported_toy_attention")


# Untrained models exported once per test session (tests/test_export.py checks each against
# Keras on every runtime): every cell type at one layer or two and every encoder and attention
# kind. Each takes ~10 s to export and gets ~30 tests, so cases that add no path (a 2-layer
# LSTM or GRU without attention, a 1-layer SimpleRNN) are left out.
EXPORT_CASES = {
    "lstm-1layer": ("lstm", 1, {}),
    # A GRU under Bahdanau attention with a layer above it: its greedy ONNX graph failed to
    # convert until 2026-12-05 (tf2onnx lost the rank of the cell output in the loop).
    "gru-2layer-bahdanau": ("gru", 2, {"attention": "bahdanau"}),
    "rnn-2layer": ("rnn", 2, {}),
    "bi-lstm-bahdanau": ("lstm", 1, {"bidirectional": True, "attention": "bahdanau"}),
    "bi-lstm-luong": ("lstm", 1, {"bidirectional": True, "attention": "luong"}),
    "bi-gru-2layer-luong": ("gru", 2, {"bidirectional": True, "attention": "luong"}),
    "bi-lstm-2layer-luong-dot-summed": (
        "lstm", 2, {"bidirectional": True, "attention": "luong", "attention_score": "dot", "encoder_merge": "sum"},
    ),
}


@pytest.fixture(scope="session")
def export_case(tmp_path_factory):
    """export_case(name) -> (run_dir, export_dir) of EXPORT_CASES[name], exported once per test
    session (shared by the test files and pytest-xdist workers that ask for it). Read them;
    tests that change a run or an export work on a copy."""
    from keras_s2s.export import export_run

    def export(name: str) -> tuple[Path, Path]:
        def make(directory: Path) -> list:
            cell, layers, fields = EXPORT_CASES[name]
            run_dir = make_untrained_run(directory / "run", cell, layers, **fields)
            export_run(run_dir, directory / "export")
            return [str(run_dir), str(directory / "export")]

        run_dir, export_dir = made_once(tmp_path_factory, f"export-{name}", make)
        return Path(run_dir), Path(export_dir)

    return export

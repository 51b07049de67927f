"""Shared fixtures: small files written to tmp_path, the repository root, text specs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "pipelines" / "configs"
TOY_CONFIG = CONFIG_DIR / "toy.json"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


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


@pytest.fixture
def word_spec():
    from keras_s2s.tokenization import TextSpec

    return TextSpec("word", "NFKC", False)


@pytest.fixture
def char_spec():
    from keras_s2s.tokenization import TextSpec

    return TextSpec("char", "NFKC", False)

"""The scripts in pipelines/ are self-contained: a copy of train.py runs from another directory on
the installed library, an edit to the copy takes effect (its own code runs, not the CLI's), and
neither the library nor any script imports pipelines/ or the CLI.
"""

import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TOY_CONFIG

slow = pytest.mark.slow
PIPELINES = REPO_ROOT / "pipelines"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs ``script`` with this interpreter from its own directory."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, script.name, *args], cwd=script.parent, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def copied_train_script(tmp_path):
    """pipelines/train.py copied alone into an empty directory outside the repository."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Path(shutil.copy(PIPELINES / "train.py", elsewhere / "my_train.py"))


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "keras_s2s").rglob("*.py")), ids=lambda p: p.name)
def test_the_library_never_imports_the_scripts(path):
    assert not {m for m in imported_modules(path) if m.split(".")[0] == "pipelines"}


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.py")), ids=lambda p: p.name)
def test_scripts_import_only_the_library_not_the_cli_or_each_other(path):
    modules = imported_modules(path)
    assert "keras_s2s.cli" not in modules
    assert not {m for m in modules if m.split(".")[0] == "pipelines"}


def test_pipelines_train_help_runs_as_a_module():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--help"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--out" in result.stdout and "--overwrite" in result.stdout


def test_a_copied_train_script_reports_a_bad_config_in_one_line(copied_train_script):
    result = run_script(copied_train_script, "--config", "missing.json", "--out", "run")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "error: config file not found" in result.stderr
    assert not (copied_train_script.parent / "run").exists()


def test_a_copied_train_script_checks_tf_config_for_multi_worker_before_tensorflow_loads(copied_train_script):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": '{"cluster": {}}'}
    script = ("import runpy, sys; sys.argv = sys.argv[1:]\n"
              "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
              "finally:\n    print('tensorflow' in sys.modules)")
    result = subprocess.run(
        [sys.executable, "-c", script, copied_train_script.name, "--config", str(TOY_CONFIG), "--out", "run",
         "--strategy", "multi-worker"],
        cwd=copied_train_script.parent, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("my_train.py: error: TF_CONFIG 'cluster' must map job names"), result.stderr
    assert result.stdout.strip() == "False"  # refused before TensorFlow was imported
    assert not (copied_train_script.parent / "run").exists()


@slow
def test_a_copied_train_script_writes_a_finished_run_from_another_directory(copied_train_script):
    result = run_script(copied_train_script, "--config", str(TOY_CONFIG), "--out", "run", "--epochs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    run = copied_train_script.parent / "run"
    for name in ("config.json", "source_vocab.txt", "target_vocab.txt", "model.keras", "history.csv",
                 "training_summary.json", "learning_curves.png"):
        assert (run / name).is_file(), name
    assert (run / "learning_curves.png").read_bytes().startswith(PNG_SIGNATURE)
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    with open(run / "history.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    assert "[done] best epoch" in result.stdout


@slow
def test_an_edit_to_a_copied_train_script_takes_effect(copied_train_script):
    source = copied_train_script.read_text(encoding="utf-8")
    anchor = re.search(r"^( *)config = Seq2SeqConfig\.from_json\(args\.config\)\n", source, re.MULTILINE)
    assert anchor, "the script no longer reads its config with Seq2SeqConfig.from_json(args.config)"
    indent = anchor.group(1)
    edit = f"{indent}config = config.replace(epochs=1)\n{indent}print('edited copy running')\n"
    copied_train_script.write_text(source[: anchor.end()] + edit + source[anchor.end():], encoding="utf-8")

    result = run_script(copied_train_script, "--config", str(TOY_CONFIG), "--out", "run")  # toy.json: 60 epochs
    assert result.returncode == 0, result.stderr[-3000:]
    assert "edited copy running" in result.stdout
    summary = json.loads((copied_train_script.parent / "run" / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["epochs_run"] == 1

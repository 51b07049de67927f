"""`keras-s2s train --resume`: a run killed (SIGKILL) mid-epoch or while saving its final model
continues from its last completed epoch, with its history, best checkpoint, optimizer state and
callback counters as they were; a changed config or data file is refused by name."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import TOY_CONFIG
from keras_s2s.config import Seq2SeqConfig
from keras_s2s.errors import KerasS2SError
from keras_s2s.resume import EpochBackup, ResumeError, latest_backup, write_backup
from keras_s2s.run_dir import RunDir

EPOCHS = 6
KILLED_IN_EPOCH = 3  # 1-based: two epochs complete, the third is running


def history_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def run_state(run_dir: Path) -> dict:
    return json.loads((run_dir / "run_state.json").read_text())


def start_training(run_dir: Path, log: Path, *, config: Path, marker: Path, hook: str) -> subprocess.Popen:
    """``keras-s2s train --config CONFIG --out RUN_DIR --resume`` in a subprocess, with ``hook``
    (Python run before the CLI) slowing it down at the point to be killed and touching ``marker``
    when that point is reached."""
    script = textwrap.dedent(
        """
        import os, runpy, sys, time
        from pathlib import Path
        marker = Path(sys.argv[3])
        """
    ) + textwrap.dedent(hook) + textwrap.dedent(
        """
        sys.argv = ["keras-s2s", "train", "--config", sys.argv[1], "--out", sys.argv[2], "--resume"]
        runpy.run_module("keras_s2s.cli", run_name="__main__")
        """
    )
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", script, str(config), str(run_dir), str(marker)], stdout=output, stderr=output
        )


def kill_when(process: subprocess.Popen, marker: Path, log: Path) -> None:
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert process.poll() is None, f"training ended (exit {process.returncode}) first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the kill point was not reached in 600 s"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


SLOW_FROM_EPOCH = """
import keras
import keras_s2s.training as training

class SlowFromEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch + 1 == {epoch} and batch == 1:
            marker.touch()
            time.sleep(60)  # mid-epoch: killed here

callbacks = training.training_callbacks
training.training_callbacks = lambda **kwargs: [*callbacks(**kwargs), SlowFromEpoch()]
"""

SLOW_FINAL_SAVE = """
import keras_s2s.resume as resume

rename = os.replace
def slow_replace(source, target):
    if str(source).endswith(".partial.keras"):  # the final model is written, not yet in place
        marker.touch()
        time.sleep(60)
    return rename(source, target)
resume.os.replace = slow_replace
"""


@pytest.fixture(scope="module")
def toy_config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "toy.json"
    config = Seq2SeqConfig.from_json(TOY_CONFIG).replace(embedding_size=8, hidden_size=16, epochs=EPOCHS)
    config.to_json(path)
    return path


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_after_its_last_completed_epoch_and_its_loss_continues(
    toy_config_file, tmp_path, capsys
):
    from keras_s2s.cli import main

    run_dir, marker, log = tmp_path / "run", tmp_path / "killed", tmp_path / "train.log"
    process = start_training(run_dir, log, config=toy_config_file, marker=marker,
                             hook=SLOW_FROM_EPOCH.format(epoch=KILLED_IN_EPOCH))
    kill_when(process, marker, log)
    before = history_rows(run_dir)
    assert [int(row["epoch"]) for row in before] == [0, 1], "killed in the third epoch"
    assert not RunDir.is_run_dir(run_dir), "a killed run must not look finished"

    assert main(["train", "--config", str(toy_config_file), "--out", str(run_dir), "--resume"]) == 0
    assert "continuing after epoch 2 of 6" in capsys.readouterr().out

    after = history_rows(run_dir)
    assert [int(row["epoch"]) for row in after] == list(range(EPOCHS)), "every epoch once, none twice or lost"
    assert after[:2] == before, "the completed epochs' rows are kept as they were"
    losses = [float(row["loss"]) for row in after]
    # From scratch the third epoch would start near the first epoch's loss; resumed, it goes on
    # from the second (weights and Adam state restored).
    assert losses[2] < losses[1] + 0.1 * (losses[0] - losses[1])
    summary = json.loads((run_dir / "training_summary.json").read_text())
    assert summary["epochs_run"] == EPOCHS
    val_losses = [float(row["val_loss"]) for row in after]
    assert summary["best_epoch"] == 1 + int(np.argmin(val_losses))
    assert run_state(run_dir)["stage"] == "finished"
    assert not (run_dir / "backup").exists(), "a finished run keeps no backup"
    assert RunDir.is_run_dir(run_dir)


@pytest.mark.slow
def test_a_run_killed_while_saving_its_final_model_resumes_by_saving_it(toy_config_file, tmp_path, capsys):
    from keras_s2s.cli import main
    from keras_s2s.runtime import load_translator

    run_dir, marker, log = tmp_path / "run", tmp_path / "killed", tmp_path / "train.log"
    process = start_training(run_dir, log, config=toy_config_file, marker=marker, hook=SLOW_FINAL_SAVE)
    kill_when(process, marker, log)
    history = history_rows(run_dir)
    assert len(history) == EPOCHS and run_state(run_dir)["stage"] == "fit_done"
    assert not (run_dir / "model.keras").exists()

    assert main(["train", "--config", str(toy_config_file), "--out", str(run_dir), "--resume"]) == 0
    assert "training had ended; saving the final model" in capsys.readouterr().out
    assert history_rows(run_dir) == history, "no epoch is trained again"
    assert run_state(run_dir)["stage"] == "finished"
    assert load_translator(run_dir).translate(["a b"])  # the saved model loads and translates


class CrashAtEpoch(keras.callbacks.Callback):
    """Raises when ``epoch`` (0-based) begins: a crash (an exception), where the kills above are signals."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"crash at epoch {epoch}")


@pytest.mark.slow
def test_a_resumed_run_keeps_its_plateau_counters_and_learning_rate_like_an_uninterrupted_one(tmp_path, monkeypatch):
    from keras_s2s import training

    # A tiny learning rate is a val_loss plateau: the rate halves after every epoch from the second on.
    config = Seq2SeqConfig.from_json(TOY_CONFIG).replace(
        embedding_size=8, hidden_size=16, epochs=4, learning_rate=1e-7, reduce_lr_patience=1
    )
    callbacks = training.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(training, "training_callbacks", lambda **kwargs: [*callbacks(**kwargs), CrashAtEpoch(2)])
        with pytest.raises(RuntimeError, match="crash at epoch 2"):
            training.train_model(config, tmp_path / "run", resume=True, verbose=0)  # --resume on a new directory starts it
    assert len(history_rows(tmp_path / "run")) == 2

    training.train_model(config, tmp_path / "run", resume=True, verbose=0)
    rates = [float(row["learning_rate"]) for row in history_rows(tmp_path / "run")]
    # Without the restored counters the resumed epoch would count as a new best and not halve.
    assert rates == pytest.approx([1e-7, 1e-7, 5e-8, 2.5e-8])


def test_a_resumed_run_decays_its_learning_rate_over_the_time_it_has_left_not_a_fresh_budget(tmp_path, monkeypatch):
    from keras_s2s import training

    config = Seq2SeqConfig.from_json(TOY_CONFIG).replace(
        embedding_size=8, hidden_size=16, epochs=4, learning_rate=1e-3, learning_rate_decay="linear_budget",
        max_train_minutes=2, early_stopping_patience=None,  # 4 epochs took 17-27 s on the slow CI VM
    )
    callbacks = training.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(training, "training_callbacks", lambda **kwargs: [*callbacks(**kwargs), CrashAtEpoch(2)])
        with pytest.raises(RuntimeError, match="crash at epoch 2"):
            training.train_model(config, tmp_path / "run", resume=True, verbose=0)

    training.train_model(config, tmp_path / "run", resume=True, verbose=0)
    rates = [float(row["learning_rate"]) for row in history_rows(tmp_path / "run")]
    # A fresh budget would start the resumed epoch at ~1e-3 again, above the epoch before the crash.
    assert len(rates) == 4 and all(later < earlier for earlier, later in zip(rates, rates[1:]))


# --- what a resume refuses (no training needed: the checks come first) ----------------------
@pytest.fixture
def interrupted_tsv_run(tmp_path, monkeypatch):
    """A run of the toy data as a user's TSV file, crashed after its first epoch: (config, run_dir, tsv)."""
    from keras_s2s import training
    from keras_s2s.datasets.toy import TOY_TSV

    tsv = tmp_path / "pairs.tsv"
    tsv.write_bytes(TOY_TSV.read_bytes())
    config = Seq2SeqConfig.from_json(TOY_CONFIG).replace(
        dataset="tsv", train_file=str(tsv), embedding_size=8, hidden_size=16, epochs=3
    )
    callbacks = training.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(training, "training_callbacks", lambda **kwargs: [*callbacks(**kwargs), CrashAtEpoch(1)])
        with pytest.raises(RuntimeError):
            training.train_model(config, tmp_path / "run", verbose=0)
    return config, tmp_path / "run", tsv


@pytest.mark.slow
def test_resuming_with_a_changed_config_or_data_file_is_refused_naming_the_difference(interrupted_tsv_run):
    from keras_s2s.training import train_model

    config, run_dir, tsv = interrupted_tsv_run
    with pytest.raises(ResumeError, match=r"config field 'hidden_size' is 32 now but 16 in the run"):
        train_model(config.replace(hidden_size=32), run_dir, resume=True)
    with tsv.open("a") as handle:
        handle.write("new source\tnew target\n")
    with pytest.raises(ResumeError, match=rf"train_file file {tsv} changed since the run started"):
        train_model(config, run_dir, resume=True)


@pytest.mark.slow
def test_without_resume_the_error_says_how_to_continue_and_a_finished_run_is_not_resumed(interrupted_tsv_run):
    from keras_s2s.training import train_model

    config, run_dir, _ = interrupted_tsv_run
    with pytest.raises(KerasS2SError, match="pass --resume to continue its training from the last completed epoch"):
        train_model(config, run_dir)
    with pytest.raises(KerasS2SError, match="exclude each other"):
        train_model(config, run_dir, resume=True, overwrite=True)
    train_model(config, run_dir, resume=True, verbose=0)
    assert [int(row["epoch"]) for row in history_rows(run_dir)] == [0, 1, 2]
    with pytest.raises(ResumeError, match="its training has finished; pass --overwrite"):
        train_model(config, run_dir, resume=True)


def test_resume_refuses_a_directory_written_before_run_states_existed(tmp_path):
    from keras_s2s.training import train_model

    run_dir = tmp_path / "old-run"
    run_dir.mkdir()
    Seq2SeqConfig.from_json(TOY_CONFIG).to_json(run_dir / "config.json")
    with pytest.raises(ResumeError, match="it has no run_state.json"):
        train_model(Seq2SeqConfig.from_json(TOY_CONFIG), run_dir, resume=True)


# --- the backup itself ---------------------------------------------------------------------
@pytest.fixture
def trainer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(), loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    return model


def backup_at(backup_dir: Path, trainer, epochs_completed: int, tmp_path: Path) -> None:
    write_backup(backup_dir, trainer=trainer, checkpoint=tmp_path / "none.h5", history=tmp_path / "none.csv",
                 epochs_completed=epochs_completed, stop_training=False, counters={})


@pytest.mark.parametrize("interrupted", ["after-moving-the-old-one-out", "before-the-swap", "while-writing"])
def test_after_a_kill_at_any_point_of_a_backup_the_newest_complete_one_is_used(trainer, tmp_path, interrupted):
    backup_dir = tmp_path / "backup"
    backup_at(backup_dir, trainer, 1, tmp_path)
    incoming, previous = tmp_path / "backup.incoming", tmp_path / "backup.previous"
    backup_at(incoming, trainer, 2, tmp_path)  # a complete backup of epoch 2 beside the live one
    if interrupted == "after-moving-the-old-one-out":
        os.rename(backup_dir, previous)
        expected = 2
    elif interrupted == "before-the-swap":
        expected = 2
    else:
        (incoming / "state.json").unlink()  # state.json is written last: this backup is incomplete
        expected = 1
    assert latest_backup(backup_dir).epochs_completed == expected


def test_a_backup_restores_the_optimizer_state_with_the_weights(trainer, tmp_path):
    backup_at(tmp_path / "backup", trainer, 1, tmp_path)
    fresh = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    fresh.compile(keras.optimizers.Adam(), loss="mse")
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(latest_backup(tmp_path / "backup").trainer_weights)
    assert int(fresh.optimizer.iterations) == int(trainer.optimizer.iterations) == 1
    for restored, original in zip(fresh.optimizer.variables, trainer.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(original))


def test_callback_counters_survive_a_backup_including_an_infinite_best(trainer, tmp_path):
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), save_best_only=True,
                                                 save_weights_only=True)
    stopping = keras.callbacks.EarlyStopping(patience=3)
    stopping.best, stopping.wait = 0.5, 2
    checkpoint.best = float("inf")  # JSON has no infinity: it must still come back as a float
    backup = EpochBackup(tmp_path / "backup", checkpoint_path=tmp_path / "best.weights.h5",
                         history_path=tmp_path / "history.csv",
                         named_callbacks={"ModelCheckpoint": checkpoint, "EarlyStopping": stopping})
    backup.set_model(trainer)
    backup.on_epoch_end(0)
    restored_checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "x.weights.h5"), save_weights_only=True)
    restored_stopping = keras.callbacks.EarlyStopping(patience=3)
    restored_stopping.on_train_begin()  # resets its counters, as fit() does
    EpochBackup(tmp_path / "backup", checkpoint_path=tmp_path / "best.weights.h5", history_path=tmp_path / "h.csv",
                named_callbacks={"ModelCheckpoint": restored_checkpoint, "EarlyStopping": restored_stopping},
                restore=latest_backup(tmp_path / "backup")).on_train_begin()
    assert (restored_stopping.best, restored_stopping.wait) == (0.5, 2)
    assert restored_checkpoint.best == float("inf")

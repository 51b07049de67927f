"""`keras-s2s train --strategy`: TF_CONFIG checks, the Keras multi-worker shim, and real
two-worker clusters on 127.0.0.1 (one process per worker, as TensorFlow's collective ops need).

Tolerance of the two-worker test: every epoch's loss and val_loss within 1e-4 (relative) of a
single-worker run with the same global batch. Each worker computes its slice's share of the
batch's token-mean loss (keras_s2s.losses), so only the order of float additions differs:
measured 1.3e-7 at most (2026-11-22). Averaging the workers' own means instead (Keras' scaling
for the losses it reduces itself) differs by 3e-4 to 2e-3 per epoch here, so the tolerance catches it.
"""

import contextlib
import csv
import inspect
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TOY_CONFIG
from keras_s2s.cli import main
from keras_s2s.cluster import ClusterTask, read_tf_config
from keras_s2s.errors import KerasS2SError

WORKER_TIMEOUT = 300  # seconds; a cluster that hangs fails the test instead of the suite
LOSS_TOLERANCE = 1e-4
EPOCHS = 2


# --- helpers ---------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO_ROOT), **extra}


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as output:
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)


def wait_all(processes: list[subprocess.Popen], logs: list[Path]) -> list[tuple[int, str]]:
    """(exit code, output) of each process; all are killed if one runs past WORKER_TIMEOUT."""
    try:
        for process in processes:
            process.wait(timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.wait()
        pytest.fail("a worker ran past the timeout:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
    return [(process.returncode, log.read_text(errors="replace")) for process, log in zip(processes, logs)]


def start_cluster(commands: list[list[str]], tmp_path: Path, name: str) -> tuple[list[subprocess.Popen], list[Path]]:
    """One process per command, worker i with TF_CONFIG task i of a loopback cluster and its
    own TMPDIR (tmp_path/NAME-tmp-i)."""
    ports = free_ports(len(commands))
    processes, logs = [], []
    for index, command in enumerate(commands):
        tmpdir = tmp_path / f"{name}-tmp-{index}"
        tmpdir.mkdir()
        logs.append(tmp_path / f"{name}-{index}.log")
        processes.append(start(command, subprocess_env(TF_CONFIG=tf_config(ports, index), TMPDIR=str(tmpdir)), logs[-1]))
    return processes, logs


def history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


# --- TF_CONFIG and strategy names (no TensorFlow cluster) -------------------------------
@pytest.mark.parametrize("value, expected", [
    (None, "TF_CONFIG environment variable, which is not set"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "'cluster' must map job names"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "'cluster' must map job names"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "job(s) ['ps']"),
    ('{"cluster": {"worker": ["a:1"]}}', "'task' must be"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}', "'task' must be"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "index 2 is out of range"),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}', "2 chiefs"),
])
def test_bad_tf_config_is_a_clear_error(value, expected):
    environ = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(KerasS2SError, match="TF_CONFIG|chiefs") as error:
        read_tf_config(environ)
    assert expected in str(error.value)


def test_chief_is_the_chief_task_or_worker_0_without_one():
    two_workers = {"worker": ["a:1", "b:1"]}
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert ClusterTask(two_workers, "worker", 0).is_chief
    assert not ClusterTask(two_workers, "worker", 1).is_chief
    assert ClusterTask(with_chief, "chief", 0).is_chief
    assert not ClusterTask(with_chief, "worker", 0).is_chief
    config = read_tf_config({"TF_CONFIG": tf_config([1, 2], 1)})
    assert (config.task_type, config.task_index, config.num_workers, config.is_chief) == ("worker", 1, 2, False)


def test_cli_multi_worker_without_tf_config_fails_before_loading_tensorflow(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["train", "--config", str(TOY_CONFIG), "--out", str(tmp_path / "run"), "--strategy", "multi-worker"])
    assert code == 1
    assert "TF_CONFIG environment variable, which is not set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_rejects_an_unknown_strategy(capsys, tmp_path):
    code = main(["train", "--config", str(TOY_CONFIG), "--out", str(tmp_path / "run"), "--strategy", "ring"])
    assert code == 2
    assert "invalid choice: 'ring'" in capsys.readouterr().err


def test_strategy_names_and_data_sharding():
    import tensorflow as tf

    from keras_s2s import distribute

    assert distribute.build_strategy("default") is None and distribute.build_strategy(None) is None
    with pytest.raises(KerasS2SError, match="expected one of default, mirrored, multi-worker"):
        distribute.build_strategy("ring")
    mirrored = distribute.build_strategy("mirrored")
    assert distribute.is_chief(mirrored) and distribute.is_chief(None) and not distribute.is_multi_worker(mirrored)
    sharded = distribute.shard_by_data(tf.data.Dataset.range(4).batch(2))
    assert sharded.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_a_dead_peer_is_named_from_the_tensorflow_error():
    from keras_s2s.distribute import failed_peers

    health_check = ("{{function_node __wrapped__CollectiveBcastSend_device_/job:worker/replica:0/task:0/device:CPU:0}} "
                    "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are "
                    "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.")
    closed = ("{{function_node __wrapped__CollectiveBcastRecv_device_/job:worker/replica:0/task:1/device:CPU:0}} "
              "Collective ops is aborted by: Socket closed Additional GRPC error information from remote target "
              "/job:worker/replica:0/task:0 while calling /tensorflow.WorkerService/CompleteGroup")
    assert failed_peers(health_check) == "worker 1"
    assert failed_peers(closed) == "worker 0"
    assert failed_peers("Connection reset") == "another worker"


def test_shim_version_guard_and_idempotence():
    from keras.src.backend.tensorflow import trainer

    from keras_s2s import keras_multi_worker_shim as shim

    assert shim.keras_needs_shim("3.10.0") and shim.keras_needs_shim("3.15.1")
    assert not shim.keras_needs_shim("3.9.2") and not shim.keras_needs_shim("3.16.0")
    assert shim.apply()  # the installed Keras (3.15) is one the shim was checked on
    patched = (trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica)
    assert shim.apply()
    assert (trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica) == patched


# --- the shim on a tiny model, two real workers -------------------------------------------
def tiny_fit(strategy) -> dict:
    """Two epochs of a seeded two-layer regression model; its fit history."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x @ np.arange(1.0, 5.0, dtype="float32"))).batch(16)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model.fit(data, epochs=2, validation_data=data, shuffle=False, verbose=0).history


# A worker tries the fit three times: without the shim, with its first fix, with both fixes.
# Neither failure runs a collective op, so the workers stay in step from one try to the next.
TINY_FIT_WORKER = inspect.getsource(tiny_fit) + textwrap.dedent("""
    import json
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer
    from keras_s2s import keras_multi_worker_shim as shim

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    for name, patch in (("none", None), ("build", shim._patch_symbolic_build), ("both", shim._patch_reduce_per_replica)):
        if patch is not None:
            patch(trainer)
        try:
            result = {"history": tiny_fit(strategy)}
        except Exception as error:
            result = {"error": f"{type(error).__name__}: {error}"}
        print(f"RESULT {name} " + json.dumps(result), flush=True)
""")


@pytest.mark.slow
def test_keras_multi_worker_fit_needs_both_fixes_of_the_shim(tmp_path):
    """Each fix of keras_s2s.keras_multi_worker_shim is needed on this Keras (keras-team/keras#20585),
    and with both the two workers' fit equals a one-process fit. This test fails on a Keras that
    fixed the bug: the signal to delete the shim."""
    import tensorflow as tf

    outputs = wait_all(*start_cluster([[sys.executable, "-c", TINY_FIT_WORKER]] * 2, tmp_path, "tiny"))
    reference = tiny_fit(tf.distribute.get_strategy())  # meanwhile, in this process
    worker_results = []
    for code, output in outputs:
        assert code == 0, output[-3000:]
        results = dict(line.split(" ", 2)[1:] for line in output.splitlines() if line.startswith("RESULT "))
        worker_results.append({name: json.loads(result) for name, result in results.items()})
    for results in worker_results:
        assert "Attempt to convert a value (PerReplica" in results["none"]["error"]
        assert "Invalid reduction dimension 0 for input with 0 dimensions" in results["build"]["error"]
    chief, other = (results["both"]["history"] for results in worker_results)
    assert chief == other
    for key, values in reference.items():
        assert chief[key] == pytest.approx(values, rel=1e-5), key


# --- keras-s2s train --strategy multi-worker ------------------------------------------------
CRASH_AFTER_FIRST_EPOCH = textwrap.dedent("""
    import os, runpy, sys
    from keras_s2s.resume import EpochBackup

    backup = EpochBackup.on_epoch_end

    def backup_then_crash(self, epoch, logs=None):
        backup(self, epoch, logs)
        os._exit(9)  # the machine is lost right after its first epoch's backup

    EpochBackup.on_epoch_end = backup_then_crash
    sys.argv = ["keras-s2s", *sys.argv[1:]]
    runpy.run_module("keras_s2s.cli", run_name="__main__")
""")


class Crash(BaseException):
    """Stands for a lost machine in the in-process reference run (main() passes it through)."""


@pytest.mark.slow
def test_two_workers_train_and_resume_like_one_worker(tmp_path, monkeypatch):
    """Two workers on 127.0.0.1 train the toy model, all crash after epoch 1, and resume; a
    single-worker run (one replica, the same global batch and the same crash), in this process
    meanwhile, is the reference.

    The reference runs under a strategy too (``mirrored``, one CPU replica): under any strategy
    Keras draws one extra iterator from the seeded shuffle when it builds the model, so a run
    without one sees its batches one permutation earlier."""
    from keras_s2s.resume import EpochBackup

    config = tmp_path / "toy.json"  # 3 training steps of 16 pairs (8 per worker) per epoch
    config.write_text(json.dumps({**json.loads(TOY_CONFIG.read_text()), "batch_size": 16, "epochs": EPOCHS}))
    chief_dir, other_dir, single_dir = tmp_path / "chief", tmp_path / "other", tmp_path / "single"

    def train(out: Path, strategy: str, *extra: str) -> list[str]:
        return ["train", "--config", str(config), "--out", str(out), "--strategy", strategy, *extra]

    def in_process(arguments: list[str]) -> tuple[int, str]:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(arguments)
        return code, stdout.getvalue()

    # 1. A new run; every process is killed right after its first epoch's backup.
    cluster = start_cluster([[sys.executable, "-c", CRASH_AFTER_FIRST_EPOCH, *train(out, "multi-worker")]
                             for out in (chief_dir, other_dir)], tmp_path, "first")
    backup = EpochBackup.on_epoch_end

    def backup_then_crash(self, epoch, logs=None):
        backup(self, epoch, logs)
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(EpochBackup, "on_epoch_end", backup_then_crash)
        with pytest.raises(Crash):
            in_process(train(single_dir, "mirrored"))
    crashed = wait_all(*cluster)
    assert [code for code, _ in crashed] == [9, 9], "\n".join(output[-2000:] for _, output in crashed)
    assert not other_dir.exists()  # the other worker wrote only into its temporary directory
    assert len(history(chief_dir)) == len(history(single_dir)) == 1

    # 2. --resume: the other worker reads the chief's run directory (the same path: a shared filesystem).
    cluster = start_cluster([[sys.executable, "-m", "keras_s2s.cli", *train(chief_dir, "multi-worker", "--resume")]] * 2,
                            tmp_path, "resumed")
    single_code, single_output = in_process(train(single_dir, "mirrored", "--resume"))
    (chief_code, chief_output), (other_code, other_output) = wait_all(*cluster)
    for code, output in ((chief_code, chief_output), (other_code, other_output), (single_code, single_output)):
        assert code == 0, output[-3000:]
        assert f"continuing after epoch 1 of {EPOCHS}" in output
    assert "multi-worker: 2 replica(s) across 2 workers; this is worker 0, the chief" in chief_output
    assert "this is worker 1, not the chief" in other_output
    assert "global batch 16 (8 per replica)" in chief_output
    assert "mirrored: 1 replica(s) on this machine; global batch 16" in single_output
    assert _epoch_losses(chief_output) == _epoch_losses(other_output)  # all-reduced: the same on both
    assert not any((tmp_path / "resumed-tmp-1").iterdir())  # the other worker's copy is gone

    assert (chief_dir / "model.keras").is_file() and not (chief_dir / "backup").exists()
    assert json.loads((chief_dir / "run_state.json").read_text())["stage"] == "finished"
    from keras_s2s.runtime import load_translator

    # The chief's final model loads and translates as the single worker's does (a model this
    # briefly trained may well output nothing, so the check is on the greedy log-probability).
    (two,), (one,) = (load_translator(run, "keras").translate_nbest(["I go home"]) for run in (chief_dir, single_dir))
    assert (two[0].text, two[0].log_prob) == (one[0].text, pytest.approx(one[0].log_prob, rel=LOSS_TOLERANCE))

    two_workers, one_worker = history(chief_dir), history(single_dir)
    assert [row["epoch"] for row in two_workers] == [row["epoch"] for row in one_worker] == list(range(EPOCHS))
    for epoch, (two, one) in enumerate(zip(two_workers, one_worker), start=1):
        for key in ("loss", "val_loss"):
            assert two[key] == pytest.approx(one[key], rel=LOSS_TOLERANCE), (epoch, key, two[key], one[key])


def _epoch_losses(output: str) -> list[str]:
    return [line.split(" - loss: ")[1].split(" - seconds")[0] for line in output.splitlines() if " - loss: " in line]

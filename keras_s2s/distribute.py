"""Training on several devices or machines with ``tf.distribute`` (``keras-s2s train --strategy``).

- ``default``: no strategy, one device (what ``train`` does without ``--strategy``).
- ``mirrored``: ``tf.distribute.MirroredStrategy``, every GPU of this machine (or its CPU).
- ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, one process per machine,
  the cluster read from the ``TF_CONFIG`` environment variable (checked first by
  ``keras_s2s.cluster``, so a mistake is a one-line error rather than a hang).

The dataset's batch size is the global batch (``config.batch_size``), split across all
replicas. The datasets are sharded by DATA (``shard_by_data``): every worker reads the whole
file and keeps its slice of every global batch, so the batches, and the number of steps,
are those of a single-process run. Only the chief writes the run directory; every other
worker trains into a temporary directory that is removed afterwards (``worker_run_dir``).
Every worker must make the same collective calls in the same order, so anything that
decides how long training goes on is agreed on (``StopTogether``, the resume point), and a
worker whose peer died stops with an error instead of waiting (``peer_failures_reported``).
``keras_s2s.keras_multi_worker_shim`` makes Keras' ``fit`` work under the multi-worker strategy.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

import keras
import tensorflow as tf

from keras_s2s.cluster import STRATEGIES, is_chief_task, read_tf_config
from keras_s2s.errors import KerasS2SError
from keras_s2s.run_dir import RunDir


def build_strategy(name: Optional[str]) -> Optional[tf.distribute.Strategy]:
    """The strategy named ``name`` (one of ``STRATEGIES``); None for ``default`` or None."""
    if name in (None, "default"):
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name != "multi-worker":
        raise KerasS2SError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    read_tf_config()
    from keras_s2s import keras_multi_worker_shim

    keras_multi_worker_shim.apply()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise KerasS2SError(
            f"--strategy multi-worker must be set up before TensorFlow runs anything in this process ({err}); "
            "start training in a new process"
        ) from None


def resolve_strategy(strategy: str | tf.distribute.Strategy | None) -> Optional[tf.distribute.Strategy]:
    """A strategy name (``build_strategy``) or an already built strategy (the shim is applied
    for a multi-worker one)."""
    if strategy is None or isinstance(strategy, str):
        return build_strategy(strategy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from keras_s2s import keras_multi_worker_shim

        keras_multi_worker_shim.apply()
    return strategy


def is_chief(strategy: Optional[tf.distribute.Strategy]) -> bool:
    """Whether this process writes the run: always without a strategy or on one machine;
    under a multi-worker strategy, the chief task (worker 0 when the cluster has no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return is_chief_task(resolver.task_type, resolver.task_id, has_chief="chief" in resolver.cluster_spec().jobs)


def is_multi_worker(strategy: Optional[tf.distribute.Strategy]) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def supports_jit_compile(strategy: Optional[tf.distribute.Strategy]) -> bool:
    """False when the training step would need collective ops on CPU devices, which XLA
    cannot compile ("Collectives are not yet implemented for CPU devices when compiling with XLA")."""
    if strategy is None or (strategy.num_replicas_in_sync == 1 and not is_multi_worker(strategy)):
        return True
    return bool(tf.config.list_logical_devices("GPU"))


def describe(strategy: tf.distribute.Strategy, batch_size: int) -> str:
    """One line for the training log: replicas, workers, this worker's role, the batch split."""
    replicas = strategy.num_replicas_in_sync
    where = "on this machine"
    if is_multi_worker(strategy):
        resolver = strategy.cluster_resolver
        role = "the chief, writing the run" if is_chief(strategy) else "not the chief, its files are temporary"
        where = f"across {_num_workers(strategy)} workers; this is {resolver.task_type} {resolver.task_id}, {role}"
    name = "multi-worker" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else (
        "mirrored" if isinstance(strategy, tf.distribute.MirroredStrategy) else type(strategy).__name__
    )
    return f"{name}: {replicas} replica(s) {where}; global batch {batch_size} ({batch_size / replicas:g} per replica)"


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with the DATA auto-shard policy: every worker runs the whole pipeline and keeps
    its slice of each (global, length-bucketed) batch. FILE sharding would give each worker
    whole files: impossible with one training file, and with several it would give the
    workers different numbers of batches, while synchronous training needs the same count."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def gather_from_workers(strategy: tf.distribute.Strategy, values: Sequence[int]) -> list[list[int]]:
    """Every replica's ``values`` (one row per replica, in task order); a collective call that
    every worker must make, at the same point of its program."""
    local = tf.constant([list(values)], tf.int32)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: local)
    return strategy.gather(per_replica, axis=0).numpy().tolist()


class StopTogether(keras.callbacks.Callback):
    """Stops every worker when any worker's callbacks stop training (a worker that ran on
    alone would wait forever in its next all-reduce). Early stopping and learning-rate
    plateaus read the val_loss all workers share, but the wall-clock budget reads each
    worker's own clock. Put it after every callback that may stop training."""

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        super().__init__()
        self.strategy = strategy

    def on_epoch_end(self, epoch, logs=None):
        stops = gather_from_workers(self.strategy, [int(bool(self.model.stop_training))])
        self.model.stop_training = any(row[0] for row in stops)


@contextlib.contextmanager
def worker_run_dir(out_dir: str | Path, strategy: Optional[tf.distribute.Strategy], *, resume: bool) -> Iterator[Path]:
    """The run directory this process writes: ``out_dir`` on the chief; on any other worker a
    temporary directory, removed on exit (the Keras multi-worker recipe: every worker runs
    the same callbacks, only the chief's files are kept).

    With ``resume`` a non-chief worker starts from a copy of ``out_dir``, the chief's run (so
    ``out_dir`` must be on a filesystem all workers share), and the workers check that they
    all continue from the same point before any of them goes on."""
    out_dir = Path(out_dir)
    chief = is_chief(strategy)
    with contextlib.ExitStack() as stack:
        path = out_dir
        if not chief:
            temporary = Path(tempfile.mkdtemp(prefix="keras-s2s-worker-"))
            stack.callback(shutil.rmtree, temporary, ignore_errors=True)
            path = temporary / "run"
            if resume and out_dir.is_dir() and any(out_dir.iterdir()):
                shutil.copytree(out_dir, path)
        if resume and is_multi_worker(strategy):
            # Also a barrier: the chief changes nothing in out_dir before every worker has copied it.
            _check_same_resume_point(strategy, path, out_dir)
        yield path


def _check_same_resume_point(strategy: tf.distribute.Strategy, path: Path, out_dir: Path) -> None:
    points = gather_from_workers(strategy, _resume_point(path))
    if all(point == points[0] for point in points):
        return
    per_worker = max(1, len(points) // _num_workers(strategy))
    seen = {f"worker {replica // per_worker}: {_describe_point(point)}": None for replica, point in enumerate(points)}
    raise KerasS2SError(
        f"--resume: the workers found different runs to continue in {out_dir} ({'; '.join(seen)}); every worker "
        "reads the chief's run directory, so put --out on a filesystem all workers share"
    )


def _resume_point(path: Path) -> list[int]:
    """[stage index (-1: no run, -2: unreadable run state), epochs completed] of the run in ``path``."""
    from keras_s2s.resume import STAGES, ResumeError, RunState, latest_backup

    run = RunDir(path)
    if not run.run_state.is_file():
        return [-1, 0]
    try:
        stage = STAGES.index(RunState.load(run.run_state).stage)
    except ResumeError:
        return [-2, 0]
    backup = latest_backup(run.backup_dir)
    return [stage, backup.epochs_completed if backup is not None else 0]


def _describe_point(point: list[int]) -> str:
    from keras_s2s.resume import STAGES

    stage, epochs = point
    if stage < 0:
        return "no run" if stage == -1 else "an unreadable run state"
    return f"a run at stage '{STAGES[stage]}' after {epochs} epoch(s)"


def _num_workers(strategy: tf.distribute.Strategy) -> int:
    return sum(len(tasks) for tasks in strategy.cluster_resolver.cluster_spec().as_dict().values())


@contextlib.contextmanager
def peer_failures_reported(strategy: Optional[tf.distribute.Strategy]) -> Iterator[None]:
    """Turns the error a worker gets when a peer died or cannot be reached (TensorFlow's
    health check aborts the collective ops it waits in) into a one-line KerasS2SError."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError) as err:
        if not is_multi_worker(strategy):
            raise
        who = failed_peers(str(err.message))
        raise KerasS2SError(
            f"training stopped: {who} of the cluster failed or cannot be reached (TensorFlow: "
            f"{type(err).__name__}); its log says why"
        ) from None


def failed_peers(message: str) -> str:
    """The tasks a TensorFlow collective-op error names as failed ("worker 1"), or "another worker"."""
    message = " ".join(message.split())
    # "The following tasks are unhealthy ...: /job:worker/replica:0/task:1" (health check) or
    # "... from remote target /job:worker/replica:0/task:0 ..." (a closed connection)
    named = re.search(r"(?:unhealthy|remote target)[^/]*((?:/job:\w+/replica:\d+/task:\d+ ?)+)", message)
    peers = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", named.group(1)) if named else []
    return ", ".join(f"{job} {task}" for job, task in peers) or "another worker"

"""The cluster of ``--strategy multi-worker``, read from the ``TF_CONFIG`` environment variable,
and the strategy names; no TensorFlow here, so the CLI checks ``TF_CONFIG`` before importing it.

``TF_CONFIG`` (the same cluster on every machine, each machine its own task)::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

The chief writes the run directory: the ``chief`` task if the cluster has one, else worker 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Optional

from keras_s2s.errors import KerasS2SError

STRATEGIES = ("default", "mirrored", "multi-worker")
"""The names ``--strategy`` accepts (``keras_s2s.distribute.build_strategy``)."""

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
)
_TASK_TYPES = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """The cluster of ``TF_CONFIG`` (job name -> ``host:port`` list) and this process's task in it."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        """The chief task, or worker 0 when the cluster has no chief."""
        return is_chief_task(self.task_type, self.task_index, has_chief="chief" in self.cluster)

    @property
    def num_workers(self) -> int:
        return sum(len(addresses) for addresses in self.cluster.values())


def is_chief_task(task_type: Optional[str], task_index: Optional[int], *, has_chief: bool) -> bool:
    """Whether a task writes the run: the chief, worker 0 without a chief, or a process outside any cluster."""
    if task_type is None:
        return True
    return task_type == "chief" or (task_type == "worker" and task_index == 0 and not has_chief)


def read_tf_config(environ: Mapping[str, str] = os.environ) -> ClusterTask:
    """Parses and checks ``TF_CONFIG`` for ``--strategy multi-worker``; raises KerasS2SError
    naming what is missing or wrong and what was expected."""
    text = environ.get("TF_CONFIG", "").strip()
    expected = f"expected JSON such as {_TF_CONFIG_EXAMPLE} (the same cluster on every machine, its own task on each)"
    if not text:
        raise KerasS2SError(
            f"--strategy multi-worker reads the cluster from the TF_CONFIG environment variable, which is not set; {expected}"
        )
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise KerasS2SError(f"TF_CONFIG is not valid JSON ({err}); {expected}") from None
    cluster = values.get("cluster") if isinstance(values, dict) else None
    task = values.get("task") if isinstance(values, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
        isinstance(addresses, list) and addresses and all(isinstance(a, str) and a for a in addresses)
        for addresses in cluster.values()
    ):
        raise KerasS2SError(f"TF_CONFIG 'cluster' must map job names to non-empty lists of 'host:port'; {expected}")
    unsupported = sorted(set(cluster) - set(_TASK_TYPES))
    if unsupported:
        raise KerasS2SError(
            f"TF_CONFIG 'cluster' has job(s) {unsupported}; --strategy multi-worker runs only 'chief' and 'worker' tasks"
        )
    if len(cluster.get("chief", [])) > 1:
        raise KerasS2SError(f"TF_CONFIG 'cluster' lists {len(cluster['chief'])} chiefs; expected at most one")
    if not isinstance(task, dict) or task.get("type") not in cluster or type(task.get("index")) is not int:
        raise KerasS2SError(
            f"TF_CONFIG 'task' must be {{\"type\": one of {sorted(cluster)}, \"index\": an integer}}, got {task!r}"
        )
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise KerasS2SError(
            f"TF_CONFIG task index {task['index']} is out of range: the cluster has "
            f"{len(cluster[task['type']])} '{task['type']}' task(s), indexed from 0"
        )
    return ClusterTask(cluster, task["type"], task["index"])

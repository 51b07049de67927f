"""The CLI's TensorFlow import: oneDNN kernels on unless the environment says otherwise.

Each case runs in a fresh process: TensorFlow reads its oneDNN switch once, when it loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from keras_s2s.tensorflow_setup import ONEDNN_SWITCH

REPORT_AFTER_QUIET_IMPORT = """
import json, os
from keras_s2s.tensorflow_setup import ONEDNN_SWITCH, import_tensorflow_quietly
import_tensorflow_quietly()
from tensorflow.python.util import _pywrap_util_port
print(json.dumps({"switch": os.environ.get(ONEDNN_SWITCH), "onednn": _pywrap_util_port.IsMklEnabled()}))
"""


def _quiet_import_in_fresh_process(switch: str | None) -> dict:
    env = {name: value for name, value in os.environ.items() if name != ONEDNN_SWITCH}
    if switch is not None:
        env[ONEDNN_SWITCH] = switch
    done = subprocess.run([sys.executable, "-c", REPORT_AFTER_QUIET_IMPORT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_quiet_import_turns_tensorflows_onednn_kernels_on_by_default():
    assert _quiet_import_in_fresh_process(None) == {"switch": "1", "onednn": True}


@pytest.mark.slow
def test_an_explicit_switch_in_the_environment_is_kept():
    assert _quiet_import_in_fresh_process("0") == {"switch": "0", "onednn": False}

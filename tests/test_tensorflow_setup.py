"""The CLI's TensorFlow import: oneDNN kernels on unless the environment says otherwise; the
CPU flags for which TensorFlow turns them on by itself, which ``jit_compile: "auto"`` reads.

Each import case runs in a fresh process: TensorFlow reads its oneDNN switch once, when it loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from keras_s2s.tensorflow_setup import ONEDNN_SWITCH, onednn_by_default_flags
from keras_s2s.training import describe_auto_jit_compile, resolve_jit_compile

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


@pytest.mark.slow
def test_our_reading_of_the_cpu_flags_agrees_with_tensorflows_own_onednn_default_on_this_machine():
    env = {name: value for name, value in os.environ.items() if name != ONEDNN_SWITCH}
    done = subprocess.run(
        [sys.executable, "-c", "import tensorflow\nfrom tensorflow.python.util import _pywrap_util_port\n"
                               "print(_pywrap_util_port.IsMklEnabled())"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(bool(onednn_by_default_flags()))


# Abridged /proc/cpuinfo of the two kinds of VM the benchmarks ran on (benchmarks/RESULTS.md).
AVX2_ONLY_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma bmi2 adx sha_ni vaes vpclmulqdq
"""
AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""


@pytest.mark.parametrize("cpuinfo, flags, xla", [
    (AVX2_ONLY_CPUINFO, (), True),
    (AMX_CPUINFO, ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"), False),
    ("processor\t: 0\nCPU implementer\t: 0x41\n", None, True),
], ids=["avx2-only", "amx", "no-flags-line"])
def test_auto_jit_compile_is_xla_unless_tensorflow_turns_onednn_on_by_itself(tmp_path, cpuinfo, flags, xla):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo, encoding="utf-8")
    assert onednn_by_default_flags(path) == flags
    assert resolve_jit_compile("auto", path) is xla
    assert describe_auto_jit_compile(path).startswith("XLA on" if xla else "XLA off")
    assert resolve_jit_compile(True, path) is True and resolve_jit_compile(False, path) is False


def test_an_unreadable_cpuinfo_means_no_flags_known_and_auto_is_xla(tmp_path):
    assert onednn_by_default_flags(tmp_path / "missing") is None
    assert resolve_jit_compile("auto", tmp_path / "missing") is True

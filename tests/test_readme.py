"""The README's examples run as written (on the toy model instead of the G2P one)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one():
    quickstart = README.split("## Quickstart", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quickstart.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_the_plain_onnxruntime_snippets_step_loop_and_one_call_decode_like_the_translator(exported_toy):
    from keras_s2s.runtime import load_translator

    section = README.split("### ONNX Runtime, without TensorFlow", 1)[1].split("\n## ", 1)[0]
    step_loop, one_call = [block.split("```", 1)[0] for block in section.split("```python")[1:3]]
    snippet = step_loop + one_call  # the one-call example continues the step-loop one (same root, ids)
    snippet = snippet.replace('root = "exported/g2p_cmudict"', f"root = {str(exported_toy)!r}")
    snippet = re.sub(r"source_tokens = .*", 'source_tokens = "i go home".split()', snippet)
    blocked = "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras_s2s'] = None\n"
    done = subprocess.run([sys.executable, "-c", blocked + snippet], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = load_translator(exported_toy, "onnx").translate(["I go home"])[0]
    assert done.stdout.strip().splitlines() == [expected, expected] and expected == "나는 집에 간다"

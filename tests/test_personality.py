"""tools/personality.py: the other CPU personality that `make test-portable` runs the notebooks under."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import personality

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("capability, level_down", [("AVX512", "avx2"), ("AVX2", "default")])
def test_one_instruction_set_level_down_one_thread_and_no_bf16(capability, level_down):
    env = personality.other_personality({"capability": capability, "threads": 2, "native_bf16": True})
    assert env["ATEN_CPU_CAPABILITY"] == level_down
    assert env["ONEDNN_MAX_CPU_ISA"] and env["MKL_ENABLE_INSTRUCTIONS"]
    assert env["OMP_NUM_THREADS"] == "1" and env["HELPERS_CPU_BF16"] == "0"


def test_a_cpu_without_a_lower_level_still_changes_threads_and_bf16():
    env = personality.other_personality({"capability": "SVE256", "threads": 1, "native_bf16": False})
    assert "ATEN_CPU_CAPABILITY" not in env
    assert env["OMP_NUM_THREADS"] == "2" and env["HELPERS_CPU_BF16"] == "0"


def test_the_printed_variables_change_what_torch_computes_with():
    """The lines the Makefile passes to `env` really take effect in a new process."""
    lines = subprocess.run([sys.executable, str(ROOT / "tools" / "personality.py")], capture_output=True, text=True,
                           check=True).stdout.split()
    env = dict(os.environ, **dict(line.split("=", 1) for line in lines))
    code = ("import torch; from helpers.train import cpu_has_native_bf16; "
            "print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), cpu_has_native_bf16())")
    seen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    capability, threads, bf16 = seen.split()
    assert threads == env["OMP_NUM_THREADS"] and bf16 == "False"
    if "ATEN_CPU_CAPABILITY" in env:
        assert capability.lower() == env["ATEN_CPU_CAPABILITY"].lower()

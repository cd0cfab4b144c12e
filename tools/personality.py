"""CPU personalities: run the course as another machine would, on this one.

    python tools/personality.py            # the variables of the "other" personality, one NAME=VALUE a line
    python tools/personality.py --describe # what this machine is and what the other personality changes

Trained weights differ in their last bits from one CPU to the next: the width of the vector instructions that
PyTorch's kernels use (AVX-512, AVX2, none), the kernels MKL and oneDNN pick, the number of threads a reduction
is split over, bf16 or float32 arithmetic. A few epochs carry that into the third decimal of an accuracy. The
course's rule (CONTRIBUTING.md, "Checked outputs travel") is that a `# NBVAL_CHECK_OUTPUT` cell shows only what is
the same on every machine; `make test-portable` proves it by running every notebook under nbval a second time as
a different machine, with the variables this tool prints:

- one instruction-set level down for PyTorch's own kernels (`ATEN_CPU_CAPABILITY`: avx2 on an AVX-512 CPU,
  default on an AVX2 one), for oneDNN's (`ONEDNN_MAX_CPU_ISA`) and for MKL's (`MKL_ENABLE_INSTRUCTIONS`);
- one thread instead of the machine's several (`OMP_NUM_THREADS`, which torch reads at start-up; notebooks that
  set their own thread count for a timing keep doing so);
- bf16 autocast off on CPUs that have native bf16 (`HELPERS_CPU_BF16=0`, read by
  `helpers.train.cpu_has_native_bf16`), so the float32 path a laptop takes is the one that runs.

A laptop, a Mac or a Colab GPU differ in the same ways (and more); the rule holds there for the same reason.
"""

from __future__ import annotations

import argparse
import sys

# The next level down for each of PyTorch's CPU capabilities, and the matching settings of oneDNN and MKL.
# Capabilities not listed (ARM, POWER, s390x) have no lower x86 level: only the thread count and bf16 change.
ONE_LEVEL_DOWN = {
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "AVX2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


def this_machine() -> dict:
    """What the default personality is here: PyTorch's CPU capability, its thread count, native bf16 or not."""
    import torch

    from helpers.train import cpu_has_native_bf16

    return {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "native_bf16": cpu_has_native_bf16()}


def other_personality(machine: dict) -> dict[str, str]:
    """The environment variables that make this machine compute like another one (see the module docstring)."""
    env = dict(ONE_LEVEL_DOWN.get(machine["capability"], {}))
    env["OMP_NUM_THREADS"] = "1" if machine["threads"] > 1 else "2"
    env["HELPERS_CPU_BF16"] = "0"
    return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--describe", action="store_true", help="say what this machine is and what changes")
    args = parser.parse_args(argv)
    machine = this_machine()
    env = other_personality(machine)
    if args.describe:
        print(f"this machine: CPU capability {machine['capability']}, {machine['threads']} threads, "
              f"native bf16 {'yes' if machine['native_bf16'] else 'no'}")
        print("the other personality: " + ", ".join(f"{k}={v}" for k, v in env.items()))
        return 0
    for key, value in env.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

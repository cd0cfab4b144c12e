"""environment.yml (the conda route) installs the same packages as pyproject.toml (the venv route)."""

import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env():
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _pip_section(env) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one `- pip:` section"
    return [str(line) for line in sections[0]]


def _requirements(lines) -> dict[str, str]:
    """name -> specifier for the requirement lines (options such as `-c file` and `-e .` are not packages)."""
    reqs = {}
    for line in lines:
        if line.startswith("-"):
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"{req.name} is listed twice"
        reqs[name] = str(req.specifier)
    return reqs


def test_name_channels_and_python(env):
    assert env["name"] == "pixels-to-gpus"
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda and "pip" in conda


def test_same_packages_as_pyproject(env, project):
    pyproject = _requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    conda_names = {
        canonicalize_name(d.split("=")[0].split("<")[0].split(">")[0].strip())
        for d in env["dependencies"] if isinstance(d, str)
    } - {"python", "pip"}
    pip = _requirements(_pip_section(env))
    assert not conda_names & set(pip), f"listed both as conda and pip packages: {conda_names & set(pip)}"
    ours = {**pip, **{n: "" for n in conda_names}}
    missing, extra = sorted(set(pyproject) - set(ours)), sorted(set(ours) - set(pyproject))
    assert not missing and not extra, (
        f"environment.yml and pyproject.toml disagree: missing from environment.yml {missing}, "
        f"only in environment.yml {extra}"
    )
    for name, spec in pip.items():
        assert spec == pyproject[name], f"{name}: environment.yml says {spec!r}, pyproject.toml says {pyproject[name]!r}"


def test_pip_section_uses_the_constraints_and_installs_the_course(env):
    lines = _pip_section(env)
    assert "-c constraints.txt" in lines and (ROOT / "constraints.txt").is_file()
    assert "-e ." in lines
    torch_pin = [l for l in (ROOT / "constraints.txt").read_text().splitlines() if l.startswith("torch==")]
    assert torch_pin, "constraints.txt must pin torch exactly"

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
    """name -> specifier and marker for the requirement lines (options such as `-c file` and `-e .` and comments
    are not packages)."""
    reqs = {}
    for line in lines:
        if line.startswith(("-", "#")) or not line.strip():
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"{req.name} is listed twice"
        reqs[name] = str(req.specifier) + (f"; {req.marker}" if req.marker else "")
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
    torch_pin = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")]
    assert torch_pin, "constraints.txt must pin torch exactly"


def test_constraints_pin_every_direct_dependency_exactly(project):
    """`-c constraints.txt` only helps a package it names: each of pyproject's dependencies, and of every extra
    (`dev`, and `docs` for `make site`), is pinned there with `==`, under the same marker (tomli, needed below
    Python 3.11 only, is pinned for those Pythons only)."""
    extras = [req for reqs in project["optional-dependencies"].values() for req in reqs]
    wanted = _requirements(project["dependencies"] + extras)
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", (
                f"constraints.txt: {line!r} is not an exact pin (write name==version)")
            pins[canonicalize_name(req.name)] = req
    for name, spec in wanted.items():
        assert name in pins, f"{name} is a dependency in pyproject.toml but constraints.txt does not pin it"
        marker = spec.partition("; ")[2]
        assert str(pins[name].marker or "") == marker, (
            f"{name}: constraints.txt's marker {str(pins[name].marker or '')!r} differs from pyproject's {marker!r}")
        required = Requirement(f"{name}{spec.partition(';')[0]}").specifier
        version = next(iter(pins[name].specifier)).version
        assert required.contains(version, prereleases=True), (
            f"{name}: constraints.txt pins {version}, outside pyproject's {required}")

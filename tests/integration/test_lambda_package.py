"""`chalice package`, run as deploys run it (infra/chalice_runtime.py), makes a
deployment zip that runs on Lambda's python3.12 runtime: every requirement
there, the compiled ones built for CPython 3.12 on x86_64 Linux with a glibc
Amazon Linux 2023 has (2.34), nothing for another Python or system, and all
of it under Lambda's size limit.

The package is built once per run, from a copy of the project: Chalice reuses
a zip it finds in .chalice/deployments/ for the same requirements and code,
so packaging in place could hand back one built before a change to the
runtime wrapper. The wheels come from pip's own cache when it has them.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from infra.chalice_runtime import LAMBDA_RUNTIME

REPO_ROOT = Path(__file__).resolve().parents[2]
# Amazon Linux 2023, under the python3.12 runtime.
RUNTIME_GLIBC = (2, 34)
# Lambda's limit on a function's unzipped code and layers: 250 MB.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# What a requirement's environment markers are judged against on Lambda.
LAMBDA_MARKERS = {
    "python_version": "3.12", "python_full_version": "3.12.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "implementation_version": "3.12.0", "os_name": "posix",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "extra": "",
}
# Standard modules Python 3.12 no longer has (PEP 594, PEP 632).
REMOVED_IN_312 = {"asynchat", "asyncore", "distutils", "imp", "smtpd"}
# Chalice's words when it packages without some dependency (it only warns).
MISSING_WARNING = "Could not install dependencies"


@dataclass
class Packaged:
    zip: zipfile.ZipFile
    template: dict
    output: str
    seconds: float

    def dists(self) -> dict[str, str]:
        """Canonical name -> the .dist-info folder of each installed distribution."""
        folders = {n.split("/", 1)[0] for n in self.zip.namelist() if ".dist-info/" in n}
        # <name>-<version>.dist-info, with any "-" of the name written "_".
        return {canonicalize_name(f.split("-", 1)[0]): f for f in folders if f.endswith(".dist-info")}

    def metadata(self, dist_info: str, name: str) -> list[str]:
        return [line.split(":", 1)[1].strip()
                for line in self.zip.read(f"{dist_info}/METADATA").decode().splitlines()
                if line.startswith(f"{name}:")]

    def wheel_tags(self, dist_info: str) -> list[str]:
        return [line.split(":", 1)[1].strip()
                for line in self.zip.read(f"{dist_info}/WHEEL").decode().splitlines()
                if line.startswith("Tag:")]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Packaged:
    work = tmp_path_factory.mktemp("lambda_package")
    project, out = work / "project", work / "out"
    project.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(REPO_ROOT / name, project / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments")
    for name in ("chalicelib", "vendor", ".chalice"):
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, project / name, ignore=skip)
    # Packaging needs a region name and nothing else of AWS.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    started = time.monotonic()
    # SAM's format refuses an app with @app.on_s3_event (CloudFormation cannot
    # add notifications to an existing bucket); Terraform's takes it, with
    # the same deployment zip `chalice deploy` makes.
    run = subprocess.run(
        [sys.executable, "-m", "infra.chalice_runtime", "--project-dir", str(project),
         "package", "--pkg-format", "terraform", "--stage", "dev", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    print(f"\nchalice package took {seconds:.1f} s")
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        yield Packaged(archive, json.loads((out / "chalice.tf.json").read_text()), output, seconds)


def _glibc(platform: str) -> tuple[int, int] | None:
    legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12), "manylinux2014_x86_64": (2, 17)}
    if platform in legacy:
        return legacy[platform]
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _runs_on_lambda(tag: str) -> bool:
    python, abi, platform = tag.split("-")
    if platform == "any":
        return abi == "none" and python.startswith("py")
    glibc = _glibc(platform)
    return (glibc is not None and glibc <= RUNTIME_GLIBC
            and (python, abi) in {("cp312", "cp312"), ("cp312", "abi3"), ("py3", "none")})


def test_chalice_finds_a_wheel_for_every_dependency(packaged):
    assert MISSING_WARNING not in packaged.output, packaged.output


def test_every_function_runs_on_python312(packaged):
    functions = packaged.template["resource"]["aws_lambda_function"]
    assert functions
    assert {name: f["runtime"] for name, f in functions.items()} == dict.fromkeys(functions, LAMBDA_RUNTIME)


def test_every_function_has_the_stages_policy_and_no_other(packaged):
    # autogen_policy is off: Chalice gives each function a role with the file's policy.
    resources = packaged.template["resource"]
    stage_policy = json.loads((REPO_ROOT / ".chalice" / "policy-dev.json").read_text())
    policies = {p["role"].replace(".id}", ".arn}"): json.loads(p["policy"])
                for p in resources["aws_iam_role_policy"].values()}
    assert policies == dict.fromkeys(policies, stage_policy)
    assert {f["role"] for f in resources["aws_lambda_function"].values()} <= policies.keys()


def test_numpy_and_pandas_are_compiled_for_cpython312_on_manylinux_x86_64(packaged):
    dists = packaged.dists()
    names = packaged.zip.namelist()
    for package in ("numpy", "pandas"):
        tags = packaged.wheel_tags(dists[package])
        assert tags and all(_runs_on_lambda(t) and t.startswith("cp312-cp312-manylinux") for t in tags), tags
        extensions = [n for n in names if n.startswith(f"{package}/") and n.endswith(".so")]
        assert extensions, f"no compiled module of {package}"
        assert all(n.endswith(".cpython-312-x86_64-linux-gnu.so") for n in extensions), extensions
    assert "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so" in names
    assert "openpyxl/__init__.py" in names and "openpyxl" in dists


def test_every_wheel_was_built_for_the_lambda_runtime(packaged):
    wrong = {dist: tags for dist, tags in ((d, packaged.wheel_tags(d)) for d in packaged.dists().values())
             if not any(_runs_on_lambda(t) for t in tags)}
    assert wrong == {}


def test_every_binary_is_x86_64_linux_for_cpython312_and_glibc_234(packaged):
    foreign, glibc_needed = [], {}
    for info in packaged.zip.infolist():
        name = info.filename.rsplit("/", 1)[-1]
        other_python = re.search(r"\.cpython-(?!312-x86_64-linux-gnu)[^.]+\.so$", name)
        if name.endswith((".pyd", ".dylib", ".dll")) or other_python:
            foreign.append(info.filename)
            continue
        if not re.search(r"\.so(\.|$)", name):
            continue
        data = packaged.zip.read(info)
        # ELF, 64-bit, little-endian, machine 62 (x86-64): no Mach-O, no aarch64.
        if data[:6] != b"\x7fELF\x02\x01" or int.from_bytes(data[18:20], "little") != 62:
            foreign.append(info.filename)
        needed = [tuple(map(int, v)) for v in re.findall(rb"GLIBC_(\d+)\.(\d+)", data)]
        if needed:
            glibc_needed[info.filename] = max(needed)
    assert foreign == []
    assert glibc_needed, "no binary names a glibc version"
    too_new = {n: v for n, v in glibc_needed.items() if v > RUNTIME_GLIBC}
    assert too_new == {}


def test_every_requirement_and_what_it_needs_on_python312_is_there(packaged):
    dists = packaged.dists()
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    pinned = [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
    versions = {name: packaged.metadata(folder, "Version")[0] for name, folder in dists.items()}
    assert {canonicalize_name(r.name): versions.get(canonicalize_name(r.name)) for r in pinned} == {
        canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in pinned}
    missing = {}
    for name, folder in dists.items():
        for line in packaged.metadata(folder, "Requires-Dist"):
            need = Requirement(line)
            if need.marker is not None and not need.marker.evaluate(LAMBDA_MARKERS):
                continue
            if canonicalize_name(need.name) not in dists:
                missing.setdefault(name, []).append(str(need))
    assert missing == {}


def test_every_distribution_supports_python312(packaged):
    refused = {name: spec for name, folder in packaged.dists().items()
               for spec in packaged.metadata(folder, "Requires-Python") if "3.12" not in SpecifierSet(spec)}
    assert refused == {}


def test_our_code_imports_no_module_python312_removed(packaged):
    ours = [n for n in packaged.zip.namelist()
            if n == "app.py" or (n.startswith("chalicelib/") and n.endswith(".py"))]
    assert "app.py" in ours and len(ours) > 10
    removed = []
    for name in ours:
        for node in ast.walk(ast.parse(packaged.zip.read(name), name)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                modules = [node.module or ""]
            else:
                continue
            removed += [f"{name}: {m}" for m in modules if m.split(".")[0] in REMOVED_IN_312]
    assert removed == []


def test_the_package_fits_in_a_lambda_function(packaged):
    unzipped = sum(i.file_size for i in packaged.zip.infolist())
    print(f"\ndeployment.zip: {unzipped / 2**20:.1f} MiB unzipped (Lambda's limit: 250 MiB)")
    assert unzipped < UNZIPPED_LIMIT_BYTES

"""Chalice's own CLI, with the Lambda runtime pinned to python3.12.

    python -m infra.chalice_runtime package <out-dir> [--stage dev]
    python -m infra.chalice_runtime deploy --stage dev
    python -m infra.chalice_runtime delete --stage dev

Chalice 1.34 deploys on the runtime of the Python that runs it (3.11 here and
in CI) and picks wheels for that runtime's glibc: 2.26 for python3.11 (Amazon
Linux 2). numpy 2.4, Pillow 13 and pikepdf 10 ship no wheel for a glibc that
old (manylinux_2_27/2_28 only), so Chalice falls back to their sources, fails
to build them for Lambda and packages without them, with only a warning. The
python3.12 runtime (Amazon Linux 2023, glibc 2.34) takes the pinned wheels as
they are, and our code runs on 3.11 and 3.12 alike.

This is the one place that overrides Chalice's choice, for this process only:
Config.lambda_python_version answers python3.12 (the runtime of every
function, in deploys and packages, and the wheels' ABI, cp312, with glibc up
to 2.34 from Chalice's own table), and Chalice's manylinux download tells pip
that Python version, which Chalice leaves to the running interpreter. pip
still resolves requirements.txt with this interpreter first: a dependency
needed on 3.12 alone would be missed, which tests/integration/
test_lambda_package.py would see.
"""
from __future__ import annotations

import sys
import warnings

from chalice.cli import main as chalice_main
from chalice.config import Config
from chalice.deploy.packager import PipRunner

LAMBDA_RUNTIME = "python3.12"


def pin_lambda_runtime(runtime: str = LAMBDA_RUNTIME) -> None:
    """Make every Chalice Config of this process answer `runtime`, and
    Chalice's wheel downloads ask for that runtime's Python."""
    Config.lambda_python_version = property(lambda self: runtime)
    PipRunner._execute = _for_python(PipRunner._execute, runtime.removeprefix("python"))
    # Chalice warns that the local Python is not the runtime's: here that is
    # on purpose (our code runs on both), and the packages are built for the
    # runtime, not for this interpreter.
    warnings.filterwarnings("ignore", message=r"You are currently running python3\.\d+, but the closest "
                            rf"supported version on AWS Lambda is {runtime}")


def _for_python(execute, version: str):
    # Chalice's manylinux download (its only pip call with --abi) leaves the
    # Python version to pip, which takes the running one's: pip on 3.11 then
    # finds no cp312 wheel at all.
    def run(self, command, args, env_vars=None, shim=None):
        if command == "download" and "--abi" in args:
            args = ["--python-version", version, *args]
        return execute(self, command, args, env_vars, shim)

    return run


def main() -> int:
    pin_lambda_runtime()
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main())

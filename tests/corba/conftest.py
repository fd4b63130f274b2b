"""Fixtures of the CORBA tests; helpers are in corba_support.py.

Processes run with their own stub cache (``POWERBUS_CORBA_STUBS``) under the session's
temporary folder, so tests never touch ~/.cache.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from corba_support import BIN, IDL, LEGACY_IDL, TIMEOUT, OmniNames

from powerbus.adapters.corba.stubs import CACHE_ENV, Stubs, load_stubs


@pytest.fixture(scope="session")
def stub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corba-stubs")


@pytest.fixture(scope="session")
def corba_env(stub_cache: Path) -> dict[str, str]:
    """Environment of every process the CORBA tests start."""
    return {CACHE_ENV: str(stub_cache)}


@pytest.fixture(scope="session")
def legacy_stubs(stub_cache: Path) -> Stubs:
    return load_stubs(LEGACY_IDL, cache_dir=stub_cache)


@pytest.fixture(scope="session")
def client_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain omniidl stubs of idl/powerbus.idl, for the standalone client only."""
    out = tmp_path_factory.mktemp("client-stubs")
    done = subprocess.run(
        [str(BIN / "omniidl"), "-bpython", f"-C{out}", str(IDL)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def omninames(tmp_path: Path) -> Iterator[OmniNames]:
    names = OmniNames(tmp_path / "omninames")
    names.start()
    yield names
    names.stop()

"""A real OCI registry (CNCF distribution, Debian's ``docker-registry``) for the tests.

One registry process serves the whole session; each test gets its own
repository path from :func:`oci_repo_url`, so tests never see each other's
tags. Blobs are content-addressed across repositories in the registry's
storage, so a test that corrupts a blob on disk (:meth:`OciRegistry.blob_path`)
must use bytes no other test uploads.

The port is chosen by the OS, never 5000 (the registry's default, also moto's).
A missing ``docker-registry`` fails the session rather than skipping: a skipped
OCI test would silently leave the registry backend untested.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY_BIN = Path("/usr/bin/docker-registry")
_START_TIMEOUT = 20.0

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
"""


@dataclass(frozen=True)
class OciRegistry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, ``storage`` its data folder."""

    host: str
    storage: Path

    def repo_url(self, name: str) -> str:
        """``oci://HOST/<name>``."""
        return f"oci://{self.host}/{name}"

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps the bytes of ``sha256:<hex>``."""
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def _free_port() -> int:
    # The OS hands out a free ephemeral port, which is never 5000 in practice; the
    # loop guards the rule anyway.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 5000:
            return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (fixed http URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(url):
            return
        time.sleep(0.05)
    code = process.poll()
    process.kill()
    process.wait()
    what = f"exited with code {code}" if code is not None else "timed out"
    output = log.read_text(errors="replace")
    pytest.fail(f"docker-registry {what} before answering {url}:\n{output}")


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    """A ``docker-registry`` on a free loopback port, for the whole session."""
    if not (REGISTRY_BIN.is_file() and os.access(REGISTRY_BIN, os.X_OK)):
        pytest.fail(
            f"{REGISTRY_BIN} is missing: the OCI store tests need a real registry.\n"
            "Install it with: sudo apt-get install docker-registry\n"
            "(the package's own service is not needed: sudo systemctl disable --now "
            "docker-registry)"
        )
    root = tmp_path_factory.mktemp("oci-registry")
    storage = root / "storage"
    storage.mkdir()
    host = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(_CONFIG.format(storage=storage, addr=host))
    log = root / "registry.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(REGISTRY_BIN), "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, f"http://{host}/v2/", log)
        yield OciRegistry(host=host, storage=storage)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_repo_counter = itertools.count()


@pytest.fixture
def oci_repo_url(oci_registry: OciRegistry) -> str:
    """A fresh, empty repository: ``oci://127.0.0.1:PORT/aoe-test/<unique>``."""
    return oci_registry.repo_url(f"aoe-test/r{next(_repo_counter)}-{uuid.uuid4().hex[:8]}")

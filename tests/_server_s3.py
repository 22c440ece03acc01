"""A real S3 endpoint for the repository tests: moto in server mode, in its own process.

``s3_server`` (session) starts the server once; ``s3_repo_url`` (function) makes a
fresh bucket and points the environment at the server, so the code under test and
any subprocess it starts reach moto through the standard AWS variables alone.

Why not plain ``moto_server``: moto's responses carry ``server: amazon.com`` and
Werkzeug's dev server adds its own ``Server:`` line. aiohttp (>= 3.13.4, and 3.14
again) rejects a response with two ``Server`` headers, so aiobotocore, hence s3fs,
cannot read a single reply (getmoto/moto#9930, aio-libs/aiohttp#12297). The
launcher below is ``moto_server``'s own ``main()`` with a request handler that
drops Werkzeug's duplicate; moto itself is untouched.

Moto checks ``If-Match``/``If-None-Match`` and then writes without a lock, so
its conditional PUT was atomic only as long as no thread switch landed between
the two: with a few more writes per edit (the index and tag documents), the
concurrent CAS test lost a release to it. S3 itself is atomic there, so the
launcher handles one writing request at a time.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_HOST = "127.0.0.1"
_START_TIMEOUT = 20.0

_LAUNCHER = """
import sys
import threading
import moto.server

_WRITES = threading.Lock()


class OneServerHeader(moto.server.MotoRequestHandler):
    def run_wsgi(self):
        if self.command in ("PUT", "POST", "DELETE"):
            with _WRITES:  # S3's conditional writes are atomic; moto's are not
                return super().run_wsgi()
        return super().run_wsgi()

    def send_header(self, keyword, value):
        if keyword.lower() == "server" and value == self.version_string():
            return  # moto sends its own; a second one breaks aiohttp
        super().send_header(keyword, value)


moto.server.MotoRequestHandler = OneServerHeader
moto.server.main(sys.argv[1:])
"""

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the environment a client needs to reach it."""

    endpoint: str
    env: dict[str, str]
    log: Path


def _free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind((_HOST, 0))
            port: int = sock.getsockname()[1]
        if port != 5000:  # never moto's default, which a developer's own moto may hold
            return port


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection(_HOST, port, timeout=1)
    try:
        conn.request("GET", "/moto-api/")
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 in server mode, as a separate process, for the whole session."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.fail("moto server mode is not installed: pip install 'moto[server]' (test extra)")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as out:  # a file, not a pipe: the request log would fill a pipe
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, "-H", _HOST, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "silent"
                pytest.fail(f"moto server on port {port} {state}:\n{log.read_text()}")
            time.sleep(0.1)
        endpoint = f"http://{_HOST}:{port}"
        env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
        yield S3Server(endpoint=endpoint, env=env, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_repo_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; returns ``s3://<bucket>/repo`` with the environment pointing at moto.

    A developer's own AWS setup (profile, config files, session token) is hidden so
    that it cannot redirect or break the test's requests.
    """
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var, value in s3_server.env.items():
        monkeypatch.setenv(var, value)

    import boto3  # moto depends on it; synchronous

    bucket = f"aoe-test-{secrets.token_hex(8)}"
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    try:
        client.create_bucket(Bucket=bucket)
    finally:
        client.close()
    return f"s3://{bucket}/repo"

"""KMS endpoints for the signer tests, and an AWS environment that only they shape.

``moto_kms``: moto's real server (the session's, tests/_server_s3.py: one
moto serves every service), reached through ``AWS_ENDPOINT_URL_KMS`` as a
user would point aoe-pack at a KMS-compatible endpoint. ``fake_kms``: the
server of ``_fake_kms.py``, which follows AWS's documented DIGEST semantics
where moto does not.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fake_kms import REGION, FakeKms, serve_fake_kms
from _kms import MotoKms
from _server_s3 import S3Server

REPO = Path(__file__).resolve().parents[2]

_AWS_SETTINGS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CA_BUNDLE",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
)  # fmt: skip


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment with no AWS settings at all: no credentials, region or endpoint.

    A developer's own AWS setup (profiles, config files, an instance role) is
    hidden, so that it can neither redirect nor rescue a test's requests.
    """
    for var in _AWS_SETTINGS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(no_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, as moto and the fake take any."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def moto_kms(s3_server: S3Server, aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoKms]:
    """moto's KMS, reached through ``AWS_ENDPOINT_URL_KMS`` and ``AWS_REGION``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", s3_server.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    import botocore.session

    client = botocore.session.get_session().create_client("kms", region_name="us-east-1")
    try:
        yield MotoKms(endpoint=s3_server.endpoint, client=client)
    finally:
        client.close()


@pytest.fixture
def fake_kms(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKms]:
    """A KMS with AWS's documented Sign semantics (``_fake_kms.py``)."""
    with serve_fake_kms() as kms:
        monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms.endpoint)
        monkeypatch.setenv("AWS_REGION", REGION)
        yield kms


@pytest.fixture(scope="session")
def mnist_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mnist sample as it is (its .tflite, no conversion): signing is what is tested."""
    folder = tmp_path_factory.mktemp("mnist")
    doc = json.loads((REPO / "sample_models/mnist/config.json").read_text())
    doc.pop("targets")
    doc["modelName"] = "mnist.tflite"
    doc["encrypt"] = False
    (folder / "config.json").write_text(json.dumps(doc))
    for name in ("mnist.tflite", "labels.txt"):
        shutil.copyfile(REPO / "sample_models/mnist" / name, folder / name)
    return folder / "config.json"

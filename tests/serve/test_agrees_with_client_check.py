"""The decision API answers what ``client check --json`` prints, for thousands of devices.

The repository holds every rule of the decision (rollouts at several
percentages, channels, app-version ranges, runtimes, a yanked and a critical
release, a pin to a version, the kill switch); the devices are generated
from a fixed seed. For each one the reference is the command line's own
path: the options turned into a device by ``client check``'s ``_device``,
then :func:`aoe_pack.api.check` (root chain, index, tag document, state,
decision), which ``client check`` calls. The service answers from its
snapshot through :func:`aoe_pack.serve.request.parse_request` and
:func:`aoe_pack.serve.decision.answer` in-process for every device, over
HTTP for a few hundred, and a handful run as the real command.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from _serve import Published, release, running
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from aoe_pack import api
from aoe_pack.cli.client_cmds import ALL_RUNTIMES, _device
from aoe_pack.errors import ReleaseNotFoundError
from aoe_pack.repository.root import verify_self_signed
from aoe_pack.serve import request as serve_request
from aoe_pack.serve.decision import answer
from aoe_pack.serve.reading import read_snapshot
from aoe_pack.serve.view import utc_now

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DEVICES = 2000
OVER_HTTP = 300

VERSIONS = ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0-beta.1", "2.0.0")
APPS = ("1.0.0", "2.5.0", "3.0.0", "4.1.0")
CHANNELS: tuple[tuple[str, ...], ...] = ((), ("stable",), ("beta",), ("stable", "beta"))
TAGS = ("roll", "yank", "pinned", "killed", "runtime", "missing")


def _publish(p: Published) -> None:
    p.set(
        "roll",
        release("1.0.0"),
        release("1.1.0", rollout_bp=3000),
        release("1.2.0", rollout_bp=7000, min_app_version="2.0.0"),
        release("1.3.0-beta.1", channel="beta", rollout_bp=5000),
    )
    p.set(
        "yank",
        release("1.0.0"),
        release("1.1.0", yanked="crashes on start"),
        release("1.2.0", rollout_bp=0, critical=True, runtimes=("onnx",)),
    )
    p.set("pinned", release("1.0.0"), release("1.1.0"), release("1.2.0"), pin="1.1.0")
    p.set("killed", release("1.0.0"), release("1.1.0"), pin="local")
    p.set(
        "runtime",
        release("1.1.0", runtimes=("mnn", "ncnn"), required_runtimes=("mnn",)),
        release("1.2.0", runtimes=("tflite",), max_app_version="3.0.0", rollout_bp=5000),
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Published:
    p = Published(str(tmp_path_factory.mktemp("agree") / "repo"))
    _publish(p)
    return p


def _devices(n: int) -> list[dict[str, Any]]:
    """``client check``'s options for ``n`` devices, from a fixed seed."""
    rng = random.Random(13)
    devices = []
    for i in range(n):
        installed = rng.choice(VERSIONS)
        runtimes = tuple(sorted(rng.sample(ALL_RUNTIMES, rng.randint(1, 3)))) if i % 3 else ()
        devices.append(
            {
                "tag": rng.choice(TAGS),
                "installed_version": installed,
                "local_version": installed if i % 4 else rng.choice(VERSIONS[:3]),
                "app_version": rng.choice(APPS),
                "device_id": f"{rng.getrandbits(64):016x}",
                "runtimes": runtimes,
                "channels": rng.choice(CHANNELS),
            }
        )
    return devices


def _request(d: dict[str, Any]) -> dict[str, Any]:
    """The same device as a decision request."""
    doc: dict[str, Any] = {
        "tag": d["tag"],
        "installedVersion": d["installed_version"],
        "localVersion": d["local_version"],
        "appVersion": d["app_version"],
        "deviceId": d["device_id"],
    }
    if d["runtimes"]:
        doc["runtimes"] = list(d["runtimes"])
    if d["channels"]:
        doc["channels"] = list(d["channels"])
    return doc


def _reference(repo: Published, d: dict[str, Any], state: Path) -> dict[str, Any]:
    """What ``client check --json`` prints for ``d`` (without --download)."""
    device = _device(
        d["device_id"],
        d["app_version"],
        d["runtimes"],
        d["channels"],
        d["local_version"],
        d["installed_version"],
    )
    try:
        result = api.check(
            repo=repo.url, tag=d["tag"], device=device, trusted_root=repo.trusted_root, state=state
        )
    except ReleaseNotFoundError as e:
        return {"ok": False, "code": e.code, "message": e.message}
    return {"ok": True, **result.to_dict()}


@pytest.fixture(scope="module")
def references(repo: Published, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    state = tmp_path_factory.mktemp("device") / "state.json"
    return [(d, _reference(repo, d, state)) for d in _devices(DEVICES)]


def test_the_service_decides_as_client_check_for_thousands_of_devices(
    repo: Published, references: list[Any]
) -> None:
    snapshot = read_snapshot(repo.store, verify_self_signed(repo.trusted_root), now=utc_now())
    now = utc_now()
    differ = []
    for d, want in references:
        body = json.dumps(_request(d)).encode()
        try:
            got = answer(snapshot, serve_request.parse_request(body), repository=repo.url, now=now)
        except ReleaseNotFoundError as e:
            got = {"ok": False, "code": e.code, "message": e.message}
        if got != want:
            differ.append((d, want, got))
    assert differ == []
    actions = {want.get("action") for _, want in references}
    assert actions == {"keep", "download", "revert-to-local", None}  # every outcome is met


def test_over_http_the_answers_are_client_checks(repo: Published, references: list[Any]) -> None:
    schema = _check_schema()
    with running(repo.url, repo.trusted_root) as service:
        for d, want in references[:OVER_HTTP]:
            status, doc = service.decide(_request(d))
            if want["ok"]:
                assert (status, doc) == (200, want)
                assert list(schema.iter_errors(doc)) == []
            else:
                assert status == 404
                assert (doc["error"]["code"], doc["error"]["message"]) == (
                    want["code"],
                    want["message"],
                )


def test_the_command_line_prints_what_the_service_answers(
    repo: Published, references: list[Any], tmp_path: Path
) -> None:
    from _cli import Cli  # tests/_cli.py: the command line, in this process

    aoe = Cli()
    root = tmp_path / "root.json"
    root.write_bytes(repo.trusted_root)
    known = [d for d, want in references if want["ok"]][:8]
    with running(repo.url, repo.trusted_root) as service:
        for d in known:
            printed = aoe(
                *("client", "check", "--repo", repo.url, "--trusted-root", root),
                *("--tag", d["tag"], "--installed-version", d["installed_version"]),
                *("--local-version", d["local_version"], "--app-version", d["app_version"]),
                *("--device-id", d["device_id"], "--state", tmp_path / "state.json"),
                *(a for r in d["runtimes"] for a in ("--runtime", r)),
                *(a for c in d["channels"] for a in ("--channel", c)),
                json=True,
            ).expect(0)
            assert service.decide(_request(d)) == (200, printed)


def test_the_default_runtimes_are_client_checks() -> None:
    assert serve_request.ALL_RUNTIMES == ALL_RUNTIMES


def _check_schema() -> Draft202012Validator:
    resources = []
    for path in sorted(SCHEMAS.rglob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    registry: Registry[Any] = Registry().with_resources(resources)
    uri = "https://aoe-pack.dev/schemas/cli/client-check.schema.json#/$defs/result"
    return Draft202012Validator({"$ref": uri}, registry=registry)

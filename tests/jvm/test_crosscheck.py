"""Cross-checks of the JVM library (clients/jvm) against aoe-pack, on inputs made now.

* Bundles built by ``aoe-pack build`` for every recipient type (x25519, p256-kem, the KEK,
  mlkem768-x25519 through the test-only X-Wing of the JVM test sources, and all four at
  once) are verified and unpacked by the library, which writes the model files byte for
  byte; a key that is no recipient is refused with the code aoe-pack gives.
* A generated repository (several tags, many releases with channels, app-version ranges,
  runtimes, yanks, pins and partial rollouts) and thousands of device tuples: the
  library's decision for each (``CrossCheck decide``) equals, field by field, what
  ``aoe_pack.api.check`` (the function behind ``aoe-pack client check --json``) decides,
  and for a few, what the real command prints.

The JVM side is ``dev.aoepack.crosscheck.CrossCheck`` (the test classpath of ``.ci/jvm``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from aoe_pack.repository.model import Manifest, ModelReleases, Release
from aoe_pack.versions import Version
from tests._cli import NO_PASSWORD, Cli
from tests._jvm import JvmBuild

aoe = Cli(env=NO_PASSWORD)
_spec = importlib.util.spec_from_file_location(
    "make_attacks", Path(__file__).parents[1] / "vectors" / "attacks" / "make_attacks.py"
)
assert _spec is not None
assert _spec.loader is not None
ma = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ma)
RECIPIENTS = ("x25519", "p256-kem", "mlkem768-x25519")
BUILDS = {  # bundle: (HPKE recipient keys, KEK files)
    "x25519": (("x25519",), ()),
    "p256-kem": (("p256-kem",), ()),
    "kek": ((), ("aes256",)),
    "mlkem768-x25519": (("mlkem768-x25519",), ()),
    "multi": (RECIPIENTS, ("aes256",)),
    "plain": ((), ()),
}
FILES = {
    "model.tflite": (Path(__file__).parents[2] / "sample_models/mnist/mnist.tflite").read_bytes(),
    "labels.txt": b"cat\ndog\n",
    "assets/empty.bin": b"",
    "assets/weights.bin": random.Random(14).randbytes(2_500_000),  # three AES-GCM segments
    "assets/deep/vocab.txt": "ünïcödé\n".encode(),
}


@pytest.fixture(autouse=True, scope="module")
def _unencrypted_keys() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AOE_PACK_PASSWORD", raising=False)
        yield


def _ok(jvm: JvmBuild) -> JvmBuild:
    assert jvm.returncode == 0, jvm.log[-4000:]
    return jvm


def _java(jvm: JvmBuild, *args: object, stdin: bytes | None = None) -> list[Any]:
    proc = jvm.run(*map(str, args), stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


# --- bundles -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys made now by ``aoe-pack keygen``, and one bundle per entry of BUILDS."""
    root = tmp_path_factory.mktemp("crosscheck-bundles")
    for name, kind in [("signer", "ed25519"), ("signer2", "p256"), ("stranger", "x25519")] + [
        (k, k) for k in (*RECIPIENTS, "aes256")
    ]:
        aoe("keygen", "--type", kind, "--out", root / name, json=True).expect()
    model = root / "src" / "m"
    for rel, data in FILES.items():
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        (model / rel).write_bytes(data)
    config = {
        "version": "2.1.0",
        "tag": "crosscheck.model",
        "runtime": "tflite",
        "modelDir": "m",
        "modelName": "model.tflite",
        "files": [{"path": p, "role": "asset"} for p in FILES if p != "model.tflite"],
    }
    (root / "src" / "config.json").write_text(json.dumps(config))
    for name, (hpke, keks) in BUILDS.items():
        args: list[object] = ["build", root / "src" / "config.json", "--out", root / f"{name}.aoe"]
        args += ["--sign-key", root / "signer.key", "--sign-key", root / "signer2.key"]
        for k in hpke:
            args += ["--recipient", root / f"{k}.pub"]
        for k in keks:
            args += ["--encryption-key-file", root / f"{k}.key"]
        if not hpke and not keks:
            args.append("--no-encrypt")
        aoe(*args, json=True).expect()
    return root


def _keys(bundle: str) -> list[str]:
    hpke, keks = BUILDS[bundle]
    return [*hpke, *keks]


CASES = [(b, k) for b in BUILDS for k in _keys(b)] + [("plain", None)]


@pytest.mark.parametrize(("bundle", "key"), CASES, ids=[f"{b}-{k or 'none'}" for b, k in CASES])
def test_jvm_verifies_and_unpacks_what_aoe_pack_builds(
    jvm: JvmBuild, built: Path, tmp_path: Path, bundle: str, key: str | None
) -> None:
    trusted = ["--trusted-key", built / "signer.pub", "--trusted-key", built / "signer2.pub"]
    dkey = ["--decryption-key", built / f"{key}.key"] if key else []
    path = built / f"{bundle}.aoe"
    (verified,) = _java(_ok(jvm), "verify", path, *trusted, "--threshold", 2, *dkey)
    assert verified == {"verified": True}
    out = tmp_path / "out"
    (unpacked,) = _java(jvm, "unpack", path, "--out", out, *trusted, "--threshold", 2, *dkey)
    want = {p: hashlib.sha256(d).hexdigest() for p, d in FILES.items()}
    assert unpacked == {"files": want}
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == FILES  # byte for byte


@pytest.mark.parametrize("bundle", ["x25519", "multi"])
def test_jvm_refuses_a_stranger_key_with_aoe_pack_code(
    jvm: JvmBuild, built: Path, bundle: str
) -> None:
    path, key = built / f"{bundle}.aoe", built / "stranger.key"
    ran = aoe("verify", path, "--trusted-key", built / "signer.pub", "--decryption-key", key,
              json=True)  # fmt: skip
    code = ran.expect(1)["error"]["code"]
    assert code == "no-matching-recipient"
    (got,) = _java(_ok(jvm), "verify", path, "--trusted-key", built / "signer.pub",
                   "--decryption-key", key)  # fmt: skip
    assert got == {"error": code}


# --- decisions -----------------------------------------------------------------------------

TAGS = ("alpha.model", "beta.model", "pinned.model", "killed.model")
CHANNELS = ("stable", "beta", "canary")
RUNTIMES = ("tflite", "onnx", "mnn", "ncnn")
APPS = ("1.0.0", "2.0.0", "2.5.1", "3.0.0", "4.0.0-rc.1", "4.0.0", "6.1.0")


def _versions(rng: random.Random, n: int) -> list[str]:
    out, minor, patch = [], 0, 0
    while len(out) < n:
        patch += 1
        if rng.random() < 0.15:
            minor, patch = minor + 1, 0
        v = f"1.{minor}.{patch}"
        if rng.random() < 0.2:
            out.append(f"{v}-rc.{rng.randint(1, 3)}")
        out.append(v)
    return out[:n]


def _release(rng: random.Random, version: str) -> Release:
    sha = hashlib.sha256(f"crosscheck {version} {rng.random()}".encode()).hexdigest()
    runtimes = tuple(sorted(rng.sample(RUNTIMES[:3], rng.randint(1, 2))))
    low = rng.choice([None, None, "2.0.0", "3.0.0", "4.0.0-rc.1"])
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=rng.randint(1, 10**7),
        sha256=sha,
        runtimes=runtimes,
        artifacts=tuple({"runtime": r} for r in runtimes),
        channel=rng.choice(["stable", "stable", "stable", "beta", "canary"]),
        rollout_bp=rng.choice([10_000, 10_000, 5_000, 2_500, 100, 1, 0, 9_999]),
        salt=rng.randbytes(16).hex(),
        min_app_version=low,
        max_app_version=rng.choice([None, None, None, "5.0.0", "2.5.1"]),
        required_runtimes=("ncnn",) if rng.random() < 0.05 else (),
        critical=rng.random() < 0.05,
        yanked="withdrawn" if rng.random() < 0.1 else None,
    )


def _generated_manifest() -> Manifest:
    rng = random.Random(2024)
    models = {}
    for tag in TAGS:
        releases = tuple(_release(rng, v) for v in _versions(rng, rng.randint(25, 45)))
        pin = {"pinned.model": releases[len(releases) // 2].version, "killed.model": "local"}
        models[tag] = ModelReleases(releases=releases, pin=pin.get(tag))
    return Manifest(version=7, expires=dt.datetime(2099, 1, 1, tzinfo=dt.UTC), models=models)


def _devices(manifest: Manifest, count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        tag = rng.choice(TAGS)
        versions = [r.version for r in manifest.models[tag].releases]
        local = rng.choice(["0.9.0", "1.0.0", versions[0], rng.choice(versions), "9.0.0"])
        installed = rng.choice([None, None, rng.choice(versions), "1.0.99"])
        out.append(
            {
                "tag": tag,
                "deviceId": f"device-{i}-{rng.getrandbits(32):08x}",
                "appVersion": rng.choice(APPS),
                "localVersion": local,
                "installedVersion": None if installed == local else installed,
                "channels": sorted(rng.sample(CHANNELS, rng.randint(1, 3))),
                "runtimes": sorted(rng.sample(RUNTIMES, rng.randint(1, 3))),
            }
        )
    return out


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated repository (index, tag documents, manifest) and its trusted root."""
    root = tmp_path_factory.mktemp("crosscheck-repo")
    for name, data in ma.rc.published(_generated_manifest()).files.items():
        (root / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "repo" / name).write_bytes(data)
    (root / "root.json").write_bytes(ma.rc.root_doc(ma.rc.make_root(1), ma.rc.SIGNERS))
    return root


def _python_decisions(
    repository: Path, state: Path, devices: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """What ``aoe_pack.api.check`` (``client check``) decides for each device: the
    repository refreshed once per tag (steps 1-10, as the first check of it does), then
    the decision, its result as ``client check --json`` prints it."""
    from aoe_pack.client.check import CheckResult, refresh_tag
    from aoe_pack.client.decide import decide
    from aoe_pack.storage.open import open_store

    store, trusted = open_store(str(repository / "repo")), (repository / "root.json").read_bytes()
    now = dt.datetime.now(dt.UTC)
    done = {
        tag: refresh_tag(store, trusted_root=trusted, state_path=state, now=now, tag=tag)
        for tag in TAGS
    }
    out = []
    for d in devices:
        tag = d["tag"]
        decision = decide(done[tag].manifest, tag, ma.scenario_device(d))
        result = CheckResult(decision, done[tag].root.version, done[tag].manifest.version)
        out.append({"ok": True, **result.to_dict()})
    return out


DEVICES = 2000


def _decide(
    jvm: JvmBuild, repository: Path, state: Path, devices: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """The library's decision for each device (CrossCheck decide), one state for all."""
    stdin = "".join(json.dumps(d) + "\n" for d in devices).encode()
    repo, root = repository / "repo", repository / "root.json"
    return _java(
        _ok(jvm), "decide", "--repo", repo, "--trusted-root", root, "--state", state, stdin=stdin
    )


@pytest.fixture(scope="module")
def decided(
    jvm: JvmBuild, repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The generated devices and the library's decision for each."""
    devices = _devices(_generated_manifest(), DEVICES)
    state = tmp_path_factory.mktemp("jvm-state") / "state.json"
    return devices, _decide(jvm, repository, state, devices)


def test_jvm_decides_as_aoe_pack_for_thousands_of_devices(
    decided: tuple[list[dict[str, Any]], list[Any]], repository: Path, tmp_path: Path
) -> None:
    devices, java = decided
    assert len(java) == len(devices) == DEVICES
    python = _python_decisions(repository, tmp_path / "state.json", devices)
    actions: dict[str, int] = {}
    for d, got, want in zip(devices, java, python, strict=True):
        assert set(got) < set(want), (d, got)
        assert {k: want[k] for k in got} == got, d
        actions[got["action"]] = actions.get(got["action"], 0) + 1
    # the generated inputs reach every outcome, each many times
    assert set(actions) == {"download", "keep", "revert-to-local"}, actions
    assert min(actions.values()) >= 100, actions


def _cli_decision(repository: Path, state: Path, d: Mapping[str, Any]) -> dict[str, Any]:
    args: list[object] = ["client", "check", "--repo", repository / "repo", "--trusted-root"]
    args += [repository / "root.json", "--tag", d["tag"], "--app-version", d["appVersion"]]
    args += ["--device-id", d["deviceId"], "--local-version", d["localVersion"], "--state", state]
    args += ["--installed-version", d["installedVersion"] or d["localVersion"]]
    for c in d["channels"]:
        args += ["--channel", c]
    for r in d["runtimes"]:
        args += ["--runtime", r]
    doc: dict[str, Any] = aoe(*args, json=True).expect()
    return doc


def _spread(devices: Sequence[dict[str, Any]], java: Sequence[dict[str, Any]]) -> list[int]:
    """A few devices, one per (tag, action) seen, for the slower real command."""
    seen: dict[tuple[str, str], int] = {}
    for i, (d, got) in enumerate(zip(devices, java, strict=True)):
        seen.setdefault((d["tag"], got["action"]), i)
    return sorted(seen.values())[:6]


def test_jvm_decides_as_the_real_client_check_command(
    decided: tuple[list[dict[str, Any]], list[Any]], repository: Path, tmp_path: Path
) -> None:
    devices, java = decided
    chosen = _spread(devices, java)
    assert len(chosen) >= 5
    for i in chosen:
        doc = _cli_decision(repository, tmp_path / "cli-state.json", devices[i])
        assert {k: doc[k] for k in java[i]} == java[i], devices[i]

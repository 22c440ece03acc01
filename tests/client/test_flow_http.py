"""The whole device flow over HTTP, against a repository the CLI published.

Keys and bundles are made once per module with the CLI (``aoe-pack keygen``,
``aoe-pack build`` of the mnist sample as it is, encrypted for an x25519
device key). Each test then publishes into the folder a real HTTP server
serves (``http_server.root``) with ``aoe-pack manifest ...`` and runs the
device with ``aoe-pack client check --json`` (or the library ``check`` where
the CLI has no knob, such as the clock), honest server first, hostile after.
The honest flow runs from nginx too (``nginx_server``), with the documents
served as precompressed ``.gz`` siblings, as a production server would.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli
from _server_http import HttpServer
from _server_nginx import NginxServer

from aoe_pack.client import install
from aoe_pack.client.check import check
from aoe_pack.client.decide import Device, bucket
from aoe_pack.errors import ExpiredMetadataError
from aoe_pack.keys import load_public_key, load_signing_key
from aoe_pack.repository import envelope
from aoe_pack.repository.root import new_root
from aoe_pack.storage.http import HttpStore
from aoe_pack.storage.store import INDEX, MANIFEST, ROOT, root_name

REPO = Path(__file__).resolve().parents[2]
TAG = "tag_mnist"  # the sample's tag
MODEL = "mnist.tflite"
aoe = Cli(env=NO_PASSWORD)


def aoe_json(*args: object, exit_code: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = aoe(*args, json=True).expect(exit_code)
    assert doc["ok"] is (exit_code == 0), doc
    return doc


@dataclass(frozen=True)
class Kit:
    """What the module builds once: keys and bundles (by version) and their sources."""

    keys: Path
    bundles: dict[str, Path]
    sources: dict[str, Path]

    def key(self, name: str) -> Path:
        return self.keys / f"{name}.key"

    def pub(self, name: str) -> Path:
        return self.keys / f"{name}.pub"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("flow")
    key_dir = root / "keys"
    for name, kind in (("release", "ed25519"), ("new", "ed25519"), ("device", "x25519")):
        r = aoe("keygen", "--type", kind, "--out", key_dir / name)
        assert r.exit_code == 0, r.output
    bundles, sources = {}, {}
    # 1.3.0 is signed by a key the repository's root does not list (see the last tests).
    for version, signer in (("1.1.0", "release"), ("1.2.0", "release"), ("1.3.0", "new")):
        src = root / f"mnist-{version}"
        shutil.copytree(REPO / "sample_models" / "mnist", src)
        config = json.loads((src / "config.json").read_text())
        config.pop("targets", None)  # packed as it is: this is about delivery, not conversion
        config.update(modelName=MODEL, version=version)
        (src / "config.json").write_text(json.dumps(config))
        (src / "labels.txt").write_text(f"labels of {version}\n" + "digit\n" * 10)
        out = root / f"{TAG}-{version}.aoe"
        r = aoe(
            "build",
            src / "config.json",
            "--out",
            out,
            "--sign-key",
            key_dir / f"{signer}.key",
            "--recipient",
            key_dir / "device.pub",
        )
        assert r.exit_code == 0, r.output
        bundles[version], sources[version] = out, src
    return Kit(key_dir, bundles, sources)


@dataclass
class Repo:
    """A repository published by the CLI into the served folder, and a device against it."""

    kit: Kit
    server: HttpServer  # or an NginxServer for the tests that read no .requests
    work: Path

    @property
    def folder(self) -> Path:
        return self.server.root

    @property
    def trusted_root(self) -> Path:
        """root.json as shipped with the app (version 1, saved at init)."""
        return self.work / "shipped-root.json"

    @property
    def state(self) -> Path:
        return self.work / "device-state.json"

    @property
    def downloads(self) -> Path:
        return self.work / "models"

    def manifest(self, command: str, *args: object, key: str = "release") -> dict[str, Any]:
        return aoe_json(
            "manifest", command, "--repo", self.folder, *args, "--sign-key", self.kit.key(key)
        )

    def publish(self, version: str, *args: object) -> dict[str, Any]:
        return self.manifest("publish", self.kit.bundles[version], *args)

    def show(self) -> dict[str, Any]:
        return aoe_json("manifest", "show", "--repo", self.folder)

    def bundle_path(self, version: str) -> str:
        """The served path of a published release's bundle, relative to the server root."""
        for r in self.show()["models"][TAG]["releases"]:
            if r["version"] == version:
                url: str = r["url"]
                return url
        raise AssertionError(f"{version} is not published")

    def client(
        self,
        *,
        exit_code: int = 0,
        installed: str = "1.0.0",
        local: str | None = None,
        device_id: str = "phone-1",
        download: bool = True,
    ) -> dict[str, Any]:
        args: list[object] = [
            *("client", "check", "--repo", self.server.url, "--tag", TAG),
            *("--installed-version", installed, "--app-version", "3.0.0"),
            *("--device-id", device_id, "--trusted-root", self.trusted_root),
            *("--state", self.state),
        ]
        if local is not None:
            args += ["--local-version", local]
        if download:
            args += ["--download", self.downloads, "--decryption-key", self.kit.key("device")]
        return aoe_json(*args, exit_code=exit_code)


@pytest.fixture
def repo(kit: Kit, http_server: HttpServer, tmp_path: Path) -> Repo:
    """``manifest init`` of the served folder; root 1 is kept as the app's trusted root."""
    return _init(Repo(kit, http_server, tmp_path / "device"))


def _init(r: Repo) -> Repo:
    r.work.mkdir()
    doc = aoe_json(
        *("manifest", "init", "--repo", r.folder),
        *("--root-key", r.kit.pub("release"), "--sign-key", r.kit.key("release")),
    )
    assert doc["rootVersion"] == 1
    shutil.copyfile(r.folder / ROOT, r.trusted_root)
    return r


def _error(doc: dict[str, Any]) -> dict[str, Any]:
    err: dict[str, Any] = doc["error"]
    return err


def _assert_unpacked(repo: Repo, doc: dict[str, Any], version: str) -> None:
    out = Path(doc["unpacked"])
    assert out == repo.downloads / f"{TAG}-{version}"
    for name in (MODEL, "labels.txt"):
        assert (out / name).read_bytes() == (repo.kit.sources[version] / name).read_bytes()
    assert not list(repo.downloads.glob("*.partial"))
    assert not list(repo.downloads.glob("*.part*"))


def _device_ids(salt: str, percent: int) -> tuple[str, str]:
    """A device id inside a ``percent`` rollout of ``salt`` and one outside it."""
    ids = [f"phone-{i}" for i in range(1000)]
    inside = next(d for d in ids if bucket(salt, TAG, d) < percent * 100)
    outside = next(d for d in ids if bucket(salt, TAG, d) >= percent * 100)
    return inside, outside


# --- the honest flow -------------------------------------------------------------


def test_client_downloads_verifies_and_decrypts_over_http(repo: Repo) -> None:
    published = repo.publish("1.1.0")
    assert published["manifestVersion"] == 2
    doc = repo.client()
    assert doc["action"] == "download"
    assert doc["version"] == "1.1.0"
    assert (doc["rootVersion"], doc["manifestVersion"]) == (1, 2)
    assert doc["sha256"] == published["releases"][0]["sha256"]
    bundle = Path(doc["bundle"])
    assert bundle.read_bytes() == repo.kit.bundles["1.1.0"].read_bytes()
    _assert_unpacked(repo, doc, "1.1.0")
    assert ("GET", INDEX, None) in repo.server.requests  # the index and one tag document
    assert ("GET", f"tags/{TAG}/2.json", None) in repo.server.requests
    assert ("GET", MANIFEST, None) not in repo.server.requests
    assert json.loads(repo.state.read_text())["manifestVersion"] == 2

    again = repo.client(installed="1.1.0", local="1.0.0")  # now running it: nothing to do
    assert again["action"] == "keep"
    assert again["running"] == "1.1.0"


def test_client_check_over_nginx_with_compressed_documents(
    kit: Kit, nginx_server: NginxServer, tmp_path: Path
) -> None:
    """The device flow from a real web server whose documents have ``.gz`` siblings."""
    repo = _init(Repo(kit, nginx_server, tmp_path / "device"))
    repo.publish("1.1.0")
    documents = sorted(repo.folder.rglob("*.json"))
    for path in documents:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    doc = repo.client()
    assert doc["action"] == "download"
    assert (doc["rootVersion"], doc["manifestVersion"]) == (1, 2)
    _assert_unpacked(repo, doc, "1.1.0")

    wire = {r.path: r for r in nginx_server.wire(at_least=4)}
    tag_document = f"tags/{TAG}/2.json"  # read through the index, not manifest.json
    assert (wire[INDEX].status, wire[tag_document].status) == (200, 200)
    sent = wire[tag_document].bytes_sent
    assert sent < (repo.folder / tag_document).stat().st_size  # sent compressed
    assert MANIFEST not in wire
    bundle = wire[repo.bundle_path("1.1.0")]
    assert bundle.bytes_sent > kit.bundles["1.1.0"].stat().st_size  # sent as the file is
    again = repo.client(installed="1.1.0", local="1.0.0")
    assert again["action"] == "keep"


def test_client_hashes_the_bundle_while_downloading_it(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release match uses the digest taken on the wire: the downloaded
    # bundle is read once more only by the unpack, which verifies every chunk.
    original = install._open_hashed

    def no_second_read(folder: Any, name: str) -> Any:
        fp, got = original(folder, name)
        if got is not None:
            fp.close()
            raise AssertionError(f"{name} was read again to hash it")
        return fp, got

    monkeypatch.setattr(install, "_open_hashed", no_second_read)
    repo.publish("1.1.0")
    doc = repo.client()
    assert doc["action"] == "download"
    _assert_unpacked(repo, doc, "1.1.0")


def test_client_downloads_when_inside_rollout(repo: Repo) -> None:
    repo.publish("1.1.0", "--rollout", "25")
    salt = repo.show()["models"][TAG]["releases"][0]["rollout"]["salt"]
    inside, _ = _device_ids(salt, 25)
    doc = repo.client(device_id=inside)
    assert doc["action"] == "download"
    assert "in the 25% rollout" in doc["reason"]
    _assert_unpacked(repo, doc, "1.1.0")
    repo.manifest("rollout", TAG, "1.1.0", "50")  # growing it keeps devices in
    assert repo.client(device_id=inside, download=False)["action"] == "download"


def test_client_keeps_local_when_outside_rollout(repo: Repo) -> None:
    repo.publish("1.1.0", "--rollout", "25")
    salt = repo.show()["models"][TAG]["releases"][0]["rollout"]["salt"]
    _, outside = _device_ids(salt, 25)
    doc = repo.client(device_id=outside)
    assert doc["action"] == "keep"
    assert doc["version"] is None
    assert doc["unpacked"] is None
    assert doc["skipped"] == ["1.1.0: outside its 25% rollout"]
    assert not any(path.startswith("bundles/") for _, path, _ in repo.server.requests)
    repo.manifest("rollout", TAG, "1.1.0", "100")
    assert repo.client(device_id=outside)["action"] == "download"


def test_yanked_release_makes_device_revert_to_local(repo: Repo) -> None:
    repo.publish("1.1.0")
    assert repo.client()["action"] == "download"
    yanked = repo.manifest("yank", TAG, "1.1.0", "--reason", "bad accuracy")
    assert yanked["manifestVersion"] == 3
    doc = repo.client(installed="1.1.0", local="1.0.0")
    assert doc["action"] == "revert-to-local"
    assert doc["reason"] == "1.1.0 was yanked: bad accuracy"
    assert doc["running"] == "1.1.0"
    fresh = repo.client(device_id="phone-2", download=False)  # still on the shipped model
    assert fresh["action"] == "keep"
    assert fresh["skipped"] == ["1.1.0: yanked (bad accuracy)"]


def test_client_simulate_fleet_follows_rollout(repo: Repo) -> None:
    repo.publish("1.1.0", "--rollout", "25")
    doc = aoe_json(
        *("client", "simulate", "--repo", repo.server.url, "--tag", TAG),
        *("--trusted-root", repo.trusted_root, "--app-version", "3.0.0"),
        *("--local-version", "1.0.0", "--devices", "10000"),
    )
    assert doc["manifestVersion"] == 2
    assert doc["devices"] == 10_000
    outcomes = doc["outcomes"]
    assert set(outcomes) == {"download 1.1.0", "keep"}
    assert sum(outcomes.values()) == 10_000
    assert abs(outcomes["download 1.1.0"] / 100 - 25) <= 2


# --- attacks on the metadata -----------------------------------------------------


def test_rollback_attack_old_manifest_is_rejected(repo: Repo) -> None:
    repo.publish("1.1.0")
    # Version 2, validly signed, with the gzip siblings a server sends to devices.
    names = (MANIFEST, MANIFEST + ".gz", INDEX, INDEX + ".gz")
    old = {name: (repo.folder / name).read_bytes() for name in names}
    assert repo.manifest("resign")["manifestVersion"] == 3
    assert repo.client(download=False)["manifestVersion"] == 3
    for name, data in old.items():
        (repo.folder / name).write_bytes(data)
    err = _error(repo.client(exit_code=1, download=False))
    assert err["code"] == "rollback"
    assert "index.json version 2 is older than version 3" in err["message"]
    (repo.folder / INDEX).unlink()  # and through the manifest (a repository without index)
    (repo.folder / (INDEX + ".gz")).unlink()
    err = _error(repo.client(exit_code=1, download=False))
    assert err["code"] == "rollback"
    assert "manifest version 2 is older than version 3" in err["message"]
    assert json.loads(repo.state.read_text())["manifestVersion"] == 3


def test_freeze_attack_expired_manifest_is_rejected(repo: Repo) -> None:
    repo.publish("1.1.0", "--expires", "1m")
    assert repo.client(download=False)["manifestVersion"] == 2  # fresh: accepted
    state_before = repo.state.read_bytes()
    expires = dt.datetime.fromisoformat(repo.show()["expires"])
    device = Device(
        device_id="phone-1",
        app_version="3.0.0",
        runtimes=frozenset({"tflite"}),
        local_version="1.0.0",
    )
    store = HttpStore(repo.server.url)
    common: dict[str, Any] = {
        "tag": TAG,
        "device": device,
        "trusted_root": repo.trusted_root.read_bytes(),
        "state_path": repo.state,
    }
    late = expires + dt.timedelta(seconds=1)
    with pytest.raises(ExpiredMetadataError, match=r"index\.json version 2 expired at") as info:
        check(store, **common, now=late)
    assert info.value.code == "expired"
    assert repo.state.read_bytes() == state_before  # nothing accepted from a stale manifest
    just_in_time = check(store, **common, now=expires - dt.timedelta(seconds=1))
    assert just_in_time.decision.action.value == "download"


# --- attacks on the bundle -------------------------------------------------------


def test_mix_and_match_bundle_is_rejected(repo: Repo) -> None:
    repo.publish("1.1.0")
    path = repo.bundle_path("1.1.0")
    shutil.copyfile(repo.kit.bundles["1.2.0"], repo.folder / path)  # valid, signed, another
    err = _error(repo.client(exit_code=1))
    assert err["code"] == "bundle-mismatch"
    assert "bundle for 1.1.0" in err["message"]
    assert not (repo.downloads / f"{TAG}-1.1.0.aoe").exists()
    assert not (repo.downloads / f"{TAG}-1.1.0").exists()


def test_endless_bundle_download_is_cut_at_manifest_size(repo: Repo) -> None:
    published = repo.publish("1.1.0")
    size = published["releases"][0]["size"]
    path = repo.bundle_path("1.1.0")
    repo.server.endless(path)
    err = _error(repo.client(exit_code=1))
    assert err["code"] == "download-too-large"
    assert f"more than {size} bytes" in err["message"]
    assert not list(repo.downloads.iterdir())  # nothing kept: those bytes can never verify


def test_interrupted_bundle_download_resumes(repo: Repo) -> None:
    published = repo.publish("1.1.0")
    size = published["releases"][0]["size"]
    path = repo.bundle_path("1.1.0")
    repo.server.cut_after(path, size // 2)
    err = _error(repo.client(exit_code=1))
    assert err["code"] == "download"
    part = repo.downloads / f"{TAG}-1.1.0.aoe.part"
    kept = part.stat().st_size
    assert 0 < kept <= size // 2

    doc = repo.client()
    assert doc["action"] == "download"
    _assert_unpacked(repo, doc, "1.1.0")
    gets = [rng for method, p, rng in repo.server.requests if method == "GET" and p == path]
    assert gets == [None, f"bytes={kept}-"]


# --- root rotation ---------------------------------------------------------------


def test_root_rotation_is_followed_by_devices(repo: Repo) -> None:
    """``manifest rotate-root`` to a new key; a device that ships root 1 follows."""
    repo.publish("1.1.0")
    assert repo.client(download=False)["rootVersion"] == 1
    rotated = aoe_json(
        *("manifest", "rotate-root", "--repo", repo.folder, "--root-key", repo.kit.pub("new")),
        *("--sign-key", repo.kit.key("release"), "--sign-key", repo.kit.key("new")),
    )
    assert rotated["rootVersion"] == 2
    doc = repo.client(download=False)
    assert (doc["rootVersion"], doc["manifestVersion"]) == (
        2,
        4,
    )  # re-signed under both roots, then the new one
    assert repo.manifest("resign", key="new")["manifestVersion"] == 5
    assert repo.client(download=False)["manifestVersion"] == 5


def test_two_step_root_rotation_is_followed_by_devices(repo: Repo) -> None:
    """Root 2 adds the new key, root 3 drops the old one; the device walks 1 -> 2 -> 3."""
    repo.publish("1.1.0")
    sign = ("--sign-key", repo.kit.key("release"), "--sign-key", repo.kit.key("new"))
    base = ("manifest", "rotate-root", "--repo", repo.folder)
    both = ("--root-key", repo.kit.pub("release"), "--root-key", repo.kit.pub("new"))
    assert aoe_json(*base, *both, *sign)["rootVersion"] == 2
    assert aoe_json(*base, "--root-key", repo.kit.pub("new"), *sign)["rootVersion"] == 3
    doc = repo.client(download=False)
    assert (doc["rootVersion"], doc["manifestVersion"]) == (3, 6)
    assert doc["action"] == "download"
    assert [p for _, p, _ in repo.server.requests if p.startswith("roots/")] == [
        root_name(2),
        root_name(3),
        root_name(4),
    ]
    old_key_only = ("--sign-key", repo.kit.key("release"))
    err = _error(aoe_json("manifest", "resign", "--repo", repo.folder, *old_key_only, exit_code=1))
    assert err["code"] == "untrusted-metadata"  # the old key alone is out


def test_release_published_before_rotation_still_installs(repo: Repo) -> None:
    """A release the rotated manifest still offers must install on the devices it reaches.

    The manifest keys are rotated (in two steps, which the publisher accepts);
    the re-signed manifest keeps offering 1.1.0, whose bundle the old release
    key signed. The device checks bundle signatures against the newest root's
    keys only, so it downloads and decrypts nothing it can use.
    """
    repo.publish("1.1.0")
    sign = ("--sign-key", repo.kit.key("release"), "--sign-key", repo.kit.key("new"))
    base = ("manifest", "rotate-root", "--repo", repo.folder)
    both = ("--root-key", repo.kit.pub("release"), "--root-key", repo.kit.pub("new"))
    aoe_json(*base, *both, *sign)
    aoe_json(*base, "--root-key", repo.kit.pub("new"), *sign)
    verified = aoe_json(
        *("manifest", "verify", "--repo", repo.folder),
        *("--trusted-root", repo.trusted_root, "--bundles"),
    )
    assert verified["bundlesChecked"] == 1  # the publisher's own check says all is well
    doc = repo.client()
    assert doc["action"] == "download"
    _assert_unpacked(repo, doc, "1.1.0")


def test_rotation_with_too_few_old_signatures_is_rejected_by_devices(repo: Repo) -> None:
    repo.publish("1.1.0")
    assert repo.client(download=False)["rootVersion"] == 1
    state_before = repo.state.read_bytes()
    new_key = load_signing_key(str(repo.kit.key("new")))
    root_2 = new_root(2, [load_public_key(str(repo.kit.pub("new")))], 1)
    forged = envelope.sign(envelope.ROOT_TYPE, root_2.to_dict(), [new_key]).to_bytes()
    (repo.folder / root_name(2)).write_bytes(forged)
    err = _error(repo.client(exit_code=1, download=False))
    assert err["code"] == "root-rotation"
    assert "signed by 0 of the 1 required key(s) of root version 1" in err["message"]
    assert repo.state.read_bytes() == state_before


def test_bundle_signed_by_a_publish_trusted_key_installs(repo: Repo) -> None:
    """``manifest publish --trusted-key`` accepts a bundle another key signed; devices must too.

    The publisher verifies 1.3.0 against ``--trusted-key new.pub`` and lists it
    in a manifest the root's key signs; ``manifest verify --bundles`` passes.
    The device checks bundle signatures against the root's keys only.
    """
    published = repo.publish("1.3.0", "--trusted-key", repo.kit.pub("new"))
    assert [r["version"] for r in published["releases"]] == ["1.3.0"]
    verified = aoe_json(
        *("manifest", "verify", "--repo", repo.folder),
        *("--trusted-root", repo.trusted_root, "--bundles"),
    )
    assert verified["bundlesChecked"] == 1
    doc = repo.client()
    assert doc["action"] == "download"
    _assert_unpacked(repo, doc, "1.3.0")

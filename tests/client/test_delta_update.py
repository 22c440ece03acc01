"""Delta updates end to end (docs/format.md §16.5-16.6): publish, device, fallback.

A device runs 1.0.0 (installed from its bundle) and is chosen for 1.1.0, a
head-only fine-tune of the sample SqueezeNet. The publisher records a delta;
the device uses it when it can and falls back to the full bundle, and says so,
whenever the delta path fails.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.client.check import CheckResult, check
from aoe_pack.client.decide import Device
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.publish import releases
from aoe_pack.publish.deltas import DeltaOutcome, DeltaRequest, add_deltas, with_deltas
from aoe_pack.publish.workflow import edit_manifest, init_repository, read_state
from aoe_pack.repository.model import DeltaRef, delta_for
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import ROOT
from tests.bundle.test_delta import LABELS, SQUEEZENET, _fine_tuned
from tests.conftest import BuiltBundle

TAG = "tag_x"


def _retrained(model: bytes) -> bytes:
    """Every weight of ``model`` re-drawn: a full retrain."""
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    m = onnx.ModelProto()
    m.ParseFromString(model)
    rng = np.random.default_rng(11)
    for init in m.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and init.raw_data:
            n = len(init.raw_data) // 4
            init.raw_data = rng.normal(0, 0.1, n).astype(np.float32).tobytes()
    out: bytes = m.SerializeToString()
    return out


class Repo:
    def __init__(self, tmp: Path, signer: PrivateKey, key: PrivateKey) -> None:
        self.store = LocalStore(tmp / "repo")
        self.signer, self.key = signer, key
        self.downloads, self.state = tmp / "models", tmp / "state.json"
        init_repository(self.store, root_keys=[signer.public], threshold=1, sign_keys=[signer])

    @property
    def dkey(self) -> DecryptionKey:
        return DecryptionKey(origin="test key", private=self.key)

    def publish(self, bundle: Path, *, delta_from: tuple[str, ...] = ()) -> list[DeltaOutcome]:
        outcomes: list[DeltaOutcome] = []
        releases.publish(
            self.store,
            [bundle],
            sign_keys=[self.signer],
            deltas=DeltaRequest(
                from_versions=delta_from, decryption_key=self.dkey, on_delta=outcomes.append
            ),
        )
        return outcomes

    def check(self, installed: str | None) -> CheckResult:
        device = Device(
            device_id="phone-1",
            app_version="1.0.0",
            runtimes=frozenset({"tflite"}),
            local_version="0.9.0",
            installed_version=installed,
        )
        return check(
            self.store,
            tag=TAG,
            device=device,
            trusted_root=(self.store.root / ROOT).read_bytes(),
            state_path=self.state,
            download_dir=self.downloads,
            decryption_key=self.dkey,
        )

    def release(self, version: str) -> Any:
        found = read_state(self.store).manifest.models[TAG].find(version)
        assert found is not None
        return found


@pytest.fixture
def repo(
    tmp_path: Path, built_bundle: BuiltBundle, signer: PrivateKey, x25519_key: PrivateKey
) -> Repo:
    """1.0.0 published and installed on the device from its bundle."""
    r = Repo(tmp_path, signer, x25519_key)
    base = (SQUEEZENET / "squeezenet.onnx").read_bytes()
    r.publish(_bundle(built_bundle, base, "1.0.0", x25519_key))
    assert r.check(None).via == "bundle"
    return r


def _bundle(built_bundle: BuiltBundle, model: bytes, version: str, key: PrivateKey) -> Path:
    return built_bundle(
        {"model.tflite": model, "labels.txt": LABELS},
        version=version,
        tag=TAG,
        recipients=[key.public],
        name=f"{TAG}-{version}-{len(model)}-{hash(model) & 0xFFFF}.aoe",
    )


@pytest.fixture
def fine_tune(repo: Repo, built_bundle: BuiltBundle) -> Path:
    """1.1.0 (head-only fine-tune) published with a delta from 1.0.0."""
    bundle = _bundle(built_bundle, _fine_tuned(_installed_model(repo)), "1.1.0", repo.key)
    (outcome,) = repo.publish(bundle, delta_from=("1.0.0",))
    assert outcome.ref is not None
    return bundle


def _installed_model(repo: Repo, version: str = "1.0.0") -> bytes:
    return (repo.downloads / f"{TAG}-{version}" / "model.tflite").read_bytes()


def _expected(bundle: Path, repo: Repo) -> bytes:
    from aoe_pack.bundle.unpack import unpack_bundle

    out = bundle.with_suffix(".files")
    unpack_bundle(bundle, out, trusted_keys=[repo.signer.public], decryption_key=repo.dkey)
    return (out / "model.tflite").read_bytes()


# --- the delta path ----------------------------------------------------------------------------


def test_device_on_the_base_version_installs_from_the_delta(repo: Repo, fine_tune: Path) -> None:
    result = repo.check("1.0.0")
    assert result.via == "delta"
    assert result.delta is not None
    assert result.delta.error is None
    assert result.bundle is None
    assert _installed_model(repo, "1.1.0") == _expected(fine_tune, repo)
    # the delta is what crossed the wire: a fraction of the bundle
    assert result.delta.downloaded < 0.35 * repo.release("1.1.0").size
    doc = result.to_dict()
    assert doc["via"] == "delta"
    assert doc["delta"]["used"] is True


def test_device_on_another_version_downloads_the_bundle(repo: Repo, fine_tune: Path) -> None:
    result = repo.check("0.9.5")
    assert (result.via, result.delta) == ("bundle", None)


def test_published_release_lists_its_delta(repo: Repo, fine_tune: Path) -> None:
    rel = repo.release("1.1.0")
    (d,) = rel.deltas
    assert d.from_version == "1.0.0"
    assert d.url == f"deltas/{d.sha256}.aoed"
    assert 0 < d.size < rel.size
    assert (repo.store.root / d.url).stat().st_size == d.size


# --- fallback to the bundle, tested ------------------------------------------------------------


def test_delta_for_another_base_falls_back_to_the_bundle(repo: Repo, fine_tune: Path) -> None:
    model = repo.downloads / f"{TAG}-1.0.0" / "model.tflite"
    model.write_bytes(model.read_bytes()[::-1])  # the installed files are not the base
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "delta-base"
    assert _installed_model(repo, "1.1.0") == _expected(fine_tune, repo)
    assert result.to_dict()["delta"]["fallback"]["code"] == "delta-base"


def test_missing_base_folder_falls_back_to_the_bundle(repo: Repo, fine_tune: Path) -> None:
    import shutil

    shutil.rmtree(repo.downloads / f"{TAG}-1.0.0")
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "delta-base"
    assert result.delta.downloaded == 0  # known before a byte was fetched


def test_flipped_delta_on_the_server_falls_back_to_the_bundle(repo: Repo, fine_tune: Path) -> None:
    (d,) = repo.release("1.1.0").deltas
    blob = repo.store.root / d.url
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "delta"
    assert "not the one the manifest lists" in result.delta.error.message
    assert not list(repo.downloads.glob(".*aoed*"))  # nothing left behind


def test_delta_whose_result_differs_from_the_signed_sha256_falls_back_to_the_bundle(
    repo: Repo, fine_tune: Path, tmp_path: Path
) -> None:
    # An insider (a publisher bug, a stolen bundle key) lists a validly signed delta
    # whose target digest is not what its patch makes: the device checks every file.
    import hashlib

    from tests.bundle.test_delta import _model_target, _resign

    rel = repo.release("1.1.0")
    (d,) = rel.deltas
    bad = tmp_path / "bad.aoed"
    bad.write_bytes((repo.store.root / d.url).read_bytes())

    def wrong(doc: dict[str, Any]) -> None:
        _model_target(doc)["sha256"] = "0" * 64

    _resign(bad, repo.signer, wrong)
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    ref = DeltaRef(
        from_version="1.0.0", url=f"deltas/{sha}.aoed", size=bad.stat().st_size, sha256=sha
    )
    repo.store.put_blob(ref.url, bad, sha256=sha, size=ref.size)

    def swap(m: Any) -> Any:
        entry = m.models[TAG]
        target = entry.find("1.1.0")
        rels = tuple(replace(r, deltas=(ref,)) if r is target else r for r in entry.releases)
        return m.models.updated(TAG, replace(entry, releases=rels))

    edit_manifest(repo.store, swap, sign_keys=[repo.signer], expires=dt.timedelta(days=1))
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "integrity"
    assert "does not match the release's signed SHA-256" in result.delta.error.message
    assert _installed_model(repo, "1.1.0") == _expected(fine_tune, repo)
    assert not list(repo.downloads.glob(".tag_x-1.1.0*"))  # the staging folder is gone


def test_delta_larger_than_its_recorded_size_is_cut_off(repo: Repo, fine_tune: Path) -> None:
    (d,) = repo.release("1.1.0").deltas
    blob = repo.store.root / d.url
    blob.write_bytes(blob.read_bytes() + bytes(10 << 20))  # endless data
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "download-too-large"
    assert result.delta.downloaded == 0


def test_truncated_delta_on_the_server_falls_back_to_the_bundle(
    repo: Repo, fine_tune: Path
) -> None:
    (d,) = repo.release("1.1.0").deltas
    blob = repo.store.root / d.url
    blob.write_bytes(blob.read_bytes()[:-1000])
    result = repo.check("1.0.0")
    assert result.via == "bundle"
    assert result.delta is not None
    assert result.delta.error is not None
    assert result.delta.error.code == "delta"


def test_delta_listed_not_smaller_than_the_bundle_is_ignored(repo: Repo, fine_tune: Path) -> None:
    # a manifest (another publisher, an old bug) that lists a delta as large as the bundle
    rel = repo.release("1.1.0")
    (d,) = rel.deltas
    big = replace(d, size=rel.size)
    assert delta_for(replace(rel, deltas=(big,)), "1.0.0") is None

    def swap(m: Any) -> Any:
        entry = m.models[TAG]
        target = entry.find("1.1.0")
        changed = replace(target, deltas=(big,))
        rels = tuple(changed if r is target else r for r in entry.releases)
        return m.models.updated(TAG, replace(entry, releases=rels))

    edit_manifest(repo.store, swap, sign_keys=[repo.signer], expires=dt.timedelta(days=1))
    result = repo.check("1.0.0")
    assert (result.via, result.delta) == ("bundle", None)


# --- the publisher never offers a delta that is not smaller ------------------------------------


def test_publisher_never_records_a_delta_not_smaller_than_the_bundle(
    repo: Repo, built_bundle: BuiltBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Honest inputs never get here (a delta lacks the bundle's config and provenance):
    # force the size to the bundle's, as a future format's overhead might.
    from aoe_pack.publish import deltas

    real = deltas.make_delta

    def as_large(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        return replace(made, size=Path(args[1]).stat().st_size)

    monkeypatch.setattr(deltas, "make_delta", as_large)
    bundle = _bundle(built_bundle, _fine_tuned(_installed_model(repo)), "1.1.0", repo.key)
    (outcome,) = repo.publish(bundle, delta_from=("1.0.0",))
    assert outcome.size == outcome.bundle_size
    assert outcome.ref is None
    assert "not smaller" in outcome.reason
    assert repo.release("1.1.0").deltas == ()
    assert not (repo.store.root / "deltas").exists()


def test_full_retrain_delta_is_not_offered(repo: Repo, built_bundle: BuiltBundle) -> None:
    retrained = _retrained(_installed_model(repo))
    (outcome,) = repo.publish(
        _bundle(built_bundle, retrained, "1.1.0", repo.key), delta_from=("1.0.0",)
    )
    # zstd squeezes the float exponents a little: smaller, but not worth a second file
    assert 0.75 * outcome.bundle_size < outcome.size
    assert outcome.ref is None
    assert "above --delta-max-percent 75" in outcome.reason
    assert repo.release("1.1.0").deltas == ()
    assert not (repo.store.root / "deltas").exists()
    assert repo.check("1.0.0").via == "bundle"


def test_a_delta_added_later_is_used(repo: Repo, built_bundle: BuiltBundle) -> None:
    bundle = _bundle(built_bundle, _fine_tuned(_installed_model(repo)), "1.1.0", repo.key)
    repo.publish(bundle)
    assert repo.release("1.1.0").deltas == ()
    commit, (outcome,) = add_deltas(
        repo.store,
        tag=TAG,
        version="1.1.0",
        from_versions=["1.0.0"],
        sign_keys=[repo.signer],
        decryption_key=repo.dkey,
    )
    assert outcome.ref is not None
    assert commit.attempts == 1
    assert repo.check("1.0.0").via == "delta"
    # again: the release keeps its first delta, the manifest is unchanged
    again, _ = add_deltas(
        repo.store, tag=TAG, version="1.1.0", from_versions=["1.0.0"],
        sign_keys=[repo.signer], decryption_key=repo.dkey,
    )  # fmt: skip
    assert again.manifest.models[TAG].find("1.1.0").deltas == (outcome.ref,)  # type: ignore[union-attr]


def test_deltas_are_an_optional_member_of_the_signed_release(repo: Repo, fine_tune: Path) -> None:
    # readers from before §16 ignore it (§15.4 unknown members) and keep to the bundle
    import base64

    envelope = json.loads((repo.store.root / "manifest.json").read_bytes())
    signed = json.loads(base64.b64decode(envelope["payload"]))
    r100, r110 = signed["models"][TAG]["releases"]
    assert "deltas" not in r100
    assert [d["from"] for d in r110["deltas"]] == ["1.0.0"]


def test_a_delta_ref_round_trips() -> None:
    d = DeltaRef(from_version="1.0.0", url="deltas/" + "a" * 64 + ".aoed", size=5, sha256="a" * 64)
    assert DeltaRef.from_dict(d.to_dict()) == d


def test_recording_is_idempotent(repo: Repo, fine_tune: Path) -> None:
    m = read_state(repo.store).manifest
    (d,) = repo.release("1.1.0").deltas
    assert with_deltas(TAG, "1.1.0", [replace(d, sha256="b" * 64)])(m) is m.models


# --- manifest verify --bundles checks deltas as a device fetches them --------------------------


def test_repository_verify_checks_each_delta(repo: Repo, fine_tune: Path) -> None:
    from aoe_pack.client.verify_repo import verify_repository

    trusted = (repo.store.root / ROOT).read_bytes()
    assert verify_repository(repo.store, trusted, check_bundles=True).bundles_checked == 2


def test_repository_verify_refuses_a_swapped_delta(repo: Repo, fine_tune: Path) -> None:
    from aoe_pack.client.verify_repo import verify_repository
    from aoe_pack.errors import DeltaError

    (d,) = repo.release("1.1.0").deltas
    blob = repo.store.root / d.url
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(DeltaError, match="is not the file the manifest lists"):
        verify_repository(repo.store, (repo.store.root / ROOT).read_bytes(), check_bundles=True)

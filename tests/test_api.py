"""aoe_pack.api, the library's front: each call as a script makes it, and its exact errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aoe_pack import api
from aoe_pack.assemble import BuildEvents
from aoe_pack.client import Action, Device
from aoe_pack.errors import (
    AoePackError,
    BundleError,
    BundleNotFoundError,
    ConfigValidationError,
    IntegrityError,
    KeyReferenceError,
    KeyTypeError,
    MissingKeyError,
    RollbackError,
    UpdateURLMismatchError,
    UsageError,
)
from aoe_pack.keys import keygen, load_decryption_key, load_public_key, load_signing_key

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "MNN", "ncnn", "torch", "numpy")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """keys/signer (bundles), keys/phone (recipient), keys/release (repository)."""
    folder = tmp_path_factory.mktemp("keys")
    keygen("ed25519", folder / "signer")
    keygen("x25519", folder / "phone")
    keygen("ed25519", folder / "release")
    return folder


def write_config(folder: Path, *, version: str = "1.0.0", **extra: object) -> Path:
    """The sample MNIST model packed as it is (no conversion), with its labels."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "sample_models" / "mnist" / "mnist.tflite", folder)
    shutil.copy(REPO / "sample_models" / "mnist" / "labels.txt", folder)
    config = {
        "version": version,
        "tag": "tag_mnist",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "mnist.tflite",
        "files": [{"path": "labels.txt", "role": "labels"}],
        **extra,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def bundle(tmp_path: Path, keys: Path) -> Path:
    """An unencrypted bundle of the sample, signed by keys/signer."""
    return api.build(
        configs=write_config(tmp_path / "model"),
        out=tmp_path / "mnist.aoe",
        sign_keys=[keys / "signer.key"],
        encrypt=False,
    ).path


def test_importing_the_api_loads_no_framework() -> None:
    probe = "import sys, json, aoe_pack.api; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert "aoe_pack" in loaded
    assert sorted(loaded & {*HEAVY, "jsonschema", "rich", "click"}) == []


def test_build_verify_unpack_round_trip(tmp_path: Path, keys: Path) -> None:
    config = write_config(tmp_path / "model")
    built = api.build(
        configs=config,
        out=tmp_path / "mnist.aoe",
        sign_keys=[str(keys / "signer.key")],
        recipients=[keys / "phone.pub"],
    )
    assert built.path == tmp_path / "mnist.aoe"
    assert built.result.manifest.encryption is not None
    assert built.to_dict()["encrypted"] is True
    assert "targets" not in built.to_dict()  # packed as it is: nothing converted

    verified = api.verify(
        bundle=built.path, trusted_keys=[keys / "signer.pub"], decryption_key=keys / "phone.key"
    )
    assert verified.decrypted
    assert verified.manifest.model.tag == "tag_mnist"

    unpacked = api.unpack(
        bundle=built.path,
        out=tmp_path / "out",
        trusted_keys=[load_public_key(str(keys / "signer.pub"))],
        decryption_key=load_decryption_key(str(keys / "phone.key")),
    )
    assert sorted(p.name for p in unpacked.written) == ["labels.txt", "mnist.tflite"]
    for name in ("mnist.tflite", "labels.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "model" / name).read_bytes()


def test_loaded_keys_and_references_build_the_same_bundle(
    tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # unencrypted + fixed time: same bytes
    config = write_config(tmp_path / "model")
    by_ref = api.build(
        configs=[config], out=tmp_path / "a.aoe", sign_keys=[keys / "signer.key"], encrypt=False
    )
    loaded = load_signing_key(str(keys / "signer.key"))
    by_obj = api.build(configs=[config], out=tmp_path / "b.aoe", sign_keys=[loaded], encrypt=False)
    assert by_ref.path.read_bytes() == by_obj.path.read_bytes()


def test_a_tampered_bundle_raises_integrity_error(bundle: Path, keys: Path) -> None:
    data = bytearray(bundle.read_bytes())
    model = (REPO / "sample_models" / "mnist" / "mnist.tflite").read_bytes()
    at = data.find(model)  # unencrypted: the model is stored as it is
    assert at > 0
    data[at + len(model) // 2] ^= 0x01
    bundle.write_bytes(data)
    with pytest.raises(IntegrityError, match=r"mnist\.tflite: chunk 0 .* signed SHA-256") as info:
        api.verify(bundle=bundle, trusted_keys=[keys / "signer.pub"])
    assert info.type is IntegrityError
    assert info.value.code == "integrity"


def test_an_invalid_config_raises_config_validation_error(tmp_path: Path, keys: Path) -> None:
    config = write_config(tmp_path / "model", version="one")
    with pytest.raises(ConfigValidationError, match="problem") as info:
        api.build(configs=config, out=tmp_path / "x.aoe", sign_keys=[keys / "signer.key"])
    assert info.value.violations
    assert not (tmp_path / "x.aoe").exists()


def test_encrypting_without_keys_is_a_missing_key_error(tmp_path: Path, keys: Path) -> None:
    config = write_config(tmp_path / "model")  # "encrypt" defaults to on
    with pytest.raises(MissingKeyError, match="encryption is on but no --recipient"):
        api.build(configs=config, out=tmp_path / "x.aoe", sign_keys=[keys / "signer.key"])


def test_encrypt_false_with_recipients_is_a_usage_error(tmp_path: Path, keys: Path) -> None:
    config = write_config(tmp_path / "model")
    with pytest.raises(UsageError, match="contradicts"):
        api.build(
            configs=config,
            out=tmp_path / "x.aoe",
            sign_keys=[keys / "signer.key"],
            recipients=[keys / "phone.pub"],
            encrypt=False,
        )


def test_keys_for_a_config_that_says_no_encryption_encrypt_with_a_warning(
    tmp_path: Path, keys: Path
) -> None:
    class Heard(BuildEvents):
        def __init__(self) -> None:
            self.warnings: list[str] = []
            self.started: list[str] = []

        def warning(self, message: str) -> None:
            self.warnings.append(message)

        def model_started(self, key: str, config: object) -> None:
            self.started.append(key)

    heard = Heard()
    built = api.build(
        configs=write_config(tmp_path / "model", encrypt=False),
        out=tmp_path / "x.aoe",
        sign_keys=[keys / "signer.key"],
        encryption_keys=[bytes(range(32))],
        events=heard,
    )
    assert built.result.manifest.encryption is not None
    # Without numpy (no conversion extra: macOS and Windows CI) a build also says so.
    unchecked = "the model mnist.tflite was not checked: numpy is not installed"
    assert [w for w in heard.warnings if not w.startswith(unchecked)] == [
        'the config says "encrypt": false, but keys were given: encrypting'
    ]
    assert heard.started == [""]  # one model, not a feature
    assert api.verify(
        bundle=built.path, trusted_keys=[keys / "signer.pub"], decryption_key=bytes(range(32))
    ).decrypted


def test_an_encryption_key_cannot_sign(tmp_path: Path, keys: Path) -> None:
    phone = load_decryption_key(str(keys / "phone.key")).private
    assert phone is not None
    with pytest.raises(KeyTypeError, match="only encrypts"):
        api.build(
            configs=write_config(tmp_path / "model"),
            out=tmp_path / "x.aoe",
            sign_keys=[phone],
            encrypt=False,
        )


def test_a_recipient_key_is_not_a_trusted_signer(bundle: Path, keys: Path) -> None:
    with pytest.raises(KeyTypeError, match="encryption key"):
        api.verify(bundle=bundle, trusted_keys=[load_public_key(str(keys / "phone.pub"))])


def test_publish_to_a_folder_then_check_as_a_device(tmp_path: Path, keys: Path) -> None:
    built = api.build(
        configs=write_config(tmp_path / "model"),
        out=tmp_path / "mnist.aoe",
        sign_keys=[keys / "signer.key"],
        recipients=[keys / "phone.pub"],
    )
    repo = tmp_path / "repo"
    root = api.init_repository(
        repo=repo, root_keys=[keys / "release.pub"], sign_keys=[keys / "release.key"]
    )
    assert root.version == 1
    uploads: list[str] = []
    published = api.publish(
        bundles=[built.path],
        repo=repo,
        sign_keys=[keys / "release.key"],
        trusted_keys=[keys / "signer.pub"],
        rollout=100,
        on_upload=lambda path, tag, release: uploads.append(tag),
    )
    assert published.changed
    assert uploads == ["tag_mnist"]
    [(tag, release)] = published.releases
    assert (tag, release.version) == ("tag_mnist", "1.0.0")
    assert published.to_dict()["manifestVersion"] == 2

    device = Device(
        device_id="install-1", app_version="3.0.0", runtimes=frozenset({"tflite"}),
        local_version="0.9.0",
    )  # fmt: skip
    checked = api.check(
        repo=repo,
        tag="tag_mnist",
        device=device,
        trusted_root=repo / "root.json",
        state=tmp_path / "state.json",
        download_dir=tmp_path / "models",
        decryption_key=keys / "phone.key",
    )
    assert checked.decision.action is Action.DOWNLOAD
    assert checked.manifest_version == 2
    assert checked.unpacked is not None
    assert (checked.unpacked / "mnist.tflite").read_bytes() == (
        tmp_path / "model" / "mnist.tflite"
    ).read_bytes()


def test_publishing_again_changes_nothing_and_names_kept_settings(
    bundle: Path, tmp_path: Path, keys: Path
) -> None:
    repo = tmp_path / "repo"
    api.init_repository(
        repo=repo, root_keys=[keys / "release.pub"], sign_keys=[keys / "release.key"]
    )
    common = {"bundles": [bundle], "repo": repo, "sign_keys": [keys / "release.key"]}
    first = api.publish(**common, trusted_keys=[keys / "signer.pub"], rollout=10)
    again = api.publish(**common, trusted_keys=[keys / "signer.pub"], rollout=50)
    assert first.changed
    assert not again.changed
    assert again.commit.manifest.version == first.commit.manifest.version
    [(tag, kept)] = again.kept_first_settings()
    assert (tag, kept.rollout_percent) == ("tag_mnist", 10)
    assert first.kept_first_settings() == []


def test_check_refuses_a_manifest_older_than_the_state_remembers(
    bundle: Path, tmp_path: Path, keys: Path
) -> None:
    repo = tmp_path / "repo"
    api.init_repository(
        repo=repo, root_keys=[keys / "release.pub"], sign_keys=[keys / "release.key"]
    )
    old_manifest = (repo / "manifest.json").read_bytes()
    old_index = (repo / "index.json").read_bytes()
    api.publish(bundles=[bundle], repo=repo, sign_keys=[keys / "release.key"],
                trusted_keys=[keys / "signer.pub"])  # fmt: skip
    device = Device(device_id="d", app_version="1.0.0", runtimes=frozenset({"tflite"}),
                    local_version="1.0.0")  # fmt: skip
    shipped = (repo / "root.json").read_bytes()
    state = tmp_path / "state.json"
    api.check(repo=repo, tag="tag_mnist", device=device, trusted_root=shipped, state=state)
    (repo / "manifest.json").write_bytes(old_manifest)  # a mirror replays version 1
    (repo / "index.json").write_bytes(old_index)
    with pytest.raises(RollbackError) as info:
        api.check(repo=repo, tag="tag_mnist", device=device, trusted_root=shipped, state=state)
    assert info.type is RollbackError


def test_check_keeps_its_state_per_repository_by_default(
    bundle: Path, tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    repo = tmp_path / "repo"
    api.init_repository(
        repo=repo, root_keys=[keys / "release.pub"], sign_keys=[keys / "release.key"]
    )
    device = Device(device_id="d", app_version="1.0.0", runtimes=frozenset({"tflite"}),
                    local_version="1.0.0")  # fmt: skip
    result = api.check(
        repo=str(repo), tag="tag_mnist", device=device, trusted_root=repo / "root.json",
        require_tag=False,
    )  # fmt: skip
    assert result.decision.action is Action.KEEP
    folder = tmp_path / "xdg" / "aoe-pack" / "client"
    states = [p for p in folder.iterdir() if p.suffix == ".json"]  # beside: <state>.cache/
    assert len(states) == 1
    assert json.loads(states[0].read_text())["manifestVersion"] == 1


def test_a_missing_bundle_is_a_bundle_error_not_an_os_error(tmp_path: Path, keys: Path) -> None:
    with pytest.raises(BundleNotFoundError, match=r"missing\.aoe does not exist$") as info:
        api.verify(bundle=tmp_path / "missing.aoe", trusted_keys=[keys / "signer.pub"])
    assert isinstance(info.value, BundleError)
    assert info.value.code == "bundle-not-found"


def test_sign_adds_a_second_approver_that_verify_counts(
    bundle: Path, keys: Path, tmp_path: Path
) -> None:
    review = keygen("p256", tmp_path / "review")
    signed = api.sign(
        bundle=bundle,
        sign_keys=[load_signing_key(str(tmp_path / "review.key"))],
        trusted_keys=[keys / "signer.pub"],
    )
    assert signed.added == (review.key_id,)
    trusted = [keys / "signer.pub", tmp_path / "review.pub"]
    assert len(api.verify(bundle=bundle, trusted_keys=trusted, threshold=2).signatures) == 2


def test_sign_loads_its_keys_before_it_looks_for_the_bundle(tmp_path: Path) -> None:
    with pytest.raises(KeyReferenceError, match=r"missing\.key"):
        api.sign(bundle=tmp_path / "missing.aoe", sign_keys=[tmp_path / "missing.key"])


PUBLIC = "https://models.example.com/repo/"


def _with_update_url(tmp_path: Path, keys: Path, url: str | None, version: str) -> Path:
    extra = {} if url is None else {"updateURL": url}
    return api.build(
        configs=write_config(tmp_path / f"model-{version}", version=version, **extra),
        out=tmp_path / f"mnist-{version}.aoe",
        sign_keys=[keys / "signer.key"],
        encrypt=False,
    ).path


def _init(repo: Path, keys: Path) -> None:
    api.init_repository(
        repo=repo, root_keys=[keys / "release.pub"], sign_keys=[keys / "release.key"]
    )


@pytest.mark.parametrize(
    "written",
    [PUBLIC, "https://models.example.com/repo", "HTTPS://Models.EXAMPLE.com:443/repo/", None],
    ids=["same", "no-trailing-slash", "scheme-host-case-default-port", "no-update-url"],
)
def test_publish_with_public_url_accepts_bundles_naming_that_repository(
    tmp_path: Path, keys: Path, written: str | None
) -> None:
    bundle = _with_update_url(tmp_path, keys, written, "1.0.0")
    repo = tmp_path / "repo"
    _init(repo, keys)
    published = api.publish(
        bundles=[bundle], repo=repo, sign_keys=[keys / "release.key"],
        trusted_keys=[keys / "signer.pub"], public_url=PUBLIC,
    )  # fmt: skip
    assert published.changed


@pytest.mark.parametrize(
    "written",
    [
        "https://models.example.com/other/",
        "https://models.example.com/Repo/",  # the path is compared as written
        "https://models.example.com:8443/repo/",
        "https://cdn.example.com/repo/",
    ],
    ids=["other-path", "path-case", "other-port", "other-host"],
)
def test_publish_with_public_url_refuses_a_bundle_naming_another_repository(
    tmp_path: Path, keys: Path, written: str
) -> None:
    bundle = _with_update_url(tmp_path, keys, written, "1.0.0")
    repo = tmp_path / "repo"
    _init(repo, keys)
    with pytest.raises(UpdateURLMismatchError) as e:
        api.publish(
            bundles=[bundle], repo=repo, sign_keys=[keys / "release.key"],
            trusted_keys=[keys / "signer.pub"], public_url=PUBLIC,
        )  # fmt: skip
    assert e.value.code == "update-url-mismatch"
    assert e.value.message.startswith(
        f"mnist-1.0.0.aoe: its updateURL {written} names another repository than "
        f"--public-url {PUBLIC} ("
    )
    assert not (repo / "bundles").exists() or not any((repo / "bundles").iterdir())


def test_publish_with_an_invalid_public_url_is_a_usage_error(tmp_path: Path, keys: Path) -> None:
    bundle = _with_update_url(tmp_path, keys, None, "1.0.0")
    with pytest.raises(UsageError, match="uses http:// to a host that is not loopback"):
        api.publish(
            bundles=[bundle], repo=tmp_path / "repo", sign_keys=[keys / "release.key"],
            public_url="http://models.example.com/repo/",
        )  # fmt: skip


def test_check_finds_the_repository_in_the_local_bundle(tmp_path: Path, keys: Path) -> None:
    """A folder is not an address a bundle can carry, so the library's own check goes
    through a bundle naming a loopback URL that nothing serves: the error is the download's."""
    repo = tmp_path / "repo"
    _init(repo, keys)
    shipped = _with_update_url(tmp_path, keys, "http://127.0.0.1:9/repo/", "1.0.0")
    device = Device(
        device_id="d", app_version="3.0.0", runtimes=frozenset({"tflite"}), local_version="1.0.0"
    )
    with pytest.raises(AoePackError) as e:
        api.check(
            tag="tag_mnist", device=device, trusted_root=repo / "root.json",
            state=tmp_path / "state.json", local_bundle=shipped, timeout=5,
        )  # fmt: skip
    assert "127.0.0.1:9" in e.value.message
    with pytest.raises(UsageError, match="no repository to check"):
        api.check(tag="tag_mnist", device=device, trusted_root=repo / "root.json")

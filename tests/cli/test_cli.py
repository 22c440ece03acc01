"""The command line as a user meets it: exit codes, --json, messages, keys, round trips."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from _cli import aoe
from _skips import needs_posix_modes

from aoe_pack.bundle.container import read_layout

REPO = Path(__file__).resolve().parents[2]
AS_IS = {"mnist": "mnist.tflite", "squeezenet": "squeezenet.onnx"}
Samples = dict[str, tuple[Path, str]]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """The sample models packed as they are: no conversion targets, mnist as its .tflite.

    These tests are about packing, signing and encryption; conversion has its own
    (tests/convert). Copies keep the committed samples untouched.
    """
    root = tmp_path_factory.mktemp("samples")
    out = {}
    for name, model_file in AS_IS.items():
        folder = root / name
        shutil.copytree(REPO / "sample_models" / name, folder)
        config = json.loads((folder / "config.json").read_text())
        config.pop("targets", None)
        config["modelName"] = model_file
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        out[name] = (folder / "config.json", model_file)
    return out


def build_sample(
    out: Path,
    keys: dict[str, Path],
    samples: Samples,
    *extra: object,
    model: str = "mnist",
    signer: str = "signer",
) -> Path:
    """Build a sample model's bundle with the CLI; fail the test if that fails."""
    cfg, _ = samples[model]
    r = aoe("build", cfg, "--out", out, "--sign-key", keys[signer].with_suffix(".key"), *extra)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, kind in (
        ("signer", "ed25519"),
        ("signer2", "p256"),
        ("other", "ed25519"),
        ("device", "x25519"),
        ("device2", "mlkem768-x25519"),
        ("device3", "p256-kem"),
        ("app", "aes256"),
    ):
        r = aoe("keygen", "--type", kind, "--out", d / name, env={"AOE_PACK_PASSWORD": ""})
        assert r.exit_code == 0, r.output
        out[name] = d / name
    return out


def test_keygen_writes_private_and_public(tmp_path: Path) -> None:
    r = aoe("keygen", "--out", tmp_path / "k", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert doc["type"] == "ed25519"
    assert len(doc["keyid"]) == 64
    assert (tmp_path / "k.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


@needs_posix_modes
def test_keygen_writes_the_private_key_0600(tmp_path: Path) -> None:
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    r = aoe("keygen", "--out", tmp_path / "k")
    assert r.exit_code == 1
    assert "already exists" in r.stderr
    assert "Traceback" not in r.stderr


def test_password_protected_key_via_env(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    env = {"AOE_PACK_PASSWORD": "correct horse"}
    assert aoe("keygen", "--out", tmp_path / "pw", env=env).exit_code == 0
    assert b"ENCRYPTED" in (tmp_path / "pw.key").read_bytes()
    cfg, _ = samples["mnist"]
    out = tmp_path / "b.aoe"
    base = ["build", cfg, "--out", out, "--sign-key", tmp_path / "pw.key", "--no-encrypt"]
    wrong = aoe(*base, "--json", env={"AOE_PACK_PASSWORD": "wrong"})
    assert wrong.exit_code == 1
    assert json.loads(wrong.stdout)["error"]["code"] == "wrong-password"
    no_pw = aoe(*base, env={"AOE_PACK_PASSWORD": ""})
    assert no_pw.exit_code == 1
    assert "encrypted" in no_pw.stderr
    assert aoe(*base, env=env).exit_code == 0


def test_env_key_reference(tmp_path: Path, keys: dict[str, Path], samples: Samples) -> None:
    cfg, _ = samples["squeezenet"]
    env = {
        "SIGNER": (keys["signer"].with_suffix(".key")).read_text(),
        "TRUST": (keys["signer"].with_suffix(".pub")).read_text(),
    }
    out = tmp_path / "s.aoe"
    assert (
        aoe(
            "build", cfg, "--out", out, "--sign-key", "env://SIGNER", "--no-encrypt", env=env
        ).exit_code
        == 0
    )
    assert aoe("verify", out, "--trusted-key", "env://TRUST", env=env).exit_code == 0
    missing = aoe("verify", out, "--trusted-key", "env://NOPE_NOT_SET")
    assert missing.exit_code == 2  # a key reference naming nothing: the command line is wrong
    assert "NOPE_NOT_SET" in missing.stderr


@pytest.mark.parametrize("model", sorted(AS_IS))
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("signers", [1, 2])
def test_sample_round_trip_bit_exact(
    tmp_path: Path,
    keys: dict[str, Path],
    model: str,
    encrypted: bool,
    signers: int,
    samples: Samples,
) -> None:
    cfg, model_file = samples[model]
    bundle = tmp_path / f"{model}.aoe"
    sign = ["--sign-key", keys["signer"].with_suffix(".key")]
    trust = ["--trusted-key", keys["signer"].with_suffix(".pub")]
    if signers == 2:
        sign += ["--sign-key", keys["signer2"].with_suffix(".key")]
        trust += ["--trusted-key", keys["signer2"].with_suffix(".pub"), "--threshold", "2"]
    enc = ["--recipient", keys["device"].with_suffix(".pub")] if encrypted else ["--no-encrypt"]
    dec = ["--decryption-key", keys["device"].with_suffix(".key")] if encrypted else []
    r = aoe("build", cfg, "--out", bundle, *sign, *enc, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["encrypted"] is encrypted
    v = aoe("verify", bundle, *trust, *dec, "--json")
    assert v.exit_code == 0, v.output
    doc = json.loads(v.stdout)
    assert doc["verified"] is True
    assert doc["decrypted"] is encrypted
    assert sum(s["valid"] for s in doc["signatures"]) == signers
    u = aoe("unpack", bundle, "--out", tmp_path / "out", *trust, *dec)
    assert u.exit_code == 0, u.output
    for name in (model_file, "labels.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (cfg.parent / name).read_bytes()


def test_every_recipient_type_decrypts_from_its_key_file(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    bundle = tmp_path / "m.aoe"
    r = aoe(
        "build",
        cfg,
        "--out",
        bundle,
        "--sign-key",
        keys["signer"].with_suffix(".key"),
        "--recipient",
        keys["device2"].with_suffix(".pub"),
        "--recipient",
        keys["device3"].with_suffix(".pub"),
        "--encryption-key-file",
        keys["app"].with_suffix(".key"),
    )
    assert r.exit_code == 0, r.output
    trust = ["--trusted-key", keys["signer"].with_suffix(".pub")]
    for name in ("device2", "device3", "app"):
        dkey = keys[name].with_suffix(".key")
        assert aoe("verify", bundle, *trust, "--decryption-key", dkey).exit_code == 0
    wrong = aoe(
        "verify", bundle, *trust, "--decryption-key", keys["device"].with_suffix(".key"), "--json"
    )
    assert wrong.exit_code == 1
    assert json.loads(wrong.stdout)["error"]["code"] == "no-matching-recipient"


def test_tampered_bundle_fails_with_json_error(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    bundle = tmp_path / "m.aoe"
    assert (
        aoe(
            "build",
            cfg,
            "--out",
            bundle,
            "--sign-key",
            keys["signer"].with_suffix(".key"),
            "--no-encrypt",
        ).exit_code
        == 0
    )
    with bundle.open("rb") as fp:
        layout = read_layout(fp, file_size=bundle.stat().st_size)
    model = next(e for e in layout.entries if e.name == "payload/mnist.tflite")
    data = bytearray(bundle.read_bytes())
    data[model.data_offset + 100] ^= 0x01
    bundle.write_bytes(bytes(data))
    r = aoe("verify", bundle, "--trusted-key", keys["signer"].with_suffix(".pub"), "--json")
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "integrity"
    assert "chunk 0" in err["message"]
    text = aoe("verify", bundle, "--trusted-key", keys["signer"].with_suffix(".pub"))
    assert text.exit_code == 1
    assert text.stderr.startswith("error: ")
    assert "Traceback" not in text.stderr


def test_untrusted_signer_fails(tmp_path: Path, keys: dict[str, Path], samples: Samples) -> None:
    bundle = tmp_path / "m.aoe"
    build_sample(bundle, keys, samples, "--no-encrypt", signer="other")
    r = aoe("verify", bundle, "--trusted-key", keys["signer"].with_suffix(".pub"))
    assert r.exit_code == 1
    assert "key not trusted" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],  # missing BUNDLE
        ["verify", "x.aoe"],  # missing --trusted-key
        ["verify", "x.aoe", "--trusted-key", "k.pub", "--threshold", "0"],
        ["keygen", "--out", "k", "--type", "rsa"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert aoe(*args).exit_code == 2


def test_threshold_above_trusted_keys_is_usage_error(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    bundle = tmp_path / "m.aoe"
    build_sample(bundle, keys, samples, "--no-encrypt")
    r = aoe(
        "verify", bundle, "--trusted-key", keys["signer"].with_suffix(".pub"), "--threshold", "2"
    )
    assert r.exit_code == 2
    assert "exceeds" in r.stderr


def test_encryption_without_recipient_is_refused(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    r = aoe(
        "build", cfg, "--out", tmp_path / "m.aoe", "--sign-key", keys["signer"].with_suffix(".key")
    )
    assert r.exit_code == 1  # the config asks for encryption: well-formed, but refused
    assert "--recipient" in r.stderr
    assert not (tmp_path / "m.aoe").exists()


def test_failed_build_leaves_no_output(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    r = aoe(
        "build",
        cfg,
        "--out",
        tmp_path / "m.aoe",
        "--sign-key",
        keys["device"].with_suffix(".key"),
        "--no-encrypt",
    )
    assert r.exit_code == 1
    assert "not a signing key" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_inspect_without_keys(tmp_path: Path, keys: dict[str, Path], samples: Samples) -> None:
    bundle = tmp_path / "s.aoe"
    build_sample(
        bundle, keys, samples, "--recipient", keys["device"].with_suffix(".pub"), model="squeezenet"
    )
    r = aoe("inspect", bundle, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == {
        "tag": "tag_squeezenet",
        "name": "squeezenet.onnx",
        "version": "1.0.0",
        "runtime": "onnx",
        "updateURL": "https://models.example.com/squeezenet/",  # the config's, signed
    }
    signer_id = json.loads(aoe("keygen", "--out", tmp_path / "x", "--json").stdout)["keyid"]
    assert signer_id not in doc["signers"]
    assert len(doc["signers"]) == 1
    assert doc["encryption"]["recipients"][0]["kem"] == "DHKEM(X25519, HKDF-SHA256)"
    assert doc["provenance"]["builder"]["name"] == "aoe-pack"
    text = aoe("inspect", bundle)
    assert "tag_squeezenet" in text.stdout
    assert "unverified" in text.stdout
    assert "  updates   https://models.example.com/squeezenet/\n" in text.stdout


def test_inspect_a_bundle_whose_config_has_no_update_url(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    config_path, _ = samples["mnist"]
    folder = tmp_path / "mnist"
    shutil.copytree(config_path.parent, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["updateURL"]  # Android's model.config has none
    (folder / "config.json").write_text(json.dumps(config))
    bundle = tmp_path / "m.aoe"
    r = aoe("build", folder / "config.json", "--out", bundle, "--no-encrypt",
            "--sign-key", keys["signer"].with_suffix(".key"))  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(aoe("inspect", bundle, "--json").stdout)
    assert "updateURL" not in doc["model"]
    assert "updates" not in aoe("inspect", bundle).stdout


def test_inspect_legacy_aoe_file(tmp_path: Path) -> None:
    legacy = tmp_path / "model.bin"
    legacy.write_bytes(b"\x01" + (32).to_bytes(4, "big") + b"0" * 16 + os.urandom(32))
    r = aoe("inspect", legacy, "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["code"] == "legacy-aoe-format"


def test_validate_reports_every_problem_and_exit_1() -> None:
    r = aoe("validate", REPO / "sample_models/bad-many-errors/config.json", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert len(doc["violations"]) >= 3
    assert all(v["line"] for v in doc["violations"])


def test_build_rejects_invalid_config(tmp_path: Path, keys: dict[str, Path]) -> None:
    r = aoe(
        "build",
        REPO / "sample_models/bad-misspelt-key/config.json",
        "--out",
        tmp_path / "b.aoe",
        "--sign-key",
        keys["signer"].with_suffix(".key"),
        "--no-encrypt",
    )
    assert r.exit_code == 1
    assert "aoe-pack validate" in r.stderr


def test_help_teaches() -> None:
    r = aoe("--help")
    assert r.exit_code == 0
    for cmd in ("keygen", "validate", "build", "verify", "inspect", "unpack"):
        assert cmd in r.stdout
    assert "Exit codes" in aoe("verify", "--help").stdout


def test_no_color_and_non_tty_output_is_plain(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    r = aoe(
        "build",
        cfg,
        "--out",
        tmp_path / "m.aoe",
        "--sign-key",
        keys["signer"].with_suffix(".key"),
        "--no-encrypt",
        env={"NO_COLOR": "1"},
    )
    assert r.exit_code == 0
    assert "\x1b[" not in r.output


def test_verify_stays_light(
    tmp_path: Path,
    keys: dict[str, Path],
    samples: Samples,
    modules_imported_by: Callable[[Sequence[str]], tuple[object, set[str]]],
) -> None:
    """The device-side path must not import any ML framework (nor the config stack)."""
    bundle = tmp_path / "m.aoe"
    build_sample(bundle, keys, samples, "--recipient", keys["device"].with_suffix(".pub"))
    code, loaded = modules_imported_by(
        [
            "verify",
            str(bundle),
            "--trusted-key",
            str(keys["signer"].with_suffix(".pub")),
            "--decryption-key",
            str(keys["device"].with_suffix(".key")),
        ]
    )
    assert code == 0
    heavy = {
        "tensorflow",
        "keras",
        "onnx",
        "onnxruntime",
        "tf2onnx",
        "MNN",
        "ncnn",
        "torch",
        "numpy",
        "jsonschema",
        "rich",
    }
    assert sorted(loaded & heavy) == []


def test_recipient_key_as_trusted_key_is_refused(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["mnist"]
    bundle = tmp_path / "m.aoe"
    sign = ["--sign-key", keys["signer"].with_suffix(".key")]
    assert aoe("build", cfg, "--out", bundle, *sign, "--no-encrypt").exit_code == 0
    r = aoe("verify", bundle, "--trusted-key", keys["device"].with_suffix(".pub"), "--json")
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "key-type"
    assert "encryption key (X25519)" in err["message"]


def test_inspect_text_never_truncates_names(
    tmp_path: Path, keys: dict[str, Path], samples: Samples
) -> None:
    cfg, _ = samples["squeezenet"]
    bundle = tmp_path / "s.aoe"
    sign = ["--sign-key", keys["signer"].with_suffix(".key")]
    assert aoe("build", cfg, "--out", bundle, *sign, "--no-encrypt").exit_code == 0
    text = aoe("inspect", bundle).stdout
    assert "squeezenet.onnx" in text
    assert (
        "sha256:" + json.loads(aoe("inspect", bundle, "--json").stdout)["files"][1]["sha256"]
        in text
    )

"""Fuzz targets: every parser of untrusted bytes, and the contract they must keep.

The contract: any bytes either give a result or raise an
:class:`~aoe_pack.errors.AoePackError` subclass. Any other exception
(``ValueError``, ``KeyError``, ``RecursionError``, ``UnicodeError``, a warning
turned into an error, ...) is a *finding*.

Shared by ``benchmarks/fuzz.py`` (atheris, coverage-guided) and
``tests/fuzz/test_fuzz.py`` (replays committed inputs, runs a short slice).

Every key is derived from a fixed seed and every random byte of the objects
built at start comes from a fixed stream, so an input saved by one run means
the same thing to the next: a manifest payload found by ``manifest_signed``
names the same keys, and a bundle template holds the same ciphertext, when a
regression test replays it.

Targets whose parser sits behind a signature come twice: ``X`` takes the raw
file (the signature check usually stops it early), ``X_signed`` takes the
signed payload, puts it in canonical form when it is JSON, signs it with the
test keys the verifier trusts and runs the verifier, so mutations reach the
parsers and decisions behind the signatures.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from aoe_pack._crypto import _der
from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json, canonical_json_integral
from aoe_pack.bundle import EncryptionSpec, build_bundle, inspect_bundle, signatures, unpack_bundle
from aoe_pack.bundle._zipread import read_layout, sniff
from aoe_pack.bundle._zipwrite import AlignedZipWriter, dos_datetime
from aoe_pack.bundle.container import MEDIA_TYPE_V1
from aoe_pack.bundle.format import (
    DEFAULT_LIMITS,
    DEFAULT_SOURCE_DATE_EPOCH,
    MANIFEST_ENTRY,
    SIGNATURES_ENTRY,
)
from aoe_pack.bundle.verify import OpenedBundle, verify_bundle
from aoe_pack.client.check import ClientState, bundle_signers
from aoe_pack.client.decide import Device, decide
from aoe_pack.config import load_config
from aoe_pack.dsse import Signature
from aoe_pack.errors import AoePackError
from aoe_pack.keys.load import (
    DecryptionKey,
    load_decryption_key,
    load_kek,
    load_public_key,
    load_signing_key,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, ModelReleases, Release
from aoe_pack.repository.root import new_root, verify_self_signed, verify_successor
from aoe_pack.repository.trust import verify_manifest
from aoe_pack.versions import Version

REPO = Path(__file__).resolve().parents[2]
FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"

PASSWORD = b"fuzz-password"
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
MAX_DECISION_TAGS = 4
MAX_INSTALLED = 4


# --- deterministic test-only material --------------------------------------------------


def _stream(label: str) -> Callable[[int], bytes]:
    """A deterministic stand-in for ``os.urandom`` (SHA-256 in counter mode)."""
    counter = iter(range(1 << 62))

    def take(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"aoe-fuzz {label} {next(counter)}".encode()).digest()
        return out[:n]

    return take


def _secret(label: str, n: int = 32) -> bytes:
    return hashlib.sha256(f"aoe-fuzz test-only key {label}".encode()).digest()[:n]


def _private(obj: Any) -> PrivateKey:
    pem = obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _keys.load_private(pem, None, origin="fuzz key")


def _low_cost_encrypted_pem(key: PrivateKey) -> bytes:
    """An encrypted PKCS#8 PEM with few PBKDF2 rounds, so a seed costs microseconds."""
    plain = _keys.private_pem(key, None)
    der = _keys._pem_der(plain)
    assert der is not None
    with mock.patch.object(_der, "PBKDF2_ITERATIONS", 1000):
        return _keys._pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(der[1], PASSWORD))


# --- the world: real objects built once per process -------------------------------------


CONFIG_JSON = {
    "version": "1.0.0",
    "tag": "tag_fuzz",
    "runtime": "tflite",
    "source": "installed",
    "modelDir": ".",
    "modelName": "model.tflite",
    "files": [{"path": "labels.txt", "role": "labels"}],
}


class World:
    """Keys, bundles, roots, manifests and a scratch folder (tmpfs when there is one)."""

    def __init__(self) -> None:
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.dir = Path(tempfile.mkdtemp(prefix="aoe-fuzz-", dir=base))
        atexit.register(shutil.rmtree, self.dir, ignore_errors=True)
        self.signer = _private(ed25519.Ed25519PrivateKey.from_private_bytes(_secret("ed25519")))
        self.signer2 = _private(
            ec.derive_private_key(int.from_bytes(_secret("p256"), "big"), ec.SECP256R1())
        )
        self.x25519 = _private(x25519.X25519PrivateKey.from_private_bytes(_secret("x25519")))
        self.mlkem = _keys.xwing_from_seed(_secret("mlkem", _keys.XWING_SEED_SIZE))
        self.kek = _secret("kek")
        self.kek_key = DecryptionKey(origin="fuzz kek", kek=self.kek)
        self.x25519_key = DecryptionKey(origin="fuzz x25519", private=self.x25519)
        self.trusted = [self.signer.public, self.signer2.public]
        with mock.patch("os.urandom", _stream("build")):
            self._build_bundles()
        self._build_repository()
        self._build_config_tree()
        self.scratch = self.dir / "input"
        self.out = self.dir / "out"

    # bundles
    def _build_bundles(self) -> None:
        src = self.dir / "src"
        src.mkdir()
        (src / "model.tflite").write_bytes(bytes(range(256)) + b"TFL3 model")
        (src / "labels.txt").write_bytes(b"cat\ndog\nbird\n")
        (src / "config.json").write_text(json.dumps(CONFIG_JSON))
        config = load_config(src / "config.json")
        self.plain_bundle = self.dir / "plain.aoe"
        self.encrypted_bundle = self.dir / "encrypted.aoe"
        build_bundle(
            config,
            self.plain_bundle,
            signing_keys=[self.signer],
            encryption=EncryptionSpec(recipients=[], keks=[]),
        )
        build_bundle(
            config,
            self.encrypted_bundle,
            signing_keys=[self.signer, self.signer2],
            encryption=EncryptionSpec(
                recipients=[self.x25519.public, self.mlkem.public], keks=[self.kek]
            ),
        )
        self.encrypted_payloads, self.encrypted_manifest, _ = _entries(self.encrypted_bundle)
        self.plain_payloads, self.plain_manifest, self.plain_signatures = _entries(
            self.plain_bundle
        )

    def assemble(self, manifest_bytes: bytes) -> bytes:
        """A container of a built bundle's payloads with this manifest, signed.

        The encrypted bundle's payloads when the manifest speaks of encryption,
        else the plain one's.
        """
        buf = io.BytesIO()
        writer = AlignedZipWriter(
            buf, media_type=MEDIA_TYPE_V1, date_time=dos_datetime(DEFAULT_SOURCE_DATE_EPOCH)
        )
        encrypted = b'"encryption"' in manifest_bytes
        for name, stored in self.encrypted_payloads if encrypted else self.plain_payloads:
            writer.add_bytes(name, stored)
        writer.add_bytes(MANIFEST_ENTRY, manifest_bytes)
        writer.add_bytes(SIGNATURES_ENTRY, signatures.sign_manifest(manifest_bytes, [self.signer]))
        writer.close()
        return buf.getvalue()

    # repository
    def _build_repository(self) -> None:
        self.root1 = new_root(1, [self.signer.public], 1)
        self.root1_bytes = self.sign_root(self.root1.to_dict())
        self.root2 = new_root(2, [self.signer.public, self.signer2.public], 2)
        self.root2_bytes = self.sign_root(self.root2.to_dict())

        def release(version: str, **kw: Any) -> Release:
            sha = hashlib.sha256(f"bundle {version}".encode()).hexdigest()
            return Release(
                version=version,
                version_code=Version.parse(version).version_code(),
                url=f"bundles/{sha}.aoe",
                size=4096,
                sha256=sha,
                runtimes=kw.pop("runtimes", ("tflite",)),
                artifacts=({"runtime": "tflite"},),
                salt=hashlib.sha256(f"salt {version}".encode()).hexdigest()[:32],
                **kw,
            )

        signer_id = self.signer.key_id
        models = {
            "tag_fuzz": ModelReleases(
                releases=(
                    release("1.0.0"),
                    release("1.1.0-rc.1", channel="beta"),
                    release("1.1.0", rollout_bp=2500, min_app_version="2.0.0"),
                    release("1.2.0", critical=True, rollout_bp=0, max_app_version="3.0.0"),
                    release("1.3.0", yanked="broken", signers=(signer_id,)),
                    release("1.4.0", runtimes=("tflite", "onnx"), required_runtimes=("onnx",)),
                )
            ),
            "tag_pinned": ModelReleases(releases=(release("2.0.0"), release("2.1.0")), pin="2.0.0"),
            "tag_local": ModelReleases(releases=(release("3.0.0"),), pin="local"),
        }
        manifest = Manifest(
            version=3,
            expires=NOW + dt.timedelta(days=30),
            models=models,
            bundle_keys={signer_id: self.signer.public.pem.decode()},
        )
        self.manifest_doc = manifest.to_dict()
        self.manifest_bytes = self.sign_manifest_doc(self.manifest_doc)
        self.devices = [
            Device(
                device_id="device-1",
                app_version="2.5.0",
                runtimes=frozenset({"tflite"}),
                local_version="0.9.0",
            ),
            Device(
                device_id="device-2",
                app_version="1.0.0",
                runtimes=frozenset({"tflite", "onnx"}),
                channels=("stable", "beta"),
                local_version="1.0.0",
                installed_version="1.3.0",
            ),
        ]

    def sign_root(self, doc: Any) -> bytes:
        keys = [self.signer, self.signer2]
        return envelope.sign(envelope.ROOT_TYPE, doc, keys).to_bytes()

    def sign_manifest_doc(self, doc: Any) -> bytes:
        return envelope.sign(envelope.MANIFEST_TYPE, doc, [self.signer]).to_bytes()

    # configs
    def _build_config_tree(self) -> None:
        """A folder holding every file the seed configs name (small stand-ins)."""
        self.config_dir = self.dir / "config"
        names = [
            "model.tflite", "labels.txt", "mnist.keras", "mnist.tflite", "squeezenet.onnx",
            "detector.keras", "recognizer.keras", "digits", "ios/digits.bin",
            "mnist/mnist_cnn.tflite", "squeeze/squeezenet.bin", "squeeze/squeezenet.param",
            "squeeze/synset_words.txt", "models/model.tflite",
        ]  # fmt: skip
        for name in names:
            path = self.config_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"stand-in for " + name.encode())
        self.config_path = self.config_dir / "config.json"

    def write(self, data: bytes, path: Path | None = None) -> Path:
        path = path or self.scratch
        path.write_bytes(data)
        return path


def _entries(path: Path) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """A bundle's payload entries (name, stored bytes), manifest and signatures."""
    data = path.read_bytes()
    entries = read_layout(io.BytesIO(data), file_size=len(data)).entries
    stored = [(e.name, data[e.data_offset : e.data_offset + e.size]) for e in entries]
    return stored[:-2], stored[-2][1], stored[-1][1]


_WORLD: World | None = None


def world() -> World:
    global _WORLD  # noqa: PLW0603 - built once per process, on first use
    if _WORLD is None:
        _WORLD = World()
    return _WORLD


# --- helpers for the targets -------------------------------------------------------------


def _json_or_raw(data: bytes, *, integral: bool) -> bytes:
    """``data`` in canonical form when it is JSON that has one, else ``data`` itself."""
    try:
        if integral:
            return canonical_json_integral(envelope.loads_integral(data))
        return canonical_json(json.loads(data))
    except (ValueError, RecursionError, UnicodeError, TypeError):
        return data


def _decide_all(manifest: Manifest, w: World) -> None:
    """The device decision for each device, tag and installed release; bundle signers too."""
    for tag in list(manifest.models)[:MAX_DECISION_TAGS]:
        entry = manifest.models[tag]
        for device in w.devices:
            decide(manifest, tag, device)
        for r in entry.releases[-MAX_INSTALLED:]:
            decide(manifest, tag, _installed(w.devices[1], r.version))
            bundle_signers(manifest, r, w.root1)
    decide(manifest, "tag_absent", w.devices[0])


def _installed(device: Device, version: str) -> Device:
    return Device(
        device_id=device.device_id,
        app_version=device.app_version,
        runtimes=device.runtimes,
        channels=device.channels,
        local_version=device.local_version,
        installed_version=version,
    )


# --- targets ----------------------------------------------------------------------------


def t_container(data: bytes) -> None:
    sniff(data[:128])
    read_layout(io.BytesIO(data), file_size=len(data))


def t_bundle(data: bytes) -> None:
    w = world()
    path = w.write(data)
    inspect_bundle(path)
    key = w.kek_key if len(data) % 2 else w.x25519_key
    verify_bundle(path, trusted_keys=w.trusted, decryption_key=key)


def t_bundle_signed(data: bytes) -> None:
    w = world()
    manifest = _json_or_raw(data, integral=False)
    path = w.write(w.assemble(manifest))
    key = w.kek_key if hashlib.sha256(data).digest()[0] & 1 else w.x25519_key
    verify_bundle(path, trusted_keys=[w.signer.public], decryption_key=key)
    unpack_bundle(path, w.out, trusted_keys=[w.signer.public], decryption_key=key, force=True)


def t_bundle_manifest(data: bytes) -> None:
    bundle = OpenedBundle(Path("fuzz.aoe"), -1, None, data, b"")  # type: ignore[arg-type]
    bundle.parse_manifest(DEFAULT_LIMITS)


def t_dsse(data: bytes) -> None:
    w = world()
    sigs = signatures.parse_envelope(data, DEFAULT_LIMITS)
    signatures.check_signatures(w.plain_manifest, sigs, w.trusted, 1)


def t_envelope(data: bytes) -> None:
    w = world()
    for payload_type in (envelope.MANIFEST_TYPE, envelope.ROOT_TYPE):
        with contextlib.suppress(AoePackError):
            env = envelope.parse(data, payload_type, what="fuzz")
            env.valid_keyids({k.key_id: k for k in w.trusted})
            env.document()


def t_root(data: bytes) -> None:
    w = world()
    with contextlib.suppress(AoePackError):
        verify_self_signed(data)
    verify_successor(w.root1, data)


def t_root_signed(data: bytes) -> None:
    w = world()
    signed = _signed_root(w, data)
    with contextlib.suppress(AoePackError):
        verify_self_signed(signed)
    verify_successor(w.root1, signed)


def _signed_root(w: World, data: bytes) -> bytes:
    payload = _json_or_raw(data, integral=True)
    sigs = [
        Signature(k.key_id, _sign(k, envelope.ROOT_TYPE, payload))
        for k in sorted([w.signer, w.signer2], key=lambda k: k.key_id)
    ]
    return envelope.Envelope(envelope.ROOT_TYPE, payload, tuple(sigs)).to_bytes()


def _sign(key: PrivateKey, payload_type: str, payload: bytes) -> bytes:
    from aoe_pack._crypto import sign as _sign_mod

    return _sign_mod.sign(key, _sign_mod.pae(payload_type, payload))


def t_manifest(data: bytes) -> None:
    w = world()
    verified = verify_manifest(data, w.root1, now=NOW, last_version=2)
    verified.manifest.models.check_all()
    _decide_all(verified.manifest, w)


def t_manifest_signed(data: bytes) -> None:
    w = world()
    payload = _json_or_raw(data, integral=True)
    sig = Signature(w.signer.key_id, _sign(w.signer, envelope.MANIFEST_TYPE, payload))
    signed = envelope.Envelope(envelope.MANIFEST_TYPE, payload, (sig,)).to_bytes()
    verified = verify_manifest(signed, w.root1, now=NOW, last_version=2)
    _decide_all(verified.manifest, w)
    verified.manifest.models.check_all()


def t_keys(data: bytes) -> None:
    w = world()
    path = str(w.write(data))

    def prompt(_origin: str) -> bytes:
        return PASSWORD

    with contextlib.suppress(AoePackError):
        load_public_key(path)
    with contextlib.suppress(AoePackError):
        load_signing_key(path, prompt=prompt)
    load_decryption_key(path, prompt=prompt)


def t_kek(data: bytes) -> None:
    w = world()
    path = str(w.write(data))
    with contextlib.suppress(AoePackError):
        load_kek(path)
    load_decryption_key(path)


def t_state(data: bytes) -> None:
    w = world()
    ClientState.load(w.write(data), w.root1_bytes)


def t_versions(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    v = Version.parse(text)
    str(v)
    hash(v)
    for other in ("1.0.0", "1.0.0-rc.1", "0.0.1-alpha.beta+build"):
        o = Version.parse(other)
        _ = (v < o, o < v, v == o)
    with contextlib.suppress(AoePackError):
        v.version_code()


def t_config(data: bytes) -> None:
    w = world()
    load_config(w.write(data, w.config_path))


HOSTILE_JSON = [
    b"[" * 5000 + b"]" * 5000,  # nesting beyond Python's recursion limit
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'"\\ud800"',  # a lone surrogate: valid JSON text, no UTF-8 encoding
    b'{"a":NaN,"b":1e999,"c":' + b"9" * 5000 + b"}",
]
"""Hand-made seeds for every JSON reader: shapes a byte mutator rarely reaches."""


def _with(doc: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**doc, **changes}).encode()


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[World], list[bytes]]
    max_len: int = 8192


def _config_seeds(_w: World) -> list[bytes]:
    found = sorted(REPO.glob("sample_models/*/config.json")) + sorted(
        p for p in (REPO / "tests/fixtures/legacy").iterdir() if p.is_file()
    )
    found += sorted(REPO.glob("sample_models/bankcard/*/config.json"))
    hostile = [
        _with(CONFIG_JSON, modelDir="\ud800"),
        _with(CONFIG_JSON, modelName="\ud800.tflite"),
        _with(CONFIG_JSON, files=[{"path": "\ud800", "role": "labels"}]),
        _with(CONFIG_JSON, version="\ud800", tag="\udfff"),
    ]
    ours = [json.dumps(CONFIG_JSON).encode()]
    return ours + [p.read_bytes() for p in found] + hostile + HOSTILE_JSON


def _key_seeds(w: World) -> list[bytes]:
    out = []
    for key in (w.signer, w.signer2, w.x25519, w.mlkem):
        out += [key.public.pem, _keys.private_pem(key, None), _low_cost_encrypted_pem(key)]
    return out


def _state_seeds(w: World) -> list[bytes]:
    def state(root: bytes, version: int | None) -> bytes:
        doc = {"root": base64.b64encode(root).decode(), "manifestVersion": version}
        return json.dumps(doc, indent=2).encode() + b"\n"

    ours = [state(w.root1_bytes, 3), state(w.root2_bytes, None), state(w.root1_bytes, None)]
    return ours + HOSTILE_JSON


def _root_payloads(w: World) -> list[bytes]:
    return [canonical_json_integral(r.to_dict()) for r in (w.root1, w.root2)] + HOSTILE_JSON


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target(
            "container",
            t_container,
            lambda w: [w.plain_bundle.read_bytes(), w.encrypted_bundle.read_bytes()],
            max_len=16384,
        ),
        Target(
            "bundle",
            t_bundle,
            lambda w: [w.plain_bundle.read_bytes(), w.encrypted_bundle.read_bytes()],
            max_len=16384,
        ),
        Target(
            "bundle_signed",
            t_bundle_signed,
            lambda w: [w.encrypted_manifest, w.plain_manifest, *HOSTILE_JSON],
        ),
        Target(
            "bundle_manifest",
            t_bundle_manifest,
            lambda w: [w.plain_manifest, w.encrypted_manifest, *HOSTILE_JSON],
        ),
        Target("dsse", t_dsse, lambda w: [w.plain_signatures, *HOSTILE_JSON]),
        Target(
            "envelope",
            t_envelope,
            lambda w: [w.manifest_bytes, w.root1_bytes, w.root2_bytes, *HOSTILE_JSON],
        ),
        Target("root", t_root, lambda w: [w.root1_bytes, w.root2_bytes, *HOSTILE_JSON]),
        Target("root_signed", t_root_signed, _root_payloads),
        Target("manifest", t_manifest, lambda w: [w.manifest_bytes, *HOSTILE_JSON]),
        Target(
            "manifest_signed",
            t_manifest_signed,
            lambda w: [canonical_json_integral(w.manifest_doc), *HOSTILE_JSON],
            max_len=16384,
        ),
        Target("keys", t_keys, _key_seeds),
        Target("kek", t_kek, lambda w: [w.kek.hex().encode(), w.kek.hex().encode() + b"\n"]),
        Target("state", t_state, _state_seeds),
        Target(
            "versions",
            t_versions,
            lambda _w: [b"1.0.0", b"1.2.3-rc.1+build.5", b"0.0.1-alpha.beta.1", b"209.99.99"],
            max_len=256,
        ),
        Target("config", t_config, _config_seeds),
    ]
}


# --- the contract ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """An exception outside the error hierarchy, and where aoe_pack let it through."""

    target: str
    exception: str
    where: str
    """The innermost aoe_pack frame: ``aoe_pack/x.py:123 (function)``."""
    origin: str
    """The innermost frame of all (often inside the standard library or a dependency)."""
    message: str

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.target, self.exception, self.where)


def _frame(f: traceback.FrameSummary) -> str:
    path = Path(f.filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(REPO)
    return f"{path.as_posix()}:{f.lineno} ({f.name})"  # one spelling on every OS


def finding_of(name: str, exc: BaseException) -> Finding:
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if f"{os.sep}aoe_pack{os.sep}" in f.filename]
    where = _frame(ours[-1]) if ours else "(outside aoe_pack)"
    origin = _frame(tb[-1]) if tb else "?"
    return Finding(name, type(exc).__qualname__, where, origin, str(exc)[:200])


def check(name: str, data: bytes) -> Finding | None:
    """Run target ``name`` on ``data``; a :class:`Finding` if it breaks the contract."""
    try:
        TARGETS[name].run(data)
    except AoePackError:
        return None
    except Exception as e:  # noqa: BLE001 - anything else is what we are looking for
        return finding_of(name, e)
    return None


def input_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def saved_inputs(folder: Path) -> Iterator[tuple[str, str, Path]]:
    """``(target, id, path)`` of every input saved under ``folder/<target>/``."""
    if not folder.is_dir():
        return
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(p for p in sub.iterdir() if p.is_file()):
            yield sub.name, path.name, path

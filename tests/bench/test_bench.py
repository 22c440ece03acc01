"""``aoe-pack bench``: every artifact measured, models only in memory, reports merged.

Two bundles, built once per module from the committed samples:
- SqueezeNet (ONNX source) converted by the real converters to onnx:basic,
  ort, mnn and ncnn, encrypted for an X25519 recipient;
- MNIST's ``mnist.tflite`` packed as a ``tflite/fp32`` artifact, unencrypted.
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _cli import aoe

from aoe_pack.assemble import converted_payload
from aoe_pack.bench import BenchReport, Status, bench_bundle, load_report, write_comparison
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.bundle.build import PayloadSource
from aoe_pack.config import validate_config
from aoe_pack.config.model import ModelConfig
from aoe_pack.errors import (
    BenchReportError,
    IntegrityError,
    MissingKeyError,
    ThresholdError,
    UsageError,
)
from aoe_pack.keys import (
    DecryptionKey,
    PublicKey,
    keygen,
    load_decryption_key,
    load_public_key,
    load_signing_key,
)

REPO = Path(__file__).resolve().parents[2]
SQUEEZENET = REPO / "sample_models/squeezenet/config.json"
MNIST = REPO / "sample_models/mnist/config.json"
SQUEEZENET_TARGETS = ("onnx:basic", "ort", "mnn", "ncnn")
RUNS = 7


def _config(path: Path) -> ModelConfig:
    report = validate_config(path)
    assert report.config is not None, report.violations
    return report.config


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    keygen("ed25519", d / "signer")
    keygen("ed25519", d / "stranger")
    keygen("x25519", d / "device")
    return {p.name: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def trusted(keys: dict[str, Path]) -> list[PublicKey]:
    return [load_public_key(str(keys["signer.pub"]))]


@pytest.fixture(scope="module")
def device_key(keys: dict[str, Path]) -> DecryptionKey:
    return load_decryption_key(str(keys["device.key"]))


@pytest.fixture(scope="module")
def squeezenet_build(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]
) -> tuple[Path, list[Path]]:
    """SqueezeNet for every ONNX-reachable runtime, encrypted; and the artifacts' plaintext."""
    from aoe_pack.convert.pipeline import convert, targets_of

    cfg = _config(SQUEEZENET)
    converted = convert(
        cfg, targets_of(cfg, SQUEEZENET_TARGETS), tmp_path_factory.mktemp("convert")
    )
    assert not converted.failed, [o.reason for o in converted.failed]
    payload = converted_payload(converted, cfg)
    out = tmp_path_factory.mktemp("bundles") / "squeezenet.aoe"
    build_bundle(
        cfg,
        out,
        signing_keys=[load_signing_key(str(keys["signer.key"]))],
        encryption=EncryptionSpec(recipients=[load_public_key(str(keys["device.pub"]))]),
        payload=payload,
        provenance=converted.provenance(cfg),
    )
    return out, [p.local for p in payload if p.runtime]


@pytest.fixture(scope="module")
def squeezenet_bundle(squeezenet_build: tuple[Path, list[Path]]) -> Path:
    return squeezenet_build[0]


@pytest.fixture(scope="module")
def mnist_bundle(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    """The committed mnist.tflite as a tflite/fp32 artifact, plus its labels; not encrypted."""
    cfg = _config(MNIST)
    out = tmp_path_factory.mktemp("bundles") / "mnist.aoe"
    build_bundle(
        cfg,
        out,
        signing_keys=[load_signing_key(str(keys["signer.key"]))],
        encryption=EncryptionSpec(),
        payload=[
            PayloadSource(
                local=cfg.model_root / "mnist.tflite",
                path="tflite/fp32/mnist.tflite",
                role="model",
                runtime="tflite",
                variant="fp32",
            ),
            PayloadSource(local=cfg.model_root / "labels.txt", path="labels.txt", role="labels"),
        ],
    )
    return out


def _fail(*_: object, **__: object) -> Any:
    raise AssertionError("bench created a temporary file")


@dataclass
class Watched:
    report: BenchReport
    scratch: Path
    handed: list[tuple[str, int]]
    """What each file descriptor given to a child was: its link target and its seals."""


@pytest.fixture(scope="module")
def squeezenet_report(
    squeezenet_bundle: Path,
    trusted: list[PublicKey],
    device_key: DecryptionKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Watched:
    """The encrypted bundle benched with every temp-file API of the parent booby-trapped,
    the children's TMPDIR and working folder in a scratch folder, and the descriptors
    handed to each child recorded."""
    import subprocess

    scratch = tmp_path_factory.mktemp("scratch")
    handed: list[tuple[str, int]] = []
    real_run = subprocess.run

    def run(*args: Any, **kwargs: Any) -> Any:
        for fd in kwargs.get("pass_fds", ()):
            link = str(Path(f"/proc/self/fd/{fd}").readlink())
            handed.append((link, fcntl.fcntl(fd, fcntl.F_GET_SEALS)))
        return real_run(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "mkstemp",
            "mkdtemp",
            "NamedTemporaryFile",
            "TemporaryFile",
            "SpooledTemporaryFile",
            "TemporaryDirectory",
        ):
            mp.setattr(tempfile, name, _fail)
        mp.setattr("aoe_pack.bench._isolate.subprocess.run", run)
        mp.setenv("TMPDIR", str(scratch))
        mp.chdir(scratch)
        report = bench_bundle(
            squeezenet_bundle,
            trusted_keys=trusted,
            decryption_key=device_key,
            runs=RUNS,
            warmup=2,
            device_name="ci-box",
        )
    return Watched(report=report, scratch=scratch, handed=handed)


# --- what a report holds ------------------------------------------------------------


def test_every_artifact_of_the_bundle_is_in_the_report(
    squeezenet_report: Watched,
) -> None:
    report = squeezenet_report.report
    assert {a.name for a in report.artifacts} == {
        "onnx-basic",
        "ort-mobile",
        "mnn-fp32",
        "ncnn-fp32",
    }
    ncnn = next(a for a in report.artifacts if a.runtime == "ncnn")
    assert set(ncnn.files) == {
        "ncnn/fp32/squeezenet.param",
        "ncnn/fp32/squeezenet.bin",
        "ncnn/fp32/squeezenet.io.json",
    }
    # labels.txt has no runtime: data, not an artifact.
    assert all("labels.txt" not in a.files for a in report.artifacts)


@pytest.mark.parametrize("name", ["onnx-basic", "mnn-fp32", "ncnn-fp32"])
def test_measured_figures_are_sane(squeezenet_report: Watched, name: str) -> None:
    report = squeezenet_report.report
    a = next(a for a in report.artifacts if a.name == name)
    assert a.status is Status.OK, a.error
    assert a.latency is not None
    assert a.load_ms is not None
    assert a.first_load_ms is not None
    assert a.peak_mib is not None
    assert a.baseline_mib is not None
    assert 0 < a.latency.min <= a.latency.p50 <= a.latency.p90 <= a.latency.p99 <= a.latency.max
    assert a.load_ms > 0
    assert a.first_load_ms > 0
    assert a.peak_mib > a.baseline_mib > 0
    assert a.runs == len(a.samples_ms) == RUNS
    assert a.runtime_versions, "the runtime's package version is recorded"


def test_each_artifact_records_its_size_on_disk(
    squeezenet_report: Watched, squeezenet_build: tuple[Path, list[Path]]
) -> None:
    """The bytes a device stores for each runtime: every file of it, in plaintext."""
    _, artifacts = squeezenet_build
    for a in squeezenet_report.report.artifacts:
        names = {f.rsplit("/", 1)[-1] for f in a.files}  # squeezenet.onnx, squeezenet.param...
        on_disk = [p for p in artifacts if p.name in names]
        assert len(on_disk) == len(a.files), a.name
        assert a.size == sum(p.stat().st_size for p in on_disk), a.name


def test_ort_mobile_loads_from_anonymous_memory(
    squeezenet_report: Watched,
) -> None:
    """The .ort model reaches onnxruntime as /proc/self/fd/N: no extension to go by."""
    report = squeezenet_report.report
    ort = next(a for a in report.artifacts if a.name == "ort-mobile")
    assert ort.status is Status.OK, ort.error


def test_report_describes_device_and_bundle(
    squeezenet_report: Watched, squeezenet_bundle: Path
) -> None:
    import hashlib

    report = squeezenet_report.report
    d = report.to_dict()
    assert d["format"] == "aoe-bench/v1"
    assert d["device"]["name"] == "ci-box"
    assert d["device"]["cores"] >= 1
    assert d["device"]["cpu"]
    assert d["device"]["os"]
    assert d["device"]["python"].startswith("CPython 3.")
    assert "onnxruntime" in d["device"]["runtimes"]
    assert d["bundle"]["tag"] == "tag_squeezenet"
    assert d["bundle"]["version"] == "1.0.0"
    assert d["bundle"]["sha256"] == hashlib.sha256(squeezenet_bundle.read_bytes()).hexdigest()
    assert d["bundle"]["encrypted"] is True
    assert d["bundle"]["signaturesChecked"] is True
    assert d["settings"] == {"runs": RUNS, "warmup": 2, "seed": report.seed}
    assert BenchReport.from_dict(json.loads(json.dumps(d))).to_dict() == d


def test_no_plaintext_reaches_the_disk(
    squeezenet_report: Watched, squeezenet_build: tuple[Path, list[Path]]
) -> None:
    """Children get sealed anonymous memory files; nothing they leave holds model bytes.

    onnxruntime leaves a session id in $TMPDIR/.ses: not model data, but it is
    why the check looks for the models' bytes rather than for an empty folder.
    """
    _, artifacts = squeezenet_build
    assert squeezenet_report.report.measured
    assert len(squeezenet_report.handed) == len(artifacts)
    for link, seals in squeezenet_report.handed:
        assert link.startswith("/memfd:"), link
        assert seals & fcntl.F_SEAL_WRITE
    windows = [p.read_bytes()[:256] for p in artifacts]
    for left in squeezenet_report.scratch.rglob("*"):
        if left.is_file():
            data = left.read_bytes()
            assert not any(w in data for w in windows), left


# --- checks before anything runs ----------------------------------------------------


def test_encrypted_bundle_without_key_is_refused(
    squeezenet_bundle: Path, trusted: list[PublicKey]
) -> None:
    with pytest.raises(MissingKeyError, match="encrypted"):
        bench_bundle(squeezenet_bundle, trusted_keys=trusted, runs=1)


def test_untrusted_signer_is_refused(mnist_bundle: Path, keys: dict[str, Path]) -> None:
    stranger = load_public_key(str(keys["stranger.pub"]))
    with pytest.raises(ThresholdError):
        bench_bundle(mnist_bundle, trusted_keys=[stranger], runs=1)


def test_tampered_payload_is_refused_without_trusted_key(
    mnist_bundle: Path, tmp_path: Path
) -> None:
    data = bytearray(mnist_bundle.read_bytes())
    model = data.find(b"TFL3")  # the tflite file identifier, inside the stored payload
    assert model > 0
    data[model + 100] ^= 0x01
    bad = tmp_path / "tampered.aoe"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        bench_bundle(bad, runs=1)


def test_without_trusted_key_the_report_says_signatures_were_not_checked(
    mnist_bundle: Path,
) -> None:
    report = bench_bundle(mnist_bundle, runs=3, warmup=0)
    assert report.bundle.signatures_checked is False
    assert any("not checked" in n for n in report.notes)
    (tflite,) = report.artifacts
    assert tflite.name == "tflite-fp32"
    assert tflite.status is Status.OK, tflite.error
    assert "ai-edge-litert" in tflite.runtime_versions


def test_unknown_runtime_is_skipped_and_broken_artifact_fails_alone(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    cfg = _config(MNIST)
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07 not a protobuf model")
    (tmp_path / "mnist.pt").write_bytes(b"PK\x03\x04 a TorchScript zip, say")
    out = tmp_path / "mixed.aoe"
    build_bundle(
        cfg,
        out,
        signing_keys=[load_signing_key(str(keys["signer.key"]))],
        encryption=EncryptionSpec(),
        payload=[
            PayloadSource(
                local=cfg.model_root / "mnist.tflite",
                path="tflite/fp32/mnist.tflite",
                role="model",
                runtime="tflite",
                variant="fp32",
            ),
            PayloadSource(
                local=tmp_path / "broken.onnx",
                path="onnx/basic/broken.onnx",
                role="model",
                runtime="onnx",
                variant="basic",
            ),
            PayloadSource(
                local=tmp_path / "mnist.pt",
                path="pytorch/mnist.pt",
                role="model",
                runtime="pytorch",
            ),
        ],
    )
    report = bench_bundle(out, runs=2, warmup=0)
    status = {a.name: a.status for a in report.artifacts}
    assert status == {
        "tflite-fp32": Status.OK,
        "onnx-basic": Status.FAILED,
        "pytorch": Status.SKIPPED,
    }
    errors = {a.name: a.error or "" for a in report.artifacts}
    assert "no converter for runtime 'pytorch'" in errors["pytorch"]
    assert "onnx" in errors["onnx-basic"].lower() or "protobuf" in errors["onnx-basic"].lower()
    assert errors["tflite-fp32"] == ""


# --- the command line ---------------------------------------------------------------


def test_cli_bench_json_and_out(mnist_bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    r = aoe(
        "bench", mnist_bundle, "--trusted-key", keys["signer.pub"], "--runs", 5, "--json",
        "--out", out, "--device-name", "box-a",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert doc["format"] == "aoe-bench/v1"
    assert doc["device"]["name"] == "box-a"
    (art,) = doc["artifacts"]
    assert art["name"] == "tflite-fp32"
    assert art["status"] == "ok"
    lat = art["latencyMs"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"]
    assert art["loadMs"] > 0
    assert art["peakMiB"] > 0
    saved = json.loads(out.read_text())
    assert saved["artifacts"][0]["samplesMs"] == art["samplesMs"]


def test_cli_bench_run_prints_a_table(mnist_bundle: Path, keys: dict[str, Path]) -> None:
    r = aoe("bench", "run", mnist_bundle, "--trusted-key", keys["signer.pub"], "--runs", 3)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if "artifact" in line)
    assert header.split() == ["artifact", "load", "ms", "p50", "ms", "p90", "ms", "p99", "ms",
                              "peak", "MiB"]  # fmt: skip
    assert any(line.split()[0] == "tflite-fp32" for line in r.stdout.splitlines() if line.strip())
    assert "tag_mnist 1.0.0" in r.stdout


def test_cli_bench_errors_use_the_error_hierarchy(squeezenet_bundle: Path, tmp_path: Path) -> None:
    r = aoe("bench", squeezenet_bundle, "--json")
    assert r.exit_code == 1  # well-formed, but this bundle needs a key
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "key-missing"
    assert "--decryption-key" in err["hint"]
    r = aoe("bench", tmp_path / "missing.aoe")
    assert r.exit_code == 2  # a file argument that names nothing
    assert "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_help_shows_both_forms() -> None:
    r = aoe("bench", "--help")
    assert r.exit_code == 0
    assert "BUNDLE" in r.stdout
    assert "report" in r.stdout


def _two_reports(mnist_bundle: Path, tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a.json"
    r = aoe("bench", mnist_bundle, "--runs", 3, "--out", a, "--device-name", "ci-x86")
    assert r.exit_code == 0, r.output
    doc = json.loads(a.read_text())
    doc["device"]["name"] = "pixel-8 <fake>"
    doc["device"]["cpu"] = "Google Tensor G3"
    for art in doc["artifacts"]:
        art["latencyMs"] = {k: v * 3 for k, v in art["latencyMs"].items()}
    b = tmp_path / "b.json"
    b.write_text(json.dumps(doc))
    return a, b


def test_cli_report_merges_devices_into_html(mnist_bundle: Path, tmp_path: Path) -> None:
    a, b = _two_reports(mnist_bundle, tmp_path)
    html = tmp_path / "report.html"
    r = aoe("bench", "report", a, b, "--out", html, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["devices"] == ["ci-x86", "pixel-8 <fake>"]
    page = html.read_text()
    assert "ci-x86" in page
    assert "pixel-8 &lt;fake&gt;" in page  # escaped, never markup
    assert "<fake>" not in page
    assert page.count("<svg") == 2
    assert "tflite-fp32" in page
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_cli_report_writes_markdown(mnist_bundle: Path, tmp_path: Path) -> None:
    a, b = _two_reports(mnist_bundle, tmp_path)
    md = tmp_path / "report.md"
    r = aoe("bench", "report", a, b, "--out", md)
    assert r.exit_code == 0, r.output
    text = md.read_text()
    assert (
        "| Artifact | Device | Size | Load ms | p50 ms | p90 ms | p99 ms | Peak MiB | Status |"
        in text
    )
    rows = [line for line in text.splitlines() if line.startswith("| tflite-fp32 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["ci-x86", "pixel-8 <fake>"]
    assert "█" in text


def test_report_refuses_unknown_format_and_extension(tmp_path: Path) -> None:
    bad = tmp_path / "future.json"
    bad.write_text(json.dumps({"format": "aoe-bench/v9"}))
    with pytest.raises(BenchReportError, match="aoe-bench/v9"):
        load_report(bad)
    with pytest.raises(UsageError, match="report format"):
        write_comparison([bad], tmp_path / "report.pdf")
    r = aoe("bench", "report", bad, "--out", tmp_path / "r.html")
    assert r.exit_code == 1
    assert "aoe-bench/v9" in r.stderr

"""Every ``--json`` output against its published schema (schemas/cli/).

Each command runs for real, once where it succeeds and once where it fails,
and its stdout must validate against ``schemas/cli/<group>-<command>.schema.json``.
The schemas close every object the tool alone writes (``additionalProperties:
false``), so a key added to an output without its schema fails here. A
command with ``--json`` and no schema, or a schema naming no command, fails
too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import click
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from aoe_pack import errors
from aoe_pack._crypto import asymmetric as _keys
from aoe_pack.cli import cli
from aoe_pack.convert.api import Artifact, ArtifactFile, OutputParity, Parity, Precision, Target
from aoe_pack.convert.outcome import Status, TargetOutcome

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "aoe_pack" / "schemas"
CLI_SCHEMAS = SCHEMAS / "cli"
BASE = "https://aoe-pack.dev/schemas/"
COMMON = f"{BASE}cli/common.schema.json"


def _load_registry() -> Registry[Any]:
    resources = []
    for path in sorted(SCHEMAS.rglob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


REGISTRY = _load_registry()


def validator(uri: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": uri}, registry=REGISTRY)


def schema_uri(command: str) -> str:
    return f"{BASE}cli/{command}.schema.json"


def json_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """``group-command`` for every command of the click tree with a ``--json`` option."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from json_commands(command, path)
        elif any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params):
            yield "-".join(path)


COMMANDS = sorted(json_commands())


def aoe(*args: object) -> Any:
    return CliRunner().invoke(
        cli, [str(a) for a in args], env={"AOE_PACK_PASSWORD": ""}, catch_exceptions=False
    )


def run_json(*args: object) -> tuple[int, Any]:
    r = aoe(*args, "--json")
    try:
        return r.exit_code, json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"not JSON on stdout (exit {r.exit_code}): {r.stdout!r} {r.stderr!r}")


def run_json_entry_point(*args: object) -> tuple[int, Any]:
    """As run_json, through the console script's entry point, which renders click's own
    usage errors (a missing file argument) as JSON too."""
    r = subprocess.run(
        [sys.executable, "-m", "aoe_pack", *map(str, args), "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",  # the CLI's, not the locale's (Windows)
        env={**os.environ, "AOE_PACK_PASSWORD": ""},
        timeout=120,
        check=False,
    )
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"not JSON on stdout (exit {r.returncode}): {r.stdout!r} {r.stderr!r}")


def errors_of(uri: str, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
        for e in validator(uri).iter_errors(doc)
    ]


# --- what the commands run on ----------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Keys, a config packed as it is, its encrypted bundle, and repositories on demand."""

    root: Path
    signer: Path
    stranger: Path
    device: Path
    config: Path
    bundle: Path

    def pub(self, key: Path) -> Path:
        return key.with_suffix(".pub")

    def repo(self, tmp_path: Path) -> Path:
        """A fresh folder repository, with the bundle published as tag_mnist 1.0.0."""
        folder = tmp_path / "repo"
        sign = ("--sign-key", self.signer)
        r = aoe("manifest", "init", "--repo", folder, "--root-key", self.pub(self.signer), *sign)
        assert r.exit_code == 0, r.output
        r = aoe("manifest", "publish", self.bundle, "--repo", folder, *sign)
        assert r.exit_code == 0, r.output
        return folder

    def proposal(self, tmp_path: Path, *, signed: bool = False) -> Path:
        """A re-signing of a fresh repository, prepared as a proposal (and signed)."""
        path = tmp_path / "proposal.json"
        r = aoe("manifest", "resign", "--repo", self.repo(tmp_path), "--prepare", "--out", path)
        assert r.exit_code == 0, r.output
        if signed:
            r = aoe("manifest", "sign-proposal", path, "--sign-key", self.signer)
            assert r.exit_code == 0, r.output
        return path

    def device_args(self, repo: Path) -> list[object]:
        return [
            "--repo", repo, "--trusted-root", repo / "root.json",
            "--tag", "tag_mnist", "--app-version", "1.0.0",
        ]  # fmt: skip


def _keyfiles(folder: Path, name: str, kind: _keys.KeyKind) -> Path:
    key = _keys.generate(kind)
    (folder / f"{name}.key").write_bytes(_keys.private_pem(key, None))
    (folder / f"{name}.pub").write_bytes(key.public.pem)
    return folder / f"{name}.key"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world")
    signer = _keyfiles(root, "signer", _keys.KeyKind.ED25519)
    stranger = _keyfiles(root, "stranger", _keys.KeyKind.ED25519)
    device = _keyfiles(root, "device", _keys.KeyKind.X25519)
    # The mnist sample as it is (its .tflite, no conversion targets): fast, and runnable.
    model = root / "mnist"
    model.mkdir()
    for name in ("mnist.tflite", "labels.txt"):
        shutil.copy(REPO / "sample_models" / "mnist" / name, model / name)
    doc = json.loads((REPO / "sample_models" / "mnist" / "config.json").read_text())
    doc.pop("targets")
    doc["modelName"] = "mnist.tflite"
    (model / "config.json").write_text(json.dumps(doc, indent=2))
    bundle = root / "mnist.aoe"
    r = aoe(
        "build", model / "config.json", "--out", bundle,
        "--sign-key", signer, "--recipient", device.with_suffix(".pub"),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return World(root, signer, stranger, device, model / "config.json", bundle)


def _bench_report(w: World, tmp_path: Path) -> Path:
    """The bundle measured once: a real run, in the runtime the conversion extra brings."""
    report = tmp_path / "bench.json"
    r = aoe(
        "bench", w.bundle, "--trusted-key", w.pub(w.signer), "--decryption-key", w.device,
        "--runs", 1, "--warmup", 0, "--out", report,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return report


Args = Callable[[World, Path], list[object]]


def _onnx_source(tmp_path: Path) -> Path:
    """A one-node ONNX model with an onnx:basic target: a real conversion, without TensorFlow."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = tmp_path / "relu"
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    config = {
        "version": "1.0.0", "tag": "relu", "runtime": "onnx", "modelDir": ".",
        "modelName": "model.onnx", "encrypt": False,
        "targets": [{"runtime": "onnx", "variant": "basic"}],
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def _bundle_1_1_0(w: World, tmp_path: Path) -> Path:
    """The mnist model as 1.1.0 with other labels: a small delta from 1.0.0 to make."""
    model = tmp_path / "mnist-1.1.0"
    shutil.copytree(w.config.parent, model)
    doc = json.loads(w.config.read_text())
    doc["version"] = "1.1.0"
    (model / "config.json").write_text(json.dumps(doc))
    (model / "labels.txt").write_text("zero\none\n")
    bundle = tmp_path / "mnist-1.1.0.aoe"
    r = aoe(
        "build", model / "config.json", "--out", bundle,
        "--sign-key", w.signer, "--recipient", w.pub(w.device),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return bundle


def _two_releases(w: World, tmp_path: Path) -> Path:
    """The repository with 1.1.0 published too."""
    repo = w.repo(tmp_path)
    r = aoe("manifest", "publish", _bundle_1_1_0(w, tmp_path), "--repo", repo,
            "--sign-key", w.signer)  # fmt: skip
    assert r.exit_code == 0, r.output
    return repo


def _invalid_config(w: World) -> Path:
    """The config with a version that is not semver: a config-invalid violation."""
    doc = json.loads(w.config.read_text())
    doc["version"] = "one"
    path = w.config.parent / "invalid.json"
    path.write_text(json.dumps(doc))
    return path


def _legacy_config(w: World) -> Path:
    """The config with an unquoted version (not JSON), as old AoE configs have it."""
    path = w.config.parent / "legacy.json"
    path.write_text(w.config.read_text().replace('"1.0.0"', "1.0.0"))
    return path


# fmt: off
SUCCEEDS: dict[str, Args] = {
    "keygen": lambda w, t: ["keygen", "--out", t / "k"],
    "public-key": lambda w, t: ["public-key", "--sign-key", w.signer, "--out", t / "k.pub"],
    "validate": lambda w, t: ["validate", w.config],
    "migrate": lambda w, t: ["migrate", _legacy_config(w)],
    "build": lambda w, t: [
        "build", _onnx_source(t), "--out", t / "relu.aoe", "--sign-key", w.signer,
    ],
    "verify": lambda w, t: [
        "verify", w.bundle, "--trusted-key", w.pub(w.signer), "--decryption-key", w.device,
    ],
    "inspect": lambda w, t: ["inspect", w.bundle],
    "sign": lambda w, t: [
        "sign", shutil.copy(w.bundle, t / "cosigned.aoe"), "--sign-key", w.stranger,
        "--trusted-key", w.pub(w.signer),
    ],
    "unpack": lambda w, t: [
        "unpack", w.bundle, "--out", t / "out", "--trusted-key", w.pub(w.signer),
        "--decryption-key", w.device,
    ],
    "export-model-signing": lambda w, t: [
        "export", "model-signing", w.bundle, "--sign-key", _keyfiles(t, "p", _keys.KeyKind.P256),
        "--trusted-key", w.pub(w.signer), "--out", t / "m.sig", "--decryption-key", w.device,
    ],
    "export-provenance": lambda w, t: [
        "export", "provenance", w.bundle, "--sign-key", w.signer, "--out", t / "p.intoto.jsonl",
        "--trust-recorded-digests",
    ],
    "bench-run": lambda w, t: [
        "bench", "run", w.bundle, "--decryption-key", w.device, "--runs", 1, "--warmup", 0,
    ],
    "bench-report": lambda w, t: ["bench", "report", _bench_report(w, t), "--out", t / "r.md"],
    "manifest-init": lambda w, t: [
        "manifest", "init", "--repo", t / "new", "--root-key", w.pub(w.signer),
        "--sign-key", w.signer,
    ],
    "manifest-publish": lambda w, t: [
        "manifest", "publish", w.bundle, "--repo", w.repo(t), "--sign-key", w.signer,
    ],
    "manifest-show": lambda w, t: ["manifest", "show", "--repo", w.repo(t)],
    "manifest-add-delta": lambda w, t: [
        "manifest", "add-delta", "tag_mnist", "1.1.0", "--from", "1.0.0",
        "--repo", _two_releases(w, t), "--sign-key", w.signer, "--decryption-key", w.device,
    ],
    "manifest-yank": lambda w, t: [
        "manifest", "yank", "--repo", w.repo(t), "tag_mnist", "1.0.0", "--reason", "bad",
        "--sign-key", w.signer,
    ],
    "manifest-rollout": lambda w, t: [
        "manifest", "rollout", "--repo", w.repo(t), "tag_mnist", "1.0.0", "25",
        "--sign-key", w.signer,
    ],
    "manifest-pin": lambda w, t: [
        "manifest", "pin", "--repo", w.repo(t), "tag_mnist", "local", "--sign-key", w.signer,
    ],
    "manifest-resign": lambda w, t: [
        "manifest", "resign", "--repo", w.repo(t), "--sign-key", w.signer,
    ],
    "manifest-rotate-root": lambda w, t: [
        "manifest", "rotate-root", "--repo", w.repo(t), "--root-key", w.pub(w.stranger),
        "--sign-key", w.signer, "--sign-key", w.stranger,
    ],
    "manifest-verify": lambda w, t: [
        "manifest", "verify", "--repo", (repo := w.repo(t)), "--trusted-root", repo / "root.json",
        "--bundles",
    ],
    "manifest-sign-proposal": lambda w, t: [
        "manifest", "sign-proposal", w.proposal(t), "--sign-key", w.signer,
    ],
    "manifest-inspect-proposal": lambda w, t: [
        "manifest", "inspect-proposal", w.proposal(t, signed=True),
        "--trusted-root", t / "repo" / "root.json",
    ],
    "manifest-apply-proposal": lambda w, t: [
        "manifest", "apply-proposal", w.proposal(t, signed=True), "--repo", t / "repo",
    ],
    "client-check": lambda w, t: [
        "client", "check", *w.device_args(w.repo(t)), "--installed-version", "0.9.0",
        "--device-id", "d1", "--state", t / "state.json", "--download", t / "models",
        "--decryption-key", w.device,
    ],
    "client-simulate": lambda w, t: [
        "client", "simulate", *w.device_args(w.repo(t)), "--local-version", "0.9.0",
        "--devices", 50,
    ],
}

CLICK_USAGE_FAILS = {"validate", "migrate"}
"""Failures that click itself reports (a missing file argument): only the entry point
turns those into the JSON failure document."""
FAILS: dict[str, Args] = {
    "keygen": lambda w, t: ["keygen", "--out", w.signer.with_suffix("")],
    "public-key": lambda w, t: ["public-key", "--sign-key", w.device],
    "validate": lambda w, t: ["validate", t / "missing.json"],
    "migrate": lambda w, t: ["migrate", t / "missing.json"],
    "build": lambda w, t: [
        "build", _invalid_config(w), "--out", t / "x.aoe", "--sign-key", w.signer,
    ],
    "verify": lambda w, t: ["verify", w.bundle, "--trusted-key", w.pub(w.stranger)],
    "inspect": lambda w, t: ["inspect", w.config],
    "sign": lambda w, t: ["sign", w.bundle, "--sign-key", w.signer],  # already signed
    "unpack": lambda w, t: [
        "unpack", w.bundle, "--out", t / "out", "--trusted-key", w.pub(w.signer),
    ],
    "export-model-signing": lambda w, t: [
        "export", "model-signing", w.bundle, "--sign-key", w.signer, "--out", t / "m.sig",
    ],
    "export-provenance": lambda w, t: [
        "export", "provenance", w.bundle, "--sign-key", w.stranger, "--out", t / "p.jsonl",
    ],
    "bench-run": lambda w, t: ["bench", "run", w.config],
    "bench-report": lambda w, t: ["bench", "report", w.config, "--out", t / "r.md"],
    "manifest-init": lambda w, t: [
        "manifest", "init", "--repo", t / "new", "--root-key", w.pub(w.device),
        "--sign-key", w.signer,
    ],
    "manifest-publish": lambda w, t: [
        "manifest", "publish", w.bundle, "--repo", w.repo(t), "--sign-key", w.stranger,
    ],
    "manifest-show": lambda w, t: ["manifest", "show", "--repo", t / "empty"],
    "manifest-add-delta": lambda w, t: [
        "manifest", "add-delta", "tag_mnist", "9.9.9", "--from", "1.0.0",
        "--repo", w.repo(t), "--sign-key", w.signer, "--decryption-key", w.device,
    ],
    "manifest-yank": lambda w, t: [
        "manifest", "yank", "--repo", w.repo(t), "tag_mnist", "9.9.9", "--reason", "bad",
        "--sign-key", w.signer,
    ],
    "manifest-rollout": lambda w, t: [
        "manifest", "rollout", "--repo", w.repo(t), "tag_mnist", "9.9.9", "25",
        "--sign-key", w.signer,
    ],
    "manifest-pin": lambda w, t: [
        "manifest", "pin", "--repo", w.repo(t), "tag_mnist", "9.9.9", "--sign-key", w.signer,
    ],
    "manifest-resign": lambda w, t: [
        "manifest", "resign", "--repo", w.repo(t), "--sign-key", w.stranger,
    ],
    "manifest-rotate-root": lambda w, t: [
        "manifest", "rotate-root", "--repo", w.repo(t), "--root-key", w.pub(w.stranger),
        "--sign-key", t / "missing.key",
    ],
    "manifest-verify": lambda w, t: [
        "manifest", "verify", "--repo", t / "empty", "--trusted-root", w.repo(t) / "root.json",
    ],
    "manifest-sign-proposal": lambda w, t: [
        "manifest", "sign-proposal", w.proposal(t), "--sign-key", w.stranger,
    ],
    "manifest-inspect-proposal": lambda w, t: ["manifest", "inspect-proposal", w.config],
    "manifest-apply-proposal": lambda w, t: [
        "manifest", "apply-proposal", w.proposal(t), "--repo", t / "repo",
    ],
    "client-check": lambda w, t: [
        "client", "check", *w.device_args(w.repo(t)), "--installed-version", "0.9.0",
        "--device-id", "d1", "--state", t / "state.json", "--runtime", "no runtime",
    ],
    "client-simulate": lambda w, t: [
        "client", "simulate", *w.device_args(w.repo(t)), "--local-version", "one",
    ],
}
# fmt: on


# --- the schemas themselves -----------------------------------------------------------------


def test_every_json_command_has_a_schema_and_cases() -> None:
    """A new command with --json cannot ship without its schema and both test cases."""
    missing = [c for c in COMMANDS if not (CLI_SCHEMAS / f"{c}.schema.json").is_file()]
    assert missing == []
    assert sorted(SUCCEEDS) == COMMANDS
    assert sorted(FAILS) == COMMANDS


def test_every_schema_names_a_json_command() -> None:
    names = sorted(p.name.removesuffix(".schema.json") for p in CLI_SCHEMAS.glob("*.schema.json"))
    assert names == sorted([*COMMANDS, "common"])


@pytest.mark.parametrize("path", sorted(SCHEMAS.rglob("*.schema.json")), ids=lambda p: p.name)
def test_schema_is_draft_2020_12_with_an_id_matching_its_path(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == BASE + path.relative_to(SCHEMAS).as_posix()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("path", sorted(CLI_SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_ref_of_a_cli_schema_resolves(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    resolver = REGISTRY.resolver(base_uri=doc["$id"])
    for ref in _refs(doc):
        resolver.lookup(urljoin(doc["$id"], ref))  # raises if it names nothing


def _codes(cls: type[errors.AoePackError]) -> set[str]:
    return {cls.code}.union(*(_codes(sub) for sub in cls.__subclasses__()))


def test_the_error_codes_of_the_schema_are_those_of_the_error_hierarchy() -> None:
    common = json.loads((CLI_SCHEMAS / "common.schema.json").read_text(encoding="utf-8"))
    assert set(common["$defs"]["error"]["properties"]["code"]["enum"]) == _codes(
        errors.AoePackError
    )


# --- each command, for real -----------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_json_output_of_a_success_matches_its_schema(
    command: str, world: World, tmp_path: Path
) -> None:
    code, doc = run_json(*SUCCEEDS[command](world, tmp_path))
    assert (code, doc.get("ok")) == (0, True), doc
    assert errors_of(f"{schema_uri(command)}#/$defs/result", doc) == []  # names what is wrong
    assert errors_of(schema_uri(command), doc) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_json_output_of_a_failure_matches_its_schema(
    command: str, world: World, tmp_path: Path
) -> None:
    run = run_json_entry_point if command in CLICK_USAGE_FAILS else run_json
    code, doc = run(*FAILS[command](world, tmp_path))
    assert code in (1, 2)
    assert doc.get("ok") is False, doc
    assert errors_of(schema_uri(command), doc) == []
    assert errors_of(f"{COMMON}#/$defs/failure", doc) == []


def test_validate_report_of_an_invalid_config_matches_its_schema(
    world: World, tmp_path: Path
) -> None:
    """validate reports violations as its own document (ok false), not as an error."""
    code, doc = run_json("validate", _invalid_config(world), "--no-model")
    assert (code, doc["ok"], "error" in doc) == (1, False, False)
    assert len(doc["violations"]) == 1
    assert errors_of(schema_uri("validate"), doc) == []


def test_build_failure_with_violations_matches_the_failure_schema(
    world: World, tmp_path: Path
) -> None:
    args = FAILS["build"](world, tmp_path)
    code, doc = run_json(*args)
    assert (code, doc["error"]["code"]) == (1, "config-invalid")
    assert doc["error"]["violations"][0]["pointer"] == "/version"


def _outcome(status: Status, **extra: Any) -> TargetOutcome:
    target = Target(runtime="mnn", variant="fp16")
    artifact = Artifact(
        target=target,
        files=(ArtifactFile(local=Path("m.mnn"), bundle_path="mnn/fp16/m.mnn"),),
        tools={"MNN": "3.0"},
        layout="NCHW",
        requires=("something",),
    )
    out = OutputParity(
        name="y", max_abs=1e-3, mean_abs=1e-4, peak=1.0, allowed=1e-2,
        snr_db=float("inf"), varies=None, scores=True, top1=0.5, decisive=4,
    )  # fmt: skip
    parity = Parity(samples=8, tolerance=Precision.FLOAT32, outputs=(out,))
    return TargetOutcome(target=target, status=status, artifact=artifact, parity=parity, **extra)


@pytest.mark.parametrize(
    "outcome",
    [
        _outcome(Status.OK, control=True),
        _outcome(Status.PARITY_FAILED, error=errors.ParityError("off", hint="widen rtol")),
        _outcome(Status.REFUSED, error=errors.UnsupportedModelError("no Swish")),
        _outcome(Status.CRASHED, error=errors.RuntimeCrashError("SIGSEGV")),
    ],
    ids=lambda o: o.status.value,
)
def test_every_kind_of_target_outcome_matches_the_schema(outcome: TargetOutcome) -> None:
    """Targets that fail cost a real conversion each; their rows are built here instead."""
    for row in (
        outcome.to_dict(),
        outcome.to_dict(timings=False),
        {**outcome.to_dict(), "model": "m"},
    ):
        assert errors_of(f"{COMMON}#/$defs/targetOutcome", row) == []


def test_publish_with_delta_from_reports_each_delta(world: World, tmp_path: Path) -> None:
    repo, bundle = world.repo(tmp_path), _bundle_1_1_0(world, tmp_path)
    code, doc = run_json(
        "manifest", "publish", bundle, "--repo", repo, "--sign-key", world.signer,
        "--delta-from", "1.0.0", "--decryption-key", world.device,
    )  # fmt: skip
    assert (code, doc.get("ok")) == (0, True), doc
    assert errors_of(f"{schema_uri('manifest-publish')}#/$defs/result", doc) == []
    (delta,) = doc["deltas"]
    assert (delta["from"], delta["to"], delta["recorded"]) == ("1.0.0", "1.1.0", True)
    (release,) = [r for r in doc["releases"] if r["version"] == "1.1.0"]
    assert release["deltas"][0]["sha256"] == delta["sha256"]

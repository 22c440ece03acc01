"""Rough edges a first-time user met on the command line, one test each."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from _cli import aoe
from click.testing import CliRunner

from aoe_pack.cli import cli
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import NumberArgumentsCommand
from aoe_pack.cli.bench_cmds import DEFAULT_COMMAND, _BenchGroup
from aoe_pack.errors import (
    AmbiguousKeyError,
    AoePackError,
    BundleNotFoundError,
    ConfigValidationError,
    KeyNotFoundError,
    KeyReferenceError,
    SignerModuleError,
    TargetsFailedError,
    TokenNotFoundError,
    UsageError,
)

MNIST = Path(__file__).resolve().parents[2] / "sample_models" / "mnist" / "mnist.tflite"


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_bad_installed_version_is_named_as_the_option_given(tmp_path: Path) -> None:
    """Without --local-version the installed one stands for both: name what was typed."""
    root = tmp_path / "root.json"
    root.write_bytes(b"")  # never read: the version is refused first
    r = aoe(
        *("client", "check", "--repo", str(tmp_path), "--trusted-root", str(root)),
        *("--tag", "t", "--installed-version", "1.0", "--app-version", "1.0.0"),
        *("--device-id", "d"),
        json=True,
    )
    assert r.exit_code == 2
    assert r.doc["error"] == {
        "code": "usage",
        "hint": "write MAJOR.MINOR.PATCH, e.g. 1.0.10 or 2.1.0-rc.1 (semver.org)",
        "message": "--installed-version '1.0' is not a semantic version",
        "type": "UsageError",
    }


def _config(folder: Path, **fields: object) -> Path:
    """A minimal valid config (the sample .tflite packed as it is), with ``fields`` changed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.tflite").write_bytes(MNIST.read_bytes())
    doc = {
        "version": "1.0.0",
        "tag": "tag_x",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "m.tflite",
        **fields,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def test_version_without_version_code_fails_validate_not_publish(tmp_path: Path) -> None:
    """1000.0.0 is semver, but manifest publish refuses it: validate (and build) say so first."""
    config = _config(tmp_path, version="1000.0.0")
    code, doc = _json("validate", str(config), "--no-model")
    assert code == 1
    assert doc["violations"] == [
        {
            "pointer": "/version",
            "line": 2,
            "column": 14,
            "message": "1000.0.0 has no versionCode: major 1000 is above 209; "
            "`aoe-pack manifest publish` would refuse it",
            "hint": "versionCode bounds: major 0-209, minor 0-99, patch 0-99 "
            "(docs/format.md, versionCode)",
        }
    ]
    ((key, _),) = _keys(tmp_path, "signer")
    code, doc = _json(
        "build", str(config), "--out", str(tmp_path / "b.aoe"),
        "--sign-key", str(key.with_suffix(".key")), "--no-encrypt",
    )  # fmt: skip
    assert code == 1
    assert doc["error"]["message"].startswith(
        f"{config} has 1 problem(s); first: 1000.0.0 has no versionCode"
    )
    assert not (tmp_path / "b.aoe").exists()


def _keys(folder: Path, *names: str) -> list[tuple[Path, str]]:
    """Ed25519 key pairs folder/NAME.key and .pub, without a password, with their key ids."""
    made = []
    for name in names:
        result = CliRunner().invoke(
            cli, ["keygen", "--out", str(folder / name), "--json"], env={"AOE_PACK_PASSWORD": ""}
        )
        assert result.exit_code == 0, result.output
        made.append((folder / name, json.loads(result.stdout)["keyid"]))
    return made


def _bundle(tmp_path: Path, signer: Path) -> Path:
    out = tmp_path / "b.aoe"
    args = ["build", str(_config(tmp_path / "m")), "--out", str(out), "--no-encrypt"]
    result = CliRunner().invoke(cli, [*args, "--sign-key", str(signer.with_suffix(".key"))])
    assert result.exit_code == 0, result.output
    return out


def test_verify_below_threshold_says_how_many_signed_and_who(tmp_path: Path) -> None:
    """--threshold 2 with one signer printed '1 of the required 2 ... verified ()'."""
    (signer, keyid), (other, _) = _keys(tmp_path, "signer", "other")
    bundle = _bundle(tmp_path, signer)
    trusted = ["--trusted-key", f"{signer}.pub", "--trusted-key", f"{other}.pub"]
    result = CliRunner().invoke(cli, ["verify", str(bundle), *trusted, "--threshold", "2"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: 1 valid signature of 2 required; signed by {keyid[:16]}…\n"
        "hint: the bundle carries 1 signature: build it with more --sign-key keys, "
        "or verify with a lower --threshold\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("manifest", "rollout", "--repo", "r", "tag_x", "1.0.0", "-5", "--sign-key", "k"),
            "Invalid value for 'PCT': -5.0 is not in the range 0<=x<=100.",
        ),
        (
            ("manifest", "rollout", "--repo", "r", "--sign-key", "k", "tag_x", "1.0.0", "-0.5"),
            "Invalid value for 'PCT': -0.5 is not in the range 0<=x<=100.",
        ),
        (
            ("manifest", "publish", "b.aoe", "--rollout", "-5", "--repo", "r", "--sign-key", "k"),
            "Invalid value for '--rollout': -5.0 is not in the range 0<=x<=100.",
        ),
        (
            ("client", "simulate", "--devices", "-3"),
            "Invalid value for '--devices': -3 is not in the range 1<=x<=10000000.",
        ),
        (
            ("verify", "b.aoe", "--trusted-key", "k.pub", "--threshold", "-1"),
            "Invalid value for '--threshold': -1 is not in the range x>=1.",
        ),
    ],
    ids=["rollout-pct", "rollout-pct-after-options", "publish-rollout", "devices", "threshold"],
)
def test_negative_numbers_get_a_range_error(args: tuple[str, ...], message: str) -> None:
    """`manifest rollout TAG V -5` said "No such option '-5'": numbers are numbers."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_validate_fix_says_which_file_it_rewrote_and_what_changed(tmp_path: Path) -> None:
    """--fix rewrote the config without a word, and --json had no field for it."""
    config = _config(tmp_path, encrypted=False)
    before = config.read_text()
    result = CliRunner().invoke(cli, ["validate", str(config), "--fix", "--no-model"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{config}: valid\nrewrote {config}:\n  encrypted is now encrypt\n")
    assert config.read_text() != before
    code, doc = _json("validate", str(config), "--fix", "--no-model")
    assert code == 0
    assert doc["rewritten"] == {"path": str(config), "written": False, "changes": []}
    code, doc = _json("validate", str(config), "--no-model")
    assert doc["rewritten"] is None


def test_plain_zip_names_its_first_entry_as_text_not_bytes(tmp_path: Path) -> None:
    """inspect said "its first entry is b'config.j'...": a Python repr of bytes."""
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
    code, doc = _json("inspect", str(archive))
    assert code == 1
    assert doc["error"]["message"] == (
        "not an .aoe bundle: this is a plain ZIP archive (its first entry is 'config.j'..., "
        "not 'mimetype' at byte 30)"
    )


def test_bench_report_without_format_says_so_not_none(tmp_path: Path) -> None:
    """bench report said "report format None is not one this aoe-pack reads"."""
    report = tmp_path / "device.json"
    report.write_text('{"device": {}}')
    code, doc = _json("bench", "report", str(report), "--out", str(tmp_path / "r.html"))
    assert code == 1
    assert doc["error"]["message"] == (
        f'{report}: not a bench report (no "format"; this aoe-pack reads aoe-bench/v1)'
    )


def _run(*args: object) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Path]:
    """A repository with tag_x 1.0.0 published, its signing key and its root."""
    ((signer, _),) = _keys(tmp_path, "signer")
    key, folder = signer.with_suffix(".key"), tmp_path / "repo"
    r = _run("manifest", "init", "--repo", folder, "--root-key", f"{signer}.pub", "--sign-key", key)
    assert r.exit_code == 0, r.output
    bundle = _bundle(tmp_path, signer)
    r = _run("manifest", "publish", bundle, "--repo", folder, "--sign-key", key)
    assert r.exit_code == 0, r.output
    pub = signer.with_suffix(".pub")
    return {"repo": folder, "key": key, "pub": pub, "root": folder / "root.json", "bundle": bundle}


def test_yanking_a_yanked_release_again_needs_update_reason(repo: dict[str, Path]) -> None:
    """A second yank silently replaced the reason devices report."""
    yank = ("manifest", "yank", "--repo", repo["repo"], "tag_x", "1.0.0", "--sign-key", repo["key"])
    assert _run(*yank, "--reason", "bad accuracy").exit_code == 0
    assert _run(*yank, "--reason", "bad accuracy").exit_code == 0  # the same: nothing changes
    code, doc = _json(*map(str, yank), "--reason", "crashes on arm64")
    assert code == 1
    assert doc["error"] == {
        "code": "release-yanked",
        "type": "ReleaseYankedError",
        "message": "tag_x 1.0.0 is already yanked (bad accuracy)",
        "hint": "pass --update-reason to replace the reason devices report",
    }
    assert _run(*yank, "--reason", "crashes on arm64", "--update-reason").exit_code == 0
    _, shown = _json("manifest", "show", "--repo", str(repo["repo"]))
    assert shown["models"]["tag_x"]["releases"][0]["yanked"] == {"reason": "crashes on arm64"}


def test_rollout_of_a_yanked_release_is_refused(repo: dict[str, Path]) -> None:
    """Widening a yanked release's rollout succeeded without a word."""
    common = ("--repo", repo["repo"], "tag_x", "1.0.0", "--sign-key", repo["key"])
    assert _run("manifest", "yank", *common, "--reason", "bad accuracy").exit_code == 0
    code, doc = _json("manifest", "rollout", *map(str, common[:-2]), "50", *map(str, common[-2:]))
    assert code == 1
    assert doc["error"]["code"] == "release-yanked"
    assert doc["error"]["message"] == (
        "tag_x 1.0.0 is yanked (bad accuracy): no device downloads it, whatever its rollout"
    )


def test_build_refuses_to_overwrite_a_bundle_without_force(tmp_path: Path) -> None:
    """build --out replaced an existing file, while keygen and unpack refuse."""
    ((signer, _),) = _keys(tmp_path, "signer")
    bundle = _bundle(tmp_path, signer)
    before = bundle.read_bytes()
    args = ("build", _config(tmp_path / "m"), "--out", bundle, "--no-encrypt")
    r = _run(*args, "--sign-key", signer.with_suffix(".key"))
    assert r.exit_code == 1
    assert r.stderr == f"error: {bundle} already exists\nhint: pass --force to overwrite it\n"
    assert bundle.read_bytes() == before
    assert _run(*args, "--sign-key", signer.with_suffix(".key"), "--force").exit_code == 0


def test_client_check_of_an_unknown_tag_names_the_known_ones(
    repo: dict[str, Path], tmp_path: Path
) -> None:
    """`client check --tag <typo>` exited 0: every device 'keeps' a model nobody publishes."""
    device = ("--app-version", "1.0.0", "--device-id", "d", "--state", str(tmp_path / "s.json"))
    code, doc = _json(
        *("client", "check", "--repo", str(repo["repo"]), "--trusted-root", str(repo["root"])),
        *("--tag", "tag_y", "--installed-version", "1.0.0", *device),
    )
    assert code == 1
    assert doc["error"]["code"] == "release-not-found"
    assert doc["error"]["message"] == "the manifest has no model tag_y; its models: tag_x"
    code, doc = _json(
        *("client", "simulate", "--repo", str(repo["repo"]), "--trusted-root", str(repo["root"])),
        *("--tag", "tag_y", "--local-version", "1.0.0", "--app-version", "1.0.0"),
    )
    assert code == 1
    assert doc["error"]["message"] == "the manifest has no model tag_y; its models: tag_x"


def _subclasses(cls: type[AoePackError]) -> list[type[AoePackError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += [c for c in _subclasses(sub) if c not in found]
    return found


# The command line itself is wrong: these, and click's own errors, exit 2. A key
# reference that names no token, key or module names nothing, as a missing key file.
COMMAND_LINE_ERRORS = {
    UsageError, KeyReferenceError, BundleNotFoundError,
    KeyNotFoundError, TokenNotFoundError, AmbiguousKeyError, SignerModuleError,
}  # fmt: skip


@pytest.mark.parametrize("cls", _subclasses(AoePackError), ids=lambda c: c.__name__)
def test_every_error_class_exits_by_the_one_rule(
    cls: type[AoePackError], capsys: pytest.CaptureFixture[str]
) -> None:
    """2 when the command line is wrong in itself, 1 when well-formed work was refused."""
    assert "exit_code" not in vars(cls), "the rule lives in cli/_errors.py; no class overrides it"
    extra = {"violations": []} if cls is ConfigValidationError else {}
    error = cls("m", outcomes=[]) if cls is TargetsFailedError else cls("m", **extra)
    with pytest.raises(SystemExit) as exited, handle_errors(json_mode=True):
        raise error
    assert exited.value.code == (2 if cls in COMMAND_LINE_ERRORS else 1)
    assert json.loads(capsys.readouterr().out)["error"]["code"] == cls.code


# Each case: its exit code, and the error code --json gives (None: click's own error).
EXITS: dict[str, tuple[int, str | None]] = {
    # well-formed, but refused once aoe-pack looked
    "init-twice": (1, "repository-exists"),
    "unknown-release": (1, "release-not-found"),
    "pin-a-yanked-release": (1, "release-yanked"),
    "no-recipient": (1, "key-missing"),
    "trusted-key-is-no-key": (1, "key-format"),
    # the command line itself is wrong
    "missing-config": (2, None),
    "config-is-a-folder": (2, None),
    "missing-key-file": (2, "key-reference"),
    "missing-bundle": (2, "bundle-not-found"),
    "unknown-option": (2, None),
    "malformed-duration": (2, "usage"),
}


def _commands(case: str, r: dict[str, Path], tmp: Path) -> list[tuple[object, ...]]:
    """The commands of a case: any set-up ones, then the one whose exit code counts."""
    repo, key, release = ("--repo", r["repo"]), ("--sign-key", r["key"]), ("tag_x", "1.0.0")
    return {
        "init-twice": [("manifest", "init", *repo, "--root-key", r["pub"], *key)],
        "unknown-release": [("manifest", "rollout", *repo, "tag_x", "9.9.9", "50", *key)],
        "pin-a-yanked-release": [
            ("manifest", "yank", *repo, *release, "--reason", "bad", *key),
            ("manifest", "pin", *repo, *release, *key),
        ],
        "no-recipient": [("build", _config(tmp / "c"), "--out", tmp / "x.aoe", *key)],
        "trusted-key-is-no-key": [("verify", r["bundle"], "--trusted-key", r["root"])],
        "missing-config": [("validate", tmp / "nope.json")],
        "config-is-a-folder": [("validate", tmp)],
        "missing-key-file": [("verify", r["bundle"], "--trusted-key", tmp / "nope.pub")],
        "missing-bundle": [("verify", tmp / "nope.aoe", "--trusted-key", r["pub"])],
        "unknown-option": [("verify", r["bundle"], "--trusted", r["pub"])],
        "malformed-duration": [("manifest", "resign", *repo, *key, "--expires", "soon")],
    }[case]


@pytest.mark.parametrize("case", sorted(EXITS))
def test_named_refusals_exit_1_and_command_line_mistakes_exit_2(
    case: str, repo: dict[str, Path], tmp_path: Path
) -> None:
    """init twice, an unknown release, pinning a yanked one, no recipient all exited 2."""
    code, error = EXITS[case]
    *before, last = _commands(case, repo, tmp_path)
    for args in before:
        assert _run(*args).exit_code == 0
    result = _run(*last, "--json")
    assert result.exit_code == code, result.output
    if error is not None:
        assert json.loads(result.stdout)["error"]["code"] == error


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Command | None]]:
    """Every command under ``command``, with its path and its group."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield (*path, name), sub, command
            yield from _walk(sub, (*path, name))


def test_every_command_shows_an_example_and_every_option_says_what_it_does() -> None:
    """validate, inspect, the manifest commands... had no example; some options no help."""
    missing = []
    for path, command, group in _walk(cli):
        text = command.get_help(click.Context(command, info_name=path[-1]))
        lines = [line.strip() for line in text.splitlines()]
        example = lines[lines.index("Example:") + 1 :] if "Example:" in lines else []
        names = {" ".join(path)}
        if isinstance(group, _BenchGroup) and path[-1] == DEFAULT_COMMAND:
            names.add(" ".join(path[:-1]))  # `aoe-pack bench BUNDLE` runs `bench run`
        if not any(f"{line} ".startswith(f"aoe-pack {n} ") for line in example for n in names):
            missing.append(f"aoe-pack {' '.join(path)}: no example")
        missing += [
            f"aoe-pack {' '.join(path)} {p.opts[0]}: no help"
            for p in command.params
            if isinstance(p, click.Option) and not p.hidden and not p.help
        ]
    assert missing == []


def test_every_numeric_argument_accepts_a_negative_number_to_refuse() -> None:
    """A negative number for a numeric argument must reach its range check (see above)."""
    numeric = (click.types.IntParamType, click.types.FloatParamType)
    for path, command, _ in _walk(cli):
        for p in command.params:
            if isinstance(p, click.Argument) and isinstance(p.type, numeric):
                assert isinstance(command, NumberArgumentsCommand), " ".join(path)


def test_simulate_installed_is_installed_version_as_in_check(repo: dict[str, Path]) -> None:
    """client check took --installed-version, client simulate --installed: one name now."""
    args = ("client", "simulate", "--repo", repo["repo"], "--trusted-root", repo["root"])
    args += ("--tag", "tag_x", "--local-version", "0.9.0", "--app-version", "1.0.0")
    args += ("--devices", "10", "--json")
    new = _run(*args, "--installed-version", "1.0.0")
    assert new.exit_code == 0, new.output
    old = _run(*args, "--installed", "1.0.0")
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert old.stderr == "warning: --installed is deprecated: write --installed-version\n"
    assert "--installed " not in _run("client", "simulate", "--help").stdout

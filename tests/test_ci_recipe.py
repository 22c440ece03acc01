"""docs/ci.md runs: its set-up and its GitHub Actions workflow, against moto's S3 and KMS.

The page's ```yaml block is the workflow and its ```sh blocks are the one-time
set-up. Every ``aoe-pack`` line of both runs here, in order, with bash as
the runner runs a step, against one moto server; the ``aws`` lines of the
set-up are done through boto instead (the AWS CLI is no dependency of the
suite). Only the Actions runner itself is played, by :class:`Runner`:
checkout and artifacts are copied files, OIDC credentials are moto's dummy
ones, and the actions it does not know fail the test.

The one departure from the page: the test appends ``?message-type=raw`` to
the workflow's ``awskms://`` references (``_KMS_OPTION``), because moto
5.2.6 hashes a ``MessageType=DIGEST`` digest again, unlike AWS (the canary
is in tests/signers/test_awskms.py). It is done to the values of the
workflow's ``env:``, which every command takes its keys from, and not to the
page: RAW signatures stop at 4,096 bytes, which a real repository's manifest
outgrows, and a test-only variable in a recipe meant for copying would be
copied too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from _kms import MotoKms, pem_from_der
from _server_s3 import S3Server

from aoe_pack.cli import cli

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "ci.md"
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

# What the set-up's `aws` and `openssl` lines leave in the checkout, by the
# workflow variable naming the key.
PUBLIC_KEYS = {"RELEASE_KEY": "keys/release.pub", "REVIEW_KEY": "keys/review.pub"}
ROOT = "keys/root.json"  # `aws s3 cp "$MODEL_REPO/root.json" keys/root.json`
DEVICE_CHECK = "device-check.json"  # where the workflow's device check writes its --json
_KMS_OPTION = "?message-type=raw"  # moto hashes DIGEST again: see the module docstring

# The actions the page may use, each played by Runner (a new one fails the test).
CHECKOUT = "actions/checkout@v4"
SETUP_PYTHON = "actions/setup-python@v5"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@v4"
UPLOAD = "actions/upload-artifact@v4"
DOWNLOAD = "actions/download-artifact@v4"


# --- reading the page -------------------------------------------------------------------


def blocks(language: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) == language]


def load_workflow() -> dict[Any, Any]:
    (block,) = blocks("yaml")
    workflow = yaml.safe_load(block)
    assert isinstance(workflow, dict)
    return workflow


def logical_lines(script: str) -> list[str]:
    """The commands of a shell script: continuations joined, blanks and comments left out."""
    joined = re.sub(r"\\\n", " ", script)
    return [s for line in joined.splitlines() if (s := line.strip()) and not s.startswith("#")]


def aoe_pack_lines(script: str) -> list[str]:
    return [line for line in logical_lines(script) if line.split()[0] == "aoe-pack"]


def expand(text: str, env: Mapping[str, str]) -> str:
    """What Actions does before the shell sees a line: ``${{ env.X }}`` replaced."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1).removeprefix("env.")
        unknown = f"${{{{ {m.group(1)} }}}}: only the workflow's env is known here"
        assert m.group(1) == f"env.{name}", unknown
        assert name in env, unknown
        return env[name]

    return EXPRESSION.sub(value, text)


def uses(step: Mapping[str, Any]) -> str | None:
    return step.get("uses")


def jobs_in_order(workflow: Mapping[Any, Any]) -> list[str]:
    """The jobs in an order that runs each after those it needs (the page's, where free)."""
    jobs = workflow["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [
            name for name, job in jobs.items() if name not in done and set(_needs(job)) <= set(done)
        ]
        assert ready, f"jobs that need each other or an unknown job: {set(jobs) - set(done)}"
        done.append(ready[0])
    return done


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


# --- the workflow's shape ---------------------------------------------------------------


def test_the_page_holds_one_workflow_and_its_set_up() -> None:
    text = PAGE.read_text(encoding="utf-8")
    languages = [m.group(1) for m in FENCE.finditer(text)]
    assert languages.count("yaml") == 1
    assert languages.count("sh") >= 1
    assert set(languages) <= {"yaml", "sh", "json"}, "a block in a language nothing checks"
    assert text.count("```") == 2 * len(languages), "a fence the pattern did not pair"
    for block in blocks("json"):
        json.loads(block)  # the IAM policies can be pasted as they are


def test_the_workflow_trades_an_oidc_token_for_aws_roles_and_reads_no_secret() -> None:
    workflow = load_workflow()
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert "push" in workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "secrets." not in json.dumps(workflow)
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        for step in job["steps"]:
            assert uses(step) in {
                None, CHECKOUT, SETUP_PYTHON, AWS_CREDENTIALS, UPLOAD, DOWNLOAD
            }, f"{name}: {uses(step)} is an action this test does not play"  # fmt: skip
            if uses(step) == SETUP_PYTHON:
                assert step["with"] == {"python-version": "3.11"}, name  # a string, not 3.1
            if uses(step) == AWS_CREDENTIALS:
                assert set(step["with"]) == {"role-to-assume", "aws-region"}, name
                assert re.fullmatch(
                    r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", step["with"]["role-to-assume"]
                )


def _roles(job: Mapping[str, Any]) -> set[str]:
    return {s["with"]["role-to-assume"] for s in job["steps"] if uses(s) == AWS_CREDENTIALS}


def _runs(job: Mapping[str, Any]) -> list[str]:
    return [line for s in job["steps"] if "run" in s for line in aoe_pack_lines(s["run"])]


def _job_that_runs(jobs: Mapping[str, Any], *command: str) -> str:
    """The one job with an ``aoe-pack COMMAND ...`` line."""
    (name,) = [
        n
        for n, job in jobs.items()
        if any(r.split()[1 : 1 + len(command)] == list(command) for r in _runs(job))
    ]
    return name


def test_the_co_signing_job_waits_for_an_approval_and_has_a_role_of_its_own() -> None:
    jobs = load_workflow()["jobs"]
    build, review = _job_that_runs(jobs, "build"), _job_that_runs(jobs, "sign")
    publish = _job_that_runs(jobs, "manifest", "publish")
    assert _needs(jobs[review]) == [build]
    assert _needs(jobs[publish]) == [review], "only the co-signed bundle is published"
    assert jobs[review]["environment"] != jobs[build]["environment"]
    assert _roles(jobs[review]).isdisjoint(_roles(jobs[build]) | _roles(jobs[publish]))


def test_each_install_names_extras_aoe_pack_has_and_the_constraints() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    installs = [
        line
        for job in load_workflow()["jobs"].values()
        for step in job["steps"]
        if "run" in step
        for line in logical_lines(step["run"])
        if line.startswith("pip install")
    ]
    assert len(installs) == len(load_workflow()["jobs"])
    for line in installs:
        args = shlex.split(line, comments=True)
        (package,) = [a for a in args if a.startswith("aoe-pack[")]
        assert set(package.removeprefix("aoe-pack[").removesuffix("]").split(",")) <= set(extras)
        assert args[args.index("-c") + 1].endswith("constraints.txt"), line


# --- every command the page names exists ------------------------------------------------


def unknown_in(line: str) -> list[str]:
    """What ``aoe-pack ...`` names that the CLI lacks: a command, or an option of it."""
    args = shlex.split(line, comments=True)
    for stop in (">", "|", "&&", ";"):
        if stop in args:
            args = args[: args.index(stop)]
    assert args[0] == "aoe-pack"
    command: click.Command = cli
    words = ["aoe-pack"]
    rest = args[1:]
    while isinstance(command, click.Group):
        if not rest or rest[0] not in command.commands:
            return [f"{' '.join(words)} has no command {rest[:1]}"]
        words.append(rest[0])
        command = command.commands[rest.pop(0)]
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    return [
        f"{' '.join(words)} has no option {a.split('=', 1)[0]}"
        for a in rest
        if a.startswith("-") and a.split("=", 1)[0] not in options
    ]


def test_the_command_check_catches_a_renamed_command_or_option() -> None:
    assert unknown_in("aoe-pack verify m.aoe --trusted-key k.pub --threshold 2") == []
    assert unknown_in("aoe-pack verify m.aoe --treshold 2") == [
        "aoe-pack verify has no option --treshold"
    ]
    assert unknown_in("aoe-pack manifest publsh m.aoe") == [
        "aoe-pack manifest has no command ['publsh']"
    ]


def test_every_aoe_pack_command_of_the_page_exists_with_its_options() -> None:
    workflow = load_workflow()
    env = {str(k): str(v) for k, v in workflow["env"].items()}
    lines = [
        expand(line, env)
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "run" in step
        for line in aoe_pack_lines(step["run"])
    ] + [line for block in blocks("sh") for line in aoe_pack_lines(block)]
    assert len(lines) >= 9
    assert [problem for line in lines for problem in unknown_in(line)] == []


# --- running it -------------------------------------------------------------------------


@dataclass
class Ran:
    job: str
    line: str
    stdout: str


@dataclass
class Runner:
    """Plays GitHub's runner for the page's jobs: a fresh folder per job, bash per line."""

    root: Path
    checkout: Path  # the model's git repository, as the set-up left it
    base_env: dict[str, str]  # what every step sees: the workflow's env and the endpoints
    credentials: dict[str, str]  # what configure-aws-credentials adds (moto's dummy ones)
    artifacts: dict[str, Path] = field(default_factory=dict)
    ran: list[Ran] = field(default_factory=list)

    def bash(self, job: str, line: str, cwd: Path, env: Mapping[str, str]) -> None:
        """One logical line, as a `run:` step runs it (`shell: bash`)."""
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", line],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (
            f"{job}: {line}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        self.ran.append(Ran(job, line, done.stdout))

    def job(self, name: str, job: Mapping[str, Any]) -> Path:
        """Run one job's steps in a fresh folder; returns the folder."""
        work = self.root / "jobs" / name
        work.mkdir(parents=True)
        env = {**self.base_env, **{k: str(v) for k, v in job.get("env", {}).items()}}
        env["HOME"] = str(self.root / "homes" / name)  # a fresh runner's state folder
        Path(env["HOME"]).mkdir(parents=True)
        for step in job["steps"]:
            step_env = {**env, **{k: str(v) for k, v in step.get("env", {}).items()}}
            given = {k: expand(str(v), step_env) for k, v in step.get("with", {}).items()}
            action = uses(step)
            if action == CHECKOUT:
                shutil.copytree(self.checkout, work, dirs_exist_ok=True)
            elif action == AWS_CREDENTIALS:
                region = given["aws-region"]
                env |= {**self.credentials, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
            elif action == UPLOAD:
                assert given["name"] not in self.artifacts, "v4 refuses a name uploaded twice"
                source = work / given["path"]
                assert source.is_file(), f"{name}: nothing to upload at {given['path']}"
                stored = self.root / "artifacts" / given["name"] / source.name
                stored.parent.mkdir(parents=True)
                shutil.copyfile(source, stored)
                self.artifacts[given["name"]] = stored
            elif action == DOWNLOAD:
                stored = self.artifacts[given["name"]]
                shutil.copyfile(stored, work / given.get("path", ".") / stored.name)
            elif action is None:
                for line in aoe_pack_lines(expand(step["run"], step_env)):
                    self.bash(name, line, work, step_env)
            else:
                assert action == SETUP_PYTHON, action  # this interpreter plays it
        return work


def _as_is_model(folder: Path) -> None:
    """The mnist sample's .tflite as it is: no conversion, so the build takes a second."""
    sample = REPO / "sample_models" / "mnist"
    doc = json.loads((sample / "config.json").read_text(encoding="utf-8"))
    doc.pop("targets")
    doc |= {"runtime": "tflite", "modelName": "mnist.tflite"}
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(doc), encoding="utf-8")
    for name in ("mnist.tflite", "labels.txt"):
        shutil.copyfile(sample / name, folder / name)


def _exported(block: str) -> dict[str, str]:
    """The variables an ``export`` line of a set-up block gives values."""
    found = {}
    for line in logical_lines(block):
        if line.startswith("export "):
            found |= dict(a.split("=", 1) for a in shlex.split(line)[1:])
    return found


@pytest.fixture
def no_aws_of_my_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own AWS setup (profile, config files) reaches none of the clients here."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def kms(s3_server: S3Server, no_aws_of_my_own: None) -> Iterator[MotoKms]:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "kms",
        region_name=str(load_workflow()["env"]["AWS_REGION"]),
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield MotoKms(endpoint=s3_server.endpoint, client=client)
    finally:
        client.close()


@pytest.fixture
def s3(s3_server: S3Server, no_aws_of_my_own: None) -> Iterator[Any]:
    import boto3

    client = boto3.client(
        "s3",
        region_name=str(load_workflow()["env"]["AWS_REGION"]),
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield client
    finally:
        client.close()


def _committed(block: str) -> list[str]:
    """The files a ``git add`` line of a set-up block commits."""
    return [
        path
        for line in logical_lines(block)
        if line.startswith("git add ")
        for path in shlex.split(line)[2:]
    ]


def _aoe_pack_on_path(folder: Path) -> Path:
    """A folder holding an ``aoe-pack`` command, as pip's console script would be."""
    folder.mkdir()
    script = folder / "aoe-pack"
    script.write_text(f'#!/bin/sh\nexec "{Path(sys.executable).as_posix()}" -m aoe_pack "$@"\n')
    script.chmod(0o755)
    return folder


def test_the_recipe_builds_co_signs_publishes_and_a_device_downloads(
    s3_server: S3Server, kms: MotoKms, s3: Any, tmp_path: Path
) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is not installed; GitHub's runner runs the page's steps with it")
    workflow = load_workflow()
    page_env = {str(k): str(v) for k, v in workflow["env"].items()}
    for block in blocks("sh"):  # the set-up and the workflow name the same keys and bucket
        assert _exported(block).items() <= page_env.items()
    region = page_env["AWS_REGION"]
    bucket, _, prefix = page_env["MODEL_REPO"].removeprefix("s3://").partition("/")
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": f"{_aoe_pack_on_path(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "AOE_PACK_PASSWORD": "",  # keygen writes keys/app.key unencrypted, and asks nothing
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **{f"AWS_ENDPOINT_URL{s}": s3_server.endpoint for s in ("", "_S3", "_KMS")},
        **page_env,
    }
    base_env.pop("XDG_STATE_HOME", None)  # the device check keeps its state under HOME
    for variable in PUBLIC_KEYS:
        base_env[variable] += _KMS_OPTION
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    runner = Runner(tmp_path, tmp_path / "checkout", base_env, credentials)

    # The set-up, on the release manager's workstation. Its `aws` and `openssl` lines
    # first: the keys under their aliases, the bucket, the public keys.
    workstation = tmp_path / "workstation"
    (workstation / "keys").mkdir(parents=True)
    ders = {}
    for variable, pub in PUBLIC_KEYS.items():
        key = kms.create_key(alias=page_env[variable].removeprefix("awskms:///"))
        ders[variable] = kms.public_der(key["KeyId"])
        pem_from_der(ders[variable], workstation / pub)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    admin = {**base_env, **credentials, "AWS_REGION": region, "HOME": str(workstation)}
    for block in blocks("sh"):
        for line in aoe_pack_lines(block):
            runner.bash("set-up", line, workstation, admin)
    root = s3.get_object(Bucket=bucket, Key=f"{prefix}/root.json")["Body"].read()
    (workstation / ROOT).write_bytes(root)
    # The model's git repository: the team's model, and what the set-up commits.
    _as_is_model(runner.checkout / Path(page_env["CONFIG"]).parent)
    for path in [p for block in blocks("sh") for p in _committed(block)]:
        (runner.checkout / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workstation / path, runner.checkout / path)

    folders = {name: runner.job(name, workflow["jobs"][name]) for name in jobs_in_order(workflow)}

    commands = [" ".join(shlex.split(r.line)[1:3]) for r in runner.ran]
    for expected in ("keygen --type", "manifest init", "build", "sign", "manifest publish"):
        assert any(c.startswith(expected) for c in commands), expected
    verify = [r for r in runner.ran if r.line.startswith("aoe-pack verify")][-1]
    assert "2 trusted signature(s) (threshold 2)" in verify.stdout, verify.stdout
    signed_by = set(re.findall(r"signed by ([0-9a-f]{64})", verify.stdout))
    assert signed_by == {hashlib.sha256(der).hexdigest() for der in ders.values()}
    checked_in = folders[_job_that_runs(workflow["jobs"], "client", "check")]
    device = json.loads((checked_in / DEVICE_CHECK).read_text(encoding="utf-8"))
    assert (device["action"], device["version"]) == ("download", "1.0.0")
    published = folders[_job_that_runs(workflow["jobs"], "manifest", "publish")]
    co_signed = (published / page_env["BUNDLE"]).read_bytes()
    assert device["sha256"] == hashlib.sha256(co_signed).hexdigest()
    manifest = s3.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read()
    models = json.loads(base64.b64decode(json.loads(manifest)["payload"]))["models"]
    (release,) = models[device["tag"]]["releases"]
    assert set(release["signers"]) == signed_by  # what devices check the bundle against

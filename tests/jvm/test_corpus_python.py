"""The shared attack corpus (tests/vectors/attacks/) holds for aoe-pack itself.

The same corpus runs in the JVM library's JUnit suite (``dev.aoepack.corpus``);
here it is checked against the reference: the committed files are what the
generator makes from the committed bases, and every case's expectation is what
aoe-pack's library functions (those its CLI calls) give, and, for every bundle
case and a few repository scenarios, what the real CLI prints with ``--json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests._cli import NO_PASSWORD, Cli
from tests._modules import load_module

ATTACKS = Path(__file__).resolve().parents[1] / "vectors" / "attacks"


ma = load_module("make_attacks", ATTACKS / "make_attacks.py")
BUNDLES: list[dict[str, Any]] = json.loads((ATTACKS / "bundles.json").read_text())["cases"]
REPOS: list[dict[str, Any]] = json.loads((ATTACKS / "repos.json").read_text())["scenarios"]
aoe = Cli(env=NO_PASSWORD)


@pytest.fixture(autouse=True, scope="module")
def _unencrypted_keys() -> Iterator[None]:
    """The test-only keys have no password; a password in the environment would be refused."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AOE_PACK_PASSWORD", raising=False)
        yield


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in ma.iter_files(root)
        if p.suffix != ".py" and p.name != "README.md"
    }


def test_corpus_is_what_the_generator_makes(tmp_path: Path) -> None:
    """Regenerated from the committed encrypted bases and outsider key, every file (every
    broken bundle, repository document, bundles.json and repos.json) is byte-identical;
    the generator also requires the reference to give each intended outcome."""
    out = tmp_path / "attacks"
    (out / "bundles").mkdir(parents=True)
    for name, (hpke, keks) in ma.BASES.items():
        if hpke or keks:
            shutil.copy(ATTACKS / "bundles" / name, out / "bundles" / name)
    shutil.copytree(ATTACKS / "keys", out / "keys")
    for key in ATTACKS.parent.glob("test-only-*"):  # cases name them as ../test-only-*
        shutil.copy(key, tmp_path / key.name)
    ma.write_all(out)
    committed, rebuilt = _files(ATTACKS), _files(out)
    assert sorted(committed) == sorted(rebuilt)
    changed = [name for name in committed if committed[name] != rebuilt[name]]
    assert not changed, (
        f"tests/vectors/attacks differs from what make_attacks.py makes ({changed[:5]}): run "
        "`.venv/bin/python tests/vectors/attacks/make_attacks.py` and commit the result"
    )


def test_corpus_is_small_and_test_only() -> None:
    files = list(ma.iter_files(ATTACKS))
    assert sum(p.stat().st_size for p in files) < 2 << 20
    assert "TEST-ONLY" in (ATTACKS / "README.md").read_text(encoding="utf-8")
    keys = [p for p in files if p.suffix in (".key", ".pub")]
    assert keys
    assert all(p.name.startswith("test-only-") for p in keys)
    for case in BUNDLES:  # every key a case names is a committed test-only key
        for ref in [*case["trustedKeys"], case["decryptionKey"] or case["trustedKeys"][0]]:
            assert Path(ref).name.startswith("test-only-"), (case["name"], ref)
            assert (ATTACKS / ref).is_file()


def test_corpus_covers_every_kind() -> None:
    kinds: dict[str, int] = {}
    for case in BUNDLES:
        kinds[case["kind"]] = kinds.get(case["kind"], 0) + 1
    assert set(kinds) == {"valid", "outsider", "signature", "zip", "insider", "decryption"}
    assert min(kinds.values()) >= 8, kinds
    expects = [step["expect"] for s in REPOS for step in s["steps"]]
    assert sum("error" in e for e in expects) >= 25
    assert {e["decision"]["action"] for e in expects if "decision" in e} == {
        "download",
        "keep",
        "revert-to-local",
    }
    names = [c["name"] for c in BUNDLES] + [s["name"] for s in REPOS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", BUNDLES, ids=[c["name"] for c in BUNDLES])
def test_bundle_case(case: Mapping[str, Any]) -> None:
    assert ma.run_bundle_case(ATTACKS, case) == case["expect"], case["description"]


@pytest.mark.parametrize("scenario", REPOS, ids=[s["name"] for s in REPOS])
def test_repository_scenario(scenario: Mapping[str, Any]) -> None:
    got = ma.run_scenario(ATTACKS, scenario)
    assert got == [step["expect"] for step in scenario["steps"]], scenario["description"]


# --- through the real CLI ----------------------------------------------------------------


def _cli_bundle(case: Mapping[str, Any], out: Path) -> dict[str, Any]:
    args: list[Any] = [case["operation"], ATTACKS / case["bundle"]]
    for key in case["trustedKeys"]:
        args += ["--trusted-key", ATTACKS / key]
    args += ["--threshold", str(case["threshold"])]
    if case["decryptionKey"]:
        args += ["--decryption-key", ATTACKS / case["decryptionKey"]]
    if case["operation"] == "unpack":
        args += ["--out", out]
    ran = aoe(*args, json=True)
    doc = ran.doc
    if not doc.get("ok", True) or ran.exit_code != 0:
        assert ran.exit_code == (2 if doc["error"]["code"] == "usage" else 1), ran.output
        return {"error": doc["error"]["code"]}
    if case["operation"] == "verify":
        return {"verified": True}
    return {"files": ma.unpacked_files(out)}


@pytest.mark.parametrize("case", BUNDLES, ids=[c["name"] for c in BUNDLES])
def test_bundle_case_through_the_cli(case: Mapping[str, Any], tmp_path: Path) -> None:
    assert _cli_bundle(case, tmp_path / "out") == case["expect"]


CLI_SCENARIOS = [
    "rollout-out-of-bucket",
    "yanked-running-reverts",
    "equal-version-replay-index",
    "fast-forward-recovery",
    "first-contact-floor",
    "rotation-other-repository-id",
]


@pytest.mark.parametrize("name", CLI_SCENARIOS)
def test_repository_scenario_through_the_cli(name: str, tmp_path: Path) -> None:
    (scenario,) = [s for s in REPOS if s["name"] == name]
    state = tmp_path / "state.json"
    for step in scenario["steps"]:
        d = step["device"]
        args: list[Any] = ["client", "check", "--repo", ATTACKS / step["repo"]]
        args += ["--trusted-root", ATTACKS / (step["trustedRoot"] or scenario["trustedRoot"])]
        args += ["--tag", scenario["tag"], "--app-version", d["appVersion"]]
        args += ["--device-id", d["deviceId"], "--local-version", d["localVersion"]]
        args += ["--installed-version", d["installedVersion"] or d["localVersion"]]
        args += ["--state", state]
        for channel in d["channels"]:
            args += ["--channel", channel]
        for runtime in d["runtimes"]:
            args += ["--runtime", runtime]
        if scenario["minManifestVersion"] is not None:
            args += ["--min-manifest-version", str(scenario["minManifestVersion"])]
        ran = aoe(*args, json=True)
        doc = ran.doc
        if "error" in step["expect"]:
            assert ran.exit_code == 1, ran.output
            assert {"error": doc["error"]["code"]} == step["expect"]
        else:
            assert ran.exit_code == 0, ran.output
            assert ma.outcome(doc) == step["expect"]


def test_payload_digests_are_the_files() -> None:
    doc = json.loads((ATTACKS / "bundles.json").read_text())
    assert doc["payload"] == {
        p: hashlib.sha256(d).hexdigest() for p, d in sorted(ma.PAYLOAD.items())
    }

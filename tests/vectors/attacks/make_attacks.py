"""Generate the shared attack corpus (tests/vectors/attacks/, README.md there).

    .venv/bin/python tests/vectors/attacks/make_attacks.py          # rewrite what derives
    .venv/bin/python tests/vectors/attacks/make_attacks.py --fresh  # also new random bases

Every key used here is TEST-ONLY and public. The plain base bundle, every broken
bundle derived from a base, every repository document and both manifests
(``bundles.json``, ``repos.json``) are deterministic: Ed25519 and RFC 6979 ECDSA
sign the same bytes alike, and the broken bundles derive from the committed bases.
The encrypted bases draw fresh data keys and HPKE ephemerals, so they are made
once and kept (``--fresh`` replaces them, and so every file derived from them);
``tests/jvm/test_corpus_python.py`` regenerates the rest and requires the
committed bytes. The cases are in ``_bundle_cases.py`` and ``_repo_cases.py``;
this module writes them, and runs them through aoe-pack (:func:`run_bundle_case`,
:func:`run_scenario`): the generator refuses a case whose outcome is not the one
it intends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the case modules beside this one
    sys.path.insert(0, str(HERE))

import _bundle_cases as bc  # noqa: E402
import _repo_cases as rc  # noqa: E402

from aoe_pack.client.decide import Device  # noqa: E402

BASES, PAYLOAD = bc.BASES, bc.PAYLOAD

# --- running a case through aoe-pack -----------------------------------------------------


def unpacked_files(out: Path) -> dict[str, str]:
    """SHA-256 of every file under ``out``, by its path relative to it."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def run_bundle_case(root: Path, case: Mapping[str, Any]) -> dict[str, Any]:
    """Run a bundle case through ``aoe_pack.api`` (what ``verify``/``unpack`` call): its
    outcome, as ``expect`` writes it. Key files are read with no password."""
    from aoe_pack import api
    from aoe_pack.errors import AoePackError

    trusted = [root / k for k in case["trustedKeys"]]
    key = root / case["decryptionKey"] if case["decryptionKey"] else None
    path, threshold = root / case["bundle"], case["threshold"]
    try:
        if case["operation"] == "verify":
            api.verify(bundle=path, trusted_keys=trusted, threshold=threshold, decryption_key=key)
            return {"verified": True}
        with tempfile.TemporaryDirectory(prefix="aoe-corpus-") as tmp:
            out = Path(tmp) / "out"
            api.unpack(
                bundle=path, out=out, trusted_keys=trusted, threshold=threshold, decryption_key=key
            )
            return {"files": unpacked_files(out)}
    except AoePackError as e:
        return {"error": e.code}


DECISION_FIELDS = ("action", "version", "url", "sha256", "size", "reason", "running", "skipped")


def scenario_device(d: Mapping[str, Any]) -> Device:
    return Device(
        device_id=d["deviceId"],
        app_version=d["appVersion"],
        runtimes=frozenset(d["runtimes"]),
        channels=tuple(d["channels"]),
        local_version=d["localVersion"],
        installed_version=d["installedVersion"],
    )


def outcome(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a scenario step records of a ``client check --json`` result."""
    return {
        "decision": {k: result[k] for k in DECISION_FIELDS},
        "state": {k: result[k] for k in ("rootVersion", "manifestVersion")},
    }


def run_scenario(root: Path, case: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a scenario's steps through ``aoe_pack.api.check`` (what ``client check`` calls)
    with one state file for all of them: each step's outcome, as ``expect`` writes it."""
    from aoe_pack import api
    from aoe_pack.errors import AoePackError

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aoe-corpus-") as tmp:
        state = Path(tmp) / "state.json"
        for step in case["steps"]:
            trusted = (root / (step["trustedRoot"] or case["trustedRoot"])).read_bytes()
            try:
                result = api.check(
                    repo=str(root / step["repo"]),
                    tag=case["tag"],
                    device=scenario_device(step["device"]),
                    trusted_root=trusted,
                    state=state,
                    min_manifest_version=case["minManifestVersion"],
                )
            except AoePackError as e:
                results.append({"error": e.code})
                continue
            results.append(outcome(result.to_dict()))
    return results


# --- writing -----------------------------------------------------------------------------


def write_bundles(out: Path, *, fresh: bool) -> dict[str, Any]:
    bundles = out / "bundles"
    bundles.mkdir(parents=True, exist_ok=True)
    bases: dict[str, bytes] = {}
    for name, (hpke, keks) in BASES.items():
        if fresh or not (bundles / name).exists() or not (hpke or keks):
            bc.build_base(name, bundles / name)
        bases[name] = (bundles / name).read_bytes()
    for stale in bundles.iterdir():
        if stale.name not in BASES:
            stale.unlink()
    cases = bc.bundle_cases(bases)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    for c in cases:
        if c.data is not None:
            (bundles / f"{c.name}.aoe").write_bytes(c.data)
    doc = [c.to_json() for c in cases]
    wrong = [
        (c["name"], got, c["expect"])
        for c in doc
        if (got := run_bundle_case(out, c)) != c["expect"]
    ]
    assert not wrong, "aoe-pack disagrees with the intended outcome:\n" + "\n".join(map(str, wrong))
    return {
        "comment": "The shared bundle attack corpus (README.md). Every key is TEST-ONLY.",
        "payload": bc.file_digests(),
        "cases": doc,
    }


def describe(s: rc.Scenario, folder: str) -> dict[str, Any]:
    return {
        "name": s.name,
        "description": s.description,
        "tag": rc.TAG,
        "trustedRoot": f"{folder}/trusted-root.json",
        "minManifestVersion": s.min_manifest_version,
        "steps": [
            {
                "repo": f"{folder}/step{i}",
                "trustedRoot": f"{folder}/step{i}-trusted-root.json" if st.trusted_root else None,
                "device": dict(st.device),
                "expect": dict(st.expect),
            }
            for i, st in enumerate(s.steps, 1)
        ],
    }


def write_repos(out: Path) -> dict[str, Any]:
    shutil.rmtree(out / "repos", ignore_errors=True)
    doc = []
    for s in rc.scenarios():
        folder = f"repos/{s.name}"
        (out / folder).mkdir(parents=True)
        (out / folder / "trusted-root.json").write_bytes(s.trusted_root)
        for i, st in enumerate(s.steps, 1):
            step = out / folder / f"step{i}"
            step.mkdir()
            if not st.repo.files:  # git keeps no empty folder
                (step / ".keep").write_bytes(b"")
            for name, data in sorted(st.repo.files.items()):
                (step / name).parent.mkdir(parents=True, exist_ok=True)
                (step / name).write_bytes(data)
            if st.trusted_root:
                (out / folder / f"step{i}-trusted-root.json").write_bytes(st.trusted_root)
        doc.append(describe(s, folder))
    for case in doc:
        fill_reference_wording(out, case)
    return {
        "comment": "The shared repository scenarios (README.md). Every key is TEST-ONLY.",
        "scenarios": doc,
    }


def fill_reference_wording(out: Path, case: dict[str, Any]) -> None:
    """Require aoe-pack's outcome of each step to be the intended one, and take the
    wording of its decisions (reason, running, skipped) into the expectation."""
    for got, step in zip(run_scenario(out, case), case["steps"], strict=True):
        want = step["expect"]
        same = got == want if "error" in want else (
            "decision" in got
            and got["state"] == want["state"]
            and all(got["decision"][k] == v for k, v in want["decision"].items())
        )  # fmt: skip
        assert same, f"{case['name']}: aoe-pack gives {got}, the scenario intends {want}"
        step["expect"] = got


def write_all(out: Path, *, fresh: bool = False) -> None:
    bc.make_keys(out)
    (out / "bundles.json").write_text(json.dumps(write_bundles(out, fresh=fresh), indent=2) + "\n")
    (out / "repos.json").write_text(json.dumps(write_repos(out), indent=2) + "\n")


def iter_files(root: Path) -> Iterator[Path]:
    """The corpus's files (no caches)."""
    return (p for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="new random encrypted bases too")
    parser.add_argument("--dir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    write_all(args.dir, fresh=args.fresh)
    size = sum(p.stat().st_size for p in iter_files(args.dir))
    print(f"wrote the corpus in {args.dir} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

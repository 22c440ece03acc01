"""Repository speed: publish into 10,000 releases, and the device decision.

    .venv/bin/python benchmarks/bench_repository.py [--releases 10000] [--devices 100000]

1. Publish: a local repository is seeded with ``--releases`` releases (100 tags
   of 100 versions, synthetic entries signed like real ones), then one real
   small bundle is published, ``--repeat`` times, through the CLI in a
   subprocess (what CI runs) and through the library in this process.
   Reference, in this process: parsing and re-serialising the same
   manifest.json with the standard library, the floor of any
   read-modify-write of that file.
2. Decision: ``decide()`` for ``--devices`` device ids on a tag with 10 and
   with 100 releases (rollouts, channels, app ranges mixed), then the worst
   cases: 100 releases above what the device runs, none eligible, once per
   eligibility test that fails (:data:`INELIGIBLE`). Reference, in this
   process: one SHA-256 of the same bucket input per device, the floor of a
   rollout decision.

Targets (issue 12): the library's publish (``releases.publish`` in process)
<= 0.3 s at 10,000 releases (the CLI adds an interpreter start-up and the
imports); decision <= 20 us per device in the worst case.
``--part publish`` or ``--part decide`` runs one half.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.client.decide import BUCKETS, Device, bucket, decide
from aoe_pack.config.model import ModelConfig, ModelFile
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.model import Manifest, ModelReleases, Models, Release
from aoe_pack.storage.local import LocalStore
from aoe_pack.versions import Version


def synthetic(version: str, *, i: int) -> Release:
    sha = secrets.token_hex(32)
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=1_000_000 + i,
        sha256=sha,
        runtimes=("mnn", "tflite"),
        artifacts=({"runtime": "mnn", "variant": "fp32"}, {"runtime": "tflite", "variant": "fp16"}),
        channel="beta" if i % 7 == 0 else "stable",
        rollout_bp=(i * 937) % 10_001,
        salt=secrets.token_hex(16),
        min_app_version="1.0.0" if i % 3 else None,
        critical=i % 50 == 0,
    )


def seed(repo: Path, key: keys.PrivateKey, n: int) -> None:
    store = LocalStore(repo)
    init_repository(store, root_keys=[key.public], threshold=1, sign_keys=[key])
    tags = max(1, n // 100)
    per = n // tags
    models = Models(
        {
            f"model{t:03d}": ModelReleases(
                releases=tuple(synthetic(f"1.{i}.0", i=i) for i in range(per))
            )
            for t in range(tags)
        }
    )
    edit_manifest(store, lambda m: models, sign_keys=[key])


def small_bundle(root: Path, key: keys.PrivateKey, version: str) -> Path:
    src = root / f"src-{version}"
    (src / "m").mkdir(parents=True)
    (src / "m" / "model.tflite").write_bytes(os.urandom(4096))
    config = ModelConfig(
        source_path=src / "config.json",
        version=version,
        tag="bench_new",
        runtime="tflite",
        source="installed",
        model_dir="m",
        model_name="model.tflite",
        files=(ModelFile(path="model.tflite", role="model"),),
        canonical={"tag": "bench_new", "version": version, "modelName": "model.tflite"},
    )
    out = root / f"bench-{version}.aoe"
    build_bundle(config, out, signing_keys=[key], encryption=EncryptionSpec())
    return out


def bench_publish(n: int, repeat: int) -> dict[str, float]:
    key = keys.generate(keys.KeyKind.ED25519)
    with tempfile.TemporaryDirectory(prefix="aoe-bench-repo-") as tmp:
        root = Path(tmp)
        repo = root / "repo"
        # The publisher's floors (CLI and library) go with the repository.
        os.environ["XDG_STATE_HOME"] = str(root / "state")
        t0 = time.perf_counter()
        seed(repo, key, n)
        print(
            f"seeded {n} releases in {time.perf_counter() - t0:.2f} s "
            f"(manifest.json {(repo / 'manifest.json').stat().st_size / 1e6:.1f} MB)"
        )
        key_file = root / "release.key"
        key_file.write_bytes(keys.private_pem(key, None))
        aoe = Path(sys.executable).with_name("aoe-pack")
        ref, cli, lib = [], [], []
        for r in range(repeat):
            raw = (repo / "manifest.json").read_bytes()
            t = time.perf_counter()
            doc = json.loads(raw)
            json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            ref.append(time.perf_counter() - t)

            bundle = small_bundle(root, key, f"1.{r}.0")
            env = {**os.environ, "AOE_PACK_PASSWORD": ""}
            t = time.perf_counter()
            subprocess.run(
                [
                    str(aoe),
                    "manifest",
                    "publish",
                    str(bundle),
                    "--repo",
                    str(repo),
                    "--sign-key",
                    str(key_file),
                    "--json",
                ],
                check=True,
                capture_output=True,
                env=env,
            )
            cli.append(time.perf_counter() - t)

            bundle = small_bundle(root, key, f"2.{r}.0")
            store = LocalStore(repo)
            t = time.perf_counter()
            commit, _ = releases.publish(store, [bundle], sign_keys=[key])
            lib.append(time.perf_counter() - t)
        assert commit.manifest.release_count() == n + 2 * repeat
    return {
        "reference": statistics.median(ref),
        "cli": statistics.median(cli),
        "library": statistics.median(lib),
    }


INELIGIBLE: dict[str, dict[str, Any]] = {
    # One worst case per eligibility test of docs/format.md §15.7, E1-E7: every
    # release is above what the device runs and fails that one test, so the scan
    # examines them all and finds none.
    "yanked": {"yanked": "crashes"},
    "channel": {"channel": "beta"},
    "min app version": {"min_app_version": "9.0.0"},
    "max app version": {"max_app_version": "2.0.0"},
    "no runtime": {"runtimes": ("mnn",), "artifacts": ({"runtime": "mnn"},)},
    "required runtime": {"required_runtimes": ("tflite", "gpu-fp16", "npu")},
    "rollout 0%": {"rollout_bp": 0},
    "rollout 0.01%, device out": {"rollout_bp": 1},
}
"""Release fields per kind; every other field lets the release through."""


def decide_fixture(
    devices: int, per_tag: int, kind: str | None
) -> tuple[Manifest, str, list[Device]]:
    """A manifest of ``per_tag`` releases and ``devices`` devices that run 1.1.0.

    ``kind`` None: 1.0.0 to 1.N.0 with rollouts, channels and app ranges mixed.
    Otherwise 2.0.0 to 2.N.0, every one failing the test ``kind``
    names (:data:`INELIGIBLE`); for a partial rollout only device ids outside
    every release's rollout are kept.
    """
    tag = "bench"
    rels = [synthetic(f"1.{i}.0", i=i + 1) for i in range(per_tag)]
    if kind is not None:
        fields = {"channel": "stable", "rollout_bp": 10_000, "critical": False}
        fields |= {"min_app_version": None, **INELIGIBLE[kind]}
        rels = [
            dataclasses.replace(synthetic(f"2.{i}.0", i=i + 1), **fields) for i in range(per_tag)
        ]
    manifest = Manifest(
        version=2,
        expires=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        models={tag: ModelReleases(releases=tuple(rels))},
    )
    ids = (f"device-{i:07d}" for i in itertools.count())
    if kind is not None and any(0 < r.rollout_bp < BUCKETS for r in rels):
        ids = (d for d in ids if all(bucket(r.salt, tag, d) >= r.rollout_bp for r in rels))
    devs = [
        Device(
            device_id=d,
            app_version="2.3.0",
            runtimes=frozenset({"tflite"}),
            channels=("stable",),
            local_version="1.0.0",
            installed_version="1.1.0",
        )
        for d in itertools.islice(ids, devices)
    ]
    return manifest, tag, devs


def bench_decide(
    devices: int, per_tag: int, kind: str | None = None, rounds: int = 10
) -> dict[str, float]:
    """Per-device times, the median of ``rounds`` rounds that alternate with the reference
    (a shared machine's load then weighs on both alike)."""
    manifest, tag, devs = decide_fixture(devices, per_tag, kind)
    decide(manifest, tag, devs[0])  # parse the tag once, as a device does per manifest
    salt = manifest.models[tag].releases[0].salt.encode()
    refs, pers = [], []
    outcomes: dict[str, int] = {}
    for r in range(rounds):
        chunk = devs[r::rounds]
        t = time.perf_counter()
        for d in chunk:
            hashlib.sha256(
                b"aoe-rollout/v1\x00%s\x00%s\x00%s" % (salt, tag.encode(), d.device_id.encode())
            )
        refs.append((time.perf_counter() - t) / len(chunk))
        t = time.perf_counter()
        for dev in chunk:
            a = decide(manifest, tag, dev).action.value
            outcomes[a] = outcomes.get(a, 0) + 1
        pers.append((time.perf_counter() - t) / len(chunk))
    if kind is not None:
        assert outcomes == {"keep": devices}, outcomes
    print(f"  {per_tag} releases{', none eligible: ' + kind if kind else ''}: outcomes {outcomes}")
    return {"reference": statistics.median(refs), "decide": statistics.median(pers)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--part", choices=("all", "publish", "decide"), default="all")
    args = ap.parse_args()
    figures: dict[str, dict[str, float]] = {}
    if args.part != "decide":
        figures["publish"] = publish_figures(args.releases, args.repeat)
    if args.part != "publish":
        figures.update(decide_figures(args.devices))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def publish_figures(releases: int, repeat: int) -> dict[str, float]:
    print(f"== publish into a repository of {releases} releases (median of {repeat})")
    pub = bench_publish(releases, repeat)
    print(f"  reference json.loads + json.dumps of manifest.json: {pub['reference']:.3f} s")
    print(
        f"  aoe-pack manifest publish (CLI, subprocess): {pub['cli']:.3f} s "
        f"({pub['cli'] / pub['reference']:.1f}x reference)"
    )
    print(
        f"  releases.publish (library, in process):     {pub['library']:.3f} s "
        f"({pub['library'] / pub['reference']:.1f}x reference; target <= 0.3 s)"
    )
    return pub


def decide_figures(devices: int) -> dict[str, dict[str, float]]:
    print(f"== decision for {devices} device ids")
    figures: dict[str, dict[str, float]] = {}
    cases: list[tuple[int, str | None]] = [(10, None), (100, None)]
    cases += [(100, kind) for kind in INELIGIBLE]
    for per_tag, kind in cases:
        d = bench_decide(devices, per_tag, kind)
        figures[f"decide_{per_tag}" + (f"_none_{kind}" if kind else "")] = d
        name = f"{per_tag} releases" + (f", none eligible ({kind})" if kind else "")
        print(
            f"  decide(), {name}: {d['decide'] * 1e6:.2f} us per device "
            f"({d['decide'] / d['reference']:.1f}x one SHA-256 at {d['reference'] * 1e6:.2f} us;"
            f" target <= 20 us)"
        )
        if kind is not None and 0 < INELIGIBLE[kind].get("rollout_bp", 0) < BUCKETS:
            # Each release has its own salt: E7 needs one bucket, one SHA-256, per release.
            hashes = per_tag * d["reference"]
            print(
                f"    the {per_tag} SHA-256 of its buckets alone: {hashes * 1e6:.2f} us "
                f"(decide() is {d['decide'] / hashes:.2f}x that)"
            )
    worst = max((k for k in figures if "_none_" in k), key=lambda k: figures[k]["decide"])
    print(
        f"  worst case: {worst}: {figures[worst]['decide'] * 1e6:.2f} us per device "
        f"(target <= 20 us)"
    )
    return figures


if __name__ == "__main__":
    main()

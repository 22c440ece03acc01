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
   with 100 releases (rollouts, channels, app ranges mixed). Reference, in this
   process: one SHA-256 of the same bucket input per device, the floor of a
   rollout decision.

Targets (issue 4): publish <= 1 s at 10,000 releases; decision <= 20 us.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.client.decide import Device, decide
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


def bench_decide(devices: int, per_tag: int, *, worst: bool = False) -> dict[str, float]:
    tag = "bench"
    rels = [synthetic(f"1.{i}.0", i=i + 1) for i in range(per_tag)]
    if worst:  # every release newer than the device's and none open to it: a full scan
        rels = [
            dataclasses.replace(
                r, rollout_bp=0, critical=False, channel="stable", min_app_version=None
            )
            for r in rels
        ]
    manifest = Manifest(
        version=2,
        expires=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        models={tag: ModelReleases(releases=tuple(rels))},
    )
    template = Device(
        device_id="",
        app_version="2.3.0",
        runtimes=frozenset({"tflite"}),
        channels=("stable",),
        local_version="1.0.0",
        installed_version="1.1.0",
    )
    ids = [f"device-{i:07d}" for i in range(devices)]
    devs = [
        Device(
            device_id=d,
            app_version=template.app_version,
            runtimes=template.runtimes,
            channels=template.channels,
            local_version=template.local_version,
            installed_version=template.installed_version,
        )
        for d in ids
    ]
    decide(manifest, tag, devs[0])  # parse the tag once, as a device does per manifest
    salt = manifest.models[tag].releases[0].salt.encode()
    import hashlib

    t = time.perf_counter()
    for d in ids:
        hashlib.sha256(b"aoe-rollout/v1\x00%s\x00%s\x00%s" % (salt, tag.encode(), d.encode()))
    ref = (time.perf_counter() - t) / devices
    t = time.perf_counter()
    outcomes: dict[str, int] = {}
    for dev in devs:
        a = decide(manifest, tag, dev).action.value
        outcomes[a] = outcomes.get(a, 0) + 1
    per = (time.perf_counter() - t) / devices
    label = f"{per_tag} releases{', none eligible' if worst else ''}"
    print(f"  {label}: outcomes {dict(sorted(outcomes.items()))}")
    return {"reference": ref, "decide": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    print(f"== publish into a repository of {args.releases} releases (median of {args.repeat})")
    pub = bench_publish(args.releases, args.repeat)
    print(f"  reference json.loads + json.dumps of manifest.json: {pub['reference']:.3f} s")
    print(
        f"  aoe-pack manifest publish (CLI, subprocess): {pub['cli']:.3f} s "
        f"({pub['cli'] / pub['reference']:.1f}x reference; target <= 1 s)"
    )
    print(
        f"  releases.publish (library, in process):     {pub['library']:.3f} s "
        f"({pub['library'] / pub['reference']:.1f}x reference)"
    )

    print(f"== decision for {args.devices} device ids")
    figures = {"publish": pub}
    for per_tag, worst in ((10, False), (100, False), (10, True), (100, True)):
        d = bench_decide(args.devices, per_tag, worst=worst)
        figures[f"decide_{per_tag}{'_worst' if worst else ''}"] = d
        name = f"{per_tag} releases{', none eligible (full scan)' if worst else ''}"
        print(
            f"  decide(), {name}: {d['decide'] * 1e6:.2f} us per device "
            f"({d['decide'] / d['reference']:.1f}x one SHA-256 at {d['reference'] * 1e6:.2f} us;"
            f" target <= 20 us)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

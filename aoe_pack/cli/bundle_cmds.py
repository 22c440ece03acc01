"""``build``, ``verify``, ``inspect`` and ``unpack``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    decryption_key_option,
    json_option,
    load_verification_keys,
    prompt_password,
    threshold_option,
    trusted_key_option,
    verbosity_options,
)
from aoe_pack.cli._output import Output
from aoe_pack.cli._targets import show_provenance_targets, show_targets
from aoe_pack.errors import UsageError

if TYPE_CHECKING:
    from aoe_pack.bundle import EncryptionSpec
    from aoe_pack.config.model import ModelConfig
    from aoe_pack.convert.pipeline import Conversion


def _convert(
    cfg: ModelConfig,
    targets: tuple[str, ...],
    skip_failed: bool,
    output: Output,
    stack: contextlib.ExitStack,
) -> tuple[Conversion, list[dict[str, object]]]:
    """The conversion stage, in a private temp folder that lives until the bundle is written.

    Shows every target's outcome; raises TargetsFailedError (no bundle) when a
    target failed, unless ``skip_failed`` and at least one target passed.
    """
    import tempfile

    from aoe_pack.convert.pipeline import convert, targets_of
    from aoe_pack.errors import TargetsFailedError

    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aoe-convert-")))
    with _streams.frameworks():
        conversion = convert(cfg, targets_of(cfg, targets), workdir, report=output.info)
    show_targets(output, conversion)
    outcomes = [o.to_dict() for o in (*conversion.outcomes, *conversion.controls)]
    failed = [o.target.name for o in conversion.failed]
    if failed and (not skip_failed or not conversion.passed):
        total = len(conversion.outcomes)
        what = "no target passed" if not conversion.passed else f"{len(failed)} of {total} failed"
        raise TargetsFailedError(
            f"{what} ({', '.join(failed)}); no bundle written",
            outcomes=outcomes,
            hint="each failed target's reason is shown above; drop a target with --target, or "
            "pass --skip-failed-targets to ship the ones that passed (the refused ones are "
            "recorded in the bundle)"
            if conversion.passed
            else "each failed target's reason is shown above",
        )
    if failed:
        output.warn(f"shipping without {', '.join(failed)} (--skip-failed-targets)")
    return conversion, outcomes


def _encryption_spec(
    cfg: ModelConfig,
    no_encrypt: bool,
    recipients: tuple[str, ...],
    kek_files: tuple[str, ...],
    output: Output,
) -> EncryptionSpec:
    """Who may decrypt: the config's "encrypt" and the key options, reconciled."""
    from aoe_pack.bundle import EncryptionSpec
    from aoe_pack.keys import load_public_key
    from aoe_pack.keys.load import load_kek

    keys_given = bool(recipients or kek_files)
    if no_encrypt and keys_given:
        raise UsageError("--no-encrypt contradicts --recipient/--encryption-key-file")
    if cfg.encrypt and not no_encrypt and not keys_given:
        raise UsageError(
            "encryption is on but no --recipient or --encryption-key-file was given",
            hint="add a recipient key (aoe-pack keygen --type x25519), or pass --no-encrypt",
        )
    if not cfg.encrypt and keys_given:
        output.warn('the config says "encrypt": false, but keys were given: encrypting')
    if not keys_given:
        return EncryptionSpec()
    return EncryptionSpec(
        recipients=[load_public_key(r) for r in recipients],
        keks=[load_kek(k) for k in kek_files],
    )


def _validate_model(cfg: ModelConfig, output: Output) -> ModelConfig:
    """An as-is build still checks a model it can read (Keras, SavedModel, TFLite, ONNX).

    Returns the config with the inputs and outputs it left undeclared read from
    the model, as the bundle records them.
    """
    from aoe_pack.config import complete_io
    from aoe_pack.convert.pipeline import validate_source
    from aoe_pack.errors import MissingExtraError

    try:
        with _streams.frameworks():
            source = validate_source(cfg)
    except MissingExtraError as e:
        output.warn(f"the model was not checked: {e.message} (install aoe-pack[convert])")
        return cfg
    if source is None:
        return cfg
    return complete_io(cfg, source.inputs, source.outputs)


def _size_of(path: Path) -> int:
    """File size for a progress bar; 0 if unreadable (the command reports that itself)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (OUT.aoe). Written atomically.",
)
@click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Signing private key (ed25519/p256): a path or env://VAR. Repeat for several.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="PUB",
    help="Encrypt for this public key (x25519, p256-kem or mlkem768-x25519). Repeatable.",
)
@click.option(
    "--encryption-key-file",
    "kek_files",
    multiple=True,
    metavar="FILE",
    help="Also wrap the data key with this symmetric key (aoe-pack keygen --type aes256): "
    "the AoE-style key embedded in the app. Repeatable.",
)
@click.option("--no-encrypt", is_flag=True, help="Store the model unencrypted (signed only).")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="RUNTIME[:VARIANT]",
    help='Convert for this target instead of the config\'s "targets" (repeatable), e.g. '
    "tflite:fp16, onnx:basic, ort, mnn:fp16, ncnn. Needs aoe-pack[convert].",
)
@click.option(
    "--skip-failed-targets",
    is_flag=True,
    help="Write the bundle with the targets that passed; the failed ones are recorded, with "
    "their reasons, in its signed provenance. Default: any failed target means no bundle.",
)
@json_option
@verbosity_options
def build(
    config: Path,
    out: Path,
    sign_keys: tuple[str, ...],
    recipients: tuple[str, ...],
    kek_files: tuple[str, ...],
    no_encrypt: bool,
    targets: tuple[str, ...],
    skip_failed_targets: bool,
    json_mode: bool,
) -> None:
    """Validate CONFIG and pack its model into a signed, encrypted .aoe bundle.

    \b
    Example:
      aoe-pack keygen --out keys/signer
      aoe-pack keygen --type x25519 --out keys/phone
      aoe-pack build sample_models/mnist/config.json --out mnist.aoe \\
          --sign-key keys/signer.key --recipient keys/phone.pub

    Encryption is on unless the config says "encrypt": false or --no-encrypt is
    given; it then needs at least one --recipient or --encryption-key-file.
    Set SOURCE_DATE_EPOCH for reproducible timestamps: an unencrypted build of
    the same inputs is byte-identical.

    With "targets" in the config (or --target), the model is a source: it is
    converted for each target, and each artifact runs in a process of its own
    on the same inputs as the source (a runtime's crash fails only its target).
    Every target is tried and shown in one table (status, relative error, SNR,
    top-1 agreement, time, and the reason for a failure). Any failed target
    means no bundle (exit 1) unless --skip-failed-targets is given.
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.bundle import build_bundle
        from aoe_pack.config import complete_io, validate_config
        from aoe_pack.errors import ConfigValidationError
        from aoe_pack.keys import load_signing_key

        report = validate_config(config)
        for notice in report.notices:
            output.warn(f"{config}: {notice.message}")
        if report.config is None:
            first = report.violations[0]
            raise ConfigValidationError(
                f"{config} has {len(report.violations)} problem(s); first: {first.message}",
                violations=list(report.violations),
                hint=f"run `aoe-pack validate {config}` to see all of them",
            )
        cfg = report.config
        signers = [load_signing_key(k, prompt=prompt_password) for k in sign_keys]
        spec = _encryption_spec(cfg, no_encrypt, recipients, kek_files, output)
        outcomes: list[dict[str, object]] | None = None
        with contextlib.ExitStack() as stack:
            payload, provenance = None, None
            if targets or cfg.targets:
                conversion, outcomes = _convert(cfg, targets, skip_failed_targets, output, stack)
                cfg = complete_io(cfg, conversion.source.inputs, conversion.source.outputs)
                payload = list(conversion.payload(cfg))
                provenance = conversion.provenance(cfg)
            else:
                cfg = _validate_model(cfg, output)
            sizes = (
                [p.local for p in payload]
                if payload
                else [cfg.model_root / f.path for f in cfg.files]
            )
            total = sum(_size_of(p) for p in sizes)
            with output.progress(f"building {out.name}", total) as progress:
                result = build_bundle(
                    cfg,
                    out,
                    signing_keys=signers,
                    encryption=spec,
                    progress=progress,
                    payload=payload,
                    provenance=provenance,
                )

    def text() -> None:
        m = result.manifest
        output.line(f"built {result.path} ({_human(result.size)})", fg="green", bold=True)
        output.line(f"  model     {m.model.tag} {m.model.version} ({m.model.runtime})")
        for f in m.files:
            output.line(f"  file      {f.path}  {_human(f.size)}  sha256:{f.sha256[:16]}…")
        enc = m.encryption
        recipients = f"AES-256-GCM for {len(enc.recipients)} recipient(s)" if enc else "no"
        output.line(f"  encrypted {recipients}")
        for k in result.signers:
            output.line(f"  signed by {k}")

    document = result.to_dict()
    if outcomes is not None:
        document["targets"] = outcomes
    output.result(document, text)


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@trusted_key_option
@threshold_option
@decryption_key_option
@json_option
def verify(
    bundle: Path,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    json_mode: bool,
) -> None:
    """Check BUNDLE's signatures and every byte; exit 0 only if all is well.

    \b
    Without a key it proves that what was shipped is what was signed. With
    --decryption-key it also decrypts (streaming, no plaintext file) and checks
    the model against the digest recorded at build time.
    Exit codes: 0 verified, 1 failed, 2 usage error.
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.bundle import verify_bundle

        trusted, dkey = load_verification_keys(trusted_keys, decryption_key)
        with output.progress(f"verifying {bundle.name}", _size_of(bundle)) as progress:
            result = verify_bundle(
                bundle,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                progress=progress,
            )
        for note in result.notes:
            output.warn(note)

    def text() -> None:
        m = result.manifest
        what = "verified and decrypted" if result.decrypted else "verified"
        output.line(f"{what}: {bundle} — {m.model.tag} {m.model.version}", fg="green", bold=True)
        good = [s.keyid for s in result.signatures if s.valid]
        output.line(f"  {len(good)} trusted signature(s) (threshold {threshold})")
        for k in good:
            output.line(f"  signed by {k}")
        output.line(f"  {len(m.files)} file(s), {_human(result.bytes_checked)} checked")

    output.result(result.to_dict(), text)


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def inspect(bundle: Path, json_mode: bool) -> None:
    """Show what BUNDLE says about itself, without any key.

    Identity, files and sizes, signers' key ids, encryption recipients and
    provenance. Nothing shown is verified: run `aoe-pack verify` for that.
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.bundle import inspect_bundle

        result = inspect_bundle(bundle)

    def text() -> None:
        d = result.to_dict()
        m = result.manifest
        output.line(f"{bundle}  ({_human(result.size)}, {d['format']}, unverified)", bold=True)
        output.line(f"  model     {m.model.tag} {m.model.version}  runtime {m.model.runtime}")
        width = max(len(f.path) for f in m.files)
        for f in m.files:
            enc = "encrypted" if f.encrypted else "plain"
            output.line(
                f"  file      {f.path:<{width}}  {f.role:<7} {_human(f.size):>10}  "
                f"{enc:<9}  sha256:{f.sha256}"
            )
        for k in result.signer_keyids:
            output.line(f"  signer    {k}")
        if m.encryption:
            for r in m.encryption.recipients:
                output.line(f"  recipient {r.keyid}  ({r.type}{', ' + r.kem if r.kem else ''})")
        else:
            output.line("  recipient none (not encrypted)")
        show_provenance_targets(output, m.provenance)
        prov = m.provenance
        builder = prov.get("builder", {})
        output.line(f"  built by  {builder.get('name')} {builder.get('version')}")
        src = prov.get("source", {})
        if src:
            output.line(f"  source    {src.get('path')} sha256:{src.get('sha256')}")
        for tool, ver in sorted(prov.get("tools", {}).items()):
            output.line(f"  tool      {tool} {ver}")

    output.result(result.to_dict(), text)


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the model files into (created if missing).",
)
@trusted_key_option
@threshold_option
@decryption_key_option
@click.option("--force", is_flag=True, help="Replace files that already exist in --out.")
@json_option
def unpack(
    bundle: Path,
    out: Path,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    force: bool,
    json_mode: bool,
) -> None:
    """Verify BUNDLE, then write its model files into --out.

    Files appear only once every byte verified; nothing is ever written outside
    --out, symlinks are never followed, and a failure leaves no partial file.
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.bundle import unpack_bundle

        trusted, dkey = load_verification_keys(trusted_keys, decryption_key)
        with output.progress(f"unpacking {bundle.name}", _size_of(bundle)) as progress:
            result = unpack_bundle(
                bundle,
                out,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                force=force,
                progress=progress,
            )

    def text() -> None:
        output.line(f"unpacked {bundle} into {out}", fg="green", bold=True)
        for p in result.written:
            output.line(f"  {p}")

    output.result(result.to_dict(), text)

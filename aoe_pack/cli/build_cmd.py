"""``build``: configs in, one signed (and encrypted) bundle out."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import INPUT_FILE, json_option, prompt_password, verbosity_options
from aoe_pack.cli._output import Output, human_size
from aoe_pack.cli._targets import show_targets
from aoe_pack.errors import MissingKeyError, UsageError

if TYPE_CHECKING:
    from aoe_pack.assemble import ModelBuild
    from aoe_pack.bundle import EncryptionSpec
    from aoe_pack.config.model import ModelConfig


def _valid_config(path: Path, output: Output) -> ModelConfig:
    from aoe_pack.config import validate_config
    from aoe_pack.errors import ConfigValidationError

    report = validate_config(path)
    for notice in report.notices:
        output.warn(f"{path}: {notice.message}")
    if report.config is None:
        first = report.violations[0]
        raise ConfigValidationError(
            f"{path} has {len(report.violations)} problem(s); first: {first.message}",
            violations=list(report.violations),
            hint=f"run `aoe-pack validate {path}` to see all of them",
        )
    return report.config


def _encryption_spec(
    configs: Sequence[ModelConfig],
    no_encrypt: bool,
    recipients: tuple[str, ...],
    kek_files: tuple[str, ...],
    output: Output,
) -> EncryptionSpec:
    """Who may decrypt: the configs' "encrypt" and the key options, reconciled.

    A feature is encrypted when any of its models asks for it.
    """
    from aoe_pack.bundle import EncryptionSpec
    from aoe_pack.keys import load_public_key
    from aoe_pack.keys.load import load_kek

    wanted = any(cfg.encrypt for cfg in configs)
    keys_given = bool(recipients or kek_files)
    if no_encrypt and keys_given:
        raise UsageError("--no-encrypt contradicts --recipient/--encryption-key-file")
    if wanted and not no_encrypt and not keys_given:  # the config asks for it: a refusal
        raise MissingKeyError(
            "encryption is on but no --recipient or --encryption-key-file was given",
            hint="add a recipient key (aoe-pack keygen --type x25519), or pass --no-encrypt",
        )
    if not wanted and keys_given:
        output.warn('the config says "encrypt": false, but keys were given: encrypting')
    if not keys_given:
        return EncryptionSpec()
    return EncryptionSpec(
        recipients=[load_public_key(r) for r in recipients],
        keks=[load_kek(k) for k in kek_files],
    )


def _prepare(
    configs: Sequence[ModelConfig],
    targets: tuple[str, ...],
    output: Output,
    stack: contextlib.ExitStack,
) -> list[ModelBuild]:
    """Each model converted (or checked) in a private folder that lives until the bundle exists."""
    from aoe_pack.assemble import feature_key, prepare

    builds = []
    for cfg in configs:
        key = feature_key(configs, cfg)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aoe-convert-")))
        if key:
            output.line(f"model {key} ({cfg.model_name})", bold=True)
        with _streams.frameworks():
            build = prepare(cfg, targets=targets, workdir=workdir, key=key, report=output.info)
        if build.conversion is not None:
            show_targets(output, build.conversion)
        if build.unchecked:
            output.warn(f"the model {cfg.model_name} was not checked: {build.unchecked}")
        builds.append(build)
    return builds


@click.command()
@click.argument("configs", metavar="CONFIG...", nargs=-1, required=True, type=INPUT_FILE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (OUT.aoe). Written atomically; an existing file is "
    "refused unless --force is given.",
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
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--skip-failed-targets",
    is_flag=True,
    help="Write the bundle with the targets that passed; the failed ones are recorded, with "
    "their reasons, in its signed provenance. Default: any failed target means no bundle.",
)
@json_option
@verbosity_options
def build(
    configs: tuple[Path, ...],
    out: Path,
    sign_keys: tuple[str, ...],
    recipients: tuple[str, ...],
    kek_files: tuple[str, ...],
    no_encrypt: bool,
    targets: tuple[str, ...],
    force: bool,
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

    \b
    Several CONFIGs sharing a tag and version make one feature bundle, each
    model in the folder of its files' name, released and updated as a unit:
      aoe-pack build sample_models/bankcard/detector/config.json \\
          sample_models/bankcard/recognizer/config.json --out bankcard.aoe ...
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack._io import refuse_existing
        from aoe_pack.assemble import failures, payload_size, write
        from aoe_pack.bundle.feature import check_feature
        from aoe_pack.keys import load_signing_key

        if not force:  # before any conversion, which can take minutes
            refuse_existing(out)
        cfgs = [_valid_config(path, output) for path in configs]
        if len(cfgs) > 1:
            check_feature(cfgs)
        signers = [load_signing_key(k, prompt=prompt_password) for k in sign_keys]
        spec = _encryption_spec(cfgs, no_encrypt, recipients, kek_files, output)
        with contextlib.ExitStack() as stack:
            builds = _prepare(cfgs, targets, output, stack)
            skipped = failures(builds, skip_failed=skip_failed_targets)
            if skipped:
                output.warn(f"shipping without {', '.join(skipped)} (--skip-failed-targets)")
            with output.progress(f"building {out.name}", payload_size(builds)) as progress:
                result = write(
                    builds,
                    out,
                    signing_keys=signers,
                    encryption=spec,
                    progress=progress,
                    overwrite=force,
                )

    def text() -> None:
        m = result.manifest
        output.line(f"built {result.path} ({human_size(result.size)})", fg="green", bold=True)
        output.line(f"  model     {m.model.tag} {m.model.version} ({m.model.runtime})")
        for f in m.files:
            output.line(f"  file      {f.path}  {human_size(f.size)}  sha256:{f.sha256[:16]}…")
        enc = m.encryption
        recipients = f"AES-256-GCM for {len(enc.recipients)} recipient(s)" if enc else "no"
        output.line(f"  encrypted {recipients}")
        for k in result.signers:
            output.line(f"  signed by {k}")

    document = result.to_dict()
    if any(b.conversion is not None for b in builds):
        document["targets"] = [row for b in builds for row in b.outcomes()]
    output.result(document, text)

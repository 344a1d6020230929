"""gemsdiff-train: the command line of ``trainer.run_training``.

Every field of ``config.Config`` is an option (``--hidden``, ``--batch-size``, ...), generated from
the dataclasses with their defaults and help. The same command runs under torchrun (DDP).
"""
from __future__ import annotations

import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import click

from crystal_metrics.errors import CrystalMetricsError

from .config import Config
from .errors import GemsDiffError
from .trainer import run_training


def config_options(command):
    """Decorate ``command`` with one option per config field, collected in ``overrides``
    as {(section, name): value} (None when not given)."""
    defaults = Config()
    for section in ("train", "diffusion", "model"):
        for f in reversed(fields(getattr(defaults, section))):
            default = f.default if f.default is not MISSING else None
            command = click.option(
                f"--{f.name.replace('_', '-')}", f"{section}__{f.name}", type=type(default),
                default=None, help=f"{f.metadata['help']} [{default}]")(command)
    return command


def _config(config_file, overrides: dict) -> Config:
    config = Config()
    if config_file:
        try:
            config = Config.from_dict(json.loads(Path(config_file).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise GemsDiffError(f"cannot use --config {config_file}: {exc}") from None
    for key, value in overrides.items():
        if value is not None:
            section, name = key.split("__")
            setattr(getattr(config, section), name, value)
    return config


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, multiple=True, type=click.Path(),
              help="CIF file/folder or CDVAE csv(.gz); repeat to train on several.")
@click.option("--val-source", type=click.Path(),
              help="The --data path the held-out slice comes from [all data pooled].")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON config (as saved in a run folder); options below override it.")
@click.option("--max-structures", type=int, help="Use only the first N training structures.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it "
              "stopped (--epochs, --lr and --precision may change).")
@click.option("--overwrite", is_flag=True, help="Allow a non-empty --out (files are replaced).")
@click.option("--threads", type=int, help="CPU threads for torch [half the usable CPUs].")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Minutes of wall time: stop at the last epoch that fits (resume later).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@config_options
def main(data, val_source, out, config_file, max_structures, device, resume, overwrite, threads,
         time_limit, no_progress, **overrides):
    """Train GemsDiff (Klipfel et al., AAAI 2024) on crystals; same command under torchrun."""
    try:
        if resume and config_file:
            raise GemsDiffError("--resume uses the run's saved config; do not pass --config")
        config = _config(config_file, overrides)
        run_training(config, list(data), Path(out), device, resume, overwrite, max_structures,
                     progress=not no_progress, threads=threads,
                     time_limit=None if time_limit is None else 60 * time_limit,
                     val_source=val_source)
    except CrystalMetricsError as exc:      # GemsDiffError, DeviceError, read errors
        click.echo(f"gemsdiff-train: error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""gemsdiff-train: fit the GemsDiff denoiser (Algorithm 1).

Single process on CPU/GPU, or multi-GPU with the same command under torchrun (DDP).
Run folder: config.json, data_report.json, metrics.csv, train.log, last.pt (every epoch,
atomic), best.pt (EMA weights, best validation loss).
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import click
import torch

from . import diffusion
from .checkpoint import FORMAT, read_checkpoint, save_atomic
from .config import Config
from .data import collate, default_threads, load_records, make_batches, split_records
from .diffusion import LatticeScaler, Schedule
from .errors import GemsDiffError
from .network import GemsDiffNet

LOG_FIELDS = ["epoch", "train_loss", "train_loss_x", "train_loss_rho", "val_loss", "val_loss_x",
              "val_loss_rho", "best_val_loss", "structures_per_s", "epoch_s"]


class NonFiniteLoss(GemsDiffError):
    pass


def pick_device(name: str, local_rank: int | None) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0)
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GemsDiffError(f"--device {name} asked but CUDA is not available")
    dev = torch.device(name)
    if dev.type == "cuda" and local_rank is not None and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


class Trainer:
    """Holds model, EMA, optimiser and data for one run (one process of a DDP group)."""

    def __init__(self, config: Config, train_set, val_set, out: Path, device, rank=0, world=1,
                 scaler: LatticeScaler | None = None, progress: bool = True):
        self.config, self.out, self.device = config, out, device
        self.rank, self.world, self.progress = rank, world, progress
        self.train_set, self.val_set = train_set, val_set
        torch.manual_seed(config.train.seed)
        self.model = GemsDiffNet(config.model).to(device)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.net = self.model
        if world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self.schedule = Schedule(config.diffusion)
        self.scaler = scaler or LatticeScaler.fit(collate(train_set, torch.float64).lattice)
        self.epoch = 0
        self.epochs_run = 0      # epochs trained by this process (for --time-limit)
        self.best_val = math.inf

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(), "epoch": self.epoch,
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "best_val": self.best_val, "torch_rng": torch.get_rng_state()}

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.best_val = int(ckpt["epoch"]), float(ckpt["best_val"])
        torch.set_rng_state(ckpt["torch_rng"])

    # ------------------------------------------------------------------ loops
    def _generator(self, epoch: int, salt: int) -> torch.Generator:
        """Noise generator fixed by (seed, epoch, rank): resuming at an epoch is exact."""
        g = torch.Generator(device=self.device)
        g.manual_seed(self.config.train.seed * 1_000_003 + epoch * 7919 + self.rank * 101 + salt)
        return g

    def _batches(self, records, shuffle: bool, epoch: int):
        t = self.config.train
        batches = make_batches([len(r.numbers) for r in records], t.batch_size,
                               t.max_batch_atoms, shuffle, seed=t.seed * 7 + epoch)
        if self.world > 1:  # equal number of batches per rank (DDP needs matching steps)
            n = len(batches) // self.world
            if n == 0:
                raise GemsDiffError(f"{len(batches)} batches cannot feed {self.world} processes")
            batches = batches[self.rank * n:(self.rank + 1) * n]
        return batches

    def train_epoch(self) -> dict:
        from tqdm.auto import tqdm

        self.model.train()
        gen = self._generator(self.epoch, 0)
        batches = self._batches(self.train_set, True, self.epoch)
        sums, count, start = {"loss": 0.0, "loss_x": 0.0, "loss_rho": 0.0}, 0, time.time()
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                   disable=not self.progress or self.rank != 0, leave=False)
        for step, idx in enumerate(bar):
            data = collate([self.train_set[i] for i in idx]).to(self.device)
            losses = diffusion.training_losses(self.net, self.schedule, self.scaler, data, gen)
            if not torch.isfinite(losses["loss"]):
                raise NonFiniteLoss(f"loss is {losses['loss'].item()} at epoch {self.epoch + 1}, "
                                    f"batch {step + 1}; training stopped, the last good "
                                    f"checkpoint is kept")
            self.optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if self.config.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
            self.optimizer.step()
            self._update_ema()
            n = len(idx)
            for k in sums:
                sums[k] += losses[k].item() * n
            count += n
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}")
        elapsed = time.time() - start
        out = {f"train_{k}": v / max(count, 1) for k, v in sums.items()}
        out["structures_per_s"] = count * self.world / max(elapsed, 1e-9)
        out["epoch_s"] = elapsed
        return out

    @torch.no_grad()
    def _update_ema(self):
        d = self.config.train.ema
        for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
            pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        for be, bm in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(bm)

    @torch.no_grad()
    def validate(self) -> dict:
        """EMA model, fixed noise (same draw every epoch) so values are comparable."""
        if not self.val_set:
            return {}
        gen = self._generator(0, 999)
        records = self.val_set[self.rank::self.world]      # every structure on one rank
        t = self.config.train
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        for idx in make_batches([len(r.numbers) for r in records], t.batch_size,
                                t.max_batch_atoms, False):
            data = collate([records[i] for i in idx]).to(self.device)
            losses = diffusion.training_losses(self.ema, self.schedule, self.scaler, data, gen)
            n = float(len(idx))
            sums += torch.tensor([losses["loss"].item() * n, losses["loss_x"].item() * n,
                                  losses["loss_rho"].item() * n, n], dtype=torch.float64,
                                 device=self.device)
        if self.world > 1:
            torch.distributed.all_reduce(sums)
        n = float(sums[3])
        return {"val_loss": float(sums[0]) / n, "val_loss_x": float(sums[1]) / n,
                "val_loss_rho": float(sums[2]) / n}


def _log(out: Path, message: str, echo: bool = True) -> None:
    with open(out / "train.log", "a", encoding="utf-8") as handle:
        handle.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + message + "\n")
    if echo:
        click.echo(message, err=True)


def _append_metrics(out: Path, row: dict) -> None:
    path = out / "metrics.csv"
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate_metrics(out: Path, epoch: int) -> None:
    """On resume, drop log rows written after the checkpoint's epoch."""
    path = out / "metrics.csv"
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) <= epoch]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def run_training(config: Config, data: str, out: Path, device="auto", resume=False,
                 overwrite=False, max_structures: int | None = None, progress=True,
                 threads: int | None = None, time_limit: float | None = None) -> dict:
    """Train; returns the last metrics row. Raises GemsDiffError for user errors.

    ``time_limit`` (s): stop after the last epoch that is expected to end within it (the
    checkpoints are written every epoch, so the run continues with ``resume``)."""
    started = time.time()
    torch.set_num_threads(threads or default_threads())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else None
    dev = pick_device(device, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)

    out = Path(out)
    ckpt = None
    if resume:
        if not (out / "last.pt").is_file():
            raise GemsDiffError(f"--resume: no last.pt in {out}")
        ckpt = read_checkpoint(out / "last.pt")
        saved = Config.from_dict(ckpt["config"])
        saved.train.epochs = config.train.epochs   # the only setting a resume may change
        config = saved
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise GemsDiffError(f"run folder {out} is not empty; use --resume to continue it, "
                            f"--overwrite to replace its files, or another --out")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    t = config.train
    records, report = load_records(data, t.max_atoms, config.model.max_z)
    if max_structures:
        records = records[:max_structures]
        report["used"] = len(records)
    if not records:
        raise GemsDiffError(f"no usable structures in {data} (read {report['read']}, "
                            f"unreadable {report['skipped_unreadable']}, larger than "
                            f"--max-atoms {t.max_atoms}: {report['skipped_too_many_atoms']})")
    train_set, val_set = split_records(records, t.val_fraction, t.seed)
    report.update(train=len(train_set), validation=len(val_set))
    scaler = LatticeScaler.from_state_dict(ckpt["scaler"]) if ckpt else None
    trainer = Trainer(config, train_set, val_set, out, dev, rank, world, scaler, progress)
    if ckpt:
        trainer.load_state(ckpt)

    if rank == 0:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        (out / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
        _log(out, f"data {data}: read {report['read']}, used {report['used']} "
                  f"(train {len(train_set)}, validation {len(val_set)}), skipped "
                  f"{report['skipped_unreadable']} unreadable, {report['skipped_too_many_atoms']} "
                  f"with more than {t.max_atoms} atoms, {report['skipped_atomic_number']} with "
                  f"Z > {config.model.max_z}; device {dev}, processes {world}"
                  + (f"; resumed at epoch {trainer.epoch}" if ckpt else ""))
        if ckpt:
            _truncate_metrics(out, trainer.epoch)
    tb = None
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter
            tb = SummaryWriter(str(out / "tensorboard"))
        except Exception:  # noqa: BLE001 - tensorboard not installed
            tb = None

    row, loop_start = {}, time.time()
    while trainer.epoch < t.epochs:
        try:
            row = trainer.train_epoch()
            trainer.epochs_run += 1
        except NonFiniteLoss as exc:
            if rank == 0:
                _log(out, str(exc), echo=False)
            raise
        trainer.epoch += 1
        row.update(trainer.validate())
        row["epoch"] = trainer.epoch
        if rank == 0:
            score = row.get("val_loss", row["train_loss"])
            if score < trainer.best_val:
                trainer.best_val = score
                save_atomic({**trainer.state(), "model": trainer.ema.state_dict(),
                             "optimizer": None}, out / "best.pt")
            row["best_val_loss"] = trainer.best_val
            save_atomic(trainer.state(), out / "last.pt")
            _append_metrics(out, row)
            if tb is not None:
                for key, value in row.items():
                    if key != "epoch":
                        tb.add_scalar(key, value, trainer.epoch)
            if progress:
                click.echo(f"epoch {trainer.epoch}: loss {row['train_loss']:.4f}"
                           + (f", val {row['val_loss']:.4f}" if "val_loss" in row else "")
                           + f", {row['structures_per_s']:.1f} structures/s", err=True)
        else:
            trainer.best_val = min(trainer.best_val, row.get("val_loss", row["train_loss"]))
        elapsed = time.time() - started
        per_epoch = (time.time() - loop_start) / trainer.epochs_run
        stop = torch.tensor(float(bool(time_limit) and trainer.epoch < t.epochs
                                  and elapsed + per_epoch > time_limit), device=dev)
        if world > 1:   # every process stops at the same epoch
            torch.distributed.all_reduce(stop, op=torch.distributed.ReduceOp.MAX)
        if stop.item():
            if rank == 0:
                _log(out, f"time limit {time_limit:.0f} s: stopped after epoch {trainer.epoch} "
                          f"({elapsed:.0f} s); continue with --resume")
            break
    if tb is not None:
        tb.close()
    if world > 1:
        torch.distributed.destroy_process_group()
    return row


def _options_to_config(config_file, overrides: dict) -> Config:
    config = Config()
    if config_file:
        try:
            config = Config.from_dict(json.loads(Path(config_file).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise GemsDiffError(f"cannot use --config {config_file}: {exc}") from None
    for section, key, value in overrides:
        if value is not None:
            setattr(getattr(config, section), key, value)
    return config


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, type=click.Path(), help="CIF file/folder or CDVAE csv(.gz).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON config (as saved in a run folder); options below override it.")
@click.option("--val-fraction", type=float, help="Held-out validation fraction [0.1].")
@click.option("--epochs", type=int, help="[512]")
@click.option("--batch-size", type=int, help="Structures per batch [128].")
@click.option("--max-batch-atoms", type=int, help="Cap on atoms per batch [4096].")
@click.option("--lr", type=float, help="Adam learning rate [1e-3].")
@click.option("--ema", type=float, help="EMA decay [0.995].")
@click.option("--knn", type=int, help="Neighbours per atom [32].")
@click.option("--steps", type=int, help="Diffusion steps T [100].")
@click.option("--hidden", type=int, help="Feature width [128].")
@click.option("--enc-layers", type=int, help="[3]")
@click.option("--dec-layers", type=int, help="[3]")
@click.option("--lattice-decoder", type=click.Choice(["equivariant", "cube"]), help="[equivariant]")
@click.option("--lattice-head", type=click.Choice(["lsq", "edge", "coords"]),
              help="[coords]; lsq and edge: fully equivariant, see README.")
@click.option("--max-atoms", type=int, help="Skip larger structures [20].")
@click.option("--seed", type=int, help="[0]")
@click.option("--max-structures", type=int, help="Use only the first N usable structures.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Allow a non-empty --out (files are replaced).")
@click.option("--threads", type=int, help="CPU threads for torch [half the usable CPUs].")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Minutes of wall time: stop at the last epoch that fits (resume later).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def main(data, out, config_file, val_fraction, epochs, batch_size, max_batch_atoms, lr, ema, knn,
         steps, hidden, enc_layers, dec_layers, lattice_decoder, lattice_head, max_atoms, seed,
         max_structures, device, resume, overwrite, threads, time_limit, no_progress):
    """Train GemsDiff (Klipfel et al., AAAI 2024) on crystals; same command under torchrun."""
    try:
        config = _options_to_config(config_file, [
            ("train", "val_fraction", val_fraction), ("train", "epochs", epochs),
            ("train", "batch_size", batch_size), ("train", "max_batch_atoms", max_batch_atoms),
            ("train", "lr", lr), ("train", "ema", ema), ("model", "knn", knn),
            ("diffusion", "steps", steps), ("model", "hidden", hidden),
            ("model", "enc_layers", enc_layers), ("model", "dec_layers", dec_layers),
            ("model", "lattice_decoder", lattice_decoder), ("model", "lattice_head", lattice_head),
            ("train", "max_atoms", max_atoms),
            ("train", "seed", seed)])
        if resume and config_file:
            raise GemsDiffError("--resume uses the run's saved config; do not pass --config")
        run_training(config, data, Path(out), device, resume, overwrite, max_structures,
                     progress=not no_progress, threads=threads,
                     time_limit=None if time_limit is None else 60 * time_limit)
    except GemsDiffError as exc:
        click.echo(f"gemsdiff-train: error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

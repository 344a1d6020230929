"""Training (Algorithm 1): the Trainer of one process and ``run_training``, which drives it.

Run folder (``run_folder.RunFolder``): config.json, data_report.json, train.log, metrics.csv,
last.pt (every epoch, atomic, with the optimiser: ``--resume`` continues exactly), best.pt (EMA
weights of the epoch with the lowest held-out loss).
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch

from crystal_metrics.progress import progress

from . import diffusion
from .checkpoint import FORMAT, read_checkpoint, save_atomic
from .config import RESUMABLE, Config
from .data import collate, load_dataset, make_batches
from .denoiser import Denoiser
from .diffusion import NoiseSchedule
from .errors import GemsDiffError
from .lattice import LatticeStandardizer
from .run_folder import RunFolder
from .runtime import Process, all_reduce_max, start, stop

LOSSES = ("loss", "loss_x", "loss_lattice")


class NonFiniteLoss(GemsDiffError):
    pass


class Trainer:
    """Model, EMA, optimiser and data of one process of a (possibly single-process) run."""

    def __init__(self, config: Config, train_set, val_set, process: Process,
                 standardizer: LatticeStandardizer | None = None, progress: bool = True):
        if config.train.precision not in ("fp32", "bf16"):
            raise GemsDiffError(f"--precision must be fp32 or bf16, got "
                                f"{config.train.precision!r}")
        self.config, self.process, self.progress = config, process, progress
        self.train_set, self.val_set = train_set, val_set
        dev = process.device
        torch.manual_seed(config.train.seed)
        self.model = Denoiser(config.model).to(dev)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.net = self.model
        if process.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self.schedule = NoiseSchedule(config.diffusion)
        if standardizer is None:
            everything = collate(train_set)
            standardizer = LatticeStandardizer.fit(everything.lattice, everything.n_atoms)
        self.standardizer = standardizer
        self.epoch = 0           # epochs done
        self.step = 0            # optimiser steps done
        self.epochs_run = 0      # epochs trained by this process (for --time-limit)
        self.best_val = math.inf

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(), "epoch": self.epoch,
                "step": self.step, "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "standardizer": self.standardizer.state_dict(), "best_val": self.best_val,
                "torch_rng": torch.get_rng_state()}

    def best_state(self) -> dict:
        """What best.pt holds: the EMA weights, no optimiser."""
        return {**self.state(), "model": self.ema.state_dict(), "optimizer": None}

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.best_val = float(ckpt["best_val"])
        torch.set_rng_state(ckpt["torch_rng"])

    # ------------------------------------------------------------------ loops
    def _generator(self, epoch: int, salt: int) -> torch.Generator:
        """Noise generator fixed by (seed, epoch, rank): resuming at an epoch is exact."""
        g = torch.Generator(device=self.process.device)
        g.manual_seed(self.config.train.seed * 1_000_003 + epoch * 7919
                      + self.process.rank * 101 + salt)
        return g

    def _batches(self, records, shuffle: bool, epoch: int):
        t, world, rank = self.config.train, self.process.world, self.process.rank
        batches = make_batches([len(r.numbers) for r in records], t.batch_size,
                               t.max_batch_atoms, shuffle, seed=t.seed * 7 + epoch)
        if world > 1:  # equal number of batches per rank (DDP needs matching steps)
            n = len(batches) // world
            if n == 0:
                raise GemsDiffError(f"{len(batches)} batches cannot feed {world} processes")
            batches = batches[rank * n:(rank + 1) * n]
        return batches

    def learning_rate(self) -> float:
        """Linear warm-up over ``warmup_steps``, then constant."""
        t = self.config.train
        return t.lr * min(1.0, (self.step + 1) / max(t.warmup_steps, 1))

    def train_epoch(self) -> dict:
        self.model.train()
        gen = self._generator(self.epoch, 0)
        batches = self._batches(self.train_set, True, self.epoch)
        sums, count, begin = dict.fromkeys(LOSSES, 0.0), 0, time.time()
        shown = None if self.progress and self.process.main else False
        with progress(len(batches), f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                      "batch", shown) as bar:
            for idx in batches:
                self._step(idx, gen, sums)
                count += len(idx)
                bar.update()
        elapsed = time.time() - begin
        out = {f"train_{k}": v / max(count, 1) for k, v in sums.items()}
        out.update(structures_per_s=count * self.process.world / max(elapsed, 1e-9),
                   epoch_s=elapsed, lr=self.learning_rate())
        return out

    def _step(self, idx: list[int], gen: torch.Generator, sums: dict) -> None:
        """One optimiser step on the training structures ``idx``; adds the losses to ``sums``."""
        data = collate([self.train_set[i] for i in idx]).to(self.process.device)
        with torch.autocast(self.process.device.type, dtype=torch.bfloat16,
                            enabled=self.config.train.precision == "bf16"):
            losses = diffusion.training_losses(self.net, self.schedule, self.standardizer, data,
                                               gen)
        if not torch.isfinite(losses["loss"]):
            raise NonFiniteLoss(f"loss is {losses['loss'].item()} at epoch {self.epoch + 1}, "
                                f"step {self.step + 1}; training stopped, the last good "
                                f"checkpoint is kept")
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.config.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        self.step += 1
        self._update_ema()
        for k in LOSSES:
            sums[k] += losses[k].item() * len(idx)

    @torch.no_grad()
    def _update_ema(self):
        d = self.config.train.ema
        for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(pm.detach(), 1 - d)

    @torch.no_grad()
    def validate(self) -> dict:
        """Held-out loss of the EMA model with the same noise every epoch (comparable values)."""
        if not self.val_set:
            return {}
        gen = self._generator(0, 999)
        records = self.val_set[self.process.rank::self.process.world]
        t = self.config.train
        sums = torch.zeros(4, dtype=torch.float64, device=self.process.device)
        for idx in make_batches([len(r.numbers) for r in records], t.batch_size,
                                t.max_batch_atoms, False):
            data = collate([records[i] for i in idx]).to(self.process.device)
            losses = diffusion.training_losses(self.ema, self.schedule, self.standardizer,
                                               data, gen)
            n = float(len(idx))
            sums += torch.tensor([*(losses[k].item() * n for k in LOSSES), n],
                                 dtype=torch.float64, device=sums.device)
        if self.process.world > 1:
            torch.distributed.all_reduce(sums)
        return {f"val_{k}": float(sums[i] / sums[3]) for i, k in enumerate(LOSSES)}


def _resume_config(saved: dict, requested: Config) -> Config:
    """The run's saved config with the settings a resume may change taken from ``requested``."""
    config = Config.from_dict(saved)
    for section, key in RESUMABLE:
        setattr(getattr(config, section), key, getattr(getattr(requested, section), key))
    return config


def run_training(config: Config, data: list[str] | str, out: Path, device="auto", resume=False,
                 overwrite=False, max_structures: int | None = None, progress=True,
                 threads: int | None = None, time_limit: float | None = None,
                 val_source: str | None = None) -> dict:
    """Train on ``data`` (one or several CIF/CSV paths); returns the last metrics row.

    ``val_source``: the path the held-out slice comes from (default: all data pooled).
    ``time_limit`` (s): stop after the last epoch expected to end within it (continue with
    ``resume``; ``epochs`` and ``lr`` may change on resume). Raises GemsDiffError for user
    errors."""
    started = time.time()
    sources = [str(p) for p in ([data] if isinstance(data, (str, Path)) else data)]
    process = start(device, threads)
    folder = RunFolder(out, active=process.main, echo=progress)
    ckpt = None
    if resume:
        if not (Path(out) / "last.pt").is_file():
            raise GemsDiffError(f"--resume: no last.pt in {out}")
        ckpt = read_checkpoint(Path(out) / "last.pt")
        config = _resume_config(ckpt["config"], config)
    elif Path(out).exists() and any(Path(out).iterdir()) and not overwrite:
        raise GemsDiffError(f"run folder {out} is not empty; use --resume to continue it, "
                            f"--overwrite to replace its files, or another --out")
    t = config.train
    train_set, val_set, reports = load_dataset(sources, val_source, t.val_fraction, t.seed,
                                               t.max_atoms, config.model.max_z)
    if max_structures:
        train_set = train_set[:max_structures]
    folder.create()
    standardizer = LatticeStandardizer.from_state_dict(ckpt["standardizer"]) if ckpt else None
    trainer = Trainer(config, train_set, val_set, process, standardizer, progress)
    if ckpt:
        trainer.load_state(ckpt)
        folder.truncate_metrics(trainer.epoch)
    folder.write_json("config.json", config.to_dict())
    folder.write_json("data_report.json", {"sources": reports, "train": len(train_set),
                                           "validation": len(val_set),
                                           "validation_source": val_source or "all"})
    for path, r in reports.items():
        folder.log(f"data {path}: read {r['read']}, used {r['used']}, skipped "
                   f"{r['skipped_unreadable']} unreadable, {r['skipped_too_many_atoms']} with more "
                   f"than {t.max_atoms} atoms, {r['skipped_atomic_number']} with "
                   f"Z > {config.model.max_z}")
    folder.log(f"train {len(train_set)}, validation {len(val_set)} (from {val_source or 'all'}); "
               f"device {process.device}, processes {process.world}"
               + (f"; resumed at epoch {trainer.epoch}" if ckpt else ""))

    row, loop_start = {}, time.time()
    try:
        while trainer.epoch < t.epochs:
            try:
                row = trainer.train_epoch()
            except NonFiniteLoss as exc:
                folder.log(str(exc), echo=False)
                raise
            trainer.epochs_run += 1
            trainer.epoch += 1
            row.update(trainer.validate(), epoch=trainer.epoch)
            score = row.get("val_loss", row["train_loss"])
            if score < trainer.best_val:
                trainer.best_val = score
                if process.main:
                    save_atomic(trainer.best_state(), Path(out) / "best.pt")
            row["best_val_loss"] = trainer.best_val
            if process.main:
                save_atomic(trainer.state(), Path(out) / "last.pt")
            folder.append_metrics(row)
            folder.log(f"epoch {trainer.epoch}: loss {row['train_loss']:.4f}"
                       + (f", val {row['val_loss']:.4f}" if "val_loss" in row else "")
                       + f", {row['structures_per_s']:.1f} structures/s", echo=progress)
            elapsed = time.time() - started
            per_epoch = (time.time() - loop_start) / trainer.epochs_run
            late = bool(time_limit) and trainer.epoch < t.epochs \
                and elapsed + per_epoch > time_limit
            if all_reduce_max(float(late), process):    # every process stops at the same epoch
                folder.log(f"time limit {time_limit:.0f} s: stopped after epoch {trainer.epoch} "
                           f"({elapsed:.0f} s); continue with --resume")
                break
    finally:
        folder.close()
        stop(process)
    return row

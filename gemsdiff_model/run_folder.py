"""A training run's folder: config.json, data_report.json, train.log, metrics.csv, TensorBoard.

Only the main process writes (``RunFolder(..., active=False)`` on the others)."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import click

METRIC_FIELDS = ["epoch", "lr", "train_loss", "train_loss_x", "train_loss_lattice", "val_loss",
                 "val_loss_x", "val_loss_lattice", "best_val_loss", "structures_per_s",
                 "epoch_s"]


class RunFolder:
    def __init__(self, path: Path, active: bool = True, echo: bool = True):
        self.path, self.active, self.echo = Path(path), active, echo
        self._tensorboard = None

    def create(self) -> None:
        if self.active:
            self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data: dict) -> None:
        if self.active:
            (self.path / name).write_text(json.dumps(data, indent=2) + "\n")

    def log(self, message: str, echo: bool | None = None) -> None:
        """Append a time-stamped line to train.log (and print it to stderr)."""
        if not self.active:
            return
        with open(self.path / "train.log", "a", encoding="utf-8") as handle:
            handle.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + message + "\n")
        if self.echo if echo is None else echo:
            click.echo(message, err=True)

    def append_metrics(self, row: dict) -> None:
        """One row of metrics.csv (and TensorBoard scalars when tensorboard is installed)."""
        if not self.active:
            return
        path = self.path / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
        board = self._board()
        if board is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    board.add_scalar(key, value, row["epoch"])
            board.flush()

    def truncate_metrics(self, epoch: int) -> None:
        """On resume, drop metrics rows written after the checkpoint's epoch."""
        path = self.path / "metrics.csv"
        if not self.active or not path.exists():
            return
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) <= epoch]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def _board(self):
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:    # tensorboard is optional
                self._tensorboard = False
            else:
                self._tensorboard = SummaryWriter(str(self.path / "tensorboard"))
        return self._tensorboard or None

    def close(self) -> None:
        if self._tensorboard:
            self._tensorboard.close()

"""Throughput of GemsDiff: training (structures/s, fp32 against bf16 autocast in the same run)
and sampling (structures/s for a given number of steps).

Usage:
    python bench/bench_gemsdiff.py --data ../shared/data/mp_20/val.csv.gz [--device cpu]
        [--hidden 192 --enc-layers 2 --dec-layers 2] [--batch 64] [--threads 1]
        [--sample 1000 --steps 100]

The data only supplies realistic compositions and cells; weights are random, which does not
change the cost. Prints one JSON line per measurement.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _data import require

from gemsdiff_model.config import ModelConfig
from gemsdiff_model.data import collate, load_records
from gemsdiff_model.denoiser import Denoiser
from gemsdiff_model.diffusion import NoiseSchedule, training_losses
from gemsdiff_model.lattice import LatticeStandardizer
from gemsdiff_model.runtime import default_threads
from gemsdiff_model.sampler import generate


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(model, schedule, standardizer, batches, device, bf16: bool) -> float:
    """Structures per second of forward + backward + Adam over ``batches`` (first: warm-up)."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    count = 0
    for i, batch in enumerate(batches):
        if i == 1:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = training_losses(model, schedule, standardizer, batch, gen)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        count += len(batch.n_atoms) if i else 0
    sync(device)
    return count / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="examples/mp20_val_sample.csv")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    ap.add_argument("--enc-layers", type=int, default=ModelConfig.enc_layers)
    ap.add_argument("--dec-layers", type=int, default=ModelConfig.dec_layers)
    ap.add_argument("--batch", type=int, default=64, help="structures per training batch")
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument("--sample", type=int, default=200, help="compositions sampled")
    ap.add_argument("--steps", type=int, default=20, help="sampling steps")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    require(Path(args.data), "a CIF folder or CDVAE CSV, e.g. MP-20 val.csv.gz")

    torch.set_num_threads(args.threads or default_threads())
    device = torch.device(args.device)
    torch.manual_seed(0)
    records, _ = load_records(args.data, 20)
    reps = -(-(args.batch * (args.train_steps + 1) + args.sample) // len(records))
    records = records * reps
    everything = collate(records)
    standardizer = LatticeStandardizer.fit(everything.lattice, everything.n_atoms)
    schedule = NoiseSchedule()
    batches = [collate(records[i * args.batch:(i + 1) * args.batch]).to(device)
               for i in range(args.train_steps + 1)]
    config = ModelConfig(hidden=args.hidden, enc_layers=args.enc_layers,
                         dec_layers=args.dec_layers)
    common = {"device": str(device), "threads": torch.get_num_threads(), "hidden": args.hidden,
              "layers": args.enc_layers + args.dec_layers}
    rates = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = Denoiser(config).to(device)
        rates[precision] = train_rate(model, schedule, standardizer, batches, device,
                                      precision == "bf16")
        print(json.dumps({"bench": "train", "precision": precision, **common,
                          "params": sum(p.numel() for p in model.parameters()),
                          "batch_structures": args.batch,
                          "structures_per_s": round(rates[precision], 1)}), flush=True)
    print(json.dumps({"bench": "train", "bf16_over_fp32": round(rates["bf16"] / rates["fp32"], 2)}))

    model = Denoiser(config).to(device).eval()
    numbers = [r.numbers.tolist() for r in records[:args.sample]]
    gen = torch.Generator(device=device).manual_seed(0)
    generate(model, schedule, standardizer, numbers[:2], steps=2, generator=gen, device=device)
    sync(device)
    start = time.perf_counter()
    generate(model, schedule, standardizer, numbers, steps=args.steps, generator=gen,
             device=device)
    sync(device)
    elapsed = time.perf_counter() - start
    print(json.dumps({"bench": "sample", **common, "structures": args.sample,
                      "steps": args.steps, "corrector": True, "seconds": round(elapsed, 2),
                      "structures_per_s": round(args.sample / elapsed, 2),
                      "seconds_per_1000_per_step": round(elapsed / args.steps
                                                         * 1000 / args.sample, 3)}), flush=True)


if __name__ == "__main__":
    main()

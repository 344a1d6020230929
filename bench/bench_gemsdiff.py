"""Throughput of GemsDiff: training (structures/s) and sampling (structures/s, full T steps).

Usage (niced on shared CPUs):
    PYTHONPATH=. nice python bench/bench_gemsdiff.py --data tests/model/data [--device cpu]
        [--hidden 128 --enc-layers 3 --dec-layers 3 --knn 32] [--batch 32] [--threads 1]

The data only supplies realistic compositions and cells (MP-20 val/test or the test fixtures);
weights are random, which does not change the cost. Prints one JSON line per measurement.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from gemsdiff_model.config import ModelConfig
from gemsdiff_model.data import collate, default_threads, load_records
from gemsdiff_model.diffusion import LatticeScaler, Schedule, training_losses
from gemsdiff_model.network import GemsDiffNet
from gemsdiff_model.sample import generate


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="tests/model/data")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--enc-layers", type=int, default=3)
    ap.add_argument("--dec-layers", type=int, default=3)
    ap.add_argument("--knn", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32, help="structures per batch")
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--sample-steps", type=int, default=100, help="denoising steps (T = 100)")
    ap.add_argument("--max-structures", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads or default_threads())
    device = torch.device(args.device)
    torch.manual_seed(0)
    records, _ = load_records(args.data, 20)
    records = records[:args.max_structures]
    reps = (args.batch + len(records) - 1) // len(records)
    batch = collate((records * reps)[:args.batch]).to(device)
    config = ModelConfig(hidden=args.hidden, enc_layers=args.enc_layers,
                         dec_layers=args.dec_layers, knn=args.knn)
    model = GemsDiffNet(config).to(device)
    schedule, scaler = Schedule(), LatticeScaler.fit(batch.lattice.double().cpu())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    common = {"device": str(device), "threads": torch.get_num_threads(), "hidden": args.hidden,
              "layers": args.enc_layers + args.dec_layers, "knn": args.knn,
              "batch_structures": args.batch, "batch_atoms": int(batch.n_atoms.sum()),
              "params": sum(p.numel() for p in model.parameters())}

    gen = torch.Generator(device=device).manual_seed(0)
    for i in range(args.train_steps + 1):        # first step is warm-up
        if i == 1:
            sync(device)
            start = time.perf_counter()
        losses = training_losses(model, schedule, scaler, batch, gen)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    sync(device)
    elapsed = time.perf_counter() - start
    print(json.dumps({"bench": "train", **common,
                      "structures_per_s": round(args.batch * args.train_steps / elapsed, 2),
                      "s_per_step": round(elapsed / args.train_steps, 4)}), flush=True)

    model.eval()
    numbers = [batch.z[batch.batch == b].tolist() for b in range(args.batch)]
    generate(model, schedule, numbers[:2], steps=2, generator=gen, device=device)   # warm-up
    sync(device)
    start = time.perf_counter()
    generate(model, schedule, numbers, steps=args.sample_steps, generator=gen, device=device)
    sync(device)
    elapsed = time.perf_counter() - start
    print(json.dumps({"bench": "sample", **common, "steps": args.sample_steps,
                      "structures_per_s": round(args.batch / elapsed, 3),
                      "s_per_batch": round(elapsed, 3)}), flush=True)


if __name__ == "__main__":
    main()

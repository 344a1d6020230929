"""Benchmark the pure-PyTorch ALIGNN-FF featurizer.

1. Throughput on the first N MP-20 test structures (graph building included,
   CIF parsing excluded) of crystal_metrics vs alignn's own DGL-free path
   (jarvis-tools k-nearest edges -> TorchGraph -> ALIGNNAtomWisePure), in the
   same process, plus the largest output difference between the two.
   Also: graph building vs network time, and (--bf16) bfloat16 autocast speed and error.
2. Peak RSS of a fresh process that parses and embeds all structures of the
   csv (default: the full 9,046-structure MP-20 test set).

Usage:
    nice python bench/bench_alignn.py --csv /work/shared/data/mp_20/test.csv.gz \
        [--n 1000] [--batch-size 16] [--ref-batch-size 4] [--threads 1] [--bf16] [--skip-rss]
Needs the [dev] extra (alignn) for the reference path.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _data import MP20, require


def read_structures(csv, n=None):
    from pymatgen.core import Structure

    warnings.filterwarnings("ignore")
    df = pd.read_csv(csv, nrows=n)
    return [Structure.from_str(c, fmt="cif") for c in df.cif]


def alignn_reference(structures, batch_size):
    """alignn's own pure-torch inference path (graphs + model), timed."""
    from alignn.graphs import build_undirected_edgedata, nearest_neighbor_edges
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig
    from alignn.torch_graph_builder import TorchGraph, _line_graph_edges, batch_torch_graph_pairs
    from jarvis.core.atoms import pmg_to_atoms
    from jarvis.core.specie import get_node_attributes

    from crystal_metrics.alignn.checkpoint import fetch_alignn_ff

    folder = fetch_alignn_ff()
    cfg = json.loads((folder / "config.json").read_text())
    mcfg = dict(cfg["model"], name="alignn_atomwise_pure", atomwise_output_features=0, calculate_gradient=False)
    model = ALIGNNAtomWisePure(ALIGNNAtomWisePureConfig(**mcfg))
    model.load_state_dict(torch.load(folder / "best_model.pt", map_location="cpu", weights_only=True), strict=False)
    model.eval()
    cap = {}
    model.fc.register_forward_hook(lambda m, i, o: cap.__setitem__("h", i[0]))

    def graph(s):
        a = pmg_to_atoms(s)
        edges, _ = nearest_neighbor_edges(a, cutoff=8.0, max_neighbors=12, use_canonize=False)
        u, v, r, _ = build_undirected_edgedata(a, edges)
        f = torch.tensor(np.array([get_node_attributes(e, atom_features="cgcnn") for e in a.elements]),
                         dtype=torch.float32)
        g = TorchGraph(num_nodes=a.num_atoms, src=u, dst=v, ndata={"atom_features": f}, edata={"r": r})
        ls, ld = _line_graph_edges(u, v, a.num_atoms)
        return g, TorchGraph(num_nodes=len(u), src=ls, dst=ld)

    t0 = time.perf_counter()
    lats, ens = [], []
    with torch.no_grad():
        for i in range(0, len(structures), batch_size):
            g, lg = batch_torch_graph_pairs([graph(s) for s in structures[i : i + batch_size]])
            out = model((g, lg, None))["out"]
            lats.append(cap["h"].double().numpy())
            ens.append(out.double().numpy().reshape(-1))
    return time.perf_counter() - t0, np.concatenate(lats), np.concatenate(ens)


def throughput(args):
    from crystal_metrics.alignn import load_extractor

    structs = read_structures(args.csv, args.n)
    exact = load_extractor(device="cpu", shell_tol=0.0)
    default = load_extractor(device="cpu")
    exact.embed(structs[:8])  # warm-up (allocator, lazy init)
    res = {"n": len(structs), "torch_threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    lat, e = exact.embed(structs, batch_size=args.batch_size)
    res["ours_exact_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    default_lat, _ = default.embed(structs, batch_size=args.batch_size)
    res["ours_default_s"] = time.perf_counter() - t0
    # where the time goes: graph building alone (CPU, numpy) vs the rest (the network)
    t0 = time.perf_counter()
    for i in range(0, len(structs), args.batch_size):
        default.graphs(structs[i : i + args.batch_size])
    res["ours_graphs_s"] = time.perf_counter() - t0
    res["ours_network_s"] = res["ours_default_s"] - res["ours_graphs_s"]
    if args.bf16:  # bfloat16 autocast (AMX / AVX512-BF16 CPUs): speed and latent error only
        bf16 = load_extractor(device="cpu", bf16=True)
        bf16.embed(structs[:8])
        t0 = time.perf_counter()
        bf16_lat, _ = bf16.embed(structs, batch_size=args.batch_size)
        res["ours_bf16_s"] = time.perf_counter() - t0
        res["speedup_bf16_vs_fp32"] = res["ours_default_s"] / res["ours_bf16_s"]
        res["bf16_max_rel_latent_diff"] = float(
            (np.abs(bf16_lat - default_lat).max(1) / np.abs(default_lat).max(1)).max())
    res["alignn_s"], rlat, re_ = alignn_reference(structs, args.ref_batch_size)
    res["speedup_exact_vs_alignn"] = res["alignn_s"] / res["ours_exact_s"]
    res["speedup_default_vs_alignn"] = res["alignn_s"] / res["ours_default_s"]
    if args.bf16:
        res["speedup_bf16_vs_alignn"] = res["alignn_s"] / res["ours_bf16_s"]
        res["ours_bf16_struct_per_s"] = len(structs) / res["ours_bf16_s"]
    res["ours_exact_struct_per_s"] = len(structs) / res["ours_exact_s"]
    res["ours_default_struct_per_s"] = len(structs) / res["ours_default_s"]
    res["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    res["alignn_struct_per_s"] = len(structs) / res["alignn_s"]
    res["max_rel_latent_diff"] = float((np.abs(lat - rlat).max(1) / np.abs(rlat).max(1)).max())
    res["max_abs_energy_diff_eV_per_atom"] = float(np.abs(e - re_).max())
    return res


def rss_child(args):
    from crystal_metrics.alignn import load_extractor

    t0 = time.perf_counter()
    structs = read_structures(args.csv)
    t1 = time.perf_counter()
    lat, e = load_extractor(device="cpu").embed(structs, batch_size=args.batch_size)
    t2 = time.perf_counter()
    print(json.dumps({"n": len(structs), "parse_s": t1 - t0, "embed_s": t2 - t1,
                      "finite": bool(np.isfinite(lat).all() and np.isfinite(e).all())}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=str(MP20 / "test.csv.gz"))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--ref-batch-size", type=int, default=4,
                   help="alignn path batch size (4 is its fastest on CPU)")
    p.add_argument("--bf16", action="store_true",
                   help="also time bfloat16 autocast and report its latent error")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    require(args.csv, "a CDVAE-style CSV such as MP-20 test", "--csv")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        return rss_child(args)
    if not args.skip_throughput:
        print(json.dumps(throughput(args), indent=1), flush=True)
    if not args.skip_rss:
        cmd = [sys.executable, __file__, "--rss-child", "--csv", args.csv, "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        res["peak_rss_GB"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB -> GB
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

"""GemsDiff: composition-conditioned diffusion for crystals (Klipfel et al., AAAI 2024).

Modules: geometry (lattice vector space, torus), graph (periodic kNN), network (denoiser),
diffusion (forward processes, losses), sample (Algorithm 2, ``gemsdiff-sample``),
train (Algorithm 1, ``gemsdiff-train``). See README.md in this folder.
"""
__all__ = ["diffusion", "geometry", "graph", "network", "sample", "train"]

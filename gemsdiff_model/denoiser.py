"""The GemsDiff denoiser f_theta: GNN_AE = Decod o Encod o emb (paper eqs. 8-9).

Input: a noisy crystal (fractional coordinates, standardised lattice coordinates and the cell
they decode to, atomic numbers) and its noise level tau. Output: the normalised noise of the
positions (N, 3), fractional, translation-free) and of the lattice coordinates (B, 6); the
diffusion module turns them into scores and losses.

Departures from the paper, each measured (gemsdiff_model/README.md): the graph holds every pair
of atoms of a cell with lattice-free Fourier features of their fractional difference (DiffCSP's
CSPNet) instead of a k-nearest graph of the noisy cell, so lattice noise cannot rewire the
position head (eq. 11's motivation); the step and the cell enter every block (FiLM), not only
the embedding; the lattice output is a pooled invariant 6-vector in the paper's metric chart
instead of an action built from edge vectors.
"""
from __future__ import annotations

from torch import nn

from .blocks import (
    AtomEmbedding,
    Conditioning,
    InteractionBlock,
    LatticeHead,
    PositionHead,
    step_encoding,
)
from .config import ModelConfig
from .graph import pair_features, pair_index


class Denoiser(nn.Module):
    """forward(frac (N,3), lattice_coords (B,6), lattice (B,3,3) Å rows, z (N,) long,
    tau (B,) in [0,1], batch (N,), n_atoms (B,)) -> (eps_x (N,3), eps_lattice (B,6)).

    Invariant under rotation of the cell, translation and permutation of the atoms (the
    position output permutes with the atoms); tied to the cell's basis (canonical bases in
    the data, ``data.to_record``)."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        c = self.config = config or ModelConfig()
        h = c.hidden
        pair_dim = 6 * c.n_freq + c.n_rbf
        self.embedding = AtomEmbedding(c.max_z, h)
        self.conditioning = Conditioning(h)
        self.encoder = nn.ModuleList(InteractionBlock(h, pair_dim) for _ in range(c.enc_layers))
        self.decoder = nn.ModuleList(InteractionBlock(h, pair_dim) for _ in range(c.dec_layers))
        self.position_head = PositionHead(h)
        self.lattice_head = LatticeHead(h)

    def forward(self, frac, lattice_coords, lattice, z, tau, batch, n_atoms):
        c = self.config
        dtype = self.embedding.species.weight.dtype
        src, dst, structure = pair_index(n_atoms)
        pair = pair_features(frac.to(dtype), lattice, src, dst, structure,
                             c.n_freq, c.n_rbf, c.rbf_max)
        step = step_encoding(tau, c.hidden).to(dtype)
        context = self.conditioning(step, lattice_coords.to(dtype))
        h = self.embedding(z, step, batch)                                   # eq. 9a
        for block in (*self.encoder, *self.decoder):                         # eqs. 9b, 9c
            h = block(h, context, pair, src, dst, structure, batch, n_atoms)
        return (self.position_head(h, batch, n_atoms),
                self.lattice_head(h, context, batch, n_atoms))

"""Pure-PyTorch ALIGNN (inference only, no DGL).

Parameter names equal those of alignn's ``ALIGNN`` and ``ALIGNNAtomWise``
modules, so their ``best_model.pt`` state dicts load with ``strict=True``.
Message passing is ``index_add_`` over edge-index tensors.

Shapes: N atoms, E directed edges, T line-graph edges (bond pairs),
H = hidden_features. The "atomwise" family (ALIGNN-FF) uses LayerNorm, the
"classic" family (property models) BatchNorm1d with running statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crystal_metrics.alignn.config import ModelConfig
from crystal_metrics.alignn.graph import GraphBatch


def _norm(kind: str, n: int) -> nn.Module:
    return nn.LayerNorm(n) if kind == "atomwise" else nn.BatchNorm1d(n)


class RBFExpansion(nn.Module):
    """Gaussian basis exp(-gamma (d - c_k)^2) on ``bins`` centres in [vmin, vmax]."""

    def __init__(self, vmin: float, vmax: float, bins: int):
        super().__init__()
        self.register_buffer("centers", torch.linspace(vmin, vmax, bins))
        # alignn: lengthscale = mean spacing of the float32 centres
        self.gamma = float(1.0 / np.diff(self.centers.numpy()).mean())

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """(M,) -> (M, bins)."""
        return torch.exp(-self.gamma * (d.unsqueeze(1) - self.centers) ** 2)


class MLPLayer(nn.Module):
    """Linear -> norm -> SiLU (keys ``layer.0``, ``layer.1``)."""

    def __init__(self, kind: str, n_in: int, n_out: int):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(n_in, n_out), _norm(kind, n_out), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class EdgeGatedGraphConv(nn.Module):
    """Residual edge-gated graph convolution (arXiv:1711.07553, ALIGNN form).

    m_ij = A x_i + B x_j + C y_ij;  x_i' = x_i + SiLU(N(U x_i +
    sum_j s(m_ij) V x_j / (sum_j s(m_ij) + 1e-6)));  y_ij' = y_ij + SiLU(N(m_ij)),
    with edges j->i aggregated at their destination i.
    """

    def __init__(self, kind: str, n_in: int, n_out: int):
        super().__init__()
        self.src_gate = nn.Linear(n_in, n_out)
        self.dst_gate = nn.Linear(n_in, n_out)
        self.edge_gate = nn.Linear(n_in, n_out)
        self.bn_edges = _norm(kind, n_out)
        self.src_update = nn.Linear(n_in, n_out)
        self.dst_update = nn.Linear(n_in, n_out)
        self.bn_nodes = _norm(kind, n_out)
        self._fused = False

    def fuse(self) -> None:
        """Cache one (4H, H) weight for the four node-side linears."""
        w = torch.cat(
            [self.src_gate.weight, self.dst_gate.weight, self.dst_update.weight, self.src_update.weight]
        )
        b = torch.cat(
            [
                self.src_gate.bias + self.edge_gate.bias,
                self.dst_gate.bias,
                self.dst_update.bias,
                self.src_update.bias,
            ]
        )
        # non-persistent buffers: follow .to(device), stay out of state_dict
        self.register_buffer("_fused_w", w.detach().clone(), persistent=False)
        self.register_buffer("_fused_b", b.detach().clone(), persistent=False)
        self._fused = True

    def forward(
        self,
        src: torch.Tensor,
        dst: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor | None = None,
        need_edges: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (n, H) node features, y: (e, H) edge features, src/dst: (e,),
        weight: (e, 1) edge multiplicities or None."""
        if self._fused:
            # (edge_gate bias folded into the src_gate bias, see fuse())
            e_src, e_dst, bh, su = F.linear(x, self._fused_w, self._fused_b).chunk(4, dim=1)
            m = torch.addmm(
                e_src.index_select(0, src) + e_dst.index_select(0, dst), y, self.edge_gate.weight.t()
            )
        else:
            e_src, e_dst = self.src_gate(x), self.dst_gate(x)
            bh, su = self.dst_update(x), self.src_update(x)
            m = e_src.index_select(0, src) + e_dst.index_select(0, dst) + self.edge_gate(y)
        sigma = torch.sigmoid(m)
        if weight is not None:  # repeated edges count with multiplicity
            sigma = sigma * weight
        n = x.shape[0]
        messages = bh.index_select(0, src) * sigma
        sum_sh = torch.zeros((n, m.shape[1]), dtype=messages.dtype, device=m.device).index_add_(
            0, dst, messages
        )
        sum_s = torch.zeros_like(sum_sh).index_add_(0, dst, sigma)
        x_new = x + F.silu(self.bn_nodes(su + sum_sh / (sum_s + 1e-6)))
        y_new = y + F.silu(self.bn_edges(m)) if need_edges else None
        return x_new, y_new


class ALIGNNConv(nn.Module):
    """One ALIGNN layer: atom-graph update, then line-graph update."""

    def __init__(self, kind: str, n_in: int, n_out: int):
        super().__init__()
        self.node_update = EdgeGatedGraphConv(kind, n_in, n_out)
        self.edge_update = EdgeGatedGraphConv(kind, n_out, n_out)

    def forward(self, g: GraphBatch, x, y, z, need_triplets: bool = True):
        x, m = self.node_update(g.src, g.dst, x, y, g.edge_weight)
        y, z = self.edge_update(g.lg_src, g.lg_dst, m, z, g.lg_weight, need_edges=need_triplets)
        return x, y, z


class ALIGNN(nn.Module):
    """ALIGNN network; ``forward`` returns (latent (B, H), output (B, out))."""

    def __init__(self, cfg: ModelConfig, atomwise_head: bool = False, additional_head: bool = False):
        super().__init__()
        k, h = cfg.kind, cfg.hidden_features
        self.cfg = cfg
        self.atom_embedding = MLPLayer(k, cfg.atom_input_features, h)
        self.edge_embedding = nn.Sequential(
            RBFExpansion(0.0, 8.0, cfg.edge_input_features),
            MLPLayer(k, cfg.edge_input_features, cfg.embedding_features),
            MLPLayer(k, cfg.embedding_features, h),
        )
        self.angle_embedding = nn.Sequential(
            RBFExpansion(-1.0, 1.0, cfg.triplet_input_features),
            MLPLayer(k, cfg.triplet_input_features, cfg.embedding_features),
            MLPLayer(k, cfg.embedding_features, h),
        )
        self.alignn_layers = nn.ModuleList([ALIGNNConv(k, h, h) for _ in range(cfg.alignn_layers)])
        self.gcn_layers = nn.ModuleList([EdgeGatedGraphConv(k, h, h) for _ in range(cfg.gcn_layers)])
        if atomwise_head:
            self.fc_atomwise = nn.Linear(h, cfg.atomwise_output_features)
        if additional_head:
            self.fc_additional_output = nn.Linear(h, cfg.additional_output_features)
        n_out = cfg.num_classes if cfg.classification else cfg.output_features
        if cfg.kind == "atomwise" and cfg.classification:
            n_out = 2
        self.fc = nn.Linear(h, n_out)

    def fuse(self) -> ALIGNN:
        """Prepare fused weights for inference (call after loading weights)."""
        for mod in self.modules():
            if isinstance(mod, EdgeGatedGraphConv):
                mod.fuse()
        return self

    def forward(self, g: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent = per-structure mean of final atom features (B, H);
        output = link(fc(latent)) (B, out), e.g. eV/atom for ALIGNN-FF."""
        x = self.atom_embedding(g.atom_features)
        r = g.r
        bondlength = torch.norm(r, dim=1)
        y = self.edge_embedding(bondlength)
        n_al = len(self.alignn_layers)
        if n_al:
            r1 = -r.index_select(0, g.lg_src)
            r2 = r.index_select(0, g.lg_dst)
            cos = (r1 * r2).sum(1) / (torch.norm(r1, dim=1) * torch.norm(r2, dim=1))
            z = self.angle_embedding(torch.clamp(cos, -1.0, 1.0))
            for i, layer in enumerate(self.alignn_layers):
                x, y, z = layer(g, x, y, z, need_triplets=i < n_al - 1)
        n_gcn = len(self.gcn_layers)
        for i, layer in enumerate(self.gcn_layers):
            x, y = layer(g.src, g.dst, x, y, g.edge_weight, need_edges=i < n_gcn - 1)
        pooled = torch.zeros((g.num_graphs, x.shape[1]), dtype=x.dtype, device=x.device)
        pooled.index_add_(0, g.graph_id, x)
        latent = pooled / g.num_atoms.to(x.dtype).unsqueeze(1)
        out = self.fc(latent)
        if self.cfg.link == "log":
            out = torch.exp(out)
        elif self.cfg.link == "logit":
            out = torch.sigmoid(out)
        if self.cfg.classification:
            out = torch.log_softmax(out, dim=1)
        return latent, out

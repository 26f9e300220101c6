"""GCN-guided module (GAS, LGCNet): architecture weights of one cell inform the next.

The edges of the previous cell are the graph's nodes, their relaxed alpha rows (op
probabilities) the node features. The adjacency is a learned pairwise similarity (embedded dot
product, row softmax, as in GAS); one graph-convolution layer mixes the rows, and a learned map
projects the result onto the current cell's (edges x ops) shape:

    alpha'_k = alpha_k + gamma * GCN(relax(alpha'_{k-1}))

It exists only at search time and is trained with the architecture parameters. Chaining through
alpha'_{k-1} (what cell k-1 actually uses) lets information travel along the whole network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GCNGuide(nn.Module):
    def __init__(self, prev_edges: int, edges: int, n_ops: int, hidden: int = 16):
        super().__init__()
        self.query = nn.Linear(n_ops, hidden, bias=False)
        self.key = nn.Linear(n_ops, hidden, bias=False)
        self.weight = nn.Linear(n_ops, hidden)                     # the GCN layer's W
        init = torch.eye(edges, prev_edges) if edges == prev_edges else torch.full((edges, prev_edges), 1.0 / prev_edges)
        self.edge_map = nn.Parameter(init)                          # previous edges -> current edges
        self.out = nn.Linear(hidden, n_ops)
        with torch.no_grad():  # start close to alpha'_k = alpha_k so no op is favoured a priori
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
        self.scale = 1.0 / math.sqrt(hidden)

    def adjacency(self, features: torch.Tensor) -> torch.Tensor:
        """Row-normalized learned similarity between the previous cell's edges."""
        return torch.softmax(self.query(features) @ self.key(features).T * self.scale, dim=-1)

    def forward(self, prev_relaxed: torch.Tensor) -> torch.Tensor:
        """(prev_edges, ops) probabilities -> (edges, ops) additive update for the current alpha."""
        h = F.relu(self.adjacency(prev_relaxed) @ self.weight(prev_relaxed))
        return self.out(self.edge_map @ h)

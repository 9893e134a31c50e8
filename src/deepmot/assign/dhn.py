"""The Deep Hungarian Net (paper Sec. 4.1, supplementary B): D (N x M) → soft assignment Â.

Five variants behind one registry, :func:`create_dhn`:

- ``seq_gru`` / ``seq_lstm`` (Fig. 2 / Fig. 5): row-wise flattening → Bi-RNN → column-wise
  flattening of its hidden states → a second Bi-RNN (same hidden size, own weights) → three
  fully-connected layers per entry → sigmoid;
- ``paral_gru`` / ``paral_lstm`` (Fig. 6): row-wise and column-wise Bi-RNNs side by side on D,
  each reduced by an FC layer, concatenated, two FC layers, sigmoid;
- ``conv1d`` (Fig. 7): a U-Net-like 1-D convolutional net over the row-wise flattened D;
- ``bipartite_mp`` (not in the paper): message passing on the bipartite graph of rows and
  columns. Per-entry features that do not depend on the matrix's size or order (D, its gaps to
  the row/column minima and to the best *other* entry of the row/column, its row/column ranks
  as ``1 / (1 + rank)``), then ``rounds`` residual layers where every entry reads the masked
  mean and max of its row and of its column; a per-entry MLP gives the logit. Permuting the
  rows or columns of D permutes Â the same way, and one model serves 1x1 to 300x300;
- ``bipartite_sk`` (not in the paper): the same on top of an epsilon-scaled Sinkhorn plan,
  with the loss-time settings of :data:`GATED_SLOPE`.

One interface for all: ``model(D, mask=None) -> Â`` with D ``(B, N, M)`` or ``(N, M)`` and Â of
the same shape. Matrices of different sizes go in one padded batch with a ``mask (B, N, M)
bool`` marking each one's valid top-left block; padding never changes a result (sequences
are packed, convolutions re-zero the padding after every layer), and Â is 0 on padding. A
batch is run in groups of similar sizes, each cropped to its largest matrix.

Two ways to flatten (``DHNConfig.flatten``):

- ``"matrix"`` (the paper, and the authors' code): the whole matrix is one sequence of
  ``N * M`` entries, so a Bi-RNN runs ``N * M`` steps one after the other;
- ``"lines"``: every row is its own sequence of ``M`` entries (all rows of all matrices run
  side by side), then every column of the first stage's hidden states is a sequence of ``N``
  entries. After the row stage each entry knows its row; after the column stage it knows its
  column and, through the hidden states, every row, so the receptive field is still the
  whole matrix, in ``N + M`` sequential steps instead of ``2 * N * M``.

``DHNConfig()`` holds the paper's settings; :data:`SHIPPED_CONFIG` the lean settings of the
shipped weights (see ``weights/dhn_seq_gru.json``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepmot import WEIGHTS_DIR
from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig, sinkhorn_plan
from deepmot.errors import DeepMOTError
from deepmot.io.weights import load_state, read_weights, save_weights

__all__ = [
    "DHNConfig",
    "SHIPPED_CONFIG",
    "DHN",
    "SeqDHN",
    "ParalDHN",
    "Conv1dDHN",
    "BipartiteDHN",
    "DEFAULT_DHN",
    "GATED_SLOPE",
    "GRADIENT_EPSILON",
    "GRADIENT_SWEEPS",
    "create_dhn",
    "default_dhn",
    "list_dhns",
    "load_dhn",
    "save_dhn",
]

log = logging.getLogger(__name__)

CHUNK_ENTRIES = 40_000
"""A padded batch is processed in groups of at most this many entries (at least one matrix)."""
PADDING_FACTOR = 2.0
"""A group of matrices holds at most this many times its valid entries (see ``_size_groups``)."""

_CLASS_NAMES = ("seq", "paral", "conv1d", "bipartite")
_FAR = 1e4  # stands in for +inf in masked minima (finite: no NaN in gradients)


@dataclass(frozen=True)
class DHNConfig:
    """Settings of a DHN. Defaults are the paper's (Sec. 4.1, supp. B, authors' code).

    Attributes:
        arch: ``"seq"``, ``"paral"``, ``"conv1d"`` or ``"bipartite"``.
        cell: ``"gru"`` or ``"lstm"`` (recurrent variants).
        hidden: Bi-RNN hidden size h per direction (authors' code: 256); the width of the
            per-entry features of ``bipartite``.
        num_layers: stacked layers per Bi-RNN (authors' code: 2).
        fc: widths of the hidden FC layers after the ``2h`` features; a last layer maps to 1
            (paper: three FC layers, 512-256-64-1).
        flatten: ``"matrix"`` (paper: one sequence of ``N * M`` entries) or ``"lines"`` (one
            sequence per row, then per column); see the module docstring.
        extra_channels: feed ``D - row-min(D)`` and ``D - column-min(D)`` next to D (not in the
            paper; NOTES.md: +1.0 / +1.7 WA for a lean model). ``bipartite`` always uses its
            own size-free features.
        rounds: row/column Bi-RNN pairs of ``seq`` (paper: 1); message-passing layers of
            ``bipartite``.
        sinkhorn: ``bipartite`` only: Sinkhorn sweeps whose transport plan joins the input
            features (0: none; not in the paper).
        gated_slope: Â of entries above every real distance (D > 1: the gated value 2.0 of
            the training data and of the loss, or a pair that the loss's soft gate is moving
            there) is ``max(0, 0.5 - gated_slope * (D - 1))``: never matched, and just under
            the loss's dustbin δ = 0.5, so that the softmaxes of eqs. 5-6 (scale 100) still
            pass the soft gate's gradient to a track that misses its object. 0: the model's
            own output (not in the paper; see :data:`GATED_SLOPE`).
        detach_frozen: a frozen DHN (no parameter requires a gradient, as inside the loss)
            runs its network without autograd: D's gradient reaches Â only through
            ``gated_slope``'s ramp (not in the paper; see :data:`GATED_SLOPE`).
        gradient_epsilon: when D requires a gradient (inside the loss), the gradient of Â
            with respect to D is also that of an entropic Sinkhorn plan at this temperature
            (:data:`GRADIENT_SWEEPS` sweeps, dustbin 0.5), added straight-through: Â's
            values stay the network's (exact match and dMOTA unchanged), while FP~, FN~ and
            IDS~ get the smooth sensitivity that a near-binary network lacks. 0: off (not in
            the paper; see :data:`GRADIENT_EPSILON`).
    """

    arch: str = "seq"
    cell: str = "gru"
    hidden: int = 256
    num_layers: int = 2
    fc: tuple[int, ...] = (256, 64)
    flatten: str = "matrix"
    extra_channels: bool = False
    rounds: int = 1
    sinkhorn: int = 0
    gated_slope: float = 0.0
    detach_frozen: bool = False
    gradient_epsilon: float = 0.0

    def __post_init__(self) -> None:
        if self.arch not in _CLASS_NAMES:
            raise ValueError(f"arch must be one of {', '.join(_CLASS_NAMES)}, got {self.arch!r}")
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        if self.flatten not in ("matrix", "lines"):
            raise ValueError(f"flatten must be 'matrix' or 'lines', got {self.flatten!r}")
        if self.hidden < 1 or self.num_layers < 1 or self.rounds < 1:
            raise ValueError("hidden, num_layers and rounds must be >= 1")
        if self.sinkhorn < 0 or (self.sinkhorn and self.arch != "bipartite"):
            raise ValueError("sinkhorn sweeps must be >= 0, and only for arch 'bipartite'")
        if self.gated_slope < 0:
            raise ValueError(f"gated_slope must be >= 0, got {self.gated_slope}")
        if not self.gradient_epsilon >= 0:
            raise ValueError(f"gradient_epsilon must be >= 0, got {self.gradient_epsilon}")
        object.__setattr__(self, "fc", tuple(int(w) for w in self.fc))

    @property
    def in_channels(self) -> int:
        return 3 if self.extra_channels else 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fc"] = list(self.fc)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DHNConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DHNConfig fields: {sorted(unknown)}")
        return cls(**{**data, "fc": tuple(data.get("fc", cls.fc))})


SHIPPED_CONFIG = DHNConfig(
    hidden=64, num_layers=1, fc=(64, 32), flatten="lines", extra_channels=True, rounds=2
)
"""The lean settings of the shipped ``seq_gru`` weights (trained on a CPU)."""

GATED_SLOPE = 0.1
"""``gated_slope`` of ``bipartite_sk`` (with ``detach_frozen``): what makes it fit for the loss.

Measured with ``benchmarks/bench_loss_correlation.py`` (300 MOT17 frame pairs, seed 0, soft
gate D > 0.25). Inside the loss every pair beyond the gate is blended towards 2.0; with its
own output (Â about 0.01 there, the plan near-binary), the loss's softmaxes (scale 100 against
δ = 0.5) saturate and a track that misses its object (IoU < 0.5) gets a gradient towards it
for 22.6% of such tracks, no more than an exact matcher (21.8%). With Â = 0.5 - 0.1 (D - 1)
above 1 the share is 51.7% (pushed away: 15.1%), against 40.3% (24.4%) for ``seq_gru``, and
Spearman(dMOTA, MOTA) is 0.957 (0.938 before, 0.949 for ``seq_gru``). A slope of 0.075 pulls
61.9% and 0.05 70.5% (Spearman 0.957 / 0.956), but Â = 0.45 at 2.0 leaves e^-5 of a dustbin's
weight to every gated pair: 50 of them in a row turn an FP of 1 into 0.75; at 0.1, 0.998.
The network's own gradient changes neither figure (to three decimals), so a frozen model
runs without autograd (``detach_frozen``), which halves its forward and backward in the loss.
Exact match is unchanged (the ramp stays below 0.5). What the ramp does not match is the size
of ``seq_gru``'s gradients: summed over 150 pairs, the dMOTA terms' gradient along the
direction to each track's own object is +0.21 for missed tracks and +1.03 for the others,
against +0.54 and +1.01 with ``seq_gru`` (slope 0.05: +0.39 and +0.62)."""

GRADIENT_EPSILON = 0.1
"""``gradient_epsilon`` of ``bipartite_sk``: the temperature of the Sinkhorn plan whose gradient
it passes to D inside the loss (its values are the network's).

Measured with ``deepmot train`` (motion tracker, MOT17 training frames, 40 steps of 16 pairs,
gradients every 4 steps, seeds 0-2; log.csv's ``grad_*``, mean over steps and seeds): with the
network alone (frozen, no gradient of its own below D = 1) FP~ and FN~ send 0.00068 and
0.00065 to the boxes, against 0.0033 and 0.0032 through ``seq_gru``; with this surrogate 0.0046
and 0.0045 (gate 0.0083 against 0.0022, active share 7.4e-4 against 1.9e-4; dMOTP's 0.0050 is
the same for all). Temperatures 0.05 and 0.2 gave 0.0045 and 0.0030. IDS~ stays below
``seq_gru``'s (0.0008 against 0.0026; both vary over seeds by more than their mean). Steps
where no softmax entry is in its active band pass nothing whatever the matcher: the median
step's FP~ gradient is 4e-6 here against 4e-4 through the less decided ``seq_gru``."""

GRADIENT_SWEEPS = 3
"""Sinkhorn sweeps of the ``gradient_epsilon`` surrogate: at the warm temperature 0.1 three
give the same gradients as 50 (FP~ 0.0046 against 0.0047 above) at a fraction of the cost
(``benchmarks/bench_track.py``: a step 2.61x Smooth-L1's against 3.09x with 10 sweeps)."""

_VARIANTS: dict[str, dict[str, Any]] = {
    "seq_gru": {"arch": "seq", "cell": "gru"},
    "seq_lstm": {"arch": "seq", "cell": "lstm"},
    "paral_gru": {"arch": "paral", "cell": "gru"},
    "paral_lstm": {"arch": "paral", "cell": "lstm"},
    "conv1d": {"arch": "conv1d"},
    # not in the paper: its own defaults (no RNN; ``hidden`` is the feature width, ``rounds``
    # the message-passing layers)
    "bipartite_mp": {"arch": "bipartite", "hidden": 32, "num_layers": 1, "fc": (32,), "rounds": 4},
    # the same on top of a Sinkhorn plan (a training-free soft assignment) as extra features
    "bipartite_sk": {
        "arch": "bipartite",
        "hidden": 32,
        "num_layers": 1,
        "fc": (32,),
        "rounds": 4,
        "sinkhorn": 100,
        "gated_slope": GATED_SLOPE,
        "detach_frozen": True,
        "gradient_epsilon": GRADIENT_EPSILON,
    },
}


# ---------------------------------------------------------------------------- helpers


def _check_input(d: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, bool]:
    """``D`` as ``(B, N, M)`` float, the mask as ``(B, N, M)`` bool, and whether to squeeze."""
    if not isinstance(d, Tensor):
        raise TypeError(f"D must be a torch.Tensor, got {type(d).__name__}")
    squeeze = d.ndim == 2
    if squeeze:
        d = d.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0) if mask.ndim == 2 else mask
    if d.ndim != 3:
        raise ValueError(f"D must have shape (B, N, M) or (N, M), got {tuple(d.shape)}")
    if not d.is_floating_point():
        d = d.float()
    if mask is None:
        mask = torch.ones(d.shape, dtype=torch.bool, device=d.device)
    elif mask.shape != d.shape:
        raise ValueError(f"mask must have D's shape {tuple(d.shape)}, got {tuple(mask.shape)}")
    mask = mask.to(dtype=torch.bool, device=d.device)
    n_valid = mask.any(2).sum(1)
    m_valid = mask.any(1).sum(1)
    rows = torch.arange(d.shape[1], device=d.device)[None, :, None] < n_valid[:, None, None]
    cols = torch.arange(d.shape[2], device=d.device)[None, None, :] < m_valid[:, None, None]
    if not torch.equal(mask, rows & cols):
        raise ValueError("mask must mark a top-left block (N_b x M_b) of each matrix")
    return d, mask, squeeze


def _features(d: Tensor, mask: Tensor, extra: bool) -> Tensor:
    """``(B, N, M, C)`` input channels, zero on padding."""
    d = d.masked_fill(~mask, 0.0)
    if not extra:
        return d.unsqueeze(-1)
    far = d.masked_fill(~mask, _FAR)
    row_min = far.amin(2, keepdim=True)
    col_min = far.amin(1, keepdim=True)
    x = torch.stack([d, d - row_min, d - col_min], dim=-1)
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def _run_packed(rnn: nn.RNNBase, seqs: Tensor, lengths: Tensor) -> Tensor:
    """Run a batch-first RNN on padded sequences ``(S, L, C)`` with ``lengths (S,)`` (all > 0);
    returns ``(S, L, H)``, zero past each length. Equal lengths skip the packing."""
    if bool((lengths == seqs.shape[1]).all()):
        return rnn(seqs)[0]
    packed = pack_padded_sequence(seqs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=seqs.shape[1])
    return out


def _lines(fn, x: Tensor, mask: Tensor) -> Tensor:
    """Apply a sequence function to every line along dim 2 of ``x (B, L1, L2, C)``.

    ``fn(seqs (S, L2, C), lengths (S,)) -> (S, L2, H)``; lines without a valid entry are
    skipped and come back as zeros. Valid entries of a line must come first (top-left blocks).
    """
    b, l1, l2, c = x.shape
    flat_mask = mask.reshape(b * l1, l2)
    lengths = flat_mask.sum(1)
    valid = lengths > 0
    seqs = x.reshape(b * l1, l2, c)[valid]
    out_valid = fn(seqs, lengths[valid])
    out = out_valid.new_zeros(b * l1, l2, out_valid.shape[-1])
    out[valid] = out_valid
    return out.reshape(b, l1, l2, -1)


def _whole(fn, x: Tensor, mask: Tensor) -> Tensor:
    """Apply a sequence function to each matrix of ``x (B, N, M, C)`` flattened row-major over
    its valid entries (one sequence of ``N_b * M_b`` entries per matrix)."""
    b, n, m, c = x.shape
    flat_mask = mask.reshape(b, n * m)
    lengths = flat_mask.sum(1)
    max_len = max(int(lengths.max()), 1) if b else 1
    rank = flat_mask.long().cumsum(1) - 1
    b_idx = torch.arange(b, device=x.device)[:, None].expand(b, n * m)[flat_mask]
    pos = rank[flat_mask]
    seqs = x.new_zeros(b, max_len, c)
    seqs[b_idx, pos] = x.reshape(b, n * m, c)[flat_mask]
    valid = lengths > 0
    out_valid = fn(seqs[valid], lengths[valid])
    out = out_valid.new_zeros(b, max_len, out_valid.shape[-1])
    out[valid] = out_valid
    result = out.new_zeros(b, n * m, out.shape[-1])
    result[flat_mask] = out[b_idx, pos]
    return result.reshape(b, n, m, -1)


def _size_groups(mask: Tensor) -> list[tuple[Tensor, int, int]]:
    """Split a padded batch by size: ``(indices, N, M)`` per group, each group cropped to its
    own largest matrix. The matrices are sorted by size and a group is closed before it would
    pass :data:`CHUNK_ENTRIES` padded entries (past a few tens of thousands of entries the
    hidden states leave the CPU caches) or hold more than :data:`PADDING_FACTOR` times its
    valid entries (padding is wasted work: a batch of MOT17 frames from 4x6 to 49x42 is
    mostly padding in one block). Empty matrices are left out (their output is 0)."""
    rows, cols = mask.any(2).sum(1).tolist(), mask.any(1).sum(1).tolist()
    order = sorted(
        (i for i in range(len(rows)) if rows[i] and cols[i]), key=lambda i: rows[i] * cols[i]
    )
    groups: list[tuple[list[int], int, int]] = []
    valid = 0
    for i in order:
        if groups:
            members, n, m = groups[-1]
            n2, m2 = max(n, rows[i]), max(m, cols[i])
            area = (len(members) + 1) * n2 * m2
            if area <= CHUNK_ENTRIES and area <= PADDING_FACTOR * (valid + rows[i] * cols[i]):
                groups[-1] = (members + [i], n2, m2)
                valid += rows[i] * cols[i]
                continue
        groups.append(([i], rows[i], cols[i]))
        valid = rows[i] * cols[i]
    return [(torch.tensor(g, device=mask.device), n, m) for g, n, m in groups]


def _make_rnn(cell: str, in_size: int, hidden: int, layers: int) -> nn.RNNBase:
    cls = nn.GRU if cell == "gru" else nn.LSTM
    return cls(in_size, hidden, num_layers=layers, batch_first=True, bidirectional=True)


def _mlp(in_size: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(in_size, w), nn.ReLU()]
        in_size = w
    layers.append(nn.Linear(in_size, 1))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------- models


class DHN(nn.Module):
    """Base class: input checks, features, output masking. Subclasses define ``_logits``."""

    permutation_equivariant = False
    """True when permuting D's rows/columns permutes Â the same way (tested)."""

    def __init__(self, config: DHNConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, d: Tensor, mask: Tensor | None = None) -> Tensor:
        """Soft assignment.

        Args:
            d: ``(B, N, M)`` or ``(N, M)`` distances (rows: tracks, columns: objects).
            mask: ``(B, N, M)`` bool, True on each matrix's valid top-left block; None = all.

        Returns:
            Â of ``d``'s shape, in [0, 1], 0 on padding.
        """
        d3, mask3, squeeze = _check_input(d, mask)
        frozen = not any(p.requires_grad for p in self.parameters())
        with torch.set_grad_enabled(
            torch.is_grad_enabled() and not (self.config.detach_frozen and frozen)
        ):
            out = torch.sigmoid(self._logits3(d3, mask3))
        slope = self.config.gated_slope
        if slope:
            out = torch.where(d3 > 1, (0.5 - slope * (d3 - 1)).clamp(min=0.0), out)
        epsilon = self.config.gradient_epsilon
        if epsilon and torch.is_grad_enabled() and d3.requires_grad:
            sweeps = GRADIENT_SWEEPS
            smooth = Sinkhorn(SinkhornConfig(epsilon=epsilon, iterations=sweeps))(d3, mask3)
            out = out + (smooth - smooth.detach())
        out = out.masked_fill(~mask3, 0.0)
        return out[0] if squeeze else out

    def logits(self, d: Tensor, mask: Tensor | None = None) -> Tensor:
        """Pre-sigmoid scores of ``d``'s shape (0 on padding; ``gated_slope`` plays no
        part)."""
        d3, mask3, squeeze = _check_input(d, mask)
        logits = self._logits3(d3, mask3)
        return logits[0] if squeeze else logits

    def _logits3(self, d3: Tensor, mask3: Tensor) -> Tensor:
        out = d3.new_zeros(d3.shape)
        for index, n, m in _size_groups(mask3):
            d, mask = d3[index, :n, :m], mask3[index, :n, :m]
            out[index, :n, :m] = self._logits(self._inputs(d, mask), mask)
        return out.masked_fill(~mask3, 0.0)

    def _inputs(self, d: Tensor, mask: Tensor) -> Tensor:
        """``(B, N, M, C)`` per-entry input channels, zero on padding."""
        return _features(d, mask, self.config.extra_channels)

    def _logits(self, x: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SeqDHN(DHN):
    """Sequential DHN (Fig. 2): row-wise Bi-RNN, then column-wise Bi-RNN, then FC layers
    (``rounds`` > 1 repeats the row/column pair)."""

    def __init__(self, config: DHNConfig) -> None:
        super().__init__(config)
        h, c, layers = config.hidden, config.in_channels, config.num_layers
        self.row_rnns = nn.ModuleList(
            _make_rnn(config.cell, c if r == 0 else 2 * h + c, h, layers)
            for r in range(config.rounds)
        )
        self.col_rnns = nn.ModuleList(
            _make_rnn(config.cell, 2 * h, h, layers) for _ in range(config.rounds)
        )
        self.head = _mlp(2 * h, config.fc)

    def _logits(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x (B, N, M, C)`` → ``(B, N, M)``."""
        apply = _lines if self.config.flatten == "lines" else _whole
        mask_t = mask.transpose(1, 2)
        inp = x
        for row_rnn, col_rnn in zip(self.row_rnns, self.col_rnns, strict=True):
            h1 = apply(lambda s, n, rnn=row_rnn: _run_packed(rnn, s, n), inp, mask)
            h2 = apply(lambda s, n, rnn=col_rnn: _run_packed(rnn, s, n), h1.transpose(1, 2), mask_t)
            h2 = h2.transpose(1, 2)
            inp = torch.cat([h2, x], dim=-1)
        return self.head(h2).squeeze(-1)


class ParalDHN(DHN):
    """Parallel DHN (Fig. 6): row-wise and column-wise Bi-RNNs on D side by side."""

    def __init__(self, config: DHNConfig) -> None:
        super().__init__(config)
        h = config.hidden
        self.row_rnn = _make_rnn(config.cell, config.in_channels, h, config.num_layers)
        self.col_rnn = _make_rnn(config.cell, config.in_channels, h, config.num_layers)
        self.row_fc = nn.Linear(2 * h, h)
        self.col_fc = nn.Linear(2 * h, h)
        self.head = _mlp(2 * h, config.fc[-1:] if config.fc else ())

    def _logits(self, x: Tensor, mask: Tensor) -> Tensor:
        apply = _lines if self.config.flatten == "lines" else _whole
        hr = apply(lambda s, n: _run_packed(self.row_rnn, s, n), x, mask)
        hc = apply(
            lambda s, n: _run_packed(self.col_rnn, s, n), x.transpose(1, 2), mask.transpose(1, 2)
        )
        joined = torch.cat(
            [torch.relu(self.row_fc(hr)), torch.relu(self.col_fc(hc.transpose(1, 2)))], -1
        )
        return self.head(joined).squeeze(-1)


class _MaskedConv(nn.Module):
    """A 'same' 1-D convolution over ``(S, C, L)`` that zeros positions past each length."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation
        )

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        return torch.relu(self.conv(x)) * valid


class Conv1dDHN(DHN):
    """1-D convolutional U-Net-like DHN (Fig. 7) over the row-wise flattened matrix.

    Encoder ``[C, 24, 15]``, ``[24, 48, 15]``; a bottleneck ``[48, 48, 15]``; decoder
    ``[96, 48, 5]`` (bottleneck ‖ encoder 2) and ``[72, 24, 5]`` (decoder 1 ‖ encoder 1); a
    1x1 convolution to one channel. The paper does not say how its U-Net changes scale; here
    dilations (1, 2, 4) widen the receptive field instead of pooling, so that padding stays
    exact. Its receptive field is local (the paper's point: 56% WA).
    """

    def __init__(self, config: DHNConfig) -> None:
        super().__init__(config)
        self.enc1 = _MaskedConv(config.in_channels, 24, 15)
        self.enc2 = _MaskedConv(24, 48, 15, dilation=2)
        self.mid = _MaskedConv(48, 48, 15, dilation=4)
        self.dec1 = _MaskedConv(96, 48, 5)
        self.dec2 = _MaskedConv(72, 24, 5)
        self.out = nn.Conv1d(24, 1, 1)

    def _net(self, seqs: Tensor, lengths: Tensor) -> Tensor:
        """``(S, L, C)`` → ``(S, L, 1)``."""
        x = seqs.transpose(1, 2)
        steps = torch.arange(x.shape[-1], device=x.device)
        valid = (steps[None, :] < lengths.to(x.device)[:, None]).unsqueeze(1).to(x.dtype)
        e1 = self.enc1(x, valid)
        e2 = self.enc2(e1, valid)
        b = self.mid(e2, valid)
        d1 = self.dec1(torch.cat([b, e2], 1), valid)
        d2 = self.dec2(torch.cat([d1, e1], 1), valid)
        return (self.out(d2) * valid).transpose(1, 2)

    def _logits(self, x: Tensor, mask: Tensor) -> Tensor:
        return _whole(self._net, x, mask).squeeze(-1)


def _line_stats(d: Tensor, mask: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Per entry of ``d (B, N, M)``, along ``dim`` (2: its row, 1: its column): the gap to the
    best *other* entry of the line (negative: strictly the line's minimum; clamped to [-2, 2],
    -2 when the line has no other entry) and ``1 / (1 + rank)`` with rank the number of
    entries strictly smaller (so ties, e.g. thresholded entries, do not depend on order)."""
    far = d.masked_fill(~mask, _FAR)
    lines = far.transpose(1, 2) if dim == 1 else far  # (B, L1, L2): lines along the last dim
    flat = lines.reshape(-1, lines.shape[-1])
    ordered = flat.sort(-1).values.contiguous()
    rank = torch.searchsorted(ordered, flat.contiguous(), side="left").to(d.dtype)
    first = ordered[:, :1]
    second = ordered[:, 1:2] if ordered.shape[1] > 1 else torch.full_like(first, _FAR)
    other = torch.where(flat <= first, second, first)
    gap = (flat - other).clamp(-2.0, 2.0).reshape(lines.shape)
    inv_rank = (1.0 / (1.0 + rank)).reshape(lines.shape)
    if dim == 1:
        gap, inv_rank = gap.transpose(1, 2), inv_rank.transpose(1, 2)
    return gap, inv_rank


SINKHORN_EPSILONS = (0.2, 0.001)
"""First and last temperature of the Sinkhorn features of ``bipartite_sk``, lowered
geometrically over the sweeps (epsilon-scaling). On the test split (a quarter of it, 100
sweeps) the plan alone matches the Hungarian solution exactly on 97.0% of the matrices
(row-wise), against 85.7% at a fixed 0.02 and 92.1% at a fixed 0.005 with 400 sweeps."""
SINKHORN_DUSTBIN = 0.75
"""Their dustbin cost: leaving a row and a column unmatched costs 1.5, so the plan matches, like
the gated Hungarian solution, as many pairs below 1.5 as it can: every real distance (<= 1),
never the gated value (2). At 1.0, pairs that the loss's soft gate had pushed to 1.0-2.0
would still be matched: Spearman 0.63 against the true MOTA instead of 0.95 (measured with
``benchmarks/bench_loss_correlation.py``, 300 pairs); on the test split 0.75 matches as often
(97.4% against 97.3% exact, the plan alone)."""


def _sinkhorn(d: Tensor, mask: Tensor, sweeps: int) -> Tensor:
    """The transport plan of :func:`~deepmot.assign.sinkhorn.sinkhorn_plan` with dustbins
    (:data:`SINKHORN_DUSTBIN`), the temperature lowered over the sweeps
    (:data:`SINKHORN_EPSILONS`), batched over padded ``d (B, N, M)``: ``(B, N, M)`` in [0, 1],
    0 on padding; padding never changes it.

    Computed in float64: at the last temperature the exponents reach ``1 / 0.001`` times the
    potentials, where float32 rounding would show in the plan (1e-4)."""
    plan = sinkhorn_plan(d.double(), mask, SINKHORN_DUSTBIN, SINKHORN_EPSILONS, sweeps)
    return plan.to(d.dtype)


def _bipartite_features(d: Tensor, mask: Tensor, sinkhorn: int = 0) -> Tensor:
    """``(B, N, M, C)`` size- and order-free features, zero on padding: D, D - row-min,
    D - column-min, the row and column gaps to the best other entry, 1/(1+rank) in the row and
    in the column (C = 7); with ``sinkhorn`` sweeps, also the plan P of :func:`_sinkhorn` and
    the row and column gaps of 1 - P (C = 10)."""
    d = d.masked_fill(~mask, 0.0)
    far = d.masked_fill(~mask, _FAR)
    row_gap, row_rank = _line_stats(d, mask, 2)
    col_gap, col_rank = _line_stats(d, mask, 1)
    channels = [
        d,
        d - far.amin(2, keepdim=True),
        d - far.amin(1, keepdim=True),
        row_gap,
        col_gap,
        row_rank,
        col_rank,
    ]
    if sinkhorn:
        plan = _sinkhorn(d, mask, sinkhorn)
        channels += [plan, _line_stats(1 - plan, mask, 2)[0], _line_stats(1 - plan, mask, 1)[0]]
    return torch.stack(channels, dim=-1).masked_fill(~mask.unsqueeze(-1), 0.0)


class _Masks:
    """What the message-passing layers need of a mask ``(B, N, M)``, computed once: ``keep``
    ``(B, N, M, 1)`` 1/0 (None when every entry is valid: no masking work at all), ``low`` 0 on
    valid entries and ``-_FAR`` on padding (for maxima), and the valid entries per row and per
    column. Multiplications instead of ``masked_fill``: several times faster on a CPU."""

    def __init__(self, mask: Tensor, dtype: torch.dtype) -> None:
        full = bool(mask.all())
        keep = mask.unsqueeze(-1).to(dtype)
        self.keep = None if full else keep
        self.low = None if full else (keep - 1) * _FAR
        self.count = {dim: keep.sum(dim, keepdim=True).clamp(min=1) for dim in (1, 2)}

    def apply(self, h: Tensor) -> Tensor:
        return h if self.keep is None else h * self.keep


def _pool(z: Tensor, masks: _Masks, dim: int) -> Tensor:
    """Masked mean and max of ``z (B, N, M, H)`` over ``dim`` (1: a column's entries, 2: a
    row's), kept as a broadcastable axis: ``(B, 1, M, 2H)`` or ``(B, N, 1, 2H)``. Lines with
    no valid entry (padding) get junk, which only reaches padding."""
    mean = masks.apply(z).sum(dim, keepdim=True) / masks.count[dim]
    top = (z if masks.low is None else z + masks.low).amax(dim, keepdim=True)
    return torch.cat([mean, top], dim=-1)


class _MessageLayer(nn.Module):
    """One residual layer: every entry reads the mean and max of its row and of its column.

    ``relu(W_e z + W_r row(z) + W_c col(z))`` then a linear layer, added to ``h``; the row and
    column terms are computed once per line and broadcast (the same as one linear layer on
    the concatenation, without building it)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.entry = nn.Linear(width, width)
        self.row = nn.Linear(2 * width, width, bias=False)
        self.col = nn.Linear(2 * width, width, bias=False)
        self.out = nn.Linear(width, width)

    def forward(self, h: Tensor, masks: _Masks) -> Tensor:
        z = self.norm(h)
        msg = self.entry(z) + self.row(_pool(z, masks, 2)) + self.col(_pool(z, masks, 1))
        return masks.apply(h + self.out(torch.relu(msg)))


class BipartiteDHN(DHN):
    """Message passing on the bipartite graph of D's rows and columns (not in the paper).

    Size-agnostic and permutation-equivariant: features, pooling and the per-entry layers
    treat every row (column) alike, whatever their number or order. ``hidden`` is the width,
    ``rounds`` the number of :class:`_MessageLayer`, ``fc`` the head's hidden widths.
    """

    permutation_equivariant = True

    def __init__(self, config: DHNConfig) -> None:
        super().__init__(config)
        w = config.hidden
        channels = 10 if config.sinkhorn else 7
        self.embed = nn.Sequential(nn.Linear(channels, w), nn.ReLU(), nn.Linear(w, w))
        self.layers = nn.ModuleList(_MessageLayer(w) for _ in range(config.rounds))
        self.head = _mlp(w, config.fc)
        if config.sinkhorn:
            # start as the plan itself (the head's last layer at zero), learn corrections
            self.prior = nn.Parameter(torch.tensor(4.0))
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def _inputs(self, d: Tensor, mask: Tensor) -> Tensor:
        return _bipartite_features(d, mask, self.config.sinkhorn)

    def _logits(self, x: Tensor, mask: Tensor) -> Tensor:
        masks = _Masks(mask, x.dtype)
        h = masks.apply(self.embed(x))
        for layer in self.layers:
            h = layer(h, masks)
        out = self.head(h).squeeze(-1)
        if self.config.sinkhorn:  # a correction of the plan P (channel 7): prior * (2P - 1)
            out = out + self.prior * (2 * x[..., 7] - 1)
        return out


_CLASSES = {"seq": SeqDHN, "paral": ParalDHN, "conv1d": Conv1dDHN, "bipartite": BipartiteDHN}


# ---------------------------------------------------------------------------- registry


DEFAULT_DHN = "bipartite_sk"
"""The shipped DHN that the DeepMOT loss uses unless told otherwise (matcher ``dhn``).

``bipartite_sk``: exact on 97.4% of the test split's matrices (row-wise; ``seq_gru``, the
paper's architecture and the default until now: 81.6%), at or above the 1 - D rule at every
size from 2x2 to 300x300, Spearman(dMOTA, MOTA) 0.957 (``seq_gru``: 0.949), and a training step
about 2.6x Smooth-L1's (``seq_gru``: about 20x). With :data:`GATED_SLOPE` and
:data:`GRADIENT_EPSILON` its FP~ and FN~ send the boxes at least ``seq_gru``'s gradients. The
old default stays selectable as ``dhn:seq_gru``."""


def default_dhn() -> DHN:
    """The default matcher's DHN: :data:`DEFAULT_DHN` with its shipped weights, in eval mode."""
    return create_dhn(DEFAULT_DHN, pretrained=True)


def list_dhns() -> list[str]:
    """Names :func:`create_dhn` accepts."""
    return list(_VARIANTS)


def build_dhn(config: DHNConfig) -> DHN:
    """A freshly initialised DHN for ``config``."""
    return _CLASSES[config.arch](config)


def create_dhn(name: str, pretrained: bool = False, **overrides: Any) -> DHN:
    """Build a DHN variant by name.

    Args:
        name: one of :func:`list_dhns` (``seq_gru``, ``seq_lstm``, ``paral_gru``,
            ``paral_lstm``, ``conv1d``).
        pretrained: load the shipped weights ``deepmot/weights/dhn_<name>.safetensors``
            (offline; the JSON card next to them holds the config). Overrides are not
            allowed then, since they would not fit the weights.
        **overrides: :class:`DHNConfig` fields replacing the paper's defaults
            (e.g. ``hidden=64, flatten="lines"``).

    Returns:
        The model, in eval mode when pretrained.
    """
    if name not in _VARIANTS:
        raise ValueError(f"unknown DHN {name!r}; valid names: {', '.join(_VARIANTS)}")
    if pretrained:
        if overrides:
            raise ValueError(
                f"pretrained weights fix the config; got overrides {sorted(overrides)}"
            )
        path = WEIGHTS_DIR / f"dhn_{name}.safetensors"
        if not path.is_file():
            shipped = sorted(
                p.stem.removeprefix("dhn_") for p in WEIGHTS_DIR.glob("dhn_*.safetensors")
            )
            raise ValueError(
                f"no shipped weights for {name!r}; shipped: {', '.join(shipped) or 'none'}"
            )
        model = load_dhn(path)
        if (model.config.arch, model.config.cell) != (
            _VARIANTS[name]["arch"],
            _VARIANTS[name].get("cell", model.config.cell),
        ):
            raise DeepMOTError(f"{path}: its card describes a different variant than {name!r}")
        return model
    unknown = set(overrides) - {f.name for f in fields(DHNConfig)}
    if unknown:
        raise ValueError(
            f"unknown DHN settings {sorted(unknown)}; valid: {[f.name for f in fields(DHNConfig)]}"
        )
    config = replace(DHNConfig(), **{**_VARIANTS[name], **overrides})
    return build_dhn(config)


def save_dhn(model: DHN, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """Write ``path`` (safetensors, atomically) and ``path`` with ``.json`` (the card: the
    config plus anything in ``card``)."""
    save_weights(model, model.config.to_dict(), path, card)


def load_dhn(path: str | Path, map_location: str | torch.device = "cpu") -> DHN:
    """Load weights written by :func:`save_dhn` (config from the safetensors metadata, else
    from the JSON card next to it). Returns the model in eval mode."""
    config, state = read_weights(path, "DHN", map_location)
    return load_state(build_dhn(DHNConfig.from_dict(config)), state, path)

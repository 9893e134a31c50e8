"""The DeepMOT loss: differentiable MOTA and MOTP (paper Sec. 4.2, eqs. 5–9, Fig. 3).

For one frame, with D the ``(N, M)`` track-to-object distance matrix and Â = matcher(D):

- ``C^r`` = row-wise softmax of ``[Â | δ]``, ``C^c`` = column-wise softmax of ``[Â ; δ]``, both
  with their input multiplied by ``scale`` (the authors' released code uses 100; without it a
  row of M near-zero entries dilutes the δ column and FP~/FN~ hardly move);
- ``FP~ = Σ_n C^r[n, M+1]``, ``FN~ = Σ_m C^c[N+1, m]`` (eq. 5);
- ``B^TP`` marks the current true positives: pairs that are each other's best in ``C^r`` and
  ``C^c`` (not the dustbin) and that CLEAR MOT could match (not gated); hard, no gradient;
- ``B^TP_{-1}`` holds the previous matches: object m last matched to track id t allows only the
  row of track t (none if t is gone); objects never matched before copy their column from
  ``B^TP``, so that their first match is not a switch;
- ``IDS~ = ‖C^c[:N, :M] ⊙ ¬B^TP_{-1}‖₁`` (eq. 6);
- ``dMOTA = 1 − (FP~ + FN~ + γ IDS~) / M`` (eq. 7; M is taken as 1 when the frame has no object);
- ``dMOTP = 1 − ‖D ⊙ B^TP‖₁ / ‖B^TP‖₀`` (eq. 8; 1 when there is no true positive);
- ``L = (1 − dMOTA) + λ (1 − dMOTP)`` (eq. 9; without the first term when ``use_dmota`` is
  off, the dMOTP-only ablation of Table 2).

With a per-track confidence ``c (N,)`` in [0, 1] (the probability that track n is reported),
each track's part of the terms is weighted by it (``docs/loss.md``, "Presence-weighted loss"):
``FP~ = Σ_n c_n C^r[n, M+1]``, ``FN~ = Σ_m (C^c[N+1, m] + Σ_n (1 − c_n) C^c[n, m])``,
``IDS~ = Σ c_n C^c[n, m] ¬B^TP_{-1}[n, m]``,
``dMOTP = 1 − Σ c_n D B^TP / Σ c_n B^TP``, and only tracks with ``c_n >= 0.5`` (reported)
enter ``B^TP``. ``c = 1`` is the paper's loss; ``c_n = 0`` removes
track n (it is no FP, no switch, and the objects it covered are missed).

Gating (paper footnotes 1–2, and the "large value" of the DHN's training data): pairs CLEAR MOT
could never match (IoU below 0.5 when IoU is given, else D above ``gate_distance``) are set to
``large_value`` before the matcher, so that they count as FP/FN instead of as matches
(``"hard"``). ``"soft"`` gating, the default, blends towards the large value with a sigmoid of
D so that a pair just beyond the gate still passes a gradient (see the config's comment for
the measured trade-off).

With a binary Â equal to the exact matching and ``scale → ∞``, FP~, FN~ and IDS~ are exactly
CLEAR MOT's FP, FN and ID switches of the frame (tested against the reference evaluator).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepmot.loss.config import DeepMOTLossConfig

__all__ = [
    "REPORTED",
    "DeepMOTLossConfig",
    "DeepMOTLossOutput",
    "DeepMOTLoss",
    "as_id_array",
    "deepmot_terms",
]

Matcher = Callable[..., Tensor]
ACTIVE_BAND = 0.01
"""A softmax entry p counts as active (not saturated) when ``ACTIVE_BAND < p < 1 − ACTIVE_BAND``."""
IdsLike = Sequence[int] | np.ndarray | Tensor
REPORTED = 0.5
"""With confidences, a track enters ``B^TP`` (and the match memory) when its confidence is at
least this: a track counts as reported when it is more likely present than not."""
_TINY = 1e-12  # floor of dMOTP's weighted denominator (0 only where the numerator is 0)


@dataclass
class DeepMOTLossOutput:
    """The loss and its parts, each a ``(B,)`` tensor for a batch or a scalar for one frame.

    ``loss``, ``dmota``, ``dmotp``, ``fp``, ``fn``, ``ids`` are differentiable (soft);
    ``true_positives`` is the hard count ``‖B^TP‖₀``; ``num_objects`` is M; ``active_share`` is
    the share of the softmax entries of ``C^r`` and ``C^c`` in their active band (``0.01 < p <
    0.99``, where ``dp/dÂ = scale · p (1 − p)`` is not negligible): near 0, the softmaxes are
    saturated and FP~, FN~ and IDS~ pass almost no gradient.
    """

    loss: Tensor
    dmota: Tensor
    dmotp: Tensor
    fp: Tensor
    fn: Tensor
    ids: Tensor
    true_positives: Tensor
    num_objects: Tensor
    active_share: Tensor

    def squeeze(self) -> DeepMOTLossOutput:
        """The single frame of a batch of one, as scalars."""
        return DeepMOTLossOutput(**{f.name: getattr(self, f.name).squeeze(0) for f in fields(self)})


def deepmot_terms(
    distance: Tensor,
    assignment: Tensor,
    gated: Tensor,
    valid_rows: Tensor,
    valid_cols: Tensor,
    previous_ok: Tensor,
    has_previous: Tensor,
    config: DeepMOTLossConfig,
    confidence: Tensor | None = None,
) -> tuple[DeepMOTLossOutput, Tensor]:
    """The soft CLEAR MOT terms of a padded batch of frames (eqs. 5–9).

    Args:
        distance: ``(B, N, M)`` D, ungated (dMOTP measures it).
        assignment: ``(B, N, M)`` Â in [0, 1] from the matcher.
        gated: ``(B, N, M) bool``, pairs CLEAR MOT could not match.
        valid_rows: ``(B, N) bool``; valid_cols: ``(B, M) bool`` (padding is False).
        previous_ok: ``(B, N, M) bool``, for objects matched before: True only at the row of the
            track they were last matched to (nowhere if that track is gone).
        has_previous: ``(B, M) bool``, objects matched before; the columns of the others are
            filled in from ``B^TP``, so that a first match is not a switch.
        config: loss settings.
        confidence: ``(B, N)`` in [0, 1], each track's presence (padding ignored), which
            weights its part of FP~, FN~, IDS~ and dMOTP (see the module doc); None: the
            paper's loss, computed exactly as without the argument.

    Returns:
        The output and ``B^TP`` as a ``(B, N, M) bool`` tensor.
    """
    batch, n, m = distance.shape
    cell_valid = valid_rows[:, :, None] & valid_cols[:, None, :]
    delta = config.delta
    neg_inf = torch.finfo(assignment.dtype).min

    logits_r = torch.cat([assignment, assignment.new_full((batch, n, 1), delta)], dim=2)
    col_mask_r = torch.cat([valid_cols, valid_cols.new_ones(batch, 1)], dim=1)
    logits_r = logits_r.masked_fill(~col_mask_r[:, None, :], neg_inf)
    c_r = F.softmax(logits_r * config.scale, dim=2)

    logits_c = torch.cat([assignment, assignment.new_full((batch, 1, m), delta)], dim=1)
    row_mask_c = torch.cat([valid_rows, valid_rows.new_ones(batch, 1)], dim=1)
    logits_c = logits_c.masked_fill(~row_mask_c[:, :, None], neg_inf)
    c_c = F.softmax(logits_c * config.scale, dim=1)

    if confidence is None:
        fp = (c_r[:, :, m] * valid_rows).sum(1)
        fn = (c_c[:, n, :] * valid_cols).sum(1)
    else:
        presence = confidence * valid_rows  # (B, N)
        fp = (c_r[:, :, m] * presence).sum(1)
        # an object is missed by its dustbin mass and by the mass of the tracks on it as far
        # as they are absent (written so that c = 1 adds an exact 0)
        absent = (c_c[:, :n, :] * (1 - presence)[:, :, None] * valid_rows[:, :, None]).sum(1)
        fn = ((c_c[:, n, :] + absent) * valid_cols).sum(1)

    with torch.no_grad():
        rows_valid = valid_rows[:, :, None] & col_mask_r[:, None, :]
        cols_valid = row_mask_c[:, :, None] & valid_cols[:, None, :]
        active = ((c_r > ACTIVE_BAND) & (c_r < 1 - ACTIVE_BAND) & rows_valid).sum((1, 2)) + (
            (c_c > ACTIVE_BAND) & (c_c < 1 - ACTIVE_BAND) & cols_valid
        ).sum((1, 2))
        entries = rows_valid.sum((1, 2)) + cols_valid.sum((1, 2))
        active_share = active.float() / entries.clamp(min=1).float()
        best_col = c_r.argmax(dim=2)  # (B, N), m means the dustbin
        best_row = c_c.argmax(dim=1)  # (B, M), n means the dustbin
        rows = torch.arange(n, device=distance.device)[None, :, None]
        cols = torch.arange(m, device=distance.device)[None, None, :]
        mutual = (best_col[:, :, None] == cols) & (best_row[:, None, :] == rows)
        b_tp = mutual & ~gated & cell_valid
        if confidence is not None:  # only reported tracks are true positives
            b_tp = b_tp & (confidence >= REPORTED)[:, :, None]
        b_prev = torch.where(has_previous[:, None, :], previous_ok, b_tp)

    switched = c_c[:, :n, :] * (~b_prev & cell_valid)
    if confidence is not None:
        switched = switched * confidence[:, :, None]
    ids = switched.sum((1, 2))
    num_objects = valid_cols.sum(1)
    dmota = 1 - (fp + fn + config.gamma * ids) / num_objects.clamp(min=1)
    tp = b_tp.sum((1, 2))
    if confidence is None:
        matched_distance = (distance * b_tp).sum((1, 2))
        dmotp = 1 - matched_distance / tp.clamp(min=1)
    else:
        weight = b_tp * confidence[:, :, None]
        matched_distance = (distance * weight).sum((1, 2))
        dmotp = 1 - matched_distance / weight.sum((1, 2)).clamp(min=_TINY)
    dmota_term = (1 - dmota) if config.use_dmota else torch.zeros_like(dmota)
    loss = dmota_term + config.lam * (1 - dmotp)
    out = DeepMOTLossOutput(loss, dmota, dmotp, fp, fn, ids, tp, num_objects, active_share)
    return out, b_tp


def as_id_array(ids: IdsLike, name: str, length: int, axis: str) -> np.ndarray:
    """Ids of the rows or columns of D as an int64 array; rejects wrong lengths and repeats."""
    array = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else np.asarray(ids)
    if array.ndim != 1 or len(array) != length:
        raise ValueError(
            f"{name} must hold {length} ids, one per {axis} of D, got shape {array.shape}"
        )
    if len(array) and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must be integers")
        array = array.astype(np.int64)
    if len(np.unique(array)) != len(array):
        raise ValueError(f"{name} holds an id twice")
    return array.astype(np.int64)


class DeepMOTLoss(nn.Module):
    """The DeepMOT loss with a track-to-object memory carried across the frames of a clip.

    Args:
        matcher: ``matcher(D, mask=None) -> Â`` on ``(B, N, M)`` batches: a frozen DHN (by
            default the shipped :func:`~deepmot.assign.dhn.default_dhn`),
            :class:`~deepmot.assign.sinkhorn.Sinkhorn`, or an exact matcher (no gradient
            through Â). Its parameters are frozen here.
        config: :class:`DeepMOTLossConfig`; keyword overrides (``delta=...``) are applied on top.

    Use ``out = loss_fn(D, track_ids, gt_ids)`` frame after frame and ``loss_fn.reset()`` between
    clips; ``loss_fn.forward_batch(...)`` scores many independent frames at once.
    """

    def __init__(
        self, matcher: Matcher | None = None, config: DeepMOTLossConfig | None = None, **overrides
    ) -> None:
        super().__init__()
        base = config or DeepMOTLossConfig()
        self.config = DeepMOTLossConfig(**{**base.__dict__, **overrides})
        if matcher is None:
            from deepmot.assign.dhn import default_dhn

            matcher = default_dhn()
        self.matcher = matcher
        if isinstance(matcher, nn.Module):
            matcher.eval()
            matcher.requires_grad_(False)
        self.memory: dict[int, int] = {}

    def reset(self) -> None:
        """Forget the track-to-object memory (call between clips)."""
        self.memory = {}

    def gate(
        self, distance: Tensor, iou: Tensor | None = None, detach_gate: bool = False
    ) -> tuple[Tensor, Tensor]:
        """The matcher's input and the mask of pairs CLEAR MOT could not match.

        Args:
            distance: ``(B, N, M)`` D; iou: optional ``(B, N, M)`` IoU of the same pairs.
            detach_gate: pass no gradient through the soft gate's weight (to measure what the
                gate itself contributes, see :mod:`deepmot.train.diagnostics`).

        Returns:
            ``(gated D (B, N, M), gated (B, N, M) bool)``.
        """
        cfg = self.config
        gated = iou < cfg.gate_iou if iou is not None else distance > cfg.gate_distance
        if cfg.gate == "none":
            return distance, gated
        large = torch.full_like(distance, cfg.large_value)
        if cfg.gate == "hard":
            return torch.where(gated, large, distance), gated
        if iou is not None:
            weight = torch.sigmoid((cfg.gate_iou - iou) / cfg.soft_gate_width)
        else:
            weight = torch.sigmoid((distance - cfg.gate_distance) / cfg.soft_gate_width)
        if detach_gate:
            weight = weight.detach()
        return distance + weight * (large - distance), gated

    def _match(self, gated_distance: Tensor, mask: Tensor) -> Tensor:
        if gated_distance.numel() == 0:
            return gated_distance.clone()
        return self.matcher(gated_distance, mask)

    def forward_batch(
        self,
        distances: Sequence[Tensor],
        track_ids: Sequence[IdsLike],
        gt_ids: Sequence[IdsLike],
        memories: Sequence[dict[int, int]] | None = None,
        ious: Sequence[Tensor] | None = None,
        detach_gate: bool = False,
        scale: float | None = None,
        confidences: Sequence[Tensor] | None = None,
    ) -> tuple[DeepMOTLossOutput, list[dict[int, int]]]:
        """Score independent frames at once (one matcher call on a padded batch).

        Args:
            distances: B matrices ``(N_i, M_i)``.
            track_ids: B integer arrays ``(N_i,)``, the ids of the rows.
            gt_ids: B integer arrays ``(M_i,)``, the ids of the columns.
            memories: B dicts ``{gt_id: track_id}`` of earlier matches (e.g. the identity map
                for tracks initialised from the ground truth at t − 1); empty when None.
            ious: optional B IoU matrices for gating by IoU.
            detach_gate: no gradient through the soft gate's weight (see :meth:`gate`).
            scale: the softmax scale of this call (a trainer moving it over a run passes
                each step's); None: ``config.scale``.
            confidences: B tensors ``(N_i,)`` in [0, 1], each track's presence, weighting its
                part of the terms (differentiable; see :func:`deepmot_terms`); None: the
                paper's loss.

        Returns:
            ``(output with (B,) tensors, updated memories)``.
        """
        size = len(distances)
        memories = [{} for _ in range(size)] if memories is None else memories
        if not (len(track_ids) == len(gt_ids) == len(memories) == size):
            raise ValueError("distances, track_ids, gt_ids and memories must have the same length")
        shapes = [tuple(d.shape) for d in distances]
        for i, shape in enumerate(shapes):
            if len(shape) != 2:
                raise ValueError(f"distances[{i}] must have shape (N, M), got {shape}")
        rows = [
            as_id_array(t, "track_ids", s[0], "row") for t, s in zip(track_ids, shapes, strict=True)
        ]
        cols = [
            as_id_array(g, "gt_ids", s[1], "column") for g, s in zip(gt_ids, shapes, strict=True)
        ]

        n = max(s[0] for s in shapes)
        m = max(s[1] for s in shapes)
        reference = distances[0]
        distance = reference.new_zeros((size, n, m))
        iou = None if ious is None else reference.new_zeros((size, n, m))
        valid_rows = torch.zeros((size, n), dtype=torch.bool, device=reference.device)
        valid_cols = torch.zeros((size, m), dtype=torch.bool, device=reference.device)
        previous_ok = np.ones((size, n, m), dtype=bool)
        has_previous = np.zeros((size, m), dtype=bool)
        for b, (d, r, c, memory) in enumerate(zip(distances, rows, cols, memories, strict=True)):
            ni, mi = d.shape
            distance[b, :ni, :mi] = d
            if iou is not None:
                iou[b, :ni, :mi] = ious[b]
            valid_rows[b, :ni] = True
            valid_cols[b, :mi] = True
            previous = np.array([memory.get(int(g), -1) for g in c], dtype=np.int64)
            has_previous[b, :mi] = [int(g) in memory for g in c]
            previous_ok[b, :ni, :mi] = r[:, None] == previous[None, :]
        confidence = None
        if confidences is not None:
            confidence = _pad_confidences(confidences, shapes, reference, n)
        cell_valid = valid_rows[:, :, None] & valid_cols[:, None, :]
        gated_distance, gated = self.gate(distance, iou, detach_gate)
        gated_distance = gated_distance.masked_fill(~cell_valid, self.config.large_value)
        assignment = self._match(gated_distance, cell_valid) * cell_valid
        out, b_tp = deepmot_terms(
            distance,
            assignment,
            gated,
            valid_rows,
            valid_cols,
            torch.from_numpy(previous_ok).to(distance.device),
            torch.from_numpy(has_previous).to(distance.device),
            self.config if scale is None else replace(self.config, scale=scale),
            confidence,
        )
        updated = []
        matches = b_tp.nonzero().cpu().numpy()
        for b, memory in enumerate(memories):
            memory = dict(memory)
            for _, i, j in matches[matches[:, 0] == b]:
                memory[int(cols[b][j])] = int(rows[b][i])
            updated.append(memory)
        return out, updated

    def forward(
        self,
        distance: Tensor,
        track_ids: IdsLike,
        gt_ids: IdsLike,
        iou: Tensor | None = None,
        confidence: Tensor | None = None,
    ) -> DeepMOTLossOutput:
        """Score one frame ``D (N, M)`` and remember its matches for the next frame
        (``confidence (N,)``: each track's presence, see :func:`deepmot_terms`).

        Returns scalars: ``out.loss``, ``out.dmota``, ``out.dmotp``, ``out.fp``, ``out.fn``,
        ``out.ids``.
        """
        out, (self.memory,) = self.forward_batch(
            [distance],
            [track_ids],
            [gt_ids],
            [self.memory],
            None if iou is None else [iou],
            confidences=None if confidence is None else [confidence],
        )
        return out.squeeze()


def _pad_confidences(
    confidences: Sequence[Tensor], shapes: list[tuple[int, ...]], reference: Tensor, n: int
) -> Tensor:
    """The ``(B, N)`` batch of the per-frame confidences ``(N_i,)`` (padding 0)."""
    if len(confidences) != len(shapes):
        raise ValueError(f"{len(confidences)} confidence vectors for {len(shapes)} frames")
    out = reference.new_zeros((len(shapes), n))
    for b, (c, shape) in enumerate(zip(confidences, shapes, strict=True)):
        if tuple(c.shape) != (shape[0],):
            raise ValueError(
                f"confidences[{b}] must have shape ({shape[0]},), one per row of D, "
                f"got {tuple(c.shape)}"
            )
        out[b, : shape[0]] = c.to(out)
    return out

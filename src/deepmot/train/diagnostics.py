"""What reaches the tracker from each part of the DeepMOT loss: gradient norms per term.

With a confident matcher and a large softmax scale, the softmaxes of eqs. 5-6 saturate and
FP~, FN~ and IDS~ pass almost no gradient, so dMOTP carries the training alone. These
diagnostics make that visible: for one training step, the norm of the gradient that each term
— as it enters the loss — sends to the predicted boxes, and (from the loss itself) the share of
softmax entries in their active band.

Terms (means over the step's frames, as in the loss): ``fp`` = FP~/M, ``fn`` = FN~/M,
``ids`` = γ IDS~/M, ``dmotp`` = λ (1 − dMOTP), and ``gate``: what the soft gate's weight adds
to the dMOTA part's gradient (the dMOTA part's gradient minus the same with the gate's weight
detached).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from deepmot.loss.deepmot import DeepMOTLoss, DeepMOTLossOutput

__all__ = [
    "CONFIDENCE_TERMS",
    "GRADIENT_TERMS",
    "FrameRecord",
    "confidence_gradients",
    "gradient_norms",
]

GRADIENT_TERMS = ("fp", "fn", "ids", "dmotp", "gate")


@dataclass
class FrameRecord:
    """One frame of a step's batch as the loss saw it (kept to differentiate its terms)."""

    predictions: list[Tensor]
    distances: list[Tensor]
    track_ids: list
    gt_ids: list
    memories: list[dict[int, int]]
    output: DeepMOTLossOutput
    confidences: list[Tensor] | None = None  # the presence weights, when the loss had them


def _norm(term: Tensor, inputs: list[Tensor]) -> float:
    if not term.requires_grad:
        return 0.0
    grads = torch.autograd.grad(term, inputs, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None)))


def gradient_norms(
    records: list[FrameRecord], loss_fn: DeepMOTLoss, scale: float | None = None
) -> dict[str, float]:
    """The gradient norm each term sends to the predicted boxes of ``records`` (see the module
    doc); the graph is kept, so the step's backward can follow. ``scale``: the softmax scale
    the records were scored with (None: the loss's configured one)."""
    inputs = [p for r in records for p in r.predictions if p.requires_grad]
    if not inputs:
        return dict.fromkeys(GRADIENT_TERMS, 0.0)
    cfg = loss_fn.config
    count = sum(len(r.predictions) for r in records)

    def mean(values: list[Tensor]) -> Tensor:
        return torch.stack([v.sum() for v in values]).sum() / count

    outs = [r.output for r in records]
    objects = [o.num_objects.clamp(min=1) for o in outs]
    terms = {
        "fp": mean([o.fp / m for o, m in zip(outs, objects, strict=True)]),
        "fn": mean([o.fn / m for o, m in zip(outs, objects, strict=True)]),
        "ids": mean([cfg.gamma * o.ids / m for o, m in zip(outs, objects, strict=True)]),
        "dmotp": mean([cfg.lam * (1 - o.dmotp) for o in outs]),
    }
    norms = {name: _norm(term, inputs) for name, term in terms.items()}
    dmota_part = mean([1 - o.dmota for o in outs])
    without_gate = []
    for record in records:
        out, _ = loss_fn.forward_batch(
            record.distances,
            record.track_ids,
            record.gt_ids,
            record.memories,
            detach_gate=True,
            scale=scale,
            confidences=record.confidences,
        )
        without_gate.append(1 - out.dmota)
    if dmota_part.requires_grad:
        full = torch.autograd.grad(dmota_part, inputs, retain_graph=True, allow_unused=True)
        no_gate_term = mean(without_gate)
        if no_gate_term.requires_grad:
            partial = torch.autograd.grad(
                no_gate_term, inputs, retain_graph=True, allow_unused=True
            )
        else:
            partial = [None] * len(inputs)
        squares = [
            ((f if f is not None else 0) - (p if p is not None else 0)) ** 2
            for f, p in zip(full, partial, strict=True)
            if f is not None or p is not None
        ]
        norms["gate"] = float(torch.sqrt(sum(s.sum() for s in squares))) if squares else 0.0
    else:
        norms["gate"] = 0.0
    return norms


CONFIDENCE_TERMS = ("fp", "fn", "ids", "dmotp")


def confidence_gradients(
    records: list[FrameRecord], loss_fn: DeepMOTLoss
) -> dict[str, dict[str, float]]:
    """What each term of a presence-weighted loss sends to the confidences of ``records``
    (frames scored with ``confidences``), as the terms enter the loss (see the module doc):
    ``{"norm": {term: gradient norm}, "mean": {term: mean gradient per track}}``; the graph is
    kept. A negative mean raises the confidences (gradient descent), a positive one lowers
    them."""
    inputs = [c for r in records for c in (r.confidences or []) if c.requires_grad]
    empty = {
        "norm": dict.fromkeys(CONFIDENCE_TERMS, 0.0),
        "mean": dict.fromkeys(CONFIDENCE_TERMS, 0.0),
    }
    if not inputs:
        return empty
    cfg = loss_fn.config
    count = sum(len(r.predictions) for r in records)
    tracks = max(1, sum(len(c) for c in inputs))
    outs = [r.output for r in records]
    objects = [o.num_objects.clamp(min=1) for o in outs]

    def mean(values: list[Tensor]) -> Tensor:
        return torch.stack([v.sum() for v in values]).sum() / count

    terms = {
        "fp": mean([o.fp / m for o, m in zip(outs, objects, strict=True)]),
        "fn": mean([o.fn / m for o, m in zip(outs, objects, strict=True)]),
        "ids": mean([cfg.gamma * o.ids / m for o, m in zip(outs, objects, strict=True)]),
        "dmotp": mean([cfg.lam * (1 - o.dmotp) for o in outs]),
    }
    result = {"norm": {}, "mean": {}}
    for name, term in terms.items():
        if not term.requires_grad:
            result["norm"][name] = result["mean"][name] = 0.0
            continue
        grads = torch.autograd.grad(term, inputs, retain_graph=True, allow_unused=True)
        grads = [g.detach() for g in grads if g is not None]
        result["norm"][name] = float(torch.sqrt(sum((g**2).sum() for g in grads)))
        result["mean"][name] = float(sum(g.sum() for g in grads)) / tracks
    return result

"""DeepMOT loss: exact counts in the hard limit, the softmax scale, gating, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmot import boxes
from deepmot.assign.hungarian import hungarian_batch
from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig
from deepmot.loss.deepmot import DeepMOTLoss, DeepMOTLossConfig, deepmot_terms
from deepmot.loss.smooth_l1 import SmoothL1Loss

trackeval = pytest.importorskip(
    "trackeval", reason="the reference evaluator (dev extra) is the oracle"
)


def exact_matcher(distance: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary A* by SciPy's Hungarian; gated pairs (large value) never match."""
    return hungarian_batch(distance, 0.99, mask)


IMAGE = (400.0, 300.0)


def reference_clear(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """CLEAR MOT counts of a clip by the reference evaluator (TrackEval), IoU threshold 0.5.

    ``frames``: per frame ``(gt_boxes xyxy, gt_ids, track_boxes xyxy, track_ids)``.
    """
    gt_index = {g: i for i, g in enumerate(sorted({int(g) for f in frames for g in f[1]}))}
    tr_index = {t: i for i, t in enumerate(sorted({int(t) for f in frames for t in f[3]}))}
    data = {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(tr_index),
        "num_gt_dets": sum(len(f[1]) for f in frames),
        "num_tracker_dets": sum(len(f[3]) for f in frames),
        "gt_ids": [np.array([gt_index[int(g)] for g in f[1]], dtype=int) for f in frames],
        "tracker_ids": [np.array([tr_index[int(t)] for t in f[3]], dtype=int) for f in frames],
        "similarity_scores": [
            boxes.box_iou(f[0].astype(np.float64), f[2].astype(np.float64)).reshape(
                len(f[0]), len(f[2])
            )
            for f in frames
        ],
    }
    return trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)


def our_clear(frames) -> dict:
    """The same counts by the project's evaluator."""
    from deepmot.metrics import CLEAR, SequenceData

    def rows(index_boxes, index_ids):
        frame_ids = np.concatenate([np.full(len(f[index_ids]), t) for t, f in enumerate(frames)])
        ids = np.concatenate([f[index_ids] for f in frames])
        xyxy = np.concatenate([f[index_boxes].reshape(-1, 4) for f in frames]).astype(np.float64)
        return frame_ids, ids, np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    data = SequenceData.from_rows("clip", len(frames), *rows(0, 1), *rows(2, 3))
    return CLEAR().eval_sequence(data)


def soft_counts(loss_fn: DeepMOTLoss, frames) -> tuple[float, float, float]:
    loss_fn.reset()
    fp = fn = ids = 0.0
    for gt_boxes, gt_ids, track_boxes, track_ids in frames:
        t, g = torch.from_numpy(track_boxes), torch.from_numpy(gt_boxes)
        out = loss_fn(
            boxes.distance_matrix(t, g, *IMAGE), track_ids, gt_ids, iou=boxes.box_iou(t, g)
        )
        fp, fn, ids = fp + float(out.fp), fn + float(out.fn), ids + float(out.ids)
    return fp, fn, ids


@st.composite
def clips(draw):
    """Clips of objects on a coarse grid (no two can be confused), tracked with errors."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_objects = draw(st.integers(1, 6))
    n_frames = draw(st.integers(1, 6))
    cells = rng.permutation(12)[:n_objects]
    anchors = np.stack([(cells % 4) * 100 + 10, (cells // 4) * 100 + 10], axis=1).astype(float)
    track_of = {i: i + 1 for i in range(n_objects)}  # object index -> current track id
    next_id = n_objects + 1
    frames = []
    for _ in range(n_frames):
        present = np.flatnonzero(rng.uniform(size=n_objects) < 0.85)
        anchors += rng.uniform(-3, 3, anchors.shape)
        gt = np.concatenate([anchors[present], anchors[present] + [40, 80]], axis=1).astype(
            np.float32
        )
        gt_ids = present + 100
        tracks, track_ids = [], []
        for row, obj in enumerate(present):
            event = rng.uniform()
            if event < 0.15:  # missed
                continue
            if event < 0.3:  # the tracker starts a new id on this object
                track_of[obj] = next_id
                next_id += 1
            tracks.append(gt[row] + rng.uniform(-2, 2, 4))
            track_ids.append(track_of[obj])
        if len(track_ids) >= 2 and rng.uniform() < 0.3:  # two tracks exchange identities
            track_ids[0], track_ids[1] = track_ids[1], track_ids[0]
        for _ in range(rng.integers(0, 3)):  # false positives in the free band below the grid
            x = rng.uniform(0, 340)
            tracks.append(np.array([x, 305, x + 40, 385]))
            track_ids.append(next_id)
            next_id += 1
        tracks = np.array(tracks, dtype=np.float32).reshape(-1, 4)
        frames.append((gt, gt_ids.astype(np.int64), tracks, np.array(track_ids, dtype=np.int64)))
    return frames


@settings(max_examples=60, deadline=None)
@given(clips())
def test_hard_limit_equals_reference_clear_counts(frames) -> None:
    """Binary Â = A* and a huge softmax scale: FP~, FN~, IDS~ are CLEAR MOT's exact counts."""
    loss_fn = DeepMOTLoss(exact_matcher, scale=1e4)
    fp, fn, ids = soft_counts(loss_fn, frames)
    ref = reference_clear(frames)
    assert (fp, fn, ids) == pytest.approx((ref["CLR_FP"], ref["CLR_FN"], ref["IDSW"]), abs=1e-4)
    ours = our_clear(frames)
    assert (ours["CLR_FP"], ours["CLR_FN"], ours["IDSW"]) == (
        ref["CLR_FP"],
        ref["CLR_FN"],
        ref["IDSW"],
    )


def test_counts_converge_as_temperature_goes_to_zero() -> None:
    """With a soft but correct Â (Sinkhorn), the soft counts near the exact ones as scale grows."""
    rng = np.random.default_rng(0)
    gt = np.array([[10, 10, 50, 90], [110, 10, 150, 90], [210, 10, 250, 90]], np.float32)
    tracks = np.concatenate([gt[:2] + rng.uniform(-2, 2, (2, 4)), [[300, 200, 340, 280]]]).astype(
        np.float32
    )
    frames = [(gt, np.array([1, 2, 3]), tracks, np.array([7, 8, 9]))]
    ref = reference_clear(frames)
    exact = np.array([ref["CLR_FP"], ref["CLR_FN"], ref["IDSW"]], dtype=float)
    assert exact.tolist() == [1, 1, 0]
    errors = []
    for scale in (3.0, 10.0, 30.0, 100.0):
        loss_fn = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.02)), scale=scale)
        errors.append(np.abs(np.array(soft_counts(loss_fn, frames)) - exact).sum())
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.05


def test_softmax_scale_is_what_makes_fp_count() -> None:
    """Without a scale, δ is diluted by M near-zero entries: an unmatched row counts ~1/M FP."""
    n, m = 5, 30
    assignment = torch.zeros(1, n, m)
    assignment[0, 0, 0] = 1.0  # one match, four unmatched tracks
    rows, cols = torch.ones(1, n, dtype=torch.bool), torch.ones(1, m, dtype=torch.bool)
    args = (torch.zeros(1, n, m, dtype=torch.bool), rows, cols)
    previous = (torch.zeros(1, n, m, dtype=torch.bool), torch.zeros(1, m, dtype=torch.bool))
    unscaled, _ = deepmot_terms(
        torch.rand(1, n, m), assignment, *args, *previous, DeepMOTLossConfig(scale=1)
    )
    scaled, _ = deepmot_terms(
        torch.rand(1, n, m), assignment, *args, *previous, DeepMOTLossConfig()
    )
    assert float(scaled.fp) == pytest.approx(4.0, abs=1e-4)
    assert float(scaled.fn) == pytest.approx(29.0, abs=1e-4)
    assert float(unscaled.fp) < 0.5  # 4 unmatched tracks count as less than half a FP
    assert float(unscaled.fn) < 0.3 * 29  # 29 missed objects count as fewer than 9 FN


def test_id_switch_against_memory_and_first_match_is_free() -> None:
    gt = torch.tensor([[0.0, 0, 40, 80], [100, 0, 140, 80]])
    loss_fn = DeepMOTLoss(exact_matcher, scale=1e4)
    d = boxes.distance_matrix(gt, gt, *IMAGE)
    assert float(loss_fn(d, [1, 2], [10, 20]).ids) == 0  # first matches: no switch
    assert float(loss_fn(d, [1, 2], [10, 20]).ids) == 0
    swapped = loss_fn(d, [2, 1], [10, 20])
    assert float(swapped.ids) == pytest.approx(2)
    assert float(swapped.dmota) == pytest.approx(1 - 2 * 2 / 2)  # γ = 2
    # object 10 was last with track 2; track 2 is gone and track 3 takes over: a switch
    assert float(loss_fn(d[:1, :1], [3], [10]).ids) == pytest.approx(1)
    loss_fn.reset()
    assert float(loss_fn(d, [2, 1], [10, 20]).ids) == 0


def test_gating_turns_far_matches_into_fp_and_fn() -> None:
    gt = torch.tensor([[0.0, 0, 40, 80]])
    far = torch.tensor([[60.0, 0, 100, 80]])  # IoU 0, D ≈ 0.58
    d = boxes.distance_matrix(far, gt, *IMAGE)
    ungated = DeepMOTLoss(exact_matcher, gate="none", scale=1e4)(d, [1], [1])
    gated = DeepMOTLoss(exact_matcher, scale=1e4)(d, [1], [1])
    assert (float(ungated.fp), float(ungated.fn)) == (0.0, 0.0)  # silently a match
    assert (float(gated.fp), float(gated.fn)) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("gate", ["hard", "soft"])
def test_degenerate_frames_are_finite_with_finite_gradients(gate: str) -> None:
    loss_fn = DeepMOTLoss(Sinkhorn(), gate=gate)
    tracks = torch.tensor([[0.0, 0, 40, 80], [200, 100, 240, 180]], requires_grad=True)
    cases = [
        (tracks, torch.zeros(0, 4), [1, 2], []),  # M = 0
        (tracks[:0], torch.tensor([[0.0, 0, 40, 80]]), [], [5]),  # N = 0
        (tracks, torch.tensor([[300.0, 0, 340, 80]]), [1, 2], [5]),  # no true positive
        (tracks, torch.tensor([[1.0, 1, 1, 1]]), [1, 2], [5]),  # zero-area object
    ]
    for t, g, tid, gid in cases:
        loss_fn.reset()
        out = loss_fn(boxes.distance_matrix(t, g, *IMAGE), tid, gid)
        for value in (out.loss, out.dmota, out.dmotp, out.fp, out.fn, out.ids):
            assert torch.isfinite(value)
        (grad,) = torch.autograd.grad(out.loss, tracks, allow_unused=True)
        assert grad is None or torch.isfinite(grad).all()
    m0 = loss_fn(boxes.distance_matrix(tracks, torch.zeros(0, 4), *IMAGE), [1, 2], [])
    assert float(m0.fp.detach()) == pytest.approx(2.0)
    assert float(m0.dmota.detach()) == pytest.approx(-1.0)


def test_gradients_move_a_track_towards_its_object() -> None:
    """A track beside its object: the loss gradient points the box towards it."""
    gt = torch.tensor([[100.0, 100, 140, 180]])
    track = torch.tensor([[110.0, 105, 150, 185]], requires_grad=True)
    out = DeepMOTLoss(Sinkhorn())(boxes.distance_matrix(track, gt, *IMAGE), [1], [1])
    (grad,) = torch.autograd.grad(out.loss, track)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    step = track - 10 * grad / grad.norm()
    assert boxes.box_iou(step, gt) > boxes.box_iou(track, gt)


def test_gradcheck_of_the_soft_terms() -> None:
    torch.manual_seed(0)
    n, m = 3, 4
    distance = torch.rand(1, n, m, dtype=torch.float64, requires_grad=True)
    assignment = torch.rand(1, n, m, dtype=torch.float64)
    assignment[0, 0, 1] = assignment[0, 2, 3] = 0.95  # clear winners keep B^TP fixed
    assignment.requires_grad_(True)
    rows, cols = torch.ones(1, n, dtype=torch.bool), torch.ones(1, m, dtype=torch.bool)
    gated = torch.zeros(1, n, m, dtype=torch.bool)
    prev = torch.zeros(1, n, m, dtype=torch.bool)
    prev[0, 0, 1] = True
    has_prev = torch.tensor([[False, True, False, False]])
    config = DeepMOTLossConfig(scale=5.0)

    def loss(d, a):
        return deepmot_terms(d, a, gated, rows, cols, prev, has_prev, config)[0].loss

    assert torch.autograd.gradcheck(loss, (distance, assignment))
    d2 = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: Sinkhorn(SinkhornConfig(iterations=20))(d), (d2,))


def test_batch_equals_frames_one_by_one() -> None:
    rng = np.random.default_rng(3)
    loss_fn = DeepMOTLoss(Sinkhorn())
    distances, tids, gids = [], [], []
    for n, m in [(3, 4), (0, 2), (5, 1), (2, 2)]:
        distances.append(torch.from_numpy(rng.uniform(0, 0.6, (n, m))).float())
        tids.append(np.arange(n) + 1)
        gids.append(np.arange(m) + 1)
    memories = [{1: 1}, {}, {1: 2}, {2: 2}]
    batched, new_memories = loss_fn.forward_batch(distances, tids, gids, memories)
    for i in range(4):
        loss_fn.memory = dict(memories[i])
        single = loss_fn(distances[i], tids[i], gids[i])
        torch.testing.assert_close(batched.loss[i], single.loss)
        torch.testing.assert_close(batched.ids[i], single.ids)
        assert new_memories[i] == loss_fn.memory


def test_bad_arguments() -> None:
    loss_fn = DeepMOTLoss(Sinkhorn())
    d = torch.rand(2, 3)
    with pytest.raises(ValueError, match="track_ids must hold 2 ids"):
        loss_fn(d, [1], [1, 2, 3])
    with pytest.raises(ValueError, match="gt_ids holds an id twice"):
        loss_fn(d, [1, 2], [1, 1, 3])
    with pytest.raises(ValueError, match="gate must be"):
        DeepMOTLossConfig(gate="maybe")


def test_smooth_l1_pairs_by_id_and_reaches_zero() -> None:
    gt = torch.tensor([[0.0, 0, 40, 80], [100, 0, 140, 80]])
    pred = torch.tensor(
        [[100.0, 0, 140, 80], [5, 5, 45, 85], [300, 0, 340, 80]], requires_grad=True
    )
    loss_fn = SmoothL1Loss()
    loss = loss_fn(pred, gt, [2, 1, 9], [1, 2])  # third track has no object: ignored
    assert float(loss.detach()) > 0
    loss.backward()
    assert pred.grad[2].abs().sum() == 0 and pred.grad[1].abs().sum() > 0
    assert float(loss_fn(gt, gt, [1, 2], [1, 2])) == 0.0
    assert float(loss_fn(pred, gt, [7, 8, 9], [1, 2]).detach()) == 0.0


def _mot17_sequences(mot_root):
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import find_sequences

    return [Sequence.from_dir(p) for p in find_sequences(mot_root) if p.name.startswith("MOT17")]


def _mean_terms(loss_fn: DeepMOTLoss, frames, errors, seed: int = 1):
    """Mean loss and dMOTA over ``frames`` (from ``sample_frames``) tracked with fixed errors."""
    from deepmot.data.samplers import corrupt_tracks

    rng = np.random.default_rng(seed)
    distances, tids, gids, memories = [], [], [], []
    for seq, _, now, memory in frames:
        size = (seq.im_width, seq.im_height)
        tracks, track_ids = corrupt_tracks(now.boxes, now.ids, rng, errors, size)
        distances.append(
            boxes.distance_matrix(torch.from_numpy(tracks), torch.from_numpy(now.boxes), *size)
        )
        tids.append(track_ids)
        gids.append(now.ids)
        memories.append(memory)
    out, _ = loss_fn.forward_batch(distances, tids, gids, memories)
    return float(out.loss.mean()), float(out.dmota.mean())


@pytest.mark.parametrize(
    "field",
    ["noise", "drop", "swap", "false_positives"],
)
def test_loss_rises_and_dmota_falls_with_tracker_errors(mot_root, field: str) -> None:
    from deepmot.data.samplers import TrackErrors, sample_frames

    levels = {"noise": [0.0, 0.1, 0.2, 0.4], "drop": [0.0, 0.2, 0.4, 0.8]}
    levels |= {"swap": [0.0, 0.2, 0.5, 1.0], "false_positives": [0.0, 2.0, 5.0, 10.0]}
    frames = sample_frames(_mot17_sequences(mot_root), 60, np.random.default_rng(0))
    loss_fn = DeepMOTLoss(Sinkhorn())
    results = [
        _mean_terms(loss_fn, frames, TrackErrors(**{"noise": 0.02, field: level}))
        for level in levels[field]
    ]
    losses, dmotas = zip(*results, strict=True)
    assert all(a < b for a, b in zip(losses, losses[1:], strict=False)), losses
    assert all(a > b for a, b in zip(dmotas, dmotas[1:], strict=False)), dmotas


def test_dmota_follows_true_mota_on_real_frame_pairs(mot_root) -> None:
    """Spearman(dMOTA, true per-frame MOTA) over 300 random MOT17 frame pairs.

    With this matcher and the default gate, seeds 7, 8 and 9 of 300 pairs gave 0.944, 0.931 and
    0.959 (benchmarks/bench_loss_correlation.py: 0.940 on 1,000 pairs, 0.949 with the DHN); 0.9
    leaves room for the sampling noise of 300 pairs while failing clearly for the ungated loss
    (0.51 to 0.61).
    """
    from scipy.stats import spearmanr

    from deepmot.data.samplers import sample_corrupted_pairs
    from deepmot.metrics.frame_pair import clear_frame_pair

    pairs = sample_corrupted_pairs(_mot17_sequences(mot_root), 300, np.random.default_rng(7))
    mota = [
        clear_frame_pair(p.gt.boxes, p.gt.ids, p.tracks, p.track_ids, p.memory).mota for p in pairs
    ]

    def dmota(loss_fn: DeepMOTLoss) -> list[float]:
        distances = [
            boxes.distance_matrix(
                torch.from_numpy(p.tracks),
                torch.from_numpy(p.gt.boxes),
                p.sequence.im_width,
                p.sequence.im_height,
            )
            for p in pairs
        ]
        out, _ = loss_fn.forward_batch(
            distances,
            [p.track_ids for p in pairs],
            [p.gt.ids for p in pairs],
            [p.memory for p in pairs],
        )
        return out.dmota.tolist()

    assert spearmanr(dmota(DeepMOTLoss(Sinkhorn())), mota)[0] > 0.9
    assert spearmanr(dmota(DeepMOTLoss(Sinkhorn(), gate="none")), mota)[0] < 0.8


def test_default_matcher_is_the_shipped_dhn() -> None:
    from deepmot.assign.dhn import DHN

    loss_fn = DeepMOTLoss()
    assert isinstance(loss_fn.matcher, DHN)
    assert not any(p.requires_grad for p in loss_fn.matcher.parameters())  # frozen
    gt = torch.tensor([[10.0, 10, 50, 90], [100, 10, 140, 90]])
    tracks = (gt + torch.tensor([[3.0, 0, 3, 0], [0, 2, 0, 2]])).requires_grad_(True)
    out = loss_fn(boxes.distance_matrix(tracks, gt, *IMAGE), [1, 2], [1, 2])
    assert (
        float(out.fp.detach()) < 0.1
        and float(out.fn.detach()) < 0.1
        and int(out.true_positives) == 2
    )
    (grad,) = torch.autograd.grad(out.loss, tracks)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_bipartite_sk_pulls_a_track_just_beyond_the_gate() -> None:
    """A track that misses its object (IoU 0.42, so D > the gate 0.25): the soft gate blends
    its pair towards 2.0, where the shipped ``bipartite_sk``'s ramp (``gated_slope``) keeps Â
    just under δ, and the gradient moves the box towards its object; the same weights without
    the ramp pass no gradient at all (saturated softmaxes)."""
    from dataclasses import replace

    from deepmot.assign.dhn import build_dhn, create_dhn

    gt = torch.tensor([[100.0, 100, 140, 180], [300.0, 100, 340, 180]])
    track = torch.tensor([[112.0, 112, 152, 192], [300, 102, 340, 182]], requires_grad=True)
    assert 0.4 < float(boxes.box_iou(track[:1].detach(), gt[:1])) < 0.45
    shipped = create_dhn("bipartite_sk", pretrained=True)
    no_ramp = build_dhn(replace(shipped.config, gated_slope=0.0))
    no_ramp.load_state_dict(shipped.state_dict())
    grads = []
    for matcher in (shipped, no_ramp):
        loss_fn = DeepMOTLoss(matcher)
        loss_fn.memory = {1: 1, 2: 2}  # tracks started from the ground truth at t - 1
        distance = boxes.distance_matrix(track, gt, *IMAGE)
        assert float(distance[0, 0].detach()) > loss_fn.config.gate_distance
        (grad,) = torch.autograd.grad(loss_fn(distance, [1, 2], [1, 2]).loss, track)
        grads.append(grad[0])
    towards = gt[0] - track[0].detach()
    assert float((-grads[0] * towards).sum()) > 0 and float(grads[0].norm()) > 1e-6
    assert float(grads[1].norm()) == 0.0

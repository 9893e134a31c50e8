"""The Kalman-filter motion baseline: hand-computed filter steps, then its behaviour as a
predictor (convergence on a constant-velocity path, extrapolation while unverified, batching,
revival, degenerate boxes), then properties of the box conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmot.trackers.kalman import (
    KalmanBoxFilter,
    KalmanConfig,
    KalmanPredictor,
    xyah_to_xyxy,
    xyxy_to_xyah,
)
from deepmot.trackers.predictor import Predictor, TrackBatch

# one box 50 wide, 100 high: centre (35, 70), aspect 0.5
BOX = np.array([10.0, 20.0, 60.0, 120.0])
XYAH = np.array([35.0, 70.0, 0.5, 100.0])


# --------------------------------------------------------------------------- the filter by hand


def test_xyxy_to_xyah_by_hand() -> None:
    np.testing.assert_allclose(xyxy_to_xyah(BOX[None]), XYAH[None])
    np.testing.assert_allclose(xyah_to_xyxy(XYAH[None]), BOX[None])


def test_initiate_by_hand() -> None:
    mean, cov = KalmanBoxFilter().initiate(XYAH[None])
    np.testing.assert_array_equal(mean, [[35, 70, 0.5, 100, 0, 0, 0, 0]])
    # position std 2 * (1/20) * 100 = 10 -> variance 100; velocity std 10 * (1/160) * 100 = 6.25
    # -> 39.0625; aspect std 1e-2 and its velocity's 1e-5 are not scaled by the height
    expected = [100.0, 100.0, 1e-4, 100.0, 39.0625, 39.0625, 1e-10, 39.0625]
    np.testing.assert_allclose(np.diag(cov[0]), expected, rtol=1e-12)
    assert np.count_nonzero(cov[0] - np.diag(np.diag(cov[0]))) == 0


def test_predict_by_hand() -> None:
    kf = KalmanBoxFilter()
    _, cov = kf.initiate(XYAH[None])
    mean = np.array([[35.0, 70.0, 0.5, 100.0, 3.0, -2.0, 0.0, 1.0]])
    new_mean, new_cov = kf.predict(mean, cov)
    # the position moves by the velocity; the height used for the noise is the old one (100)
    np.testing.assert_allclose(new_mean, [[38, 68, 0.5, 101, 3, -2, 0, 1]])
    c = new_cov[0]
    # var(cx) = var(cx) + var(vcx) + (100 / 20)^2 = 100 + 39.0625 + 25
    assert c[0, 0] == pytest.approx(164.0625)
    assert c[3, 3] == pytest.approx(164.0625)
    # cov(cx, vcx) = var(vcx); var(vcx) grows by (100 / 160)^2 = 0.390625
    assert c[0, 4] == pytest.approx(39.0625)
    assert c[4, 0] == pytest.approx(39.0625)
    assert c[4, 4] == pytest.approx(39.453125)
    # aspect: 1e-4 + 1e-10 + (1e-2)^2
    assert c[2, 2] == pytest.approx(2e-4 + 1e-10, rel=1e-12)
    # coordinates stay uncoupled
    assert c[0, 1] == 0.0
    assert c[0, 5] == 0.0


def test_update_by_hand_in_one_dimension() -> None:
    kf = KalmanBoxFilter()
    _, cov = kf.initiate(XYAH[None])
    mean, cov = kf.predict(np.array([[35.0, 70.0, 0.5, 100.0, 3.0, -2.0, 0.0, 1.0]]), cov)
    # measure cx 10 px right of the prediction, everything else as predicted
    z = mean[:, :4].copy()
    z[0, 0] += 10.0
    new_mean, new_cov = kf.update(mean, cov, z)
    # the (cx, vcx) block on its own: P = [[164.0625, 39.0625], [39.0625, 39.453125]];
    # measurement noise from the predicted height 101: (101 / 20)^2 = 25.5025
    s = 164.0625 + 25.5025
    assert new_mean[0, 0] == pytest.approx(38.0 + 10.0 * 164.0625 / s)
    assert new_mean[0, 4] == pytest.approx(3.0 + 10.0 * 39.0625 / s)
    assert new_cov[0, 0, 0] == pytest.approx(164.0625 - 164.0625**2 / s)
    assert new_cov[0, 0, 4] == pytest.approx(39.0625 - 164.0625 * 39.0625 / s)
    assert new_cov[0, 4, 4] == pytest.approx(39.453125 - 39.0625**2 / s)
    # the other coordinates had zero innovation: their means do not move
    np.testing.assert_allclose(new_mean[0, [1, 2, 3, 5, 6, 7]], mean[0, [1, 2, 3, 5, 6, 7]])
    # and their variance shrinks the same way (cy has the same numbers as cx)
    assert new_cov[0, 1, 1] == pytest.approx(new_cov[0, 0, 0])
    # the aspect's measurement noise is fixed: (1e-1)^2, against a predicted 2e-4 + 1e-10
    p_a = 2e-4 + 1e-10
    assert new_cov[0, 2, 2] == pytest.approx(p_a - p_a**2 / (p_a + 1e-2), rel=1e-9)


def test_filter_rejects_bad_shapes() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(np.stack([XYAH, XYAH]))
    with pytest.raises(ValueError, match="measurements"):
        kf.initiate(XYAH)
    with pytest.raises(ValueError, match="cov"):
        kf.predict(mean, cov[:1])
    with pytest.raises(ValueError, match="2 states"):
        kf.update(mean, cov, XYAH[None])


# --------------------------------------------------------------------------- config


def test_config_round_trip_and_checks() -> None:
    config = KalmanConfig(std_weight_position=0.1, hold_height_unverified=False)
    assert KalmanConfig.from_dict(config.to_dict()) == config
    assert KalmanConfig().std_weight_velocity == 1 / 160
    with pytest.raises(ValueError, match="std_weight_position"):
        KalmanConfig(std_weight_position=0.0)
    with pytest.raises(ValueError, match="dt"):
        KalmanConfig(dt=float("nan"))
    with pytest.raises(ValueError, match="min_size"):
        KalmanConfig(min_size=-1.0)
    with pytest.raises(TypeError, match="dt"):
        KalmanConfig(dt="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown.*std_weight_position"):
        KalmanConfig.from_dict({"std_weight": 0.1})


# --------------------------------------------------------------------------- the predictor


def _batch(
    histories: list[np.ndarray], extras: list[dict], verified: list[bool] | None = None
) -> TrackBatch:
    return TrackBatch.from_histories(
        [torch.tensor(np.atleast_2d(h), dtype=torch.float32) for h in histories],
        2,
        verified=verified,
        extras=extras,
    )


def _track(
    predictor: KalmanPredictor, truth: list[np.ndarray], extra: dict, frames: int
) -> list[np.ndarray]:
    """Feed ``truth`` as the verified boxes of one track (a detection verified and replaced
    each prediction); returns the predictions for frames 1..frames."""
    out = []
    for t in range(1, frames + 1):
        history = np.stack(truth[max(0, t - 2) : t])
        boxes = predictor.predict(None, _batch([history], [extra]), None, None).boxes
        out.append(boxes[0].numpy().astype(np.float64))
    return out


def test_predictor_satisfies_contract() -> None:
    p = KalmanPredictor()
    assert isinstance(p, Predictor)
    assert p.needs_images is False
    assert p.history_len == 2


def test_constant_velocity_converges_then_extrapolates_unverified() -> None:
    velocity = np.array([4.0, 2.0, 4.0, 2.0])
    truth = [np.array([100.0, 50.0, 140.0, 150.0]) + k * velocity for k in range(60)]
    p = KalmanPredictor()
    extra: dict = {}
    predictions = _track(p, truth, extra, 30)
    errors = [np.abs(pred - truth[t + 1]).max() for t, pred in enumerate(predictions)]
    # a new track does not know its velocity: the first prediction stays put
    np.testing.assert_allclose(predictions[0], truth[0], atol=1e-4)
    assert errors[0] == pytest.approx(4.0, abs=1e-4)
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.1

    # now no detection verifies it: its last box is its own prediction, and it moves on at the
    # learned velocity, size held
    last = predictions[-1]
    previous = truth[29]
    for _ in range(10):
        batch = _batch([np.stack([previous, last])], [extra], verified=[False])
        box = p.predict(None, batch, None, None).boxes[0].numpy().astype(np.float64)
        np.testing.assert_allclose(box - last, velocity, atol=0.1)
        np.testing.assert_allclose(box[2:] - box[:2], [40.0, 100.0], atol=1e-3)
        previous, last = last, box


def test_unverified_track_ignores_its_last_box() -> None:
    """Unverified, the last box is the filter's own prediction (or a clipped copy of it): the
    filter does not treat it as a measurement."""
    velocity = np.array([3.0, 0.0, 3.0, 0.0])
    truth = [np.array([0.0, 0.0, 30.0, 60.0]) + k * velocity for k in range(10)]
    p = KalmanPredictor()
    a: dict = {}
    b: dict = {}
    _track(p, truth, a, 8)
    _track(p, truth, b, 8)
    far = truth[7] + 50.0
    out_a = p.predict(None, _batch([np.stack([truth[6], truth[7]])], [a], [False]), None, None)
    out_b = p.predict(None, _batch([np.stack([truth[6], far])], [b], [False]), None, None)
    torch.testing.assert_close(out_a.boxes, out_b.boxes)


def test_hold_height_unverified() -> None:
    """A shrinking box keeps shrinking while verified updates arrive; unverified, its height is
    held (ByteTrack) unless the config says otherwise."""
    step = np.array([0.0, 1.0, 0.0, -1.0])  # height shrinks by 2 px a frame
    truth = [np.array([0.0, 0.0, 50.0, 200.0]) + k * step for k in range(30)]
    heights = {}
    for hold in (True, False):
        p = KalmanPredictor(KalmanConfig(hold_height_unverified=hold))
        extra: dict = {}
        last = _track(p, truth, extra, 25)[-1]
        batch = _batch([np.stack([truth[24], last])], [extra], verified=[False])
        box = p.predict(None, batch, None, None).boxes[0].numpy()
        heights[hold] = (box[3] - box[1]) - (last[3] - last[1])
    assert heights[True] == pytest.approx(0.0, abs=1e-3)
    assert heights[False] == pytest.approx(-2.0, abs=0.2)


def test_batch_matches_tracks_alone() -> None:
    rng = np.random.default_rng(0)
    count, frames = 4, 12
    starts = rng.uniform(0, 500, (count, 2))
    sizes = rng.uniform(10, 150, (count, 2))
    speeds = rng.normal(0, 3, (count, 4))
    truth = [
        [
            np.concatenate([starts[i], starts[i] + sizes[i]]) + k * speeds[i] + rng.normal(0, 1, 4)
            for k in range(frames + 1)
        ]
        for i in range(count)
    ]
    # frame 6 unverified for tracks 1 and 3
    verified = [[not (t == 6 and i % 2) for i in range(count)] for t in range(frames + 1)]
    p = KalmanPredictor()
    batch_extras: list[dict] = [{} for _ in range(count)]
    alone_extras: list[dict] = [{} for _ in range(count)]
    for t in range(1, frames + 1):
        histories = [np.stack(truth[i][max(0, t - 2) : t]) for i in range(count)]
        together = p.predict(None, _batch(histories, batch_extras, verified[t]), None, None)
        for i in range(count):
            one = _batch([histories[i]], [alone_extras[i]], [verified[t][i]])
            alone = p.predict(None, one, None, None)
            torch.testing.assert_close(together.boxes[i : i + 1], alone.boxes)
        np.testing.assert_allclose(
            batch_extras[1]["kalman"][1], alone_extras[1]["kalman"][1], rtol=1e-12
        )


def test_empty_batch() -> None:
    batch = TrackBatch.from_histories([], 2)
    out = KalmanPredictor().predict(None, batch, None, None)
    assert out.boxes.shape == (0, 4)
    assert out.scores is None


def test_history_too_short_is_refused() -> None:
    batch = TrackBatch.from_histories([torch.tensor(BOX[None], dtype=torch.float32)], 1)
    with pytest.raises(ValueError, match="at least 2"):
        KalmanPredictor().predict(None, batch, None, None)


def test_revived_track_is_reinitiated() -> None:
    velocity = np.array([5.0, 0.0, 5.0, 0.0])
    truth = [BOX + k * velocity for k in range(12)]
    p = KalmanPredictor()
    extra: dict = {}
    _track(p, truth, extra, 10)
    assert extra["kalman"][0][4] > 4.0  # it learned the velocity
    # revived: the management restarts the history at the detection
    revived = np.array([300.0, 300.0, 340.0, 380.0])
    out = p.predict(None, _batch([revived], [extra]), None, None)
    np.testing.assert_allclose(out.boxes[0].numpy(), revived, atol=1e-4)
    mean, cov = extra["kalman"]
    np.testing.assert_array_equal(mean[4:], 0.0)
    assert cov.shape == (8, 8)


def test_degenerate_boxes_stay_finite() -> None:
    p = KalmanPredictor()
    extras: list[dict] = [{}, {}]
    flat = np.array([10.0, 10.0, 30.0, 10.0])  # zero height
    point = np.array([5.0, 5.0, 5.0, 5.0])  # zero width and height
    for _ in range(3):
        out = p.predict(None, _batch([np.stack([flat, flat]), point], extras), None, None)
        boxes = out.boxes.numpy()
        assert np.isfinite(boxes).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 1.0 - 1e-5).all()
        for extra in extras:
            mean, cov = extra["kalman"]
            assert np.isfinite(mean).all() and np.isfinite(cov).all()


def test_shrinking_box_never_loses_its_area() -> None:
    """Extrapolated unverified, a shrinking box would reach a negative height: sizes are
    floored at ``min_size``."""
    step = np.array([0.0, 5.0, 0.0, -5.0])  # height shrinks by 10 px a frame
    truth = [np.array([0.0, 0.0, 50.0, 100.0]) + k * step for k in range(8)]
    p = KalmanPredictor(KalmanConfig(hold_height_unverified=False, min_size=2.0))
    extra: dict = {}
    previous, last = truth[6], _track(p, truth, extra, 7)[-1]
    for _ in range(15):
        batch = _batch([np.stack([previous, last])], [extra], verified=[False])
        box = p.predict(None, batch, None, None).boxes[0].numpy().astype(np.float64)
        assert np.isfinite(box).all()
        assert (box[2:] - box[:2] >= 2.0 - 1e-4).all()
        previous, last = last, box
    assert last[3] - last[1] == pytest.approx(2.0, abs=1e-4)


def test_verified_track_measures_its_detection_not_the_kept_box() -> None:
    """The update uses the detection the management recorded in ``extras["detection"]``: the
    same state as the filter updated by hand with that detection, not with the kept box."""
    kf = KalmanBoxFilter()
    detection = BOX + np.array([12.0, 0.0, 12.0, 0.0])
    kept = BOX + np.array([3.0, 0.0, 3.0, 0.0])  # e.g. the unrefined prediction
    p = KalmanPredictor()
    extra: dict = {}
    p.predict(None, _batch([BOX], [extra]), None, None)  # initiated at BOX, predicted
    mean, cov = extra["kalman"]
    extra["detection"] = torch.tensor(detection, dtype=torch.float32)
    out = p.predict(None, _batch([np.stack([BOX, kept])], [extra], [True]), None, None)
    expected, _ = kf.predict(*kf.update(mean[None], cov[None], xyxy_to_xyah(detection[None])))
    np.testing.assert_allclose(out.boxes[0].numpy(), xyah_to_xyxy(expected[:, :4])[0], atol=1e-4)
    # an unverified track ignores a stale detection
    extra["detection"] = torch.tensor(detection + 50, dtype=torch.float32)
    mean, cov = extra["kalman"]
    p.predict(None, _batch([np.stack([kept, kept])], [extra], [False]), None, None)
    np.testing.assert_allclose(extra["kalman"][0], kf.predict(mean[None], cov[None])[0][0])


@pytest.mark.parametrize("measure_detection", [True, False])
def test_fast_walker_keeps_its_id_only_when_the_detection_is_measured(measure_detection) -> None:
    """A 30 x 80 box walking 12 px a frame: consecutive boxes overlap by IoU 0.43, enough to
    verify a track (0.3) but not to refine it (0.6). Measuring the kept box, which is then the
    filter's own prediction, the filter never learns the velocity and loses the walker; measuring
    the detection, one id follows it to the end."""
    from deepmot.trackers import create_tracker

    tracker = create_tracker("kalman", measure_detection=measure_detection)
    ids, last = set(), None
    for t in range(30):
        det = np.array([[100.0 + 12 * t, 100.0, 130.0 + 12 * t, 180.0, 1.0]], np.float32)
        out = tracker.update(det)
        ids |= set(out[:, 4].astype(int).tolist())
        last = out
    if measure_detection:
        assert ids == {1}
        np.testing.assert_allclose(last[0, :4], det[0, :4], atol=1.0)
    else:
        assert len(ids) > 1


def test_output_follows_history_dtype_and_device() -> None:
    out = KalmanPredictor().predict(None, _batch([BOX], [{}]), None, None)
    assert out.boxes.dtype == torch.float32
    assert out.boxes.device == torch.device("cpu")
    assert not out.boxes.requires_grad


# --------------------------------------------------------------------------- properties

coordinate = st.floats(-1000.0, 1000.0, allow_nan=False)
size = st.floats(1.0, 1000.0, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(x=coordinate, y=coordinate, w=size, h=size)
def test_xyxy_xyah_round_trip(x: float, y: float, w: float, h: float) -> None:
    box = np.array([[x, y, x + w, y + h]])
    xyah = xyxy_to_xyah(box)
    assert xyah[0, 2] == pytest.approx(w / h)
    np.testing.assert_allclose(xyah_to_xyxy(xyah), box, rtol=0, atol=1e-9)
    np.testing.assert_allclose(xyxy_to_xyah(xyah_to_xyxy(xyah)), xyah, rtol=1e-12, atol=1e-9)

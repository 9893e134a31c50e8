"""DHN variants: registry, shapes and range, padding invariance, gradients, weights I/O."""

from __future__ import annotations

import json

import pytest
import torch

from deepmot.assign.dhn import (
    SHIPPED_CONFIG,
    DHNConfig,
    create_dhn,
    list_dhns,
    load_dhn,
    save_dhn,
)

SMALL = {"hidden": 8, "num_layers": 1, "fc": (8,)}
FLATTENS = ("matrix", "lines")


def _padded(ds: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(d.shape[0] for d in ds)
    m = max(d.shape[1] for d in ds)
    batch = torch.full((len(ds), n, m), 0.37, dtype=ds[0].dtype)  # junk in the padding
    mask = torch.zeros(len(ds), n, m, dtype=torch.bool)
    for i, d in enumerate(ds):
        batch[i, : d.shape[0], : d.shape[1]] = d
        mask[i, : d.shape[0], : d.shape[1]] = True
    return batch, mask


def test_registry_lists_the_paper_variants_and_bipartite():
    assert list_dhns() == [
        "seq_gru",
        "seq_lstm",
        "paral_gru",
        "paral_lstm",
        "conv1d",
        "bipartite_mp",
        "bipartite_sk",
    ]


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="seq_gru, seq_lstm, paral_gru, paral_lstm, conv1d"):
        create_dhn("transformer")
    with pytest.raises(ValueError, match="unknown DHN settings"):
        create_dhn("seq_gru", hiden=3)
    with pytest.raises(ValueError, match="flatten"):
        create_dhn("seq_gru", flatten="diagonal")


def test_paper_defaults():
    model = create_dhn("seq_gru")
    c = model.config
    assert (c.arch, c.cell, c.hidden, c.num_layers, c.fc, c.flatten) == (
        "seq",
        "gru",
        256,
        2,
        (256, 64),
        "matrix",
    )
    # three FC layers 512-256-64-1 after the 2h = 512 features
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 64), (64, 1)]
    conv = create_dhn("conv1d")
    assert (conv.enc1.conv.in_channels, conv.enc1.conv.out_channels) == (1, 24)
    assert conv.enc1.conv.kernel_size == (15,) and conv.enc2.conv.out_channels == 48
    assert (conv.dec1.conv.in_channels, conv.dec1.conv.out_channels) == (96, 48)
    assert (conv.dec2.conv.in_channels, conv.dec2.conv.out_channels) == (72, 24)


@pytest.mark.parametrize("flatten", FLATTENS)
@pytest.mark.parametrize("name", list_dhns())
def test_shape_and_range(name, flatten):
    torch.manual_seed(0)
    model = create_dhn(name, flatten=flatten, extra_channels=True, **SMALL)
    d = torch.rand(3, 4, 6)
    out = model(d)
    assert out.shape == (3, 4, 6)
    assert ((out >= 0) & (out <= 1)).all()
    single = model(d[0])
    assert single.shape == (4, 6)
    assert model(torch.rand(0, 5)).shape == (0, 5)


@pytest.mark.parametrize("flatten", FLATTENS)
@pytest.mark.parametrize("name", list_dhns())
def test_padding_never_changes_a_result(name, flatten):
    torch.manual_seed(1)
    model = create_dhn(name, flatten=flatten, extra_channels=True, **SMALL).eval()
    ds = [torch.rand(3, 5), torch.rand(6, 2), torch.rand(1, 1), torch.rand(4, 4)]
    batch, mask = _padded(ds)
    out = model(batch, mask)
    for i, d in enumerate(ds):
        alone = model(d)
        torch.testing.assert_close(out[i, : d.shape[0], : d.shape[1]], alone, atol=1e-5, rtol=0)
    assert (out[~mask] == 0).all()


def test_rounds_and_lstm_padding():
    torch.manual_seed(2)
    model = create_dhn("seq_lstm", flatten="lines", rounds=2, **SMALL)
    ds = [torch.rand(2, 7), torch.rand(5, 3)]
    batch, mask = _padded(ds)
    out = model(batch, mask)
    for i, d in enumerate(ds):
        torch.testing.assert_close(out[i, : d.shape[0], : d.shape[1]], model(d), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list_dhns())
def test_gradient_flows_to_d(name):
    torch.manual_seed(3)
    model = create_dhn(name, flatten="lines", extra_channels=True, **SMALL)
    d = torch.rand(2, 3, 4, requires_grad=True)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2:, :] = False
    out = model(d, mask)
    (out * torch.rand_like(out)).sum().backward()
    assert d.grad is not None and torch.isfinite(d.grad).all()
    assert d.grad[mask].abs().sum() > 0
    assert (d.grad[~mask] == 0).all()  # padding does not influence the output


def test_mask_shape_is_checked():
    model = create_dhn("seq_gru", **SMALL)
    with pytest.raises(ValueError, match="mask"):
        model(torch.rand(2, 3, 3), torch.ones(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, N, M\)"):
        model(torch.rand(3))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(4)
    model = create_dhn("paral_gru", flatten="lines", **SMALL).eval()
    path = tmp_path / "dhn_test.safetensors"
    save_dhn(model, path, {"note": "x"})
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["note"] == "x" and card["config"]["arch"] == "paral"
    loaded = load_dhn(path)
    d = torch.rand(4, 5)
    torch.testing.assert_close(loaded(d), model(d), atol=0, rtol=0)
    assert DHNConfig.from_dict(model.config.to_dict()) == model.config


def test_pretrained_seq_gru_loads_offline():
    model = create_dhn("seq_gru", pretrained=True)
    assert not model.training
    assert model.config == SHIPPED_CONFIG
    # an easy case: a clear diagonal
    d = torch.tensor([[0.05, 0.9, 0.8], [0.85, 0.1, 0.9], [0.9, 0.8, 0.08]])
    a = model(d)
    assert (a.argmax(1) == torch.arange(3)).all() and (a.diagonal() > 0.5).all()
    with pytest.raises(ValueError, match="overrides"):
        create_dhn("seq_gru", pretrained=True, hidden=3)
    with pytest.raises(ValueError, match="no shipped weights"):
        create_dhn("conv1d", pretrained=True)


def test_mask_must_be_top_left_blocks():
    model = create_dhn("seq_gru", **SMALL)
    mask = torch.ones(1, 3, 3, dtype=torch.bool)
    mask[0, 0, 0] = False
    with pytest.raises(ValueError, match="top-left"):
        model(torch.rand(1, 3, 3), mask)


# ---------------------------------------------------------------- the bipartite variant

EQUIVARIANT = [n for n in list_dhns() if create_dhn(n, **SMALL).permutation_equivariant]


def _permuted(model, d: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Â(D)[p][:, q], Â(D[p][:, q]))`` for random row/column permutations p, q."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randperm(d.shape[0], generator=g)
    q = torch.randperm(d.shape[1], generator=g)
    with torch.no_grad():
        return model(d)[p][:, q], model(d[p][:, q])


def test_bipartite_claims_equivariance_and_the_rnns_do_not():
    assert EQUIVARIANT == ["bipartite_mp", "bipartite_sk"]


@pytest.mark.parametrize("name", EQUIVARIANT)
def test_permuting_rows_and_columns_permutes_the_output(name):
    torch.manual_seed(5)
    model = create_dhn(name).eval()
    for seed, (n, m) in enumerate([(7, 9), (12, 3), (1, 6), (5, 1)]):
        d = torch.rand(n, m)
        d[d > 0.7] = 2.0  # ties, as in the threshold augmentation
        expected, got = _permuted(model, d, seed)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_equivariance_check_can_fail():
    # the same check on a row-sequential net: it reads rows in order, so a permutation of the
    # columns changes its output (the test above is not vacuous)
    torch.manual_seed(6)
    model = create_dhn("seq_gru", flatten="lines", **SMALL).eval()
    expected, got = _permuted(model, torch.rand(6, 8), 0)
    assert (got - expected).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["bipartite_mp", "bipartite_sk"])
def test_bipartite_on_degenerate_sizes(name):
    torch.manual_seed(7)
    model = create_dhn(name).eval()
    with torch.no_grad():
        for shape in [(1, 1), (1, 9), (9, 1), (0, 4), (4, 0), (0, 0)]:
            d = torch.rand(shape)
            out = model(d)
            assert out.shape == shape
            assert torch.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()
        assert model(torch.rand(3, 0, 5)).shape == (3, 0, 5)
        # a 1 x 1 and a 1 x N padded into a batch with a bigger matrix give their own answers
        ds = [torch.rand(1, 1), torch.rand(1, 9), torch.rand(11, 4)]
        batch, mask = _padded(ds)
        out = model(batch, mask)
        for i, d in enumerate(ds):
            torch.testing.assert_close(
                out[i, : d.shape[0], : d.shape[1]], model(d), atol=1e-5, rtol=0
            )
        assert (out[~mask] == 0).all()


def test_bipartite_features_by_hand():
    from deepmot.assign.dhn import _bipartite_features

    d = torch.tensor([[0.1, 0.4, 0.4], [0.3, 0.2, 0.9]])
    x = _bipartite_features(d[None], torch.ones(1, 2, 3, dtype=torch.bool))[0]
    # row 0: 0.1 is the strict minimum (gap to the best other entry 0.1 - 0.4 = -0.3);
    # the tied 0.4s both have rank 1 (one entry strictly smaller) and gap 0.4 - 0.1
    torch.testing.assert_close(x[0, :, 3], torch.tensor([-0.3, 0.3, 0.3]))
    torch.testing.assert_close(x[0, :, 5], torch.tensor([1.0, 0.5, 0.5]))
    # column 2: 0.4 beats 0.9 by 0.5; column ranks
    torch.testing.assert_close(x[:, 2, 4], torch.tensor([-0.5, 0.5]))
    torch.testing.assert_close(x[:, 0, 6], torch.tensor([1.0, 0.5]))
    # D - row-min and D - column-min
    torch.testing.assert_close(x[1, :, 1], torch.tensor([0.1, 0.0, 0.7]))
    torch.testing.assert_close(x[0, :, 2], torch.tensor([0.0, 0.2, 0.0]))


def test_bipartite_save_and_load_round_trip(tmp_path):
    torch.manual_seed(8)
    model = create_dhn("bipartite_mp", rounds=2).eval()
    path = tmp_path / "dhn_bipartite_mp.safetensors"
    save_dhn(model, path)
    loaded = load_dhn(path)
    assert loaded.config == model.config and loaded.config.arch == "bipartite"
    d = torch.rand(5, 8)
    torch.testing.assert_close(loaded(d), model(d), atol=0, rtol=0)


def test_sinkhorn_features_approach_the_gated_hungarian_solution():
    from deepmot.assign.dhn import _sinkhorn
    from deepmot.assign.hungarian import hungarian

    torch.manual_seed(9)
    ds = [torch.rand(int(n), int(m)) for n, m in torch.randint(1, 9, (40, 2))]
    for d in ds:
        d[d > 0.6] = 2.0  # gated pairs, as in the threshold augmentation
    batch, mask = _padded(ds)
    plan = _sinkhorn(batch, mask, 100)
    agree = 0
    for i, d in enumerate(ds):
        alone = _sinkhorn(d[None], torch.ones(1, *d.shape, dtype=torch.bool), 100)[0]
        got = plan[i, : d.shape[0], : d.shape[1]]
        torch.testing.assert_close(got, alone, atol=1e-5, rtol=0)  # padding changes nothing
        expected = torch.from_numpy(hungarian(d.numpy(), 0.6)).bool()
        agree += bool(torch.equal(got > 0.5, expected))
    assert agree >= 38  # near-ties aside, the cold plan is the Hungarian solution
    assert (plan[~mask] == 0).all()


def test_untrained_bipartite_sk_is_its_sinkhorn_plan():
    from deepmot.assign.dhn import _sinkhorn

    torch.manual_seed(10)
    model = create_dhn("bipartite_sk").eval()
    d = torch.rand(1, 7, 9)
    plan = _sinkhorn(d, torch.ones_like(d, dtype=torch.bool), model.config.sinkhorn)
    with torch.no_grad():
        torch.testing.assert_close(model.logits(d), model.prior * (2 * plan - 1))


def test_sinkhorn_features_only_for_bipartite():
    with pytest.raises(ValueError, match="sinkhorn"):
        create_dhn("seq_gru", sinkhorn=10)
    assert create_dhn("bipartite_sk").config.sinkhorn > 0
    assert create_dhn("bipartite_mp").config.sinkhorn == 0


def test_pretrained_bipartite_sk_loads_offline_and_solves_a_conflict():
    model = create_dhn("bipartite_sk", pretrained=True)
    assert not model.training and model.config.arch == "bipartite"
    # row 0 prefers column 0, but the Hungarian solution gives column 0 to row 1 (0.1 + 0.3
    # < 0.2 + 0.9): the 1 - D rule gets this wrong, the shipped model must not
    d = torch.tensor([[0.2, 0.3, 2.0], [0.1, 0.9, 2.0], [2.0, 2.0, 0.4]])
    a = model(d)
    assert (a.argmax(1) == torch.tensor([1, 0, 2])).all() and (a.max(1).values > 0.5).all()


def test_gated_ramp_by_hand():
    """Above every real distance (D > 1) Â is 0.5 - gated_slope (D - 1), at least 0; at or
    below 1 it is the model's own output."""
    from dataclasses import replace

    from deepmot.assign.dhn import build_dhn

    torch.manual_seed(11)
    model = create_dhn("bipartite_sk").eval()
    assert model.config.gated_slope == pytest.approx(0.1)
    plain = build_dhn(replace(model.config, gated_slope=0.0)).eval()
    plain.load_state_dict(model.state_dict())
    d = torch.tensor([[0.1, 1.5, 2.0], [0.9, 0.2, 7.0], [1.0, 2.0, 0.3]])
    with torch.no_grad():
        a, own = model(d), plain(d)
    expected = torch.tensor([[0.0, 0.45, 0.4], [0.0, 0.0, 0.0], [0.0, 0.4, 0.0]])
    above = d > 1
    torch.testing.assert_close(a[above], expected[above])
    torch.testing.assert_close(a[~above], own[~above], atol=0, rtol=0)
    assert torch.equal(a > 0.5, own > 0.5)  # the ramp never changes the discretisation


def test_a_frozen_detached_dhn_passes_gradient_only_through_the_ramp():
    from dataclasses import replace

    from deepmot.assign.dhn import build_dhn

    shipped = create_dhn("bipartite_sk", pretrained=True)
    model = build_dhn(replace(shipped.config, gradient_epsilon=0.0)).eval()
    model.load_state_dict(shipped.state_dict())
    d = torch.tensor([[0.1, 1.5, 2.0], [0.8, 0.2, 1.2]], requires_grad=True)
    (trainable,) = torch.autograd.grad(model(d).sum(), d)
    assert trainable[d <= 1].abs().sum() > 0  # parameters that train: the network's gradient
    model.requires_grad_(False)  # as inside the DeepMOT loss
    (frozen,) = torch.autograd.grad(model(d).sum(), d)
    expected = torch.where(d > 1, -model.config.gated_slope, 0.0).detach()
    torch.testing.assert_close(frozen, expected)


def test_gradient_epsilon_adds_a_sinkhorn_gradient_and_keeps_the_values():
    """Straight-through: Â's values are the network's; D's gradient is the ramp's plus that of
    a Sinkhorn plan at ``gradient_epsilon`` (the oracle: the Sinkhorn matcher itself)."""
    from dataclasses import replace

    from deepmot.assign.dhn import GRADIENT_SWEEPS, build_dhn
    from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig

    model = create_dhn("bipartite_sk", pretrained=True)
    assert model.config.gradient_epsilon == pytest.approx(0.1)
    plain = build_dhn(replace(model.config, gradient_epsilon=0.0)).eval()
    plain.load_state_dict(model.state_dict())
    model.requires_grad_(False)
    plain.requires_grad_(False)
    torch.manual_seed(13)
    d = torch.rand(4, 5) * 1.2
    d[0, 3] = 2.0
    d.requires_grad_(True)
    weights = torch.randn(4, 5)
    a = model(d)
    torch.testing.assert_close(a, plain(d), atol=1e-6, rtol=0)
    (got,) = torch.autograd.grad((a * weights).sum(), d)
    smooth = Sinkhorn(SinkhornConfig(epsilon=0.1, iterations=GRADIENT_SWEEPS))(d)
    (expected,) = torch.autograd.grad((smooth * weights).sum(), d)
    expected = expected + torch.where(d > 1, -0.1 * weights, 0.0).detach()  # the ramp
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert got[d <= 1].abs().sum() > 0  # without it the frozen network passes nothing there
    with pytest.raises(ValueError, match="gradient_epsilon"):
        replace(model.config, gradient_epsilon=-1.0)


def test_mixed_sizes_run_in_groups_and_empty_matrices_stay_zero():
    from deepmot.assign.dhn import _size_groups

    torch.manual_seed(12)
    sizes = [(2, 2), (30, 40), (3, 2), (2, 3), (28, 41)]
    ds = [torch.rand(n, m) for n, m in sizes]
    batch, mask = _padded(ds + [torch.zeros(0, 0)])
    groups = _size_groups(mask)
    members = sorted(int(i) for g, _, _ in groups for i in g)
    assert members == [0, 1, 2, 3, 4]  # each non-empty matrix once, the empty one left out
    assert [(sorted(g.tolist()), n, m) for g, n, m in groups] == [
        ([0, 2, 3], 3, 3),
        ([1, 4], 30, 41),
    ]
    model = create_dhn("bipartite_sk").eval()
    out = model(batch, mask)
    for i, d in enumerate(ds):
        torch.testing.assert_close(out[i, : d.shape[0], : d.shape[1]], model(d), atol=1e-6, rtol=0)
    assert (out[5] == 0).all()


def test_the_shipped_bipartite_sk_carries_its_loss_time_settings():
    from deepmot.assign.dhn import GATED_SLOPE

    model = create_dhn("bipartite_sk", pretrained=True)
    assert model.config.gated_slope == GATED_SLOPE and model.config.detach_frozen
    assert create_dhn("bipartite_sk").config == model.config  # a new one trains the same way

"""Head registry, FOSRNet assembly and ablations, losses, predict_ranks end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from salrank.fosrnet import heads as heads_module
from salrank.fosrnet.heads import create_head, list_heads, register_head
from salrank.fosrnet.losses import (
    IGNORE_INDEX,
    fosrnet_loss,
    fosrnet_loss_terms,
    regression_loss,
    sequence_class_targets,
)
from salrank.fosrnet.model import FOSRNet, FOSRNetConfig, create_fosrnet
from salrank.paper import TABLE2_ROWS

SMALL = {"width": 32, "depth": 1, "num_heads": 2}


def small_kwargs(name: str) -> dict:
    return SMALL if name in ("vit", "reg", "official") else {"hidden": 32} if name in ("fc", "gcn") else {}


def test_registry_lists_and_rejects():
    assert list_heads() == ["fc", "gcn", "official", "reg", "vit"]
    with pytest.raises(ValueError, match="known heads: fc, gcn, official, reg, vit"):
        create_head("mlp", in_dim=8)
    with pytest.raises(ValueError, match="already registered"):
        register_head("vit")(nn.Identity)


def test_register_custom_head(monkeypatch):
    monkeypatch.setattr(heads_module, "_REGISTRY", dict(heads_module._REGISTRY))

    @register_head("linear")
    def make(in_dim, k, num_classes):
        return nn.Linear(in_dim, num_classes)

    assert "linear" in list_heads()
    assert create_head("linear", in_dim=4, num_classes=3)(torch.zeros(2, 5, 4)).shape == (2, 5, 3)


@pytest.mark.parametrize("name", ["vit", "fc", "gcn", "reg", "official"])
def test_head_output_shapes(name):
    head = create_head(name, in_dim=12, k=5, num_classes=5, **small_kwargs(name)).eval()
    out = head(torch.randn(3, 5, 12), torch.zeros(3, 5, dtype=torch.bool))
    assert out.shape == ((3, 5) if name == "reg" else (3, 5, 5))
    assert head.output_kind == ("score" if name == "reg" else "classes")
    with pytest.raises(ValueError, match="expected"):
        head(torch.randn(3, 5, 11))


def test_paper_vit_head_dimensions():
    head = create_head("vit", in_dim=2624)
    assert head.trunk.embed[0].in_features == 2624 and head.trunk.embed[0].out_features == 384
    layers = head.trunk.encoder.layers
    assert len(layers) == 4
    assert layers[0].self_attn.num_heads == 8 and layers[0].linear1.out_features == 4 * 384
    assert head.classifier[0].p == 0.5 and head.classifier[1].out_features == 5


def test_official_head_dimensions():
    head = create_head("official", in_dim=2432)
    relu, drop, linear = head.trunk.embed  # ReLU -> Dropout -> Linear on the raw features
    assert isinstance(relu, nn.ReLU) and drop.p == 0.5 and (linear.in_features, linear.out_features) == (2432, 384)
    layers = head.trunk.encoder.layers
    assert len(layers) == 12 and layers[0].self_attn.num_heads == 8 and layers[0].norm_first
    assert layers[0].norm1.eps == 1e-6 and head.trunk.norm.eps == 1e-6 and layers[0].self_attn.in_proj_bias is not None
    assert layers[0].dropout.p == 0.0 and layers[0].linear1.out_features == 4 * 384
    assert head.classifier[0].p == 0.5 and head.classifier[1].out_features == 5


@pytest.mark.parametrize(
    "name,kw", [("vit", SMALL), ("reg", SMALL), ("official", SMALL), ("gcn", {"hidden": 32}),
                ("gcn", {"adjacency": "cosine"})]
)
def test_dummy_features_do_not_change_valid_outputs(name, kw):
    torch.manual_seed(0)
    head = create_head(name, in_dim=8, **kw).eval()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[False, False, False, True, True], [False] * 5])
    y = x.clone()
    y[0, 3:] = torch.randn(2, 8) * 10
    a, b = head(x, mask), head(y, mask)
    assert torch.allclose(a[0, :3], b[0, :3], atol=1e-5)
    assert torch.allclose(a[1], b[1])
    # without the mask the dummies do matter (the test can tell)
    assert not torch.allclose(head(x)[0, :3], head(y)[0, :3], atol=1e-5)
    # an all-dummy sequence yields finite outputs (discarded by callers, but no NaN)
    assert torch.isfinite(head(x, torch.ones(2, 5, dtype=torch.bool))).all()


def feats(b: int, k: int = 5, d_r: int = 16, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "local": torch.randn(b, k, 192, generator=g),
        "global": torch.randn(b, k, 192, generator=g),
        "appearance": torch.randn(b, k, d_r, generator=g),
        "centers": torch.rand(b, k, 2, generator=g),
    }


def test_default_config_is_the_paper():
    c = FOSRNetConfig()
    assert c.in_dim == 576 + 2048 and c.head_name == "vit"
    model = FOSRNet(c)
    assert isinstance(model.pe, nn.Linear) and model.pe.out_features == 192


@pytest.mark.parametrize("row", sorted(TABLE2_ROWS))
def test_forward_shapes_for_table2_rows(row):
    cfg = FOSRNetConfig.table2(row, appearance_dim=16, head_kwargs=SMALL if row >= 6 else {})
    model = create_fosrnet(cfg).eval()
    expected_dim = 192 * (cfg.use_local + cfg.use_global) + 192 * cfg.use_pe + 16 * cfg.use_pse
    assert cfg.in_dim == expected_dim
    assert model.head.__class__.__name__ == ("ViTHead" if cfg.use_transformer else "FCHead")
    f = feats(4)
    only = {key: f[key] for key in cfg.required_keys}  # switched-off parts are not needed
    assert model(only, mask=torch.zeros(4, 5, dtype=torch.bool)).shape == (4, 5, 5)


def test_forward_other_heads_and_errors():
    f = feats(2)
    assert create_fosrnet(appearance_dim=16, head="reg", head_kwargs=SMALL)(f).shape == (2, 5)
    assert create_fosrnet(appearance_dim=16, head="gcn")(f).shape == (2, 5, 5)
    model = create_fosrnet(appearance_dim=16, head_kwargs=SMALL)
    with pytest.raises(KeyError, match="appearance"):
        model({k: v for k, v in f.items() if k != "appearance"})
    with pytest.raises(ValueError, match="'appearance' has last dimension 8"):
        model({**f, "appearance": torch.zeros(2, 5, 8)})
    with pytest.raises(TypeError, match="unknown options"):
        create_fosrnet(use_hungrian=False)
    with pytest.raises(ValueError, match="at least one"):
        FOSRNetConfig(use_pse=False, use_local=False, use_global=False, use_pe=False)
    with pytest.raises(ValueError, match="cost"):
        FOSRNetConfig(cost="l2")


def test_sequence_class_targets():
    scores = torch.tensor([[0.1, 0.5, 0.3, 9.0, 9.0], [0.5, 0.5, 0.1, 0.0, 0.2]])
    mask = torch.tensor([[False, False, False, True, True], [False] * 5])
    t = sequence_class_targets(scores, mask)
    assert t.tolist() == [[2, 4, 3, IGNORE_INDEX, IGNORE_INDEX], [4, 3, 1, 0, 2]]
    compact = sequence_class_targets(scores, mask, dummies_least_salient=False)
    assert compact[0].tolist() == [0, 2, 1, IGNORE_INDEX, IGNORE_INDEX]
    # the authors' rule: of the tied 0.5s the lower slot is the less salient
    assert sequence_class_targets(scores, mask, ties="official")[1].tolist() == [3, 4, 1, 0, 2]
    with pytest.raises(ValueError, match="tie_key"):
        sequence_class_targets(scores, mask, tie_key=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="ties"):
        sequence_class_targets(scores, mask, ties="coin")


@pytest.mark.parametrize("ties", ["rank", "official"])
def test_sequence_targets_consistent_across_wrapped_sequences(ties):
    """The issue's n = 7 case: proposals 1 and 5 have no fixations (score 0).

    Sequence [1..5] and the wrapped [4, 5, 6, 0, 1] hold both. With slot order as tie key the
    pair swaps (1 above 5 in the first, below in the second); with the proposal's index in the
    image as tie key the order is the same in both.
    """
    scores = np.array([0.5, 0.0, 0.3, 0.4, 0.2, 0.0, 0.1])
    seqs = np.array([[1, 2, 3, 4, 5], [4, 5, 6, 0, 1]])
    by_slot = sequence_class_targets(scores[seqs])
    assert by_slot[0, 0] > by_slot[0, 4] and by_slot[1, 4] < by_slot[1, 1]  # the contradiction
    t = sequence_class_targets(scores[seqs], tie_key=seqs, ties=ties)
    first = {int(p): int(c) for p, c in zip(seqs[0], t[0], strict=True)}
    second = {int(p): int(c) for p, c in zip(seqs[1], t[1], strict=True)}
    one_above_five = ties == "rank"  # "rank": the lower index is the more salient
    assert (first[1] > first[5]) == one_above_five and (second[1] > second[5]) == one_above_five
    # every pair shared by the two sequences has the same order in both
    shared = sorted(set(first) & set(second))
    for a in shared:
        for b in shared:
            assert (first[a] > first[b]) == (second[a] > second[b])


@pytest.mark.parametrize("pe_input", ["center", "corners"])
def test_position_embedding_inputs(pe_input):
    """``corners``: PE sees (x1, y1, x2, y2) = centre -+ (w, h) / 2 from ``centers`` and ``geometry``."""
    torch.manual_seed(0)
    model = create_fosrnet(appearance_dim=16, pe_input=pe_input, head="fc").eval()
    assert model.pe.in_features == (2 if pe_input == "center" else 4)
    f = feats(2, seed=3)
    f["geometry"] = torch.tensor([[0.3, 0.2, 0.4]]).expand(2, 5, 3)
    with torch.no_grad():
        x = model.embed(f)
        pe_part = x[..., 384:576]
        c = f["centers"]
        expected_in = c if pe_input == "center" else torch.cat([c - torch.tensor([0.1, 0.2]),
                                                                c + torch.tensor([0.1, 0.2])], -1)
        torch.testing.assert_close(pe_part, model.pe(expected_in))
    if pe_input == "corners":
        assert FOSRNetConfig(pe_input="corners").required_keys == ("local", "global", "centers", "geometry",
                                                                   "appearance")
        with pytest.raises(KeyError, match="geometry"):
            model.embed({k: v for k, v in f.items() if k != "geometry"})
    with pytest.raises(ValueError, match="pe_input"):
        FOSRNetConfig(pe_input="edges")


def test_loss_hand_case():
    # k = C = 2. Row 0: p = (1/4, 3/4) -> expected class 0.75; row 1: p = (3/4, 1/4) -> 0.25.
    logits = torch.tensor([[[0.0, math.log(3)], [math.log(3), 0.0]]])
    wrong = torch.tensor([[0, 1]])  # scores ordered against the targets
    terms = fosrnet_loss_terms(logits, wrong, alpha=1.0)
    assert terms["ce"].item() == pytest.approx(math.log(4))
    assert terms["rank"].item() == pytest.approx(0.5)  # both ordered pairs: max(0, 0.5)
    assert fosrnet_loss(logits, wrong, margin=0.1).item() == pytest.approx(math.log(4) + 0.6)
    assert fosrnet_loss(logits, wrong, alpha=2.0).item() == pytest.approx(math.log(4) + 1.0)
    right = torch.tensor([[1, 0]])  # perfectly ordered: the margin-0 ranking term vanishes
    terms = fosrnet_loss_terms(logits, right)
    assert terms["rank"].item() == 0.0
    assert terms["ce"].item() == pytest.approx(math.log(4 / 3))


def test_loss_ignores_dummies():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 5)
    targets = torch.tensor([[4, 3, 2, IGNORE_INDEX, IGNORE_INDEX], [0, 1, 2, 3, 4]])
    mask = targets == IGNORE_INDEX
    a = fosrnet_loss(logits, targets, mask)
    logits2 = logits.clone()
    logits2[0, 3:] = 100.0
    assert fosrnet_loss(logits2, targets, mask).item() == pytest.approx(a.item())
    all_dummy = fosrnet_loss(logits, torch.full((2, 5), IGNORE_INDEX))
    assert all_dummy.item() == 0.0


@pytest.mark.parametrize("head", ["vit", "gcn", "reg"])
def test_gradients_finite_and_nonzero_for_every_parameter(head):
    torch.manual_seed(0)
    kw = SMALL if head in ("vit", "reg") else {"hidden": 32}
    model = create_fosrnet(appearance_dim=16, head=head, head_kwargs=kw).eval()  # eval: no dropout
    f = feats(3, seed=1)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 4] = True
    targets = sequence_class_targets(torch.rand(3, 5), mask)
    out = model(f, mask)
    if head == "reg":
        loss = regression_loss(out, targets.clamp(min=0).float() / 4, mask)
    else:
        loss = fosrnet_loss(out, targets, mask)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def image_feats(n: int, rng: np.random.Generator, d_r: int = 16) -> dict:
    xy = rng.uniform(0, 600, size=(n, 2))
    return {
        "local": rng.normal(size=(n, 192)).astype(np.float32),
        "global": rng.normal(size=(n, 192)).astype(np.float32),
        "appearance": rng.normal(size=(n, d_r)).astype(np.float32),
        "centers": xy / [640, 480],
        "boxes": np.concatenate([xy - 10, xy + 10], axis=1),
    }


@pytest.mark.parametrize("kw", [
    {"head_kwargs": SMALL},
    {"head_kwargs": SMALL, "use_hungarian": False},
    {"head": "reg", "head_kwargs": SMALL},
    {"use_transformer": False, "cost": "exp-neg-logit"},
])
def test_predict_ranks_counts_and_batched_equals_per_image(kw):
    torch.manual_seed(0)
    model = create_fosrnet(appearance_dim=16, **kw)
    rng = np.random.default_rng(0)
    images = [image_feats(n, rng) for n in (0, 1, 4, 5, 200)]
    ranks = model.predict_ranks(images)
    assert model.training  # restored
    assert [len(r) for r in ranks] == [0, 1, 4, 5, 200]
    for r in ranks:
        assert r.dtype == np.int64 and sorted(r.tolist()) == list(range(1, len(r) + 1))
    for im, r in zip(images, ranks, strict=True):
        assert np.array_equal(model.predict_ranks(im), r)
    chunked = model.predict_ranks(images, max_sequences=37)
    assert all(np.array_equal(a, b) for a, b in zip(ranks, chunked, strict=True))


def test_predict_ranks_geometry_and_errors():
    torch.manual_seed(0)
    model = create_fosrnet(appearance_dim=16, head_kwargs=SMALL)
    rng = np.random.default_rng(1)
    im = image_feats(7, rng)
    no_boxes = {k: v for k, v in im.items() if k != "boxes"}
    assert sorted(model.predict_ranks(no_boxes).tolist()) == list(range(1, 8))
    assert model.predict_ranks([]) == []
    with pytest.raises(ValueError, match="image 1"):
        model.predict_ranks([im, {**im, "local": im["local"][:3]}])
    with pytest.raises(KeyError, match="image 0"):
        model.predict_ranks([{k: v for k, v in im.items() if k != "global"}])
    with pytest.raises(TypeError, match="image 0"):
        model.predict_ranks([np.zeros(3)])

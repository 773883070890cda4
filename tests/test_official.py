"""The ``official`` protocol (the authors' evaluation unit) and the released network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from salrank.fosrnet import FOSRNetConfig, create_fosrnet
from salrank.fosrnet.heads import official_key_map
from salrank.gt.ranking import class_labels
from salrank.metrics import (
    official_from_classes,
    official_group_metrics,
    official_gt_classes,
    official_pred_classes,
    official_protocol,
)

# ---------------------------------------------------------------- GT classes (authors' rule)


def test_gt_classes_hand_cases():
    # distinct scores: position in ascending order
    assert official_gt_classes([[0.3, 0.9, 0.0, 0.5, 0.1]]).tolist() == [[2, 4, 0, 3, 1]]
    # ties: sorted((score, index)) puts the lower index below
    assert official_gt_classes([[0.5, 0.0, 0.0, 0.2, 0.0]]).tolist() == [[4, 0, 1, 3, 2]]
    # no fixation at all: the GT is still a permutation (the identity)
    assert official_gt_classes([[0.0] * 5]).tolist() == [[0, 1, 2, 3, 4]]
    # the other tie rule is kept under its own name
    assert class_labels([0.5, 0.0, 0.0, 0.2, 0.0], ties="rank").tolist() == [4, 2, 1, 3, 0]
    with pytest.raises(ValueError, match="ties"):
        class_labels([0.1, 0.2], ties="random")


@given(arrays(np.float64, (7, 5), elements=st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.5, 1.0])))
def test_gt_classes_match_sorted_pairs(scores):
    """Property: class of proposal i = its position in sorted((score, index)); always a permutation."""
    classes = official_gt_classes(scores)
    for row, s in zip(classes, scores, strict=True):
        order = [i for _, i in sorted((v, i) for i, v in enumerate(s))]
        assert [order.index(i) for i in range(5)] == row.tolist()
        assert sorted(row.tolist()) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- predicted classes


def test_pred_classes_use_exp_neg_logit_cost():
    """A case where exp(-logits) and -log_softmax pick different assignments.

    -log_softmax adds a per-row constant, so it maximises the summed logits: identity
    {0->0, 1->1} sums -2 + 3 = 1 > 0 + 0 (swap). exp(-L): identity costs e^2 + e^-3 = 7.44,
    the swap e^0 + e^0 = 2, so the official cost swaps them.
    """
    logits = np.array([[[-2.0, 0.0], [0.0, 3.0]]])
    assert official_pred_classes(logits).tolist() == [[1, 0]]
    from salrank.fosrnet.ecs import exclusive_classes_batched

    assert exclusive_classes_batched(logits, cost="log-softmax").tolist() == [[0, 1]]


# ---------------------------------------------------------------- per-group metrics


def test_group_metrics_hand_case():
    """pred [4, 3, 2, 0, 1] vs GT [4, 3, 1, 0, 2] (one swap of classes 1 and 2)."""
    df = official_group_metrics([[4, 3, 2, 0, 1]], [[4, 3, 1, 0, 2]])
    row = df.iloc[0]
    # Spearman = Pearson for permutations: 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 120
    assert row["srcc"] == pytest.approx(0.9) and row["plcc"] == pytest.approx(0.9)
    assert row["rmse"] == pytest.approx(np.sqrt(2 / 5))
    assert row["f1"] == pytest.approx(3 / 5)  # classes 0, 3, 4 right (F1 1), 1 and 2 wrong (F1 0)
    assert (row["acc_first"], row["acc_second"], row["acc_third"]) == (1.0, 1.0, 0.0)
    assert not row["nan"]


def test_nan_groups_count_zero_and_stay_in_the_mean():
    # constant prediction: SRCC and PLCC undefined -> both 0, group still counted
    out = official_from_classes([[1, 1, 1, 1, 1], [0, 1, 2, 3, 4]], [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    assert out["n_groups"] == 2 and out["n_nan_groups"] == 1
    assert out["srcc"] == pytest.approx(0.5) and out["plcc"] == pytest.approx(0.5)
    assert out["protocol"] == "official"


def test_official_protocol_perfect_and_reversed():
    gt = np.array([[0.1, 0.5, 0.0, 0.3, 0.0]])  # classes [2, 4, 0, 3, 1]
    classes = official_gt_classes(gt)[0]
    perfect = np.eye(5)[classes][None] * 5.0  # proposal i confident in its GT class
    out = official_protocol(perfect, gt)
    assert out["srcc"] == pytest.approx(1.0) and out["f1"] == 1.0 and out["rmse"] == 0.0
    assert out["acc_first"] == out["acc_second"] == out["acc_third"] == 1.0
    reverse = np.eye(5)[4 - classes][None] * 5.0
    out = official_protocol(reverse, gt)
    assert out["srcc"] == pytest.approx(-1.0) and out["acc_first"] == 0.0 and out["n_nan_groups"] == 0
    assert out["acc_third"] == 1.0  # the middle class maps to itself


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_official_protocol_properties(g, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(g, 5, 5))
    scores = rng.choice([0.0, 0.1, 0.2, 0.7], size=(g, 5))
    out = official_protocol(logits, scores)
    assert out["n_groups"] == g and out["n_nan_groups"] == 0  # permutations on both sides
    assert -1.0 <= out["srcc"] <= 1.0 and 0.0 <= out["f1"] <= 1.0
    # for permutations macro F1 = fraction of proposals with the right class, and SRCC = PLCC
    pred, gt = official_pred_classes(logits), official_gt_classes(scores)
    assert out["f1"] == pytest.approx(float((pred == gt).mean()))
    assert out["srcc"] == pytest.approx(out["plcc"])
    # the mean over groups = the mean of single-group results
    singles = [official_protocol(logits[i : i + 1], scores[i : i + 1]) for i in range(g)]
    for key in ("srcc", "rmse", "f1", "acc_first", "acc_second", "acc_third"):
        assert out[key] == pytest.approx(np.mean([s[key] for s in singles]))
    # permuting the proposals of a group (rows of logits and scores together) changes nothing
    # when the scores have no ties (ties are broken by position)
    distinct = rng.permutation(5)[None].repeat(g, 0) + rng.random((g, 5)) * 0.1
    perm = rng.permutation(5)
    a = official_protocol(logits, distinct)
    b = official_protocol(logits[:, perm], distinct[:, perm])
    assert a["srcc"] == pytest.approx(b["srcc"]) and a["f1"] == pytest.approx(b["f1"])


def test_official_protocol_bad_inputs():
    with pytest.raises(ValueError, match="logits"):
        official_protocol(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="need"):
        official_protocol(np.zeros((2, 5, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        official_protocol(np.full((1, 5, 5), np.nan), np.zeros((1, 5)))
    out = official_protocol(np.zeros((0, 5, 5)), np.zeros((0, 5)))
    assert out["n_groups"] == 0 and np.isnan(out["srcc"])


# ---------------------------------------------------------------- the released network

#: The parameter names and shapes of the authors' ``VisionTransformer()`` (defaults: depth 12,
#: width 384, patch 5 on 224 -> 44 x 44 + 1 tokens of position embedding, 1000-way head).
def _authors_state_dict(depth: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {"cls_token": (1, 1, 384), "pos_embed": (1, 44 * 44 + 1, 384),
              "patch_embed.proj.weight": (384, 384, 5, 5), "patch_embed.proj.bias": (384,)}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "norm1.weight": (384,), b + "norm1.bias": (384,),
                       b + "attn.qkv.weight": (1152, 384), b + "attn.qkv.bias": (1152,),
                       b + "attn.proj.weight": (384, 384), b + "attn.proj.bias": (384,),
                       b + "norm2.weight": (384,), b + "norm2.bias": (384,),
                       b + "mlp.fc1.weight": (1536, 384), b + "mlp.fc1.bias": (1536,),
                       b + "mlp.fc2.weight": (384, 1536), b + "mlp.fc2.bias": (384,)})
    shapes.update({"norm.weight": (384,), "norm.bias": (384,), "head.weight": (1000, 384), "head.bias": (1000,),
                   "linear.2.weight": (384, 2432), "linear.2.bias": (384,),
                   "classifier.1.weight": (5, 384), "classifier.1.bias": (5,)})
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def test_official_config_has_the_released_shape():
    c = FOSRNetConfig.official()
    assert c.in_dim == 2432 and not c.use_pe and c.head_name == "official" and c.cost == "exp-neg-logit"
    assert c.required_keys == ("local", "global", "appearance")
    assert set(official_key_map(12)) == set(_authors_state_dict())


def test_official_state_dict_loads_and_forward_is_hand_checkable():
    sd = _authors_state_dict()
    # zero every block's residual branch (attn.proj and mlp.fc2 outputs): the blocks become the
    # identity, so logits = classifier(LayerNorm(linear(relu(x))))
    for i in range(12):
        for name in ("attn.proj", "mlp.fc2"):
            sd[f"blocks.{i}.{name}.weight"].zero_()
            sd[f"blocks.{i}.{name}.bias"].zero_()
    model = create_fosrnet(FOSRNetConfig.official()).eval()
    assert model.load_official_state_dict(sd) is model
    rng = np.random.default_rng(1)
    feats = {"local": rng.normal(size=(2, 5, 192)), "global": rng.normal(size=(2, 5, 192)),
             "appearance": rng.normal(size=(2, 5, 2048))}
    with torch.no_grad():
        logits = model(feats)
        x = torch.as_tensor(np.concatenate([feats["local"], feats["global"], feats["appearance"]], -1),
                            dtype=torch.float32).relu()
        h = x @ sd["linear.2.weight"].T + sd["linear.2.bias"]
        h = torch.nn.functional.layer_norm(h, (384,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)
        expected = h @ sd["classifier.1.weight"].T + sd["classifier.1.bias"]
    assert logits.shape == (2, 5, 5)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_official_forward_mixes_the_group_and_is_permutation_equivariant():
    model = create_fosrnet(FOSRNetConfig.official()).eval()
    model.load_official_state_dict(_authors_state_dict(seed=3))
    rng = np.random.default_rng(2)
    feats = {k: torch.as_tensor(rng.normal(size=(1, 5, d)), dtype=torch.float32)
             for k, d in (("local", 192), ("global", 192), ("appearance", 2048))}
    with torch.no_grad():
        base = model(feats)
        perm = torch.tensor([3, 0, 4, 1, 2])
        permuted = model({k: v[:, perm] for k, v in feats.items()})
        changed = {k: v.clone() for k, v in feats.items()}
        changed["appearance"][0, 4] += 1.0
        other = model(changed)
    torch.testing.assert_close(permuted, base[:, perm], rtol=1e-4, atol=1e-5)  # no position embedding
    assert not torch.allclose(other[0, 0], base[0, 0])  # proposal 0 sees proposal 4 (attention)


def test_official_state_dict_errors_name_the_key():
    model = create_fosrnet(FOSRNetConfig.official())
    sd = _authors_state_dict()
    missing = {k: v for k, v in sd.items() if k != "blocks.7.attn.qkv.bias"}
    with pytest.raises(KeyError, match=r"missing key 'blocks\.7\.attn\.qkv\.bias'"):
        model.load_official_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected key 'blocks\.12\.norm1\.weight'"):
        model.load_official_state_dict({**sd, "blocks.12.norm1.weight": torch.ones(384)})
    with pytest.raises(ValueError, match=r"'linear\.2\.weight' has shape \(384, 2624\)"):
        model.load_official_state_dict({**sd, "linear.2.weight": torch.zeros(384, 2624)})
    # DataParallel checkpoints ("module." prefix) load too
    model.load_official_state_dict({f"module.{k}": v for k, v in sd.items()})
    with pytest.raises(TypeError, match="official"):
        create_fosrnet(FOSRNetConfig()).load_official_state_dict(sd)


def test_official_model_through_official_protocol():
    """End to end: a loaded model's logits on G groups -> official_protocol."""
    model = create_fosrnet(FOSRNetConfig.official()).eval()
    model.load_official_state_dict(_authors_state_dict(seed=5))
    rng = np.random.default_rng(4)
    feats = {k: rng.normal(size=(6, 5, d)) for k, d in (("local", 192), ("global", 192), ("appearance", 2048))}
    with torch.no_grad():
        logits = model(feats)
    out = official_protocol(logits, rng.random((6, 5)))
    assert out["n_groups"] == 6 and set(out) >= {"srcc", "plcc", "rmse", "f1", "acc_first", "acc_second",
                                                  "acc_third", "n_nan_groups"}

"""The benchmark harness (salrank.bench.suite, ``salrank bench``): record schema, ratios, targets, CLI.

Timings are injected (fake benchmarks with known samples), so nothing here depends on the speed of
the machine; the real benchmarks run only where they are cheap (fixation loading, ACB).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch

from salrank.bench import suite as bench
from salrank.bench.suite import (
    Benchmark,
    Measurement,
    StageClock,
    compute_ratios,
    evaluate_targets,
    format_summary,
    load_records,
    resolve_amp,
    run_suite,
    summarize,
)
from salrank.cli import main

REPO = Path(__file__).resolve().parents[1]


# --- summaries -------------------------------------------------------------------------------------
def test_summarize_hand_computed():
    s = summarize([4.0, 1.0, 100.0, 3.0, 2.0])
    assert s == {"median": 3.0, "q1": 2.0, "q3": 4.0, "iqr": 2.0, "min": 1.0, "max": 100.0}
    assert summarize([5.0]) == {"median": 5.0, "q1": 5.0, "q3": 5.0, "iqr": 0.0, "min": 5.0, "max": 5.0}
    assert summarize([1.0, 2.0])["median"] == 1.5


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError, match="summarize"):
        summarize(bad)


def test_measurement_validation():
    with pytest.raises(ValueError, match="better"):
        Measurement("x", "m", "s", [1.0], better="faster")
    with pytest.raises(ValueError, match="samples or a summary"):
        Measurement("x", "m", "s")
    m = Measurement.from_summary("x", "m", "images/s", median=2.0, minimum=1.0, maximum=3.0, iqr=0.5, repeats=4)
    entry = m.to_dict("b")
    assert entry["median"] == 2.0 and entry["repeats"] == 4 and entry["samples"] is None
    assert entry["spread"] == {"q1": None, "q3": None, "iqr": 0.5, "min": 1.0, "max": 3.0}


# --- injected timings ------------------------------------------------------------------------------
def _fake_benchmarks(calls: list | None = None) -> dict[str, Benchmark]:
    def gt(cfg):
        if calls is not None:
            calls.append(cfg)
        return [Measurement("fast", "fast", "s/image", [0.1, 0.2, 0.1], "lower"),
                Measurement("loop", "loop", "s/image", [10.0, 12.0, 11.0], "lower"),
                Measurement("salicon_15k", "15k", "s", [9.0, 10.0, 9.5], "lower")]

    def acb(cfg):
        return [Measurement("acb.loop", "loop", "s", [1.0, 1.2, 0.9], "lower"),  # prefixed names are kept
                Measurement("acb.batched", "batched", "s", [0.1, 0.3, 0.2], "lower", {"n": 20})]

    def broken(cfg):
        cfg.note("about to fail")
        raise RuntimeError("no such backend")

    return {"gt_relabel": Benchmark("gt_relabel", "fake GT", gt), "acb": Benchmark("acb", "fake ACB", acb),
            "broken": Benchmark("broken", "always fails", broken)}


def test_ratios_and_targets_from_injected_timings():
    calls: list = []
    record = run_suite(quick=True, device="cpu", progress=False, benchmarks=_fake_benchmarks(calls), repeats=3)
    assert calls and calls[0].quick and calls[0].repeats == 3 and calls[0].device == "cpu"
    ratios = {r["name"]: r for r in record["ratios"]}
    gt = ratios["gt_relabel.speedup"]
    assert gt["value"] == pytest.approx(11.0 / 0.1)  # ratio of the medians
    assert gt["spread"]["min"] == pytest.approx(60.0)  # per repeat: 100, 60, 110
    assert gt["spread"]["max"] == pytest.approx(110.0)
    assert gt["spread"]["median"] == pytest.approx(100.0)
    assert gt["best"] == pytest.approx(10.0 / 0.1)  # fastest loop / fastest fast path
    assert ratios["acb.speedup"]["value"] == pytest.approx(1.0 / 0.2)
    assert set(ratios) == {"gt_relabel.speedup", "acb.speedup"}  # only ratios whose sides ran

    targets = {t["name"]: t for t in record["targets"]}
    assert targets["gt_relabel_speedup"]["status"] == "pass" and targets["gt_relabel_speedup"]["passed"] is True
    assert targets["gt_relabel_15k"]["value"] == pytest.approx(9.5)
    assert targets["gt_relabel_15k"]["status"] == "pass"
    assert targets["acb_speedup"]["status"] == "pass"  # 5.0 >= 5: the boundary passes
    assert targets["head_flop_ratio"]["status"] == "not run" and targets["head_flop_ratio"]["passed"] is None
    assert targets["end_to_end_gpu"]["status"] == "n/a"

    broken = record["benchmarks"]["broken"]
    assert broken["error"] == "RuntimeError: no such backend" and broken["notes"] == ["about to fail"]
    assert "error" not in record["benchmarks"]["acb"]


def test_record_schema_and_json_round_trip():
    record = run_suite(quick=True, device="cpu", only="acb,gt_relabel", progress=False,
                       benchmarks=_fake_benchmarks())
    assert set(record) == {"meta", "results", "ratios", "targets", "benchmarks", "memory"}
    meta = record["meta"]
    assert meta["schema"] == bench.SCHEMA and meta["quick"] is True and meta["device"] == "cpu"
    assert meta["benchmarks"] == ["gt_relabel", "acb"]  # suite order, not the order asked
    assert meta["repeats"] == 3 and meta["amp"] is None
    assert meta["versions"]["torch"] and meta["versions"]["salrank"]
    assert "cpu_count" in meta["hardware"]
    datetime.fromisoformat(meta["date"])
    for r in record["results"]:
        assert set(r) == {"name", "benchmark", "metric", "unit", "better", "median", "spread", "repeats",
                          "samples", "details"}
        assert r["name"].startswith(r["benchmark"] + ".")
        assert set(r["spread"]) == {"q1", "q3", "iqr", "min", "max"}
        assert r["spread"]["min"] <= r["median"] <= r["spread"]["max"]
    assert [r["name"] for r in record["results"]] == [
        "gt_relabel.fast", "gt_relabel.loop", "gt_relabel.salicon_15k", "acb.loop", "acb.batched"]
    for t in record["targets"]:
        assert t["status"] in ("pass", "fail", "not run", "n/a")
    assert record["memory"]["peak_rss_mib"] > 0
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_evaluate_targets_logic():
    results = [{"name": "gt_relabel.salicon_15k", "median": 10.0},
               {"name": "end_to_end.images_per_s", "median": 150.0},
               {"name": "training.fast_epoch_10k", "median": 599.0}]
    ratios = [{"name": "gt_relabel.speedup", "value": 29.9}, {"name": "head.flop_ratio", "value": float("nan")},
              {"name": "acb.speedup", "value": 5.0}]
    cpu = {t["name"]: t for t in evaluate_targets(results, ratios, "cpu")}
    assert cpu["gt_relabel_speedup"]["status"] == "fail"  # 29.9 < 30
    assert cpu["gt_relabel_15k"]["status"] == "fail"  # 10 s is not < 10 s
    assert cpu["head_flop_ratio"]["status"] == "fail"  # NaN never passes
    assert cpu["acb_speedup"]["status"] == "pass"
    assert cpu["train_fast_epoch"]["status"] == "pass"
    assert cpu["end_to_end_gpu"]["status"] == "n/a" and cpu["end_to_end_gpu"]["value"] == 150.0
    cuda = {t["name"]: t for t in evaluate_targets(results, ratios, "cuda:0")}
    assert cuda["end_to_end_gpu"]["status"] == "pass" and cuda["end_to_end_gpu"]["passed"] is True
    slow = evaluate_targets([{"name": "end_to_end.images_per_s", "median": 99.9}], [], "cuda")
    assert {t["name"]: t["status"] for t in slow}["end_to_end_gpu"] == "fail"


def test_compute_ratios_without_paired_samples():
    results = [{"name": "a", "median": 6.0, "better": "higher", "samples": None,
                "spread": {"min": 5.0, "max": 8.0}},
               {"name": "b", "median": 2.0, "better": "higher", "samples": [1.0, 2.0, 4.0],
                "spread": {"min": 1.0, "max": 4.0}}]
    [r] = compute_ratios(results, [bench.Ratio("a_vs_b", "a", "b", "test")])
    assert r["value"] == 3.0 and r["spread"] is None and r["best"] == 2.0  # best rates: 8 / 4


def test_bad_names_and_repeats_rejected():
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) 'nope'; known: gt_relabel"):
        run_suite(only=["nope", "acb"], progress=False)
    with pytest.raises(ValueError, match="no benchmark named"):
        run_suite(only=" , ", progress=False)
    with pytest.raises(ValueError, match="repeats"):
        run_suite(only="acb", repeats=0, progress=False, benchmarks=_fake_benchmarks())


def test_cli_rejects_bad_name(capsys):
    assert main(["bench", "--only", "gt_relabel,warp_drive", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "salrank bench: error: unknown benchmark(s) 'warp_drive'" in err and "end_to_end" in err


def test_cli_only_cheap_benchmark_writes_valid_json(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    code = main(["bench", "--quick", "--only", "fixation_load", "--repeats", "1", "--json", str(out),
                 "--no-progress"])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["meta"]["benchmarks"] == ["fixation_load"] and record["meta"]["repeats"] == 1
    names = {r["name"]: r for r in record["results"]}
    assert set(names) == {"fixation_load.parse", "fixation_load.cached"}
    assert names["fixation_load.parse"]["details"]["n_images"] == 50
    [ratio] = record["ratios"]
    assert ratio["value"] == pytest.approx(names["fixation_load.parse"]["median"]
                                           / names["fixation_load.cached"]["median"])
    printed = capsys.readouterr().out
    assert "fixation_load.parse" in printed and "NOT RUN" in printed and "N/A" in printed
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_cli_list(capsys):
    assert main(["bench", "--list"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in bench.BENCHMARKS) and "CUDA only" in printed


def test_format_summary_shows_targets_and_failures():
    record = run_suite(quick=True, progress=False, benchmarks=_fake_benchmarks())
    text = format_summary(record)
    assert "gt_relabel.loop" in text and "PASS" in text and "NOT RUN" in text and "N/A" in text
    assert "broken: FAILED: RuntimeError: no such backend" in text


# --- pieces of the real benchmarks -----------------------------------------------------------------
def test_resolve_amp():
    assert resolve_amp("auto", "cpu") is None
    assert resolve_amp(None, "cpu") is None and resolve_amp("off", "cuda") is None
    assert resolve_amp("bf16", "cpu") == "bf16" and resolve_amp("float16", "cpu") == "fp16"
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("fp8", "cpu")


def test_stage_proxy_times_calls_and_returns_float32_under_autocast():
    cfg = bench.BenchConfig(amp="bf16", device="cpu")
    conv = torch.nn.Conv2d(3, 4, 3).eval()
    clock = StageClock()
    proxy = clock.wrap(conv, "cnn", ["__call__"], context=cfg.autocast, float_outputs=True)
    out = proxy(torch.randn(1, 3, 8, 8))
    assert out.dtype == torch.float32 and out.shape == (1, 4, 6, 6)
    assert clock.seconds["cnn"] > 0
    with cfg.autocast():
        assert conv(torch.randn(1, 3, 8, 8)).dtype == torch.bfloat16  # what the proxy converts
    assert proxy.out_channels == 4 and proxy.eval() is proxy  # attributes pass through
    untimed = clock.wrap(conv, "other", ["forward"])
    with pytest.raises(TypeError, match="other"):
        untimed(torch.randn(1, 3, 8, 8))
    clock.reset()
    assert dict(clock.seconds) == {}


def test_acb_benchmark_really_compares_equal_ranks():
    [loop, batched] = bench.bench_acb(bench.BenchConfig(repeats=1))
    assert loop.name == "loop" and batched.name == "batched" and loop.repeats == 5
    assert loop.details["same_ranks"] is True and loop.details["sequences"] == 20


def test_random_ranking_split_shapes():
    split = bench.random_ranking_split(3, n_proposals=6, appearance_dim=8, seed=1)
    assert len(split) == 3 and split.features.n_proposals == 18
    assert split.features.arrays["appearance"].shape == (18, 8)
    boxes = split.features.arrays["boxes"]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 2] <= 640).all() and (boxes[:, 3] <= 480).all()
    assert all(sorted(r) == list(range(1, 7)) for r in split.gt_ranks)


# --- records ---------------------------------------------------------------------------------------
def test_load_records_skips_other_json_and_names_bad_files(tmp_path):
    record = run_suite(quick=True, progress=False, benchmarks=_fake_benchmarks())
    (tmp_path / "run.json").write_text(json.dumps(record))
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    assert list(load_records(tmp_path)) == ["run"]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_records(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing")


def test_committed_records_are_complete():
    folder = REPO / "benchmarks"
    if not folder.is_dir():
        pytest.skip("no benchmarks/ folder in this checkout")
    records = load_records(folder)
    assert "cpu-quick" in records
    for name, record in records.items():
        assert {t["name"] for t in record["targets"]} == {t.name for t in bench.TARGETS}, name
        assert not any(i.get("error") for i in record["benchmarks"].values()), name
        assert {r["benchmark"] for r in record["results"]} == set(record["meta"]["benchmarks"]), name


# --- the Table IV page's tables --------------------------------------------------------------------
def _fake_end_to_end(cfg):
    shares = {"detector": 0.2, "unisal": 0.1, "resnet": 0.6, "head_acb": 0.05, "other": 0.05}
    out = [Measurement("images_per_s", "e2e", "images/s", [2.0, 4.0, 3.0], details={"stage_share": shares})]
    out += [Measurement(f"{s}_ms", s, "ms/image", [1000 / 3 * share] * 3, "lower") for s, share in shares.items()]
    return out


def test_table4_frames_from_a_record():
    fakes = {"end_to_end": Benchmark("end_to_end", "fake", _fake_end_to_end), **_fake_benchmarks()}
    records = {"run": run_suite(quick=True, progress=False, benchmarks=fakes)}
    t4 = bench.table4_frame(records)
    assert list(t4.index) == ["SRCC", "F1", "FPS", "Platform"]
    assert t4.loc["FPS", "Ours (paper)"] == 20.5 and t4.loc["SRCC", "ASSR (paper)"] == 0.714
    assert t4.loc["FPS", "salrank: run"] == 3.0 and t4.loc["SRCC", "salrank: run"] is None
    assert t4.loc["Platform", "salrank: run"].endswith("quick")

    stages = bench.stage_frame(records).set_index("stage")
    whole = stages.loc["whole pipeline"]
    assert whole["FPS"] == 3.0 and whole["ms/image"] == pytest.approx(1000 / 3) and whole["paper FPS"] == 20.5
    resnet = stages.loc[bench.STAGE_LABELS["resnet"]]
    assert resnet["share"] == 0.6 and resnet["ms/image"] == pytest.approx(200.0) and resnet["FPS"] == pytest.approx(5.0)
    assert "EfficientDet-D0 alone (detectors benchmark)" not in stages.index  # no detectors benchmark ran

    targets = bench.targets_frame(records)["run"]
    assert targets["RA-SRGT relabel >= 30x the per-point loop"] == "PASS (110)"
    assert targets[bench.TARGETS[-1].description] == "n/a"
    assert targets["head FLOP rate >= 40% of the matmul rate"] == "not run"
    assert bench.ratios_frame(records).loc["ACB at n = 20: batched vs loop", "run"] == pytest.approx(5.0)
    runs = bench.runs_frame(records)
    assert runs.loc[0, "record"] == "run" and runs.loc[0, "device"] == "cpu"

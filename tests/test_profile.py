"""`harness profile`: one search step's memory and time (ROME Table 7) at a tiny shape on CPU."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import weakref
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.evidence.profile import SavedTensorCounter, profile_filename

#: a shape small enough for 2 CPU cores (Table 7's is batch 64, 16 channels, 8 cells, 32x32)
TINY = ["--bench", "s0-digits", "--batch-size", "8", "--channels", "8", "--layers", "5", "--image-size", "16",
        "--steps", "1", "--subnets", "6"]
#: name -> extra arguments. ROME with K=2 to keep the test short: each sample's graph is freed by its
#: backward, so the per-graph peak does not depend on K (only the number of forward passes does)
PROFILED = {
    "darts": ["--method", "darts"],
    "gdas": ["--method", "gdas"],
    "pcdarts_M2": ["--method", "pcdarts", "--partial", "2"],
    "pcdarts_M4": ["--method", "pcdarts", "--partial", "4"],
    "rome-v1": ["--method", "rome-v1", "--k", "2"],
    "rome-v2": ["--method", "rome-v2", "--k", "2"],
}


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict], Path]:
    out = tmp_path_factory.mktemp("profiles")
    results = {}
    for name, args in PROFILED.items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["profile", *args, *TINY, "--device", "cpu", "--json", "--out", str(out)])
        assert code == 0, buf.getvalue()
        lines = buf.getvalue().strip().splitlines()
        assert len(lines) == 1, "--json prints one object"
        results[name] = json.loads(lines[0])
    return results, out


@pytest.mark.parametrize("name", list(PROFILED))
def test_json_has_every_measure(profiles: tuple[dict[str, dict], Path], name: str) -> None:
    r = profiles[0][name]
    for key in ("saved_bytes", "param_bytes", "grad_bytes", "optimizer_state_bytes", "arch_param_bytes"):
        assert isinstance(r[key], int) and r[key] > 0, key
    assert r["cuda_peak_bytes"] is None  # CPU
    assert r["seconds_per_step"] > 0 and len(r["seconds"]) == 1
    assert r["shape"] == {"batch_size": 8, "channels": 8, "layers": 5, "image_size": 16, "num_classes": 10}
    assert r["saved_bytes"] == max(r["saved_bytes_per_pass"])
    # one graph per forward pass: 1 architecture + 1 weight pass, ROME K + K
    assert r["forward_passes"] == (4 if name.startswith("rome") else 2)


def test_saved_bytes_order_as_table_7(profiles: tuple[dict[str, dict], Path]) -> None:
    saved = {name: r["saved_bytes"] for name, r in profiles[0].items()}
    assert saved["rome-v2"] < saved["gdas"] < saved["darts"]
    assert saved["rome-v1"] < saved["gdas"]
    assert saved["pcdarts_M4"] < saved["pcdarts_M2"] < saved["darts"]


def test_partial_channels_shrink_parameters(profiles: tuple[dict[str, dict], Path]) -> None:
    r = profiles[0]
    assert r["pcdarts_M4"]["param_bytes"] < r["pcdarts_M2"]["param_bytes"] < r["darts"]["param_bytes"]
    assert r["pcdarts_M4"]["options"] == {"partial": 4}


def test_out_writes_one_file_per_profile(profiles: tuple[dict[str, dict], Path]) -> None:
    results, out = profiles
    names = sorted(p.name for p in out.glob("profile_*.json"))
    # the run-id slug of the changed options (PC-DARTS's default M = 4 is not named)
    assert names == sorted(["profile_darts.json", "profile_gdas.json", "profile_pcdarts_partial2.json",
                            "profile_pcdarts.json", "profile_rome-v1_k2.json", "profile_rome-v2_k2.json"])
    written = json.loads((out / "profile_gdas.json").read_text())
    assert written["saved_bytes"] == results["gdas"]["saved_bytes"]


def test_filename_names_the_variant() -> None:
    assert profile_filename({"method": "rome-v2", "options": {"k": 7, "td": True, "ga_theta": True,
                                                              "ga_alpha": True}}) == "profile_rome-v2.json"
    assert profile_filename({"method": "rome-v2", "options": {"k": 7, "td": False, "ga_theta": True,
                                                              "ga_alpha": True}}) == "profile_rome-v2_td0.json"
    assert profile_filename({"method": "pcdarts", "options": {"partial": 2}}) == "profile_pcdarts_partial2.json"


def test_counter_counts_a_storage_once_and_splits_graphs_at_backward() -> None:
    w = torch.nn.Parameter(torch.randn(100))
    counter = SavedTensorCounter({w.untyped_storage().data_ptr()})
    x = torch.randn(1000, requires_grad=True)
    with counter.hooks():
        y = x.exp()  # saves its output (4000 bytes)
        z = (y[:500] * y[500:]).sum()  # saves two views of y's storage: counted once
        (z + (w * w).sum()).backward()  # saves w twice, excluded (a parameter)
        (x.sin() * 1.0).sum().backward()  # a second graph: saves x
    assert len(counter.graphs) == 2
    assert counter.per_graph == [4000, 4000]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--method", "gdas", *TINY]) == 0
    out = capsys.readouterr().out
    assert "saved for backward" in out and "s per step" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "darts", "--k", "3"], "has no option 'k'"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--method", "gdas", "--bench", "s9-c10"], "unknown benchmark"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", *args, *TINY[2:]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--method", "gdas", *TINY, "--device", "cuda"]) == 2
    assert "cuda" in capsys.readouterr().err


def test_saved_bytes_distribution_over_sampled_subnets(profiles: tuple[dict[str, dict], Path]) -> None:
    results = profiles[0]
    for name, r in results.items():
        d = r["subnets"]
        # DARTS and PC-DARTS sample nothing: one pass, reported with the same fields
        n = 1 if name.startswith(("darts", "pcdarts")) else 6
        assert d["n"] == n and len(d["values"]) == n and d["sampled"] == (n > 1), name
        assert d["mean_ci95"][0] <= d["mean"] <= d["mean_ci95"][1] and d["min"] <= d["mean"] <= d["max"], name
        assert d["min"] == min(d["values"]) and d["max"] == max(d["values"])
        if n == 1:  # the one pass is the step's architecture pass (its first graph: DARTS updates alpha first)
            assert d["values"] == [r["saved_bytes_per_pass"][0]] and d["std"] == 0, name
    assert len(set(results["rome-v2"]["subnets"]["values"])) > 1  # sampled subnets differ in size
    mean = {name: r["subnets"]["mean"] for name, r in results.items()}
    assert mean["rome-v2"] < mean["gdas"] < mean["darts"]


def test_distribution_is_reproducible_from_its_seed() -> None:
    from harness.evidence.profile import saved_bytes_distribution
    from methods.base import SearchHParams, build_method
    from spaces.registry import build_supernet

    def once(seed: int) -> list[int]:
        torch.manual_seed(0)
        method = build_method("rome-v2", build_supernet("s0", c=4, layers=3, num_classes=10), SearchHParams(),
                              {"k": 1})
        x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
        return saved_bytes_distribution(method, (x, y), n=5, seed=seed)["values"]

    # the same subnets: equal up to the counter's few-byte noise (storages keyed by data_ptr, which the
    # allocator may reuse between two small tensors of one graph)
    assert once(3) == pytest.approx(once(3), rel=1e-3)
    with pytest.raises(ValueError, match="at least 2 subnets"):
        from harness.evidence.profile import saved_bytes_distribution as f
        f(None, (torch.zeros(1), torch.zeros(1)), n=1)


def test_sampling_is_a_method_property() -> None:
    """"Samples nothing" comes from the method interface, not from method names."""
    from methods.base import method_class

    assert not method_class("darts").samples and not method_class("pcdarts").samples
    assert all(method_class(m).samples for m in ("gdas", "rome-v1", "rome-v2"))


@pytest.mark.parametrize(("name", "draws"), [("darts", 1), ("pcdarts", 1), ("gdas", 4), ("rome-v2", 4)])
def test_one_forward_per_draw_and_one_draw_without_sampling(name: str, draws: int) -> None:
    """A method that samples nothing is measured by one pass, not ``n`` equal ones (each was a full
    supernet pass: minutes at Table 7's shape); no pass runs a backward (it saves nothing)."""
    from harness.evidence.profile import saved_bytes_distribution
    from methods.base import build_method, method_hparams
    from spaces.registry import build_supernet

    torch.manual_seed(0)
    method = build_method(name, build_supernet("s0", c=4, layers=3, num_classes=10), method_hparams(name),
                          {"k": 1} if name == "rome-v2" else None)
    calls = []
    method.model.register_forward_hook(lambda *_: calls.append(1))
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2,))
    d = saved_bytes_distribution(method, (x, y), n=4)
    assert len(calls) == 1 + draws  # one uncounted pass first
    assert d["n"] == draws and len(d["values"]) == draws
    assert all(p.grad is None for p in [*method.weight_parameters(), *method.arch_parameters()])


def test_a_counted_forward_without_backward_frees_its_graph() -> None:
    """The counter's pack hook once returned each saved tensor itself: a saved output then held its own
    grad_fn, a cycle that kept the graph alive when no backward ran (a forward-only pass leaked its
    7.5 GB at Table 7's shape for DARTS, and the steps after it ran out of memory)."""
    w = torch.nn.Parameter(torch.randn(100))
    counter = SavedTensorCounter({w.untyped_storage().data_ptr()})
    with counter.hooks():
        y = (torch.randn(100) * w).exp()  # exp saves its output
        alive = weakref.ref(y)
        loss = y.sum()
    del y, loss
    gc.collect()
    assert alive() is None
    assert counter.per_graph == [800]  # the input of * and the output of exp; w excluded


def test_default_steps_stop_once_they_took_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --steps, 1 to 3 steps are timed, stopping once they took AUTO_SECONDS, and the counted
    step is the figure when it alone took that long (one DARTS step at Table 7's shape is 20-30 s on two
    cores); --steps N times exactly N steps after the counted one."""
    import harness.evidence.profile as hp

    cfg = hp.ProfileConfig("gdas", "s0-digits", batch_size=2, channels=4, layers=3, image_size=8, subnets=0)
    r = hp.profile_step(cfg, "cpu")
    assert r["steps"] == len(r["seconds"]) == hp.AUTO_STEPS and not r["counted_step_timed"]  # tiny steps
    monkeypatch.setattr(hp, "AUTO_SECONDS", 0.0)
    r = hp.profile_step(cfg, "cpu")
    assert r["steps"] == len(r["seconds"]) == 1 and r["counted_step_timed"]
    r = hp.profile_step(dataclasses.replace(cfg, steps=2), "cpu")
    assert r["steps"] == len(r["seconds"]) == 2 and not r["counted_step_timed"]

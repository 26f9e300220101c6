"""`arch_batches`: each architecture step averages the task-loss gradient over several batches."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import kill_search_after_first_checkpoint, shared_table

from workbench import runs
from workbench.config import ConfigError
from workbench.nas.architect import Architect
from workbench.nas.search import build_supernet, resolve_config, run_search

SPACE = dict(channels=4, nodes=2, num_cells=3, reductions=[0, 2], fusion_channels=4, gcn=False)
TINY = dict(dataset="random", input_size=[32, 64], crop_size=[32, 64], stem_channels=4, head_channels=4,
            batch_size=2, max_val_images=2, warmup_epochs=0, lut_warmup=0, lut_repeats=1, threads=1,
            device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _supernet():
    cfg = resolve_config({"preset": "lgcnet", **TINY, **SPACE})
    torch.manual_seed(0)
    return build_supernet(cfg, 5)


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(2, 3, 32, 64, generator=g), torch.randint(0, 5, (2, 32, 64), generator=g)) for _ in range(n)]


def _reference_grads(model, batches):
    """The mean over the batches of each batch's own task-loss gradient on the alphas, by autograd."""
    total = [torch.zeros_like(p) for p in model.arch_parameters()]
    for x, y in batches:
        loss = F.cross_entropy(model(x, model.arch_weights(sample=True)), y, ignore_index=255)
        grads = torch.autograd.grad(loss, model.arch_parameters(), allow_unused=True)
        total = [t + (g if g is not None else 0) / len(batches) for t, g in zip(total, grads)]
    return total


@pytest.mark.parametrize("n", [1, 3])
def test_step_gradient_is_the_mean_of_each_batch_gradient(n):
    model = _supernet().train()
    reference = _reference_grads(copy.deepcopy(model), _batches(n))
    # lr 0: Adam leaves the alphas where they are and the gradient stays readable after the step
    architect = Architect(model, None, lr=0.0, weight_decay=0.0, latency_weight=0.0, target_latency_ms=None)
    (x, y), *more = _batches(n)
    loss = architect.step(x, y, more)
    got = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.arch_parameters()]
    assert any(r.abs().sum() > 0 for r in reference)
    for g, r in zip(got, reference):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-7)
    with torch.no_grad():
        mean = sum(float(F.cross_entropy(model(bx, model.arch_weights()), by)) for bx, by in _batches(n)) / n
    assert loss == pytest.approx(mean, rel=1e-4)


def test_search_with_arch_batches_records_it_and_differs_from_one_batch(tmp_path):
    cfg = {"preset": "lgcnet", **TINY, **SPACE, "epochs": 1, "steps_per_epoch": 2, "lut_cache_dir": str(tmp_path / "lut")}
    one = run_search(cfg, tmp_path / "one")
    two = run_search({**cfg, "arch_batches": 2}, tmp_path / "two")
    assert one["status"] == two["status"] == "finished"
    assert runs.RunDir(tmp_path / "two").read_config()["arch_batches"] == 2
    assert runs.RunDir(tmp_path / "one").read_config()["arch_batches"] == 1
    a1, a2 = runs.RunDir(tmp_path / "one").alphas()[-1], runs.RunDir(tmp_path / "two").alphas()[-1]
    assert a1["cells"][0]["alpha"] != a2["cells"][0]["alpha"]  # the extra batches moved the alphas differently


def test_killed_search_with_arch_batches_resumes_to_the_same_alphas(tmp_path):
    """The extra architecture batches come from per-epoch seeded passes: a search killed after a
    checkpoint and resumed ends where an uninterrupted one does."""
    cfg = {"preset": "lgcnet", **TINY, **SPACE, "epochs": 4, "seed": 3, "arch_batches": 3,
           "lut_cache_dir": str(tmp_path / "lut")}
    cfg["lut_path"] = shared_table(cfg, tmp_path / "lut.json")
    run_search(cfg, tmp_path / "reference")
    ckpt = kill_search_after_first_checkpoint("lgcnet", cfg, tmp_path / "killed")
    assert torch.load(ckpt, weights_only=True)["epoch"] < 3
    assert run_search(cfg, tmp_path / "killed", resume=True)["status"] == "finished"
    assert (json.loads((tmp_path / "killed" / "genotype.json").read_text())
            == json.loads((tmp_path / "reference" / "genotype.json").read_text()))
    assert runs.RunDir(tmp_path / "killed").alphas()[-1]["cells"] == runs.RunDir(tmp_path / "reference").alphas()[-1]["cells"]


def test_arch_batches_below_one_is_refused():
    with pytest.raises(ConfigError, match="arch_batches"):
        resolve_config({"preset": "lgcnet", "arch_batches": 0})


def test_step_backpropagates_into_the_architecture_only_with_the_full_backward_gradient():
    """The restricted backward skips the weight gradients and leaves the alphas' bit-identical."""
    model = _supernet().train()
    full = copy.deepcopy(model)
    (x, y), *more = _batches(2)
    torch.manual_seed(3)  # the same Gumbel sample on both sides
    architect = Architect(model, None, lr=0.0, weight_decay=0.0, latency_weight=0.0, target_latency_ms=None)
    architect.step(x, y, more)
    torch.manual_seed(3)
    for bx, by in [(x, y), *more]:
        loss = F.cross_entropy(full(bx, full.arch_weights(sample=True)), by, ignore_index=255) / 2
        loss.backward()
    assert all(p.grad is None for p in model.weight_parameters())
    assert any(p.grad is not None for p in full.weight_parameters())
    for got, ref in zip(model.arch_parameters(), full.arch_parameters()):
        assert torch.equal(got.grad, ref.grad)


def test_extra_architecture_passes_never_repeat_another_epochs_shuffle():
    """Salts 0-30 keep the seeds stored runs used; later extra passes do not collide with the next
    epoch's weight or architecture pass (the linear form gave epoch 0 salt 31 == epoch 1 salt 0)."""
    from workbench.nas.search_data import shuffle_seed

    assert shuffle_seed(3, 2, 5) == 3 * 7919 + 2 * 31 + 5  # unchanged for every stored run
    seeds = {(e, s): shuffle_seed(3, e, s) for e in range(4) for s in range(200)}
    assert len(set(seeds.values())) == len(seeds)

"""Retrain recipes: presets and overrides, schedules, OHEM, distillation with a cached teacher,
the timed memory-format/precision choice, and exact resume with a non-default recipe."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from test_seg_helpers import interrupted_then_resumed, retrain_config, write_genotype

from workbench.allocator import loaded_allocator
from workbench.config import from_dict
from workbench.errors import ConfigError
from workbench.runs import RunDir
from workbench.seg import recipes, retrain, throughput
from workbench.seg.losses import Objective, distillation_kl, ohem_cross_entropy
from workbench.seg.retrain import RetrainConfig, poly_lr, run_retrain
from workbench.seg.teacher import teacher_config, teacher_key

# --- presets ---------------------------------------------------------------------------------


def test_plain_recipe_is_the_old_default_behaviour():
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2"))
    assert record == {"name": "plain-v1", "version": 1, "values": record["values"], "overridden": []}
    expected = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "poly",
                "poly_power": 0.9, "warmup": 0.0, "scale_range": (0.5, 2.0), "flip": True, "loss": "ce",
                "distill_weight": 0.0, "memory_format": "contiguous", "precision": "fp32", "preload": False,
                "batch_size": 8}
    assert {k: values[k] for k in expected} == expected
    for step in (0, 1, 57, 99):
        assert recipes.learning_rate(values, step, 100) == poly_lr(0.01, step, 100, 0.9)


def test_explicit_fields_override_the_recipe_and_are_named():
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2", recipe="fast-v1", lr=0.02,
                                                   optimizer="adamw"))
    assert values["lr"] == 0.02 and values["optimizer"] == "adamw"
    assert record["overridden"] == ["lr"]  # adamw is fast-v1's own value
    assert values["schedule"] == recipes.RECIPES["fast-v1"].schedule


@pytest.mark.parametrize("changes, field", [
    ({"recipe": "turbo-v9"}, "recipe"), ({"optimizer": "lion"}, "optimizer"), ({"loss": "dice"}, "loss"),
    ({"scale_range": [2.0, 1.0]}, "scale_range"), ({"warmup": 1.5}, "warmup"),
    ({"distill_weight": 1.0}, "teacher"), ({"precision": "fp8"}, "precision"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size")])
def test_bad_recipe_values_are_one_line_config_errors(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}: ") as err:
        from_dict(RetrainConfig, {"baseline": "fpn_mobilenet_v2", **changes})
    assert "\n" not in str(err.value)


def test_warmup_then_cosine_by_hand():
    values = {**recipes.resolve(RetrainConfig(baseline="x", recipe="fast-v1"))[0], "lr": 1.0, "warmup": 0.1}
    lrs = [recipes.learning_rate(values, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # 10 warm-up steps
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lrs[99] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_fasterseg_recipe_exponential_decay_by_hand():
    values, record = recipes.resolve(RetrainConfig(baseline="x", recipe="fasterseg-v1"))
    assert (values["optimizer"], values["lr"], values["weight_decay"], values["loss"]) == ("sgd", 0.01, 5e-4, "ohem")
    assert values["scale_range"] == (0.75, 1.25) and record["name"] == "fasterseg-v1"
    lrs = [recipes.learning_rate(values, s, 600) for s in range(600)]
    # per step over 600 steps = per epoch over 600 epochs: step k is 0.01 x 0.992^k
    for k in (0, 1, 300, 599):
        assert lrs[k] == pytest.approx(0.01 * 0.992 ** k, rel=1e-9)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ConfigError, match="^exp_final: "):
        from_dict(RetrainConfig, {"baseline": "x", "recipe": "fasterseg-v1", "exp_final": 1.5})


# --- losses ----------------------------------------------------------------------------------


def test_ohem_matches_a_hand_computed_reference():
    # 1 image, 2 classes, 4 pixels (one ignored). p(true) = softmax of the logit gap.
    logits = torch.tensor([[[[2.0, 0.0], [0.0, -1.0]], [[0.0, 0.0], [1.0, 1.0]]]])  # [1, 2, 2, 2]
    labels = torch.tensor([[[0, 1], [1, 255]]])
    ce = [math.log(1 + math.exp(-2.0)), math.log(2.0), math.log(1 + math.exp(-1.0))]  # 0.127, 0.693, 0.313
    # thresh 0.7 -> hard when CE > -log 0.7 = 0.357: only the 0.693 pixel; min_kept 1/3 of 3 -> 1 pixel
    assert float(ohem_cross_entropy(logits, labels, 255, 0.7, 1 / 3)) == pytest.approx(ce[1])
    # min_kept 2/3 -> 2 pixels but only 1 is hard: the 2 largest losses
    assert float(ohem_cross_entropy(logits, labels, 255, 0.7, 2 / 3)) == pytest.approx((ce[1] + ce[2]) / 2)
    # thresh 0.95 -> hard when CE > 0.051: all three pixels
    assert float(ohem_cross_entropy(logits, labels, 255, 0.95, 1 / 3)) == pytest.approx(sum(ce) / 3)
    assert float(ohem_cross_entropy(logits, torch.full_like(labels, 255), 255)) == 0.0


def test_distillation_kl_by_hand_and_resized_student():
    t = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    s = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)  # half the teacher's size
    p, q = torch.softmax(torch.tensor([0.5, 0.0]), 0), torch.softmax(torch.tensor([0.0, 0.5]), 0)
    kl = float((p * (p / q).log()).sum()) * 4  # at T = 2: KL of the softened pair times T^2
    assert float(distillation_kl(s, t, temperature=2.0)) == pytest.approx(kl, rel=1e-5)
    assert float(distillation_kl(t, t)) == pytest.approx(0.0, abs=1e-7)


def test_distillation_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    teacher = torch.nn.Conv2d(3, 5, 3, padding=1).eval().requires_grad_(False)
    student = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 5, 1))
    objective = Objective(ignore_index=255, teacher=teacher, distill_weight=1.0, temperature=2.0)
    images, labels = torch.randn(2, 3, 16, 16), torch.randint(0, 5, (2, 16, 16))
    labels[:, :4] = 255  # ignored pixels count in neither term

    def kd() -> float:
        with torch.no_grad():
            return float(distillation_kl(student(images), teacher(images), labels, 255, 2.0))

    opt = torch.optim.Adam(student.parameters(), lr=0.01)
    before = kd()
    losses = [retrain._train_step(student, opt, images, labels, 255, objective=objective) for _ in range(10)]
    assert kd() < 0.7 * before and losses[-1] < losses[0]
    assert all(p.grad is None for p in teacher.parameters())


# --- runs ------------------------------------------------------------------------------------


def test_recipe_round_trips_through_the_run_record(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v1", lr=None, scale_range=None,
                         weight_decay=0.02, memory_format="contiguous", precision="fp32", loss="ohem")
    record = run_retrain(cfg, tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    values, expected = recipes.resolve(from_dict(RetrainConfig, cfg))
    assert record["recipe"] == expected
    # the helper's batch of 2 overrides the recipe's 8 as well
    assert set(expected["overridden"]) == {"weight_decay", "memory_format", "precision", "loss", "batch_size"}
    assert stored["recipe"] == "fast-v1" and stored["recipe_version"] == 1 and stored["lr"] == values["lr"]
    names = {f for f in stored if f in RetrainConfig.__dataclass_fields__}
    again = recipes.resolve(from_dict(RetrainConfig, {k: stored[k] for k in names}))
    assert again[0] == values and again[1]["values"] == expected["values"]
    assert record["throughput"] == {"memory_format": "contiguous", "precision": "fp32", "measured": False,
                                    "allocator": loaded_allocator()}
    rows = RunDir(tmp_path / "run").metrics()
    assert rows[0]["lr"] < values["lr"]  # cosine decay reached


def test_the_recipe_sets_the_batch_unless_the_config_does(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "g.json")
    fixed = {"lr": None, "epochs": 1, "memory_format": "contiguous", "precision": "fp32"}
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v4", batch_size=None, **fixed)
    with pytest.raises(ConfigError, match="batch_size: 16 is larger than the 8 training images"):
        run_retrain(cfg, tmp_path / "v4")  # fast-v4's batch reaches the loader
    record = run_retrain(retrain_config(genotype, tiny_cityscapes, recipe="plain-v1", batch_size=None, lr=None,
                                        epochs=1), tmp_path / "plain")
    assert record["steps_per_epoch"] == 1 and record["recipe"]["values"]["batch_size"] == 8  # 8 images / 8
    record = run_retrain({**cfg, "batch_size": 4}, tmp_path / "v4-b4")
    assert record["steps_per_epoch"] == 2 and "batch_size" in record["recipe"]["overridden"]
    assert json.loads((tmp_path / "v4-b4" / "config.json").read_text())["batch_size"] == 4


def test_auto_format_is_timed_recorded_and_reused_on_resume(tmp_path, tiny_cityscapes, monkeypatch):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v1", memory_format="auto", precision="fp32",
                         epochs=2)
    boom = {"step": 0}
    step = retrain._train_step

    def failing_step(*args, **kwargs):
        if kwargs.get("where", "").startswith("train loss"):
            boom["step"] += 1
            if boom["step"] == 6:
                raise RuntimeError("killed")
        return step(*args, **kwargs)

    monkeypatch.setattr(retrain, "_train_step", failing_step)
    with pytest.raises(RuntimeError):
        run_retrain(cfg, tmp_path / "run")
    first = RunDir(tmp_path / "run").record()["throughput"]
    assert first["measured"] and set(first["step_ms"]) == {"contiguous+fp32", "channels_last+fp32"}
    assert first["not_reproducible"] == []
    monkeypatch.setattr(throughput, "choose", lambda *a, **k: pytest.fail("re-measured on resume"))
    monkeypatch.setattr(retrain, "loaded_allocator", lambda: "tcmalloc")  # resumed under another allocator
    resumed = run_retrain({**cfg, "resume": True}, tmp_path / "run")
    assert resumed["throughput"]["memory_format"] == first["memory_format"] and resumed["throughput"]["reused"]
    assert resumed["throughput"]["step_ms"] == first["step_ms"]  # the first run's timings stay in the record
    assert resumed["throughput"]["allocator"] == "tcmalloc"
    assert resumed["throughput"]["allocator_before_resume"] == first["allocator"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["throughput"]["memory_format"] == first["memory_format"]


@pytest.mark.parametrize("fmt, prec", [("channels_last", "fp32"), ("contiguous", "bf16")])
def test_resume_is_exact_with_the_fast_recipe(tmp_path, tiny_cityscapes, monkeypatch, fmt, prec):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v1", memory_format=fmt, precision=prec,
                         loss="ohem", epochs=3, eval_every=1)
    straight = run_retrain(cfg, tmp_path / "straight")
    resumed = interrupted_then_resumed(monkeypatch, cfg, tmp_path / "killed")
    a = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    for key, value in b["model"].items():
        assert torch.equal(a["model"][key], value), key
    assert resumed["metrics"]["miou"] == straight["metrics"]["miou"]


def test_student_with_a_cached_teacher(tmp_path, tiny_cityscapes, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEACHER_CACHE", str(tmp_path / "teachers"))
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, teacher="linknet_mobilenetv3_small", distill_weight=1.0,
                         distill_temperature=2.0, teacher_epochs=1, epochs=1)
    first = run_retrain(cfg, tmp_path / "a")
    info = first["teacher"]
    assert info["cache"] == "miss" and info["baseline"] == "linknet_mobilenetv3_small" and info["epochs"] == 1
    teacher_run = RunDir(info["run_dir"])
    assert teacher_run.path.parent == tmp_path / "teachers"
    trec = teacher_run.record()
    assert trec["status"] == "finished" and trec["kind"] == "baseline" and trec["teacher"] is None
    second = run_retrain({**cfg, "seed": 4}, tmp_path / "b")  # another student seed: the same teacher
    assert second["teacher"]["cache"] == "hit" and second["teacher"]["key"] == info["key"]
    assert second["metrics"]["params_m"] == first["metrics"]["params_m"]  # the student, not the teacher
    other = run_retrain({**cfg, "teacher_epochs": 2}, tmp_path / "c")
    assert other["teacher"]["cache"] == "miss" and other["teacher"]["key"] != info["key"]


def test_teacher_key_follows_data_recipe_and_epochs_not_runtime(tmp_path, tiny_cityscapes, tiny_camvid):
    base = from_dict(RetrainConfig, retrain_config(None, tiny_cityscapes, baseline="x", teacher="fpn_mobilenet_v2",
                                                   distill_weight=1.0))

    def key(**changes):
        cfg = from_dict(RetrainConfig, {**retrain_config(None, tiny_cityscapes, baseline="x",
                                                         teacher="fpn_mobilenet_v2", distill_weight=1.0), **changes})
        return teacher_key(teacher_config(cfg, recipes.resolve(cfg)[0]))[0]

    assert key() == teacher_key(teacher_config(base, recipes.resolve(base)[0]))[0]
    assert key(threads=2, device="cpu", seed=9) == key()  # runtime fields and the student's seed
    assert key(teacher_epochs=7) != key()
    assert key(recipe="fast-v1") != key()
    assert key(dataset="camvid", data_root=str(tiny_camvid)) != key()
    assert key(teacher_seed=1) != key()


def test_auto_candidates_on_a_bf16_cpu_are_every_pair_and_the_check_decides(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(throughput, "_cpu_has_bf16", lambda: True)
    pairs = [(f, p) for f in ("contiguous", "channels_last") for p in ("fp32", "bf16")]
    assert throughput.candidates("auto", "auto", cpu) == pairs
    assert throughput.candidates("channels_last", "bf16", cpu) == [("channels_last", "bf16")]  # asked for
    assert throughput.candidates("auto", "fp32", cpu) == [("contiguous", "fp32"), ("channels_last", "fp32")]


def test_choose_drops_a_candidate_whose_steps_differ_run_to_run():
    """A pair that trains differently call to call (as channels_last + bf16 does for dilated depthwise
    convolutions on the AMX Xeon) is timed but never chosen, and the record names it."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 1))
    images, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8))
    calls = {"n": 0}

    def make_step(twin, fmt, prec):
        opt = torch.optim.SGD(twin.parameters(), lr=0.1)
        noise = torch.Generator().manual_seed(calls["n"])  # a new stream per run: not reproducible
        calls["n"] += 1

        def step():
            opt.zero_grad()
            F.cross_entropy(twin(throughput.to_format(images, fmt)), labels).backward()
            if (fmt, prec) == ("channels_last", "bf16"):
                model_grad = next(twin.parameters()).grad
                model_grad.add_(torch.randn(model_grad.shape, generator=noise) * 1e-3)
            opt.step()
        return step

    pairs = [(f, p) for f in ("contiguous", "channels_last") for p in ("fp32", "bf16")]
    choice = throughput.choose(model, make_step, pairs, torch.device("cpu"), images, rounds=1, steps=1)
    assert choice["not_reproducible"] == ["channels_last+bf16"]
    assert set(choice["step_ms"]) == {f"{f}+{p}" for f, p in pairs}  # timed all the same
    assert (choice["memory_format"], choice["precision"]) != ("channels_last", "bf16")
    cpu = torch.device("cpu")
    assert "0.weight" in throughput.differing_tensors(model, make_step, pairs[3], cpu)  # the noisy tensor
    assert throughput.differing_tensors(model, make_step, pairs[1], cpu, steps=5) == []


def test_fast_v2_is_fast_v1_with_one_auxiliary_head():
    v1, v2 = recipes.get_recipe("fast-v1"), recipes.get_recipe("fast-v2")
    differ = {f for f in recipes.RECIPE_FIELDS if getattr(v1, f) != getattr(v2, f)}
    assert differ == {"aux_weight"} and (v2.aux_weight, v2.aux_strides) == (0.4, (16,))  # 1/16: the default
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2", recipe="fast-v2"))
    assert record["name"] == "fast-v2" and record["overridden"] == [] and values["aux_weight"] == 0.4


def test_fast_v3_is_fast_v2_with_twice_the_peak_rate():
    v2, v3 = recipes.get_recipe("fast-v2"), recipes.get_recipe("fast-v3")
    differ = {f for f in recipes.RECIPE_FIELDS if getattr(v2, f) != getattr(v3, f)}
    assert differ == {"lr"} and (v2.lr, v3.lr) == (4e-3, 8e-3) and v3.version == 3
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2", recipe="fast-v3"))
    assert record["name"] == "fast-v3" and record["version"] == 3 and values["lr"] == 8e-3
    assert values["aux_weight"] == 0.4 and values["optimizer"] == "adamw" and values["schedule"] == "cosine"


def test_fast_v4_is_fast_v3_at_batch_16_with_the_linear_scaling_rule():
    v3, v4 = recipes.get_recipe("fast-v3"), recipes.get_recipe("fast-v4")
    differ = {f for f in recipes.RECIPE_FIELDS if getattr(v3, f) != getattr(v4, f)}
    assert differ == {"batch_size", "lr", "warmup"} and v4.version == 4
    assert (v4.batch_size, v4.lr) == (2 * v3.batch_size, 2 * v3.lr) and v4.warmup == 0.05
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2", recipe="fast-v4"))
    assert values["batch_size"] == 16 and record["overridden"] == []
    values, record = recipes.resolve(RetrainConfig(baseline="fpn_mobilenet_v2", recipe="fast-v4", batch_size=8))
    assert values["batch_size"] == 8 and record["overridden"] == ["batch_size"]
    assert all(r.batch_size == 8 for r in recipes.RECIPES.values() if r.name != "fast-v4")  # as they were published


def test_auto_picks_bf16_only_by_a_clear_margin_and_never_an_unreproducible_candidate():
    cl, cb, c32 = ("channels_last", "fp32"), ("contiguous", "bf16"), ("contiguous", "fp32")
    assert throughput.pick({c32: 0.498, cb: 0.414, cl: 0.418}, []) == cl  # bf16 1 % ahead: fp32 kept
    assert throughput.pick({c32: 0.498, cb: 0.380, cl: 0.418}, []) == cb  # 10 % ahead: bf16
    assert throughput.pick({c32: 0.498, cb: 0.380, cl: 0.418}, [cb]) == cl
    assert throughput.pick({c32: 0.498, cb: 0.380}, [c32]) == cb  # no reproducible fp32 left to prefer
    assert throughput.pick({c32: 0.5, cl: 0.4}, [c32, cl]) == cl  # none reproducible: the fastest


def test_objective_plain_is_cross_entropy():
    logits, labels = torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 5, 5))
    values = recipes.resolve(RetrainConfig(baseline="x"))[0]
    obj = Objective.from_values(values, 255)
    assert torch.equal(obj(logits, labels), F.cross_entropy(logits, labels, ignore_index=255))


def test_retrain_help_names_every_recipe(capsys, monkeypatch):
    from workbench.cli import build_parser

    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at hyphens: keep each name on one line
    with pytest.raises(SystemExit):
        build_parser().parse_args(["retrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in recipes.RECIPES), text


def test_resumed_choice_keeps_the_checkpoints_pair_and_names_an_allocator_change():
    record = {"memory_format": "channels_last", "precision": "fp32", "step_ms": {"a": 1.0}, "allocator": "system"}
    assert throughput.resumed_choice(None, None, "system") is None  # nothing to resume: time afresh
    same = throughput.resumed_choice({"memory_format": "contiguous", "precision": "fp32"}, record, "system")
    assert same["memory_format"] == "contiguous" and same["step_ms"] == {"a": 1.0}  # the checkpoint's pair wins
    assert same["reused"] and "allocator_before_resume" not in same
    moved = throughput.resumed_choice(None, record, "tcmalloc")
    assert moved["allocator"] == "tcmalloc" and moved["allocator_before_resume"] == "system"

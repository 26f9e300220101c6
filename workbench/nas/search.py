"""The search loop: alternate weight and architecture steps, record every epoch, resume, derive.

`run_search(config, run_dir)` is what `workbench.steps.search` and `workbench search` call. Per
epoch: (train split, first half) SGD weight steps alternating with (second half) architecture steps
(after `warmup_epochs`), then mIoU of the supernet on the held-out split, one line each in
metrics.jsonl and alphas.jsonl, and a checkpoint. Every epoch reseeds torch/numpy/random from
(seed, epoch), so a run killed at any point and resumed from its last checkpoint ends with the same
genotype as an uninterrupted one.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from workbench.allocator import loaded_allocator
from workbench.config import from_dict, resume_config, to_dict
from workbench.device import resolve_device, seed_everything, set_threads
from workbench.errors import CheckpointError, ConfigError, check_finite
from workbench.jsonio import atomic_write_json, truncate_jsonl
from workbench.nas.architect import Architect
from workbench.nas.genotypes import Genotype, save_genotype
from workbench.nas.latency.table import (
    build_lut,
    calibrate_cached,
    check_lut_setting,
    load_lut,
    predict_genotype_latency,
)
from workbench.nas.precision import Precision
from workbench.nas.presets import PRESETS, SearchConfig, get_preset, split_values, upgrade_stored
from workbench.nas.search_data import (
    NUM_CLASSES,
    build_datasets,
    evaluate_miou,
    extra_arch_batches,
    loader,
    split_halves,
)
from workbench.nas.space import get_space
from workbench.nas.supernet import Supernet
from workbench.nas.target import (
    adapt_weight,
    baseline_ratio_timer,
    derive_to_target,
    measure_to_target,
    miss_pct,
    reference_builder,
    resolve_target,
    target_references,
)
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.seg import distributed as dist_utils
from workbench.seg.distributed import DistInfo

log = logging.getLogger(__name__)


def resolve_config(config: SearchConfig | dict | None) -> SearchConfig:
    """A SearchConfig as is; a dict is laid over its 'preset' (default gas) and validated. A stored
    config.json of workbench 0.1 (flat space settings) is read too."""
    if isinstance(config, SearchConfig):
        return from_dict(SearchConfig, config)
    values = dict(config or {})
    name = values.pop("preset", "gas")
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return get_preset(name, **values)


def build_supernet(cfg: SearchConfig, num_classes: int) -> Supernet:
    """The supernet of cfg.space (the search-space registry, `workbench.nas.space`)."""
    return get_space(cfg.space.name).build_supernet(cfg, num_classes)


def make_genotype(cfg: SearchConfig, body, num_classes: int, expected_latency_ms: float | None = None) -> Genotype:
    """A derived body inside the genotype container: stem, head, classes, input size, preset."""
    space = get_space(cfg.space.name)
    return Genotype(space=space.name, body=body, stem_channels=cfg.stem_channels, head_channels=cfg.head_channels,
                    num_classes=num_classes, input_size=tuple(cfg.input_size), preset=cfg.preset,
                    space_version=space.version, expected_latency_ms=expected_latency_ms)


def lut_for(cfg: SearchConfig, num_classes: int, device: str | None = None) -> dict:
    """Build (or take from the cache) the latency table of this search space at cfg.input_size."""
    model = build_supernet(cfg, num_classes)
    lut = build_lut(model.lut_probes(cfg.input_size), cfg.input_size, device or cfg.device, cfg.threads,
                    cfg.lut_warmup, cfg.lut_repeats, cfg.lut_cache_dir or None,
                    meta={"preset": cfg.preset, "num_classes": num_classes}, rounds=cfg.lut_rounds,
                    runtime=cfg.lut_runtime, dtype=cfg.lut_dtype)
    if cfg.lut_calibrate:
        lut = calibrate_cached(
            lut, lambda: [make_genotype(cfg, b, num_classes) for b in model.random_bodies(cfg.lut_calibrate, 12345)],
            device or cfg.device, cfg.threads, cfg.lut_cache_dir or None, cfg.lut_warmup, cfg.lut_repeats,
            rounds=cfg.lut_rounds, references=target_references(cfg, num_classes), rebuild=reference_builder)
    return lut


def build_table(values: dict, out: str | Path | None = None, genotype: str | Path | None = None) -> dict:
    """`workbench lut build`: the latency table of a preset's search space (or of one genotype's
    pieces) at `input_size` on `device`, cached per device fingerprint; written to out if given."""
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import genotype_probes

    if out is not None:
        check_output(out, inputs=[genotype])
    cfg = resolve_config(values)
    if genotype:
        g = load_genotype(genotype)
        lut = build_lut(genotype_probes(g, cfg.input_size), cfg.input_size, cfg.device, cfg.threads,
                        cfg.lut_warmup, cfg.lut_repeats, cfg.lut_cache_dir or None, meta={"preset": g.preset},
                        rounds=cfg.lut_rounds, runtime=cfg.lut_runtime, dtype=cfg.lut_dtype)
        lut["predicted_ms"] = round(predict_genotype_latency(g, lut), 4)
    else:
        lut = lut_for(cfg, NUM_CLASSES[cfg.dataset])
    if out is not None:
        atomic_write_json(out, lut)
    return lut


# -- schedule ----------------------------------------------------------------------------------
def temperature(cfg: SearchConfig, epoch: int) -> float | None:
    """Gumbel temperature, annealed exponentially from tau_start to tau_end over the epochs."""
    if cfg.relaxation != "gumbel":
        return None
    frac = epoch / max(cfg.epochs - 1, 1)
    return cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** frac


def weight_lr(cfg: SearchConfig, epoch: int) -> float:
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs))


# -- the loop ----------------------------------------------------------------------------------
class Search:
    """Everything a search holds between epochs; `state()` is the checkpoint."""

    def __init__(self, cfg: SearchConfig, run: RunDir, lut: dict, num_classes: int, device: torch.device,
                 target: dict | None = None, info: DistInfo | None = None):
        self.cfg, self.run, self.lut, self.num_classes, self.device = cfg, run, lut, num_classes, device
        self.target = target
        self.info = info or DistInfo()
        seed_everything(cfg.seed)
        self.model = build_supernet(cfg, num_classes).to(device)
        self.latency = self.model.latency_model(lut).to(device)
        self.w_opt = torch.optim.SGD(self.model.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay)
        fixed_target = target["ms"] if target and cfg.latency_control == "fixed" else None
        self.architect = Architect(self.model, self.latency, lr=cfg.arch_lr, weight_decay=cfg.arch_weight_decay,
                                   latency_weight=cfg.latency_weight, target_latency_ms=fixed_target,
                                   target_mode=cfg.target_mode, average_gradients=self._average,
                                   precision=cfg.precision)
        self.precision = Precision(cfg.precision, device)
        self.epoch = -1  # last finished epoch
        self.halves: tuple[Dataset, Dataset] | None = None  # (weight, architecture) halves, set by the loop
        if cfg.weight_paths == "sampled":
            try:
                self.model.exact_weights(self.model.derive())
            except NotImplementedError:
                raise ConfigError(f"weight_paths: 'sampled' runs one network at a time on the supernet, which "
                                  f"the {cfg.space.name!r} space cannot (it has no exact_weights)") from None

    def _average(self, params) -> None:
        """Under torchrun every process holds the same model: average its gradients (DDP's job)."""
        dist_utils.average_gradients(params, self.info)

    def state(self) -> dict:
        return {"epoch": self.epoch, "model": self.model.state_dict(), "weight_optimizer": self.w_opt.state_dict(),
                "arch_optimizer": self.architect.optimizer.state_dict(),
                "scalers": [self.precision.state_dict(), self.architect.precision.state_dict()],
                "latency_weight": self.architect.latency_weight, "target_ms": (self.target or {}).get("ms")}

    def load(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.w_opt.load_state_dict(state["weight_optimizer"])
            self.architect.optimizer.load_state_dict(state["arch_optimizer"])
            for precision, scaler in zip((self.precision, self.architect.precision), state.get("scalers", ())):
                precision.load_state_dict(scaler)
            self.architect.latency_weight = float(state.get("latency_weight", self.cfg.latency_weight))
            self.epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.run.checkpoint_dir / 'last.pt'}: does not match this search "
                                  f"configuration ({str(exc).splitlines()[0][:160]})") from None

    def alpha_record(self, epoch: int, tau: float | None) -> dict:
        if tau is not None:
            self.model.tau = tau
        return {"epoch": epoch, "temperature": tau, "space": self.cfg.space.name,
                "cells": self.model.alpha_state(), "space_state": self.model.space_state()}

    def expected_latency_ms(self) -> float:
        with torch.no_grad():
            return float(self.architect.expected_latency())

    def train_epoch(self, epoch: int, w_data: Dataset, a_data: Dataset) -> dict:
        from tqdm.auto import tqdm

        cfg, model = self.cfg, self.model
        seed_everything(cfg.seed * 1000 + epoch)
        tau = temperature(cfg, epoch)
        if tau is not None:
            model.tau = tau
        for group in self.w_opt.param_groups:
            group["lr"] = weight_lr(cfg, epoch)
        search_alphas = cfg.strategy == "gradient" and epoch >= min(cfg.warmup_epochs, cfg.epochs - 1)
        model.train()
        w_losses, a_losses = [], []
        rank, world = self.info.rank, self.info.world_size
        pairs = zip(loader(w_data, cfg, epoch, 0, rank, world), loader(a_data, cfg, epoch, 1, rank, world))
        more = extra_arch_batches(a_data, cfg, epoch, rank, world)
        total = min(len(w_data), len(a_data)) // min(cfg.batch_size, len(w_data), len(a_data))
        if cfg.steps_per_epoch:
            total = min(total, cfg.steps_per_epoch)
        for step, ((xw, yw), (xa, ya)) in enumerate(tqdm(pairs, total=total, desc=f"epoch {epoch}", disable=None)):
            if step >= total:
                break
            if search_alphas:
                extra = [(x.to(self.device), y.to(self.device)) for x, y in itertools.islice(more, cfg.arch_batches - 1)]
                a_loss = self.architect.step(xa.to(self.device), ya.to(self.device), extra)
                a_losses.append(check_finite(a_loss, f"architecture loss at epoch {epoch}, step {step}"))
            self.w_opt.zero_grad(set_to_none=True)
            with self.precision.autocast():
                logits = model(xw.to(self.device), self.weight_step_weights())
            loss = F.cross_entropy(logits.float(), yw.to(self.device), ignore_index=255)
            w_losses.append(check_finite(float(loss.detach()), f"train loss at epoch {epoch}, step {step}"))
            self.precision.backward(loss)
            self._average(model.weight_parameters())
            self.precision.unscale(self.w_opt)
            torch.nn.utils.clip_grad_norm_(model.weight_parameters(), cfg.grad_clip)
            self.precision.step(self.w_opt)
        return {"train_loss": sum(w_losses) / max(len(w_losses), 1),
                "arch_loss": sum(a_losses) / len(a_losses) if a_losses else None, "temperature": tau}

    def weight_step_weights(self):
        """The relaxed weights (sampled if Gumbel; constants here, as the weight step trains only the
        weights), or with `weight_paths: sampled` one network drawn from the global RNG (reseeded per
        epoch, so a resumed run draws the same networks)."""
        if self.cfg.weight_paths == "relaxed":
            with torch.no_grad():  # the weight step's optimizer holds no alphas: no gradient for them
                return self.model.arch_weights(sample=True)
        seed = int(torch.randint(2**31 - 1, ()))
        return self.model.exact_weights(self.model.random_bodies(1, seed)[0])

    def steer_latency_weight(self, epoch: int) -> dict:
        """Adaptive control: price the network derived now and double/halve λ (target.adapt_weight)."""
        cfg, used = self.cfg, self.architect.latency_weight
        if (cfg.latency_control != "adaptive" or cfg.strategy != "gradient"
                or epoch < min(cfg.warmup_epochs, cfg.epochs - 1)):
            return {"latency_weight": used}
        derived = self.derive().expected_latency_ms
        self.architect.latency_weight = adapt_weight(used, derived, self.target["ms"], cfg.target_band)
        return {"latency_weight": used, "derived_latency_ms": derived,
                "target_miss_pct": round(miss_pct(derived, self.target["ms"]), 3)}

    def final_genotype(self, measure: bool = True) -> tuple[Genotype, dict | None]:
        """The search's result: derived as always, or landed on the target (`target_derive`), and
        with `target_measure` on the target's measured latency (`measure`: this process times); with
        `strategy: one_shot` the best priced draw on the trained supernet (workbench.nas.one_shot)."""
        cfg = self.cfg
        if cfg.strategy == "one_shot":
            from workbench.nas.one_shot import select_one_shot
            from workbench.nas.selection import Measured

            measured = Measured(cfg, self.run, self.target, self.num_classes) if cfg.sample_measure and measure else None
            return select_one_shot(self, *self.halves, measured)
        if cfg.target_derive and self.target and cfg.target_measure and measure and self.target.get("baseline"):
            timer = baseline_ratio_timer(cfg, self.target["baseline"], self.num_classes, self.device)
            return measure_to_target(self, self.target, cfg.target_derive_band, timer,
                                     accept_band=cfg.target_measure_band, max_tries=cfg.target_measure_tries)
        if cfg.target_derive and self.target:
            return derive_to_target(self, self.target["ms"], cfg.target_derive_band)
        return self.derive(), None

    def derive(self) -> Genotype:
        tau = temperature(self.cfg, max(self.epoch, 0))
        if tau is not None:  # the temperature of the last epoch, also after a resume or in `rederive`
            self.model.tau = tau
        g = make_genotype(self.cfg, self.model.derive(), self.num_classes)
        g.expected_latency_ms = round(predict_genotype_latency(g, self.lut), 4)
        return g


def run_search(config: SearchConfig | dict, run_dir: str | Path, resume: bool | None = None) -> dict:
    """Search, record every epoch in run_dir, derive genotype.json; returns the run record.

    Under `torchrun --nproc_per_node=N -m workbench search ...` every process holds the same
    supernet, takes its shard of each global batch (`batch_size`) and averages the weight and the
    architecture gradients; rank 0 times the latency table, scores the held-out images and owns the
    run directory (gloo on CPU, nccl on GPU, as retrain)."""
    cfg = resolve_config(config)
    resume = cfg.resume if resume is None else bool(resume)
    run = RunDir(run_dir)
    data_root = None if cfg.dataset == "random" else cfg.data_root or f"datasets/synth-{cfg.dataset}"
    check_output(run.path, kind="run", inputs=[data_root, cfg.lut_path or None, cfg.one_shot_supernet or None])
    Precision(cfg.precision, resolve_device(cfg.device))  # fp16 off CUDA: refused before anything is written
    if cfg.one_shot_supernet:  # ... as is a supernet of another space or data
        from workbench.nas.one_shot import check_supernet

        check_supernet(cfg, cfg.one_shot_supernet)
    info, device = dist_utils.setup(resolve_device(cfg.device))
    try:
        if not info.is_main:  # rank 0 owns the run directory (its claim, config and records)
            dist_utils.barrier(info)  # ... and has resolved the stored configuration of a resume
            if resume and run.config_path.exists():
                cfg = from_dict(SearchConfig, upgrade_stored(run.read_config()))
            return _search(cfg, dist_utils.ReadOnlyRun(run), resume, info, device)
        with run.claim(resume=resume, overwrite=cfg.overwrite):
            if resume and run.config_path.exists():
                given = {**config, "resume": True} if isinstance(config, dict) else config
                if isinstance(given, dict):  # flat space settings given as today's nested ones
                    given = {k: v for k, v in given.items() if k not in ("preset",)} | {"preset": cfg.preset}
                    given = _nested(given, cfg)
                cfg, _ = resume_config(SearchConfig, upgrade_stored(run.read_config()), given,
                                       source=f"resume {run.path}")
            dist_utils.barrier(info)
            return _search(cfg, run, resume, info, device)
    finally:
        dist_utils.cleanup()


def _nested(given: dict, cfg: SearchConfig) -> dict:
    """The keys a caller gave, with flat or dotted space settings under `space` (only those given)."""
    top, space, _ = split_values(given, cfg.space.name)
    return {**top, "space": space} if space else top


def _search(cfg: SearchConfig, run: RunDir, resume: bool, info: DistInfo | None = None,
            device: torch.device | None = None) -> dict:
    info = info or DistInfo()
    device = device or resolve_device(cfg.device)
    set_threads(cfg.threads or None)
    previous = run.load_checkpoint() if resume else None
    run.write_config(to_dict(cfg))
    # λ weighs the architecture loss of the gradient search only; selection and one-shot never read it
    run.start("search", preset=cfg.preset, latency_weight=cfg.latency_weight if cfg.strategy == "gradient" else None,
              seed=cfg.seed, dataset=cfg.dataset, target_latency_ms=cfg.target_latency_ms, device=str(device),
              allocator=loaded_allocator())
    try:
        train, val, num_classes = build_datasets(cfg)
        lut, target = None, None
        # a resumed run keeps its table and target (a selection's candidates were priced by them)
        resumed = previous is not None or (resume and cfg.strategy == "sample")
        if info.is_main:  # timing (the table, a target baseline) happens in one process only
            if resumed and run.lut_path.exists():
                lut = load_lut(run.lut_path)
            elif cfg.lut_path:
                lut = load_lut(cfg.lut_path)
                check_lut_setting(lut, cfg.lut_runtime, "lut_path", cfg.lut_dtype)
            else:
                lut = lut_for(cfg, num_classes, str(device))
            atomic_write_json(run.lut_path, lut)
            stored_target = run.record().get("target") if resumed else None
            target = stored_target or resolve_target(cfg, num_classes, device, lut)
            if target:
                run.update(target=target, target_latency_ms=target["ms"])
        lut, target = dist_utils.broadcast_object((lut, target), info)
        if cfg.strategy == "sample":
            return _select(cfg, run, lut, target, num_classes, info)
        search = Search(cfg, run, lut, num_classes, device, target, info)
        supernet, split_seed = None, cfg.seed
        if cfg.one_shot_supernet:  # another run's trained supernet: nothing is trained here
            from workbench.nas.one_shot import load_supernet

            supernet = load_supernet(search, cfg.one_shot_supernet)
            split_seed = supernet["seed"]  # its halves: the architecture half stays unseen
        elif previous is not None:
            search.load(previous)
            last = search.epoch
            for path in (run.metrics_path, run.alphas_path) if info.is_main else ():
                truncate_jsonl(path, lambda r, last=last: r.get("epoch", -1) <= last)
            log.info("resuming after epoch %d", last)
            run.update(resumed_after_epoch=last, resumes=int(run.record().get("resumes") or 0) + 1)
        else:
            for path in (run.metrics_path, run.alphas_path) if info.is_main else ():
                truncate_jsonl(path, lambda r: False)
            run.log_alphas(search.alpha_record(-1, temperature(cfg, 0)))
        w_data, a_data = split_halves(train, split_seed)
        search.halves = (w_data, a_data)  # strategy one_shot scores its candidates on the second half
        for epoch in range(search.epoch + 1, cfg.epochs) if supernet is None else ():
            t0 = time.time()
            stats = search.train_epoch(epoch, w_data, a_data)
            dist_utils.sync_buffers(search.model, info)  # rank 0's BatchNorm statistics everywhere
            miou = evaluate_miou(search.model, val, num_classes, device) if info.is_main else None
            lat = search.expected_latency_ms()
            search.epoch = epoch
            control = search.steer_latency_weight(epoch)
            run.log_metrics({"epoch": epoch, "phase": "search", "train_loss": stats["train_loss"],
                             "arch_loss": stats["arch_loss"], "val_miou": miou, "expected_latency_ms": lat,
                             "temperature": stats["temperature"], **control,
                             "epoch_time_s": round(time.time() - t0, 3)})
            run.log_alphas(search.alpha_record(epoch, stats["temperature"]))
            run.save_checkpoint(search.state())
            log.info("epoch %d: train loss %.3f, val mIoU %s, expected latency %.2f ms (%.1f s)", epoch,
                     stats["train_loss"], "n/a" if miou is None else f"{miou:.3f}", lat, time.time() - t0)
        if not info.is_main and cfg.strategy == "one_shot":  # rank 0 scores the candidates and writes them
            return {}
        genotype, targeted = search.final_genotype(measure=info.is_main)
        if not info.is_main:  # the other processes hold the same alphas; rank 0 writes the result
            return {}
        save_genotype(genotype, run.genotype_path)
        last = (run.metrics() or [{}])[-1]
        run.update(metrics={"expected_latency_ms": genotype.expected_latency_ms,
                            "supernet_expected_latency_ms": last.get("expected_latency_ms"),
                            "miou": last.get("val_miou"), "latency_weight_final": search.architect.latency_weight,
                            "target_latency_ms": (target or {}).get("ms"),
                            "target_miss_pct": miss_pct(genotype.expected_latency_ms, (target or {}).get("ms"))},
                   artifacts={"genotype": "genotype.json", "lut": "latency_lut.json"} if supernet else
                   {"genotype": "genotype.json", "checkpoint": "checkpoints/last.pt", "lut": "latency_lut.json",
                    "metrics": "metrics.jsonl", "alphas": "alphas.jsonl"},
                   num_classes=num_classes, lut_fingerprint=lut.get("fingerprint"),
                   **({"one_shot" if cfg.strategy == "one_shot" else "target_derive": targeted} if targeted else {}),
                   **({"one_shot_supernet": supernet} if supernet else {}))
        return run.finish()
    except BaseException as exc:
        run.finish(status="failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted",
                   error=f"{exc.__class__.__name__}: {exc}")
        raise


def _select(cfg: SearchConfig, run: RunDir, lut: dict, target: dict, num_classes: int, info: DistInfo) -> dict:
    """`strategy: sample` (workbench.nas.selection): one process, the candidates' retrains in turn."""
    from workbench.nas.selection import run_selection

    if info.world_size > 1:
        raise ConfigError("strategy: 'sample' trains its candidates one after another in one process; "
                          "run it without torchrun")
    genotype, summary = run_selection(cfg, run, build_supernet(cfg, num_classes), lut, target, num_classes)
    save_genotype(genotype, run.genotype_path)
    run.update(metrics={"expected_latency_ms": genotype.expected_latency_ms, "target_latency_ms": target["ms"],
                        "target_miss_pct": miss_pct(genotype.expected_latency_ms, target["ms"]),
                        "selection_score": summary["score"][str(len(summary["rungs"]) - 1)],
                        "target_measured_miss_pct": summary.get("measured_miss_pct")},
               artifacts={"genotype": "genotype.json", "lut": "latency_lut.json", "metrics": "metrics.jsonl",
                          "candidates": "candidates.json"},
               num_classes=num_classes, lut_fingerprint=lut.get("fingerprint"), selection=summary)
    return run.finish()

"""Does a searched network beat each hand-designed one at equal or lower measured latency?

Reads the proxy benchmark's arms (`proxy_benchmark.py --json`, several files merged; an arm
named twice keeps the file given last) and one quiet round-robin latency run
(`frontier_latency.py --out`) that timed every arm's network. For every hand-designed arm it takes
the searched arms whose measured latency is at most the hand-designed one's, the most accurate of
them, and the mIoU difference with its standard error over seeds (sqrt(s1^2/n1 + s2^2/n2)). The
verdict: "searched wins" when the difference exceeds 2 standard errors, "hand-designed wins" when
it is below -2, "tie" between. Random architectures of the searched space (arms named '*random*')
are kept apart: each searched network is also compared with the best of them at or below its
latency (does the search beat sampling its space?). Writes JSON and a markdown table.

    python benchmarks/equal_latency.py --proxy benchmarks/results/proxy_benchmark.json \
        --proxy benchmarks/results/proxy_wide.json --latency benchmarks/results/equal_latency_latency.json \
        --size 256x512 --out benchmarks/results/equal_latency.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def latency_key(config: dict) -> str:
    """The name frontier_latency.py gives the arm's network."""
    if config.get("baseline"):
        return config["baseline"]
    g = Path(config["genotype"])
    return f"searched:{g.parent.name if g.name == 'genotype.json' else g.stem}"


RANDOM = "random architecture (same space)"


def kind_of(name: str, config: dict) -> str:
    """hand-designed (a baseline), a random architecture of the searched space (an arm named
    '*random*', see random_genotypes.py), or searched."""
    return "hand-designed" if config.get("baseline") else RANDOM if "random" in name else "searched"


def compare(a: dict, b: dict) -> tuple[float, float, str]:
    """(mean difference a - b, its standard error over seeds, verdict at 2 standard errors)."""
    diff = a["miou_mean"] - b["miou_mean"]
    se = math.sqrt(a["miou_std"] ** 2 / len(a["miou"]) + b["miou_std"] ** 2 / len(b["miou"]))
    return diff, se, "wins" if diff > 2 * se else "loses" if diff < -2 * se else "tie"


def rows_of(arms: dict, latency: dict, size: str) -> list[dict]:
    key = f"latency_ms_{size}"
    rows = []
    for name, arm in arms.items():
        lat = latency["networks"].get(latency_key(arm["config"]), {}).get(key)
        if lat is None:
            raise SystemExit(f"error: {name}: no latency at {size} in the latency run")
        rows.append({"arm": name, "kind": kind_of(name, arm["config"]),
                     "latency_ms": lat, "miou": arm["miou"], "miou_mean": arm["miou_mean"],
                     "miou_std": arm["miou_std"], "params_m": arm.get("params_m"), "space": space_of(arm["config"])})
    return rows


def space_of(config: dict) -> tuple[str | None, float]:
    """(preset, width multiplier) of an arm's genotype (`workbench scale` records the width)."""
    path = Path(config.get("genotype") or "")
    if not path.is_file():
        return None, 1.0
    d = json.loads(path.read_text())
    return d.get("preset"), float(d.get("width_multiplier") or 1.0)


def search_vs_random(rows: list[dict], tolerance: float = 0.10) -> list[dict]:
    """Each searched network against the best random architecture of its preset, at its width, whose latency
    is at most (1 + tolerance) x its own: random samples land where they land, so an exact latency
    match is rare; the tolerance is stated with the result."""
    out = []
    for s in sorted((r for r in rows if r["kind"] == "searched"), key=lambda r: r["latency_ms"]):
        rivals = [r for r in rows if r["kind"] == RANDOM and r["space"] == s["space"]
                  and r["latency_ms"] <= (1 + tolerance) * s["latency_ms"]]
        if rivals:
            best = max(rivals, key=lambda r: r["miou_mean"])
            diff, se, verdict = compare(s, best)
            out.append({"searched": s, "random": best, "difference": round(diff, 4), "latency_tolerance": tolerance,
                        "standard_error": round(se, 4), "verdict": f"searched {verdict}"})
    return out


def judge(arms: dict, latency: dict, size: str) -> list[dict]:
    rows = rows_of(arms, latency, size)
    hands = [r for r in rows if r["kind"] == "hand-designed"]
    for h in hands:  # on the hand-designed Pareto front: no other hand-designed arm is faster and better
        h["on_hand_designed_front"] = not any(o is not h and o["latency_ms"] <= h["latency_ms"]
                                              and o["miou_mean"] >= h["miou_mean"] for o in hands)
    out = []
    for hand in sorted(hands, key=lambda r: r["latency_ms"]):
        rivals = [r for r in rows if r["kind"] == "searched" and r["latency_ms"] <= hand["latency_ms"]]
        entry = {"hand_designed": hand, "searched": None, "difference": None, "standard_error": None,
                 "verdict": "no searched network at or below this latency"}
        if rivals:
            best = max(rivals, key=lambda r: r["miou_mean"])
            diff, se, outcome = compare(best, hand)
            verdict = {"wins": "searched wins", "loses": "hand-designed wins", "tie": "tie"}[outcome]
            entry.update(searched=best, difference=round(diff, 4), standard_error=round(se, 4), verdict=verdict)
        out.append(entry)
    return out


def figure(arms: dict, latency: dict, size: str, out: str) -> None:
    """mIoU (mean ± std over seeds) against measured latency: hand-designed, searched and random
    architectures of the searched space (arms named '*random*'), each point labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"latency_ms_{size}"
    groups: dict[str, list] = {"hand-designed": [], "searched": [], RANDOM: []}
    for name, arm in arms.items():
        lat = latency["networks"].get(latency_key(arm["config"]), {}).get(key)
        if lat is None:
            continue
        kind = kind_of(name, arm["config"])
        groups[kind].append((lat, 100 * arm["miou_mean"], 100 * arm["miou_std"], name))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for (kind, pts), style in zip(groups.items(), [("s", "#d62728"), ("o", "#1f77b4"), ("^", "#7f7f7f")]):
        if not pts:
            continue
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt=style[0],
                    color=style[1], label=kind, capsize=3, linestyle="none", alpha=0.9)
        front, best = [], float("-inf")  # the group's Pareto front: faster points first, keep improvements
        for lat, miou, _, _ in pts:
            if miou > best:
                front.append((lat, miou))
                best = miou
        ax.plot([f[0] for f in front], [f[1] for f in front], "-", color=style[1], alpha=0.5)
        for lat, miou, _, name in pts:
            ax.annotate(name, (lat, miou), textcoords="offset points", xytext=(4, -10), fontsize=7, color=style[1])
    ax.set_xlabel(f"measured latency at {size}, batch 1 (ms)")
    ax.set_ylabel("val mIoU (%), mean ± std over seeds")
    ax.set_title("proxy benchmark: searched vs hand-designed at equal latency")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def verdict_markdown(judged: list[dict]) -> str:
    """The verdict tables of judged results (one per input size), as equal_latency.md shows them."""
    parts = []
    for d in judged:
        m = d["latency_machine"]
        parts.append(f"At **{d['size']}** ({m['cpu']}, {m['threads']} threads, latency run {d['latency_date']}): "
                     f"searched wins at **{d['searched_wins']} of {len(d['pairs'])}** hand-designed networks, "
                     f"**{d['searched_wins_on_front']} of the {d['front_size']}** on the hand-designed Pareto front.\n")
        parts.append("| hand-designed | ms | mIoU (mean ± std, n) | best searched at or below its latency | ms | mIoU "
                     "| difference | 2 SE | verdict |")
        parts.append("|---|---:|---:|---|---:|---:|---:|---:|---|")
        for e in d["pairs"]:
            h, s = e["hand_designed"], e["searched"]
            name = h["arm"] + ("" if h["on_hand_designed_front"] else " (dominated by another hand-designed network)")
            hand = f"{name} | {h['latency_ms']} | {h['miou_mean']:.3f} ± {h['miou_std']:.3f} ({len(h['miou'])})"
            if s is None:
                parts.append(f"| {hand} | - | - | - | - | - | {e['verdict']} |")
            else:
                parts.append(f"| {hand} | {s['arm']} | {s['latency_ms']} | {s['miou_mean']:.3f} ± {s['miou_std']:.3f} "
                             f"({len(s['miou'])}) | {e['difference']:+.3f} | {2 * e['standard_error']:.3f} "
                             f"| **{e['verdict']}** |")
        parts.append("")
        if d["search_vs_random"]:
            parts.append("Does the search beat its own space? Each searched network against the best random "
                         f"architecture of the same space at or below its latency ({d['size']}):\n")
            parts.append("| searched | ms | mIoU | random architecture | ms | mIoU | difference | 2 SE | verdict |")
            parts.append("|---|---:|---:|---|---:|---:|---:|---:|---|")
            for e in d["search_vs_random"]:
                a, r = e["searched"], e["random"]
                parts.append(f"| {a['arm']} | {a['latency_ms']} | {a['miou_mean']:.3f} ± {a['miou_std']:.3f} "
                             f"({len(a['miou'])}) | {r['arm']} | {r['latency_ms']} | {r['miou_mean']:.3f} ± "
                             f"{r['miou_std']:.3f} ({len(r['miou'])}) | {e['difference']:+.3f} | "
                             f"{2 * e['standard_error']:.3f} | **{e['verdict']}** |")
            parts.append("")
    return "\n".join(parts)


def fill(markdown: Path, judged: list[Path]) -> None:
    """Replace the text between `<!-- verdict:start -->` and `<!-- verdict:end -->` of a page."""
    text = markdown.read_text()
    start, end = "<!-- verdict:start -->", "<!-- verdict:end -->"
    i, j = text.index(start) + len(start), text.index(end)
    body = verdict_markdown([json.loads(p.read_text()) for p in judged])
    markdown.write_text(text[:i] + "\n" + body + text[j:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxy", action="append", help="proxy_benchmark.py --json output (repeat)")
    p.add_argument("--latency", help="frontier_latency.py --out of the same networks")
    p.add_argument("--size", default="256x512")
    p.add_argument("--out")
    p.add_argument("--figure", help="also draw the two frontiers to this PNG (matplotlib)")
    p.add_argument("--fill", metavar="MARKDOWN", help="write the verdict section of this page from --judged")
    p.add_argument("--judged", nargs="+", default=[], help="--out files of earlier runs (one per size)")
    args = p.parse_args()
    if args.fill:
        fill(Path(args.fill), [Path(j) for j in args.judged])
        return
    if not (args.proxy and args.latency and args.out):
        p.error("--proxy, --latency and --out are required (or --fill with --judged)")
    arms: dict = {}
    for path in args.proxy:
        arms.update(json.loads(Path(path).read_text())["arms"])
    latency = json.loads(Path(args.latency).read_text())
    pairs = judge(arms, latency, args.size)
    result = {"size": args.size, "latency_machine": latency["machine"], "latency_date": latency["date"],
              "proxy": args.proxy, "latency": args.latency, "pairs": pairs,
              "searched_wins": sum(p["verdict"] == "searched wins" for p in pairs),
              "searched_wins_on_front": sum(p["verdict"] == "searched wins" and p["hand_designed"]["on_hand_designed_front"]
                                            for p in pairs),
              "front_size": sum(p["hand_designed"]["on_hand_designed_front"] for p in pairs),
              "search_vs_random": search_vs_random(rows_of(arms, latency, args.size))}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.figure:
        figure(arms, latency, args.size, args.figure)
    print(f"| hand-designed | ms {args.size} | mIoU | searched (at or below its latency) | ms | mIoU | "
          "difference | 2 SE | verdict |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    for e in pairs:
        h, s = e["hand_designed"], e["searched"]
        hand = f"{h['arm']}{'' if h['on_hand_designed_front'] else ' (dominated)'} | {h['latency_ms']} | {h['miou_mean']:.3f} ± {h['miou_std']:.3f} (n={len(h['miou'])})"
        if s is None:
            print(f"| {hand} | - | - | - | - | - | {e['verdict']} |")
        else:
            print(f"| {hand} | {s['arm']} | {s['latency_ms']} | {s['miou_mean']:.3f} ± {s['miou_std']:.3f} "
                  f"(n={len(s['miou'])}) | {e['difference']:+.3f} | {2 * e['standard_error']:.3f} | {e['verdict']} |")
    for e in result["search_vs_random"]:
        print(f"search vs random: {e['searched']['arm']} {e['searched']['miou_mean']:.3f} vs {e['random']['arm']} "
              f"{e['random']['miou_mean']:.3f} ({e['random']['latency_ms']} ms): {e['difference']:+.3f}, {e['verdict']}")
    print(f"searched wins at {result['searched_wins']} of {len(pairs)} hand-designed networks, "
          f"{result['searched_wins_on_front']} of the {result['front_size']} on the hand-designed Pareto front")


if __name__ == "__main__":
    main()

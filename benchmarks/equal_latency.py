"""Does a searched network beat each hand-designed one at equal or lower measured latency?

Reads the proxy benchmark's arms (`proxy_benchmark.py --json`, several files merged; an arm
named twice keeps the file given last) and one quiet round-robin latency run
(`frontier_latency.py --out`) that timed every arm's network. For every hand-designed arm it takes
the searched arms whose measured latency is at most the hand-designed one's, the most accurate of
them, and the mIoU difference with its standard error over seeds (sqrt(s1^2/n1 + s2^2/n2)). The
verdict: "searched wins" when the difference exceeds 2 standard errors, "hand-designed wins" when
it is below -2, "tie" between. Writes JSON and a markdown table.

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


def judge(arms: dict, latency: dict, size: str) -> list[dict]:
    key = f"latency_ms_{size}"
    rows = []
    for name, arm in arms.items():
        lat = latency["networks"].get(latency_key(arm["config"]), {}).get(key)
        if lat is None:
            raise SystemExit(f"error: {name}: no latency at {size} in the latency run")
        rows.append({"arm": name, "kind": "hand-designed" if arm["config"].get("baseline") else "searched",
                     "latency_ms": lat, "miou": arm["miou"], "miou_mean": arm["miou_mean"],
                     "miou_std": arm["miou_std"], "params_m": arm.get("params_m")})
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
            diff = best["miou_mean"] - hand["miou_mean"]
            se = math.sqrt(best["miou_std"] ** 2 / len(best["miou"]) + hand["miou_std"] ** 2 / len(hand["miou"]))
            verdict = "searched wins" if diff > 2 * se else "hand-designed wins" if diff < -2 * se else "tie"
            entry.update(searched=best, difference=round(diff, 4), standard_error=round(se, 4), verdict=verdict)
        out.append(entry)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxy", action="append", required=True, help="proxy_benchmark.py --json output (repeat)")
    p.add_argument("--latency", required=True, help="frontier_latency.py --out of the same networks")
    p.add_argument("--size", default="256x512")
    p.add_argument("--out", required=True)
    args = p.parse_args()
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
              "front_size": sum(p["hand_designed"]["on_hand_designed_front"] for p in pairs)}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
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
    print(f"searched wins at {result['searched_wins']} of {len(pairs)} hand-designed networks, "
          f"{result['searched_wins_on_front']} of the {result['front_size']} on the hand-designed Pareto front")


if __name__ == "__main__":
    main()

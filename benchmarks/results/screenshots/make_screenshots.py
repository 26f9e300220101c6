"""Render the widget figures and a report page to PNG with headless Chromium (for the README).

    python benchmarks/results/screenshots/make_screenshots.py --search RUN --frontier RUN_OR_FOLDER \
        --video VOS_SEGMENT_RUN [--trellis AUTORTNET_SEARCH_RUN]

Each figure is written to a small HTML page (plotly.js inlined) and screenshotted offline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def figures(args) -> dict:
    from widgets import cell_graph as cg
    from widgets import evolution as ev
    from widgets import frontier as fr
    from widgets import video as vid
    from widgets.records import load_run
    from widgets.spaces import architecture_parts

    out = {}
    if args.search:
        run = load_run(args.search)
        last = run.alphas[-1]
        cell = last["cells"][0]
        out["cell_graph"] = cg.cell_graph_figure(cell, f"{run.name}: cell 0 at epoch {last['epoch']} (edge width = weight)")
        out["weight_heatmap"] = ev.weight_heatmap_figure(run.alphas, cell["index"], last["epoch"])
        out["op_weights"] = ev.op_weight_figure(run.alphas, cell["index"], 0)
        out["search_curves"] = ev.search_curves_figure(run.metrics)
        out["convergence"] = ev.convergence_figure(run.alphas)
        parts = architecture_parts(run.genotype)
        if "fusion cell" in parts:
            out["fusion_cell"] = parts["fusion cell"]()
    if args.trellis:
        parts = architecture_parts(load_run(args.trellis).genotype)
        if "trellis path" in parts:
            out["trellis"] = parts["trellis path"]()
    if args.frontier:
        frontier = fr.load_frontier(args.frontier)
        out["frontier"] = fr.frontier_figure(frontier)
        out["published"] = fr.published_figure()
        if len(frontier["points"]) > 1:
            from widgets.compare import parallel_figure

            out["parallel"] = parallel_figure(frontier["points"])
    if args.video:
        video = vid.load_video(args.video)
        t = len(video.frame_names) // 2
        out["video_frame"] = vid.frame_figure(video, t)
        out["video_jf"] = vid.jf_figure(video, t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--search")
    p.add_argument("--trellis")
    p.add_argument("--frontier")
    p.add_argument("--video")
    p.add_argument("--report", help="an HTML report to screenshot (top of the page)")
    p.add_argument("--only", nargs="*", help="write only these shots (names without .png)")
    p.add_argument("--out", default=str(HERE))
    args = p.parse_args()
    import plotly.io as pio
    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        lib = Path(tmp, "plotly.js")
        lib.write_text(get_plotlyjs())
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700}, device_scale_factor=1)
        for name, fig in figures(args).items():
            if args.only and name not in args.only:
                continue
            fig.update_layout(width=960)
            html = Path(tmp, f"{name}.html")
            html.write_text(f'<html><head><script src="{lib.as_uri()}"></script></head><body style="margin:0">'
                            + pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id="fig",
                                          config={"displayModeBar": False}) + "</body></html>")
            page.goto(html.as_uri())
            page.wait_for_selector("#fig svg.main-svg")
            page.wait_for_timeout(300)
            page.locator("#fig").screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")
        if args.report:
            page.set_viewport_size({"width": 1280, "height": 1400})
            page.goto(Path(args.report).resolve().as_uri())
            page.wait_for_selector(".js-plotly-plot svg.main-svg")
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "report.png"))
            print(out / "report.png")
        browser.close()


if __name__ == "__main__":
    main()

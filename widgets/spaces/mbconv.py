"""MBConv: the derived layers as bars (height = output channels), labelled with kernel, expansion and SE."""

from __future__ import annotations

import plotly.graph_objects as go

from widgets.spaces import Parts, architecture

KERNEL_COLORS = {3: "#1f77b4", 5: "#ff7f0e", 7: "#2ca02c"}


def blocks_figure(body, title: str = "MBConv layers") -> go.Figure:
    fig = go.Figure()
    x = 0
    for s, blocks in enumerate(body.stages):
        for j, b in enumerate(blocks):
            fig.add_trace(go.Bar(
                x=[x], y=[b.channels], marker_color=KERNEL_COLORS.get(b.kernel, "#7f7f7f"),
                marker_line={"width": 3 if b.se else 0, "color": "#222"}, showlegend=False,
                text=[f"k{b.kernel} e{b.expand}{' SE' if b.se else ''}"], textposition="outside",
                hovertext=f"stage {s} (1/{body.stride(s)}), layer {j}: kernel {b.kernel}, expansion {b.expand}, "
                          f"squeeze-excitation {'on' if b.se else 'off'}, {b.channels} channels",
                hoverinfo="text", name=f"stage {s} layer {j}"))
            x += 1
        fig.add_vline(x=x - 0.5, line={"color": "#bbb", "dash": "dot"})
    fig.update_layout(title=f"{title}: bar height = output channels, colour = kernel, outline = SE",
                      height=340, bargap=0.25, plot_bgcolor="white", margin={"l": 50, "r": 10, "t": 50, "b": 40},
                      xaxis={"title": "layer (stages split by dotted lines)", "dtick": 1},
                      yaxis={"title": "channels"})
    return fig


@architecture("mbconv")
def mbconv_parts(genotype) -> Parts:
    return {"layers": lambda: blocks_figure(genotype.body)}

"""What an emulated call leaves in its run folder: ``result.json`` (:meth:`emulators.results.CallResult.to_dict`)
and ``timeseries.png`` (:func:`plot_call`), both written atomically (:mod:`twin.run.atomic`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from emulators.results import DIRECTIONS, CallResult


def plot_call(result: CallResult):
    """Figure with frame rate, delivered bitrate and frame delay per direction (a matplotlib ``Figure``
    on the Agg canvas, made without pyplot: no global figure state, and pyplot's import is skipped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 9))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    colors = {"up": "tab:blue", "down": "tab:orange"}
    label = {"up": "kiosk->agent", "down": "agent->kiosk"}
    for direction in DIRECTIONS:
        v = result.video[direction]
        start = v.window_s[0]
        fps = list(v.fps_series)
        if fps:
            axes[0].step(start + np.arange(len(fps) + 1), fps + fps[-1:], where="post", color=colors[direction],
                         label=label[direction])
        kinds = result.network[direction].kbps_by_kind
        for kind, style in (("video", "-"), ("audio", ":"), ("dtls", "--")):
            series = kinds.get(kind)
            if series:
                axes[1].step(np.arange(len(series) + 1), series + series[-1:], where="post", linestyle=style,
                             color=colors[direction],
                             label=f"{label[direction]} {kind if kind != 'dtls' else 'data'}")
        pts = np.asarray(v.delay_series_ms, float).reshape(-1, 2)
        if pts.size:
            axes[2].plot(pts[:, 0] + start, pts[:, 1], ".", ms=3, color=colors[direction],
                         label=f"{label[direction]} frames")
    axes[0].set_ylabel("decoded frames/s")
    axes[1].set_ylabel("delivered kbit/s (IP)")
    axes[2].set_ylabel("frame delay (ms)")
    axes[2].set_xlabel("time from call start (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty call (interrupted at once, dead line) has none
            ax.legend(fontsize=7, loc="upper right")
    config = result.config
    fig.suptitle(f"{config.line.offer.name} ({config.sync_rate_up_kbps:.0f}/{config.sync_rate_down_kbps:.0f} kbit/s "
                 f"up/down), profile {config.profile.name}", fontsize=10)
    fig.tight_layout()
    return fig


def write_call_result(result: CallResult, out_dir: str | Path, plot: bool = True) -> Path:
    """Write ``result.json`` and ``timeseries.png`` (unless ``plot`` is False) into ``out_dir``
    (atomically, the folder made if needed); returns the folder."""
    from twin.run.atomic import atomic_write_bytes, atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "result.json", result.to_dict())
    if plot:
        fig = plot_call(result)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(out / "timeseries.png", buf.getvalue())
    return out

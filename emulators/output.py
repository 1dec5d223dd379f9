"""What an emulated call leaves in its run folder: ``result.json`` (:meth:`emulators.results.CallResult.to_dict`),
``packets.csv`` (every datagram's fate on the line, :mod:`emulators.evidence`), ``timeseries.png``
(:func:`plot_call`) and, on request, pcap files; all written atomically (:mod:`twin.run.atomic`)."""

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
    _shade_and_mark(axes, result)
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
    for direction in DIRECTIONS:  # the line's capacity: what the video and documents compete for
        capacity = _capacity_kbps(result, direction)
        if capacity is not None:
            xs, ys = capacity
            axes[1].step(xs, ys, where="post", color=colors[direction], linewidth=2.5, alpha=0.25,
                         label=f"{label[direction]} line capacity (IP)")
    axes[0].set_ylabel("good frames/s")
    axes[1].set_ylabel("delivered kbit/s (IP)")
    axes[2].set_ylabel("frame delay (ms)")
    axes[2].set_xlabel("time from call start (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty call (interrupted at once, dead line) has none
            ax.legend(fontsize=7, loc="upper right")
    config = result.config
    line = config.describe()["line"]
    fig.suptitle(f"{line['offer']} ({config.sync_rate_up_kbps:.0f}/{config.sync_rate_down_kbps:.0f} kbit/s "
                 f"up/down), profile {config.profile.name}", fontsize=10)
    fig.tight_layout()
    return fig


def _shade_and_mark(axes, result: CallResult) -> None:
    """Outages shaded on every axis; each document's start (solid) and completion (dashed) marked."""
    for start, end in result.config.outages:
        for ax in axes:
            ax.axvspan(start, min(end, result.duration_s), color="tab:red", alpha=0.12, lw=0)
    if result.config.outages:
        axes[0].axvspan(0, 0, color="tab:red", alpha=0.12, label="line outage")
    for name, color in (("scan", "tab:green"), ("print", "tab:purple")):
        doc = result.documents[name]
        if doc.started_s is None:
            continue
        for ax in axes:
            ax.axvline(doc.started_s, color=color, lw=1, alpha=0.7)
            if doc.completed_s is not None:
                ax.axvline(doc.completed_s, color=color, lw=1, ls="--", alpha=0.7)
        done = f", done {doc.completed_s:.1f} s" if doc.completed_s is not None else ", not done"
        axes[1].plot([], [], color=color, lw=1, label=f"{name} {doc.size_kb:.0f} KB from {doc.started_s:.1f} s{done}")


def _capacity_kbps(result: CallResult, direction: str):
    """``(x, y)`` steps of the IP capacity of ``direction``, kbit/s: a trace's per-second rate, or the
    line rate times the IP share of a 1200-byte packet's wire bytes (None: nothing to draw)."""
    from twin.line import atm_efficiency

    config = result.config
    end = max(1.0, result.duration_s)
    trace = config.trace(direction)
    if trace is not None:
        series = trace.rate_series_kbps(end)
        if config.plain_ip:
            ys = series
        else:
            ys = [r * atm_efficiency(1200, config.line.encapsulation) for r in series]
        return np.arange(len(ys) + 1), ys + ys[-1:]
    rate = config.sync_rate_up_kbps if direction == "up" else config.sync_rate_down_kbps
    ip = rate if config.plain_ip else rate * atm_efficiency(1200, config.line.encapsulation)
    down = [(s, min(e, end)) for s, e in config.outages if s < end]
    xs, ys = [0.0], [ip]
    for s, e in down:
        xs += [s, e]
        ys += [0.0, ip]
    return np.asarray(xs + [end]), ys + ys[-1:]


def write_call_result(result: CallResult, out_dir: str | Path, plot: bool = True,
                      pcap_dir: str | Path | None = None) -> Path:
    """Write ``result.json``, ``packets.csv`` and ``timeseries.png`` (unless ``plot`` is False) into
    ``out_dir`` (atomically, the folder made if needed), and the pcap files and DTLS key log into
    ``pcap_dir`` if given (the call must have captured its datagrams); returns the folder."""
    from emulators.evidence import packets_csv, write_pcaps
    from twin.run.atomic import atomic_write_bytes, atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "result.json", result.to_dict())
    if result.packets is not None:
        atomic_write_bytes(out / "packets.csv", packets_csv(result.packets).encode("utf-8"))
        if pcap_dir is not None:
            write_pcaps(result.packets, pcap_dir)
    if plot:
        fig = plot_call(result)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(out / "timeseries.png", buf.getvalue())
    return out

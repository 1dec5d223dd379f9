"""KPI metadata and formatters: one table used by the terminal, the plots and the HTML report.

Every KPI shown to a reader has a human name, a short name (terminal headers), a unit, a direction
(more is better, less is better, or neither), a practical threshold (the smallest difference that
matters to a decision-maker) and a formatter. Service-specific KPIs (``agent_utilisation_<service>``,
``offered_load_<service>``, ``unstable_<service>``) take their metadata from their family.

Practical thresholds are ASSUMPTIONS chosen for a regional council's decisions, stated here once:
a difference smaller than ``max(absolute, relative x |reference mean|)`` is "no practical
difference" even when it is statistically significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Cost per interview served, EUR: derived from the scenario's costs, not measured by the model.
COST_KPI = "cost_per_interview_eur"

MORE_IS_BETTER = 1
LESS_IS_BETTER = -1
NEUTRAL = 0


@dataclass(frozen=True)
class KpiMeta:
    """What a KPI means to a reader.

    Attributes:
        name: the KPI's code name (``interviews_served``).
        label: human name ("interviews served").
        short: terminal column header, at most 14 characters ("interviews").
        unit: unit as printed after a number ("per year", "min", "%", "EUR", "inhabitants").
        direction: :data:`MORE_IS_BETTER`, :data:`LESS_IS_BETTER` or :data:`NEUTRAL`.
        threshold_abs: practical threshold, in the KPI's unit (shares as fractions).
        threshold_rel: practical threshold relative to the reference mean (0: none).
        kind: formatter: ``count``, ``minutes``, ``share``, ``mos``, ``eur``, ``erlang``, ``flag``.
        nonnegative: the KPI is bounded below by 0 (its intervals use the bootstrap percentile method).
        rate: a count over time, shown as a rate per year.
    """

    name: str
    label: str
    short: str
    unit: str
    direction: int
    threshold_abs: float
    threshold_rel: float
    kind: str
    nonnegative: bool = True
    rate: bool = False

    def threshold(self, reference_mean: float) -> float:
        """The practical threshold for a difference from a reference whose mean is ``reference_mean``."""
        rel = 0.0 if math.isnan(reference_mean) else self.threshold_rel * abs(reference_mean)
        return max(self.threshold_abs, rel)

    def value(self, x: float) -> str:
        """``x`` formatted in this KPI's unit (no unit text; "–" when undefined)."""
        return format_number(x, self.kind)

    def diff(self, d: float) -> str:
        """A difference, signed ("+12", "−0.3 min" style without the unit; "0" when exactly zero)."""
        if d is None or math.isnan(d):
            return "–"
        if d == 0:
            return "0"
        text = format_number(abs(d), self.kind, difference=True)
        return ("+" if d > 0 else "−") + text

    @property
    def header(self) -> str:
        """Label with its unit ("interviews served (per year)")."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def short_header(self) -> str:
        """Short name with its unit when the name does not already say it ("interviews (per year)", "wait min")."""
        said = not self.unit or self.unit in self.short or self.unit in ("min", "MOS", "kiosks", "km per year")
        return self.short if said else f"{self.short} ({self.unit})"


def format_number(x: float | None, kind: str, difference: bool = False) -> str:
    """The one number formatter of the reports: thousands separators, sensible decimals, no 7-digit floats.

    Args:
        x: the value (None or NaN: "–").
        kind: ``count`` (0 decimals), ``minutes`` (1), ``share`` (percent, 1 decimal; a difference in
            percentage points), ``mos`` (2), ``eur`` (2 below 100, else 0), ``erlang`` (2), ``flag`` (yes/no),
            ``ratio`` (2).
        difference: ``x`` is a difference (shares in points "pt").
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if kind == "count":
        return f"{x:,.0f}"
    if kind == "minutes":
        return f"{x:,.1f}"
    if kind == "share":
        return f"{100 * x:.1f} pt" if difference else f"{100 * x:.1f}%"
    if kind in ("mos", "erlang", "ratio"):
        return f"{x:,.2f}"
    if kind == "eur":
        return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"
    if kind == "flag":
        return "yes" if x >= 0.5 else "no"
    return f"{x:,.3g}"


def _meta(name: str, label: str, short: str, unit: str, direction: int, t_abs: float, t_rel: float, kind: str,
          *, rate: bool = False, nonnegative: bool = True) -> KpiMeta:
    return KpiMeta(name, label, short, unit, direction, t_abs, t_rel, kind, nonnegative, rate)


#: Human and short names of the unmet-demand reasons (twin.vocabulary.UNMET_REASONS, in that order).
_REASON_LABELS = {
    "gen1_limit": ("needs lost to the generation-1 service limit", "lost gen1"),
    "no_agent": ("needs lost: no agent reachable", "no agent"),
    "line_down": ("needs lost: line down", "line down"),
    "too_far": ("needs lost: too far from a kiosk", "too far"),
    "gave_up": ("needs lost: citizen gave up waiting", "gave up"),
}

#: The KPI table, in report order (service-specific families below).
KPIS: dict[str, KpiMeta] = {m.name: m for m in (
    _meta("interviews_served", "interviews served", "interviews", "per year", MORE_IS_BETTER, 50, 0.02, "count",
          rate=True),
    _meta("unmet_total", "unmet kiosk needs", "unmet", "per year", LESS_IS_BETTER, 50, 0.02, "count", rate=True),
    *(_meta(f"unmet_{r}", label, short, "per year", LESS_IS_BETTER, 20, 0.05, "count", rate=True)
      for r, (label, short) in _REASON_LABELS.items()),
    _meta("needs_arrived", "kiosk needs arising", "needs", "per year", NEUTRAL, 50, 0.02, "count", rate=True),
    _meta("pending_at_end", "needs pending at the end", "pending", "needs", NEUTRAL, 5, 0.0, "count"),
    _meta("interviews_cut_by_outage", "interviews cut by an outage", "cut", "per year", LESS_IS_BETTER, 5, 0.1,
          "count", rate=True),
    _meta("wait_mean_min", "mean wait for an agent", "wait min", "min", LESS_IS_BETTER, 0.5, 0.0, "minutes"),
    _meta("wait_p95_min", "95th percentile of the wait", "p95 wait", "min", LESS_IS_BETTER, 1.0, 0.0, "minutes"),
    _meta("kiosk_utilisation", "kiosk utilisation", "kiosk use", "%", NEUTRAL, 0.01, 0.0, "share"),
    _meta("population_within_15km", "population within 15 km of a kiosk", "pop<15km", "inhabitants",
          MORE_IS_BETTER, 5000, 0.01, "count"),
    _meta("population_within_30km", "population within 30 km of a kiosk", "pop<30km", "inhabitants",
          MORE_IS_BETTER, 5000, 0.01, "count"),
    _meta("travel_avoided_km", "travel avoided", "travel km", "km per year", MORE_IS_BETTER, 5000, 0.02, "count",
          rate=True),
    _meta("mos_mean", "mean interview quality (G.1070 multimedia MOS 1-5)", "MOS", "MOS", MORE_IS_BETTER, 0.1, 0.0, "mos"),
    _meta("share_mos_below_3", "interviews of poor quality (MOS < 3)", "MOS<3", "%", LESS_IS_BETTER, 0.02,
          0.0, "share"),
    _meta("speech_mos_mean", "mean speech quality (MOS 1-5)", "speech MOS", "MOS", MORE_IS_BETTER, 0.1, 0.0, "mos"),
    _meta("video_mos_mean", "mean video quality (MOS 1-5)", "video MOS", "MOS", MORE_IS_BETTER, 0.1, 0.0, "mos"),
    _meta("share_usable", "interviews usable (speech, video, delay, no pause)", "usable", "%", MORE_IS_BETTER,
          0.02, 0.0, "share"),
    _meta("user_kiosks", "user kiosks", "kiosks", "kiosks", NEUTRAL, 1, 0.0, "count"),
    _meta("expert_kiosks", "expert kiosks", "expert kiosks", "kiosks", NEUTRAL, 1, 0.0, "count"),
    _meta(COST_KPI, "cost per interview served", "€/interview", "EUR", LESS_IS_BETTER, 1.0, 0.05, "eur"),
    _meta("interviews_served_per_year", "interviews served per year", "interviews/y", "per year", MORE_IS_BETTER,
          50, 0.02, "count"),
    _meta("days_simulated", "days simulated", "days", "days", NEUTRAL, 1, 0.0, "count"),
)}

#: KPI families keyed by prefix (the rest of the name is a service id).
_FAMILIES = {
    "agent_utilisation_": ("agent utilisation, {s}", "agents {s}", "%", NEUTRAL, 0.02, 0.0, "share"),
    "offered_load_": ("offered load, {s}", "load {s}", "erlangs", NEUTRAL, 0.05, 0.0, "erlang"),
    "unstable_": ("queue unstable, {s}", "unstable {s}", "", LESS_IS_BETTER, 0.5, 0.0, "flag"),
}

#: Headline KPIs of the terminal, the verdict table and the charts, in this order.
HEADLINE = ("interviews_served", "unmet_total", COST_KPI, "wait_mean_min", "share_mos_below_3", "share_usable",
            "travel_avoided_km", "population_within_15km")


def kpi_meta(name: str) -> KpiMeta:
    """The metadata of a KPI (service families resolved; an unknown KPI gets a neutral default)."""
    if name in KPIS:
        return KPIS[name]
    for prefix, (label, short, unit, direction, t_abs, t_rel, kind) in _FAMILIES.items():
        if name.startswith(prefix):
            sid = name.removeprefix(prefix).upper()
            return _meta(name, label.format(s=sid), short.format(s=sid)[:14], unit, direction, t_abs, t_rel, kind)
    return _meta(name, name.replace("_", " "), name[:14], "", NEUTRAL, 0.0, 0.0, "ratio", nonnegative=False)


def reason_label(reason: str) -> str:
    """Human name of an unmet-demand reason ("too far from a kiosk")."""
    return _REASON_LABELS[reason][0].removeprefix("needs lost: ").removeprefix("needs lost to the ")


__all__ = ["COST_KPI", "HEADLINE", "KPIS", "LESS_IS_BETTER", "MORE_IS_BETTER", "NEUTRAL", "KpiMeta",
           "format_number", "kpi_meta", "reason_label"]

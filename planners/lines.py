"""Line sizing: the cheapest ADSL offer that carries a kiosk's video interviews at a target quality.

For each user kiosk, the offers of :data:`twin.line.OFFERS` are tried in increasing
``monthly_cost_eur`` (ties: better interview MOS first, then name). An offer is **eligible** when a
line of its family syncs on the site's loop (:func:`twin.line.attainable_sync_rate_kbps` via
:class:`twin.line.AdslLine`; a :class:`twin.errors.LineError` means the loop is beyond the family's
reach). An eligible offer is **sufficient** when the scenario's quality model
(:func:`twin.quality.quality_for_scenario`: the G.1070/E-model :class:`twin.quality.OpinionQualityModel`,
or the scenario's :class:`twin.quality.CalibrationTable`) scores the kiosk's encoder profile on it, against
the worst agent line the kiosk may call, with, when no document is in flight:

* ``speech_mos >= target.speech_mos`` (default 3.1: R = 60, the edge of ITU-T G.109's "many users
  dissatisfied"; speech measured by PESQ less G.107's delay impairment with a calibration table), and
* uplink AND downlink frame rate ``>= target.min_frame_rate_share x profile frame rate`` (default 0.8:
  each side sees the other and the documents held up without the video collapsing), and
* p95 one-way delay uplink and downlink ``<= target.max_delay_p95_ms`` (default 400 ms, ITU-T G.114's
  limit for conversation), and
* ``video_mos_up >= target.video_mos`` only when a video MOS target is given (default none).

With a calibration table, only offers the table measured for the kiosk's profile on a loop like the
site's (:meth:`twin.quality.CalibrationTable.point`: same offer, same sync rates or between two measured
loops) are candidates: an offer not measured is reported as such, never scored by clamping; each
choice carries the measured operating point it rests on (``operating_point``). The target must hold on
the point's worst measured call (:meth:`twin.quality.CalibrationTable.worst_score`: lowest frame rate
and speech MOS, highest delay over its seeds), not only on their mean, so that the line meets it on any
call, not one in two.

Why not "interview MOS >= 3" (the twin's ``mos``)? With the default opinion model
the G.1070 video score is bounded by the encoder profile, not by the line: the generation-1 profile
(VP8 320x240@15 with video capped at a few tens of kbit/s to fit a 128 kbit/s uplink) scores about 1.4
on ANY line, and the generation-2 profile (H.264 CIF@25, up to 768 kbit/s) reaches 3 only on uplinks of
roughly 600 kbit/s and more (adsl-max, ADSL2+ on short loops). A MOS-3 target would declare every
generation-1 kiosk unservable and change nothing. The default criterion asks instead whether the line
carries the generation's profile without collapse, which is what the choice of a line can change (a
128 kbit/s uplink carries generation 1 at full frame rate with speech MOS above 4, but collapses
generation 2 to speech MOS 1). ``--target-video-mos`` asks for more; sites no offer can serve are
reported with the reason (e.g. "best eligible adsl2plus: video MOS 1.37 < 3").

Which generation: the highest the kiosk reaches in the scenario (2 if any phase upgrades it), since a
site's line is one for the whole scenario. Which agent line: every expert kiosk line and service office
line of the scenario (distinct ones), and the WORST score over them (CHOICE: a kiosk calls all of them).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from twin.errors import LineError, TwinInputError
from twin.line import OFFERS, AdslLine, LineOffer
from twin.profiles import EncoderProfile, profile_for_generation
from twin.quality import (
    CONVERSATION_SPEECH_MOS,
    G114_ONE_WAY_DELAY_MS,
    CalibrationTable,
    InterviewQuality,
    QualityModel,
    quality_for_scenario,
)
from twin.scenario.spec import LineSpec, LoadedScenario, build_line

__all__ = [
    "DEFAULT_LINE_TARGET",
    "DEFAULT_MIN_FRAME_RATE_SHARE",
    "DEFAULT_TARGET_SPEECH_MOS",
    "LineChoice",
    "LineSizing",
    "LineTarget",
    "agent_lines_of",
    "lines_header",
    "size_line",
    "size_lines",
    "worst_quality",
]

#: Default speech MOS target: R = 60 (:data:`twin.quality.CONVERSATION_SPEECH_MOS`, ITU-T G.109).
DEFAULT_TARGET_SPEECH_MOS = CONVERSATION_SPEECH_MOS

#: Default minimum delivered frame rate, as a share of the profile's frame rate (CHOICE: 80 %, i.e.
#: 12 of 15 fps for generation 1, 20 of 25 for generation 2: no collapse of the video).
DEFAULT_MIN_FRAME_RATE_SHARE = 0.8


@dataclass(frozen=True)
class LineTarget:
    """What a line must deliver to the kiosk's encoder profile (see the module docstring).

    Attributes:
        speech_mos: minimum speech MOS (worse direction), 1-5.
        min_frame_rate_share: minimum delivered frame rate citizen -> agent as a share of the
            profile's frame rate, 0-1.
        video_mos: minimum video MOS citizen -> agent (G.1070 or calibration), 1-5; None: not required.
        max_delay_p95_ms: largest p95 one-way video delay, each direction, ms (ITU-T G.114: 400).
    """

    speech_mos: float = DEFAULT_TARGET_SPEECH_MOS
    min_frame_rate_share: float = DEFAULT_MIN_FRAME_RATE_SHARE
    video_mos: float | None = None
    max_delay_p95_ms: float = G114_ONE_WAY_DELAY_MS

    def __post_init__(self) -> None:
        for name, lo, hi in (("speech_mos", 1.0, 5.0), ("min_frame_rate_share", 0.0, 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise TwinInputError(f"target {name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
        if self.video_mos is not None and not (math.isfinite(self.video_mos) and 1.0 <= self.video_mos <= 5.0):
            raise TwinInputError(f"target video MOS must be in [1, 5], got {self.video_mos!r}")

    def describe(self) -> str:
        """The target in words."""
        video = f", video MOS >= {self.video_mos:g}" if self.video_mos is not None else ""
        return (f"speech MOS >= {self.speech_mos:g}, video >= {self.min_frame_rate_share:.0%} of the profile's frame "
                f"rate up and down, p95 one-way delay <= {self.max_delay_p95_ms:g} ms up and down{video} "
                f"(no document in flight)")

    def shortfall(self, q: InterviewQuality, profile: EncoderProfile) -> str | None:
        """Why ``q``, a score of ``profile``, misses the target: the shortfalls joined by ``"; "`` (e.g.
        ``"speech MOS 2.10 < 3; 9.0 fps < 12.0"``), or None if it meets it."""
        reasons = []
        if q.speech_mos < self.speech_mos:
            reasons.append(f"speech MOS {q.speech_mos:.2f} < {self.speech_mos:g}")
        min_fps = self.min_frame_rate_share * profile.frame_rate_fps
        for name, fps in (("up", q.frame_rate_fps_up), ("down", q.frame_rate_fps_down)):
            if fps is not None and fps < min_fps - 1e-9:
                reasons.append(f"{fps:.1f} fps {name} < {min_fps:.1f}")
        for name, delay in (("up", q.one_way_delay_ms), ("down", q.one_way_delay_ms_down)):
            if delay is not None and not delay <= self.max_delay_p95_ms:
                reasons.append(f"p95 delay {name} {delay:.0f} ms > {self.max_delay_p95_ms:g}")
        if self.video_mos is not None and q.video_mos_up < self.video_mos:
            reasons.append(f"video MOS {q.video_mos_up:.2f} < {self.video_mos:g}")
        return "; ".join(reasons) or None


#: The default target (speech MOS 3.1, 80 % of the profile's frame rate both ways, p95 delay <= 400 ms).
DEFAULT_LINE_TARGET = LineTarget()


@dataclass(frozen=True)
class LineChoice:
    """The sizing of one user kiosk's line.

    Attributes:
        site_id: the kiosk.
        generation: the generation the line is sized for.
        loop_length_m: the site's loop length, m.
        current_offer: the offer in the input scenario.
        offer: the chosen offer, or None when no offer meets the target (then ``reason`` says why).
        monthly_cost_eur: the chosen offer's monthly cost (None if none), EUR.
        quality: the worst-case score on the chosen offer (or on the best eligible offer when none
            meets the target; None if no offer is eligible at all).
        reason: why no offer is chosen (None when one is).
        operating_point: the measured point the choice rests on (:meth:`twin.quality.MeasuredPoint.describe`;
            None with a model).
        not_measured: offers eligible on the loop but absent from the calibration table.
    """

    site_id: str
    generation: int
    loop_length_m: float
    current_offer: str
    offer: str | None
    monthly_cost_eur: float | None
    quality: InterviewQuality | None
    reason: str | None
    operating_point: str | None = None
    not_measured: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineSizing:
    """Line sizing of a scenario's user kiosks.

    Attributes:
        choices: one per user kiosk, in the scenario's site order.
        target: the target used.
        agent_lines: number of distinct agent lines each offer was scored against.
        quality_source: ``"opinion"`` or ``"calibration:<file>"``.
    """

    choices: tuple[LineChoice, ...]
    target: LineTarget
    agent_lines: int
    quality_source: str

    @property
    def impossible(self) -> tuple[LineChoice, ...]:
        """Sites no offer can serve."""
        return tuple(c for c in self.choices if c.offer is None)

    @property
    def monthly_cost_eur(self) -> float:
        """Monthly line cost of the sized sites (current offer kept where none is chosen), EUR."""
        return sum(c.monthly_cost_eur if c.offer is not None else OFFERS[c.current_offer].monthly_cost_eur
                   for c in self.choices)

    @property
    def current_monthly_cost_eur(self) -> float:
        """Monthly line cost of the same sites with their current offers, EUR."""
        return sum(OFFERS[c.current_offer].monthly_cost_eur for c in self.choices)

    @property
    def changed(self) -> int:
        """Number of sites whose offer changes."""
        return sum(1 for c in self.choices if c.offer is not None and c.offer != c.current_offer)


def _offer_order(scores: dict[str, float]) -> list[LineOffer]:
    return sorted(OFFERS.values(), key=lambda o: (o.monthly_cost_eur, -scores.get(o.name, 0.0), o.name))


def worst_quality(qualities: list[InterviewQuality]) -> InterviewQuality:
    """The worst of several scores: lowest interview MOS, then speech MOS, then frame rate.

    Raises:
        ValueError: ``qualities`` is empty.
    """
    return min(qualities, key=lambda q: (q.mos, q.speech_mos, q.frame_rate_fps_up))


def size_line(
    line: LineSpec,
    generation: int,
    agent_lines: list[AdslLine],
    quality_model: QualityModel,
    target: LineTarget = DEFAULT_LINE_TARGET,
    site_id: str = "<site>",
) -> LineChoice:
    """The cheapest offer meeting ``target`` for a kiosk of ``generation`` on ``line``'s loop.

    Args:
        line: the site's line spec (its loop length, loss and outage figures are kept; only the
            offer varies).
        generation: kiosk generation (1 or 2): selects the encoder profile.
        agent_lines: the agent-side lines the kiosk calls (worst score counts); at least one.
        quality_model: scores an interview (``score(kiosk_line, agent_line, profile)``).
        target: the quality target.
        site_id: for messages.

    Returns:
        A :class:`LineChoice` (``offer=None`` with the reason when no offer meets the target).

    Raises:
        TwinInputError: no agent line, unknown generation.
    """
    if not agent_lines:
        raise TwinInputError("line sizing needs at least one agent line (an expert kiosk or a service office)")
    profile = profile_for_generation(generation)
    scored: dict[str, InterviewQuality] = {}
    ineligible: dict[str, str] = {}
    points: dict[str, str] = {}
    not_measured: list[str] = []
    for offer in OFFERS.values():
        try:
            kiosk = build_line(line.model_copy(update={"offer": offer.name}))
        except LineError as exc:
            ineligible[offer.name] = str(exc)
            continue
        if isinstance(quality_model, CalibrationTable):
            if not quality_model.covers(kiosk, profile):
                not_measured.append(offer.name)
                continue
            point, how = quality_model.point(kiosk, profile)
            points[offer.name] = f"{point.describe()} [{how}]"
            scored[offer.name] = quality_model.worst_score(kiosk, profile)  # the agent line is not emulated
            continue
        scored[offer.name] = worst_quality([quality_model.score(kiosk, agent, profile) for agent in agent_lines])
    order = _offer_order({k: q.mos for k, q in scored.items()})
    for offer in order:
        q = scored.get(offer.name)
        if q is not None and target.shortfall(q, profile) is None:
            return LineChoice(site_id, generation, line.loop_length_m, line.offer, offer.name,
                              offer.monthly_cost_eur, q, None, points.get(offer.name), tuple(not_measured))
    if not scored:
        reason = (f"no offer is eligible and measured on a {line.loop_length_m:.0f} m loop "
                  f"(not measured: {', '.join(not_measured) or 'none'}; beyond reach: {', '.join(ineligible) or 'none'})")
        return LineChoice(site_id, generation, line.loop_length_m, line.offer, None, None, None, reason,
                          None, tuple(not_measured))
    best_name = max(scored, key=lambda k: (scored[k].mos, scored[k].speech_mos, scored[k].frame_rate_fps_up))
    best = scored[best_name]
    not_eligible = sorted(k for k in ineligible)
    reason = (f"generation {generation} ({profile.name}) misses the target on every eligible offer; best "
              f"eligible {best_name}: {target.shortfall(best, profile)}")
    if not_eligible:
        reason += f"; not eligible at {line.loop_length_m:.0f} m: {', '.join(not_eligible)}"
    if not_measured:
        reason += f"; not measured: {', '.join(not_measured)}"
    return LineChoice(site_id, generation, line.loop_length_m, line.offer, None, None, best, reason,
                      points.get(best_name), tuple(not_measured))


def _max_generation(loaded: LoadedScenario) -> dict[str, int]:
    spec = loaded.spec
    gen = {s.id: s.generation for s in spec.sites}
    for phase in spec.phases:
        for sid in phase.upgrade:
            gen[sid] = 2
    return gen


def agent_lines_of(loaded: LoadedScenario) -> list[AdslLine]:
    """The distinct agent-side lines of a scenario: expert kiosks' lines, then services' office lines,
    one :class:`twin.line.AdslLine` per distinct :class:`twin.scenario.spec.LineSpec`, in that order."""
    spec = loaded.spec
    specs = [s.line for s in spec.sites if s.kind == "expert"] + [s.office_line for s in spec.services]
    return [build_line(s) for s in dict.fromkeys(specs)]


def size_lines(loaded: LoadedScenario, target: LineTarget = DEFAULT_LINE_TARGET,
               quality_model: QualityModel | None = None) -> LineSizing:
    """Size the line of every user kiosk of a scenario (rules in the module docstring).

    Args:
        loaded: the scenario.
        target: the quality target.
        quality_model: default: the scenario's own (:func:`twin.quality.quality_for_scenario`).

    Returns:
        :class:`LineSizing`, one choice per user kiosk in site order.

    Raises:
        TwinInputError: the scenario has no user kiosk; calibration table lacking a profile.
    """
    model = quality_model if quality_model is not None else quality_for_scenario(loaded)
    agents = agent_lines_of(loaded)
    gens = _max_generation(loaded)
    users = [s for s in loaded.spec.sites if s.kind == "user"]
    if not users:
        raise TwinInputError("the scenario has no user kiosk to size a line for", path=str(loaded.path))
    memo: dict[tuple[LineSpec, int], LineChoice] = {}
    choices = []
    for site in users:
        key = (site.line, gens[site.id])
        if key not in memo:
            memo[key] = size_line(site.line, gens[site.id], agents, model, target)
        choices.append(_with_site(memo[key], site.id))
    source = "opinion" if loaded.spec.quality.model == "opinion" else f"calibration:{loaded.calibration_path}"
    return LineSizing(tuple(choices), target, len(agents), source)


def _with_site(choice: LineChoice, site_id: str) -> LineChoice:
    return replace(choice, site_id=site_id)


def lines_header(sizing: LineSizing, source: str | os.PathLike[str]) -> list[str]:
    """Comment lines heading a line-sized scenario file: provenance (``source``, the input scenario file,
    shown as given), the rule and target, and the sites no offer can serve."""
    t = sizing.target
    lines = [
        f"Line-sized scenario written by `twin plan lines` (planners/lines.py) from {source}.",
        ("Each user kiosk has the cheapest offer (twin.line.OFFERS monthly_cost_eur) eligible on its loop whose "
         f"{sizing.quality_source} quality"),
        f"for the kiosk's generation meets: {t.describe()} (worst of {sizing.agent_lines} agent line(s)).",
    ]
    for c in sizing.impossible:
        lines.append(f"No offer for {c.site_id} (line kept): {c.reason}")
    return lines

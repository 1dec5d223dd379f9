"""What one emulated call runs on: the kiosk's line, its disturbances, the encoder profile, the call's
length and documents, the seed and the clock, as one frozen :class:`CallConfig` checked when it is made.

A :class:`CallConfig` that exists is valid: :meth:`CallConfig.__post_init__` raises
:class:`twin.errors.TwinInputError` naming the field and the value before any socket, peer or loop
exists, and nothing can change it afterwards. :meth:`CallConfig.from_options` builds one from the
options of ``twin emulate`` (:func:`build_line`, :func:`build_profile`, :func:`parse_outage`); its
errors name the command-line option. :meth:`CallConfig.link_queues` gives the two
:class:`twin.line.LinkQueue` objects the call's relay passes its packets through.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emulators.media import DOC_CHUNK_BYTES, DOC_MESSAGE_BYTES, MAX_DOC_MESSAGE_BYTES
from twin.datafiles import read_capacity_trace
from twin.errors import TwinInputError
from twin.line import (
    AQMS,
    CODEL_INTERVAL_MS,
    CODEL_TARGET_MS,
    JITTER_DISTRIBUTIONS,
    MAHIMAHI_OPPORTUNITY_BYTES,
    AdslLine,
    BernoulliLoss,
    CapacityTrace,
    CoDel,
    Direction,
    GilbertElliottLoss,
    Jitter,
    LineFamily,
    LineOffer,
    LinkQueue,
    OutageSchedule,
    attainable_sync_rate_kbps,
    get_offer,
)
from twin.profiles import EncoderProfile, get_profile, profile_for_line
from twin.vocabulary import CLOCKS, LINE_FAMILIES, MAX_CALL_S

DEFAULT_LINE = "adsl-512-128"
"""Offer of a call that names no line."""
DEFAULT_LOOP_LENGTH_M = 2000.0
"""Loop length used when a call names only an offer: at 2 km every built-in ADSL offer syncs at its cap
(attainable about 6.6 Mbit/s down, 1 Mbit/s up), so the offer's rates are what the call gets."""
DEFAULT_PROFILE = "gen1"
"""Encoder profile of a call that names none."""

#: Bounds of a call's options: an emulated interview lasts minutes, not days; documents are scans and
#: prints, not disk images; a kiosk camera is at most full HD at 60 fps; Opus tops out at 510 kbit/s
#: (RFC 6716); no ADSL-era line exceeds ADSL2+'s 24 Mbit/s by much.
MAX_DOCUMENT_KB = 100_000.0
MAX_FRAME_PIXELS = 1920 * 1080
MAX_FRAME_RATE_FPS = 60.0
MAX_OPUS_KBPS = 510.0
MAX_RATE_KBPS = 100_000.0

MAX_BURST_PACKETS = 1000
"""Longest mean loss burst accepted (packets). At the 60-150 packets/s of a call that is 7-17 s of
consecutive loss, an outage rather than bursty loss; a longer mean would also leave a call of minutes
with no burst at all (the first one comes after about ``burst / loss`` packets), so the loss asked for
would not show."""


MAX_ADDED_DELAY_MS = 60_000.0
"""Longest one-way delay ``--delay-ms`` / ``--jitter-ms`` accept, ms (a minute: far beyond a satellite hop,
enough to make any connection die, which is a case worth emulating)."""
MAX_QUEUE_PACKETS = 1_000_000
"""Largest queue limit in packets (a million 1500-byte packets is 1.5 GB of buffer)."""
MAX_QUEUE_BYTES = 1_000_000_000
"""Largest queue limit in bytes (1 GB: orders of magnitude above any modem buffer)."""
MAX_QUEUE_MS = 600_000.0
"""Largest queue limit in ms of waiting (10 minutes)."""


@dataclass(frozen=True)
class LinkControls:
    """The netem-style controls of one direction of the emulated line, on top of the line's own
    physics (sync rate, cell tax, interleaving, modem buffer).

    Attributes:
        delay_ms: one-way delay added to the line's fixed delay, ms (netem ``delay``).
        jitter_ms: random extra delay's scale, ms (0: none; netem ``delay D J``), drawn from
            ``jitter_distribution`` (:data:`twin.line.JITTER_DISTRIBUTIONS`).
        reorder: with jitter, let packets overtake (True, netem's behaviour) or keep their order (False).
        loss_pct: independent random loss of this direction, % (None: the call's ``loss_pct``).
        gemodel: netem's ``loss gemodel p r 1-h 1-k`` in % (a 4-tuple), or None.
        queue_bytes, queue_packets, queue_ms: queue limits (None: the line's buffer in bytes, no packet
            or time limit), drop-tail at whichever is reached first.
        aqm: ``droptail`` or ``codel`` (RFC 8289, at dequeue, on top of the limits).

    Raises:
        TwinInputError: a value out of its bounds, naming the option and the direction.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_distribution: str = "uniform"
    reorder: bool | None = None
    loss_pct: float | None = None
    gemodel: tuple[float, float, float, float] | None = None
    queue_bytes: int | None = None
    queue_packets: int | None = None
    queue_ms: float | None = None
    aqm: str = "droptail"

    def check(self, direction: str) -> None:
        """Raise :class:`twin.errors.TwinInputError` naming ``--<option> <direction>:...`` for a bad value."""
        def bad(option: str, value: Any, why: str) -> TwinInputError:
            return TwinInputError(f"--{option} {direction}:{value!r}: {why}")

        for option, value in (("delay-ms", self.delay_ms), ("jitter-ms", self.jitter_ms)):
            if not _finite(value) or not 0 <= value <= MAX_ADDED_DELAY_MS:
                raise bad(option, value, f"must be between 0 and {MAX_ADDED_DELAY_MS:,.0f} ms")
        if self.jitter_distribution not in JITTER_DISTRIBUTIONS:
            raise bad("jitter-dist", self.jitter_distribution, f"expected one of {', '.join(JITTER_DISTRIBUTIONS)}")
        if self.jitter_ms > 0 and self.reorder is None:
            raise TwinInputError("--jitter-ms needs an explicit --reorder (packets may overtake, as netem does) "
                                 "or --keep-order (jitter only adds delay)")
        if self.loss_pct is not None and (not _finite(self.loss_pct) or not 0 <= self.loss_pct <= 100):
            raise bad("loss-pct", self.loss_pct, "must be between 0 and 100 (%)")
        if self.gemodel is not None:
            if self.loss_pct is not None:
                raise TwinInputError(f"--gemodel and --loss-pct both given for {direction}: choose one loss model")
            if len(self.gemodel) != 4 or not all(_finite(v) and 0 <= v <= 100 for v in self.gemodel):
                raise bad("gemodel", self.gemodel, "expected P,R,1-H,1-K, four percentages in [0, 100]")
            if self.gemodel[1] == 0 and self.gemodel[0] > 0:
                raise bad("gemodel", self.gemodel, "R (bad -> good) must be > 0 when P > 0: the bad state would absorb")
        for option, value, high, integer in (("queue-bytes", self.queue_bytes, MAX_QUEUE_BYTES, True),
                                             ("queue-packets", self.queue_packets, MAX_QUEUE_PACKETS, True),
                                             ("queue-ms", self.queue_ms, MAX_QUEUE_MS, False)):
            if value is None:
                continue
            if not _finite(value) or (integer and value != int(value)) or not 0 < value <= high:
                kind = "an integer" if integer else "a number"
                raise bad(option, value, f"must be {kind} > 0 and <= {high:,}")
        if self.aqm not in AQMS:
            raise bad("aqm", self.aqm, f"expected one of {', '.join(AQMS)}")

    def describe(self) -> dict:
        """JSON-ready dict of the controls."""
        return asdict(self)


def _default_line() -> AdslLine:
    return AdslLine(get_offer(DEFAULT_LINE), DEFAULT_LOOP_LENGTH_M)


def _default_profile() -> EncoderProfile:
    return get_profile(DEFAULT_PROFILE)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class CallConfig:
    """Everything one emulated call needs, checked at construction (an invalid config cannot exist).

    Attributes:
        line: the kiosk's access line (default: :data:`DEFAULT_LINE` at :data:`DEFAULT_LOOP_LENGTH_M`;
            ``None`` is taken as the default).
        up_kbps, down_kbps: override the line's sync rate per direction (kbit/s of ATM wire), 1 to
            :data:`MAX_RATE_KBPS`.
        loss_pct: random loss on both directions, % (overrides ``line.loss_pct``); 100 = dead line.
        burst_length: mean loss-burst length in packets, 1 to :data:`MAX_BURST_PACKETS`; with it the loss
            is Gilbert-Elliott (simple Gilbert: loss 1 in the bad state) instead of independent.
        outages: ``(start_s, end_s)`` intervals from the call start during which the line is down
            (both directions).
        trace_up, trace_down: mahimahi capacity traces (file paths) replacing the constant rate of a
            direction; read and checked when the config is made (mahimahi's own rules,
            :meth:`twin.line.CapacityTrace.parse`).
        up, down: the netem-style :class:`LinkControls` of each direction (delay, jitter, per-direction
            loss or Gilbert-Elliott, queue limits, AQM).
        plain_ip: a plain IP link instead of ADSL: no ATM cell tax and no DSL framing or interleaving
            delay (the fixed delay is only what ``LinkControls.delay_ms`` adds); rates from
            ``up_kbps``/``down_kbps`` or the line's.
        codel_target_ms, codel_interval_ms: CoDel's TARGET and INTERVAL for a direction with
            ``aqm="codel"`` (RFC 8289 defaults 5 and 100 ms).
        profile: encoder profile of both ends (default :data:`DEFAULT_PROFILE`; ``None`` is taken as the
            default); at most :data:`MAX_FRAME_PIXELS`, :data:`MAX_FRAME_RATE_FPS` and
            :data:`MAX_OPUS_KBPS`.
        duration_s: length of the media phase, seconds on the call's clock (wall or virtual; the call
            ends then, always), at most :data:`twin.vocabulary.MAX_CALL_S`.
        scan_kb, print_kb: document sizes (KB = 1000 bytes), 0 to :data:`MAX_DOCUMENT_KB`; 0 disables
            a transfer.
        documents_at_s: seconds after the connection is up at which scan and print start.
        doc_message_bytes: bytes per data-channel message of a document (1 to 65536); None: the
            application's 4 KB chunks when the profile paces documents (``document_kbps``, gen1), else
            browsers' 16 KiB (:data:`emulators.media.DOC_MESSAGE_BYTES`).
        doc_buffer_kb: back-pressure watermark on the channel's ``bufferedAmount``, KB (the sender waits
            for ``bufferedamountlow`` above it; :meth:`emulators.media.DocumentEndpoint.send_document`).
        seed: integer >= 0 seeding the line's random streams (loss, jitter); same seed, same loss pattern
            for the same packet sequence. On the real clock the packet sequence itself depends on
            scheduling; in virtual time the seed also seeds every random draw of aiortc/aioice, so the
            whole call repeats.
        compute_ssim: compute SSIM per decoded frame after the call (PSNR is always computed).
        clock: one of :data:`twin.vocabulary.CLOCKS`. ``"real"``: real sockets through
            :class:`emulators.relay.UdpRelay` on the wall clock; ``"virtual"``: in-memory network on a
            virtual clock (:mod:`emulators.virtual_time`), same LinkQueues; deterministic (same seed,
            same call, event for event) and faster than real time. Video coding costs no virtual time,
            so a per-frame encode/decode delay from :data:`emulators.encoder_setup.CODING_DELAY_MS` is
            added explicitly (:mod:`emulators.clocks`).

    Raises:
        TwinInputError (at construction): a field out of its bounds, naming the field and the value;
            a capacity trace that is not a file; a profile beyond the camera or Opus bounds.
    """

    line: AdslLine = field(default_factory=_default_line)
    up_kbps: float | None = None
    down_kbps: float | None = None
    loss_pct: float | None = None
    burst_length: float | None = None
    outages: tuple[tuple[float, float], ...] = ()
    trace_up: str | None = None
    trace_down: str | None = None
    up: LinkControls = field(default_factory=LinkControls)
    down: LinkControls = field(default_factory=LinkControls)
    plain_ip: bool = False
    codel_target_ms: float = CODEL_TARGET_MS
    codel_interval_ms: float = CODEL_INTERVAL_MS
    profile: EncoderProfile = field(default_factory=_default_profile)
    duration_s: float = 20.0
    scan_kb: float = 300.0
    print_kb: float = 100.0
    documents_at_s: float = 1.0
    doc_message_bytes: int | None = None
    doc_buffer_kb: float = 64.0
    seed: int = 0
    compute_ssim: bool = True
    clock: str = "real"

    def __post_init__(self) -> None:
        """Fill the default line and profile, freeze ``outages`` into tuples, then check every field."""
        if self.line is None:
            object.__setattr__(self, "line", _default_line())
        if self.profile is None:
            object.__setattr__(self, "profile", _default_profile())
        object.__setattr__(self, "outages", tuple(tuple(o) for o in self.outages))
        self._check_call()
        self._check_line()
        self._check_run()
        self._check_profile()

    def _bad(self, name: str, why: str) -> TwinInputError:
        return TwinInputError(f"call option {name}={getattr(self, name)!r}: {why}")

    def _check_call(self) -> None:
        """Length, documents and the scalar options of the call."""
        if not _finite(self.duration_s) or not 0 < self.duration_s <= MAX_CALL_S:
            raise self._bad("duration_s", f"must be a number > 0 and <= {MAX_CALL_S:g} (seconds)")
        for name in ("scan_kb", "print_kb"):
            if not _finite(getattr(self, name)) or not 0 <= getattr(self, name) <= MAX_DOCUMENT_KB:
                raise self._bad(name, f"must be a size between 0 and {MAX_DOCUMENT_KB:,} KB")
        if not _finite(self.documents_at_s) or self.documents_at_s < 0:
            raise self._bad("documents_at_s", "must be a number >= 0")
        m = self.doc_message_bytes
        if m is not None and (not _finite(m) or m != int(m) or not 1 <= m <= MAX_DOC_MESSAGE_BYTES):
            raise TwinInputError(f"--doc-message-bytes {m!r}: must be a whole number of bytes from 1 to "
                                 f"{MAX_DOC_MESSAGE_BYTES} (aiortc's max-message-size)")
        if not _finite(self.doc_buffer_kb) or not self.document_message_bytes() <= self.doc_buffer_kb * 1000 <= 1e9:
            raise TwinInputError(f"--doc-buffer-kb {self.doc_buffer_kb!r}: must hold at least one message "
                                 f"({self.document_message_bytes()} bytes) and be at most 1,000,000 KB")

    def _check_line(self) -> None:
        """Rates, loss, bursts, outages and capacity traces."""
        for name in ("up_kbps", "down_kbps"):
            v = getattr(self, name)
            if v is not None and (not _finite(v) or not 1.0 <= v <= MAX_RATE_KBPS):
                raise self._bad(name, f"must be a rate between 1 and {MAX_RATE_KBPS:,.0f} kbit/s")
        if self.loss_pct is not None and (not _finite(self.loss_pct) or not 0 <= self.loss_pct <= 100):
            raise self._bad("loss_pct", "must be between 0 and 100 (%)")
        if self.burst_length is not None:
            if not _finite(self.burst_length) or not 1 <= self.burst_length <= MAX_BURST_PACKETS:
                raise self._bad("burst_length", f"mean burst length must be between 1 and {MAX_BURST_PACKETS} "
                                "packets (longer bursts are outages: use outages / --outage START_S:END_S)")
            if self.effective_loss_pct() >= 100:
                raise self._bad("burst_length",
                                "bursty loss needs loss_pct < 100 (use loss_pct=100 alone for a dead line)")
            if self.effective_loss_pct() <= 0:
                raise self._bad("burst_length", "bursty loss needs loss_pct > 0")
        for start, end in self.outages:
            if not (_finite(start) and _finite(end)) or start < 0 or end <= start:
                raise TwinInputError(f"outage {start}:{end}: need 0 <= start < end (seconds from call start)")
        traces = {}
        for name in ("trace_up", "trace_down"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise TwinInputError(f"capacity trace for {name} not found", path=str(path))
            traces[name] = read_capacity_trace(path) if path is not None else None
        object.__setattr__(self, "_traces", traces)  # read once, here: a bad trace stops the call before it starts
        self.up.check("up")
        self.down.check("down")
        if not (_finite(self.codel_target_ms) and _finite(self.codel_interval_ms)
                and 0 < self.codel_target_ms < self.codel_interval_ms <= MAX_ADDED_DELAY_MS):
            raise TwinInputError(f"--codel-target-ms {self.codel_target_ms!r} / --codel-interval-ms "
                                 f"{self.codel_interval_ms!r}: need 0 < target < interval <= {MAX_ADDED_DELAY_MS:g} ms")

    def _check_run(self) -> None:
        """Seed and clock."""
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise self._bad("seed", "must be an integer >= 0")
        if self.clock not in CLOCKS:
            raise self._bad("clock", f"must be one of {', '.join(CLOCKS)}")

    def _check_profile(self) -> None:
        """The camera and the Opus rate within what a kiosk sends (the profile checked its own consistency)."""
        profile = self.profile
        if profile.width_px * profile.height_px > MAX_FRAME_PIXELS:
            raise TwinInputError(f"frame {profile.width_px}x{profile.height_px}: at most 1920x1080 pixels")
        if profile.frame_rate_fps > MAX_FRAME_RATE_FPS:
            raise TwinInputError(f"frame rate {profile.frame_rate_fps:g} fps: at most {MAX_FRAME_RATE_FPS:g} fps")
        if profile.audio_kbps > MAX_OPUS_KBPS:
            raise TwinInputError(f"audio {profile.audio_kbps:g} kbit/s: Opus tops out at {MAX_OPUS_KBPS:g} kbit/s")

    @classmethod
    def from_options(cls, *, line_name: str | None = None, loop_length_m: float | None = None,
                     family: str | None = None, outages: Iterable[str] = (), profile_name: str = DEFAULT_PROFILE,
                     codec: str | None = None, width: int | None = None, height: int | None = None,
                     fps: float | None = None, max_video_kbps: float | None = None, audio_kbps: float | None = None,
                     **fields: Any) -> CallConfig:
        """The call ``twin emulate`` describes: the line from :func:`build_line`, the outages from
        :func:`parse_outage` (``"START_S:END_S"`` strings), the profile from :func:`build_profile`;
        ``fields`` are the other :class:`CallConfig` fields, passed as they are.

        Raises:
            TwinInputError: naming the command-line option (line, family, outage, frame size) or the
                field; the line first, then the outages, the profile, the rest.
        """
        line = build_line(line_name, loop_length_m, family)
        parsed = tuple(parse_outage(text) for text in outages)
        profile = build_profile(profile_name, codec, width, height, fps, max_video_kbps, audio_kbps)
        if max_video_kbps is None:  # no cap given: the one measured for this uplink (docs/operating-points.md)
            profile = profile_for_line(profile, line.sync_rate_up_kbps, points_of=profile_name)
        return cls(line=line, outages=parsed, profile=profile, **fields)

    @classmethod
    def from_cli(cls, *, link_options: dict[str, Iterable[str]], jitter_dist: str = "uniform",
                 reorder: bool | None = None, **options: Any) -> CallConfig:
        """:meth:`from_options` plus the per-direction link options of ``twin emulate`` as their texts
        (``link_options``: option name without dashes, e.g. ``"delay-ms"`` -> ``["40"]`` or
        ``["up:40", "down:10"]``; :func:`parse_per_direction`). A ``loss-pct`` for both directions is
        the call's ``loss_pct``; one for a single direction goes to its :class:`LinkControls`.

        Raises:
            TwinInputError: naming the option (and the direction) of a bad value.
        """
        per: dict[str, dict[str, Any]] = {"up": {}, "down": {}}
        converters = {"delay-ms": ("delay_ms", float), "jitter-ms": ("jitter_ms", float),
                      "gemodel": ("gemodel", parse_gemodel), "queue-bytes": ("queue_bytes", float),
                      "queue-packets": ("queue_packets", float), "queue-ms": ("queue_ms", float),
                      "aqm": ("aqm", str)}
        for option, texts in link_options.items():
            texts = list(texts)
            if option == "loss-pct":
                both, single = parse_loss_options(texts)
                if both is not None:
                    options["loss_pct"] = both
                for direction, value in single.items():
                    per[direction]["loss_pct"] = value
                continue
            name, convert = converters[option]
            for direction, value in parse_per_direction(option, texts, convert).items():
                per[direction][name] = value
        for direction in per:
            if per[direction].get("jitter_ms"):
                per[direction].update(jitter_distribution=jitter_dist, reorder=reorder)
        for name in ("queue_bytes", "queue_packets"):
            for direction in per:  # whole numbers, checked as such by LinkControls
                value = per[direction].get(name)
                if value is not None and _finite(value) and value == int(value):
                    per[direction][name] = int(value)
        return cls.from_options(up=LinkControls(**per["up"]), down=LinkControls(**per["down"]), **options)

    def document_message_bytes(self) -> int:
        """Bytes per document message: ``doc_message_bytes``, else the profile's default (see the field)."""
        if self.doc_message_bytes is not None:
            return int(self.doc_message_bytes)
        return DOC_CHUNK_BYTES if self.profile.document_kbps is not None else DOC_MESSAGE_BYTES

    def effective_loss_pct(self) -> float:
        """Random loss of the call, %: ``loss_pct`` if given, else the line's own."""
        return float(self.loss_pct if self.loss_pct is not None else self.line.loss_pct)

    def trace(self, direction: str) -> CapacityTrace | None:
        """The capacity trace of ``direction`` (``"up"``/``"down"``), read when the config was made, or None."""
        return self._traces[f"trace_{direction}"]  # type: ignore[attr-defined]

    def controls(self, direction: str) -> LinkControls:
        """The :class:`LinkControls` of ``direction`` (``"up"``/``"down"``)."""
        return self.up if direction == "up" else self.down

    @property
    def sync_rate_up_kbps(self) -> float:
        """Uplink rate the call actually had, kbit/s: the trace's mean if it has one, else ``up_kbps``
        if given, else the line's sync rate."""
        trace = self.trace("up")
        return trace.mean_rate_kbps if trace is not None else (self.up_kbps or self.line.sync_rate_up_kbps)

    @property
    def sync_rate_down_kbps(self) -> float:
        """Downlink rate the call actually had, kbit/s (as :attr:`sync_rate_up_kbps`)."""
        trace = self.trace("down")
        return trace.mean_rate_kbps if trace is not None else (self.down_kbps or self.line.sync_rate_down_kbps)

    def fixed_delay_ms(self, direction: str) -> float:
        """Size-independent one-way delay of ``direction``, ms: the line's framing/interleaving and
        propagation (none on a plain-IP link) plus the added ``delay_ms``."""
        line_ms = 0.0 if self.plain_ip else self.line.fixed_delay_ms(Direction(direction))
        return line_ms + self.controls(direction).delay_ms

    def loss_model(self, direction: str):
        """A fresh loss model for ``direction`` (Gilbert-Elliott is stateful): its gemodel, else its own
        loss_pct, else the call's loss_pct with ``burst_length``; None without loss."""
        controls = self.controls(direction)
        if controls.gemodel is not None:
            return GilbertElliottLoss.from_netem(*controls.gemodel)
        loss = controls.loss_pct if controls.loss_pct is not None else self.effective_loss_pct()
        if loss <= 0:
            return None
        if self.burst_length is not None and controls.loss_pct is None:
            return GilbertElliottLoss.from_mean_loss(loss, self.burst_length)
        return BernoulliLoss(loss)

    def describe_link(self, direction: str) -> dict:
        """The link ``direction`` actually had, JSON-ready: framing, rate or trace, delays, jitter, loss
        model with its stationary loss and mean burst, queue limits and discipline."""
        d = Direction(direction)
        controls = self.controls(direction)
        trace = self.trace(direction)
        loss = self.loss_model(direction)
        if isinstance(loss, GilbertElliottLoss):
            loss_doc: dict | None = {"model": "gilbert-elliott", "p_pct": 100 * loss.p_good_to_bad,
                                     "r_pct": 100 * loss.p_bad_to_good, "one_minus_h_pct": 100 * loss.loss_in_bad,
                                     "one_minus_k_pct": 100 * loss.loss_in_good, "mean_loss_pct": loss.mean_loss_pct,
                                     "mean_burst_packets": loss.mean_burst_packets}
        else:
            loss_doc = None if loss is None else {"model": "bernoulli", "mean_loss_pct": loss.loss_pct}
        return {
            "framing": "ip" if self.plain_ip else f"atm {self.line.encapsulation.value}",
            "rate_kbps": self.sync_rate_up_kbps if d is Direction.UP else self.sync_rate_down_kbps,
            "trace": None if trace is None else {
                "file": getattr(self, f"trace_{direction}"), "opportunities": len(trace), "period_ms": trace.period_ms,
                "mean_rate_kbps": trace.mean_rate_kbps, "opportunity_bytes": MAHIMAHI_OPPORTUNITY_BYTES},
            "fixed_delay_ms": self.fixed_delay_ms(direction),
            "added_delay_ms": controls.delay_ms,
            "jitter": None if controls.jitter_ms <= 0 else {
                "jitter_ms": controls.jitter_ms, "distribution": controls.jitter_distribution,
                "reorder": bool(controls.reorder)},
            "loss": loss_doc,
            "queue": {"bytes": self._queue_bytes(direction), "packets": controls.queue_packets, "ms": controls.queue_ms,
                      "aqm": controls.aqm, **({"codel_target_ms": self.codel_target_ms,
                                                "codel_interval_ms": self.codel_interval_ms}
                                               if controls.aqm == "codel" else {})},
        }

    def _queue_bytes(self, direction: str) -> int:
        controls = self.controls(direction)
        return int(controls.queue_bytes) if controls.queue_bytes is not None else self.line.buffer_bytes(direction)

    def describe(self) -> dict:
        """JSON-ready description of the call set-up (what the results were measured on): the line with
        the rates it actually had (a trace's mean rate when traced; kbit/s), fixed delays (ms) and
        buffers (bytes), each direction's link as used (:meth:`describe_link`), the disturbances, the
        profile, the documents, the seed and the clock."""
        line = self.line
        traced = [d for d in ("up", "down") if self.trace(d) is not None]
        return {
            "line": {
                "offer": line.offer.name if not (traced or self.plain_ip) else
                ("plain-ip" if self.plain_ip else line.offer.name) + "".join(f"+trace-{d}" for d in traced),
                "family": line.offer.family.value,
                "loop_length_m": line.loop_length_m,
                "encapsulation": "none (plain IP)" if self.plain_ip else line.encapsulation.value,
                "interleaved": line.interleaved and not self.plain_ip,
                "sync_rate_up_kbps": self.sync_rate_up_kbps,
                "sync_rate_down_kbps": self.sync_rate_down_kbps,
                "fixed_delay_up_ms": self.fixed_delay_ms("up"),
                "fixed_delay_down_ms": self.fixed_delay_ms("down"),
                "up_buffer_bytes": self._queue_bytes("up"),
                "down_buffer_bytes": self._queue_bytes("down"),
            },
            "link": {"up": self.describe_link("up"), "down": self.describe_link("down")},
            "loss_pct": self.effective_loss_pct(),
            "burst_length": self.burst_length,
            "outages": [list(o) for o in self.outages],
            "trace_up": self.trace_up,
            "trace_down": self.trace_down,
            "profile": asdict(self.profile),
            "duration_s": self.duration_s,
            "scan_kb": self.scan_kb,
            "print_kb": self.print_kb,
            "documents_at_s": self.documents_at_s,
            "doc_message_bytes": self.document_message_bytes(),
            "doc_buffer_kb": self.doc_buffer_kb,
            "seed": self.seed,
            "clock": self.clock,
        }

    def link_queues(self) -> tuple[LinkQueue, LinkQueue]:
        """The UP and DOWN :class:`twin.line.LinkQueue` of the call, from the line plus the overrides.

        Each direction gets its own random stream (``SeedSequence(seed).spawn``) and its own loss model
        instance (Gilbert-Elliott is stateful); both share one outage schedule. Traces start at the relay
        clock's origin (call start). New queues at each call: a queue is the state of one call's line.
        """
        up_rng, down_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2))
        return self.link_queue("up", up_rng), self.link_queue("down", down_rng)

    def link_queue(self, direction: str, rng: np.random.Generator,
                   outages: OutageSchedule | None = None) -> LinkQueue:
        """One direction's :class:`twin.line.LinkQueue` drawing from ``rng`` (see :meth:`link_queues`);
        ``outages``: the schedule to share (default: one made from ``self.outages``)."""
        if outages is None and self.outages:
            outages = OutageSchedule(list(self.outages))
        controls = self.controls(direction)
        rate = self.up_kbps if direction == "up" else self.down_kbps
        overrides: dict[str, Any] = {
            "loss": self.loss_model(direction), "outages": outages, "fixed_delay_ms": self.fixed_delay_ms(direction),
            "buffer_bytes": self._queue_bytes(direction), "queue_packets": controls.queue_packets,
            "queue_ms": controls.queue_ms, "aqm": controls.aqm, "plain_ip": self.plain_ip,
        }
        if controls.aqm == "codel":
            overrides["codel"] = CoDel(self.codel_target_ms, self.codel_interval_ms)
        if controls.jitter_ms > 0:
            overrides["jitter"] = Jitter(controls.jitter_ms, controls.jitter_distribution, bool(controls.reorder))
        if rate is not None:
            overrides["sync_rate_kbps"] = float(rate)
        trace = self.trace(direction)
        if trace is not None:
            overrides["capacity_trace"] = trace
            overrides["trace_start_s"] = 0.0
        return LinkQueue.from_line(self.line, Direction(direction), rng, **overrides)


# --------------------------------------------------------------------------------------------------
# Builders from command-line options
# --------------------------------------------------------------------------------------------------


def parse_per_direction(option: str, texts: Iterable[str], convert: Callable[[str], Any]) -> dict[str, Any]:
    """Values of a per-direction option: ``"VALUE"`` for both directions, ``"up:VALUE"`` or
    ``"down:VALUE"`` for one (the option may be repeated; a later value wins). Returns
    ``{"up": value, "down": value}`` with only the directions given.

    Raises:
        TwinInputError: an unknown direction or a value ``convert`` refuses, naming ``--option``.
    """
    out: dict[str, Any] = {}
    for text in texts:
        head, sep, rest = str(text).partition(":")
        if sep and head in ("up", "down"):
            directions, value_text = (head,), rest
        elif sep and head.isalpha():
            raise TwinInputError(f"--{option} {text!r}: unknown direction {head!r}; expected up:VALUE, down:VALUE "
                                 "or VALUE for both")
        else:
            directions, value_text = ("up", "down"), text
        try:
            value = convert(value_text)
        except (TypeError, ValueError) as exc:
            raise TwinInputError(f"--{option} {text!r}: {exc}") from None
        for direction in directions:
            out[direction] = value
    return out


def parse_loss_options(texts: Iterable[str]) -> tuple[float | None, dict[str, float]]:
    """``--loss-pct`` texts -> (loss for both directions or None, {direction: loss} for single ones)."""
    both: float | None = None
    single: dict[str, float] = {}
    for text in texts:
        values = parse_per_direction("loss-pct", [text], float)
        if len(values) == 2:
            both = values["up"]
        else:
            single.update(values)
    return both, single


def parse_gemodel(text: str) -> tuple[float, float, float, float]:
    """netem's ``gemodel`` parameters ``"P[,R[,1-H[,1-K]]]"`` in % (defaults as netem: R = 100 - P, 1-H = 100,
    1-K = 0).

    Raises:
        ValueError: not one to four comma-separated numbers.
    """
    parts = [x for x in text.replace("%", "").split(",")]
    if not 1 <= len(parts) <= 4:
        raise ValueError("expected P[,R[,1-H[,1-K]]], percentages as tc-netem's 'loss gemodel'")
    values = [float(x) for x in parts]
    defaults = [None, 100.0 - values[0], 100.0, 0.0]
    return tuple(values + defaults[len(values):])  # type: ignore[return-value]


def parse_outage(text: str) -> tuple[float, float]:
    """``"START_S:END_S"`` (seconds from the call start) -> ``(start_s, end_s)``.

    Raises:
        TwinInputError: not two numbers separated by a colon (the bounds are checked by :class:`CallConfig`).
    """
    try:
        start, end = (float(x) for x in text.split(":"))
    except ValueError:
        raise TwinInputError(f"--outage {text!r}: expected START_S:END_S, e.g. 5:12") from None
    return start, end


def build_line(line_name: str | None, loop_length_m: float | None, family: str | None) -> AdslLine:
    """The kiosk line from the options of ``twin emulate``.

    * ``line_name`` alone: that offer at :data:`DEFAULT_LOOP_LENGTH_M` (it syncs at its caps).
    * ``loop_length_m`` (metres; + ``family``, default ``adsl``) without ``line_name``: an uncapped line
      of that family syncing at its attainable rates (:func:`twin.line.attainable_sync_rate_kbps`).
    * both: the named offer on a loop of ``loop_length_m`` metres (sync = min(cap, attainable)).

    Raises:
        TwinInputError: unknown family, ``family`` without a loop length, a family contradicting the
            offer, unknown offer; :class:`twin.line.LineError` for a loop out of the family's reach.
    """
    if family is not None and family not in LINE_FAMILIES:
        raise TwinInputError(f"--family {family!r}: expected one of {', '.join(LINE_FAMILIES)}")
    if loop_length_m is None:
        if family is not None:
            raise TwinInputError("--family needs --loop-length-m (or name an offer with --line)")
        return AdslLine(get_offer(DEFAULT_LINE if line_name is None else line_name), DEFAULT_LOOP_LENGTH_M)
    if line_name is not None:
        offer = get_offer(line_name)
        if family is not None and family != offer.family.value:
            raise TwinInputError(f"--family {family} contradicts --line {line_name} ({offer.family.value})")
        return AdslLine(offer, loop_length_m)
    fam = LineFamily(family or "adsl")
    down, up = attainable_sync_rate_kbps(loop_length_m, fam)  # raises LineError when out of reach
    offer = LineOffer(
        name=f"{fam.value}-{loop_length_m:.0f}m", family=fam, down_kbps=down, up_kbps=up, monthly_cost_eur=0.0,
        description="attainable sync rates of the loop, no commercial cap",
    )
    return AdslLine(offer, loop_length_m)


def build_profile(name: str, codec: str | None, width: int | None, height: int | None, fps: float | None,
                  max_video_kbps: float | None, audio_kbps: float | None) -> EncoderProfile:
    """The built-in profile ``name`` with optional overrides: codec (``VP8``/``H264``), frame size (px),
    frame rate (fps), video bitrate cap and Opus bitrate (kbit/s). A changed profile is named
    ``<name>+custom``; a lowered cap pulls the minimum and start bitrates down with it.

    Raises:
        TwinInputError: unknown profile; a frame size that is not a positive even number of pixels, or
            narrower than 80 px; anything :class:`twin.profiles.EncoderProfile` refuses.
    """
    profile = get_profile(name)
    changes: dict = {}
    if codec is not None:
        changes["video_codec"] = codec.upper().replace(".", "")
    if width is not None:
        changes["width_px"] = width
    if height is not None:
        changes["height_px"] = height
    if fps is not None:
        changes["frame_rate_fps"] = fps
    if max_video_kbps is not None:
        changes["video_max_kbps"] = max_video_kbps
        if max_video_kbps > 0:  # keep min <= start <= max; a bad cap is reported by EncoderProfile
            changes["video_min_kbps"] = min(profile.video_min_kbps, max_video_kbps)
            changes["video_start_kbps"] = min(profile.video_start_kbps, max_video_kbps)
    if audio_kbps is not None:
        changes["audio_kbps"] = audio_kbps
    if not changes:
        return profile
    for key in ("width_px", "height_px"):
        if key in changes and (changes[key] <= 0 or changes[key] % 2):
            raise TwinInputError(f"--{key[:-3]} {changes[key]}: frame size must be a positive even number of pixels")
    if "width_px" in changes and changes["width_px"] < 80:
        raise TwinInputError(f"--width {changes['width_px']}: at least 80 px (the frame-number barcode needs room)")
    return dataclasses.replace(profile, name=f"{profile.name}+custom", **changes)

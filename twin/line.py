"""The ADSL line: one object owns every physical effect of the kiosk's (or agent's) access line.

Pure module: no SimPy, no asyncio, no printing, no file (:func:`twin.datafiles.read_capacity_trace` reads
a mahimahi trace file).
Both the SimPy twin and the real-time emulator (an asyncio UDP relay) ask this module for sync rates,
cell tax, fixed delays, buffering and loss; neither re-derives them.

Layers, bottom up:

* **Physics of the loop** - :func:`loop_attenuation_db`, :func:`attainable_sync_rate_kbps`: how fast a
  modem can sync on a copper pair of a given length (rate-reach table of ``docs/facts.md``).
* **ATM cell tax** - :func:`atm_cells`, :func:`atm_wire_bytes`, :func:`atm_efficiency`,
  :func:`serialization_time_s`, :func:`ip_capacity_kbps`: an IP packet plus its encapsulation overhead
  is padded into 53-byte ATM cells carrying 48 bytes each.
* **Commercial offers** - :class:`LineOffer`, :data:`OFFERS`, :func:`get_offer`: the rate caps sold in
  France 2004-2008.
* **A provisioned line** - :class:`AdslLine`: offer + loop length + encapsulation + interleaving +
  buffers + loss + outages; sync rate = min(offer cap, attainable). :class:`Backhaul`: an exchange's link
  to the network, shared by the lines behind it. Both are a :class:`Link`, whose ``shared_by`` is the
  twin's shared-link rule.
* **One direction as a packet queue** - :class:`LinkQueue`: a FIFO in explicit time with the controls of
  tc-netem and mahimahi: queue limits in bytes, packets or ms, drop-tail or :class:`CoDel` (RFC 8289),
  :class:`BernoulliLoss` / :class:`GilbertElliottLoss` (netem's ``gemodel``), :class:`Jitter` with a
  distribution and reordering or not, a mahimahi :class:`CapacityTrace` read as mahimahi reads it, an
  :class:`OutageSchedule`, ATM cells or plain IP. ``send(now_s, ip_bytes)`` returns a delivery time or
  ``None``.

Units live in names: ``_kbps`` is kbit/s with 1 kbit = 1000 bit; ``_ms`` milliseconds; ``_s`` seconds;
``_m`` metres; ``_db`` decibels; ``_bytes`` octets. Sync rates count ATM cells on the wire (53-byte
cells, header included), which is how DSL modems report them.

Randomness is always an argument (a :class:`numpy.random.Generator`), never module state.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol, Self, runtime_checkable

import numpy as np

from twin.errors import LineError, TwinInputError

__all__ = [
    "AQMS",
    "ATM_CELL_BYTES",
    "CODEL_INTERVAL_MS",
    "CODEL_TARGET_MS",
    "JITTER_DISTRIBUTIONS",
    "MAHIMAHI_OPPORTUNITY_BYTES",
    "ATM_PAYLOAD_BYTES",
    "ELIGIBILITY_LIMIT_DB",
    "ENCAPSULATION_OVERHEAD_BYTES",
    "OFFERS",
    "READSL_MAX_LOOP_M",
    "UP_AT_LIMIT_KBPS",
    "UP_KNEE_DB",
    "UP_MAX_KBPS",
    "AdslLine",
    "Backhaul",
    "BernoulliLoss",
    "CapacityTrace",
    "ClockedHop",
    "CoDel",
    "Direction",
    "Encapsulation",
    "GilbertElliottLoss",
    "Jitter",
    "LineFamily",
    "LineOffer",
    "Link",
    "LinkPath",
    "LinkQueue",
    "LinkStats",
    "LossModel",
    "OutageSchedule",
    "atm_cells",
    "atm_efficiency",
    "atm_wire_bytes",
    "attainable_sync_rate_kbps",
    "get_offer",
    "ip_capacity_kbps",
    "loop_attenuation_db",
    "serialization_time_s",
]

# --------------------------------------------------------------------------------------------------
# ATM cell tax
# --------------------------------------------------------------------------------------------------

ATM_CELL_BYTES = 53
"""Bytes of one ATM cell on the wire: 5-byte header + 48-byte payload (ITU-T I.361)."""

ATM_PAYLOAD_BYTES = 48
"""Payload bytes of one ATM cell (ITU-T I.361). Best possible efficiency is 48/53 = 90.57 %."""


class LineFamily(str, Enum):
    """DSL technology of a line (decides reach and attainable rates).

    * ``ADSL``: ITU-T G.992.1 / G.992.3 (ADSL / ADSL2), Annex A; the rate-reach column "ADSL / ADSL2".
    * ``READSL``: Reach-Extended ADSL2 (G.992.3 Annex L), sold by France Telecom from May 2005 for
      loops of 5.5-8 km, capped at 512/128 kbit/s (docs/facts.md, "ADSL line").
    * ``ADSL2PLUS``: ITU-T G.992.5; the rate-reach column "ADSL2+".
    """

    ADSL = "adsl"
    READSL = "readsl"
    ADSL2PLUS = "adsl2plus"


class Encapsulation(str, Enum):
    """Encapsulation of IP over the ATM virtual circuit; its per-packet overhead is in
    :data:`ENCAPSULATION_OVERHEAD_BYTES`.

    Values are those of Linux ``tc-stab`` / OpenWrt SQM "overhead" settings (AAL5's 8-byte CPCS
    trailer included), derived from RFC 2364 (PPPoA), RFC 2516 (PPPoE), RFC 2684 (multiprotocol
    over AAL5: LLC/SNAP or VC-MUX) and ITU-T I.363.5 (AAL5 trailer). French ADSL of 2005-2008
    (France Telecom/Orange, Free, ...) used mostly PPPoE LLC or PPPoA VC-MUX.
    """

    PPPOA_VCMUX = "pppoa-vcmux"
    PPPOA_LLC = "pppoa-llc"
    PPPOE_VCMUX = "pppoe-vcmux"
    PPPOE_VCMUX_FCS = "pppoe-vcmux-fcs"
    PPPOE_LLC = "pppoe-llc"
    PPPOE_LLC_FCS = "pppoe-llc-fcs"
    BRIDGED_VCMUX = "bridged-vcmux"
    BRIDGED_VCMUX_FCS = "bridged-vcmux-fcs"
    BRIDGED_LLC = "bridged-llc"
    BRIDGED_LLC_FCS = "bridged-llc-fcs"
    IPOA_VCMUX = "ipoa-vcmux"
    IPOA_LLC = "ipoa-llc"


ENCAPSULATION_OVERHEAD_BYTES: dict[Encapsulation, int] = {
    # PPP 2 + AAL5 8
    Encapsulation.PPPOA_VCMUX: 10,
    # PPP 2 + LLC/NLPID 4 (RFC 2364) + AAL5 8
    Encapsulation.PPPOA_LLC: 14,
    # PPP 2 + PPPoE 6 + Ethernet MAC 14 + VC-MUX pad 2 + AAL5 8
    Encapsulation.PPPOE_VCMUX: 32,
    Encapsulation.PPPOE_VCMUX_FCS: 36,  # + Ethernet FCS 4
    # PPP 2 + PPPoE 6 + Ethernet MAC 14 + LLC/SNAP 10 (RFC 2684 bridged) + AAL5 8
    Encapsulation.PPPOE_LLC: 40,
    Encapsulation.PPPOE_LLC_FCS: 44,  # + Ethernet FCS 4
    # Ethernet MAC 14 + VC-MUX pad 2 + AAL5 8 (RFC 2684 bridged, "IPoE")
    Encapsulation.BRIDGED_VCMUX: 24,
    Encapsulation.BRIDGED_VCMUX_FCS: 28,
    # Ethernet MAC 14 + LLC/SNAP 10 + AAL5 8
    Encapsulation.BRIDGED_LLC: 32,
    Encapsulation.BRIDGED_LLC_FCS: 36,
    # AAL5 8 (RFC 2684 routed, VC-MUX)
    Encapsulation.IPOA_VCMUX: 8,
    # LLC/SNAP 8 + AAL5 8 (RFC 2684 routed, LLC)
    Encapsulation.IPOA_LLC: 16,
}
"""Per-IP-packet overhead in bytes before padding to whole cells, AAL5 trailer included (the Linux
tc-stab / SQM convention; docs/facts.md gives PPPoA VC-MUX 10, PPPoE LLC 40, 44 with FCS; the others follow
from the same RFC 2364 / 2516 / 2684 header sizes)."""


def _encapsulation(value: Encapsulation | str) -> Encapsulation:
    try:
        return Encapsulation(value)
    except ValueError:
        known = ", ".join(e.value for e in Encapsulation)
        raise LineError(f"unknown encapsulation {value!r}; known: {known}") from None


def _check_ip_bytes(ip_bytes: int) -> int:
    if isinstance(ip_bytes, bool) or int(ip_bytes) != ip_bytes or ip_bytes <= 0:
        raise ValueError(f"ip_bytes must be a positive integer, got {ip_bytes!r}")
    return int(ip_bytes)


def atm_cells(ip_bytes: int, encapsulation: Encapsulation | str) -> int:
    """Number of ATM cells carrying one IP packet: ``ceil((ip_bytes + overhead) / 48)``.

    Args:
        ip_bytes: size of the IP packet (IP header included), bytes, > 0.
        encapsulation: an :class:`Encapsulation` (or its string value).

    Returns:
        Whole cells (AAL5 pads the last cell). Example: 1500 B over PPPoA VC-MUX -> 32 cells;
        over PPPoE LLC -> 33 cells (docs/facts.md worked values).

    Raises:
        ValueError: non-positive or non-integer size. LineError: unknown encapsulation.
    """
    ip_bytes = _check_ip_bytes(ip_bytes)
    overhead = ENCAPSULATION_OVERHEAD_BYTES[_encapsulation(encapsulation)]
    return -(-(ip_bytes + overhead) // ATM_PAYLOAD_BYTES)


def atm_wire_bytes(ip_bytes: int, encapsulation: Encapsulation | str) -> int:
    """Bytes on the DSL wire for one IP packet: ``53 * atm_cells(ip_bytes, encapsulation)``."""
    return ATM_CELL_BYTES * atm_cells(ip_bytes, encapsulation)


def atm_efficiency(ip_bytes: int, encapsulation: Encapsulation | str) -> float:
    """IP bytes / wire bytes for one packet, in (0, 48/53]. 1500 B PPPoA -> 0.884; 100 B PPPoE LLC -> 0.629."""
    return ip_bytes / atm_wire_bytes(ip_bytes, encapsulation)


def serialization_time_s(ip_bytes: int, sync_rate_kbps: float, encapsulation: Encapsulation | str) -> float:
    """Seconds to clock one IP packet's ATM cells onto a line synced at ``sync_rate_kbps``.

    ``53 * cells * 8 / (sync_rate_kbps * 1000)``. 1500 B PPPoE LLC at 385 kbit/s -> 36.34 ms.

    Raises:
        ValueError: non-positive rate or size.
    """
    if not sync_rate_kbps > 0:
        raise ValueError(f"sync_rate_kbps must be > 0, got {sync_rate_kbps!r}")
    return atm_wire_bytes(ip_bytes, encapsulation) * 8.0 / (sync_rate_kbps * 1000.0)


def ip_capacity_kbps(sync_rate_kbps: float, ip_bytes: int, encapsulation: Encapsulation | str) -> float:
    """IP-layer throughput (kbit/s) of a saturated line sending packets of ``ip_bytes`` each.

    ``sync_rate_kbps * atm_efficiency(ip_bytes, encapsulation)``. 385 kbit/s, 1500 B, PPPoE LLC
    -> 330.2 kbit/s.
    """
    if not sync_rate_kbps > 0:
        raise ValueError(f"sync_rate_kbps must be > 0, got {sync_rate_kbps!r}")
    return sync_rate_kbps * atm_efficiency(ip_bytes, encapsulation)


# --------------------------------------------------------------------------------------------------
# Loop physics: attenuation and rate-reach
# --------------------------------------------------------------------------------------------------

_REACH_LOOP_M = (170.0, 1301.0, 2540.0, 3909.0, 5004.0, 5755.0)
_REACH_ATTEN_DB = (4.1, 20.3, 39.6, 47.6, 53.0, 60.8)
_REACH_ADSL_DOWN_KBPS = (8000.0, 7300.0, 5700.0, 4200.0, 3100.0, 2000.0)
_REACH_ADSL2PLUS_DOWN_KBPS = (19400.0, 14200.0, 7400.0, 5400.0, 4300.0, 3000.0)
# Rate-reach table of docs/facts.md ("ADSL line"): mixed 0.4/0.6 mm copper, downstream sync rate.

ATTENUATION_EXTRAPOLATION_DB_PER_M = (_REACH_ATTEN_DB[-1] - _REACH_ATTEN_DB[0]) / (
    _REACH_LOOP_M[-1] - _REACH_LOOP_M[0]
)
"""Slope used beyond the last table row (10.15 dB/km): the mean slope of the docs/facts.md table, which
lies between the 300 kHz attenuation of 0.5 mm (12.4 dB/km) and 0.6 mm (10.3 dB/km) copper.
ASSUMPTION (the table stops at 5,755 m)."""

ELIGIBILITY_LIMIT_DB = 70.0
"""ADSL / ADSL2+ eligibility limit, loop attenuation in dB (docs/facts.md: "about 70 dB"); with the
extrapolation slope above this is reached at about 6,660 m."""

READSL_MAX_LOOP_M = 8000.0
"""READSL reach limit (docs/facts.md: READSL reaches 5.5 to 8 km)."""

READSL_DOWN_KBPS = 512.0
READSL_UP_KBPS = 128.0
"""READSL attainable rate, taken equal to its commercial cap 512/128 kbit/s on every loop up to
:data:`READSL_MAX_LOOP_M` (docs/facts.md). ASSUMPTION: the cap, not the physics, binds within reach."""

UP_MAX_KBPS = 1024.0
"""Upstream attainable sync rate on short loops, ADSL / ADSL2 / ADSL2+ Annex A: about 1 Mbit/s
(G.992.1/G.992.5 Annex A upstream band 25-138 kHz; docs/facts.md: ADSL2+ "~1M up").
ASSUMPTION - the rate-reach table gives downstream only."""

UP_KNEE_DB = 40.0
"""Loop attenuation up to which upstream stays at :data:`UP_MAX_KBPS`. ASSUMPTION: the upstream band is
low-frequency, so it degrades much later than downstream."""

UP_AT_LIMIT_KBPS = 256.0
"""Upstream attainable sync rate at the eligibility limit (:data:`ELIGIBILITY_LIMIT_DB`); linear in dB
between :data:`UP_KNEE_DB` and the limit. ASSUMPTION (order of magnitude of long French lines of the
period, which still synced the 128/256 kbit/s upstream profiles)."""


def _check_loop_length(loop_length_m: float) -> float:
    if not (isinstance(loop_length_m, numbers.Real) and math.isfinite(loop_length_m)) or loop_length_m < 0:
        raise LineError(f"loop_length_m must be a finite number >= 0, got {loop_length_m!r}")
    return float(loop_length_m)


def loop_attenuation_db(loop_length_m: float) -> float:
    """Loop attenuation (dB, at 300 kHz as reported by French eligibility tests) of a copper loop.

    Piecewise-linear interpolation of the docs/facts.md rate-reach table (mixed 0.4/0.6 mm), through
    (0 m, 0 dB) below the first row and extrapolated at :data:`ATTENUATION_EXTRAPOLATION_DB_PER_M`
    beyond the last (ASSUMPTION).

    Raises:
        LineError: negative or non-finite length.
    """
    length = _check_loop_length(loop_length_m)
    if length <= _REACH_LOOP_M[-1]:
        return float(np.interp(length, (0.0, *_REACH_LOOP_M), (0.0, *_REACH_ATTEN_DB)))
    return _REACH_ATTEN_DB[-1] + (length - _REACH_LOOP_M[-1]) * ATTENUATION_EXTRAPOLATION_DB_PER_M


def _extrapolated_rate(length: float, rates: tuple[float, ...]) -> float:
    if length <= _REACH_LOOP_M[0]:
        return rates[0]
    if length <= _REACH_LOOP_M[-1]:
        return float(np.interp(length, _REACH_LOOP_M, rates))
    slope = (rates[-1] - rates[-2]) / (_REACH_LOOP_M[-1] - _REACH_LOOP_M[-2])
    return max(0.0, rates[-1] + slope * (length - _REACH_LOOP_M[-1]))


def _upstream_rate(attenuation_db: float) -> float:
    if attenuation_db <= UP_KNEE_DB:
        return UP_MAX_KBPS
    frac = (attenuation_db - UP_KNEE_DB) / (ELIGIBILITY_LIMIT_DB - UP_KNEE_DB)
    return UP_MAX_KBPS + frac * (UP_AT_LIMIT_KBPS - UP_MAX_KBPS)


def attainable_sync_rate_kbps(loop_length_m: float, family: LineFamily | str) -> tuple[float, float]:
    """Attainable (downstream, upstream) sync rates in kbit/s on a loop of ``loop_length_m``.

    * Downstream, ADSL and ADSL2+: linear interpolation in loop length of the docs/facts.md rate-reach
      table (flat below 170 m; beyond 5,755 m the last segment's slope is extrapolated - ASSUMPTION).
    * Upstream, ADSL and ADSL2+: :data:`UP_MAX_KBPS` up to :data:`UP_KNEE_DB` of loop attenuation, then
      linear in dB down to :data:`UP_AT_LIMIT_KBPS` at the eligibility limit - ASSUMPTION.
    * READSL: (:data:`READSL_DOWN_KBPS`, :data:`READSL_UP_KBPS`) up to :data:`READSL_MAX_LOOP_M`.

    Raises:
        LineError: loop beyond reach (attenuation > :data:`ELIGIBILITY_LIMIT_DB` for ADSL/ADSL2+,
        length > :data:`READSL_MAX_LOOP_M` for READSL), naming length and family; negative length;
        unknown family.
    """
    length = _check_loop_length(loop_length_m)
    try:
        fam = LineFamily(family)
    except ValueError:
        known = ", ".join(f.value for f in LineFamily)
        raise LineError(f"unknown line family {family!r}; known: {known}") from None
    if fam is LineFamily.READSL:
        if length > READSL_MAX_LOOP_M:
            raise LineError(
                f"loop of {length:.0f} m is beyond READSL reach ({READSL_MAX_LOOP_M:.0f} m): "
                f"family {fam.value} cannot sync"
            )
        return READSL_DOWN_KBPS, READSL_UP_KBPS
    attenuation = loop_attenuation_db(length)
    if attenuation > ELIGIBILITY_LIMIT_DB:
        raise LineError(
            f"loop of {length:.0f} m ({attenuation:.1f} dB) is beyond the {ELIGIBILITY_LIMIT_DB:.0f} dB "
            f"eligibility limit of family {fam.value}; READSL reaches {READSL_MAX_LOOP_M:.0f} m"
        )
    table = _REACH_ADSL2PLUS_DOWN_KBPS if fam is LineFamily.ADSL2PLUS else _REACH_ADSL_DOWN_KBPS
    return _extrapolated_rate(length, table), _upstream_rate(attenuation)


# --------------------------------------------------------------------------------------------------
# Offers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineOffer:
    """A commercial ADSL offer: rate caps (sync-rate profile) and approximate monthly cost.

    Attributes:
        name: key in :data:`OFFERS`, e.g. ``"adsl-512-128"``.
        family: technology (:class:`LineFamily`).
        down_kbps: downstream cap, kbit/s (profile sync rate, ATM level).
        up_kbps: upstream cap, kbit/s (profile sync rate, ATM level).
        monthly_cost_eur: approximate monthly price, EUR incl. VAT. ASSUMPTION for every built-in
            offer: order of magnitude of 2005-2008 French retail prices, not taken from a tariff.
        description: where the offer comes from.
    """

    name: str
    family: LineFamily
    down_kbps: float
    up_kbps: float
    monthly_cost_eur: float
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", LineFamily(self.family))
        for name in ("down_kbps", "up_kbps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise LineError(f"offer {self.name!r}: {name} must be > 0, got {value!r}")
        if not (math.isfinite(self.monthly_cost_eur) and self.monthly_cost_eur >= 0):
            raise LineError(f"offer {self.name!r}: monthly_cost_eur must be >= 0, got {self.monthly_cost_eur!r}")


OFFERS: dict[str, LineOffer] = {
    o.name: o
    for o in (
        LineOffer(
            "adsl-128-64", LineFamily.ADSL, 128.0, 64.0, 15.0,
            "Entry 128k offer (docs/facts.md: '128k'); 64 kbit/s up is an ASSUMPTION (usual profile then).",
        ),
        LineOffer("adsl-512-128", LineFamily.ADSL, 512.0, 128.0, 20.0, "512k/128k (docs/facts.md)."),
        LineOffer("adsl-1024-256", LineFamily.ADSL, 1024.0, 256.0, 25.0, "1M/256k (docs/facts.md)."),
        LineOffer("adsl-2048-256", LineFamily.ADSL, 2048.0, 256.0, 30.0, "2M/256k retail (docs/facts.md)."),
        LineOffer(
            "adsl-2048-128", LineFamily.ADSL, 2048.0, 128.0, 30.0,
            "2M wholesale profile 2048/128 (docs/facts.md).",
        ),
        LineOffer(
            "adsl-max", LineFamily.ADSL, 8000.0, 800.0, 35.0,
            "'ADSL Max' rate-adaptive 2-8M (docs/facts.md); the 800 kbit/s up cap is an ASSUMPTION.",
        ),
        LineOffer(
            "readsl-512-128", LineFamily.READSL, 512.0, 128.0, 30.0,
            "READSL from May 2005, 5.5-8 km, 512/128 (docs/facts.md).",
        ),
        LineOffer(
            "adsl2plus", LineFamily.ADSL2PLUS, 20000.0, 1000.0, 30.0,
            "ADSL2+ up to ~20M down / ~1M up (docs/facts.md).",
        ),
    )
}
"""French ADSL offers 2004-2008 (docs/facts.md, "ADSL line"). Monthly costs are ASSUMPTIONS (see
:class:`LineOffer`)."""


def get_offer(name: str) -> LineOffer:
    """The built-in offer called ``name``.

    Raises:
        LineError: unknown name, listing the known ones.
    """
    try:
        return OFFERS[name]
    except KeyError:
        raise LineError(f"unknown line offer {name!r}; known offers: {', '.join(OFFERS)}") from None


# --------------------------------------------------------------------------------------------------
# A provisioned line
# --------------------------------------------------------------------------------------------------


class Direction(str, Enum):
    """Direction on an access line. ``UP``: from the site (kiosk or agent) to the network - for a kiosk
    this carries the citizen's video and is the bottleneck. ``DOWN``: network to the site."""

    UP = "up"
    DOWN = "down"


DEFAULT_INTERLEAVING_DELAY_MS = 16.0
"""One-way interleaving delay per direction with the fast path off (docs/facts.md: about 10-20 ms one way;
depth 64 about 25 ms RTT). Default of the 10-20 ms range chosen mid-high."""

FAST_PATH_DELAY_MS = 1.0
"""One-way framing delay on a fast-path (non-interleaved) line. ASSUMPTION (a few hundred
microseconds of DMT framing plus Reed-Solomon, rounded up)."""

DEFAULT_PROPAGATION_DELAY_MS = 5.0
"""One-way backhaul + core delay from the exchange (DSLAM) through the BAS to the peer's network.
ASSUMPTION: a few hundred km of fibre (Auvergne to a regional/national BAS) is ~2-3 ms, plus
switching."""

DEFAULT_UP_BUFFER_BYTES = 120_000
"""Modem upstream buffer (docs/facts.md: ~120 KB on average, up to ~365 KB)."""

DEFAULT_DOWN_BUFFER_BYTES = 64_000
"""DSLAM/BAS per-subscriber downstream buffer. ASSUMPTION (no measurement at hand; 64 KB is 1 s at
512 kbit/s, 64 ms at 8 Mbit/s)."""

DEFAULT_MTBF_H = 2190.0
"""Mean time between line outages, hours (about four per year). ASSUMPTION."""

DEFAULT_MTTR_H = 8.0
"""Mean time to restore a line, hours. ASSUMPTION (business lines had 4 h restore guarantees,
residential lines often took days; 8 h is a middle value)."""


class Link:
    """What every line a call crosses offers, per direction, as the shared-link rule divides it: the base
    of :class:`AdslLine` (a site's access line) and :class:`Backhaul` (an exchange's link to the network).

    A subclass is a frozen dataclass with the fields ``encapsulation``, ``up_buffer_bytes``,
    ``down_buffer_bytes``, ``loss_pct``, ``mtbf_h``, ``mttr_h`` and ``share``, the properties
    ``sync_rate_up_kbps`` and ``sync_rate_down_kbps`` (already divided by ``share``) and
    :meth:`fixed_delay_ms`. The quality model, the relay's queues (:meth:`LinkQueue.from_line`) and the
    SimPy model's outages ask a line only what this class names.
    """

    share: int
    encapsulation: Encapsulation
    up_buffer_bytes: int
    down_buffer_bytes: int
    loss_pct: float
    mtbf_h: float
    mttr_h: float

    @property
    def sync_rate_up_kbps(self) -> float:
        """Upstream rate, kbit/s of ATM wire, divided by ``share``."""
        raise NotImplementedError

    @property
    def sync_rate_down_kbps(self) -> float:
        """Downstream rate, kbit/s of ATM wire, divided by ``share``."""
        raise NotImplementedError

    def fixed_delay_ms(self, direction: Direction | str) -> float:
        """Size-independent one-way delay in ``direction``, ms."""
        raise NotImplementedError

    def _check_numbers(self, names: tuple[str, ...]) -> None:
        """``share`` an integer >= 1, every field of ``names`` a finite number >= 0, loss at most 100 %,
        buffers and MTBF above 0 (LineError naming the field and the value)."""
        if isinstance(self.share, bool) or not isinstance(self.share, int) or self.share < 1:
            raise LineError(f"line field share must be an integer >= 1, got {self.share!r}")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise LineError(f"line field {name} must be a finite number >= 0, got {value!r}")
        if self.loss_pct > 100:
            raise LineError(f"line field loss_pct must be <= 100, got {self.loss_pct!r}")
        for name in ("up_buffer_bytes", "down_buffer_bytes", "mtbf_h"):
            if getattr(self, name) == 0:
                raise LineError(f"line field {name} must be > 0, got 0")

    def shared_by(self, calls: int) -> Self:
        """The line as each of ``calls`` concurrent calls sees it: the twin's shared-link rule.

        A FIFO line (an access line, a shared office line, an exchange's backhaul) carrying ``n`` similar calls is taken as ``n`` dedicated lines of ``1/n`` of its rate
        and ``1/n`` of its buffer each: every call gets an equal share of the capacity (the processor-
        sharing approximation of a FIFO with statistically identical flows) and the queueing delay of a
        full buffer stays the shared line's. Checked against emulated concurrent calls on one shared
        line (tests/test_shared_links.py, README "Shared lines").
        """
        if calls == self.share:
            return self
        return replace(self, share=calls)

    def sync_rate_kbps(self, direction: Direction | str) -> float:
        """Sync rate (a backhaul: its rate) in ``direction``, kbit/s of ATM wire."""
        return self.sync_rate_up_kbps if Direction(direction) is Direction.UP else self.sync_rate_down_kbps

    def buffer_bytes(self, direction: Direction | str) -> int:
        """Buffer in front of the line in ``direction`` (an access line: modem upstream / network
        downstream), divided by ``share``."""
        whole = self.up_buffer_bytes if Direction(direction) is Direction.UP else self.down_buffer_bytes
        return max(1, int(whole) // self.share)

    def ip_capacity_kbps(self, direction: Direction | str, ip_bytes: int) -> float:
        """IP throughput (kbit/s) in ``direction`` for a stream of ``ip_bytes`` packets."""
        return ip_capacity_kbps(self.sync_rate_kbps(direction), ip_bytes, self.encapsulation)

    def serialization_time_s(self, direction: Direction | str, ip_bytes: int) -> float:
        """Seconds to serialize one ``ip_bytes`` packet in ``direction``."""
        return serialization_time_s(ip_bytes, self.sync_rate_kbps(direction), self.encapsulation)

    def one_way_delay_ms(self, direction: Direction | str, ip_bytes: int, queue_bytes: float = 0) -> float:
        """One-way delay (ms) of a packet of ``ip_bytes`` arriving behind ``queue_bytes`` of ATM wire
        bytes already queued: queue drain + own serialization + :meth:`fixed_delay_ms`."""
        if queue_bytes < 0:
            raise ValueError(f"queue_bytes must be >= 0, got {queue_bytes!r}")
        rate_bps = self.sync_rate_kbps(direction) * 1000.0
        queue_ms = queue_bytes * 8.0 / rate_bps * 1000.0
        return queue_ms + self.serialization_time_s(direction, ip_bytes) * 1000.0 + self.fixed_delay_ms(direction)

    def with_(self, **changes: object) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AdslLine(Link):
    """An ADSL access line as provisioned at a site; owns sync rate, cell tax, delays, buffers, loss
    and outage statistics.

    Attributes:
        offer: the commercial offer (rate caps); a name from :data:`OFFERS` is accepted.
        loop_length_m: copper loop length from the exchange, metres.
        encapsulation: IP-over-ATM encapsulation (default PPPoE LLC, the most common in France).
        interleaved: interleaving on (fast path off), the default on long French lines.
        interleaving_delay_ms: one-way interleaving delay per direction when ``interleaved``
            (:data:`DEFAULT_INTERLEAVING_DELAY_MS`).
        propagation_delay_ms: one-way backhaul + core delay (:data:`DEFAULT_PROPAGATION_DELAY_MS`).
        up_buffer_bytes: modem upstream buffer, bytes of ATM wire (:data:`DEFAULT_UP_BUFFER_BYTES`).
        down_buffer_bytes: network-side downstream buffer, bytes (:data:`DEFAULT_DOWN_BUFFER_BYTES`).
        loss_pct: random packet loss on the line, % (independent per packet), default 0.
        mtbf_h: mean time between outages, hours (:data:`DEFAULT_MTBF_H`, ASSUMPTION).
        mttr_h: mean outage duration, hours (:data:`DEFAULT_MTTR_H`, ASSUMPTION).
        share: calls sharing the line at once, as one call sees it (the twin's shared-link rule, see
            :meth:`shared_by`): the sync rates and buffers are those of the line divided by ``share``.

    Raises:
        LineError (at construction): a negative or non-finite value (naming field and value), loss
        above 100 %, a zero buffer or MTBF, a share that is not an integer >= 1, or a loop the family
        cannot sync.
    """

    offer: LineOffer
    loop_length_m: float
    encapsulation: Encapsulation = Encapsulation.PPPOE_LLC
    interleaved: bool = True
    interleaving_delay_ms: float = DEFAULT_INTERLEAVING_DELAY_MS
    propagation_delay_ms: float = DEFAULT_PROPAGATION_DELAY_MS
    up_buffer_bytes: int = DEFAULT_UP_BUFFER_BYTES
    down_buffer_bytes: int = DEFAULT_DOWN_BUFFER_BYTES
    loss_pct: float = 0.0
    mtbf_h: float = DEFAULT_MTBF_H
    mttr_h: float = DEFAULT_MTTR_H
    share: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.offer, str):
            object.__setattr__(self, "offer", get_offer(self.offer))
        if not isinstance(self.offer, LineOffer):
            raise LineError(f"offer must be a LineOffer, got {self.offer!r}")
        object.__setattr__(self, "encapsulation", _encapsulation(self.encapsulation))
        self._check_numbers(("loop_length_m", "interleaving_delay_ms", "propagation_delay_ms", "up_buffer_bytes",
                             "down_buffer_bytes", "loss_pct", "mtbf_h", "mttr_h"))
        attainable_sync_rate_kbps(self.loop_length_m, self.offer.family)  # raises when out of reach

    @property
    def attainable_kbps(self) -> tuple[float, float]:
        """(down, up) attainable sync rates at this loop length, kbit/s."""
        return attainable_sync_rate_kbps(self.loop_length_m, self.offer.family)

    @property
    def sync_rate_down_kbps(self) -> float:
        """Downstream sync rate: min(offer cap, attainable), kbit/s of ATM wire (divided by ``share``)."""
        return min(self.offer.down_kbps, self.attainable_kbps[0]) / self.share

    @property
    def sync_rate_up_kbps(self) -> float:
        """Upstream sync rate: min(offer cap, attainable), kbit/s of ATM wire (divided by ``share``)."""
        return min(self.offer.up_kbps, self.attainable_kbps[1]) / self.share

    def fixed_delay_ms(self, direction: Direction | str) -> float:
        """Size-independent one-way delay in ``direction``: interleaving (or fast-path framing) +
        propagation, ms. Both directions are symmetric in this model."""
        Direction(direction)
        framing = self.interleaving_delay_ms if self.interleaved else FAST_PATH_DELAY_MS
        return framing + self.propagation_delay_ms


DEFAULT_BACKHAUL_BUFFER_BYTES = 64_000
"""Buffer in front of an exchange's backhaul, each direction, bytes of ATM wire. ASSUMPTION (no
measurement at hand; the same order as :data:`DEFAULT_DOWN_BUFFER_BYTES`: 256 ms at 2 Mbit/s)."""

DEFAULT_BACKHAUL_MTBF_H = 8766.0
"""Mean time between backhaul outages, hours (one a year). ASSUMPTION (a trunk is better kept than a
subscriber's copper pair, :data:`DEFAULT_MTBF_H`)."""

DEFAULT_BACKHAUL_MTTR_H = 4.0
"""Mean time to restore a backhaul, hours. ASSUMPTION (the 4 h guarantee of business lines)."""


@dataclass(frozen=True)
class Backhaul(Link):
    """An exchange's backhaul: the link from the exchange's DSLAM to the network (the BAS), crossed by
    every call of the access lines behind that exchange after their own line (upstream: the kiosk's
    uplink, then this link's upstream; downstream: this link's downstream, then the kiosk's downlink).

    It carries the subscribers' ATM cells as they are (the DSLAMs of 2005-2008 in France had ATM
    uplinks), so a packet costs the same cells as on the access line; its rate counts ATM wire, as a
    sync rate does. Its propagation is already in each access line's ``propagation_delay_ms``
    (:data:`DEFAULT_PROPAGATION_DELAY_MS`: exchange to BAS and core), so ``delay_ms`` is only what the
    backhaul adds beyond that (default 0).

    Attributes:
        rate_up_kbps, rate_down_kbps: the backhaul's rate towards the network and towards the exchange,
            kbit/s of ATM wire (> 0).
        delay_ms: one-way delay the backhaul adds, ms, both directions (>= 0).
        up_buffer_bytes, down_buffer_bytes: buffer in front of each direction, bytes of ATM wire
            (:data:`DEFAULT_BACKHAUL_BUFFER_BYTES`).
        encapsulation: the encapsulation of the cells it carries (the access lines', default PPPoE LLC).
        loss_pct: random packet loss, % (independent per packet), default 0.
        mtbf_h, mttr_h: mean time between outages and to restore, hours
            (:data:`DEFAULT_BACKHAUL_MTBF_H`, :data:`DEFAULT_BACKHAUL_MTTR_H`, ASSUMPTIONS).
        share: calls sharing it at once, as one call sees it (:meth:`Link.shared_by`).

    Raises:
        LineError (at construction): as :class:`AdslLine`, and a rate that is not a finite number > 0.
    """

    rate_up_kbps: float
    rate_down_kbps: float
    delay_ms: float = 0.0
    up_buffer_bytes: int = DEFAULT_BACKHAUL_BUFFER_BYTES
    down_buffer_bytes: int = DEFAULT_BACKHAUL_BUFFER_BYTES
    encapsulation: Encapsulation = Encapsulation.PPPOE_LLC
    loss_pct: float = 0.0
    mtbf_h: float = DEFAULT_BACKHAUL_MTBF_H
    mttr_h: float = DEFAULT_BACKHAUL_MTTR_H
    share: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "encapsulation", _encapsulation(self.encapsulation))
        self._check_numbers(("rate_up_kbps", "rate_down_kbps", "delay_ms", "up_buffer_bytes", "down_buffer_bytes",
                             "loss_pct", "mtbf_h", "mttr_h"))
        for name in ("rate_up_kbps", "rate_down_kbps"):
            if getattr(self, name) == 0:
                raise LineError(f"line field {name} must be > 0, got 0")

    @property
    def sync_rate_up_kbps(self) -> float:
        """Upstream rate, kbit/s of ATM wire (divided by ``share``)."""
        return self.rate_up_kbps / self.share

    @property
    def sync_rate_down_kbps(self) -> float:
        """Downstream rate, kbit/s of ATM wire (divided by ``share``)."""
        return self.rate_down_kbps / self.share

    def fixed_delay_ms(self, direction: Direction | str) -> float:
        """``delay_ms`` in either direction."""
        Direction(direction)
        return float(self.delay_ms)


# --------------------------------------------------------------------------------------------------
# Loss models
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class LossModel(Protocol):
    """Per-packet random loss. ``lost(rng)`` is called once per packet crossing the line, in order;
    stateful models advance their state on each call."""

    def lost(self, rng: np.random.Generator) -> bool:
        """Whether the next packet is lost, drawing from ``rng`` (stateful models advance their state)."""
        ...


def _check_probability(name: str, value: float) -> float:
    if not (isinstance(value, numbers.Real) and 0.0 <= value <= 1.0):
        raise LineError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


@dataclass
class BernoulliLoss:
    """Independent loss with probability ``loss_pct / 100`` per packet."""

    loss_pct: float

    def __post_init__(self) -> None:
        if not (isinstance(self.loss_pct, numbers.Real) and 0.0 <= self.loss_pct <= 100.0):
            raise LineError(f"loss_pct must be in [0, 100], got {self.loss_pct!r}")
        self._p = self.loss_pct / 100.0

    def lost(self, rng: np.random.Generator) -> bool:
        """Whether the next packet is lost: one uniform draw against ``p``."""
        return bool(self._p > 0.0 and rng.random() < self._p)

    @property
    def mean_loss_pct(self) -> float:
        return float(self.loss_pct)


@dataclass
class GilbertElliottLoss:
    """Two-state Markov (Gilbert-Elliott) bursty loss: E. N. Gilbert, "Capacity of a burst-noise
    channel", Bell Syst. Tech. J. 39, 1960; E. O. Elliott, "Estimates of error rates for codes on
    burst-noise channels", BSTJ 42, 1963.

    Per packet the state first moves (good -> bad with ``p_good_to_bad``, bad -> good with
    ``p_bad_to_good``), then the packet is lost with ``loss_in_bad`` or ``loss_in_good``. The chain
    starts in the good state. Stationary: ``pi_bad = p / (p + r)``; mean loss
    ``pi_bad * loss_in_bad + (1 - pi_bad) * loss_in_good``; with ``loss_in_bad = 1`` and
    ``loss_in_good = 0`` (the "simple Gilbert" model) loss bursts are geometric with mean ``1 / r``.
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_in_bad: float = 1.0
    loss_in_good: float = 0.0
    bad: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("p_good_to_bad", "p_bad_to_good", "loss_in_bad", "loss_in_good"):
            _check_probability(name, getattr(self, name))
        if self.p_bad_to_good == 0.0 and self.p_good_to_bad > 0.0:
            raise LineError("p_bad_to_good must be > 0 (otherwise the bad state absorbs)")

    @classmethod
    def from_mean_loss(cls, loss_pct: float, mean_burst_packets: float) -> GilbertElliottLoss:
        """Simple Gilbert model (loss 1 in bad, 0 in good) with the given mean loss (%) and mean
        loss-burst length (packets, >= 1): ``r = 1 / burst``, ``p = r * pi / (1 - pi)``.

        Raises:
            LineError: loss outside [0, 100), burst < 1, or a combination needing p > 1.
        """
        if not (isinstance(loss_pct, numbers.Real) and 0.0 <= loss_pct < 100.0):
            raise LineError(f"loss_pct must be in [0, 100), got {loss_pct!r}")
        if not (isinstance(mean_burst_packets, numbers.Real) and mean_burst_packets >= 1.0):
            raise LineError(f"mean_burst_packets must be >= 1, got {mean_burst_packets!r}")
        pi = loss_pct / 100.0
        r = 1.0 / mean_burst_packets
        p = r * pi / (1.0 - pi)
        if p > 1.0:
            raise LineError(
                f"loss {loss_pct}% with mean burst {mean_burst_packets} packets needs p_good_to_bad={p:.3f} > 1"
            )
        return cls(p_good_to_bad=p, p_bad_to_good=r)

    @classmethod
    def from_netem(cls, p_pct: float, r_pct: float | None = None, one_minus_h_pct: float = 100.0,
                   one_minus_k_pct: float = 0.0) -> GilbertElliottLoss:
        """tc-netem's ``loss gemodel p [r [1-h [1-k]]]``, percentages as netem takes them: ``p`` good ->
        bad, ``r`` bad -> good (netem's default ``100 - p``), ``1-h`` loss in the bad state (default
        100), ``1-k`` loss in the good state (default 0) (tc-netem(8); Linux ``sch_netem.c``
        ``loss_gilb_ell``). Stationary loss ``pi_B (1-h) + (1 - pi_B)(1-k)`` with ``pi_B = p / (p + r)``;
        with ``1-h = 100`` and ``1-k = 0`` loss bursts are geometric with mean ``1 / r`` packets.

        netem draws a packet's loss in the state it was in before the move, this model in the state
        after it: the same chain shifted by one packet, so the same stationary loss and burst lengths.

        Raises:
            LineError: a value outside [0, 100], or ``r = 0`` with ``p > 0`` (an absorbing bad state).
        """
        r_pct = 100.0 - p_pct if r_pct is None else r_pct
        values = {"p": p_pct, "r": r_pct, "1-h": one_minus_h_pct, "1-k": one_minus_k_pct}
        for name, value in values.items():
            if not (isinstance(value, numbers.Real) and 0.0 <= value <= 100.0):
                raise LineError(f"gemodel {name} must be a percentage in [0, 100], got {value!r}")
        if r_pct == 0.0 and p_pct > 0.0:
            raise LineError("gemodel r must be > 0 when p > 0 (otherwise the bad state absorbs)")
        return cls(p_good_to_bad=p_pct / 100.0, p_bad_to_good=r_pct / 100.0, loss_in_bad=one_minus_h_pct / 100.0,
                   loss_in_good=one_minus_k_pct / 100.0)

    @property
    def stationary_bad(self) -> float:
        """Stationary probability of the bad state."""
        total = self.p_good_to_bad + self.p_bad_to_good
        return 0.0 if total == 0 else self.p_good_to_bad / total

    @property
    def mean_loss_pct(self) -> float:
        """Long-run loss, %."""
        pb = self.stationary_bad
        return 100.0 * (pb * self.loss_in_bad + (1.0 - pb) * self.loss_in_good)

    @property
    def mean_burst_packets(self) -> float:
        """Mean sojourn in the bad state, packets (= mean loss burst when loss_in_bad=1, loss_in_good=0)."""
        return math.inf if self.p_bad_to_good == 0 else 1.0 / self.p_bad_to_good

    def lost(self, rng: np.random.Generator) -> bool:
        """Whether the next packet is lost: one draw moves the state (good -> bad with ``p_good_to_bad``,
        bad -> good with ``p_bad_to_good``), then the packet is lost with the new state's loss
        probability (a second draw only when it is strictly between 0 and 1)."""
        u = rng.random()
        if self.bad:
            if u < self.p_bad_to_good:
                self.bad = False
        elif u < self.p_good_to_bad:
            self.bad = True
        h = self.loss_in_bad if self.bad else self.loss_in_good
        if h >= 1.0:
            return True
        if h <= 0.0:
            return False
        return bool(rng.random() < h)


# --------------------------------------------------------------------------------------------------
# Capacity traces (mahimahi)
# --------------------------------------------------------------------------------------------------

MAHIMAHI_OPPORTUNITY_BYTES = 1504
"""Bytes per delivery opportunity of a mahimahi trace: ``PACKET_SIZE = 1504`` ("default max TUN payload
size") in mahimahi's ``src/frontend/link_queue.hh``; each line of a trace is one such opportunity."""


#: Longest capacity trace period accepted, ms (one day; mahimahi's recorded traces last minutes).
#: mahimahi itself accepts any value up to 2^63 - 1; a longer period here is refused as a typo.
MAX_TRACE_MS = 86_400_000

_STRTOL_SPACE = " \t\n\v\f\r"
"""What C's ``strtol`` skips before a number (``isspace`` in the C locale)."""


def _mahimahi_integer(raw: bytes) -> int | None:
    """mahimahi's ``myatoi`` (``src/util/ezio.cc``): ``strtol(line, &end, 10)`` that must consume the
    whole line. Leading white space and one sign are accepted, anything after the digits (a trailing
    space, a ``\\r`` of a CRLF file, ``.5``, ``e3``) is not. None when mahimahi would throw."""
    text = raw.decode("latin-1").lstrip(_STRTOL_SPACE)
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    return int(text)


class CapacityTrace:
    """A mahimahi link trace: delivery opportunities of :data:`MAHIMAHI_OPPORTUNITY_BYTES` bytes at
    integer-millisecond times, repeating with period = last timestamp (mahimahi's ``LinkQueue`` with
    ``repeat``, its default).

    Args:
        opportunities_ms: non-decreasing integers >= 0, last one > 0 (the period). A repeated time
            means several opportunities in that millisecond. One entry ``[1]`` is 12.032 Mbit/s.
        name: label (file name) for messages.

    Opportunity ``k`` (k >= 0) happens at ``period * (k // n) + opportunities_ms[k % n]`` ms after the
    trace origin (mahimahi's ``base_timestamp_ += schedule_.back()`` at each wrap).

    Raises:
        TwinInputError: empty, negative, decreasing, or zero period.
    """

    def __init__(self, opportunities_ms: list[int] | np.ndarray, name: str = "<trace>") -> None:
        ts = np.asarray(opportunities_ms, dtype=np.int64)
        if ts.ndim != 1 or ts.size == 0:
            raise TwinInputError("no valid timestamps found (mahimahi refuses an empty trace)", path=name)
        if ts[0] < 0 or np.any(np.diff(ts) < 0):
            raise TwinInputError("capacity trace times must be non-negative and non-decreasing", path=name)
        if ts[-1] <= 0:
            raise TwinInputError("trace must last for a nonzero amount of time (its last timestamp is 0)",
                                 path=name)
        self.name = name
        self._ts_ms = ts
        self.period_ms = int(ts[-1])

    @classmethod
    def parse(cls, text: str | bytes, name: str = "<trace>") -> CapacityTrace:
        """Parse a mahimahi trace file's content, accepting and refusing what mahimahi's own parser does
        (``LinkQueue::LinkQueue`` in ``src/frontend/link_queue.cc``, ``myatoi`` in ``src/util/ezio.cc``):

        * lines are split on ``\\n`` only (C++ ``getline``); a final newline ends the last line;
        * an empty line anywhere is an error ("invalid empty line"), a blank line too (``strtol``
          finds no digit);
        * each line is a base-10 integer that fills the line: leading white space and a ``+`` are
          accepted (``" 5"``, ``"+5"``, ``"007"`` = 7), trailing characters are not (``"5 "``,
          ``"5\\r"`` of a CRLF file, ``"5.0"``, ``"0x10"``);
        * timestamps must be non-decreasing; the first may be 0; the last (the period) must be > 0;
        * a file without any line: "no valid timestamps found".

        Where this reader is stricter than mahimahi, it says so: a negative number (mahimahi stores it
        in a ``uint64_t`` and reads ``-5`` as 18446744073709551611) and a timestamp beyond
        :data:`MAX_TRACE_MS` are refused.

        Raises:
            TwinInputError: naming the trace, the line number and the value.
        """
        data = text.encode("latin-1", "replace") if isinstance(text, str) else bytes(text)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # getline: a final newline ends the last line, it does not start a new one
        values: list[int] = []
        for lineno, raw in enumerate(lines, start=1):
            if raw == b"":
                raise TwinInputError(f"line {lineno}: invalid empty line (mahimahi refuses it)", path=name)
            shown = raw.decode("latin-1")
            v = _mahimahi_integer(raw)
            if v is None:
                raise TwinInputError(
                    f"line {lineno}: invalid integer {shown!r}: a mahimahi trace line is one base-10 "
                    "millisecond timestamp filling the line (no trailing space, no \\r, no decimals)",
                    path=name)
            if v < 0:
                raise TwinInputError(
                    f"line {lineno}: negative timestamp {v} (mahimahi would read it as {v % 2**64} ms)", path=name)
            if values and v < values[-1]:
                raise TwinInputError(
                    f"line {lineno}: timestamp {v} is earlier than the previous one ({values[-1]}): "
                    "timestamps must be monotonically nondecreasing", path=name)
            if v > MAX_TRACE_MS:
                raise TwinInputError(
                    f"line {lineno}: timestamp {v} ms is beyond {MAX_TRACE_MS:,} ms (a trace of over a day)",
                    path=name)
            values.append(v)
        if values and values[-1] == 0:
            raise TwinInputError(f"line {len(lines)}: trace must last for a nonzero amount of time "
                                 "(its last timestamp is 0)", path=name)
        return cls(values, name=name)

    def __len__(self) -> int:
        return int(self._ts_ms.size)

    @property
    def opportunities_per_period(self) -> int:
        return int(self._ts_ms.size)

    @property
    def mean_rate_kbps(self) -> float:
        """Mean capacity, kbit/s: ``n * 1504 * 8 / period_ms``."""
        return self._ts_ms.size * MAHIMAHI_OPPORTUNITY_BYTES * 8.0 / self.period_ms

    def opportunity_time_ms(self, k: int) -> int:
        """Time (ms after origin) of opportunity ``k``."""
        n = self._ts_ms.size
        return self.period_ms * (k // n) + int(self._ts_ms[k % n])

    def first_opportunity_after(self, t_ms: int) -> int:
        """Index of the first opportunity at a time strictly after ``t_ms`` (integer ms after origin):
        mahimahi burns every opportunity at or before the current millisecond before it enqueues a
        packet arriving in it (``rationalize(now)`` then ``enqueue``)."""
        n = self._ts_ms.size
        cycle = max(0, int(t_ms) // self.period_ms)
        while True:
            rel = int(t_ms) - cycle * self.period_ms
            i = int(np.searchsorted(self._ts_ms, rel, side="right"))
            if i < n:
                return cycle * n + i
            cycle += 1

    def rate_series_kbps(self, end_s: float, bin_s: float = 1.0) -> list[float]:
        """Capacity per ``bin_s`` bin over ``[0, end_s)``, kbit/s (opportunities x 1504 bytes), for plots."""
        n_bins = max(0, int(math.ceil(end_s / bin_s - 1e-9)))
        out = []
        k = 0
        for b in range(n_bins):
            hi_ms = (b + 1) * bin_s * 1000.0
            count = 0
            while self.opportunity_time_ms(k) < hi_ms:
                count += 1
                k += 1
            out.append(count * MAHIMAHI_OPPORTUNITY_BYTES * 8.0 / bin_s / 1000.0)
        return out


# --------------------------------------------------------------------------------------------------
# Outages
# --------------------------------------------------------------------------------------------------


class OutageSchedule:
    """Intervals during which the line is down: ``[start_s, end_s)`` (down at start, up again at end).

    Args:
        intervals: (start_s, end_s) pairs with start < end; sorted and merged if overlapping.

    Raises:
        LineError: an interval with end <= start or non-finite bounds.
    """

    def __init__(self, intervals: list[tuple[float, float]] | tuple[tuple[float, float], ...] = ()) -> None:
        cleaned: list[tuple[float, float]] = []
        for pair in intervals:
            start, end = float(pair[0]), float(pair[1])
            if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
                raise LineError(f"outage interval ({pair[0]!r}, {pair[1]!r}) must have finite start < end")
            cleaned.append((start, end))
        cleaned.sort()
        merged: list[tuple[float, float]] = []
        for start, end in cleaned:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.intervals: tuple[tuple[float, float], ...] = tuple(merged)
        self._starts = [s for s, _ in merged]

    @classmethod
    def from_intervals(cls, intervals: list[tuple[float, float]]) -> OutageSchedule:
        """Same as the constructor (explicit alternative constructor)."""
        return cls(intervals)

    @classmethod
    def from_mtbf(
        cls, mtbf_h: float, mttr_h: float, horizon_s: float, rng: np.random.Generator, start_s: float = 0.0
    ) -> OutageSchedule:
        """Alternating renewal process on ``[start_s, start_s + horizon_s)``: the line starts up; up
        times ~ Exponential(mean ``mtbf_h``), down times ~ Exponential(mean ``mttr_h``), all
        independent (the classical two-state availability model; long-run availability
        MTBF / (MTBF + MTTR)). The last outage may run past the horizon.

        Raises:
            LineError: mtbf_h <= 0, mttr_h < 0 or horizon_s < 0.
        """
        if not mtbf_h > 0 or not mttr_h >= 0 or not horizon_s >= 0:
            raise LineError(
                f"from_mtbf needs mtbf_h > 0, mttr_h >= 0, horizon_s >= 0; got {mtbf_h!r}, {mttr_h!r}, {horizon_s!r}"
            )
        intervals: list[tuple[float, float]] = []
        t = float(start_s)
        end = t + float(horizon_s)
        while True:
            t += rng.exponential(mtbf_h * 3600.0)
            if t >= end:
                break
            down = rng.exponential(mttr_h * 3600.0) if mttr_h > 0 else 0.0
            if down > 0:
                intervals.append((t, t + down))
            t += down
        return cls(intervals)

    def is_up(self, t_s: float) -> bool:
        """True when the line is up at ``t_s``."""
        i = bisect.bisect_right(self._starts, t_s) - 1
        return not (i >= 0 and t_s < self.intervals[i][1])

    def next_down_s(self, t_s: float) -> float:
        """Start of the first outage strictly after ``t_s`` (inf if none)."""
        i = bisect.bisect_right(self._starts, t_s)
        return self._starts[i] if i < len(self._starts) else math.inf

    def overlaps(self, t0_s: float, t1_s: float) -> bool:
        """True when any outage intersects ``[t0_s, t1_s]``."""
        if not self.is_up(t0_s):
            return True
        i = bisect.bisect_right(self._starts, t0_s)
        return i < len(self._starts) and self._starts[i] <= t1_s

    def downtime_s(self, t0_s: float, t1_s: float) -> float:
        """Total down time inside ``[t0_s, t1_s]``."""
        return sum(max(0.0, min(e, t1_s) - max(s, t0_s)) for s, e in self.intervals)

    def __len__(self) -> int:
        return len(self.intervals)


# --------------------------------------------------------------------------------------------------
# One direction as a queue
# --------------------------------------------------------------------------------------------------


@dataclass
class LinkStats:
    """Counters of one :class:`LinkQueue`. ``packets_delivered`` / ``bytes_delivered`` count packets
    given a delivery time (they are counted at :meth:`LinkQueue.send`). Byte counters are IP bytes,
    except ``wire_bytes_delivered`` (bytes on the wire: ATM cells, or IP bytes on a plain-IP link).
    ``dropped_buffer`` counts drop-tail drops at a queue limit (bytes, packets or ms), ``dropped_aqm``
    CoDel's drops."""

    packets_in: int = 0
    packets_delivered: int = 0
    dropped_buffer: int = 0
    dropped_loss: int = 0
    dropped_outage: int = 0
    dropped_aqm: int = 0
    bytes_in: int = 0
    bytes_delivered: int = 0
    wire_bytes_delivered: int = 0
    max_backlog_bytes: int = 0
    max_queue_delay_s: float = 0.0

    @property
    def packets_dropped(self) -> int:
        return self.dropped_buffer + self.dropped_loss + self.dropped_outage + self.dropped_aqm

    @property
    def loss_fraction(self) -> float:
        """Dropped / offered packets (0 when nothing was offered)."""
        return self.packets_dropped / self.packets_in if self.packets_in else 0.0


JITTER_DISTRIBUTIONS = ("uniform", "normal", "exponential")
"""Distributions of :class:`Jitter`: netem's default (uniform on ``[-j, +j]``), its ``normal`` table
(``j`` the standard deviation), and a one-sided exponential of mean ``j`` (the earlier model of this file)."""


@dataclass(frozen=True)
class Jitter:
    """Random extra delay per packet, as tc-netem's ``delay D J [distribution X]`` adds to ``D``.

    Attributes:
        jitter_ms: the distribution's scale, ms (> 0): half-width of ``uniform``, standard deviation of
            ``normal``, mean of ``exponential``.
        distribution: one of :data:`JITTER_DISTRIBUTIONS`.
        reorder: True lets a packet overtake an earlier one whose delay drew more (netem's behaviour: its
            time-sorted queue releases packets by due time); False holds each packet until the previous
            one is delivered (netem with a ``pfifo`` child, or ``rate``), so order is kept and jitter
            only adds delay.

    A sample is ``jitter`` in ms with ``uniform``: U(-j, j), ``normal``: N(0, j), ``exponential``: Exp(j);
    a packet's total delay is never below its serialization plus the fixed delay minus nothing: negative
    samples are clamped so that a packet never leaves before it has been clocked out (netem clamps its
    delay at 0 the same way).

    Raises:
        LineError: a non-positive or non-finite ``jitter_ms``, an unknown distribution.
    """

    jitter_ms: float
    distribution: str = "uniform"
    reorder: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.jitter_ms, numbers.Real) and math.isfinite(self.jitter_ms) and self.jitter_ms > 0):
            raise LineError(f"jitter_ms must be a finite number > 0, got {self.jitter_ms!r}")
        if self.distribution not in JITTER_DISTRIBUTIONS:
            raise LineError(f"unknown jitter distribution {self.distribution!r}; known: "
                            f"{', '.join(JITTER_DISTRIBUTIONS)}")

    def sample_s(self, rng: np.random.Generator) -> float:
        """One jitter sample, s (may be negative except for ``exponential``)."""
        j = self.jitter_ms / 1000.0
        if self.distribution == "uniform":
            return float(rng.uniform(-j, j))
        if self.distribution == "normal":
            return float(rng.normal(0.0, j))
        return float(rng.exponential(j))

    def adjacent_reorder_probability(self, gap_ms: float) -> float:
        """Closed form: probability that of two packets sent ``gap_ms`` apart on an idle line the second
        arrives first (reordering allowed). For ``uniform``: the difference of two U(-j, j) is
        triangular on [-2j, 2j], so P = (2j - gap)^2 / (8 j^2) for 0 <= gap <= 2j, 0 beyond. For
        ``normal``: P = Phi(-gap / (j sqrt 2)). For ``exponential``: P = exp(-gap / j) / 2. 0 when
        order is kept."""
        if not self.reorder:
            return 0.0
        j, g = self.jitter_ms, max(0.0, float(gap_ms))
        if self.distribution == "uniform":
            return (2 * j - g) ** 2 / (8 * j * j) if g < 2 * j else 0.0
        if self.distribution == "normal":
            return 0.5 * math.erfc(g / (2 * j))
        return 0.5 * math.exp(-g / j)


AQMS = ("droptail", "codel")
"""Queue disciplines of a :class:`LinkQueue`: drop-tail only, or CoDel (RFC 8289) at dequeue."""

CODEL_TARGET_MS = 5.0
"""CoDel's TARGET (RFC 8289 section 4.4): acceptable standing queue delay, ms."""
CODEL_INTERVAL_MS = 100.0
"""CoDel's INTERVAL (RFC 8289 section 4.5): the window a queue must stay above target, ms."""


class CoDel:
    """CoDel's control law (RFC 8289, pseudocode of section 5), run at each packet's dequeue.

    :meth:`on_dequeue` is called in dequeue order with the dequeue time, the packet's sojourn time and
    the bytes left in the queue; it returns True when the packet is dropped. The RFC's drop loop (a
    ``dequeue()`` that drops several packets at the same instant) is followed packet by packet: a packet
    dequeued at the instant of a drop continues that loop; one that arrived after it finds the loop
    ended with an empty queue (``first_above_time = 0``, dropping stops), as the RFC's ``dodequeue``
    returning NULL does.

    Args:
        target_ms: TARGET, ms (> 0); on slow links (an MTU's serialization above 5 ms) raise it to about
            one MTU time, as RFC 8289 section 4.4 and fq_codel's documentation advise.
        interval_ms: INTERVAL, ms (> target).

    Raises:
        LineError: non-positive target, interval not above target.
    """

    def __init__(self, target_ms: float = CODEL_TARGET_MS, interval_ms: float = CODEL_INTERVAL_MS) -> None:
        if not (math.isfinite(target_ms) and target_ms > 0 and math.isfinite(interval_ms) and interval_ms > target_ms):
            raise LineError(f"CoDel needs 0 < target_ms < interval_ms, got {target_ms!r}, {interval_ms!r}")
        self.target_s = target_ms / 1000.0
        self.interval_s = interval_ms / 1000.0
        self.first_above_time_s = 0.0
        self.drop_next_s = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self.max_packet_bytes = 0
        self._loop: tuple[str, float] | None = None  # ("drop" | "enter", time) of the last dequeue's drop

    def control_law(self, t_s: float, count: int) -> float:
        """Next drop time: ``t + interval / sqrt(count)`` (RFC 8289 section 5.5)."""
        return t_s + self.interval_s / math.sqrt(count)

    def _dodequeue(self, now_s: float, sojourn_s: float, bytes_after: int) -> bool:
        """RFC 8289 ``dodequeue``: update ``first_above_time``; True when it is OK to drop."""
        if sojourn_s < self.target_s or bytes_after <= self.max_packet_bytes:
            self.first_above_time_s = 0.0
            return False
        if self.first_above_time_s == 0.0:
            self.first_above_time_s = now_s + self.interval_s
            return False
        return now_s >= self.first_above_time_s

    def on_dequeue(self, now_s: float, arrival_s: float, sojourn_s: float, wire_bytes: int, bytes_after: int) -> bool:
        """The packet that arrived at ``arrival_s`` is dequeued at ``now_s`` (``sojourn_s`` later) with
        ``bytes_after`` bytes behind it: True when CoDel drops it."""
        self.max_packet_bytes = max(self.max_packet_bytes, wire_bytes)
        loop, self._loop = self._loop, None
        if loop is not None and arrival_s > loop[1]:
            # The queue was empty at the last drop: dodequeue returned NULL there.
            self.first_above_time_s = 0.0
            if loop[0] == "drop":
                self.dropping = False
            loop = None
        ok = self._dodequeue(now_s, sojourn_s, bytes_after)
        if loop is not None and loop[0] == "enter":
            return False  # the RFC returns the packet after the entering drop
        if self.dropping:
            if not ok:
                self.dropping = False
                return False
            if loop is not None:  # inside the drop loop: the previous drop's drop_next update
                self.drop_next_s = self.control_law(self.drop_next_s, self.count)
            if now_s >= self.drop_next_s:
                self.count += 1
                self._loop = ("drop", now_s)
                return True
            return False
        if ok:  # above target for a whole interval: enter the drop state (the Linux variant the RFC gives)
            self.dropping = True
            delta = self.count - self.lastcount
            self.count = delta if (delta > 1 and now_s - self.drop_next_s < 16 * self.interval_s) else 1
            self.drop_next_s = self.control_law(now_s, self.count)
            self.lastcount = self.count
            self._loop = ("enter", now_s)
            return True
        return False


class LinkQueue:
    """One direction of an access line as a FIFO in explicit time.

    For each packet, :meth:`send` (``now_s`` non-decreasing across calls):

    1. drops it (``dropped_outage``) if the line is down at ``now_s``, or if an outage begins before
       its serialization would end (the modem loses sync and flushes its buffer);
    2. drops it (``dropped_buffer``, drop-tail) if it would pass a queue limit: the backlog plus its
       wire bytes above ``buffer_bytes``, more than ``queue_packets`` packets waiting or being
       serialized, or a wait before serialization above ``queue_ms``. The backlog counts, in wire bytes,
       every accepted packet whose serialization has not finished at ``now_s`` (the one being clocked
       out included, in full);
    3. with CoDel (``aqm="codel"``), runs RFC 8289's control law at the packet's dequeue (the start of
       its serialization) and may drop it there (``dropped_aqm``; a dropped packet takes no line time);
    4. serializes it after the previous packet (FIFO): at ``sync_rate_kbps`` over its wire bytes, or,
       with a ``capacity_trace``, over the trace's delivery opportunities (mahimahi's rule, below);
    5. draws random loss (``dropped_loss``) - the packet has used the line (it is corrupted on the
       wire), so it still consumed serialization time;
    6. returns ``finish + fixed_delay_ms + jitter``; with ``jitter_ms`` (exponential, the earlier model)
       or a :class:`Jitter` that keeps order, raised if needed to the previous delivery time so that
       deliveries never reorder; a :class:`Jitter` with ``reorder=True`` lets packets overtake.

    Wire bytes are ATM cells (53 bytes per 48 of ``ip_bytes + overhead``, :func:`atm_wire_bytes`) unless
    ``plain_ip`` is set: then the link carries IP packets as they are (no cell tax), as an Ethernet,
    fibre or mahimahi link does.

    After each :meth:`send`, ``last_drop`` names the reason of a drop (``"buffer"``, ``"aqm"``,
    ``"loss"``, ``"outage"``) or is None, and ``last_queue_delay_s`` is the wait before serialization
    (None when dropped before it).

    Args:
        sync_rate_kbps: line rate in kbit/s of wire (> 0; unused for serialization with a trace).
        encapsulation: IP-over-ATM encapsulation (cell tax; ignored with ``plain_ip``).
        buffer_bytes: drop-tail limit, wire bytes (> 0).
        fixed_delay_ms: interleaving + propagation (+ any added delay) after serialization (>= 0).
        rng: the random stream for loss and jitter.
        loss: per-packet random loss, or None.
        jitter_ms: mean of an Exponential extra delay per packet, order kept (>= 0; 0 = none). Not
            together with ``jitter``.
        capacity_trace: mahimahi trace replacing the constant rate. As in mahimahi
            (``LinkQueue::rationalize``): an opportunity carries :data:`MAHIMAHI_OPPORTUNITY_BYTES`; a
            packet arriving in millisecond ``m`` can only use opportunities after ``m`` (mahimahi burns the
            opportunities of the current millisecond before it enqueues); a packet may span
            opportunities and an opportunity's unused bytes serve the next packet only if it was queued
            before that opportunity; idle opportunities are lost; the packet leaves at the time of the
            opportunity that carries its last byte. On an ATM line the bytes counted are ATM wire bytes
            (a choice: the cell tax still applies); with ``plain_ip`` they are IP bytes, as in mahimahi.
        outages: outage schedule (same clock as ``now_s``), or None.
        trace_start_s: clock time of the trace's origin; None = the first ``send``'s ``now_s``.
        jitter: a :class:`Jitter` (distribution, reorder or keep order), or None.
        queue_packets: drop-tail limit in packets (None: no limit).
        queue_ms: drop-tail limit on a packet's wait before serialization, ms (None: no limit).
        aqm: ``"droptail"`` or ``"codel"`` (:data:`AQMS`); ``codel`` is a :class:`CoDel` to use
            (default: RFC 8289's target and interval).
        plain_ip: carry IP bytes without ATM cells.

    Raises:
        LineError: invalid parameters. ValueError from :meth:`send`: time going backwards or a bad
        packet size.
    """

    # long: one argument per physical effect, each checked here, before the first packet
    def __init__(
        self,
        sync_rate_kbps: float,
        encapsulation: Encapsulation | str,
        buffer_bytes: int,
        fixed_delay_ms: float,
        rng: np.random.Generator,
        loss: LossModel | None = None,
        jitter_ms: float = 0.0,
        capacity_trace: CapacityTrace | None = None,
        outages: OutageSchedule | None = None,
        trace_start_s: float | None = None,
        jitter: Jitter | None = None,
        queue_packets: int | None = None,
        queue_ms: float | None = None,
        aqm: str = "droptail",
        codel: CoDel | None = None,
        plain_ip: bool = False,
    ) -> None:
        if not (isinstance(sync_rate_kbps, numbers.Real) and math.isfinite(sync_rate_kbps) and sync_rate_kbps > 0):
            raise LineError(f"sync_rate_kbps must be > 0, got {sync_rate_kbps!r}")
        if not (isinstance(buffer_bytes, numbers.Real) and buffer_bytes > 0):
            raise LineError(f"buffer_bytes must be > 0, got {buffer_bytes!r}")
        for name, value in (("fixed_delay_ms", fixed_delay_ms), ("jitter_ms", jitter_ms)):
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise LineError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(rng, np.random.Generator):
            raise LineError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if jitter is not None and jitter_ms > 0:
            raise LineError("give jitter_ms (exponential, order kept) or jitter, not both")
        if queue_packets is not None and not (isinstance(queue_packets, numbers.Integral) and queue_packets >= 1):
            raise LineError(f"queue_packets must be an integer >= 1, got {queue_packets!r}")
        if queue_ms is not None and not (isinstance(queue_ms, numbers.Real) and math.isfinite(queue_ms) and queue_ms > 0):
            raise LineError(f"queue_ms must be a finite number > 0, got {queue_ms!r}")
        if aqm not in AQMS:
            raise LineError(f"unknown queue discipline {aqm!r}; known: {', '.join(AQMS)}")
        self.sync_rate_kbps = float(sync_rate_kbps)
        self.encapsulation = _encapsulation(encapsulation)
        self.plain_ip = bool(plain_ip)
        self.buffer_bytes = int(buffer_bytes)
        self.fixed_delay_s = float(fixed_delay_ms) / 1000.0
        self.jitter_s = float(jitter_ms) / 1000.0
        self.jitter = jitter
        self.queue_packets = None if queue_packets is None else int(queue_packets)
        self.queue_s = None if queue_ms is None else float(queue_ms) / 1000.0
        self.aqm = aqm
        self.codel = (codel or CoDel()) if aqm == "codel" else None
        self.rng = rng
        self.loss = loss
        self.capacity_trace = capacity_trace
        self.outages = outages
        self.trace_start_s = trace_start_s
        self.stats = LinkStats()
        self.last_drop: str | None = None
        self.last_queue_delay_s: float | None = None
        self._rate_bytes_per_s = self.sync_rate_kbps * 1000.0 / 8.0
        self._busy_until_s = -math.inf
        self._last_delivery_s = -math.inf
        self._last_now_s = -math.inf
        self._in_flight: deque[tuple[float, int]] = deque()  # (serialization end, wire bytes)
        self._backlog_bytes = 0
        # trace cursor: the opportunity that carried the last packet's last byte, and bytes left in it
        self._opp_index = -1
        self._opp_left = 0

    @classmethod
    def from_line(
        cls, line: AdslLine, direction: Direction | str, rng: np.random.Generator, **overrides: object
    ) -> LinkQueue:
        """The queue for ``direction`` of ``line``: its sync rate, encapsulation, buffer, fixed delay
        and Bernoulli loss (if ``loss_pct`` > 0). ``overrides`` replace any constructor argument
        (e.g. ``loss=GilbertElliottLoss(...)``, ``outages=...``, ``jitter=Jitter(...)``). Outages are not
        generated here: build one :class:`OutageSchedule` (e.g. ``from_mtbf(line.mtbf_h,
        line.mttr_h, ...)``) and pass the same one to both directions.
        """
        direction = Direction(direction)
        kwargs: dict[str, object] = dict(
            sync_rate_kbps=line.sync_rate_kbps(direction),
            encapsulation=line.encapsulation,
            buffer_bytes=line.buffer_bytes(direction),
            fixed_delay_ms=line.fixed_delay_ms(direction),
            loss=BernoulliLoss(line.loss_pct) if line.loss_pct > 0 else None,
        )
        unknown = set(overrides) - {
            "sync_rate_kbps", "encapsulation", "buffer_bytes", "fixed_delay_ms", "loss", "jitter_ms",
            "capacity_trace", "outages", "trace_start_s", "jitter", "queue_packets", "queue_ms", "aqm",
            "codel", "plain_ip",
        }
        if unknown:
            raise LineError(f"LinkQueue.from_line: unknown override(s) {sorted(unknown)}")
        kwargs.update(overrides)
        return cls(rng=rng, **kwargs)  # type: ignore[arg-type]

    # -- state queries ------------------------------------------------------------------------

    def wire_bytes(self, ip_bytes: int) -> int:
        """Bytes one IP packet of ``ip_bytes`` takes on this link: its ATM cells, or itself on a plain-IP link."""
        return _check_ip_bytes(ip_bytes) if self.plain_ip else atm_wire_bytes(ip_bytes, self.encapsulation)

    def _expire(self, now_s: float) -> None:
        q = self._in_flight
        while q and q[0][0] <= now_s:
            self._backlog_bytes -= q.popleft()[1]

    def backlog_bytes(self, now_s: float) -> int:
        """Wire bytes accepted and not yet fully serialized at ``now_s``."""
        return sum(b for end, b in self._in_flight if end > now_s)

    def queue_delay_s(self, now_s: float) -> float:
        """Wait before a packet arriving at ``now_s`` starts serializing (0 if the line is idle)."""
        return max(0.0, self._busy_until_s - now_s)

    # -- serialization ------------------------------------------------------------------------

    def _serialize_trace(self, now_s: float, wire_bytes: int) -> tuple[float, float, tuple[int, int]]:
        """(start, finish, cursor after) of a packet arriving at ``now_s`` under mahimahi's rule (class doc)."""
        trace = self.capacity_trace
        assert trace is not None
        if self.trace_start_s is None:
            self.trace_start_s = now_s
        arrival_ms = math.floor((now_s - self.trace_start_s) * 1000.0 + 1e-9)
        k, left = self._opp_index, self._opp_left
        if not (k >= 0 and left > 0 and trace.opportunity_time_ms(k) > arrival_ms):
            k = trace.first_opportunity_after(arrival_ms)
            if k <= self._opp_index:
                k = self._opp_index + 1
            left = MAHIMAHI_OPPORTUNITY_BYTES
        start_k, need = k, wire_bytes
        while need > left:
            need -= left
            k += 1
            left = MAHIMAHI_OPPORTUNITY_BYTES
        left -= need
        origin = self.trace_start_s
        return (origin + trace.opportunity_time_ms(start_k) / 1000.0, origin + trace.opportunity_time_ms(k) / 1000.0,
                (k, left))

    def _over_limit(self, now_s: float, start_s: float, wire: int) -> bool:
        """Drop-tail: would the packet pass the byte, packet or time limit of the queue?"""
        if self._backlog_bytes + wire > self.buffer_bytes:
            return True
        if self.queue_packets is not None and len(self._in_flight) + 1 > self.queue_packets:
            return True
        return self.queue_s is not None and start_s - now_s > self.queue_s + 1e-12

    def _drop(self, reason: str) -> None:
        st = self.stats
        self.last_drop = reason
        if reason == "outage":
            st.dropped_outage += 1
        elif reason == "buffer":
            st.dropped_buffer += 1
        elif reason == "aqm":
            st.dropped_aqm += 1
        else:
            st.dropped_loss += 1

    def send(self, now_s: float, ip_bytes: int) -> float | None:
        """Offer one IP packet of ``ip_bytes`` at ``now_s``; return its delivery time (s, same clock)
        at the far end, or None if dropped (``last_drop`` says why). See the class docstring for the
        order of checks.

        Raises:
            ValueError: ``now_s`` earlier than a previous call's, or a non-positive size.
        """
        if now_s < self._last_now_s:
            raise ValueError(f"LinkQueue.send: time went backwards ({now_s} < {self._last_now_s})")
        self._last_now_s = now_s
        wire = self.wire_bytes(ip_bytes)
        st = self.stats
        st.packets_in += 1
        st.bytes_in += ip_bytes
        self.last_drop, self.last_queue_delay_s = None, None
        if self.outages is not None and not self.outages.is_up(now_s):
            self._drop("outage")
            return None
        self._expire(now_s)
        cursor = None
        if self.capacity_trace is None:
            start = max(now_s, self._busy_until_s)
            finish = start + wire / self._rate_bytes_per_s
        else:
            start, finish, cursor = self._serialize_trace(now_s, wire)
        if self._over_limit(now_s, start, wire):
            self._drop("buffer")
            return None
        if self.codel is not None and self.codel.on_dequeue(start, now_s, start - now_s, wire, self._backlog_bytes):
            self._drop("aqm")
            return None
        if self.outages is not None and self.outages.overlaps(now_s, finish):
            self._drop("outage")
            return None
        if cursor is not None:
            self._opp_index, self._opp_left = cursor
        self._busy_until_s = finish
        self._in_flight.append((finish, wire))
        self._backlog_bytes += wire
        self.last_queue_delay_s = start - now_s
        st.max_backlog_bytes = max(st.max_backlog_bytes, self._backlog_bytes)
        st.max_queue_delay_s = max(st.max_queue_delay_s, start - now_s)
        if self.loss is not None and self.loss.lost(self.rng):
            self._drop("loss")
            return None
        return self._deliver(finish, ip_bytes, wire)

    def _deliver(self, finish_s: float, ip_bytes: int, wire: int) -> float:
        """Delivery time of a packet serialized by ``finish_s``: fixed delay, jitter, order (class doc)."""
        delivery = finish_s + self.fixed_delay_s
        if self.jitter_s > 0:
            delivery += self.rng.exponential(self.jitter_s)
        if self.jitter is not None:
            delivery = max(finish_s, delivery + self.jitter.sample_s(self.rng))
        if self.jitter is None or not self.jitter.reorder:
            delivery = max(delivery, self._last_delivery_s)
        self._last_delivery_s = max(self._last_delivery_s, delivery)
        st = self.stats
        st.packets_delivered += 1
        st.bytes_delivered += ip_bytes
        st.wire_bytes_delivered += wire
        return delivery


# --------------------------------------------------------------------------------------------------
# Shared links: one queue seen from several calls' clocks, and paths of several hops
# --------------------------------------------------------------------------------------------------


class ClockedHop:
    """A :class:`LinkQueue` seen from one call's clock: the queue runs on a clock shared by every call
    that crosses it (e.g. an office line carrying several agents' calls); a call's clock is
    ``offset_s`` behind it (the call started ``offset_s`` after the shared clock's origin). Offers and
    deliveries are converted, so each call keeps its own clock and the queue sees one non-decreasing
    time. ``last_drop``, ``last_queue_delay_s`` and ``stats`` are the queue's.

    Args:
        queue: the shared queue.
        offset_s: the call clock's origin on the shared clock, s.
    """

    def __init__(self, queue: LinkQueue, offset_s: float = 0.0) -> None:
        self.queue = queue
        self.offset_s = float(offset_s)

    def send(self, now_s: float, ip_bytes: int) -> float | None:
        """:meth:`LinkQueue.send` at ``now_s`` on the call's clock; the delivery on the call's clock."""
        delivery = self.queue.send(now_s + self.offset_s, ip_bytes)
        return None if delivery is None else delivery - self.offset_s

    @property
    def last_drop(self) -> str | None:
        """The queue's ``last_drop``."""
        return self.queue.last_drop

    @property
    def last_queue_delay_s(self) -> float | None:
        """The queue's ``last_queue_delay_s``."""
        return self.queue.last_queue_delay_s

    @property
    def stats(self) -> LinkStats:
        """The queue's statistics (every call that crosses it)."""
        return self.queue.stats


class LinkPath:
    """One direction of a call across several lines in series, e.g. the kiosk's uplink then the office
    line's downlink. The relay offers a packet to the first hop at its arrival and to each next hop when
    the previous one delivers it (each hop's time stays non-decreasing); a drop anywhere is the packet's
    drop. ``stats`` are the first hop's (the call's own access line), ``hops`` all of them.

    Args:
        hops: :class:`LinkQueue` or :class:`ClockedHop` objects, in the order packets cross them.

    Raises:
        LineError: no hop.
    """

    def __init__(self, *hops: LinkQueue | ClockedHop) -> None:
        if not hops:
            raise LineError("a LinkPath needs at least one hop")
        self.hops = hops

    @property
    def stats(self) -> LinkStats:
        """The first hop's statistics."""
        return self.hops[0].stats

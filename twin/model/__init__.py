"""The SimPy model of the regional kiosk network: one replication, emitting typed records.

What is modelled (see README "Model" for the assumptions in prose):

- **Demand.** Each commune c has, for each service s, a yearly potential of video interviews
  ``population_c * need_per_capita_per_year_s * kiosk_uptake * (1 - exp(-D / distance_decay_km))``
  where D is the road distance to the service's nearest office: a kiosk is worth using where the office
  is far (travel saved), hardly at all next door (ASSUMPTION, no published source: the office-distance
  factor reuses the kiosk-distance scale ``distance_decay_km``; it was added so that planners do not
  fill cities that have offices). Citizens go to the nearest installed user kiosk at
  road distance d: a share ``exp(-d / distance_decay_km)`` comes when ``d <= max_kiosk_distance_km``
  and ``d < D``; the rest is unmet, reason ``too_far`` (they travel to the office or give up; the model
  does not distinguish).
- **Reachability.** A generation-1 kiosk reaches only the (at most 6) services it is configured with
  (reason ``gen1_limit``); a service with no agent station reachable by the kiosk's generation, no
  agent on duty, or no slot inside the kiosk's opening hours cannot be reached (reason ``no_agent``).
  Generation-2 kiosks also reach a service's standard videoconference rooms (seed article, 2008).
- **Arrivals.** Reachable demand arrives as a Poisson process spread uniformly over the weekly hours
  when both the kiosk is open and the service holds its slots (citizens come when the service can be
  reached). Appointment-mode services never see abandonment (bookings are honoured; the booking lead
  time is not modelled, nor is the calendar capped: an overloaded appointment service shows as long
  waits and agents busy past their slots, i.e. utilisation above 1); walk-in citizens give up after
  ``patience_min`` (reason ``gave_up``).
- **Service.** A citizen takes a booth at the kiosk (``kiosk_count`` booths, FIFO), then an agent at a
  station of the service (FIFO; agents on duty = min(agents, expert stations + VC rooms)). The call
  needs the kiosk's line and the station's line up at its start (else reason ``line_down``); outages
  during a call are not modelled. Interview durations follow the service's distribution.
- **Lines.** Each site line and each service office line fails and is repaired with exponential up
  times (MTBF) and down times (MTTR) (``twin.line.OutageSchedule``); so does each exchange's backhaul,
  which every call of the user kiosks behind it (``sites[].exchange``) crosses after the kiosk's line.
- **Quality.** Each interview is scored by the scenario's quality model from the two lines and the
  encoder profile of the kiosk's generation (``twin.quality``). A kiosk behind an exchange gets the
  worst hop of its line and the backhaul, each scored against the agent's line. On links calls share
  (booths of a site, stations at an office, kiosks behind an exchange) each call sees 1/n of the link
  (``twin.line.Link.shared_by``) and an interview's score is the time average over the n it meets.
- **Phases.** At each phase start, sites are added, upgraded and removed, agents changed, and demand
  re-routed. Records are labelled with the phase of their arrival; a warm-up before the first phase is
  simulated and discarded.

The core does no I/O and prints nothing: :func:`simulate` takes a :class:`ModelInputs` (built once per
scenario by :func:`prepare`) and a seed, and returns a :class:`ReplicationRecords`.

Rooms: :mod:`twin.model.inputs` (the scenario compiled: phases, streams, stations),
:mod:`twin.model.replication` (one replication as an object with its SimPy processes as methods),
:mod:`twin.model.records` (what a replication emits).
"""

from twin.model.inputs import ModelInputs, PhaseConfig, PhaseWindow, Stream, prepare
from twin.model.records import ReplicationRecords
from twin.model.replication import Replication, simulate
from twin.vocabulary import UNMET_REASONS

__all__ = ["UNMET_REASONS", "ModelInputs", "PhaseConfig", "PhaseWindow", "Replication", "ReplicationRecords",
           "Stream", "prepare", "simulate"]

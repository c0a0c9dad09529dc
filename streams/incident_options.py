"""Incident settings -> the pure IncidentOptions the tracker takes."""

from __future__ import annotations

from config.settings import IncidentSettings
from detectors.incidents.tracker import IncidentOptions


def incident_options(s: IncidentSettings) -> IncidentOptions:
    return IncidentOptions(quiet_windows=s.quiet_windows, max_keys=s.max_keys)

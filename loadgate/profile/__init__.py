"""What a run measures: the profile — its schema (models), loading (TOML, bundled
profiles, ``--set``, ``${VAR}``), durations, and the generated key reference.
"""

from __future__ import annotations

from loadgate.profile.loading import bundled_dir, bundled_profiles, load_profile, parse_profile
from loadgate.profile.models import (
    ENDPOINTS,
    AuthCacheSpec,
    AuthSpec,
    CpusSpec,
    GatewaySpec,
    HarnessSpec,
    LoadSpec,
    ProbesSpec,
    Profile,
    ReferenceSpec,
    RevocationSpec,
    SloSpec,
    StubSpec,
    TenantsSpec,
    WitnessSpec,
)

__all__ = [
    "ENDPOINTS",
    "AuthCacheSpec",
    "AuthSpec",
    "CpusSpec",
    "GatewaySpec",
    "HarnessSpec",
    "LoadSpec",
    "ProbesSpec",
    "Profile",
    "ReferenceSpec",
    "RevocationSpec",
    "SloSpec",
    "StubSpec",
    "TenantsSpec",
    "WitnessSpec",
    "bundled_dir",
    "bundled_profiles",
    "load_profile",
    "parse_profile",
]

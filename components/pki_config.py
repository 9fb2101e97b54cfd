"""Configuration of the mutual-TLS certificates: ``pki.*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.config_reader import ConfigReader

KEYS = ("pki",)
KeyAlgorithm = Literal["ECDSA-P256", "RSA-2048", "RSA-4096"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ECDSA-P256", "RSA-2048", "RSA-4096")


@dataclass(frozen=True)
class PkiConfig:
    key_algorithm: KeyAlgorithm
    validity_hours: int
    early_renewal_hours: int
    ca_validity_hours: int


def read_pki(r: ConfigReader) -> PkiConfig:
    section = r.section("pki", ("keyAlgorithm", "validityHours", "earlyRenewalHours", "caValidityHours"))
    year = 24 * 365
    validity = r.integer("pki.validityHours", section.get("validityHours"), year, 1, 10 * year)
    renewal = r.integer("pki.earlyRenewalHours", section.get("earlyRenewalHours"), 30 * 24, 0, 10 * year)
    ca_validity = r.integer("pki.caValidityHours", section.get("caValidityHours"), 5 * year, 1, 30 * year)
    shown = r.shown("pki.validityHours", validity)
    if renewal >= validity:
        r.problem(
            "pki.earlyRenewalHours",
            renewal,
            f"must be shorter than pki.validityHours ({shown}), or certificates renew on every update",
        )
    if ca_validity < validity:
        r.problem(
            "pki.caValidityHours",
            ca_validity,
            f"must be at least pki.validityHours ({shown}): a certificate cannot outlive its CA",
        )
    return PkiConfig(
        key_algorithm=r.choice("pki.keyAlgorithm", section.get("keyAlgorithm"), KEY_ALGORITHMS, "ECDSA-P256"),
        validity_hours=validity,
        early_renewal_hours=renewal,
        ca_validity_hours=ca_validity,
    )

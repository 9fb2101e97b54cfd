"""Configuration of the Falco alerts' contact points: ``alerting.*``, ``alertWebhookUrl``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.config_reader import ConfigReader
from components.pki_config import PkiConfig

KEYS = ("alerting", "alertWebhookUrl")


@dataclass(frozen=True)
class AlertingConfig:
    webhook_url: pulumi.Output[str] | None  # secret: webhook URLs usually carry a token
    email_addresses: tuple[str, ...]
    # Hours before an mTLS certificate expires that the expiry alert fires.
    certificate_warning_hours: int


def read_alerting(r: ConfigReader, pki: PkiConfig) -> AlertingConfig:
    section = r.section("alerting", ("email", "certificateWarningHours"))
    addresses = section.get("email", [])
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", a) for a in addresses
    ):
        r.problem("alerting.email", addresses, "must be a list of e-mail addresses")
        addresses = []
    webhook = r.secret("alertWebhookUrl", "the webhook URL")
    raw = r.raw("alertWebhookUrl")
    if webhook is not None and raw is not None and not re.match(r"^https?://[^/\s]+", raw):
        r.problem("alertWebhookUrl", "<secret>", "must be an http:// or https:// URL")
        webhook = None
    # Halfway through the renewal window: `pulumi up` (by hand or on a schedule) has had half
    # of pki.earlyRenewalHours to renew the certificates, and half is left to find out why not.
    warning = r.integer(
        "alerting.certificateWarningHours",
        section.get("certificateWarningHours"),
        pki.early_renewal_hours // 2,
        0,
        pki.validity_hours - 1,
    )
    if pki.early_renewal_hours and warning > pki.early_renewal_hours:
        r.problem(
            "alerting.certificateWarningHours",
            warning,
            f"must be at most pki.earlyRenewalHours ({pki.early_renewal_hours}): before then `pulumi up` "
            "does not renew the certificates yet, so the alert would fire on every certificate",
        )
    return AlertingConfig(webhook_url=webhook, email_addresses=tuple(addresses), certificate_warning_hours=warning)

"""GrafanaApi: the pulumiverse-grafana provider for one Grafana, authenticated and secret."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumiverse_grafana as grafana

from components.grafana_config import AdminSecretRef, GrafanaConfig


@dataclass(frozen=True)
class GeneratedAdmin:
    """The baseline's Grafana: its admin user and the password this stack generated."""

    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class AdminPasswordSecret:
    """An existing Grafana whose admin password is in a Kubernetes Secret, read the way the
    walk-through does: ``kubectl get secret grafana -o jsonpath='{.data.admin-password}'``."""

    user: str
    secret: AdminSecretRef


@dataclass(frozen=True)
class ServiceAccountToken:
    token: pulumi.Output[str]


@dataclass(frozen=True)
class GrafanaApiArgs:
    url: pulumi.Input[str]  # secret when configured as one
    credentials: GeneratedAdmin | AdminPasswordSecret | ServiceAccountToken


class GrafanaApi(pulumi.ComponentResource):
    """Builds the Grafana provider every Grafana resource of the stack goes through.

    Its ``auth`` is a Pulumi secret whichever the credentials; an admin password read from a
    Kubernetes Secret (through the component's Kubernetes provider) never leaves Pulumi's
    encrypted state.
    """

    def __init__(self, name: str, args: GrafanaApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:GrafanaApi", name, None, opts)
        credentials = args.credentials
        if isinstance(credentials, ServiceAccountToken):
            auth = credentials.token
        elif isinstance(credentials, GeneratedAdmin):
            auth = pulumi.Output.concat(credentials.user, ":", credentials.password)
        else:
            auth = pulumi.Output.concat(credentials.user, ":", self._read_password(name, credentials.secret))
        self.url = args.url
        secret_auth: pulumi.Output[str] = pulumi.Output.secret(auth)
        self.provider = grafana.Provider(
            name,
            url=args.url,
            auth=secret_auth,
            # Grafana may still be starting when the first API call arrives.
            retries=10,
            retry_wait=3,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"url": self.url})

    def _read_password(self, name: str, ref: AdminSecretRef) -> pulumi.Output[str]:
        # The typed core/v1 module costs a quarter of a second to import: only this path needs it.
        from pulumi_kubernetes.core.v1 import Secret

        secret = Secret.get(
            f"{name}-admin-password", f"{ref.namespace}/{ref.name}", opts=pulumi.ResourceOptions(parent=self)
        )

        def decode(data: Mapping[str, str] | None) -> str:
            if not data or ref.key not in data:
                raise pulumi.RunError(
                    f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r} "
                    f"(runtime-defense:grafana.adminSecret.key); it has: {', '.join(sorted(data or {}))}"
                )
            return base64.b64decode(data[ref.key]).decode()

        return pulumi.Output.secret(secret.data.apply(decode))


def existing_grafana_credentials(config: GrafanaConfig) -> AdminPasswordSecret | ServiceAccountToken:
    """The credentials configured for a Grafana this stack does not deploy (config.load
    guarantees exactly one of a token and an admin-password Secret)."""
    if config.token is not None:
        return ServiceAccountToken(config.token)
    assert config.admin_secret is not None
    return AdminPasswordSecret(config.admin_user, config.admin_secret)

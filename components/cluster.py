"""The one explicit Kubernetes provider every resource in the stack is deployed through."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.config import KubernetesTarget


def kubernetes_provider(target: KubernetesTarget, adopt_existing: bool = False) -> k8s.Provider:
    """A provider bound to the configured context or kubeconfig, never the ambient default.

    ``adopt_existing`` lets `pulumi up` take over objects a previous `pulumi destroy` left in
    place on purpose (retained namespaces and volumes) instead of failing on them.
    """
    return k8s.Provider(
        "kubernetes",
        context=target.context,
        kubeconfig=target.kubeconfig,
        upsert_existing_objects=True if adopt_existing else None,
    )

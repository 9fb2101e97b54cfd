"""The explicit Kubernetes providers every resource in the stack is deployed through."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.cluster_config import KubernetesTarget


def kubernetes_provider(
    target: KubernetesTarget, name: str = "kubernetes", adopt_existing: bool = False
) -> k8s.Provider:
    """A provider bound to the configured context or kubeconfig, never the ambient default.

    ``adopt_existing`` lets `pulumi up` take over objects that already exist instead of
    failing on them. Only the provider of the objects a previous `pulumi destroy` left in
    place on purpose (a retained namespace, and the volumes in it) does that: through the
    main provider the stack would silently take over, and a later destroy delete, objects
    it never created, such as CRDs another team installed.
    """
    return k8s.Provider(
        name,
        context=target.context,
        kubeconfig=target.kubeconfig,
        upsert_existing_objects=True if adopt_existing else None,
    )

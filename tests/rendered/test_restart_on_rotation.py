"""Every workload that mounts the mutual-TLS material restarts when a certificate is renewed,
and no other: the Chart's transforms, applied as the engine applies them to each rendered
object, put the certificates' checksum on exactly those pod templates."""

from harness import kubernetes_type
from rendering import Workload

from components.pki import CHECKSUM_ANNOTATION


def mounted_secrets(pod: dict) -> set[str]:
    names = set()
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def pod_annotations(kind: str, body: dict) -> dict:
    template = body
    for key in Workload.POD_SPEC_PATHS.get(kind, ()):
        template = template[key]
    return (template.get("metadata") or {}).get("annotations") or {}


def test_the_pods_that_mount_the_mtls_material_and_only_they_restart_on_renewal(stack):
    run = stack.run
    tls_secrets = {m["metadata"]["name"] for m in run.named("falco-mtls-secrets").plain("objs")}
    charts = run.charts()
    annotated, mounting = set(), set()
    for workload in stack.workloads():
        owner = workload.owner
        if owner.source not in charts:
            continue  # run by the Prometheus operator, not rendered by a chart
        type_ = kubernetes_type(owner.body["apiVersion"], owner.kind)
        annotations = pod_annotations(owner.kind, run.transformed(charts[owner.source], type_, str(owner), owner.body))
        if CHECKSUM_ANNOTATION in annotations:
            assert len(annotations[CHECKSUM_ANNOTATION]) == 64, annotations  # a sha256, resolved
            annotated.add(str(owner))
        if mounted_secrets(workload.pod) & tls_secrets:
            mounting.add(str(owner))
    assert mounting, "no workload mounts the mTLS Secrets"
    assert annotated == mounting

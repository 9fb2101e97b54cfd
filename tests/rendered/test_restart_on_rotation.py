"""Every workload that mounts the mutual-TLS material restarts when a certificate is renewed,
and no other: the Chart's transforms, applied as the engine applies them to each rendered
object, put the certificates' checksum on exactly those pod templates."""

from references import secrets_mounted

from components.pki import CHECKSUM_ANNOTATION


def test_the_pods_that_mount_the_mtls_material_and_only_they_restart_on_renewal(stack):
    run = stack.run
    tls_secrets = {m["metadata"]["name"] for m in run.named("falco-mtls-secrets").plain("objs")}
    charts = run.charts()
    annotated, mounting = set(), set()
    for workload in stack.workloads():
        owner = workload.owner
        if owner.source not in charts:
            continue  # run by the Prometheus operator, not rendered by a chart
        annotations = workload.annotations  # the rendered objects carry their Charts' transforms
        if CHECKSUM_ANNOTATION in annotations:
            assert len(annotations[CHECKSUM_ANNOTATION]) == 64, annotations  # a sha256, resolved
            annotated.add(str(owner))
        if secrets_mounted(workload.pod) & tls_secrets:
            mounting.add(str(owner))
    assert mounting, "no workload mounts the mTLS Secrets"
    assert annotated == mounting

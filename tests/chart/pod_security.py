"""The restricted Pod Security Standard (Kubernetes 1.35, baseline rules included), as a pure
function over a pod spec. It says what breaks each rule, so a failing test names the fix."""

from __future__ import annotations

from typing import Any

from tests.chart.chart_support import all_containers

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}
APPARMOR_OK = {"RuntimeDefault", "Localhost"}


def _baseline_security_context(where: str, context: dict[str, Any]) -> list[str]:
    problems = []
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append(f"{where}: windowsOptions.hostProcess must not be true")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type {selinux['type']!r} is not allowed")
    if selinux.get("user") or selinux.get("role"):
        problems.append(f"{where}: seLinuxOptions.user and .role must be unset")
    apparmor = context.get("appArmorProfile")
    if apparmor and apparmor.get("type") not in APPARMOR_OK:
        problems.append(f"{where}: appArmorProfile.type must be RuntimeDefault or Localhost")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_OK:
        problems.append(f"{where}: seccompProfile.type {seccomp!r} is not allowed")
    if context.get("runAsUser") == 0:
        problems.append(f"{where}: runAsUser must not be 0")
    return problems


def _container(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    where = f"container {container['name']!r}"
    context = container.get("securityContext") or {}
    problems = _baseline_security_context(where, context)
    if context.get("privileged"):
        problems.append(f"{where}: privileged must not be true")
    if context.get("procMount", "Default") != "Default":
        problems.append(f"{where}: procMount must be Default")
    for port in container.get("ports", []):
        if port.get("hostPort"):
            problems.append(f"{where}: hostPort {port['hostPort']} is not allowed")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append(f"{where}: capabilities.drop must include ALL")
    added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"{where}: capabilities.add {sorted(added)} is not allowed")
    if context.get("runAsNonRoot") is False or (
        not context.get("runAsNonRoot") and not pod_context.get("runAsNonRoot")
    ):
        problems.append(f"{where}: runAsNonRoot must be true (on the pod or the container)")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if seccomp is None and pod_seccomp not in SECCOMP_OK:
        problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
    return problems


def restricted_violations(pod_template: dict[str, Any]) -> list[str]:
    """Every way the pod (template) breaks the restricted profile; empty when it passes."""
    spec = pod_template["spec"]
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"pod: {field} must not be true")
    pod_context = spec.get("securityContext") or {}
    problems += _baseline_security_context("pod", pod_context)
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl['name']} is not allowed")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']!r}: type {sorted(kinds)} is not allowed")
    annotations = (pod_template.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"annotation {key}: {value!r} is not allowed")
    for container in all_containers(spec):
        problems += _container(container, pod_context)
    return problems

"""Regenerate the golden rendered files in this directory: ``python docs/rendered/generate.py``.

The example is the seed's: a registry behind the Consul name
``docker_registry.service.dc1.consul`` with a self-signed certificate
(``--skip-ssl-validation``), two instances found by discovery, and an operator's
existing ``daemon.json`` to merge into. ``tests/test_render_golden.py`` fails
when a file here is not what the renderers produce now.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # this checkout's package, when it is not installed

from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery  # noqa: E402
from registry_config.plan import plan_from_discovery  # noqa: E402
from registry_config.render import (  # noqa: E402
    render_containerd_hosts,
    render_daemon_json,
    render_registries_conf,
    render_tree,
)
from registry_config.spec import RegistrySpec  # noqa: E402

URL = "https://docker_registry.service.dc1.consul:8443"
INSTANCES = ("10.244.2.6", "10.244.2.7")


def golden() -> dict[str, str]:
    """File name in this directory -> the text it must hold."""
    spec = RegistrySpec.from_url(URL, skip_ssl_validation=True)
    query = ServiceQuery("docker_registry", datacenter="dc1", default_port=spec.port)
    discovery = Discovery(query, [ServiceInstance(ip, spec.port) for ip in INSTANCES], source="consul")
    plan = plan_from_discovery(spec, discovery)
    before = (HERE / "daemon.before.json").read_text(encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hosts = render_containerd_hosts(plan)
        files = {
            "daemon.json": render_daemon_json(plan, existing=before),
            "hosts.toml": hosts[0].content,
            "registries.conf": render_registries_conf(plan),
            "containerd-directories.txt": "".join(f"{hosts_file.path()}\n" for hosts_file in hosts),
            "tree.txt": "".join(f"{file.path}\n" for file in render_tree(plan, existing_daemon_json=before)),
        }
    files["warnings.txt"] = "".join(f"{text}\n" for text in dict.fromkeys(str(w.message) for w in caught))
    return files


def main() -> None:
    for name, text in golden().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()

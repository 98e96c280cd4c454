"""Endpoint references and tritonclient connections (HTTP or gRPC), imported lazily.

An endpoint is written `triton://HOST:PORT/NAME[/VERSION]` (HTTP) or `tritongrpc://HOST:PORT/NAME[/VERSION]`,
so `flywheel eval --endpoint` and the deploy record name the served model the same way a model path does.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from asr_flywheel.errors import InputError

SCHEMES = {"triton": "http", "tritongrpc": "grpc"}
#: Loading a NeMo model in a fresh stub (import + restore) takes tens of seconds on a busy CPU.
CONTROL_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Endpoint:
    protocol: str
    host: str
    port: int
    name: str
    version: str = ""

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def ref(self) -> str:
        scheme = next(s for s, p in SCHEMES.items() if p == self.protocol)
        return f"{scheme}://{self.url}/{self.name}" + (f"/{self.version}" if self.version else "")


def is_endpoint(ref: str) -> bool:
    return any(ref.startswith(f"{s}://") for s in SCHEMES)


def parse_host_port(url: str, what: str = "--url") -> tuple[str, int]:
    host, sep, port = url.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{what} must be HOST:PORT, got {url!r}")
    return host, int(port)


def parse_endpoint(ref: str) -> Endpoint:
    parts = urlsplit(ref)
    if parts.scheme not in SCHEMES:
        raise InputError(f"not a Triton endpoint: {ref!r} (use triton://HOST:PORT/NAME or tritongrpc://...)")
    host, port = parse_host_port(parts.netloc, "endpoint")
    path = [p for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
        raise InputError(f"endpoint {ref!r} must end in /NAME or /NAME/VERSION")
    return Endpoint(SCHEMES[parts.scheme], host, port, path[0], path[1] if len(path) == 2 else "")


def client_module(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
    except ImportError:
        raise InputError("Triton endpoints need the `triton` extra: pip install 'asr-flywheel[triton]'") from None
    return mod


def connect(url: str, protocol: str = "http", timeout_s: float = 60.0):
    """A tritonclient InferenceServerClient. Close it before the server stops, or shutdown waits 30 s."""
    mod = client_module(protocol)
    if protocol == "grpc":
        return mod.InferenceServerClient(url=url)
    return mod.InferenceServerClient(url=url, connection_timeout=timeout_s, network_timeout=timeout_s)


def served_parameters(client, name: str, protocol: str) -> dict[str, str]:
    """The string parameters of a served model's config (the flywheel writes `decoder` and `backend`)."""
    grpc = protocol == "grpc"
    cfg = client.get_model_config(name, as_json=True)["config"] if grpc else client.get_model_config(name)
    return {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}

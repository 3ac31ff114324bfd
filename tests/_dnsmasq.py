"""Real and fake DNS servers on loopback for the DNS backend's tests.

:class:`Dnsmasq` runs Debian's ``dnsmasq`` with records shaped like Consul's
DNS answers (SRV targets ``<node>.node.<dc>.consul.`` with A and AAAA
records). What dnsmasq 2.90 does, measured here and relied on by the tests:

- it puts the A and AAAA records of an SRV target it knows from
  ``--host-record`` in the additional section (glue); a target it knows only
  from ``--address=/name/ip`` gets no glue and must be asked for;
- it caps UDP answers at ``--edns-packet-max`` (1232 bytes by default, even
  when the client offers 4096): 50 SRV records come back truncated (TC) and
  must be asked again over TCP;
- with ``--edns-packet-max=4096`` the 50 SRV records fit, but it silently
  drops the glue that does not fit (89 of 100 address records come back, no
  TC flag), so some targets arrive without glue;
- with ``--local=/consul/`` an unknown name is NXDOMAIN; without it, REFUSED;
- it needs no root on a port above 1023: started as ``nobody`` (``setpriv``)
  it serves as well; ``--user``/``--group`` are set to whoever runs the
  tests, so that, started as root, it keeps to that user and never switches
  to ``nobody``.

:class:`FakeNameserver` is a loopback UDP (and optionally TCP) server whose
answers a test writes itself: hostile records, garbage, silence.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs
import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from _integration import free_port, need_program


@attrs.frozen
class Node:
    """A Consul node: the SRV target ``<name>.node.<dc>.consul.`` and its addresses."""

    name: str
    addresses: tuple[str, ...]
    datacenter: str = "dc1"
    domain: str = "consul"

    @property
    def target(self) -> str:
        return f"{self.name}.node.{self.datacenter}.{self.domain}"


@attrs.frozen
class Records:
    """The records dnsmasq serves, as its option lines."""

    lines: tuple[str, ...] = ()

    def srv(self, name: str, target: str, port: int, *, priority: int = 1, weight: int = 1) -> Records:
        return Records((*self.lines, f"srv-host={name},{target},{port},{priority},{weight}"))

    def unavailable(self, name: str) -> Records:
        """An SRV record with target '.': RFC 2782's "decidedly not available here"."""
        return Records((*self.lines, f"srv-host={name}"))

    def host(self, name: str, *addresses: str) -> Records:
        """A name with A/AAAA records that dnsmasq also adds as glue to SRV answers (one line per address)."""
        return Records((*self.lines, *(f"host-record={name},{address}" for address in addresses)))

    def address(self, name: str, address: str) -> Records:
        """A name with an address dnsmasq answers for, but never adds as glue."""
        return Records((*self.lines, f"address=/{name}/{address}"))

    def cname(self, alias: str, target: str) -> Records:
        return Records((*self.lines, f"cname={alias},{target}"))

    def service(
        self, service: str, nodes: Iterable[Node], port: int | Iterable[int], *, tag: str | None = None
    ) -> Records:
        """A Consul service on ``nodes``: SRV records under every name Consul answers, A/AAAA per node."""
        records = self
        nodes = list(nodes)
        ports = [port] * len(nodes) if isinstance(port, int) else list(port)
        datacenters = {node.datacenter for node in nodes} or {"dc1"}
        for dc in sorted(datacenters):
            for with_dc in (False, True):
                name = f"{service}.service.{dc}.consul" if with_dc else f"{service}.service.consul"
                if tag is not None:
                    name = f"{tag}.{name}"
                for node, node_port in zip(nodes, ports, strict=True):
                    if node.datacenter == dc:
                        records = records.srv(name, node.target, node_port)
        for node in nodes:
            records = records.host(node.target, *node.addresses)
        return records

    def __add__(self, other: Records) -> Records:
        return Records((*self.lines, *other.lines))


class Dnsmasq:
    """One dnsmasq process on a loopback port (UDP and TCP), restartable with other records."""

    def __init__(
        self,
        records: Records,
        *,
        listen: str = "127.0.0.1",
        ttl: int = 0,
        edns_packet_max: int | None = None,
        local_domains: tuple[str, ...] = ("consul", "test"),
        log_queries: bool = True,
    ) -> None:
        self.binary = need_program("dnsmasq", package="dnsmasq-base")
        self.listen = listen
        self.ttl = ttl
        self.edns_packet_max = edns_packet_max
        self.local_domains = local_domains
        self.log_queries = log_queries
        self.records = records
        self.port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="registry-config-dnsmasq-")
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_start = 0

    @property
    def server(self) -> str:
        """``ip:port`` of the server, IPv6 in brackets: what a DnsBackend is given."""
        return f"[{self.listen}]:{self.port}" if ":" in self.listen else f"{self.listen}:{self.port}"

    @property
    def log(self) -> str:
        path = Path(self._dir.name) / "dnsmasq.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def asked(self, name: str, rdtype: str) -> int:
        """How many times ``name`` was asked for ``rdtype`` since the last start (from dnsmasq's query log)."""
        wanted = f"query[{rdtype}] {name} from"
        return sum(wanted in line for line in self.log.splitlines()[self._log_start :])

    def _config(self) -> Path:
        path = Path(self._dir.name) / f"dnsmasq-{self.starts}.conf"
        lines = [
            "no-resolv",
            "no-hosts",
            "bind-interfaces",
            f"listen-address={self.listen}",
            f"port={self.port}",
            f"local-ttl={self.ttl}",
            "host-record=ready.probe.test,127.0.0.1",
            *(f"local=/{domain}/" for domain in self.local_domains),
            *self.records.lines,
        ]
        if self.log_queries:
            lines.append("log-queries")
        if self.edns_packet_max is not None:
            lines.append(f"edns-packet-max={self.edns_packet_max}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, records: Records | None = None) -> Dnsmasq:
        """Start (again, on the same port once it has one) and wait until it answers over UDP and TCP."""
        if records is not None:
            self.records = records
        fixed = self.port != 0
        for _attempt in range(5):
            if not fixed:
                self.port = _free_udp_tcp_port(self.listen)
            self.starts += 1
            log = Path(self._dir.name) / "dnsmasq.log"
            self._log_start = len(self.log.splitlines())
            command = [
                self.binary,
                "--no-daemon",
                f"--conf-file={self._config()}",
                f"--user={pwd.getpwuid(os.getuid()).pw_name}",
                f"--group={grp.getgrgid(os.getgid()).gr_name}",
                "--pid-file=",
                "--log-facility=-",
            ]
            with log.open("ab") as sink:
                self._process = subprocess.Popen(command, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self.stop()
            if fixed and "in use" not in self.log:
                break
            time.sleep(0.2)
        raise RuntimeError(f"dnsmasq did not start on {self.server}; its log:\n{self.log}")

    def _wait_ready(self, deadline: float = 10.0) -> bool:
        query = dns.message.make_query("ready.probe.test", "A")
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                answers = [
                    dns.query.udp(query, self.listen, port=self.port, timeout=0.5),
                    dns.query.tcp(query, self.listen, port=self.port, timeout=0.5),
                ]
            except (OSError, EOFError, dns.exception.DNSException):
                time.sleep(0.05)
                continue
            # Our own record, so that another server on the same address and port is not taken for us.
            if all(answer.answer and answer.answer[0][0].to_text() == "127.0.0.1" for answer in answers):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self, records: Records) -> None:
        """Serve other records on the same port (dnsmasq re-reads SRV records only on start)."""
        self.stop()
        self.start(records)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _free_udp_tcp_port(host: str) -> int:
    """A port free for TCP and for UDP at once (dnsmasq needs both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        port = free_port(host)
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no loopback port is free for both UDP and TCP")


@contextlib.contextmanager
def dnsmasq(records: Records, **options: object) -> Iterator[Dnsmasq]:
    """A started dnsmasq that is always stopped, also when the test fails."""
    server = Dnsmasq(records, **options)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.close()


Handler = Callable[[dns.message.Message], "bytes | dns.message.Message | None"]


def _bind_pair(host: str, *, tcp: bool) -> tuple[socket.socket, socket.socket | None]:
    """A UDP socket on a free port and, with ``tcp``, a listening TCP socket on the same port number.

    The kernel picks the UDP port; the same number may be taken for TCP by
    someone else, so a clash closes both sockets and tries another port
    (nothing is left open for the garbage collector to find).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, 0))
            if not tcp:
                return udp, None
            stream = socket.socket(family, socket.SOCK_STREAM)
            try:
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                stream.bind((host, udp.getsockname()[1]))
                stream.listen(8)
            except OSError:
                stream.close()
                raise
            return udp, stream
        except OSError as exc:
            udp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host} after 50 tries")


class FakeNameserver:
    """A loopback DNS server that answers what ``handler`` returns (``None``: stays silent).

    The handler gets the parsed query and returns a message, raw bytes (for
    garbage), or ``None``. With ``tcp=True`` the same handler (or
    ``tcp_handler``) answers over TCP too; ``queries`` records every question
    seen, with its transport. A handler that raises makes ``close`` raise.
    ``tcp_raw(conn, stop)`` replaces the DNS framing over TCP with the
    test's own behaviour on each connection (a server that drips, say), on
    the same port as the UDP one: a listener a test binds there by hand may
    find the port taken for TCP.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        tcp: bool = False,
        tcp_handler: Handler | None = None,
        tcp_raw: Callable[[socket.socket, threading.Event], None] | None = None,
    ) -> None:
        self.handler = handler
        self.tcp_handler = tcp_handler or handler
        self.tcp_raw = tcp_raw
        tcp = tcp or tcp_raw is not None
        self.errors: list[BaseException] = []
        self.host = host
        self.udp, self.tcp = _bind_pair(host, tcp=tcp)
        self.port: int = self.udp.getsockname()[1]
        self.queries: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True)]
        if self.tcp is not None:
            self._threads.append(threading.Thread(target=self._serve_tcp, daemon=True))
        for thread in self._threads:
            thread.start()

    @property
    def server(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        question = query.question[0]
        self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype), transport))
        try:
            reply = (self.tcp_handler if transport == "tcp" else self.handler)(query)
            if isinstance(reply, dns.message.Message):
                return reply.to_wire(max_size=65535)
        except Exception as exc:
            self.errors.append(exc)
            return None
        return reply

    def _serve_udp(self) -> None:
        self.udp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._answer(wire, "udp")
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self.tcp is not None
        self.tcp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                if self.tcp_raw is not None:
                    self.tcp_raw(conn, self._stop)
                    continue
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", _read(conn, 2))[0]
                    reply = self._answer(_read(conn, size), "tcp")
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, EOFError, struct.error):
                    continue

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        if self.errors:
            raise RuntimeError(f"the fake nameserver's handler failed: {self.errors[0]!r}") from self.errors[0]

    def __enter__(self) -> FakeNameserver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def reply_to(query: dns.message.Message, *, rcode: int = 0, flags: int = 0) -> dns.message.Message:
    """An empty response to ``query`` with ``rcode``, to which a handler adds records."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    response.flags |= flags
    return response

"""A minimal MQTT 3.1.1 publisher connection: CONNECT with a persistent session, QoS 2 PUBLISH
with packet ids the caller chooses, PUBREL, PINGREQ, DISCONNECT.

paho-mqtt picks packet ids itself and keeps its QoS 2 state in memory, so a process killed
between PUBLISH and PUBCOMP cannot resume the exchange; with this connection the caller
persists each message's packet id and phase (``daemon.sinks.mqtt_exact``) and, after a restart,
resends the same PUBLISH (DUP set) or only the PUBREL: the broker, holding the session's
QoS 2 state, delivers the message once.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 5, 6, 7
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
_REFUSED = {1: "unacceptable protocol version", 2: "client id rejected",
            3: "server unavailable", 4: "bad user name or password", 5: "not authorized"}


class WireError(OSError):
    """The connection failed or the broker broke the protocol (the caller reconnects)."""


def _string(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def _remaining_length(size: int) -> bytes:
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        out.append(digit | (0x80 if size else 0))
        if not size:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, keepalive_s: int, username: str | None,
                   password: str | None) -> bytes:
    flags = 0  # clean session 0: the broker keeps our QoS 2 state across connections
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    return packet(CONNECT, 0, _string("MQTT") + bytes([4, flags])
                  + struct.pack("!H", keepalive_s) + payload)


def publish_packet(topic: str, payload: bytes, packet_id: int, dup: bool) -> bytes:
    return packet(PUBLISH, (0x08 if dup else 0) | 0x04,  # QoS 2, not retained
                  _string(topic) + struct.pack("!H", packet_id) + payload)


def pubrel_packet(packet_id: int) -> bytes:
    return packet(PUBREL, 0x02, struct.pack("!H", packet_id))


class Connection:
    """One connection to the broker; every method raises :class:`WireError` on failure."""

    def __init__(self, host: str, port: int, tls: bool, timeout_s: float) -> None:
        self.host, self.port, self.tls, self.timeout_s = host, port, tls, timeout_s
        self.sock: socket.socket | None = None
        self.last_sent = time.monotonic()
        self._buffer = b""

    def open(self, client_id: str, keepalive_s: int, username: str | None,
             password: str | None) -> bool:
        """Connect and log in; returns whether the broker still had our session."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise WireError(f"cannot connect to {self.host}:{self.port}: "
                            f"{exc.strerror or exc}") from None
        self.sock = sock
        self.send(connect_packet(client_id, keepalive_s, username, password))
        kind, _, body = self.read(self.timeout_s)
        if kind != CONNACK or len(body) != 2:
            raise WireError(f"broker answered CONNECT with packet type {kind}")
        if body[1]:
            raise WireError(f"broker refused the connection: "
                            f"{_REFUSED.get(body[1], f'code {body[1]}')}")
        return bool(body[0] & 1)

    def send(self, data: bytes) -> None:
        if self.sock is None:
            raise WireError("not connected")
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            raise WireError(f"send failed: {exc.strerror or exc}") from None
        self.last_sent = time.monotonic()

    def read(self, timeout_s: float) -> tuple[int, int, bytes]:
        """The next packet: ``(type, flags, body)``."""
        deadline = time.monotonic() + timeout_s
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            self._receive(deadline)

    def _parse(self) -> tuple[int, int, bytes] | None:
        data, size, shift, index = self._buffer, 0, 0, 1
        while True:
            if index >= len(data):
                return None
            digit = data[index]
            size |= (digit & 0x7F) << shift
            index += 1
            if not digit & 0x80:
                break
            shift += 7
            if shift > 21:
                raise WireError("malformed remaining length from the broker")
        if len(data) < index + size:
            return None
        self._buffer = data[index + size:]
        return data[0] >> 4, data[0] & 0x0F, data[index:index + size]

    def _receive(self, deadline: float) -> None:
        if self.sock is None:
            raise WireError("not connected")
        left = deadline - time.monotonic()
        if left <= 0:
            self.close()
            raise WireError("no answer from the broker in time")
        try:
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
        except TimeoutError:
            self.close()
            raise WireError("no answer from the broker in time") from None
        except OSError as exc:
            self.close()
            raise WireError(f"receive failed: {exc.strerror or exc}") from None
        if not chunk:
            self.close()
            raise WireError("the broker closed the connection")
        self._buffer += chunk

    def ping(self) -> None:
        self.send(packet(PINGREQ, 0, b""))
        while self.read(self.timeout_s)[0] != PINGRESP:
            pass

    def close(self, polite: bool = False) -> None:
        sock, self.sock = self.sock, None
        self._buffer = b""
        if sock is None:
            return
        try:
            if polite:
                sock.sendall(packet(DISCONNECT, 0, b""))
            sock.close()
        except OSError:
            pass

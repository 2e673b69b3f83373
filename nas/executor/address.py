"""The Ray cluster a command joins (`--address`, or $RAY_ADDRESS), checked before anything starts.

Ray takes a malformed address apart with a traceback, and retries an address where nothing answers for many
minutes; a search should say so at once. Only the syntax and a TCP connection are checked here (no Ray import):
that the far end is Ray is Ray's to find out.
"""
import re
import socket

from vitnas.errors import UserError

# auto: the cluster `ray start` left on this machine; local: a fresh local Ray; HOST:PORT: a head's GCS port (6379);
# ray://HOST[:PORT]: a Ray Client server (10001)
_ADDRESS = re.compile(r"(?P<client>ray://)?(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
                      r"(?::(?P<port>[0-9]{1,5}))?")
RAY_CLIENT_PORT = 10001
CONNECT_SECONDS = 5.0


def check_address(address: str, option: str = "--address") -> str:
    """`address` when it is well formed and, for HOST:PORT and ray://HOST[:PORT], something answers there within
    CONNECT_SECONDS; else a one-line UserError saying what to give."""
    if address in ("auto", "local"):
        return address
    match = _ADDRESS.fullmatch(address)
    port = None if match is None else match["port"] or (RAY_CLIENT_PORT if match["client"] else None)
    if match is None or port is None or not 0 < int(port) < 65536:
        raise UserError(f"{option}: got {address[:80]!r}; give auto, HOST:PORT of a Ray head (e.g. 10.0.0.5:6379) "
                        "or ray://HOST:10001")
    host = match["host"].strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        reason = err.strerror or str(err) or "timed out"
        raise UserError(f"{option} {address}: nothing answers at {host}:{port} ({reason}); start the Ray head there "
                        "(`ray start --head`) or correct the address") from None
    return address

"""clamd for development and tests: its own config file under the state directory, the EICAR
signature database shipped with the package (production points ``clamav_database_dir`` at
freshclam's databases), started by ``taskstream infra up`` and by the test fixtures."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DATABASE_DIR = PACKAGE_DIR / "database"
CONFIG_TEMPLATE = PACKAGE_DIR / "clamd.conf.template"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
INSTALL_HINT = (
    "ClamAV's daemon is not installed: apt-get install -y clamav-daemon (as root; `make clamav` "
    "does), or point TASKSTREAM_ATTACHMENTS__CLAMD_ADDRESS at a running clamd"
)
# clamd refuses limits of 4 GiB and more.
_LIMIT_MAX = 4000 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClamdAddress:
    """A parsed ``tcp://host:port`` or ``unix:///path``."""

    host: str | None
    port: int | None
    socket_path: Path | None

    @classmethod
    def parse(cls, address: str) -> ClamdAddress:
        url = urlsplit(address)
        if url.scheme == "tcp" and url.hostname and url.port:
            return cls(url.hostname, url.port, None)
        if url.scheme == "unix" and url.path:
            return cls(None, None, Path(unquote(url.path)))
        raise ValueError(f"clamd address must be tcp://host:port or unix:///path: {address!r}")

    @property
    def display(self) -> str:
        return str(self.socket_path) if self.socket_path else f"{self.host}:{self.port}"


def clamd_binary() -> str | None:
    """The clamd executable (Debian installs it in /usr/sbin, off a normal user's PATH)."""
    return shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")


def render_config(
    address: ClamdAddress,
    *,
    database_dir: Path,
    temporary_dir: Path,
    stream_max_bytes: int,
) -> str:
    """The clamd.conf text for one clamd listening on ``address``."""
    if address.socket_path is not None:
        listen = f"LocalSocket {address.socket_path}\nLocalSocketMode 660"
    else:
        listen = f"TCPSocket {address.port}\nTCPAddr {address.host}"
    stream_max = min(stream_max_bytes, _LIMIT_MAX)
    return CONFIG_TEMPLATE.read_text().format(
        database_dir=database_dir,
        temporary_dir=temporary_dir,
        listen=listen,
        stream_max_bytes=stream_max,
        scan_max_bytes=min(max(4 * stream_max, 400 * 1024 * 1024), _LIMIT_MAX),
    )


def write_config(
    address: ClamdAddress,
    *,
    directory: Path,
    database_dir: Path | None,
    max_upload_bytes: int,
) -> Path:
    """Write ``clamd.conf`` (and its temporary directory) into ``directory``; its path.

    The stream limit is the upload limit plus a margin, so every accepted upload is scanned
    whole."""
    temporary = directory / "tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    config = directory / "clamd.conf"
    config.write_text(
        render_config(
            address,
            database_dir=database_dir or SHIPPED_DATABASE_DIR,
            temporary_dir=temporary,
            stream_max_bytes=max_upload_bytes + 1024 * 1024,
        )
    )
    return config

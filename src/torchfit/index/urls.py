"""Index URLs: the default index, which URLs may be fetched, and mirror rebasing."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from torchfit.errors import TorchfitError, UsageError

if TYPE_CHECKING:
    from torchfit.index.pages import Link

DEFAULT_INDEX = "https://download.pytorch.org/whl"
#: Seconds to wait for a connection, and then for each read (pip's ``--timeout`` default).
DEFAULT_TIMEOUT = 15.0
# PyTorch's pages name files on these hosts outright, whatever host served the page.
UPSTREAM_PREFIXES = ("https://download.pytorch.org/whl", "https://download-r2.pytorch.org/whl")


def check_url(
    url: str,
    trusted_hosts: Iterable[str] = (),
    *,
    error: type[TorchfitError] = UsageError,
    typed: bool = False,
) -> None:
    """Refuse anything but https://, and plain http:// unless the host is loopback or trusted
    (pip's --trusted-host: a host, or host:port). ``error`` is what a refusal raises.

    ``typed``: the user wrote it (--pytorch-index), so a control character in it is a typo
    to say at once; in a page's link it is the page's, shown escaped and asked as it is.
    """
    if typed and any(ord(c) < 32 or ord(c) == 127 for c in url):  # urlsplit keeps some
        raise error(f"invalid URL {url!r}: it holds a control character")
    try:
        parts = urlsplit(url)
        host, netloc = parts.hostname or "", parts.netloc
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise error(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise error(f"not an http(s) URL with a host: {url!r}", hint="use an https:// URL")
    if parts.scheme == "https" or host == "localhost" or {host, netloc} & set(trusted_hosts):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise error(
        f"refusing plain http:// for {host}: {url}",
        hint=f"use https://, or pass --trusted-host {host} if you trust this network",
    )


def rebase(link: Link, base: str) -> Link:
    """Point an upstream link at the mirror ``base`` (same path below ``/whl``)."""
    for prefix in UPSTREAM_PREFIXES:
        if link.url.startswith(prefix + "/"):
            return dataclasses.replace(link, url=base + link.url[len(prefix) :])
    return link

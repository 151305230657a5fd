"""Probe: what interpreter and platform this is, for choosing wheel tags.

Runs in the target interpreter (any Python 3.6+), standard library only.
"""

import json
import platform
import sys
import sysconfig
from typing import Any, Dict


def interpreter_facts() -> Dict[str, Any]:
    return {
        "version": list(sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "platform": sysconfig.get_platform(),
        "libc": list(platform.libc_ver()),
        "mac": platform.mac_ver()[0],
        "machine": platform.machine(),
        "abiflags": getattr(sys, "abiflags", ""),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    }


if __name__ == "__main__":
    print(json.dumps(interpreter_facts()))

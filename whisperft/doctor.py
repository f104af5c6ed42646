"""``whisperft doctor``: what this machine has for each stage, and what is missing, in one report.

Every check is read-only and quick: versions from package metadata, tools from PATH, disk from
``statvfs``, the Hub with one HEAD request and a short timeout (skipped in offline mode).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from whisperft import __version__
from whisperft.extras import EXTRAS, install_command
from whisperft.hub import PROBE_TIMEOUT_S, endpoint, offline_mode, probe
from whisperft.io import cache_dir
from whisperft.models.bundled import BUNDLES

HUB_TIMEOUT_S = PROBE_TIMEOUT_S
TOOLS = {  # tool -> (version flag, what needs it)
    "ffmpeg": ("-version", "decoding audio soundfile cannot read (m4a, opus, webm...)"),
    "espeak-ng": ("--version", "make demo, the test suite, export's parity clips"),
    "sox": ("--version", "the test suite and benchmarks"),
}
LOW_DISK_GB = 20.0  # a Common Voice language's features and a few checkpoints


@dataclass
class Check:
    name: str
    status: str  # "ok", "missing", "warn" or "info"
    detail: str


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_checks() -> list[Check]:
    """torch's version and build, and each CUDA device with its memory."""
    import torch  # deferred: slow to import, and only this check needs it

    out = [Check("torch", "ok", f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'})")]
    if not torch.cuda.is_available():
        out.append(Check("cuda", "info", "no CUDA device: every stage runs on the CPU, training slowly"))
        return out
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        out.append(Check(f"cuda:{i}", "ok", f"{props.name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)"))
    return out


def tool_checks() -> list[Check]:
    out = []
    for tool, (flag, need) in TOOLS.items():
        path = shutil.which(tool)
        if path is None:
            out.append(Check(tool, "missing", f"not on PATH; needed for {need}"))
            continue
        try:
            proc = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
            first = (proc.stdout or proc.stderr).strip().splitlines()
            out.append(Check(tool, "ok", first[0].split(" Copyright")[0][:60] if first else path))
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(Check(tool, "warn", f"{path} does not run: {exc}"))
    return out


def disk_checks(folders: list[Path]) -> list[Check]:
    out = []
    for folder in folders:
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 1e9
        status = "ok" if free >= LOW_DISK_GB else "warn"
        out.append(Check(f"disk {folder}", status, f"{free:.1f} GB free"))
    return out


def hub_check(timeout: float = HUB_TIMEOUT_S) -> Check:
    """One HEAD request to the Hub (``HF_ENDPOINT`` honoured); skipped when offline mode is set."""
    if offline_mode():
        return Check("hub", "info", "offline mode (HF_HUB_OFFLINE): models and data come from local files only")
    reason = probe(timeout)
    if reason is None:
        return Check("hub", "ok", f"{endpoint()} reachable")
    return Check(
        "hub",
        "warn",
        f"{endpoint()} unreachable ({reason}); use bundled:NAME and local data, or set HF_ENDPOINT to a mirror",
    )


def package_checks() -> list[Check]:
    """Bundled weights (the ``bundled`` extra) and the optional libraries, each with what it enables."""
    out = []
    for name, bundle in BUNDLES.items():
        dists = sorted({d for d, _ in bundle.parts})
        missing = [d for d in dists if _version(d) is None]
        if missing:
            out.append(Check(f"bundled:{name}", "missing", f"{install_command('bundled')} ({', '.join(missing)})"))
        else:
            out.append(Check(f"bundled:{name}", "ok", ", ".join(f"{d} {_version(d)}" for d in dists)))
    for module, (dist, extra, enables) in EXTRAS.items():
        version = _version(dist) if importlib.util.find_spec(module) else None
        hint = install_command(extra)
        status, detail = ("ok", f"{version}: {enables}") if version else ("missing", f"{hint} for {enables}")
        out.append(Check(dist, status, detail))
    return out


def run_checks(hub_timeout: float = HUB_TIMEOUT_S) -> list[Check]:
    """Every check, in the order a user reads them."""
    head = [Check("whisperft", "ok", f"{__version__} on Python {platform.python_version()} ({platform.machine()})")]
    disks = disk_checks([Path.cwd(), cache_dir()])
    return head + torch_checks() + tool_checks() + disks + [hub_check(hub_timeout)] + package_checks()

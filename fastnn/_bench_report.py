"""What ``python -m fastnn bench`` reports besides the times: the machine and the
tables.

:func:`machine_info` describes the machine and the thread pools, :func:`format_table`
lays the measured times out. :mod:`fastnn.bench` re-exports them.
"""

import os
import platform
import sys
import time

import fastnn


def machine_info(threads, pinned):
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [
                ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model n")
            ]
        cpu = names[0] if names else cpu
    versions = {"python": platform.python_version(), "fastnn": fastnn.__version__}
    for name in ("numpy", "numba", "scipy", "torch", "jax", "onnxruntime"):
        mod = sys.modules.get(name)
        versions[name] = getattr(mod, "__version__", None) if mod else None
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "threads": threads,
        "cpu_affinity": pinned["cpus"],
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
        "thread_pools": [
            {
                k: p.get(k)
                for k in ("internal_api", "version", "num_threads", "filepath")
            }
            for p in pinned["pools"]
        ],
    }


# -- report ------------------------------------------------------------------------


def _fmt(us, width=9):
    if us is None:
        return f"{'-':>{width}}"
    return f"{us:>{width}.{3 if us < 10 else 1 if us < 1e4 else 0}f}"


def format_table(results, dtype, meta, rounds):
    rows = [r for r in results if r["dtype"] == dtype]
    lines = [
        f"{dtype}, {meta['threads']} thread(s), median µs per step over {rounds} "
        f"rounds; (×) = peer / fastnn step; floor ratio = fastnn step / floor",
        f"{'case':<9}{'fastnn':>10}{'kernel':>10}{'numpy':>19}{'torch':>19}"
        f"{'jax':>19}{'floor':>19}{'fit':>10}",
    ]
    for r in rows:
        us, st = r["us_per_step"], r["status"]
        cells = [
            f"{r['case']:<9}",
            _fmt(us.get("fastnn"), 10),
            _fmt(us.get("kernel"), 10),
        ]
        for peer in ("numpy", "torch", "jax"):
            if peer in us:
                cells.append(f"{_fmt(us[peer], 10)} ({us[peer] / us['fastnn']:5.1f}×)")
            else:
                cells.append(f"{st.get(peer, '-')[:18]:>19}")
        if "floor" in us:
            cells.append(
                f"{_fmt(us['floor'], 10)} ({us['fastnn'] / us['floor']:5.2f}×)"
            )
        else:
            cells.append(f"{'-':>19}")
        fit = st.get("fit", "-")
        cells.append(_fmt(us["fit"], 10) if "fit" in us else f"{fit[:9]:>10}")
        lines.append("".join(cells))
    return "\n".join(lines)

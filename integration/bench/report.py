"""What the bench report scripts share: the machine and commit a report names, and replacing
one marked section of docs/benchmarks.md."""

import os
import subprocess


def machine():
    """CPU count and model, and RAM, of this machine."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM"


def _git(*cmd):
    try:
        return subprocess.run(["git", *cmd], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def revision():
    """The short commit, marked when the code under crates/ has uncommitted changes."""
    rev = _git("rev-parse", "--short", "HEAD").strip() or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no", "--", "crates").strip():
        rev += " (with uncommitted changes under crates/)"
    return rev


def write_section(doc, block, start_mark, end_mark):
    """Puts `block` (which starts with `start_mark` and ends with `end_mark`) in place of the
    section between those markers in `doc`, or appends it when the markers are missing."""
    try:
        with open(doc) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end > start:
        rest = text[end + len(end_mark) :].lstrip("\n")
        text = text[:start] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(doc, "w") as f:
        f.write(text)


def cluster_env(script, *args):
    """`up`, then the `export` lines of `env`, of integration/<script> (cluster.sh or galera.sh);
    `args` (e.g. "--name", "bench") are passed to both."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), script)
    subprocess.run(["bash", path, "up", *args], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    out = subprocess.run(["bash", path, "env", *args], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v
    return env


def percentile(values, p):
    """The p-th percentile (nearest rank) of `values`."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

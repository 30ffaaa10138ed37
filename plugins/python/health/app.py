"""health, in Python: every minute (see extension.toml), samples the
machine's CPU use, memory, load and disk I/O from /proc and posts them as
JSON to the `endpoint` setting, with the protected setting `key` as its
bearer token. `invoke sample` does one sample on demand and returns what
it posted. The same measurements as the Rust sample (plugins/health):
CPU use and disk rates are deltas since the previous sample, whose
counters are kept in the key-value store.
"""

import json
import time

import tether_sdk as tether

PREVIOUS = "previous"


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        raise tether.Error(
            "unavailable",
            f"{path} is not readable: the operator grants it with extensions.files.allowed",
        )


def cpu(stat):
    """(all time, idle + iowait) from the aggregate `cpu` line, in ticks."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            fields = [int(f) for f in line.split()[1:]]
            return sum(fields[:8]), fields[3] + (fields[4] if len(fields) > 4 else 0)
    return 0, 0


def is_whole_disk(name):
    if name.startswith(("loop", "ram", "dm-")):
        return False
    if name.startswith("nvme"):
        return "p" not in name[4:]
    return not name[-1:].isdigit()


def disks(diskstats):
    """Sectors read and written by whole disks."""
    read_sectors = written = 0
    for line in diskstats.splitlines():
        f = line.split()
        if len(f) > 9 and is_whole_disk(f[2]):
            read_sectors += int(f[5])
            written += int(f[9])
    return read_sectors, written


def meminfo(text):
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        value = rest.split()
        if value:
            fields[key] = int(value[0])
    return fields.get("MemTotal", 0), fields.get("MemAvailable", 0)


def counters():
    total, idle = cpu(read("/proc/stat"))
    sectors_read, sectors_written = disks(read("/proc/diskstats"))
    return {"cpuTotal": total, "cpuIdle": idle, "sectorsRead": sectors_read,
            "sectorsWritten": sectors_written}


def sample():
    endpoint = tether.settings.get("endpoint")
    if not endpoint:
        raise tether.Error("invalid-argument", "the `endpoint` setting (the metrics URL) is required")
    key = tether.protected_settings.get("key")
    now = int(time.time())
    current = counters()
    uptime = int(float(read("/proc/uptime").split()[0]))
    previous = json.loads(tether.kv.get(PREVIOUS, "null"))
    if not previous or previous["cpuTotal"] > current["cpuTotal"] or previous["time"] >= now:
        previous = {"time": 0, "cpuTotal": 0, "cpuIdle": 0, "sectorsRead": 0, "sectorsWritten": 0}
    tether.kv[PREVIOUS] = json.dumps({"time": now, **current})
    total = current["cpuTotal"] - previous["cpuTotal"]
    idle = max(0, current["cpuIdle"] - previous["cpuIdle"])
    cpu_percent = 0.0 if total == 0 else 100.0 * (total - min(idle, total)) / total
    seconds = max(uptime, 1) if previous["time"] == 0 else now - previous["time"]
    rate = lambda k: max(0, current[k] - previous[k]) * 512.0 / seconds
    mem_total, mem_available = meminfo(read("/proc/meminfo"))
    used = 0.0 if mem_total == 0 else 100.0 * (mem_total - min(mem_available, mem_total)) / mem_total
    load = [float(v) for v in read("/proc/loadavg").split()[:3]]
    machine = tether.machine()
    body = {
        "resourceId": machine["resourceId"],
        "name": machine["name"],
        "time": now,
        "cpuPercent": cpu_percent,
        "memory": {"totalKib": mem_total, "availableKib": mem_available, "usedPercent": used},
        "load": load,
        "disk": {"readBytesPerSecond": rate("sectorsRead"),
                 "writtenBytesPerSecond": rate("sectorsWritten")},
        "uptimeSeconds": uptime,
    }
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = tether.http.post(endpoint, body, headers)
    if not 200 <= response.status < 300:
        why = f"the metrics endpoint answered {response.status}"
        tether.status.warning(why)
        raise tether.Error("unavailable", why)
    since = now - previous["time"] if previous["time"] else uptime
    tether.status.success(f"CPU {cpu_percent:.1f}%, memory {used:.1f}%, load {load[0]:.2f} (over {since} s)")
    return json.dumps(body)


class Lifecycle(tether.Extension):
    @tether.command("sample")
    def sample(self, args):
        return sample()

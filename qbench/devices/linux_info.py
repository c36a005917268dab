"""What a Linux-like board says about itself, in one round trip.

`INFO_SCRIPT` / `THERMAL_SCRIPT` are constant POSIX sh scripts (dash, bash, busybox ash, Android's
mksh) that print facts from /proc and /sys as tagged sections:

    @@qbench <section>
    <raw lines>

The parsers below turn that text into `DeviceInfo` / a thermal dict without touching the device, so
they are tested on captured real output. A missing file just leaves its section empty.
"""

from __future__ import annotations

import re
import shlex

from qbench.devices.base import DeviceInfo

_TAG = "@@qbench "

_THERMAL_PART = r"""
printf '\n@@qbench thermal\n'
for z in /sys/class/thermal/thermal_zone[0-9]*; do
  [ -r "$z/temp" ] || continue
  t=$(cat "$z/temp" 2>/dev/null) || continue
  printf '%s\t%s\t%s\n' "${z##*/}" "$(cat "$z/type" 2>/dev/null)" "$t"
done
"""

# /proc/device-tree/model ends in a NUL, compatible is NUL-separated: tr makes them text.
INFO_SCRIPT = r"""
sec() { printf '\n@@qbench %s\n' "$1"; }
sec arch; uname -m 2>/dev/null
sec kernel; uname -r 2>/dev/null
sec model
for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
  if [ -r "$f" ]; then tr -d '\000' < "$f"; echo; break; fi
done
sec compatible
for f in /proc/device-tree/compatible /sys/firmware/devicetree/base/compatible; do
  if [ -r "$f" ]; then tr '\000' '\n' < "$f"; break; fi
done
sec dmi
for f in sys_vendor product_name; do
  [ -r "/sys/class/dmi/id/$f" ] && printf '%s=%s\n' "$f" "$(cat "/sys/class/dmi/id/$f" 2>/dev/null)"
done
sec os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
sec meminfo; grep '^MemTotal:' /proc/meminfo 2>/dev/null
sec nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
sec cpuinfo; cat /proc/cpuinfo 2>/dev/null
sec cpufreq
for d in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$d" ] || continue
  m=$(cat "$d/cpufreq/cpuinfo_max_freq" 2>/dev/null)
  g=$(cat "$d/cpufreq/scaling_governor" 2>/dev/null)
  printf '%s\t%s\t%s\n' "${d##*/}" "${m:--}" "${g:--}"
done
""" + _THERMAL_PART

THERMAL_SCRIPT = _THERMAL_PART


def split_sections(text: str) -> dict[str, str]:
    """Tagged script output -> {section: body}; text before the first tag is ignored."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_TAG):
            current = sections.setdefault(line[len(_TAG):].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v).strip("\n") for k, v in sections.items()}


def parse_cpuinfo(text: str) -> tuple[int, dict[str, str]]:
    """(number of `processor` entries, the first value of every other key)."""
    cores = 0
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        # 32-bit ARM kernels also have a capitalised "Processor : ARMv7 ..." line: not a CPU entry.
        if key == "processor" and value.isdigit():
            cores += 1
        else:
            fields.setdefault(key, value)
    return cores, fields


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key.strip()):
            continue
        try:  # values follow shell quoting rules ("...", '...', backslash escapes)
            words = shlex.split(raw, comments=False)
        except ValueError:
            words = [raw.strip("\"'")]
        out[key.strip()] = " ".join(words)
    return out


def parse_meminfo_total(text: str) -> int | None:
    m = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def parse_cpufreq(text: str) -> tuple[list[int], str | None]:
    """`cpuN<TAB>max_khz<TAB>governor` lines -> (max kHz per CPU in CPU order, governor(s))."""
    rows: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and re.fullmatch(r"cpu\d+", parts[0]):
            rows.append((int(parts[0][3:]), parts[1].strip(), parts[2].strip()))
    rows.sort()
    freqs = [int(m) for _, m, _ in rows if m.isdigit()]
    governors = list(dict.fromkeys(g for _, _, g in rows if g and g != "-"))
    return freqs, (",".join(governors) or None)


def millidegrees_to_celsius(raw: str) -> float | None:
    """Kernel thermal zones report millidegrees; a few drivers report whole degrees.

    Values with |v| < 200 are taken as degrees already (0.2 °C in millidegrees is implausible on
    a running board); results outside -60..200 °C are sensor errors (e.g. -274000) and dropped.
    """
    try:
        v = int(raw.strip())
    except ValueError:
        return None
    c = float(v) if abs(v) < 200 else v / 1000.0
    return c if -60.0 <= c <= 200.0 else None


def parse_thermal(text: str) -> dict[str, float]:
    """Script output (whole, or just the thermal section) -> {zone type: °C}.

    Zones are named by their `type` (e.g. "cpu-thermal"); a type shared by several zones is
    suffixed with the zone ("cpu/thermal_zone3") so no reading is silently overwritten.
    """
    body = split_sections(text).get("thermal", text if _TAG not in text else "")
    rows: list[tuple[str, str, float]] = []
    for line in body.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].startswith("thermal_zone"):
            continue
        celsius = millidegrees_to_celsius(parts[2])
        if celsius is not None:
            rows.append((parts[0], parts[1].strip() or parts[0], celsius))
    rows.sort(key=lambda r: int(r[0][len("thermal_zone"):] or 0))
    counts: dict[str, int] = {}
    for _, kind, _ in rows:
        counts[kind] = counts.get(kind, 0) + 1
    return {(kind if counts[kind] == 1 else f"{kind}/{zone}"): c for zone, kind, c in rows}


def parse_info(text: str, name: str, transport: str) -> DeviceInfo:
    s = split_sections(text)
    cores, cpu = parse_cpuinfo(s.get("cpuinfo", ""))
    freqs, governor = parse_cpufreq(s.get("cpufreq", ""))
    osr = parse_os_release(s.get("os-release", ""))
    compatible = [c for c in s.get("compatible", "").splitlines() if c.strip()]
    dmi = dict(ln.split("=", 1) for ln in s.get("dmi", "").splitlines() if "=" in ln)

    # Model: the device tree names boards exactly ("Raspberry Pi 5 Model B Rev 1.0"); PCs use DMI.
    dmi_model = " ".join(dmi[k].strip() for k in ("sys_vendor", "product_name") if dmi.get(k, "").strip())
    model = s.get("model", "").strip() or cpu.get("Model") or dmi_model or None
    # SoC: the last device-tree compatible is the SoC ("brcm,bcm2712"); cpuinfo's "Hardware" says
    # BCM2835 on every Pi since kernel 4.9, so it is only a fallback; PCs name the CPU instead.
    soc = (compatible[-1] if compatible else None) or cpu.get("Hardware") or cpu.get("model name")

    if not cores:
        cores = len(s.get("cpufreq", "").splitlines()) or None
    if not cores and s.get("nproc", "").strip().isdigit():
        cores = int(s["nproc"].strip())
    os_name = osr.get("PRETTY_NAME") or " ".join(filter(None, [osr.get("NAME"), osr.get("VERSION_ID")]))

    extra: dict = {}
    if s.get("kernel"):
        extra["kernel"] = s["kernel"].strip()
    if compatible:
        extra["compatible"] = compatible
    parts = sorted({ln.split(":", 1)[1].strip() for ln in s.get("cpuinfo", "").splitlines()
                    if ln.split(":", 1)[0].strip() == "CPU part"})
    if parts:
        extra["cpu_parts"] = parts  # ARM core ids, e.g. 0xd0b = Cortex-A76; several = big.LITTLE
    if cpu.get("Revision"):
        extra["revision"] = cpu["Revision"]
    if s.get("nproc", "").strip().isdigit():
        extra["online_cpus"] = int(s["nproc"].strip())

    return DeviceInfo(
        name=name,
        transport=transport,
        model=model,
        soc=soc,
        abi=s.get("arch", "").strip() or None,
        os=os_name or None,
        cores=cores,
        max_freq_khz=freqs,
        governor=governor,
        ram_bytes=parse_meminfo_total(s.get("meminfo", "")),
        extra=extra,
    )

"""linux_info: the one-round-trip script and its parser, on captured real output."""

from __future__ import annotations

import platform
import shutil
import subprocess

import pytest

from qbench.devices.linux_info import (
    INFO_SCRIPT,
    THERMAL_SCRIPT,
    millidegrees_to_celsius,
    parse_info,
    parse_thermal,
    split_sections,
)

# Raspberry Pi 5, in the script's output format. Verbatim pieces, by section:
# - cpuinfo: `cat /proc/cpuinfo` posted in github.com/raspberrypi/bookworm-feedback/issues/129
#   (Pi 5 Model B Rev 1.0, revision d04170; the same text is in hrw/arm-socs-table#96).
# - os-release / kernel: raspinfo output in github.com/raspberrypi/linux/issues/5876.
# - compatible: the BCM2712 board binding in the kernel's devicetree/bindings/arm/bcm/bcm2835.yaml
#   ("raspberrypi,5-model-b", "brcm,bcm2712").
# - cpufreq max 2400000 kHz: scaling_available_frequencies in raspberrypi/linux#5876.
# Assembled in the real formats (values illustrative): meminfo (4 GB board), governor, thermal
# (zone type "cpu-thermal" is the bcm2712.dtsi thermal-zone node; 52.1 °C as in MichaIng/DietPi#6891).
PI5_CAPTURE = """
@@qbench arch
aarch64

@@qbench kernel
6.1.0-rpi7-rpi-2712

@@qbench model
Raspberry Pi 5 Model B Rev 1.0

@@qbench compatible
raspberrypi,5-model-b
brcm,bcm2712

@@qbench dmi

@@qbench os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"

@@qbench meminfo
MemTotal:        4136380 kB

@@qbench nproc
4

@@qbench cpuinfo
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

processor	: 1
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

processor	: 2
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

processor	: 3
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

Hardware	: BCM2835
Revision	: d04170
Serial		: ee14f78c1312ce93
Model		: Raspberry Pi 5 Model B Rev 1.0

@@qbench cpufreq
cpu0	2400000	ondemand
cpu1	2400000	ondemand
cpu2	2400000	ondemand
cpu3	2400000	ondemand

@@qbench thermal
thermal_zone0	cpu-thermal	52100
"""

# This machine (an x86_64 Debian 12 container, no cpufreq, no thermal zones, no device tree):
# INFO_SCRIPT's real output, captured with `dash` while writing this test.
HOST_CAPTURE = """
@@qbench arch
x86_64

@@qbench kernel
6.18.44-fc-v782

@@qbench model

@@qbench compatible

@@qbench dmi

@@qbench os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"

@@qbench meminfo
MemTotal:       24683656 kB

@@qbench nproc
2

@@qbench cpuinfo
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 23
model		: 1
model name	: AMD EPYC
stepping	: 2
microcode	: 0x1000065
cpu MHz		: 1996.248
cache size	: 512 KB
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 2
apicid		: 0
initial apicid	: 0
fpu		: yes
fpu_exception	: yes
cpuid level	: 13
wp		: yes
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibpb vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 rdseed adx smap clflushopt sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr virt_ssbd arat
bugs		: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass retbleed smt_rsb srso div0 ibpb_no_ret spectre_v2_user
bogomips	: 3992.49
TLB size	: 2560 4K pages
clflush size	: 64
cache_alignment	: 64
address sizes	: 48 bits physical, 48 bits virtual
power management:

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 23
model		: 1
model name	: AMD EPYC
stepping	: 2
microcode	: 0x1000065
cpu MHz		: 1996.248
cache size	: 512 KB
physical id	: 0
siblings	: 2
core id		: 1
cpu cores	: 2
apicid		: 1
initial apicid	: 1
fpu		: yes
fpu_exception	: yes
cpuid level	: 13
wp		: yes
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibpb vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 rdseed adx smap clflushopt sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr virt_ssbd arat
bugs		: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass retbleed smt_rsb srso div0 ibpb_no_ret spectre_v2_user
bogomips	: 3992.49
TLB size	: 2560 4K pages
clflush size	: 64
cache_alignment	: 64
address sizes	: 48 bits physical, 48 bits virtual
power management:


@@qbench cpufreq
cpu0	-	-
cpu1	-	-

@@qbench thermal
"""

# Raspberry Pi 4 `cat /proc/cpuinfo` from github.com/nicolargo/glances/issues/2616 (no "Hardware"
# line on this kernel, but a "Model" line), alone: no device-tree section, nothing else.
PI4_CPUINFO_ONLY = """
@@qbench cpuinfo
processor       : 0
BogoMIPS        : 108.00
Features        : fp asimd evtstrm crc32 cpuid
CPU implementer : 0x41
CPU architecture: 8
CPU variant     : 0x0
CPU part        : 0xd08
CPU revision    : 3

processor       : 1
BogoMIPS        : 108.00
Features        : fp asimd evtstrm crc32 cpuid
CPU implementer : 0x41
CPU architecture: 8
CPU variant     : 0x0
CPU part        : 0xd08
CPU revision    : 3

Revision        : d03115
Serial          : xxxxxxxxxxxxxxxx
Model           : Raspberry Pi 4 Model B Rev 1.5
"""


def test_pi5_capture():
    info = parse_info(PI5_CAPTURE, "pi5", "ssh")
    assert info.name == "pi5" and info.transport == "ssh"
    assert info.model == "Raspberry Pi 5 Model B Rev 1.0"
    # cpuinfo's "Hardware: BCM2835" is a fixed string on every Pi; the device tree knows better.
    assert info.soc == "brcm,bcm2712"
    assert info.abi == "aarch64"
    assert info.os == "Debian GNU/Linux 12 (bookworm)"
    assert info.cores == 4
    assert info.max_freq_khz == [2400000] * 4
    assert info.governor == "ondemand"
    assert info.ram_bytes == 4136380 * 1024
    assert info.extra["cpu_parts"] == ["0xd0b"]  # Cortex-A76
    assert info.extra["revision"] == "d04170"
    assert info.extra["kernel"] == "6.1.0-rpi7-rpi-2712"
    assert parse_thermal(PI5_CAPTURE) == {"cpu-thermal": 52.1}


def test_host_capture():
    info = parse_info(HOST_CAPTURE, "host", "ssh")
    assert info.model is None  # no device tree, no DMI in this container
    assert info.soc == "AMD EPYC"
    assert info.abi == "x86_64"
    assert info.os == "Debian GNU/Linux 12 (bookworm)"
    assert info.cores == 2
    assert info.max_freq_khz == [] and info.governor is None
    assert info.ram_bytes == 24683656 * 1024
    assert parse_thermal(HOST_CAPTURE) == {}


def test_pi4_cpuinfo_only_falls_back_to_cpuinfo_model():
    info = parse_info(PI4_CPUINFO_ONLY, "pi4", "ssh")
    assert info.model == "Raspberry Pi 4 Model B Rev 1.5"
    assert info.cores == 2
    assert info.extra["cpu_parts"] == ["0xd08"]  # Cortex-A72
    assert info.soc is None and info.os is None and info.ram_bytes is None


def test_mixed_governors_and_offline_freqs():
    text = "@@qbench cpufreq\ncpu10\t2000000\tschedutil\ncpu2\t1800000\tschedutil\ncpu0\t-\tperformance\n"
    info = parse_info(text, "b", "ssh")
    assert info.max_freq_khz == [1800000, 2000000]  # CPU order, unreadable ones skipped
    assert info.governor == "performance,schedutil"
    assert info.cores == 3  # no cpuinfo: counted from the per-CPU lines


def test_thermal_units_duplicates_and_bad_sensors():
    text = (
        "@@qbench thermal\n"
        "thermal_zone0\tcpu\t45000\n"
        "thermal_zone10\tcpu\t47500\n"
        "thermal_zone2\tbattery\t31\n"  # a driver that reports whole degrees
        "thermal_zone3\tbroken\t-274000\n"  # an absent sensor
        "thermal_zone4\t\t40000\n"  # no type: named by the zone
        "thermal_zone5\tgpu\tn/a\n"
    )
    assert parse_thermal(text) == {
        "cpu/thermal_zone0": 45.0,
        "cpu/thermal_zone10": 47.5,
        "battery": 31.0,
        "thermal_zone4": 40.0,
    }
    assert millidegrees_to_celsius("-5000") == -5.0


def test_empty_and_garbage_text():
    info = parse_info("", "x", "ssh")
    assert (info.model, info.soc, info.cores, info.os, info.ram_bytes) == (None, None, None, None, None)
    assert parse_thermal("garbage\nmore garbage") == {}
    assert split_sections("noise\n@@qbench a\n1\n@@qbench b\n") == {"a": "1", "b": ""}


def test_os_release_quoting():
    text = "@@qbench os-release\nNAME='Alpine Linux'\nVERSION_ID=3.19.1\n"
    assert parse_info(text, "a", "ssh").os == "Alpine Linux 3.19.1"


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_scripts_run_here(shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    for script in (INFO_SCRIPT, THERMAL_SCRIPT):
        subprocess.run([shell, "-n", "-c", script], check=True, timeout=10)
    out = subprocess.run([shell, "-c", INFO_SCRIPT], capture_output=True, text=True, timeout=30, check=True)
    info = parse_info(out.stdout, "local", "ssh")
    assert info.cores and info.cores >= 1
    assert info.abi == platform.machine()
    assert info.ram_bytes and info.ram_bytes > 0
    assert info.os
    assert all(isinstance(v, float) for v in parse_thermal(out.stdout).values())

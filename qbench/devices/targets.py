"""The native runner's build targets (`qbench runner build --target`) and the device ABI each runs on.

Code names a target through these constants, never a literal; how each target is built is
runners/native_build.py, which transport picks one is devices/transports.py (`runner_target`).
Kept free of imports: the command line builds its `--target` choices from RUNNER_TARGETS at start.
"""

HOST_TARGET = "host"  # this machine, against the installed executorch wheel
LINUX_AARCH64 = "linux-aarch64"  # a Raspberry Pi or another arm64 Linux
ANDROID_ARM64 = "android-arm64-v8a"  # a phone
RUNNER_TARGETS = (HOST_TARGET, LINUX_AARCH64, ANDROID_ARM64)
ABI_TARGETS = {"arm64-v8a": ANDROID_ARM64, "aarch64": LINUX_AARCH64, "x86_64": HOST_TARGET}
ARM64_ABIS = ("arm64-v8a", "aarch64", "arm64")  # what an arm64 device reports as its ABI
ARM64_TARGETS = (LINUX_AARCH64, ANDROID_ARM64)  # builds that run only on an arm64 device (or under a launcher)

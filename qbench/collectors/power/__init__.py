"""Power and energy sources (android-battery, android-rails, rpi5-pmic, rapl, external, none).

How the device pipeline uses one (every snippet runs as `device.run(["sh", "-c", snippet])`):

    src = get_power_source("android-battery")            # unknown names list the choices
    probe = src.parse_probe(**run(src.probe_command()))   # .available, .reason, .warnings
    run(src.start_command(log))                           # background sampler on the device
    run(src.bracket_command(log, runner_cmd, idle_seconds=5))  # idle + run marks around the runner
    run(src.stop_command(log))
    result = measure(src.parse_log(pulled_text), inferences=n)  # PowerResult; .to_dict()

`inferences` must count every inference executed between the run marks (warm-up included when
the runner warms up inside them). Sources whose `where == "host"` (external) run on the host.
"""

from qbench.collectors.power.base import (  # noqa: F401
    IDLE_START,
    POWER_SOURCES,
    RUN_END,
    RUN_START,
    CounterReading,
    PowerError,
    PowerLog,
    PowerResult,
    PowerSample,
    PowerSource,
    ProbeResult,
    get_power_source,
)

# Importing a source module registers it.
from qbench.collectors.power import android_battery, android_rails, external, none, rapl, rpi_pmic  # noqa: E402,F401,I001
from qbench.collectors.power.energy import energy_from_samples, energy_per_inference, measure, window  # noqa: F401,E402
from qbench.collectors.power.rapl import read_rapl_host  # noqa: F401,E402

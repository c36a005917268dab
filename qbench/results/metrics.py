"""The one registry of a cell's figures: each metric says once where it is stored, how it is computed,
what its unit is, how it reads in a table, its key in the `--json` cell, how compare judges it and
its MLflow name (pyperf keeps its metadata this way). The store's columns (schema.py), a finished
cell's columns (columns.summary_columns), the `--json` cell (report/views.py), the cells tables
(report/table.py: terminal, HTML, Markdown, page), compare (report/compare.py) and the MLflow export
all read it.

Adding a metric: one entry here, and the code that computes its value (for a latency statistic,
`stats.summary_stats`). A column the store lacks is added when a store is opened for writing
(migrations.metric_columns); an old store read in place sees it as NULL.

Rendering is named, not imported (this module sits below qbench.report): `text` and `plain` are
(kind, *args) that report/table.py turns into a figure; see table.metric_text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY = "latency_ms"  # the --json cell's object holding the latency statistics
ENERGY = "energy"  # the --json cell's object holding the power trial's figures


@dataclass(frozen=True)
class Metric:
    column: str  # the cells column (and the MLflow metric name unless `mlflow` says otherwise)
    sql_type: str  # REAL | INTEGER
    unit: str  # ms, bytes, dB, fraction, mJ, W, count, ratio
    json: str  # its key in the --json cell, inside `json_in` when that is set
    json_in: str | None = None  # LATENCY / ENERGY: an object of the cell; None: top level
    stat: str | None = None  # the key of stats.summary_stats it stores; None: another stage fills it
    # rendering: `key` names its column in the cells tables (None: in no table); `after` places it in
    # each table that shows it: {"html": key of the column it follows, "summary"/"wide"/"markdown"/"page": ...}
    key: str | None = None
    label: str = ""
    group: str = ""
    hint: str = ""
    flat: str = ""  # the header in text tables (default: label)
    text: tuple = ()  # HTML text: ("ms",) ("bytes",) ("cv",) ("num", digits)
    plain: tuple | None = None  # text tables: ("ms",) ("cv",) ("fixed", digits, divisor); None: the HTML text
    after: dict = field(default_factory=dict)
    detail: bool = False  # hidden while its HTML group is folded
    # compare: "drop" (an accuracy figure: an absolute drop beyond limits[limit] flags it) or "growth"
    # (a relative growth beyond limits["growth"]); `gated`: False = shown by compare, never a regression
    compare: str | None = None
    compare_label: str = ""
    limit: str = ""
    gated: bool = True
    compare_order: int = 0  # where its flags read among compare's (accuracy first, then size)
    mlflow: str | None = None

    @property
    def mlflow_name(self) -> str:
        return self.mlflow or self.column

    def value(self, cell: dict):
        """The metric's value in a `--json` cell view (None: not measured)."""
        holder = cell.get(self.json_in) if self.json_in else cell
        return (holder or {}).get(self.json)


def _latency(stat: str, json: str, **kw) -> Metric:
    column = kw.pop("column", f"latency_{stat}_ms")
    return Metric(column, kw.pop("sql_type", "REAL"), kw.pop("unit", "ms"), json, LATENCY, stat, **kw)


def _ms_column(key: str, label: str, after: dict, **kw) -> dict:
    """A latency statistic's table column: ms in every table, in the Latency group."""
    return dict(key=key, label=label, group="Latency (ms)", flat=f"{label} ms", text=("ms",), plain=("ms",),
                after=after, **kw)


METRICS: list[Metric] = [
    # latency, from the raw samples of the trials used (stats.summary_stats)
    _latency("min", "min", **_ms_column("min", "min", {"html": "p99"}, detail=True)),
    _latency("median", "median", **_ms_column("median", "median", {
        "html": "status", "summary": "device", "wide": "device", "markdown": "status", "page": "status"},
        hint="median of all iterations of all trials")),
    _latency("mean", "mean", **_ms_column("mean", "mean", {"html": "min"}, detail=True)),
    _latency("std", "std"),
    _latency("p90", "p90", **_ms_column("p90", "p90", {
        "html": "median", "wide": "median", "markdown": "median", "page": "median"}, detail=True)),
    _latency("p95", "p95", **_ms_column("p95", "p95", {"html": "p90", "wide": "p90", "markdown": "p90"}, detail=True,
                                        hint="95th percentile of all iterations: the tail met once in 20 inferences"),
             compare="growth", compare_label="p95 latency", limit="growth", gated=False, compare_order=5),
    _latency("p99", "p99", **_ms_column("p99", "p99", {"html": "p95"}, detail=True)),
    _latency("cv", "cv", column="latency_cv", unit="ratio", key="cv", label="CV", group="Latency (ms)",
             hint="coefficient of variation, std / mean, in percent", text=("cv",), plain=("cv",), detail=True,
             after={"html": "mean", "wide": "p90", "markdown": "p90", "page": "p90"}),
    _latency("count", "samples", column="samples_count", sql_type="INTEGER", unit="count"),
    Metric("trials", "INTEGER", "count", "trials", LATENCY),  # the trials whose samples make the figures
    # startup (median over trials) and size / memory
    Metric("load_ms", "REAL", "ms", "load_ms"),
    Metric("method_init_ms", "REAL", "ms", "method_init_ms"),
    Metric("first_inference_ms", "REAL", "ms", "first_inference_ms", key="first", label="1st inf.",
           group="Startup (ms)", hint="first inference, cold (median over trials)", text=("ms",),
           after={"html": "load"}, detail=True),
    Metric("peak_rss_bytes", "INTEGER", "bytes", "peak_rss_bytes", key="rss", label="peak RSS",
           group="Size & memory", hint="largest peak resident set over trials", flat="RSS MiB", text=("bytes",),
           plain=("fixed", 1, 2**20), after={"html": "pte", "wide": "pte", "markdown": "pte"},
           compare="growth", compare_label="peak RSS", limit="growth", compare_order=3),
    Metric("pte_bytes", "INTEGER", "bytes", "pte_bytes", key="pte", label=".pte", group="Size & memory",
           flat=".pte KiB", text=("bytes",), plain=("fixed", 1, 1024),
           after={"html": "first", "summary": "speedup", "wide": "speedup", "markdown": "top1", "page": "speedup"},
           compare="growth", compare_label=".pte size", limit="growth", compare_order=2),
    Metric("arena_bytes", "INTEGER", "bytes", "arena_bytes", key="arena", label="arena", group="Size & memory",
           hint="planned memory arena of the program", text=("bytes",), after={"html": "rss"}, detail=True,
           compare="growth", compare_label="arena", limit="growth", compare_order=4),
    # numerics of the program's outputs against fp32 eager (the sqnr column is table.py's: NaN findings)
    Metric("sqnr_db", "REAL", "dB", "sqnr_db", compare="drop", compare_label="SQNR", limit="sqnr_db", compare_order=0),
    Metric("max_abs_error", "REAL", "", "max_abs_error"),
    Metric("cosine_similarity", "REAL", "", "cosine_similarity"),
    Metric("top1_agreement", "REAL", "fraction", "top1_agreement", key="top1", label="top-1 agr.",
           group="Numerics", hint="share of inputs whose top-1 class matches fp32", flat="top-1",
           text=("num", 3), plain=("fixed", 2, 1), detail=True,
           after={"html": "sqnr", "wide": "accuracy", "markdown": "sqnr", "page": "sqnr"},
           compare="drop", compare_label="top-1 agreement", limit="top1_agreement", compare_order=1),
    # the power trial (separate from the latency trials; NULL = not measured, power_reason says why)
    Metric("energy_per_inference_mj", "REAL", "mJ", "per_inference_mj", ENERGY),  # idle power subtracted
    Metric("energy_uncertainty_mj", "REAL", "mJ", "uncertainty_mj", ENERGY),  # 1 sigma, per inference
    Metric("avg_power_w", "REAL", "W", "avg_power_w", ENERGY),
    Metric("idle_power_w", "REAL", "W", "idle_power_w", ENERGY),
    Metric("power_sample_count", "INTEGER", "count", "samples", ENERGY),
]

BY_COLUMN = {m.column: m for m in METRICS}


def cell_columns() -> dict[str, str]:
    """Every registered cells column and its SQL type."""
    return {m.column: m.sql_type for m in METRICS}


def in_json(where: str | None) -> list[Metric]:
    """The metrics of one `--json` object (LATENCY, ENERGY, or None: the cell's top level), in order."""
    return [m for m in METRICS if m.json_in == where]


def from_latency(stats: dict) -> dict:
    """The cells columns `stats.summary_stats` fills; std and CV of one sample (NaN) are NULL."""
    return {m.column: _defined(stats[m.stat]) for m in METRICS if m.stat is not None}


def rendered() -> list[Metric]:
    """The metrics with a column in the cells tables."""
    return [m for m in METRICS if m.key is not None]


def compared() -> list[Metric]:
    """The single-number metrics compare judges against a threshold (latency has its own bootstrap)."""
    return sorted((m for m in METRICS if m.compare is not None), key=lambda m: m.compare_order)


def _defined(x):
    """std and CV of a single sample are undefined: stored as NULL, not as a misleading 0."""
    return None if isinstance(x, float) and x != x else x

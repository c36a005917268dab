"""How much of a lowered program runs in the XNNPACK delegate, by operator name."""

from __future__ import annotations

# Bookkeeping nodes, not operators a user cares about.
_IGNORED = {"getitem", "Total"}


def delegation_summary(graph_module) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    df = info.get_operator_delegation_dataframe()
    df = df[~df["op_type"].isin(_IGNORED)]
    delegated = {r.op_type: int(r.occurrences_in_delegated_graphs) for r in df.itertuples() if r.occurrences_in_delegated_graphs}
    outside = {r.op_type: int(r.occurrences_in_non_delegated_graphs) for r in df.itertuples() if r.occurrences_in_non_delegated_graphs}
    n_in, n_out = sum(delegated.values()), sum(outside.values())
    return {
        "delegated_ops": n_in,
        "total_ops": n_in + n_out,
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_by_op": delegated,
        "not_delegated_by_op": outside,  # what runs on portable kernels, by name
    }

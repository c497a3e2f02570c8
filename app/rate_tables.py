"""Tables of rates with (low, high) intervals, as the Win rates page shows them: the
leaderboard, the win-rate matrix and the harmless-rate section (app/harmless_panel.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def interval_columns(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    """Split (low, high) interval columns into _low/_high columns for tables and charts."""
    for name in names:
        pairs = df[name].map(lambda v: v if v is not None else (None, None))
        df[f"{name}_low"] = pairs.map(lambda v: v[0])
        df[f"{name}_high"] = pairs.map(lambda v: v[1])
    return df.drop(columns=list(names))


def rates_table(table: pd.DataFrame, *, key: str, decimal_suffixes: tuple[str, ...]) -> None:
    """`table` without its index; the columns whose names end in `decimal_suffixes` (rates,
    interval bounds) shown to three decimals."""
    st.dataframe(
        table,
        hide_index=True,
        key=key,
        column_config={
            column: st.column_config.NumberColumn(format="%.3f")
            for column in table.columns
            if column.endswith(decimal_suffixes)
        },
    )

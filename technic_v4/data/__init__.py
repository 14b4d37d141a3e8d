"""Data layer: exchange calendars, the Parquet price store, the Panel, the demo market, ingest."""

from technic_v4.data.panel import Panel

__all__ = ["Panel"]

"""Conformity validation of a delivery: checks from the catalog, one query per table, a report and a gate."""

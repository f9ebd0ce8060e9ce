"""`engine.held`: while a command holds the DuckDB file, each of its connections joins the open database."""

from __future__ import annotations

from pathlib import Path

from snds import engine, warehouse


def test_a_connection_made_while_held_joins_the_open_database(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with warehouse.connect(path, create=True) as con:
        con.execute("create table kept as select 1 as x")
    with engine.held(engine.EMBEDDED, path):
        with engine.connect(engine.EMBEDDED, path) as first:
            # an attached database belongs to the open database (the instance), not to one connection
            first.execute("attach ':memory:' as scratch")
            first.execute("create table scratch.seen as select 1 as x")
            first.execute("insert into kept values (2)")
        with engine.connect(engine.EMBEDDED, path) as second:
            assert second.execute("select count(*) from scratch.seen").fetchone() == (1,)
    with engine.connect(engine.EMBEDDED, path) as after:  # opened again: nothing attached, the rows written kept
        assert after.execute("select count(*) from duckdb_databases() where database_name = 'scratch'").fetchone() == (
            0,
        )
        assert after.execute("select sum(x) from kept").fetchone() == (3,)


def test_holding_a_server_does_nothing() -> None:
    with engine.held("postgres"):  # no server is reached: each connection to it is made as before
        pass

"""The conformity SQL kept between deliveries (snds.conformity.compiled): reused while nothing changed, compiled again
otherwise, and always for the delivery at hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from snds.conformity.compiled import PLACEHOLDER, CompiledParts


class Compiler:
    """Stands in for dbt's compile of the parts (what is tested is the keeping, not the compile)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, parts: dict[str, str]) -> dict[str, str]:
        self.calls += 1
        return {
            name: f"select count(*) from t where DELIVERY_ID = '{PLACEHOLDER}' -- {text}"
            for name, text in parts.items()
        }


def test_reused_for_the_next_delivery_and_compiled_again_on_a_change(tmp_path: Path) -> None:
    compiler = Compiler()
    parts = {"ER_PRS_F": "{{ conformity_query('ER_PRS_F', 'X') }}"}
    first = CompiledParts(tmp_path, "warehouse", compiler).for_delivery(parts, "D2019_01")
    second = CompiledParts(tmp_path, "warehouse", compiler).for_delivery(parts, "D2019_02")
    assert compiler.calls == 1
    assert "DELIVERY_ID = 'D2019_01'" in first["ER_PRS_F"] and "DELIVERY_ID = 'D2019_02'" in second["ER_PRS_F"]
    assert PLACEHOLDER not in second["ER_PRS_F"]
    CompiledParts(tmp_path, "warehouse", compiler).for_delivery({"T_MCO19B": "other"}, "D2019_02")  # other parts
    CompiledParts(tmp_path, "other", compiler).for_delivery(parts, "D2019_02")  # another database
    assert compiler.calls == 3


def test_a_damaged_cache_file_is_compiled_again(tmp_path: Path) -> None:
    compiler = Compiler()
    parts = {"A": "a"}
    CompiledParts(tmp_path, "warehouse", compiler).for_delivery(parts, "D1")
    for kept in tmp_path.glob("*.json"):
        kept.write_text("{not json", encoding="utf-8")
    assert "'D1'" in CompiledParts(tmp_path, "warehouse", compiler).for_delivery(parts, "D1")["A"]
    assert compiler.calls == 2


def test_an_identifier_outside_a_literal_is_refused(tmp_path: Path) -> None:
    def leaky(parts: dict[str, str]) -> dict[str, str]:
        return {name: f"select 1 as {PLACEHOLDER}" for name in parts}

    with pytest.raises(ValueError, match="outside a literal"):
        CompiledParts(tmp_path, "warehouse", leaky).for_delivery({"A": "a"}, "D1")


def test_the_delivery_identifier_is_checked(tmp_path: Path) -> None:
    from snds.identifiers import InvalidIdentifier

    with pytest.raises(InvalidIdentifier):
        CompiledParts(tmp_path, "warehouse", Compiler()).for_delivery({"A": "a"}, "D1'; drop table x --")

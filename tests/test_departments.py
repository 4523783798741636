from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.departments import DepartmentTree

SANDBOX_ROWS: list[dict[str, object]] = [
    {"ID": "1", "NAME": "Example Corp", "SORT": "500", "UF_HEAD": "1"},
    {"ID": "2", "NAME": "Sales", "PARENT": "1"},
    {"ID": "3", "NAME": "Sales EMEA", "PARENT": "2"},
    {"ID": "4", "NAME": "Sales DACH", "PARENT": "3"},
    {"ID": "5", "NAME": "Marketing", "PARENT": "1"},
    {"ID": "6", "NAME": "Engineering", "PARENT": "1"},
    {"ID": "7", "NAME": "Backend", "PARENT": "6"},
    {"ID": "8", "NAME": "Platform", "PARENT": "7"},
    {"ID": "9", "NAME": "Support", "PARENT": "1"},
]


def sandbox() -> DepartmentTree:
    return DepartmentTree.from_rows(SANDBOX_ROWS)


def test_rows_become_a_tree() -> None:
    tree = sandbox()
    assert tree.ids == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert len(tree) == 9
    assert tree.name(4) == "Sales DACH"
    assert tree.parent(4) == 3
    assert tree.parent(1) is None
    assert tree.children(1) == (2, 5, 6, 9)
    assert tree.children(4) == ()
    assert tree.roots() == (1,)
    assert tree.anomalies == ()


def test_ancestors_start_with_self_and_end_at_the_root() -> None:
    tree = sandbox()
    assert tree.ancestors(4) == (4, 3, 2, 1)
    assert tree.ancestors(1) == (1,)


def test_descendants_include_self_depth_first() -> None:
    tree = sandbox()
    assert tree.descendants(2) == (2, 3, 4)
    assert tree.descendants(1) == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert tree.descendants(9) == (9,)


def test_by_name_is_exact() -> None:
    tree = DepartmentTree.from_rows([*SANDBOX_ROWS, {"ID": "12", "NAME": "Sales", "PARENT": "5"}])
    assert tree.by_name("Sales") == [2, 12]
    assert tree.by_name("sales") == []
    assert tree.by_name("Sales ") == []
    assert tree.by_name("Marketing") == [5]


def test_path_names_and_labels_for_explain() -> None:
    tree = sandbox()
    assert tree.path_names(3) == "Example Corp / Sales / Sales EMEA"
    assert tree.label(3) == "Sales EMEA (3)"
    assert tree.label(42) == "department 42"


def test_unknown_ids_are_their_own_one_node_tree() -> None:
    """A department created after the tree was fetched still matches rules naming its ID."""
    tree = sandbox()
    assert not tree.contains(42)
    assert tree.contains(4)
    assert tree.name(42) is None
    assert tree.parent(42) is None
    assert tree.ancestors(42) == (42,)
    assert tree.descendants(42) == (42,)
    assert tree.path_names(42) == "department 42"


def test_integer_ids_missing_names_and_root_markers() -> None:
    tree = DepartmentTree.from_rows(
        [
            {"ID": 1, "NAME": "Root", "PARENT": "0"},
            {"ID": "2", "PARENT": 1},
            {"ID": " 3 ", "NAME": None, "PARENT": ""},
        ]
    )
    assert tree.ancestors(2) == (2, 1)
    assert tree.name(2) == ""
    assert tree.parent(3) is None
    assert tree.parent(1) is None


def test_bad_rows_are_skipped_and_noted() -> None:
    tree = DepartmentTree.from_rows(
        [
            {"ID": "1", "NAME": "Root"},
            {"ID": "1", "NAME": "Again"},
            {"NAME": "No id"},
            {"ID": "x", "NAME": "Bad"},
            {"ID": True, "NAME": "Bool"},
            {"ID": "-4", "NAME": "Negative"},
        ]
    )
    assert tree.ids == (1,)
    assert tree.name(1) == "Root"
    assert len(tree.anomalies) == 5


def test_dangling_and_self_parents_become_roots() -> None:
    tree = DepartmentTree.from_rows(
        [
            {"ID": "1", "NAME": "Root"},
            {"ID": "2", "NAME": "Orphan", "PARENT": "99"},
            {"ID": "3", "NAME": "Self", "PARENT": "3"},
            {"ID": "4", "NAME": "Child", "PARENT": "2"},
        ]
    )
    assert tree.ancestors(4) == (4, 2)
    assert tree.ancestors(3) == (3,)
    assert tree.descendants(2) == (2, 4)
    assert any("99" in note for note in tree.anomalies)
    assert len(tree.anomalies) == 2


def test_cycles_are_cut_at_their_smallest_id() -> None:
    tree = DepartmentTree(
        {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"},
        {1: 3, 2: 1, 3: 2, 4: 3, 5: None},
    )
    assert tree.parent(1) is None
    assert tree.ancestors(3) == (3, 2, 1)
    assert tree.ancestors(4) == (4, 3, 2, 1)
    assert tree.descendants(1) == (1, 2, 3, 4)
    assert tree.anomalies == ("departments [1, 2, 3] form a cycle; 1 made a root",)


def test_a_very_deep_chain_does_not_recurse() -> None:
    depth = 20_000
    tree = DepartmentTree(
        {i: str(i) for i in range(1, depth + 1)}, {i: i - 1 or None for i in range(1, depth + 1)}
    )
    assert len(tree.ancestors(depth)) == depth
    assert len(tree.descendants(1)) == depth


@given(st.dictionaries(st.integers(1, 30), st.one_of(st.none(), st.integers(0, 35)), max_size=30))
def test_any_parent_data_gives_a_finite_consistent_tree(parents: dict[int, int | None]) -> None:
    rows = [
        {"ID": str(i), "NAME": f"d{i}", **({} if p is None else {"PARENT": str(p)})}
        for i, p in parents.items()
    ]
    tree = DepartmentTree.from_rows(rows)
    roots = tree.roots()
    assert roots == tuple(i for i in tree.ids if tree.parent(i) is None)
    covered = [d for root in roots for d in tree.descendants(root)]
    assert sorted(covered) == list(tree.ids)  # every department sits under exactly one root
    for ident in tree.ids:
        chain = tree.ancestors(ident)
        assert len(set(chain)) == len(chain)
        assert tree.parent(chain[-1]) is None
        for ancestor in chain:
            assert ident in tree.descendants(ancestor)

"""Benchmark 3: the rule engine — evaluations per second as the rules file grows.

`CompiledRules` files each department rule under the department it names, so evaluating a
person costs (tree depth) × (rules that match), not (rules in the file). To test exactly
that claim, the "fixed matches" workload keeps the matching rules the same while the file
grows from 10 to 10,000 rules: the extra rules name departments off every evaluated
person's path to the root. The "uniform" workload spreads all rules over the whole tree,
so matches grow with the file; it shows the cost per matched rule.

Keyword rules are measured the same way: every message contains one phrase of a fixed
rule, whatever the number of other rules.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.config import Config
from bench.stats import Row, Section, Target, ratio, row, summarize
from bot.departments import DepartmentTree
from bot.rules import CompiledRules, Rule, RuleSet

NAME = "rules"
TITLE = "Rule engine: evaluations per second"
SIZES = (10, 1_000, 10_000)
HIT_RULES = 8  # rules on the evaluated people's paths (the root rule among them)
FLAT_WITHIN = 2.0
SEED = 11


def generated_tree(departments: int, seed: int = SEED) -> DepartmentTree:
    """A random recursive tree, like `generated_company`'s: each department under an earlier one."""
    rng = random.Random(seed)
    parents: dict[int, int | None] = {1: None}
    for ident in range(2, departments + 1):
        parents[ident] = rng.randint(1, ident - 1)
    return DepartmentTree({i: f"Dept {i}" for i in parents}, parents)


@dataclass(frozen=True, slots=True)
class Workload:
    compiled: CompiledRules
    inputs: tuple[tuple[int, ...], ...]  # department lists of the evaluated people
    build_ms: float


def _ruleset(rules: Sequence[Rule]) -> RuleSet:
    return RuleSet(tuple(rules), "bench-rules.yaml", f"bench-{len(rules)}")


def _department_rule(n: int, department: int, rng: random.Random) -> Rule:
    return Rule(f"rule-{n}", "departments", departments=(department,), chats=(rng.randint(1, 200),))


def department_workload(
    tree: DepartmentTree, count: int, people: int, *, fixed: bool, seed: int = SEED
) -> Workload:
    """`count` subtree rules; every person (1–2 departments) matches the root rule at least.

    With `fixed`, matches are the same for every `count` >= HIT_RULES.
    """
    rng = random.Random(seed)
    ids = list(tree.ids)
    evaluated = rng.sample(ids, k=max(1, len(ids) // 10))
    inputs = tuple(
        tuple(rng.sample(evaluated, k=min(len(evaluated), rng.choice((1, 1, 2)))))
        for _ in range(people)
    )
    on_paths = sorted({a for d in evaluated for a in tree.ancestors(d)})
    off_paths = sorted(set(ids) - set(on_paths)) or ids
    rules = [Rule("everyone", "departments", departments=(ids[0],), chats=(1,))]
    # The same hits whatever `count` is: the departments above the most evaluated people.
    hit_rng = random.Random(seed + 1)
    cover = Counter(a for d in evaluated for a in tree.ancestors(d)[:-1])
    for n, (department, _) in enumerate(cover.most_common(HIT_RULES - 1)[: count - 1], 1):
        rules.append(_department_rule(n, department, hit_rng))
    for n in range(len(rules), count):
        rules.append(_department_rule(n, rng.choice(off_paths if fixed else ids), rng))
    began = time.perf_counter_ns()
    compiled = CompiledRules.build(_ruleset(rules), tree)
    return Workload(compiled, inputs, (time.perf_counter_ns() - began) / 1e6)


def _word(n: int) -> str:
    """A letters-only pseudo-word per number ("ba", "bb", …), as a team name would be."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = ""
    n += 26
    while n:
        n, digit = divmod(n, 26)
        out = letters[digit] + out
    return out


def keyword_workload(
    count: int, messages: int, seed: int = SEED
) -> tuple[CompiledRules, list[str]]:
    """`count` rules with one phrase each; each message holds one phrase of a fixed rule."""
    rng = random.Random(seed)
    rules = [
        Rule(f"kw-{n}", "keywords", keywords=(f"join {_word(n)}",), chats=(n % 200 + 1,))
        for n in range(count)
    ]
    compiled = CompiledRules.build(_ruleset(rules), DepartmentTree({1: "Root"}, {1: None}))
    hits = [f"join {_word(n)}" for n in range(min(count, HIT_RULES))]
    texts = [
        f"Hello bot, please {rng.choice(hits)} for me, thanks a lot! Ticket {rng.randint(1, 999)}"
        for _ in range(messages)
    ]
    return compiled, texts


@dataclass(frozen=True, slots=True)
class Timed:
    per_second: float
    matches: float  # mean matched rules per evaluation


def time_calls(calls: Sequence[Callable[[], int]], evaluations: int, time_cap: float) -> Timed:
    """Call round-robin until `evaluations` calls or `time_cap` s; each call returns its matches."""
    done = matched = 0
    cap_ns = int(time_cap * 1e9)
    began = time.perf_counter_ns()
    while done < evaluations:
        for call in calls[: evaluations - done]:
            matched += call()
        done += min(len(calls), evaluations - done)
        if time.perf_counter_ns() - began > cap_ns:
            break
    elapsed = (time.perf_counter_ns() - began) / 1e9
    return Timed(done / elapsed, matched / done)


def department_calls(workload: Workload) -> list[Callable[[], int]]:
    grants = workload.compiled.grants_for_departments

    def call(departments: tuple[int, ...]) -> Callable[[], int]:
        return lambda: sum(len(g.rules) for g in grants(departments))

    return [call(departments) for departments in workload.inputs]


def keyword_calls(compiled: CompiledRules, texts: Sequence[str]) -> list[Callable[[], int]]:
    match = compiled.keyword_rules_for

    def call(text: str) -> Callable[[], int]:
        return lambda: len(match(text))

    return [call(text) for text in texts]


def measure(
    label: str,
    prepare: Callable[[int], tuple[list[Callable[[], int]], float]],
    sizes: Sequence[int],
    *,
    evaluations: int,
    runs: int,
    time_cap: float,
) -> tuple[list[Row], Target]:
    """Sizes measured side by side in every run, so the largest/smallest ratio is paired."""
    prepared = {size: prepare(size) for size in sizes}
    results: dict[int, list[Timed]] = {size: [] for size in sizes}
    for _ in range(runs):
        for size in sizes:
            results[size].append(time_calls(prepared[size][0], evaluations, time_cap))
    rows: list[Row] = []
    for size in sizes:
        case = f"{label}: {size:,} rules"
        rows.append(row(case, "evaluations/s", [t.per_second for t in results[size]], "1/s"))
        rows.append(row(case, "matched rules/eval", [t.matches for t in results[size]]))
        rows.append(row(case, "compile", [prepared[size][1]], "ms"))
    small, large = sizes[0], sizes[-1]
    cost = ratio([t.per_second for t in results[small]], [t.per_second for t in results[large]])
    rows.append(row(f"{label}: {large:,}/{small:,}", "cost ratio", cost, "×"))
    median = summarize(cost).median
    target = Target(
        f"rules {label}",
        f"cost {large:,}/{small:,} ≤ {FLAT_WITHIN}×",
        median <= FLAT_WITHIN,
        f"median {median:.2f}×",
    )
    return rows, target


def run_rules(
    *,
    sizes: Sequence[int] = SIZES,
    departments: int = 500,
    people: int = 1_000,
    evaluations: int = 20_000,
    runs: int = 5,
    time_cap: float = 2.0,
) -> Section:
    """All three workloads; tests call this at tiny sizes."""
    section = Section(NAME, TITLE)
    tree = generated_tree(departments)

    def departments_fixed(size: int) -> tuple[list[Callable[[], int]], float]:
        workload = department_workload(tree, size, people, fixed=True)
        return department_calls(workload), workload.build_ms

    def departments_uniform(size: int) -> tuple[list[Callable[[], int]], float]:
        workload = department_workload(tree, size, people, fixed=False)
        return department_calls(workload), workload.build_ms

    def keywords(size: int) -> tuple[list[Callable[[], int]], float]:
        began = time.perf_counter_ns()
        compiled, texts = keyword_workload(size, people)
        return keyword_calls(compiled, texts), (time.perf_counter_ns() - began) / 1e6

    for label, prepare, judged in (
        ("departments, fixed matches", departments_fixed, True),
        ("departments, uniform", departments_uniform, False),
        ("keywords", keywords, True),
    ):
        rows, target = measure(
            label, prepare, sizes, evaluations=evaluations, runs=runs, time_cap=time_cap
        )
        section.rows += rows
        if judged:
            section.targets.append(target)
    section.notes += [
        f"Tree: {departments} departments, each under a random earlier one (depth "
        f"{max(len(tree.ancestors(d)) for d in tree.ids)} at most). {people:,} people in 1–2 "
        f"departments; up to {evaluations:,} evaluations per run (or {time_cap:g} s), "
        f"timed with perf_counter_ns, {runs} runs with all sizes side by side.",
        "Fixed matches: the first few rules (one on the root) lie on the evaluated people's "
        "paths, every other rule names a department off those paths, so the work per "
        "evaluation is the same at every size and only the file grows. Uniform: rules over "
        "random departments, so a bigger file also means more matches per person "
        "(reported for the cost per matched rule; no target).",
        "Keywords: one phrase per rule (`join <name>`); every message is ~12 words and holds "
        "one phrase of a fixed rule. Compile times include building the ruleset's index.",
    ]
    return section


def run(config: Config) -> Section:
    if config.quick:
        return run_rules(evaluations=3_000, runs=config.runs, time_cap=0.5)
    return run_rules(runs=max(5, config.runs))

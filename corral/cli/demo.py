"""``corral demo``: the scheduler on a synthetic cell, showing placements, preemptions and pending reasons."""

from __future__ import annotations

import time
from collections import Counter

import typer




def _demo(machines: int, tasks: int, policy: str, seed: int, console: Console) -> None:
    # The scheduler, NumPy and rich load here, not when the CLI starts (every corral command
    # imports this module to register ``corral demo``).
    from rich.table import Table

    from corral.model.constraints import Constraint
    from corral.model.resources import Resources
    from corral.sched.cellview import CellView
    from corral.sched.request import PendingTask, TaskRequest
    from corral.sched.scheduler import Scheduler, SchedulerConfig
    from corral.sim.synthetic import GiB, synthetic_cell, synthetic_workload

    cell = synthetic_cell(machines, seed)
    view = CellView(cell)
    scheduler = Scheduler(SchedulerConfig(policy=policy, seed=seed))

    # Pass 1: a synthetic workload of many users, most of the cell.
    work = synthetic_workload(tasks, seed, machines=machines)
    start = time.perf_counter()
    plan = scheduler.schedule(view, work)
    seconds = time.perf_counter() - start
    console.print(
        f"[bold]pass 1[/]: {len(work)} tasks on {machines} machines with policy [cyan]{policy}[/]: "
        f"{len(plan.placements)} placed, {len(plan.unplaced)} pending, {seconds * 1000:.0f} ms "
        f"({len(plan.placements) / max(seconds, 1e-9):,.0f} placements/s)"
    )

    # Pass 2: production work arrives at a busy cell; batch work is preempted to make room.
    big = Resources(cpu=12_000, memory=48 * GiB)
    prod = TaskRequest(big, priority=10, spread="rack", job="frontend")
    pinned = TaskRequest(Resources(cpu=1_000, memory=2 * GiB), priority=9,
                         constraints=(Constraint("rack", "==", ("no-such-rack",)),))
    huge = TaskRequest(Resources(cpu=200_000, memory=64 * GiB), priority=4)
    arrivals = [PendingTask(f"frontend/{i}", "frontend", "web", prod, i) for i in range(max(4, machines // 20))]
    arrivals += [PendingTask("pinned/0", "pinned", "ops", pinned), PendingTask("huge/0", "huge", "science", huge)]
    plan2 = scheduler.schedule(view, arrivals)
    console.print(
        f"[bold]pass 2[/]: {len(arrivals)} production/batch arrivals: {len(plan2.placements)} placed, "
        f"{len(plan2.preemptions)} preemptions, {len(plan2.unplaced)} pending"
    )

    table = Table(title="placements (first 8 of pass 2)")
    for column in ("task", "machine", "score", "machines examined"):
        table.add_column(column)
    for p in plan2.placements[:8]:
        table.add_row(p.task_id, p.machine, f"{p.score:.3f}", str(p.evaluated))
    console.print(table)

    if plan2.preemptions:
        table = Table(title="preemptions (first 8)")
        table.add_column("victim")
        table.add_column("reason")
        for pre in plan2.preemptions[:8]:
            table.add_row(pre.victim, pre.reason)
        console.print(table)

    pending = {**plan2.unplaced, **plan.unplaced}  # pass 2's first: they show every kind of reason
    table = Table(title="pending reasons (one per class)")
    table.add_column("tasks")
    table.add_column("why")
    by_reason = Counter(e.summary() for e in pending.values())
    for why, count in list(by_reason.items())[:8]:
        table.add_row(str(count), why)
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        machines: int = typer.Option(500, min=1, help="machines in the synthetic cell"),
        tasks: int = typer.Option(4_000, min=1, help="tasks in the synthetic workload"),
        policy: str = typer.Option("hybrid", help="scoring policy: hybrid, best-fit, worst-fit, random, or scorer=weight,..."),
        seed: int = typer.Option(1, help="seed of the cell, the workload and the scheduler"),
    ) -> None:
        """Schedule a synthetic cell: placements, preemptions and pending reasons."""
        from corral.sched.policy import PolicyError, make_policy

        try:
            make_policy(policy)
        except PolicyError as e:
            typer.echo(f"error: --policy: {e}", err=True)
            raise typer.Exit(2)
        from rich.console import Console

        _demo(machines, tasks, policy, seed, Console())

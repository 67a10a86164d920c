"""The rebalancer's pure policy: plans whose steps are moves (see README.md in corral/sched)."""

"""What every command gets: AWS clients, the target stack, the output printer and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crrmon.store import Store
from crrmon.topology import Topology, load_topology
from crrmon_cli.aws import Aws
from crrmon_cli.output import Printer
from crrmon_cli.target import Target


@dataclass
class Context:
    aws: Aws
    target: Target
    printer: Printer
    now: Callable[[], float] = field(default=time.time)
    _topology: Topology | None = None

    def store(self) -> Store:
        table = self.target.need("table_name", "--table")
        return Store(self.aws.client("dynamodb"), table, self.target.overdue_index_name)

    def topology(self) -> Topology:
        """The watched buckets' replication rules, read the way the monitor reads them."""
        if self._topology is None:
            self._topology = load_topology(
                self.target.source_buckets,
                s3=self.aws.client("s3"),
                ssm=self.aws.client("ssm") if self.target.topology_parameter_name else None,
                parameter_name=self.target.topology_parameter_name,
                destination_buckets=self.target.destination_buckets,
            )
        return self._topology

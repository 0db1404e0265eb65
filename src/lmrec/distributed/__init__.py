"""Ray for the batch work that grows with the data; the same results as one process.

- `connect(address, num_cpus)`: join a Ray cluster, or start a local one when no address
  is given (`lmrec ... --ray`, `--ray-address ADDR`).
- `map_ordered(fn, items, shared, setup=...)`: `fn(state, item)` for every item on Ray
  workers (each builds its state once: a loaded model, a dataset), results in order.
- `RayEncoder`: a text encoder whose batches run on the workers, the same vectors.

What runs on it: encoding a catalogue (`lmrec evaluate|train --ray`), the models (and
seeds) of `lmrec evaluate` / `run_experiment(cluster=...)`, the trial workers of
`lmrec tune --ray` and the user shards of `lmrec recommend --ray`. Ray is the `ray` extra
(`pip install 'lmrec[ray]'`), imported only when one of these is called.
"""

from lmrec.distributed._cluster import Cluster, connect, map_ordered, require_ray
from lmrec.distributed._encode import RayEncoder

__all__ = ["Cluster", "RayEncoder", "connect", "map_ordered", "require_ray"]

# An unchanged PyTorch program: torch.distributed initialised from the environment (env://, the
# default), one all_reduce of (rank + 1), the sum printed. tests/launch/torch_script_test.cc runs
# it under `dtrain launch`.
import datetime
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
rank = dist.get_rank()
world = dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
env = " ".join(os.environ[name] for name in ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"))
print(f"torch rank {rank} of {world} (local rank, local size, group: {env}): "
      f"all_reduce sum={value.item():g}", flush=True)
dist.destroy_process_group()

"""`torchrun`, with one fix for Debian's PyTorch 1.13 on Python >= 3.11.

There, torchrun fails before starting any worker ("AttributeError: 'NoneType' object has no
attribute 'get'" in elastic/multiprocessing/api.py, to_map): `Std.from_str("0")` looks the value up
by iterating the IntFlag `Std`, and since Python 3.11 iteration skips the zero member NONE, so the
default `--redirects 0` / `--tee 0` become None. This looks the member up by value instead, then
runs torchrun's own main with the same arguments:

    /usr/bin/python3 reference/torchrun.py --nproc_per_node=2 reference/train_torch.py ...

Where `torchrun` works (other PyTorch builds), use it directly; the training script is the same.
"""
import re, sys
from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str


def from_str(vm):
    if re.match(api._VALUE_REGEX, vm):
        return api.Std(int(vm))
    if re.match(api._MAPPING_REGEX, vm):
        return {int(i): api.Std(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    return _from_str(vm)


api.Std.from_str = from_str

if __name__ == "__main__":
    from torch.distributed.run import main

    sys.exit(main())

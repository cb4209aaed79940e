"""Saves a checkpoint and stops at a named point of the save, for tests/test_checkpoint_safety.py.

python save_paused.py PATH POINT: builds the network of test_checkpoint.build(), trains it
one epoch, saves it to PATH and, at POINT, prints POINT and sleeps until killed. The pause
is patched in here, so the package's save() pays nothing for it.
"""
import os
import sys
import time

import ghostmlp
from ghostmlp import checkpoint
from test_checkpoint import build, data

POINTS = ("opened", "half_written", "header_written", "synced", "renamed")


def pause(point):
    if point == sys.argv[2]:
        print(point, flush=True)
        time.sleep(120)


def main(path):
    net = build()
    net.fit(*data(), max_epochs=1, batch_size=8)
    writes, half = [], len(checkpoint._entries(net)) // 2
    opened, written, closed = (checkpoint._LocalFile.__init__, checkpoint._LocalFile.write_at,
                               checkpoint._LocalFile.sync_close)
    replace = os.replace

    def open_and_pause(self, *args):
        opened(self, *args)
        pause("opened")

    def write_and_pause(self, offset, block):
        written(self, offset, block)
        writes.append(offset)
        if len(writes) == half:
            pause("half_written")
        if offset == 0:                 # the header comes last
            pause("header_written")

    def close_and_pause(self):
        closed(self)
        pause("synced")

    def replace_and_pause(*args):
        replace(*args)
        pause("renamed")

    checkpoint._LocalFile.__init__ = open_and_pause
    checkpoint._LocalFile.write_at = write_and_pause
    checkpoint._LocalFile.sync_close = close_and_pause
    os.replace = replace_and_pause
    ghostmlp.save(net, path)
    print("saved", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

"""Which rank owns which neurons and blocks, which neurons a ghost block sees, which layers share a gradient bucket: pure integer functions."""
import numpy as np


def slice_bounds(n, parts, index):
    """[start, stop) of part `index` when n items are cut into `parts` contiguous slices.

    Sizes differ by at most one; the first n % parts slices hold the extra item.
    """
    if not 0 <= index < parts:
        raise ValueError(f"index must lie in [0, {parts}), got {index}")
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def slice_sizes(n, parts):
    """The sizes of all `parts` slices of n items (see slice_bounds)."""
    base, extra = divmod(n, parts)
    return [base + (index < extra) for index in range(parts)]


def blocks_of_rank(n_blocks, workers, rank):
    """range of the consecutive blocks that working rank `rank` holds (n_blocks % workers == 0)."""
    per_rank = n_blocks // workers
    return range(rank * per_rank, (rank + 1) * per_rank)


def rank_bounds(n, n_blocks, workers, rank):
    """[start, stop) of the neurons that working rank `rank` owns: the union of its blocks."""
    blocks = blocks_of_rank(n_blocks, workers, rank)
    return slice_bounds(n, n_blocks, blocks[0])[0], slice_bounds(n, n_blocks, blocks[-1])[1]


def check_layout(sizes, workers, connectivity, blocks):
    """Raise ValueError unless every non-input layer of `sizes` can be laid out.

    dense: each of the `workers` ranks owns at least one neuron of every layer.
    ghost: `blocks` divides into whole blocks per rank, every block holds a neuron, and
    with 2 blocks each block holds 2 (its two ghosts must be distinct neurons).
    """
    if connectivity == "dense":
        parts, what = workers, f"working rank{'s' if workers > 1 else ''}"
    else:
        if blocks < 1 or blocks % workers:
            raise ValueError(f"blocks={blocks} must be a positive multiple of the "
                             f"{workers} working ranks")
        parts, what = blocks, "blocks"
    for index, size in enumerate(sizes[1:], 1):
        if size < parts:
            raise ValueError(f"layer {index} has {size} neurons, fewer than its {parts} {what}")
        if connectivity == "ghost" and blocks == 2 and min(slice_sizes(size, 2)) < 2:
            raise ValueError(f"layer {index} has {size} neurons: with blocks=2 each block "
                             f"needs 2 so that its ghostTop and ghostBottom differ")


def ghost_inputs(n_in, n_blocks, block):
    """Previous-layer neurons that block `block` sees, in its weight-row order.

    [ghostTop (last neuron of block-1), the neurons of the same block, ghostBottom
    (first neuron of block+1)], blocks wrapping around as a ring.
    """
    start, stop = slice_bounds(n_in, n_blocks, block)
    top = slice_bounds(n_in, n_blocks, (block - 1) % n_blocks)[1] - 1
    bottom = slice_bounds(n_in, n_blocks, (block + 1) % n_blocks)[0]
    return [top, *range(start, stop), bottom]


def edge_count(n_in, n_out, n_blocks, first_layer=False):
    """Number of edges (weights) between the layers: connectivity_mask(...).sum(), without the mask."""
    if first_layer or n_blocks == 1:
        return n_in * n_out
    return sum((size_in + 2) * size_out
               for size_in, size_out in zip(slice_sizes(n_in, n_blocks), slice_sizes(n_out, n_blocks)))


def connectivity_mask(n_in, n_out, n_blocks, first_layer=False):
    """Boolean [n_in, n_out]: True where the ghost topology with n_blocks has an edge.

    The first hidden layer (first_layer=True) and n_blocks = 1 are fully connected.
    """
    mask = np.zeros((n_in, n_out), dtype=bool)
    if first_layer or n_blocks == 1:
        mask[:] = True
        return mask
    for block in range(n_blocks):
        start, stop = slice_bounds(n_out, n_blocks, block)
        mask[ghost_inputs(n_in, n_blocks, block), start:stop] = True
    return mask


def gradient_buckets(layer_bytes, bucket_bytes):
    """[(lowest layer, bytes)] of the gradient buckets in the order they are posted.

    Whole layers from the last down; a bucket closes once it holds at least bucket_bytes,
    and at layer 0.
    """
    buckets, size = [], 0
    for l in reversed(range(len(layer_bytes))):
        size += layer_bytes[l]
        if size >= bucket_bytes or l == 0:
            buckets.append((l, size))
            size = 0
    return buckets

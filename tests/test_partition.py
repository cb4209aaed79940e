"""Pure layout arithmetic: slices, blocks, ghost inputs, edge masks, layout errors."""
import numpy as np
import pytest

from ghostmlp.partition import (blocks_of_rank, check_layout, connectivity_mask, edge_count,
                                ghost_inputs, rank_bounds, slice_bounds, slice_sizes)


@pytest.mark.parametrize("n,parts", [(n, parts) for n in (1, 2, 7, 8, 9, 13, 64, 257)
                                     for parts in (1, 2, 3, 4, 5, 16) if parts <= n])
def test_slices_tile_the_layer_with_sizes_differing_by_at_most_one(n, parts):
    bounds = [slice_bounds(n, parts, i) for i in range(parts)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert sizes == slice_sizes(n, parts)
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n


def test_slice_bounds_examples_and_range_check():
    assert [slice_bounds(10, 4, i) for i in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    with pytest.raises(ValueError, match="index"):
        slice_bounds(10, 4, 4)


def test_ranks_hold_consecutive_blocks():
    assert [list(blocks_of_rank(12, 3, r)) for r in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7],
                                                                   [8, 9, 10, 11]]
    assert rank_bounds(25, 12, 3, 1) == (slice_bounds(25, 12, 4)[0], slice_bounds(25, 12, 7)[1])


def test_ghost_inputs_wrap_around_the_ring():
    # 9 neurons in 3 blocks: [0 1 2] [3 4 5] [6 7 8]
    assert ghost_inputs(9, 3, 0) == [8, 0, 1, 2, 3]
    assert ghost_inputs(9, 3, 1) == [2, 3, 4, 5, 6]
    assert ghost_inputs(9, 3, 2) == [5, 6, 7, 8, 0]


@pytest.mark.parametrize("n_in,n_out,blocks", [(9, 6, 3), (25, 29, 12), (8, 10, 2), (13, 7, 5)])
def test_mask_matches_ghost_inputs_and_edge_count(n_in, n_out, blocks):
    mask = connectivity_mask(n_in, n_out, blocks)
    assert mask.sum() == edge_count(n_in, n_out, blocks)
    for block in range(blocks):
        start, stop = slice_bounds(n_out, blocks, block)
        for j in range(start, stop):
            assert sorted(np.nonzero(mask[:, j])[0]) == sorted(ghost_inputs(n_in, blocks, block))
    assert connectivity_mask(n_in, n_out, blocks, first_layer=True).all()
    assert edge_count(n_in, n_out, 1) == n_in * n_out == connectivity_mask(n_in, n_out, 1).sum()


def test_paper_model_l_counts():
    sizes = [2048, 32768, 8192, 4096, 2048]
    dense = sum(edge_count(a, b, 1) for a, b in zip(sizes[:-1], sizes[1:]))
    assert dense == 377487360                     # Table I
    ghost = sum(edge_count(a, b, 1024, first_layer=i == 0)
                for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))
    assert ghost == 2048 * 32768 + (32 + 2) * 8192 + (8 + 2) * 4096 + (4 + 2) * 2048


def test_impossible_layouts_are_named():
    with pytest.raises(ValueError, match="layer 2 has 3 neurons, fewer than its 4 working ranks"):
        check_layout([5, 8, 3], 4, "dense", 1)
    with pytest.raises(ValueError, match="blocks=6 must be a positive multiple of the 4"):
        check_layout([5, 8, 8], 4, "ghost", 6)
    with pytest.raises(ValueError, match="fewer than its 8 blocks"):
        check_layout([5, 8, 7], 4, "ghost", 8)
    with pytest.raises(ValueError, match="blocks=2 each block needs 2"):
        check_layout([5, 3, 8], 2, "ghost", 2)
    check_layout([5, 4, 8], 2, "ghost", 2)

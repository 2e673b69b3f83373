"""Pareto maths against brute force: non-dominated sets, fronts, exact hypervolume, reference point, knee."""
import itertools

import numpy as np
import pytest

from vitnas.nas.pareto import hypervolume, knee, non_dominated, non_dominated_fronts, reference_point

MIN2 = ["minimize", "minimize"]
MIN3 = ["minimize"] * 3


def brute_dominates(a, b, directions):
    """a dominates b: no worse everywhere, strictly better somewhere (same definition as the search check)."""
    no_worse = all((x >= y) if d == "maximize" else (x <= y) for x, y, d in zip(a, b, directions))
    better = any((x > y) if d == "maximize" else (x < y) for x, y, d in zip(a, b, directions))
    return no_worse and better


def brute_non_dominated(points, directions):
    return [i for i, p in enumerate(points) if not any(brute_dominates(q, p, directions) for q in points)]


def random_study(rng, dims):
    """Small integer values so that ties and exact duplicates are common; random mixed directions."""
    count = int(rng.integers(1, 30))
    points = rng.integers(0, 4, size=(count, dims)).tolist()
    directions = [str(d) for d in rng.choice(["maximize", "minimize"], size=dims)]
    return points, directions


def grid_hypervolume(points, reference, directions):
    """Exact hypervolume of integer points by counting the unit cells they dominate (the brute-force oracle)."""
    signs = np.array([-1 if d == "maximize" else 1 for d in directions])
    minimised, ref = np.asarray(points) * signs, np.asarray(reference) * signs
    cells = np.array(list(itertools.product(*(range(int(lo), int(r)) for lo, r in zip(minimised.min(axis=0), ref)))))
    return int((cells[:, None, :] >= minimised[None, :, :]).all(axis=2).any(axis=1).sum())


def test_non_dominated_matches_brute_force_with_mixed_directions_ties_and_duplicates():
    rng = np.random.default_rng(0)
    for dims in (1, 2, 3, 4, 5):
        for _ in range(40):
            points, directions = random_study(rng, dims)
            assert non_dominated(points, directions) == brute_non_dominated(points, directions)


def test_exact_duplicates_are_both_non_dominated():
    points = [[0.9, 100.0], [0.9, 100.0], [0.8, 100.0]]
    assert non_dominated(points, ["maximize", "minimize"]) == [0, 1]


def test_fronts_of_a_hand_made_study():
    # accuracy up, MACs down: 0 and 1 trade off; 2 ties 1 on MACs with less accuracy; 3 is 0's duplicate;
    # 4 is dominated by 1 and 2; 5 only by 0 and 3
    points = [[0.9, 300], [0.8, 100], [0.7, 100], [0.9, 300], [0.6, 200], [0.85, 400]]
    assert non_dominated_fronts(points, ["maximize", "minimize"]) == [[0, 1, 3], [2, 5], [4]]
    assert non_dominated(points, ["maximize", "minimize"]) == [0, 1, 3]


def test_fronts_partition_the_points_and_each_front_is_dominated_only_by_earlier_ones():
    rng = np.random.default_rng(1)
    for dims in (2, 3):
        points, directions = random_study(rng, dims)
        fronts = non_dominated_fronts(points, directions)
        assert sorted(i for front in fronts for i in front) == list(range(len(points)))
        assert fronts[0] == brute_non_dominated(points, directions)
        for earlier, later in zip(fronts, fronts[1:]):
            for i in later:
                assert any(brute_dominates(points[j], points[i], directions) for j in earlier)
            for i, j in itertools.product(later, later):
                assert not brute_dominates(points[j], points[i], directions)


def test_hypervolume_2d_by_hand():
    assert hypervolume([[1, 1]], [2, 2], MIN2) == 1.0
    # a staircase: 3x1 + 2x1 + 1x1 strips under the reference (4, 4)
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4], MIN2) == pytest.approx(6.0)
    # accuracy maximised, MACs minimised: boxes [0.5, 0.9] x [10, 20] and [0.5, 0.7] x [5, 20] overlap in 0.2 x 10
    assert hypervolume([[0.9, 10], [0.7, 5]], [0.5, 20], ["maximize", "minimize"]) == pytest.approx(4.0 + 3.0 - 2.0)


def test_hypervolume_3d_cube_cases():
    assert hypervolume([[0, 0, 0]], [1, 1, 1], MIN3) == pytest.approx(1.0)
    assert hypervolume([[0, 0, 0], [0.5, 0.5, 0.5]], [1, 1, 1], MIN3) == pytest.approx(1.0)  # dominated adds nothing
    # three half-cubes: 3 * 1/2 - 3 * 1/4 + 1/8 by inclusion-exclusion
    halves = [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    assert hypervolume(halves, [1, 1, 1], MIN3) == pytest.approx(0.875)
    assert hypervolume([[1, 1, 1]], [2, 3, 4], ["maximize"] * 3) == 0.0  # nothing beats this reference


def test_hypervolume_ignores_duplicates_dominated_points_and_points_outside_the_reference():
    front = [[1, 3, 2], [2, 1, 3], [3, 2, 1]]
    extra = front + [[1, 3, 2], [3, 3, 3], [5, 0, 0]]
    assert hypervolume(extra, [4, 4, 4], MIN3) == pytest.approx(hypervolume(front, [4, 4, 4], MIN3))


def test_hypervolume_matches_cell_counting_on_integer_studies():
    rng = np.random.default_rng(2)
    for dims in (2, 3, 4, 5):
        for _ in range(10):
            points, directions = random_study(rng, dims)
            reference = [-1 if d == "maximize" else 4 for d in directions]
            assert hypervolume(points, reference, directions) == pytest.approx(
                grid_hypervolume(points, reference, directions))


def test_hypervolume_matches_monte_carlo_on_continuous_fronts():
    rng = np.random.default_rng(3)
    for dims in (3, 5):
        points = np.abs(rng.normal(size=(40, dims)))
        points /= np.linalg.norm(points, axis=1, keepdims=True)  # on the unit sphere: most points non-dominated
        reference = np.full(dims, 1.1)
        samples = rng.uniform(0, 1.1, size=(50_000, dims))
        covered = np.zeros(len(samples), dtype=bool)
        for point in points:
            covered |= (samples >= point).all(axis=1)
        estimate = covered.mean() * 1.1 ** dims
        error = 4 * np.sqrt(covered.mean() * (1 - covered.mean()) / len(samples)) * 1.1 ** dims
        assert abs(hypervolume(points, reference, ["minimize"] * dims) - estimate) < error


def test_reference_point_is_the_worst_value_pushed_out_by_a_tenth_of_the_range():
    points = [[0.9, 100.0], [0.5, 300.0], [0.7, 200.0]]
    assert reference_point(points, ["maximize", "minimize"]) == pytest.approx([0.46, 320.0])


def test_reference_point_without_spread_uses_a_tenth_of_the_value_at_least_one_and_keeps_volume_positive():
    directions = ["maximize", "minimize", "minimize"]
    reference = reference_point([[0.8, 2e6, 0.0]], directions)
    assert reference == pytest.approx([0.7, 2.2e6, 0.1])
    assert hypervolume([[0.8, 2e6, 0.0]], reference, directions) > 0


def test_knee_is_the_front_member_closest_to_the_ideal_point():
    assert knee([[0, 1], [0.45, 0.45], [1, 0]], MIN2) == 1
    assert knee([[0.9, 10.0], [0.85, 2.0], [0.5, 1.0]], ["maximize", "minimize"]) == 1
    assert knee([[1, 2]], MIN2) == 0
    assert knee([], MIN2) is None


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        non_dominated([[1, 2, 3]], MIN2)
    with pytest.raises(ValueError):
        non_dominated([[1, float("nan")]], MIN2)
    with pytest.raises(ValueError):
        non_dominated([[1, 2]], ["minimise", "minimize"])
    with pytest.raises(ValueError):
        reference_point([], MIN2)

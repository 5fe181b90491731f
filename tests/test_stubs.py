"""The stubs students get are generated from the solutions and never drift from them."""
import re

import pytest

from grader.stubs import GRADED_MODULES, ROOT, MarkerError, make_stub, solution_source

SOLUTION_REGION = re.compile(r"# BEGIN SOLUTION[^\n]*\n(.*?)# END SOLUTION", re.S)


@pytest.mark.parametrize("module", GRADED_MODULES)
def test_committed_stub_is_generated_from_the_solution(module):
    committed = (ROOT / "hw" / f"{module}.py").read_text()
    assert committed == make_stub(solution_source(module), module), (
        f"hw/{module}.py differs from what solutions/{module}.py generates: "
        "edit the solution and run `python -m grader stubs`, never the stub")


@pytest.mark.parametrize("module", GRADED_MODULES)
def test_stub_holds_no_solution_line_and_a_todo_per_region(module):
    source = solution_source(module)
    stub = make_stub(source, module)
    regions = SOLUTION_REGION.findall(source)
    assert regions, f"solutions/{module}.py has no solution region"
    stub_lines = {line.strip() for line in stub.splitlines()}
    for region in regions:
        for line in region.splitlines():
            code = line.strip()
            if code and not code.startswith("#") and len(code) > 12:
                assert code not in stub_lines, f"solution line leaked into hw/{module}.py: {code}"
    assert stub.count("raise NotImplementedError(") == len(regions)


def test_marker_format():
    source = (
        "def f(x):\n"
        "    y = 1\n"
        "    # BEGIN SOLUTION: step 2, the answer\n"
        "    return x + y\n"
        "    # END SOLUTION\n"
    )
    assert make_stub(source, "policy_gradient") == (
        "def f(x):\n"
        "    y = 1\n"
        "    # TODO: step 2, the answer\n"
        "    raise NotImplementedError('f: TODO, step 2, the answer (hw/policy_gradient.py)')\n"
    )


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    # BEGIN SOLUTION\n    pass\n", "never closed"),
    ("def f():\n    pass\n    # END SOLUTION\n", "without a BEGIN"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION\n", "inside the region"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
])
def test_unpaired_markers_are_refused(source, problem):
    with pytest.raises(MarkerError, match=problem):
        make_stub(source, "natural_gradient")

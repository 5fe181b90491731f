"""Nothing refers to what is not there: the student release (`python -m grader release`)
and the repository's student-facing files name only files, folders and commands they hold.

A reference is a path-like word ending in a known extension (`hw/train.py`,
`docs/contract.md`), a folder of the release (`hw/tests/`), a Markdown link, or a
`python -m module` command. It resolves if the path exists from the root or from the
referring file's folder, or if it is a file that a documented command writes (OUTPUTS, a name after `--out`, or an
argparse default `Path(...)`). Besides, the release may not mention what only course staff have:
the solutions, the grader, the hidden tests, the benchmarks, a shared SPEC.

Then `python -m hw.submit` runs in the bundle: it packs the untouched stubs (with a
warning for every TODO), refuses a folder with a missing file or one that does not import.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.release import student_readme
from grader.stubs import ROOT

TEXT_SUFFIXES = {".md", ".py", ".toml", ".txt", ".cfg", ".ini"}
#: Files that the documented commands write (training logs, plots, the submission).
OUTPUTS = {"progress.csv", "config.json", "submission.zip", "results.json", "curve.png", "kl.png", "pendulum.png"}
PATH = re.compile(r"(?<![\w/.<>*-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|png|json|csv|toml|zip|txt|ini|cfg))(?![\w/])")
FOLDER = re.compile(r"(?<![\w/.<>-])((?:hw|docs|tests|runs|solutions|grader|benchmarks)/(?:[\w.-]+/)*)(?![\w.<*])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
MODULE = re.compile(r"python -m ([\w.]+)")
EXTERNAL_MODULES = {"pytest", "pip", "venv", "tensorboard"}
#: What only course staff have: the release must not mention it.
STAFF_ONLY = {
    "the shared SPEC": re.compile(r"\bSPEC\b|\.\./SPEC"),
    "benchmarks/": re.compile(r"benchmarks/"),
    "the solutions package": re.compile(r"HW_IMPLEMENTATION=solutions|--impl(?:ementation)? solutions|\bsolutions/"),
    "course staff": re.compile(r"[Cc]ourse staff|staff only"),
    "the grader's command line": re.compile(r"python -m grader|\bgrader/|hidden_tests"),
}


def text_files(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts \
                and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def dangling_references(root: Path, files, texts=None) -> list[str]:
    """`file: reference` for every reference in `files` that does not resolve under `root`
    (`texts`: {path: the part of the file to scan}, instead of all of it)."""
    problems = []
    for path in files:
        text = (texts or {}).get(path) or path.read_text()
        outputs = set(re.findall(r"--out\s+([\w./-]+)|default=Path\(\"([\w./-]+)\"\)", text)) | OUTPUTS
        outputs = {name for match in outputs for name in (match if isinstance(match, tuple) else (match,)) if name}
        modules = {(m, "module") for m in MODULE.findall(text)}
        references = {(r, "path") for r in PATH.findall(text)} | {(r, "folder") for r in FOLDER.findall(text)}
        references |= {(r, "link") for r in LINK.findall(text) if "://" not in r}
        for reference, kind in sorted(references | modules):
            if kind == "module":
                top = reference.split(".")[0]
                target = Path(*reference.split("."))
                if top in EXTERNAL_MODULES or (root / target).with_suffix(".py").is_file() \
                        or (root / target / "__init__.py").is_file() or (root / target / "__main__.py").is_file():
                    continue
            else:
                if reference in outputs or Path(reference).name in outputs or reference.startswith("runs/"):
                    continue
                if (root / reference).exists() or (path.parent / reference).exists():
                    continue
                if kind == "path" and "/" not in reference and any(root.rglob(reference)):
                    continue  # a file named by its name alone (`lq_env.py`), somewhere in the tree
            problems.append(f"{path.relative_to(root)}: {reference}")
    return sorted(set(problems))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "bundle"
    result = subprocess.run([sys.executable, "-m", "grader", "release", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_every_reference_in_the_release_resolves(release):
    problems = dangling_references(release, text_files(release))
    assert not problems, "references to what the release lacks:\n" + "\n".join(problems)


def test_the_release_mentions_nothing_only_course_staff_have(release):
    problems = [f"{path.relative_to(release)}:{number}: {what}: {line.strip()}"
                for path in text_files(release)
                for number, line in enumerate(path.read_text().splitlines(), start=1)
                for what, pattern in STAFF_ONLY.items() if pattern.search(line)]
    assert not problems, "\n".join(problems)


def test_the_release_ships_the_contract_and_the_pages_the_readme_links(release):
    readme = (release / "README.md").read_text()
    assert "docs/contract.md" in readme and (release / "docs" / "contract.md").is_file()
    for link in LINK.findall(readme):
        assert (release / link).is_file(), link


def test_every_reference_in_the_repository_s_student_files_resolves():
    # The README's student section (what the release ships), docs/ and hw/, from the repository's root.
    readme, found = student_readme()
    assert found
    files = [ROOT / "README.md", *text_files(ROOT / "docs"), *text_files(ROOT / "hw")]
    problems = dangling_references(ROOT, files, texts={ROOT / "README.md": readme})
    assert not problems, "references to what the repository lacks:\n" + "\n".join(problems)


def _submit(folder: Path, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(folder))  # the bundle's hw, not the repository's
    env.pop("HW_IMPLEMENTATION", None)
    return subprocess.run([sys.executable, "-m", "hw.submit", *flags], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)


def test_submit_packs_the_two_files_and_prints_the_public_tests_summary(release, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(release, bundle)
    result = _submit(bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(bundle / "submission.zip") as archive:
        assert sorted(archive.namelist()) == ["natural_gradient.py", "policy_gradient.py"]
        assert archive.read("policy_gradient.py").decode() == (bundle / "hw" / "policy_gradient.py").read_text()
    assert "discounted_return, reward_to_go, estimate_q_values" in result.stdout  # the TODOs left, named
    assert "still raise the TODO's NotImplementedError" in result.stdout
    assert re.search(r"public tests: \d+ failed, \d+ passed", result.stdout), result.stdout
    assert "hw/tests/test_part1_policy_gradient.py: 43 failed" in result.stdout, result.stdout


@pytest.mark.parametrize("damage, message", [
    ("missing", "natural_gradient.py missing"),
    ("syntax", "hw/natural_gradient.py does not import"),
])
def test_submit_refuses_a_missing_file_or_one_that_does_not_import(release, tmp_path, damage, message):
    bundle = tmp_path / "bundle"
    shutil.copytree(release, bundle)
    target = bundle / "hw" / "natural_gradient.py"
    if damage == "missing":
        target.unlink()
    else:
        target.write_text(target.read_text() + "\ndef broken(:\n    pass\n")
    result = _submit(bundle, "--no-tests")
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "nothing written" in result.stderr, result.stderr
    assert not (bundle / "submission.zip").exists()


def test_the_scanner_finds_what_is_missing(tmp_path):
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "here.py").write_text("")
    page = tmp_path / "page.md"
    page.write_text("See hw/here.py, [the contract](docs/contract.md), hw/gone.py, `python -m hw.nothing`,\n"
                    "and python -m hw.here; `python -m hw.here --out mine.png` writes mine.png.\n")
    assert dangling_references(tmp_path, [page]) == ["page.md: docs/contract.md", "page.md: hw.nothing",
                                                     "page.md: hw/gone.py"]

"""Damaged and encrypted .zip submissions: a clear note, and only what they must cost."""
from __future__ import annotations

import zipfile

from grader.submission import read_submission

GOOD = b"def discounted_return(rewards, gamma):\n    return rewards\n"


def write_zip(path, entries, encrypted=()):
    """A .zip of `entries`; those named in `encrypted` carry the "encrypted" flag (bit 0 of
    their flags, in the local and the central header, as `zip -e` sets it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    data = bytearray(path.read_bytes())
    for name in encrypted:
        with zipfile.ZipFile(path) as archive:
            data[archive.getinfo(name).header_offset + 6] |= 0x1
        central = data.index(b"PK\x01\x02")
        while central >= 0:
            length = int.from_bytes(data[central + 28:central + 30], "little")
            if data[central + 46:central + 46 + length] == name.encode():
                data[central + 8] |= 0x1
            central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    return path


def test_encrypted_member_costs_only_its_file(tmp_path):
    archive = write_zip(tmp_path / "alice.zip", {"hw/policy_gradient.py": GOOD, "hw/natural_gradient.py": GOOD * 3},
                        encrypted={"hw/natural_gradient.py"})
    files, notes = read_submission(archive)
    assert files == {"policy_gradient": GOOD, "natural_gradient": None}
    assert any("natural_gradient.py is encrypted" in n and "without a password" in n for n in notes), notes
    assert not any("natural_gradient.py not found" in n for n in notes), notes


def test_damaged_member_costs_only_its_file(tmp_path):
    archive = write_zip(tmp_path / "bob.zip", {"policy_gradient.py": GOOD, "natural_gradient.py": GOOD * 50})
    data = bytearray(archive.read_bytes())
    at = data.index(b"natural_gradient.py") + len("natural_gradient.py")  # its compressed bytes follow its name
    data[at:at + 40] = bytes(40)
    archive.write_bytes(bytes(data))
    files, notes = read_submission(archive)
    assert files["policy_gradient"] == GOOD and files["natural_gradient"] is None
    assert any("natural_gradient.py could not be read, the .zip is damaged" in n for n in notes), notes


def test_truncated_zip_is_named_not_a_traceback(tmp_path):
    archive = write_zip(tmp_path / "carol.zip", {"policy_gradient.py": GOOD, "natural_gradient.py": GOOD})
    archive.write_bytes(archive.read_bytes()[:-30])  # the end of the central directory is gone
    files, notes = read_submission(archive)
    assert files == {"policy_gradient": None, "natural_gradient": None}
    assert any("carol.zip could not be opened as a .zip" in n for n in notes), notes

"""Test-session settings that must precede the first import of scipy."""
import os

# scikit-learn's check_array_api_input runs only when scipy is in array-API mode; set it
# before anything imports scipy so that the check runs instead of skipping.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def tmpfs(tmp_path):
    """mount(options) -> a folder under tmp_path with a tmpfs mounted there with `options`
    (e.g. "size=2m", "ro"); root only, else the test skips; unmounted whatever happens."""
    mounted = []

    def mount(options):
        import os
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)

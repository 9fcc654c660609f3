"""Checks a native fieldflow file written by datasets/tests/python_interop.rs with h5py + numpy.

Usage: check_native.py FILE.h5

The expected contents mirror the Rust test's fixture (datasets/tests/common/mod.rs): channels
(u, v), coefficient a, trajectories at times (0, 0.5, 1.25), 5 samples on a 4 x 6 grid, float32.
Exits 0 when every check passes, 1 with a message otherwise.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np

N, C, T, NY, NX = 5, 2, 3, 4, 6


def pattern(n, c, y, x):
    return n * 1000 + c * 100 + y * 10 + x + 0.25


def coef_pattern(n, c, y, x):
    return -(n * 1000 + c * 100 + y * 10 + x) - 0.5


def traj_pattern(n, t, c, y, x):
    return n * 10000 + t * 1000 + c * 100 + y * 10 + x + 0.125


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def main(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert int(a["fieldflow_format"]) == 1, a["fieldflow_format"]
        assert text(a["pde"]) == "navier_stokes", a["pde"]
        assert [text(s) for s in a["channels"]] == ["u", "v"], a["channels"]
        assert [text(s) for s in a["coefficient_channels"]] == ["a"], a["coefficient_channels"]
        assert float(a["lx"]) == 2.0 and float(a["ly"]) == 1.0
        assert text(a["boundary"]) == "periodic"
        assert int(a["seed"]) == 42
        assert text(a["created_by"]).startswith("fieldflow "), a["created_by"]
        assert text(a["config"]) == "# test\n[data]\nsamples = 5\n", repr(a["config"])

        fields = f["fields"]
        assert fields.shape == (N, C, NY, NX) and fields.dtype == np.float32, (fields.shape, fields.dtype)
        assert f["coefficients"].shape == (N, 1, NY, NX)
        assert f["trajectories"].shape == (N, T, C, NY, NX)
        np.testing.assert_array_equal(f["time"][()], [0.0, 0.5, 1.25])
        np.testing.assert_allclose(f["grid/x"][()], np.arange(NX) * 2.0 / NX, rtol=0, atol=1e-15)
        np.testing.assert_allclose(f["grid/y"][()], np.arange(NY) * 1.0 / NY, rtol=0, atol=1e-15)

        np.testing.assert_array_equal(fields[()], np.fromfunction(pattern, (N, C, NY, NX)))
        np.testing.assert_array_equal(f["coefficients"][()], np.fromfunction(coef_pattern, (N, 1, NY, NX)))
        np.testing.assert_array_equal(f["trajectories"][()], np.fromfunction(traj_pattern, (N, T, C, NY, NX)))
        # A partial read, as a training loader would do it.
        np.testing.assert_array_equal(fields[2:4, 1], np.fromfunction(pattern, (N, C, NY, NX))[2:4, 1])

        for name, channel_axis in [("fields", 1), ("coefficients", 1), ("trajectories", 2)]:
            data = f[name][()]
            axes = tuple(a for a in range(data.ndim) if a != channel_axis)
            data = data.astype(np.float64)
            np.testing.assert_allclose(f[f"stats/{name}_mean"][()], data.mean(axis=axes), rtol=1e-12)
            np.testing.assert_allclose(f[f"stats/{name}_std"][()], data.std(axis=axes), rtol=1e-12)
            np.testing.assert_array_equal(f[f"stats/{name}_min"][()], data.min(axis=axes))
            np.testing.assert_array_equal(f[f"stats/{name}_max"][()], data.max(axis=axes))
            count = int(f["stats"].attrs[f"{name}_count"])
            assert count == data.size // data.shape[channel_axis], (name, count)

    sidecar = Path(path).with_suffix(".xdmf")
    root = ET.parse(sidecar).getroot()
    assert root.tag == "Xdmf" and root.get("Version") == "3.0"
    refs = {item.text.strip() for item in root.iter("DataItem") if item.get("Format") == "HDF"}
    name = Path(path).name
    assert refs == {f"{name}:/grid/x", f"{name}:/grid/y", f"{name}:/fields", f"{name}:/coefficients",
                    f"{name}:/trajectories"}, refs
    print("ok")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except AssertionError as e:
        print(f"check_native.py: FAILED: {e!r}", file=sys.stderr)
        raise

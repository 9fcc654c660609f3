"""ParaView's XDMF reader (VTK's vtkXdmfReader) loads fieldflow's sidecars.

Usage: vtk_reader.py FILE.h5 [FILE.h5 ...]

For each file, opens the `.xdmf` beside it with vtkXdmfReader, and checks against h5py that every
channel of `/fields` (and of `/coefficients`) of the first two samples loads with the values on
disk, and that the reader's time steps include the trajectory times (`/time`) when the file has
trajectories. Exits non-zero with a message on the first mismatch.
"""
import sys

import h5py
import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkCompositeDataSet
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline
from vtkmodules.vtkIOXdmf2 import vtkXdmfReader


def names(attr):
    return [c.decode() if isinstance(c, bytes) else str(c) for c in attr]


def blocks(data, prefix=""):
    """(name, dataset) of every leaf of a composite dataset."""
    if data is None:
        return
    if data.IsA("vtkMultiBlockDataSet"):
        for i in range(data.GetNumberOfBlocks()):
            meta = data.GetMetaData(i)
            name = meta.Get(vtkCompositeDataSet.NAME()) if meta and meta.Has(vtkCompositeDataSet.NAME()) else str(i)
            yield from blocks(data.GetBlock(i), prefix + name + "/")
    else:
        yield prefix.rstrip("/"), data


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


for h5 in sys.argv[1:]:
    xdmf = h5[: -len(".h5")] + ".xdmf"
    f = h5py.File(h5, "r")
    fields = f["fields"][()]
    channels = names(f.attrs["channels"])
    coefficients = f["coefficients"][()] if "coefficients" in f else None
    coefficient_names = names(f.attrs["coefficient_channels"]) if coefficients is not None else []
    reader = vtkXdmfReader()
    reader.SetFileName(xdmf)
    reader.UpdateInformation()
    info = reader.GetOutputInformation(0)
    steps = list(info.Get(vtkStreamingDemandDrivenPipeline.TIME_STEPS()) or [])
    if "time" in f:
        missing = [t for t in f["time"][()] if not any(abs(t - s) <= 1e-9 * max(1.0, abs(t)) for s in steps)]
        if missing:
            fail(f"{xdmf}: the reader's time steps {steps} lack the trajectory times {missing}")
    for sample in range(min(2, fields.shape[0])):
        if steps:
            reader.UpdateTimeStep(float(sample))
        else:
            reader.Update()
        found = dict(blocks(reader.GetOutputDataObject(0)))
        grid = found.get("fields") or next((d for n, d in found.items() if not n.startswith("trajectory")), None)
        if grid is None:
            fail(f"{xdmf}: no grid for /fields among {list(found)}")
        points = grid.GetPointData()
        loaded = [points.GetArrayName(i) for i in range(points.GetNumberOfArrays())]
        expected = [(c, fields[sample, i]) for i, c in enumerate(channels)]
        expected += [(c if c not in channels else f"coefficient_{c}", coefficients[sample, i]) for i, c in enumerate(coefficient_names)]
        for name, values in expected:
            array = points.GetArray(name)
            if array is None:
                fail(f"{xdmf}: sample {sample}: the reader loaded {loaded}, not {name!r}")
            got = vtk_to_numpy(array).reshape(values.shape)
            if not np.array_equal(got, values.astype(got.dtype)):
                fail(f"{xdmf}: sample {sample}, {name}: max |vtk - h5py| = {np.abs(got - values).max():e}")
    print(f"{xdmf}: {len(channels) + len(coefficient_names)} arrays of {min(2, fields.shape[0])} samples as h5py reads them; {len(steps)} time steps")

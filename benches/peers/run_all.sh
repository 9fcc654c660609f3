#!/usr/bin/env bash
# Run the Python reference ("peer") benchmarks that fieldflow's criterion benches are compared with.
# Creates/uses the venv benches/peers/.venv, installs requirements.txt, prints the kernels numpy
# uses, then runs ns_step.py, leray.py and darcy.py. Usage: bash benches/peers/run_all.sh
set -euo pipefail
cd "$(dirname "$0")"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set on this machine, force slow OpenBLAS kernels:
# report them, then unset both for the benchmark runs.
echo "# found OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>} (unset for the runs)"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

PY=.venv/bin/python
awk '$1 > 0.5 { print "# WARNING: load average " $1 " > 0.5: another job is using the 2 cores, numbers will be noisy" }' /proc/loadavg
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
$PY - <<'PY'
import jax, numpy, scipy, scipy.linalg, scipy.sparse.linalg, threadpoolctl
print(f"# python numpy={numpy.__version__} scipy={scipy.__version__} jax={jax.__version__}")
for p in threadpoolctl.threadpool_info():
    print(f"# threadpool api={p['internal_api']} version={p.get('version')} "
          f"kernels={p.get('architecture')} threads={p['num_threads']} lib={'/'.join(p['filepath'].split('/')[-2:])}")
PY
$PY ns_step.py
$PY leray.py
$PY darcy.py

set -u
ROOT=$(pwd)
SITE=/tmp/site; mkdir -p $SITE
python -m pip install -q --no-index --no-deps --no-compile --root-user-action=ignore --target $SITE .whl/*.whl || exit 3
python -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --root-user-action=ignore --target $SITE . || exit 4
export PYTHONPATH=$SITE
cd /tmp && cp -r "$ROOT"/tests /tmp/tests && cd /tmp
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python -m pytest -q -p no:cacheprovider -m gpu /tmp/tests/test_vae.py 2>&1 | tail -8
timeout 240 python - <<'PY'
import time
from ehrbench.api import RunContext
from ehrbench.plugins import load_registry
from ehrbench.matrix import split
from ehrbench_plugins.generators.vae.models import SynthVAE, CVAE
m = load_registry().get("datasets", "simulated").configure({}, "quick").load()
tr = split(m, 0, 0.3).train
print("train", tr.X.shape, flush=True)
for cls, opts in ((SynthVAE, {}), (SynthVAE, {"dp": True}), (CVAE, {}), (SynthVAE, {"threads": 0})):
    for profile in ("quick",):
        g = cls.configure(profile, opts); t = time.perf_counter()
        g.fit(tr.X, RunContext(seed=1, device="cuda")); f = time.perf_counter() - t
        t = time.perf_counter(); s = g.sample(13956, RunContext(seed=1, device="cuda")); d = time.perf_counter() - t
        print(cls.name, profile, opts, f"fit {f:.1f} s sample {d:.2f} s", g.privacy_guarantee(), round(float((s > 0).sum(1).mean()), 2), flush=True)
PY

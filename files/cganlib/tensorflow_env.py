"""TensorFlow's settings that only take effect when made before TensorFlow is imported: every
module that imports keras or tensorflow imports this first.

- oneDNN kernels on every x86 CPU. TensorFlow turns them on by itself only on CPUs with AVX-512
  VNNI or BF16 or AMX; on an AVX2-only CPU it runs Eigen's kernels instead, which made the
  demo's training step 2 to 3.5 times slower on our 2-core AMD EPYC (bench/bench_epoch.py).
  TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps Eigen's (`TF_ENABLE_ONEDNN_OPTS=0 python
  files/bench/bench_epoch.py` measures them).
- Start-up chatter out of the logs.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

"""benchmarks/gpu.py --small runs end to end (both frameworks, the tables), so the GPU script cannot rot on CPU."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_gpu_benchmark_small_mode_prints_both_tables(tmp_path):
    out_md = tmp_path / "BENCH.md"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu.py"), "--small", "--models",
                           "seed_cnn", "--steps", "2", "--warmup", "1", "--chunk", "1", "--write", str(out_md)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    rows = [next(line for line in lines if line.startswith(prefix)) for prefix in ("| seed CNN", "| seed_cnn")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[4]) > 0  # zoo step ms
    assert float(cells[9]) > 0 and cells[12].endswith("x")  # the PyTorch peer ran and the ratio is printed
    # FLOPs from the model's shapes and from XLA's cost analysis agree to within the element-wise work
    analytic, xla = (float(c.replace(",", "")) for c in rows[1].strip("|").split("|")[1:3])
    assert 0.9 < xla / analytic < 1.3
    text = out_md.read_text()
    assert "<!-- gpu.py: begin -->" in text and "<!-- gpu.py: end -->" in text and "| seed CNN" in text

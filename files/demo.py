"""The whole pipeline in one command, on synthetic chest X-rays whose findings are known.

    python files/demo.py                     # about 15 minutes on 2 CPU cores
    python files/demo.py --minutes 30        # a longer training budget, clearer heatmaps

Runs the project's own scripts one after the other in a subprocess each, printing each command
first (the same command a user would type) and streaming its output:
  1. make_phantoms.py   grey chest phantoms, Kermany's layout: healthy, viral (haze over both
                        lungs), bacterial (a consolidation in the right lower lobe), with ground truth
  2. prepare_xrays.py   80x80 equalized training set
  3. train_cgan.py      the conditional GAN, X-ray setting, at a small width and faster learning
                        rates than the original's (printed; the original's need hours)
  4. heatmaps.py        delta heatmaps of the last epochs' generators
Then it scores the heatmaps against the ground truth (scoring.py): of the pixels painted
where "bacterial" is brighter than "healthy", the share inside the lesion region, against that
region's share of the image (what random painting scores); the same for "viral" and the lungs.

Writes into --out_dir (default demo_run/; --work_dir is its older name):
  chest_xray/, ground_truth.npz                 the phantoms and their lesion and lung masks
  img_align_xray.npz, labels_align_xray.npz     the training set; real_plots/ its sample grids
  results/   generator_model_NNN.h5 (+ _gan, _dis), generated_plot_eNNN.png, history.csv, losses.png
  heatmaps/  generator_model_NNN.h5.png and .npz for the last --heatmap_epochs epochs
  cgan/      the models' summaries
Its last line is machine-readable:
  RESULT bacterial_in_lesion=<f> lesion_area=<f> viral_in_lungs=<f> lung_area=<f> minutes=<f>
the shares pooled over the heatmapped epochs; minutes is the demo's wall time.

--minutes -> epochs: the training gets the budget less a fixed allowance for the other steps
(OTHER_STEPS_SECONDS), divided by the planned seconds per epoch: (images // 64) batches at
SECONDS_PER_BATCH (measured on 2 CPU cores at width 16, scaled by the square of the width,
since the convolutions dominate) plus the end-of-epoch sample grid and model files
(SECONDS_PER_EPOCH_END). --epochs sets the epochs directly. Nothing is measured at run time.
The default 15 minutes plan 149 epochs of 900 phantoms (2,086 batches); on our 2 cores the demo
took 15.1 minutes and scored bacterial 0.39 against a lesion area of 0.05, viral 0.75 against a
lung area of 0.31. The consolidation is learnt last (after about 100 epochs): shorter runs score
bacterial near chance.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time

import cli
import run_folder
from datasets import N_BATCH
from phantoms import GROUND_TRUTH
from scoring import score_heatmap
from storage import InputError, fail, writable_folder

FILES = os.path.dirname(os.path.abspath(__file__))

# The demo's training settings. At width 16 the original's rates (d 0.00004, g 0.0002) leave the
# generator flat grey for hundreds of batches; g 0.005 draws anatomy within 10 epochs, d 0.0005
# lets the label be learnt (with d 0.002 the discriminator won and the generator stayed grey; with
# d 0.001 the samples varied but ignored the label for 68 epochs).
FILTERS = 16
D_LR, G_LR, D_BETA1 = 0.0005, 0.005, 0.5
LESION_STRENGTH, HAZE_STRENGTH = 0.6, 0.4

# The --minutes -> epochs plan, 2 CPU cores.
SECONDS_PER_BATCH = 0.33  # compiled step, batch of 64, width 16 (history.csv's median epoch: 4.7 s)
REFERENCE_FILTERS = 16
SECONDS_PER_EPOCH_END = 0.8  # accuracies, sample grid, three model files
OTHER_STEPS_SECONDS = 90.0  # phantoms, preparation, heatmaps, three TensorFlow start-ups


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--out_dir", "--work_dir", dest="out_dir", default="demo_run",
                   help="folder for everything the demo writes (default %(default)s)")
    p.add_argument("--minutes", type=cli.number(0, low_open=True), default=15.0, help="wall-time budget of the whole demo")
    p.add_argument("--epochs", type=cli.POSITIVE, help="train this many epochs (default: as many as --minutes allows)")
    p.add_argument("--n", type=cli.POSITIVE, default=300, help="phantoms per class (healthy, viral, bacterial)")
    p.add_argument("--filters", type=cli.POSITIVE, default=FILTERS, help="width of the GAN's conv layers (original: 128)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the phantoms, the training and the heatmaps")
    p.add_argument("--heatmap_epochs", type=cli.POSITIVE, default=3,
                   help="draw and score the heatmaps of this many last epochs")
    p.add_argument("--n_samples", type=cli.POSITIVE, default=3, help="latent pairs per heatmap (10 images each)")
    p.add_argument("--lesion_strength", type=cli.number(0, 1), default=LESION_STRENGTH, help="make_phantoms.py's")
    p.add_argument("--haze_strength", type=cli.number(0, 1), default=HAZE_STRENGTH, help="make_phantoms.py's")
    p.add_argument("--d_lr", type=cli.RATE, default=D_LR, help="train_cgan.py's (original: 0.00004)")
    p.add_argument("--g_lr", type=cli.RATE, default=G_LR, help="train_cgan.py's (original: 0.0002)")
    p.add_argument("--d_beta1", type=cli.BETA, default=D_BETA1, help="train_cgan.py's (original: 0.08)")
    p.add_argument("--mixed_precision", action="store_true", help="train in bfloat16")
    return p.parse_args(argv)


def check_args(args):
    if 3 * args.n < N_BATCH:
        raise InputError(f"--n {args.n} gives {3 * args.n} images, fewer than one batch of {N_BATCH}; use --n 22 or more")


def planned_epochs(minutes, n_images, filters):
    """Epochs that fit the budget (at least 1): see the module docstring."""
    batch = SECONDS_PER_BATCH * (filters / REFERENCE_FILTERS) ** 2
    epoch = (n_images // N_BATCH) * batch + SECONDS_PER_EPOCH_END
    return max(1, int((minutes * 60 - OTHER_STEPS_SECONDS) / epoch))


def prepare_work_dir(work_dir):
    """Create the work folder; clear a previous demo's training outputs, refuse a stranger's folder."""
    if os.path.isdir(work_dir) and os.listdir(work_dir) and not os.path.exists(os.path.join(work_dir, GROUND_TRUTH)):
        raise InputError(f"{work_dir} is not empty and holds no demo run ({GROUND_TRUTH}); pick another --out_dir")
    writable_folder(work_dir)
    # epochs of a longer earlier run would otherwise be heatmapped as if this run made them
    for folder in ("results", "heatmaps"):
        shutil.rmtree(os.path.join(work_dir, folder), ignore_errors=True)


def run_step(script, *args):
    """Run files/<script> as a user would, its output streaming; return its exit status."""
    shown = shlex.join(["python", os.path.join("files", script), *map(str, args)])
    print(f"\n$ {shown}", flush=True)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.run([sys.executable, os.path.join(FILES, script), *map(str, args)], env=env, check=False).returncode


def require(status, script):
    if status != 0:
        fail(f"{script} failed (exit status {status}); its messages are above", status=1)


def pooled_scores(heatmap_paths, ground_truth):
    """heatmap_scores over several heatmaps, the painted pixels of all of them pooled."""
    inside = {"bacterial": 0.0, "viral": 0.0}
    painted = {"bacterial": 0, "viral": 0}
    for path in heatmap_paths:
        scores = score_heatmap(path, ground_truth)
        print(f"  {os.path.basename(path)}: bacterial {scores['bacterial_in_lesion']:.3f} of "
              f"{scores['bacterial_painted']} px in lesion, viral {scores['viral_in_lungs']:.3f} of "
              f"{scores['viral_painted']} px in lungs")
        for kind, share in (("bacterial", "bacterial_in_lesion"), ("viral", "viral_in_lungs")):
            inside[kind] += scores[share] * scores[f"{kind}_painted"]
            painted[kind] += scores[f"{kind}_painted"]
    return {
        "bacterial_in_lesion": inside["bacterial"] / painted["bacterial"] if painted["bacterial"] else 0.0,
        "lesion_area": scores["lesion_area"],
        "viral_in_lungs": inside["viral"] / painted["viral"] if painted["viral"] else 0.0,
        "lung_area": scores["lung_area"],
    }


def run_demo(args):
    """The four steps and the scores; returns the scores."""
    w = args.out_dir
    results, heatmaps = os.path.join(w, "results"), os.path.join(w, "heatmaps")
    require(run_step(
        "make_phantoms.py", "--out_dir", w, "--n", args.n, "--seed", args.seed, "--lesion_strength",
        args.lesion_strength, "--haze_strength", args.haze_strength, "--overwrite",
    ), "make_phantoms.py")
    require(run_step("prepare_xrays.py", "--images", os.path.join(w, "chest_xray"), "--out_dir", w), "prepare_xrays.py")

    train_args = [
        "--dataset", "xray", "--data_dir", w, "--results_dir", results, "--summary_dir", os.path.join(w, "cgan"),
        "--epochs_goal", args.epochs, "--filters", args.filters, "--n_batch", N_BATCH, "--seed", args.seed,
        "--d_lr", args.d_lr, "--g_lr", args.g_lr, "--d_beta1", args.d_beta1, "--real_plots", 2,
    ]
    status = run_step("train_cgan.py", *train_args, *(["--mixed_precision"] if args.mixed_precision else []))
    if status == cli.EXIT_TOO_MANY_REBUILDS:
        print("training stopped early (collapse guard); the demo goes on with the epochs saved", flush=True)
    else:
        require(status, "train_cgan.py")
    epochs = run_folder.complete_epochs(results)[-args.heatmap_epochs:]
    require(run_step(
        "heatmaps.py", "--dataset", "xray", "--data_dir", w, "--models_dir", results, "--out_dir", heatmaps,
        "--epochs", *epochs, "--seed", args.seed, "--n_samples", args.n_samples,
    ), "heatmaps.py")

    print(f"\nscores against {os.path.join(w, GROUND_TRUTH)} (paint threshold 0.2):", flush=True)
    paths = [os.path.join(heatmaps, os.path.basename(run_folder.model_paths(results, epoch)["generator"]) + ".npz")
             for epoch in epochs]
    scores = pooled_scores(paths, os.path.join(w, GROUND_TRUTH))
    print(f"\noutputs in {w}/:")
    print(f"  phantoms       {os.path.join(w, 'chest_xray')}  (truth: {os.path.join(w, GROUND_TRUTH)})")
    print(f"  training set   {os.path.join(w, 'img_align_xray.npz')}, real samples in {os.path.join(w, 'real_plots')}")
    print(f"  training       {results}: generator_model_NNN.h5, generated_plot_eNNN.png, history.csv, losses.png")
    print(f"  heatmaps       {heatmaps}: " + ", ".join(os.path.basename(p)[:-4] + ".png" for p in paths))
    return scores


def main(argv=None):
    start = time.time()
    args = parse_args(argv)
    try:
        check_args(args)
        prepare_work_dir(args.out_dir)
    except InputError as e:
        fail(str(e))
    n_images = 3 * args.n
    plan = "--epochs"
    if args.epochs is None:
        args.epochs = planned_epochs(args.minutes, n_images, args.filters)
        plan = f"planned for --minutes {args.minutes:g}"
    print(f"demo training settings: {n_images} phantoms ({args.n} per class), lesion_strength={args.lesion_strength:g} "
          f"haze_strength={args.haze_strength:g}; width {args.filters}, {args.epochs} epochs ({plan}) of "
          f"{n_images // N_BATCH} batches of {N_BATCH}, d_lr={args.d_lr:g} g_lr={args.g_lr:g} d_beta1={args.d_beta1:g}"
          f"{', bfloat16' if args.mixed_precision else ''}; seed {args.seed}", flush=True)
    try:
        scores = run_demo(args)
    except KeyboardInterrupt:
        fail("interrupted", status=cli.EXIT_INTERRUPTED)
    except InputError as e:
        fail(str(e))
    minutes = (time.time() - start) / 60
    print(" ".join(["RESULT", *(f"{key}={scores[key]:.4f}" for key in scores), f"minutes={minutes:.2f}"]), flush=True)


if __name__ == "__main__":
    main()

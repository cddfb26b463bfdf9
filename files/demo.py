"""The whole pipeline in one command, on synthetic chest X-rays whose findings are known: the
delta heatmaps of a conditional GAN and the explainer that switches each patient's own image,
against a classifier's saliency maps, all scored against the truth.

    python files/demo.py                         # within 10 minutes on 2 CPU cores
    python files/demo.py --lesion_place fixed    # every consolidation in the right lower lobe
    python files/demo.py --minutes 30            # a longer training budget
    python files/demo.py --data_dir my_xrays --minutes 30   # your own X-rays (prepare_xrays.py's output)

Runs the project's own scripts one after the other in a subprocess each, printing each command
first (the same command a user would type) and streaming its output:
  1. make_phantoms.py     grey chest phantoms, Kermany's layout: healthy, viral (haze over both
                          lungs), bacterial (a consolidation in the right lower lobe, or with
                          --lesion_place any in either lung and zone), with ground truth
  2. prepare_xrays.py     80x80 equalized training set
  3. train_classifier.py  the baseline: a small CNN classifier of the same images, 20% of each
                          class held out; again with --architecture vgg, another seed and the same
                          split: the judge, which scores the switches and makes no map
  4. train_cgan.py        the conditional GAN, X-ray setting, at a small width, batches of 16 and
                          faster learning rates than the original's (printed; the original's need hours)
  5. heatmaps.py          delta heatmaps of the last epochs' generators, and (--average) the mean
                          delta over --average_latents latents drawn as in training
     evaluate.py          the same epochs' generators measured against the real phantoms on the
                          classifier's features (--evaluate_n images per class); one line per class
  6. saliency.py          Grad-CAM, CAM and Integrated Gradients (from the black image, a blurred
                          copy and the healthy mean) of the held-out viral and bacterial images
     train_explainer.py   the explainer: each training image switched to another label itself
                          (its share of the budget: EXPLAINER_SHARE)
     explain_image.py     --explain_n held-out bacterial and viral phantoms switched to healthy by
                          the explainer: its change per image, and (--classifier, --judge) the
                          measures that need no masks
  7. heatmaps.py, saliency.py --randomized_weights: the same from re-initialized weights, the
                          sanity check of Adebayo et al. 2018
Then it scores every map against the ground truth (scoring.py) and prints one table (method x
finding x score): the bacterial-vs-healthy maps against the lesion region, the viral-vs-healthy
ones against the lung fields; class-level maps (the mean delta, the mean of each saliency map,
the class-mean difference of the training images, which needs no model) against the union of
all images' masks, and each held-out image's explainer change, Grad-CAM, CAM, IG and the
class-mean difference against that image's own mask. Scores: pixel ROC-AUC (0.5 is chance), energy inside (the share of the
map's positive mass inside the mask), the pointing game (is the map's maximum inside), and for
the delta today's painted share at 0.2 (energy, pointing and painted share score the mask's
area by chance).

Writes into --out_dir (default demo_run/; --work_dir is its older name), which must be empty or
an earlier demo's (its files are removed first; a folder holding any other file is refused):
  demo_files.json                               every file the demo wrote there (the next run removes those)
  chest_xray/, ground_truth.npz                 the phantoms and their lesion and lung masks
  img_align_xray.npz, labels_align_xray.npz     the training set
  classifier/  classifier.keras, held_out.npz   the baseline and its held-out evaluation
  judge/       classifier.keras, held_out.npz   the judge (the same split)
  explainer/   run_config.json, explainer_NNN.weights.h5, switched_eNNN.png, history.csv
  results/   generator_model_NNN.h5 (+ _gan, _dis), generated_plot_eNNN.png, history.csv, losses.png,
             real_plots/ (the training set's sample grids), summaries/ (the models')
  heatmaps/  generator_model_NNN.h5.png, .npz, .average.png, .average.npz for the last --heatmap_epochs
  evaluation/  evaluation.csv, evaluation.png     the measures of the same epochs' generators
  saliency/  saliency_1.npz, saliency_2.npz      the classifier's maps of the held-out viral, bacterial images
  explained/lesion/, explained/lungs/            explain_image.py's figure and .npz per finding
  heatmaps_randomized/, saliency_randomized/    the sanity check's
  comparison.png   per finding: the class's mean phantom, the true region, the averaged delta,
                   the class-mean difference, mean Grad-CAM, mean CAM, mean IG (three baselines)
Its last line is machine-readable:
  RESULT bacterial_in_lesion=<f> lesion_area=<f> viral_in_lungs=<f> lung_area=<f>
         delta_auc_lesion=<f> gradcam_auc_lesion=<f> cam_auc_lesion=<f> ig_auc_lesion=<f>
         delta_auc_lungs=<f> gradcam_auc_lungs=<f> cam_auc_lungs=<f> ig_auc_lungs=<f>
         delta_energy_lesion=<f> gradcam_energy_lesion=<f> delta_energy_lungs=<f> gradcam_energy_lungs=<f>
         classifier_accuracy=<f> delta_painted_lesion=<f> delta_painted_lungs=<f>
         gradcam_image_auc_lesion=<f> gradcam_image_auc_lungs=<f> random_delta_auc_lesion=<f>
         random_gradcam_auc_lesion=<f> random_delta_auc_lungs=<f> random_gradcam_auc_lungs=<f>
         mean_diff_auc_lesion=<f> mean_diff_auc_lungs=<f> mean_diff_energy_lesion=<f> mean_diff_energy_lungs=<f>
         mean_diff_image_auc_lesion=<f> mean_diff_image_auc_lungs=<f> mean_diff_image_energy_lesion=<f>
         mean_diff_image_energy_lungs=<f> ig_blur_auc_lesion=<f> ig_blur_auc_lungs=<f>
         ig_reference_auc_lesion=<f> ig_reference_auc_lungs=<f> explain_image_auc_lesion=<f>
         explain_image_auc_lungs=<f> explain_image_energy_lesion=<f> explain_image_energy_lungs=<f>
         gradcam_image_energy_lesion=<f> gradcam_image_energy_lungs=<f>
         explain_recon_ssim=<f> explain_flip_rate=<f> explain_outside_change=<f> (both findings' images),
         explain_recon_ssim_lesion=<f> ... explain_outside_change_lungs=<f> (each finding's),
         recon_ssim_lesion=<f> recon_agree_lesion=<f> flip_rate_lesion=<f> deletion_auc_<map>_lesion=<f> ...
         insertion_auc_<map>_lesion=<f> ... judge_recon_agree_lesion=<f> judge_flip_rate_lesion=<f>
         judge_deletion_auc_<map>_lesion=<f> ... (maps delta, gradcam, ig, mean_diff, random), the same for lungs,
         collapsed_classes=<n> gen_precision=<f> gen_recall=<f> minutes=<f>
(one line): the first four are today's painted shares of the interpolation heatmaps, pooled
over the heatmapped epochs; the delta_* scores are the averaged delta's, pooled over the same
epochs; the classifier's maps are class-level unless named _image_; random_* are the sanity
check's; mean_diff_* are the class-mean difference's (the mean real bacterial or viral training
image minus the mean healthy one: the baseline that needs no model), class-level and, as
every held-out image's map, per image; ig_* is Integrated Gradients from the black image,
ig_blur_* from a blurred copy, ig_reference_* from the healthy mean; explain_image_* are the
explainer's change (explain_image.py --explainer on --explain_n held-out phantoms of each finding,
switched to healthy), per image against each image's own mask; explain_recon_ssim is the SSIM of
the image the explainer returns under its own label against the given one, explain_flip_rate the
judge's share of switched images it calls healthy, explain_outside_change the mean absolute
change outside each image's mask; recon_agree_*, flip_rate_*, deletion_auc_* and insertion_auc_*
are explain_image.py --classifier's measures of the same images, which need no masks (its help
says what each is; the delta map is the explainer's change), judge_* the same asked of the judge;
collapsed_classes counts the classes evaluate.py flags collapsed at the last epoch, gen_precision
and gen_recall are that epoch's precision and recall (evaluate.py's) averaged over the classes;
minutes is the demo's wall time.

With --data_dir (prepare_xrays.py's output, names.txt beside it for the patient split) the demo
skips the phantoms and explains each patient with design c: train_classifier.py (classifier and
judge, into --out_dir); train_cgan.py for what the budget leaves (--epochs), at the demo's GAN
flags, on gan_data/, the X-rays but the held-out ones; train_explainer.py --architecture inversion,
an encoder to that GAN's last generator (--explainer_epochs, default XRAY_ENCODER_EPOCHS); then
explain_image.py on every held-out viral and bacterial X-ray: its latent from the encoder (then
XRAY_PROJECTION_STEPS steps of the projection), the generator tuned to it (--tune_steps XRAY_TUNE_STEPS), switched to healthy with the label pushed
past it (--exaggerate XRAY_EXAGGERATE); and the RESULT line, per class (_viral, _bacterial):
judge_flip_rate, explain_recon_ssim, judge_deletion_auc_explain, judge_deletion_auc_gradcam,
judge_deletion_auc_random (the judge's deletion AUC of the explainer's change, of the
classifier's Grad-CAM and of a random map), then minutes.

--minutes -> epochs: the training gets the budget less a fixed allowance for the other steps
(OTHER_STEPS_SECONDS); the explainer EXPLAINER_SHARE of it, at SECONDS_PER_EXPLAINER_STEP a step
(with --data_dir: the encoder's epochs and the tuning first, at SECONDS_PER_ENCODER_IMAGE and
SECONDS_PER_TUNED_IMAGE);
the GAN the rest, divided by the planned seconds per epoch: (images // --n_batch) batches at
SECONDS_PER_BATCH (measured on 2 CPU cores at width 16 and batch 16, scaled by the batch and by
the square of the width, since the convolutions dominate) plus the end-of-epoch sample grid and
model files (SECONDS_PER_EPOCH_END); a budget that fits no epoch is refused. --epochs sets the
epochs directly. Nothing is measured at run time.
"""

import contextlib
import json
import math
import os
import shlex
import subprocess
import sys
import time

from cganlib import cli, config, run_folder
from cganlib.datasets import (
    BACTERIAL,
    DATASETS,
    HEALTHY,
    VIRAL,
    load_prepared,
    manifest_file,
    training_rows,
)
from cganlib.flags import CLASSIFIER_FILE, HELD_OUT_FILE
from cganlib.phantoms import GROUND_TRUTH, LESION_PLACES
from cganlib.scoring import (
    CURVE_MAPS,
    FINDINGS,
    class_map,
    class_mean_difference,
    explained_measures,
    pooled_average,
    score_average_arrays,
    score_explained,
    score_heatmap,
    score_saliency,
    score_table,
)
from cganlib.storage import (
    InputError,
    atomic_write,
    fail,
    json_writer,
    load_arrays,
    npz_writer,
    open_regular,
    save_arrays,
    save_figure,
    save_file_set,
    writable_folder,
)

FILES = os.path.dirname(os.path.abspath(__file__))
# in --out_dir: every file the demo wrote there, after each step; a later run removes those
# files and no others, and refuses a folder that holds any other
DEMO_FILES = "demo_files.json"

# The demo trains with train_cgan.py's --preset small (width 16, batches of 16, faster rates than
# the original's: config.PRESETS says why); its flags below change those values.
SMALL = config.resolve("xray", "small")
LESION_STRENGTH, HAZE_STRENGTH = 0.6, 0.4

DEFAULT_MINUTES = 9.5  # the whole demo's budget, within 10 minutes on 2 CPU cores
# The --minutes -> epochs plan, measured on 2 CPU cores (an AVX2 AMD EPYC; bench_epoch.py).
SECONDS_PER_BATCH = 0.137  # compiled step, batch 16, width 16 (0.130 in bench_epoch.py); scaled by batch and width**2
REFERENCE_FILTERS, REFERENCE_BATCH = 16, 16
# accuracies, sample grid, model files, training state, loss curves
SECONDS_PER_EPOCH_END = 0.7
# phantoms, preparation, the classifier, TensorFlow's start and the first step's tracing in
# train_cgan.py, the heatmaps and averaged deltas of 3 epochs, their evaluation, the saliency maps,
# the two sanity runs, the judge, the explainer's start and explanations, and the comparison (each
# step's time is printed after it)
OTHER_STEPS_SECONDS = 170.0

AVERAGE_LATENTS = 1000
# explain_image.py --explainer in the demo: this many held-out images per finding (all of them at
# the default --n: 20% of 300)
EXPLAIN_N = 60
# the explainer (train_explainer.py): its share of the training time, its settings, and the plan's
# measured seconds a step (2 CPU cores, width 16, batch 16) and at each epoch's end (files, figure)
EXPLAINER_SHARE = 0.38
# width 8 and a ramp: from a tenth of the penalties, strong ones from the start hold the change at 0
# (files/RESULTS.md, "Explaining each patient"); 40 epochs of 720 phantoms (1,800 steps) end past
# the ramp's 1,500; the switched images' L1 at 1, not 3: the judge called 0.90 of the switched viral
# phantoms healthy, at 3 0.78 (files/RESULTS.md)
EXPLAINER_FLAGS = {"filters": 8, "lr": 0.0005, "l1_weight": 1.0, "ramp_steps": 1500}
# on real X-rays (--data_dir) design c, which switched more of them than the U-Net (files/RESULTS.md,
# "Design c on the real X-rays"): the GAN trained on the classifier's training rows only, an encoder
# to its latent (train_explainer.py --architecture inversion), each held-out X-ray's generator tuned
# to it (pivotal tuning) and the label pushed half its step past healthy (--exaggerate); the
# projection's steps from the encoder's latent before the tuning switched a few more than none
XRAY_ENCODER_FLAGS = {"architecture": "inversion", "filters": 16, "lr": 0.001}
XRAY_ENCODER_EPOCHS = 20
XRAY_PROJECTION_STEPS, XRAY_TUNE_STEPS, XRAY_EXAGGERATE = 100, 100, 0.5
SECONDS_PER_ENCODER_IMAGE = 0.0022  # an encoder epoch over 2,927 X-rays took 6.5 s (2-core AVX-512 EPYC)
SECONDS_PER_TUNED_IMAGE = 0.8  # explain_image.py --steps 100 --tune_steps 100, per X-ray (the demo on the same machine)
SECONDS_PER_EXPLAINER_STEP, SECONDS_PER_EXPLAINER_EPOCH_END = 0.066, 0.8  # bench_explainer.py, width 8
# the judge: another architecture and seed on the classifier's split; no map is computed from it
JUDGE_ARCHITECTURE = "vgg"
HELD_OUT_SHARE = 0.2  # train_classifier.py's --held_out: the images train_explainer.py does not see
# --data_dir: the classifier, the judge, TensorFlow's starts and explain_image.py's curves on about 500 X-rays
XRAY_OTHER_STEPS_SECONDS = 240.0
EVALUATE_N = 200  # generated images per class and epoch in the demo's evaluation (evaluate.py's default: 500)
MIN_PER_CLASS = 8  # evaluate.py's measures need 8 real images of each class (evaluation.MIN_REAL_PER_CLASS)
METHODS = ("gradcam", "cam", "ig", "ig_blur", "ig_reference")
METHOD_NAMES = {"delta": "delta", "gradcam": "Grad-CAM", "cam": "CAM", "ig": "IG (black baseline)",
                "ig_blur": "IG (blurred baseline)", "ig_reference": "IG (healthy-mean baseline)",
                "mean_diff": "class-mean difference"}
# IG's headline: from the healthy mean. The black baseline erases dark regions (a lung pixel is
# near black, so its attribution is near 0 whatever the classifier reads there); the healthy mean
# asks what the delta asks, what the finding adds to a healthy chest.
IG_HEADLINE = "ig_reference"
# explain_image.py --classifier's measures that need no masks, reported per finding
MEASURE_KEYS = ("recon_ssim", *(f"{judge}{key}" for judge in ("", "judge_") for key in (
    "recon_agree", "flip_rate", *(f"{curve}_auc_{name}" for curve in ("deletion", "insertion") for name in CURVE_MAPS))))
# the curves' maps as the tables name them: the explainer's change is explain_image.py's delta
MAP_NAMES = {"delta": "explainer", "gradcam": "Grad-CAM", "ig": "IG (black baseline)",
             "mean_diff": "class-mean difference", "random": "random"}


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--out_dir", "--work_dir", dest="out_dir", default="demo_run",
                   help="folder for everything the demo writes (default %(default)s)")
    p.add_argument("--data_dir", help="your own X-rays, prepare_xrays.py's output: train the classifier, the judge, the "
                                      "GAN and its encoder on them and explain every held-out viral and bacterial X-ray")
    p.add_argument("--minutes", type=cli.number(0, low_open=True), default=DEFAULT_MINUTES,
                   help="wall-time budget of the whole demo")
    p.add_argument("--epochs", type=cli.POSITIVE, help="train the GAN this many epochs (default: as --minutes allows)")
    p.add_argument("--explainer_epochs", type=cli.POSITIVE,
                   help=f"train the explainer this many epochs (default: as --minutes allows; with --data_dir the "
                        f"encoder, {XRAY_ENCODER_EPOCHS})")
    p.add_argument("--n", type=cli.integer(MIN_PER_CLASS), default=300,
                   help=f"phantoms per class (healthy, viral, bacterial), at least {MIN_PER_CLASS}")
    p.add_argument("--filters", type=cli.POSITIVE, default=SMALL.filters,
                   help="width of the GAN's conv layers (default %(default)s; original: 128)")
    p.add_argument("--n_batch", type=cli.integer(2), default=SMALL.n_batch,
                   help="train_cgan.py's batch, even (default %(default)s; original: 64)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the phantoms, the training and the heatmaps")
    p.add_argument("--heatmap_epochs", type=cli.POSITIVE, default=3,
                   help="draw and score the heatmaps of this many last epochs")
    p.add_argument("--n_samples", type=cli.POSITIVE, default=3, help="latent pairs per heatmap (10 images each)")
    p.add_argument("--evaluate_n", type=cli.integer(8), default=EVALUATE_N,
                   help="generated images per class and epoch in the evaluation (default %(default)s)")
    p.add_argument("--explain_n", type=cli.POSITIVE, default=EXPLAIN_N,
                   help="held-out viral and bacterial phantoms each projected and switched to healthy (explain_image.py)")
    p.add_argument("--average_latents", type=cli.POSITIVE, default=AVERAGE_LATENTS,
                   help="latents of each generator's averaged delta (default %(default)s)")
    p.add_argument("--lesion_strength", type=cli.number(0, 1), default=LESION_STRENGTH, help="make_phantoms.py's")
    p.add_argument("--haze_strength", type=cli.number(0, 1), default=HAZE_STRENGTH, help="make_phantoms.py's")
    p.add_argument("--lesion_place", choices=LESION_PLACES, default="any",
                   help="make_phantoms.py's: fixed (the right lower lobe) or any (either lung, either zone)")
    p.add_argument("--d_lr", type=cli.RATE, default=SMALL.d_lr, help="train_cgan.py's (default %(default)s; original: 0.00004)")
    p.add_argument("--g_lr", type=cli.RATE, default=SMALL.g_lr, help="train_cgan.py's (default %(default)s; original: 0.0002)")
    p.add_argument("--d_beta1", type=cli.BETA, default=SMALL.d_beta1, help="train_cgan.py's (default %(default)s; original: 0.08)")
    p.add_argument("--label_smoothing", type=cli.number(0, 1, low_open=True), default=SMALL.label_smoothing,
                   metavar="TARGET", help="train_cgan.py's (default %(default)s: none)")
    p.add_argument("--diff_augment", type=cli.comma_list(config.AUGMENTATIONS), default=SMALL.diff_augment,
                   metavar="POLICY", help="train_cgan.py's: DiffAugment's operations (default: none)")
    p.add_argument("--mode_seeking", type=cli.number(0), default=SMALL.mode_seeking, metavar="WEIGHT",
                   help="train_cgan.py's: MSGAN's mode-seeking term (default %(default)s; original: 0, off)")
    p.add_argument("--mixed_precision", action="store_true", help="train in bfloat16")
    return p.parse_args(argv)


def check_args(args):
    if args.n_batch % 2:
        raise InputError(f"--n_batch must be even (two half batches), got {args.n_batch}")
    if args.mode_seeking and args.n_batch % 4:
        raise InputError(f"--mode_seeking trains on pairs of latents in each half of the batch: --n_batch must be "
                         f"a multiple of 4, got {args.n_batch} (or --mode_seeking 0)")
    if 3 * args.n < args.n_batch:
        raise InputError(f"--n {args.n} gives {3 * args.n} images, fewer than one batch of {args.n_batch}; "
                         f"use --n {-(-args.n_batch // 3)} or more")


def training_seconds(minutes, other_seconds=OTHER_STEPS_SECONDS):
    return max(0.0, minutes * 60 - other_seconds)


def planned_epochs(minutes, n_images, filters, n_batch=SMALL.n_batch):
    """The GAN's epochs that fit its share of the budget: see the module docstring. InputError
    when not one does."""
    step = SECONDS_PER_BATCH * (n_batch / REFERENCE_BATCH) * (filters / REFERENCE_FILTERS) ** 2
    epoch = (n_images // n_batch) * step + SECONDS_PER_EPOCH_END
    epochs = int(training_seconds(minutes) * (1 - EXPLAINER_SHARE) / epoch)
    if epochs < 1:
        least = math.ceil((OTHER_STEPS_SECONDS + epoch / (1 - EXPLAINER_SHARE)) / 6) / 10  # minutes, up to a tenth
        raise InputError(f"--minutes {minutes:g} cannot be met: the steps besides training take about "
                         f"{OTHER_STEPS_SECONDS / 60:g} minutes and a GAN epoch {epoch:.0f} s more; give --minutes "
                         f"{least:g} or more, or --epochs")
    return epochs


def training_plan(args):
    """(epochs, how they were chosen): --epochs, or as many as --minutes allows."""
    if args.epochs is not None:
        return args.epochs, "--epochs"
    return planned_epochs(args.minutes, 3 * args.n, args.filters, args.n_batch), f"planned for --minutes {args.minutes:g}"


def planned_explainer_epochs(seconds, n_training_images, settings=EXPLAINER_FLAGS):
    """The explainer's epochs that fit `seconds` (at least 1), at the settings' batch."""
    batch = settings.get("n_batch", config.ExplainerConfig().n_batch)
    epoch = (n_training_images // batch) * SECONDS_PER_EXPLAINER_STEP + SECONDS_PER_EXPLAINER_EPOCH_END
    return max(1, int(seconds / epoch))


def planned_xray_gan_epochs(seconds, n_training_images, n_held_out, encoder_epochs, filters, n_batch):
    """--data_dir: the GAN's epochs (at least 1) that fit `seconds` once the encoder's epochs and
    the tuning of n_held_out X-rays are paid for."""
    left = seconds - encoder_epochs * n_training_images * SECONDS_PER_ENCODER_IMAGE - n_held_out * SECONDS_PER_TUNED_IMAGE
    step = SECONDS_PER_BATCH * (n_batch / REFERENCE_BATCH) * (filters / REFERENCE_FILTERS) ** 2
    return max(1, int(left / ((n_training_images // n_batch) * step + SECONDS_PER_EPOCH_END)))


def training_config(args):
    """The training's config: the small preset, with the demo's flags."""
    return config.resolve("xray", "small", filters=args.filters, n_batch=args.n_batch, d_lr=args.d_lr,
                          g_lr=args.g_lr, d_beta1=args.d_beta1, label_smoothing=args.label_smoothing,
                          diff_augment=args.diff_augment, mode_seeking=args.mode_seeking)


def demo_entries(work_dir):
    """Every file, link or other entry that is no folder under work_dir (links not followed),
    relative to it, sorted; the demo's manifest aside."""

    def unreadable(error):
        raise error

    entries = []
    for folder, dirs, files in os.walk(work_dir, onerror=unreadable):
        links = [name for name in dirs if os.path.islink(os.path.join(folder, name))]
        entries += [os.path.relpath(os.path.join(folder, name), work_dir) for name in files + links]
    return sorted(entry for entry in entries if entry != DEMO_FILES)


def listed_files(work_dir):
    """The files the demo's manifest in work_dir lists; InputError without one."""
    path = os.path.join(work_dir, DEMO_FILES)
    if not os.path.lexists(path):
        raise InputError(f"{work_dir} is not empty and holds no demo run ({DEMO_FILES}); pick another --out_dir")
    try:
        with open_regular(path) as f:
            files = json.load(f)["files"]
        if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
            raise TypeError("its files are not a list of names")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise InputError(f"{path}: not the demo's list of its files ({type(e).__name__}: {e})") from e
    return set(files)


def record_files(work_dir):
    """List every file now under work_dir in its manifest, DEMO_FILES: the files the next run may remove."""
    atomic_write(os.path.join(work_dir, DEMO_FILES), json_writer({"files": demo_entries(work_dir)}))


def prepare_work_dir(work_dir):
    """Create the work folder, or clear an earlier demo's files from it: those its manifest
    (DEMO_FILES) lists, and only when every file there is one of them (a folder holding anything
    else is refused, untouched). Epochs of a longer earlier run would otherwise be heatmapped as
    if this run made them."""
    present = demo_entries(work_dir) if os.path.isdir(work_dir) else []
    if present:
        strangers = [entry for entry in present if entry not in listed_files(work_dir)]
        if strangers:
            more = f" and {len(strangers) - 1} more" if len(strangers) > 1 else ""
            raise InputError(f"{os.path.join(work_dir, strangers[0])}{more}: not listed in {DEMO_FILES}, so not the "
                             "demo's (or written by a demo killed mid-step): move it or pick another --out_dir")
    writable_folder(work_dir)
    for entry in present:
        os.remove(os.path.join(work_dir, entry))
    folders = {parent for entry in present for parent in _parents(entry)}
    for folder in sorted(folders, key=lambda f: -f.count(os.sep)):  # the deepest first
        with contextlib.suppress(OSError):  # a folder that holds more stays
            os.rmdir(os.path.join(work_dir, folder))
    record_files(work_dir)


def _parents(entry):
    parent = os.path.dirname(entry)
    while parent:
        yield parent
        parent = os.path.dirname(parent)


def run_step(script, *args):
    """Run files/<script> as a user would, its output streaming, then its wall time; return its exit status."""
    shown = shlex.join(["python", os.path.join("files", script), *map(str, args)])
    print(f"\n$ {shown}", flush=True)
    start = time.monotonic()
    status = subprocess.run([sys.executable, os.path.join(FILES, script), *map(str, args)], check=False).returncode
    print(f"({script}: {time.monotonic() - start:.1f} s)", flush=True)
    return status


def recorded_steps(work_dir):
    """run_step, then the step's files go into the demo's manifest in work_dir."""

    def step(script, *args):
        status = run_step(script, *args)
        record_files(work_dir)
        return status

    return step


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


def train_classifier_and_judge(step, data_dir, paths, seed):
    """train_classifier.py twice on one split: the classifier (the maps' source) and the judge."""
    require(step("train_classifier.py", "--dataset", "xray", "--data_dir", data_dir, "--out_dir", paths["classifier"],
                     "--seed", seed), "train_classifier.py")
    require(step("train_classifier.py", "--dataset", "xray", "--data_dir", data_dir, "--out_dir", paths["judge"],
                     "--architecture", JUDGE_ARCHITECTURE, "--seed", seed + 1, "--split_from",
                     os.path.join(paths["classifier"], HELD_OUT_FILE)), "train_classifier.py")


def train_gan(step, args, data_dir, results, epochs):
    """train_cgan.py at the small preset with the demo's flags; the complete epochs it saved."""
    train_args = ["--dataset", "xray", "--data_dir", data_dir, "--out_dir", results, "--epochs_goal", epochs,
                  "--preset", "small", "--seed", args.seed, "--real_plots", 2]
    for name, value in config.differences(training_config(args), "xray", "small").items():
        train_args += [f"--{name}", value]
    status = step("train_cgan.py", *train_args, *(["--mixed_precision"] if args.mixed_precision else []))
    if status == cli.EXIT_TOO_MANY_REBUILDS:
        print("training stopped early (collapse guard); the demo goes on with the epochs saved", flush=True)
    else:
        require(status, "train_cgan.py")
    return run_folder.complete_epochs(results)


def train_explainer(step, data_dir, paths, epochs, seed, settings=EXPLAINER_FLAGS):
    flags = [item for name, value in settings.items()
             for item in ((f"--{name}",) if value is True else (f"--{name}", value))]
    if settings.get("architecture") == "inversion":
        flags += ["--model", paths["generator"]]
    require(step("train_explainer.py", "--dataset", "xray", "--data_dir", data_dir, "--out_dir", paths["explainer"],
                     "--held_out_from", os.path.join(paths["classifier"], HELD_OUT_FILE), "--epochs_goal", epochs,
                     "--seed", seed, "--overwrite", *flags), "train_explainer.py")


def explain_held_out(step, data_dir, paths, label, indices_file, out_dir, seed, *flags):
    """explain_image.py --explainer on the held-out images of one class, switched to healthy, with
    the classifier's measures and maps and the judge's measures."""
    xray = DATASETS["xray"]
    require(step(
        "explain_image.py", "--explainer", paths["explainer"], "--dataset", "xray",
        "--npz", os.path.join(data_dir, xray.images_file), "--labels_npz", os.path.join(data_dir, xray.labels_file),
        "--indices_from", indices_file, "--to", HEALTHY, "--rows", 4, "--seed", seed,
        "--classifier", os.path.join(paths["classifier"], CLASSIFIER_FILE),
        "--judge", os.path.join(paths["judge"], CLASSIFIER_FILE), "--out_dir", out_dir, *flags), "explain_image.py")


def run_demo(args, epochs, explainer_epochs):
    """The steps, training the GAN `epochs` epochs and the explainer `explainer_epochs`; returns
    the paths the comparison reads."""
    w = args.out_dir

    step = recorded_steps(w)

    paths = {key: os.path.join(w, key) for key in
             ("results", "heatmaps", "heatmaps_randomized", "classifier", "judge", "explainer", "saliency",
              "saliency_randomized", "evaluation", "explained")}
    require(step(
        "make_phantoms.py", "--out_dir", w, "--n", args.n, "--seed", args.seed, "--lesion_strength",
        args.lesion_strength, "--haze_strength", args.haze_strength, "--lesion_place", args.lesion_place,
    ), "make_phantoms.py")
    require(step("prepare_xrays.py", "--images", os.path.join(w, "chest_xray"), "--out_dir", w), "prepare_xrays.py")
    train_classifier_and_judge(step, w, paths, args.seed)

    results = paths["results"]
    epochs = train_gan(step, args, w, results, epochs)[-args.heatmap_epochs:]
    heatmap_args = ["--dataset", "xray", "--data_dir", w, "--models_dir", results, "--seed", args.seed,
                    "--average", args.average_latents]
    require(step("heatmaps.py", *heatmap_args, "--out_dir", paths["heatmaps"], "--epochs", *epochs,
                     "--n_samples", args.n_samples), "heatmaps.py")
    classifier = os.path.join(paths["classifier"], "classifier.keras")
    require(step("evaluate.py", "--dataset", "xray", "--data_dir", w, "--models_dir", results, "--classifier",
                     classifier, "--out_dir", paths["evaluation"], "--epochs", *epochs, "--n", args.evaluate_n,
                     "--seed", args.seed), "evaluate.py")
    saliency_args = ["--dataset", "xray", "--data_dir", w, "--classifier", classifier,
                     "--labels", VIRAL, BACTERIAL, "--seed", args.seed]
    require(step("saliency.py", *saliency_args, "--out_dir", paths["saliency"]), "saliency.py")
    train_explainer(step, w, paths, explainer_epochs, args.seed)
    for label in (BACTERIAL, VIRAL):
        held_out = load_arrays(saliency_path(paths["saliency"], label), ("indices",), "saliency.py")[0][:args.explain_n]
        indices_file = os.path.join(paths["explained"], f"held_out_{label}.npz")
        writable_folder(paths["explained"])
        save_arrays(indices_file, indices=held_out)
        explain_held_out(step, w, paths, label, indices_file, os.path.join(paths["explained"], FINDINGS[label]), args.seed)
    # the sanity check: the same maps from re-initialized weights (the last epoch's generator)
    require(step("heatmaps.py", *heatmap_args, "--out_dir", paths["heatmaps_randomized"], "--epochs", epochs[-1],
                     "--n_samples", 1, "--randomized_weights"), "heatmaps.py")
    require(step("saliency.py", *saliency_args, "--out_dir", paths["saliency_randomized"], "--randomized_weights"),
            "saliency.py")
    heatmap_names = [os.path.join(paths["heatmaps"], os.path.basename(run_folder.model_paths(results, epoch)["generator"]))
                     for epoch in epochs]
    paths["heatmap_files"] = [name + ".npz" for name in heatmap_names]
    paths["average_files"] = [name + ".average.npz" for name in heatmap_names]
    last = os.path.basename(heatmap_names[-1])
    paths["random_average_files"] = [os.path.join(paths["heatmaps_randomized"], last + ".average.npz")]
    return paths


# ---------------------------------------------------------------- the comparison


def explained_path(paths, finding):
    return os.path.join(paths["explained"], finding, "explain_img_align_xray.npz")


def saliency_path(folder, label):
    return os.path.join(folder, f"saliency_{label}.npz")


def mean_differences(images, labels):
    """{label: the class-mean difference against healthy} of the prepared training images, for
    the bacterial and viral classes."""
    return {label: class_mean_difference(images, labels, label) for label in (BACTERIAL, VIRAL)}


def compare(paths, ground_truth, n_latents, painted, mean_diffs):
    """Score every map; returns (table rows, RESULT scores). `painted` are today's scores of the
    interpolation heatmaps (pooled_scores), shown beside the averaged delta's; mean_diffs the
    class-mean differences (mean_differences), scored as every held-out image's map."""
    lesion, lungs = load_arrays(ground_truth, ("lesion", "lungs"), "make_phantoms.py")
    delta = score_average_arrays(*pooled_average(paths["average_files"]), lesion, lungs)
    random_delta = score_average_arrays(*pooled_average(paths["random_average_files"]), lesion, lungs)
    rows, result = [], {}
    for label, finding in ((BACTERIAL, "lesion"), (VIRAL, "lungs")):
        _, saliency = score_saliency(saliency_path(paths["saliency"], label), ground_truth, METHODS,
                                     {"mean_diff": mean_diffs[label]})
        _, random_saliency = score_saliency(saliency_path(paths["saliency_randomized"], label), ground_truth, METHODS)
        n_images = saliency["gradcam"]["image"]["n"]
        today = painted["bacterial_in_lesion" if finding == "lesion" else "viral_in_lungs"]
        rows.append(("delta", finding, f"{len(paths['heatmap_files'])} interpolation heatmaps", {"painted": today}))
        rows.append(("delta", finding, f"mean of {len(paths['average_files'])} x {n_latents} latents", delta[finding]))
        explained = score_explained(explained_path(paths, finding), ground_truth)[1]
        measures = explained_measures(explained_path(paths, finding))
        rows.append(("explainer", finding, f"per image (n={explained['n']})", explained))
        rows.append(("class-mean difference", finding, "no model", saliency["mean_diff"]["class"]))
        for method in METHODS:
            rows.append((METHOD_NAMES[method], finding, "class mean", saliency[method]["class"]))
        for method in (*METHODS, "mean_diff"):
            rows.append((METHOD_NAMES[method], finding, f"per image (n={n_images})", saliency[method]["image"]))
        rows.append(("delta, re-initialized", finding, f"mean of {n_latents} latents", random_delta[finding]))
        for method in METHODS:
            rows.append((f"{METHOD_NAMES[method]}, re-initialized", finding, "class mean", random_saliency[method]["class"]))
        mean_diff = saliency["mean_diff"]
        result.update({
            f"delta_auc_{finding}": delta[finding]["auc"],
            **{f"{method}_auc_{finding}": saliency[method]["class"]["auc"] for method in METHODS},
            f"delta_energy_{finding}": delta[finding]["energy"],
            f"gradcam_energy_{finding}": saliency["gradcam"]["class"]["energy"],
            f"delta_painted_{finding}": delta[finding]["painted"],
            f"gradcam_image_auc_{finding}": saliency["gradcam"]["image"]["auc"],
            f"gradcam_image_energy_{finding}": saliency["gradcam"]["image"]["energy"],
            f"random_delta_auc_{finding}": random_delta[finding]["auc"],
            f"random_gradcam_auc_{finding}": random_saliency["gradcam"]["class"]["auc"],
            f"mean_diff_auc_{finding}": mean_diff["class"]["auc"],
            f"mean_diff_energy_{finding}": mean_diff["class"]["energy"],
            f"mean_diff_image_auc_{finding}": mean_diff["image"]["auc"],
            f"mean_diff_image_energy_{finding}": mean_diff["image"]["energy"],
            f"explain_image_auc_{finding}": explained["auc"],
            f"explain_image_energy_{finding}": explained["energy"],
            f"explain_recon_ssim_{finding}": measures["recon_ssim"],
            f"explain_flip_rate_{finding}": measures["judge_flip_rate"],
            f"explain_outside_change_{finding}": explained["outside"],
            f"{finding}_image_area": saliency["gradcam"]["image"]["area"],
            **{f"{key}_{finding}": measures[key] for key in MEASURE_KEYS},
        })
    return rows, result


def result_line(painted, compared, accuracy, minutes, collapsed, coverage):
    """The RESULT line: today's keys first, the comparison's keys, then the rest; collapsed: the
    number of classes evaluate.py flags collapsed at the last epoch; coverage: that epoch's
    precision and recall, means over the classes."""
    keys = ["delta_auc_lesion", "gradcam_auc_lesion", "cam_auc_lesion", "ig_auc_lesion",
            "delta_auc_lungs", "gradcam_auc_lungs", "cam_auc_lungs", "ig_auc_lungs",
            "delta_energy_lesion", "gradcam_energy_lesion", "delta_energy_lungs", "gradcam_energy_lungs"]
    values = {**painted, **{key: compared[key] for key in keys}, "classifier_accuracy": accuracy}
    for key in ("explain_recon_ssim", "explain_flip_rate", "explain_outside_change"):  # both findings' images
        values[key] = (compared[f"{key}_lesion"] + compared[f"{key}_lungs"]) / 2
    for key in ("delta_painted_lesion", "delta_painted_lungs", "gradcam_image_auc_lesion", "gradcam_image_auc_lungs",
                "random_delta_auc_lesion", "random_gradcam_auc_lesion", "random_delta_auc_lungs", "random_gradcam_auc_lungs",
                *(f"mean_diff_{score}_{finding}" for score in ("auc", "energy", "image_auc", "image_energy")
                  for finding in ("lesion", "lungs")),
                *(f"{method}_auc_{finding}" for method in ("ig_blur", "ig_reference") for finding in ("lesion", "lungs")),
                *(f"explain_image_{score}_{finding}" for score in ("auc", "energy") for finding in ("lesion", "lungs")),
                *(f"explain_{score}_{finding}" for score in ("recon_ssim", "flip_rate", "outside_change")
                  for finding in ("lesion", "lungs")),
                "gradcam_image_energy_lesion", "gradcam_image_energy_lungs",
                *(f"{key}_{finding}" for finding in ("lesion", "lungs") for key in MEASURE_KEYS)):
        values[key] = compared[key]
    return " ".join(["RESULT", *(f"{key}={value:.4f}" for key, value in values.items()),
                     f"collapsed_classes={collapsed}", f"gen_precision={coverage['precision']:.4f}",
                     f"gen_recall={coverage['recall']:.4f}", f"minutes={minutes:.2f}"])


def measure_lines(compared):
    """explain_image.py's measures per finding: a table of the curves' areas by map, as the
    classifier and as the judge read them."""
    header = f"  {'finding':<8}{'map':<24}{'deletion AUC':>14}{'insertion AUC':>15}{'judge: deletion':>17}{'insertion':>11}"
    lines = [header]
    for finding in ("lesion", "lungs"):
        for name in CURVE_MAPS:
            lines.append(f"  {finding:<8}{MAP_NAMES.get(name, name):<24}"
                         + "".join(f"{compared[f'{judge}{curve}_auc_{name}_{finding}']:>{width}.3f}"
                                   for judge, curve, width in (("", "deletion", 14), ("", "insertion", 15),
                                                               ("judge_", "deletion", 17), ("judge_", "insertion", 11))))
        lines.append(f"  {finding}: the images under their own label have SSIM {compared[f'recon_ssim_{finding}']:.3f} "
                     f"with the given ones; the classifier / the judge give {compared[f'recon_agree_{finding}']:.3f} / "
                     f"{compared[f'judge_recon_agree_{finding}']:.3f} of them their label (recon_agree), "
                     f"{compared[f'flip_rate_{finding}']:.3f} / {compared[f'judge_flip_rate_{finding}']:.3f} of the "
                     "images switched to healthy the label healthy (flip_rate)")
    return lines


def comparison_figure(paths, images, labels, ground_truth, mean_diffs, path):
    """Per finding: the class's mean phantom, the true region, the averaged delta, the class-mean
    difference, and the mean Grad-CAM, CAM and IG of its held-out images (each map on its own scale)."""
    # matplotlib loads when needed, so --help answers at once
    from cganlib import plots

    xray = DATASETS["xray"]
    lesion, lungs = load_arrays(ground_truth, ("lesion", "lungs"), "make_phantoms.py")
    average_labels, mean, _ = pooled_average(paths["average_files"])
    at = {int(label): k for k, label in enumerate(average_labels)}
    rows, row_names = [], []
    for label, truth in ((BACTERIAL, lesion), (VIRAL, lungs)):
        maps = load_arrays(saliency_path(paths["saliency"], label), METHODS, "saliency.py")
        rows.append([("grey", images[labels == label].mean(axis=0)[..., 0] / 255.0),
                     ("mask", truth.astype(bool).any(axis=0)),
                     ("signed", mean[at[label], at[HEALTHY]]),
                     ("signed", mean_diffs[label]),
                     *(("signed", class_map(method_maps)) for method_maps in maps)])
        row_names.append(f"{xray.class_names[label]}: {FINDINGS[label]}")
    columns = ["mean phantom", "true region", "averaged delta\n(vs healthy)", "class-mean\ndifference", "mean Grad-CAM",
               "mean CAM", "mean IG\n(black)", "mean IG\n(blurred)", "mean IG\n(healthy mean)"]
    fig = plots.panel_grid(rows, row_names, columns)
    save_figure(fig, path, dpi=plots.DPI)
    plots.show_or_close(fig, False)


def evaluation_summary(path):
    """(a line per class, the labels flagged collapsed at the last epoch, the last epoch's
    precision and recall averaged over the classes) of evaluate.py's csv."""
    # SciPy loads when needed
    from cganlib.gan_metrics import (
        class_summaries,
        collapsed_classes,
        last_epoch_means,
        read_csv,
    )

    rows = read_csv(path)
    return class_summaries(rows, DATASETS["xray"].class_names), collapsed_classes(rows), last_epoch_means(rows)


def print_outputs(w, paths):
    print(f"\noutputs in {w}/:")
    print(f"  phantoms       {os.path.join(w, 'chest_xray')}  (truth: {os.path.join(w, GROUND_TRUTH)})")
    print(f"  training set   {os.path.join(w, 'img_align_xray.npz')}, real samples in "
          f"{os.path.join(paths['results'], 'real_plots')}")
    print(f"  classifier     {paths['classifier']}: classifier.keras, held_out.npz")
    print(f"  training       {paths['results']}: generator_model_NNN.h5, generated_plot_eNNN.png, history.csv, losses.png")
    print(f"  evaluation     {paths['evaluation']}: evaluation.csv, evaluation.png")
    print(f"  heatmaps       {paths['heatmaps']}: " + ", ".join(os.path.basename(p)[:-4] + ".png" for p in paths["heatmap_files"])
          + ", and their .average.png")
    print(f"  saliency maps  {paths['saliency']}: saliency_1.npz, saliency_2.npz")
    print(f"  sanity check   {paths['heatmaps_randomized']}, {paths['saliency_randomized']}")
    print(f"  comparison     {os.path.join(w, 'comparison.png')}")


def held_out_of_class(paths, labels_file, label):
    """The classifier's held-out rows of one class."""
    (held_out,) = load_arrays(os.path.join(paths["classifier"], HELD_OUT_FILE), ("held_out",), "train_classifier.py")
    (labels,) = load_arrays(labels_file, ("arr_0",), "prepare_xrays.py")
    return held_out[labels[held_out] == label]


def gan_training_set(data_dir, held_out_file, out_dir):
    """The X-rays but the classifier's held-out ones, prepared as prepare_xrays.py prepares them,
    so that the GAN never sees a patient it will explain (train_cgan.py trains on every row)."""
    xray = DATASETS["xray"]
    images, labels = load_prepared(xray, data_dir)
    keep = training_rows(held_out_file, len(labels))
    writable_folder(out_dir)
    save_file_set(out_dir, manifest_file(xray.name), {xray.images_file: npz_writer(images[keep]),
                                                       xray.labels_file: npz_writer(labels[keep])})
    return len(keep)


def explain_xrays(args, start):
    """--data_dir: the classifier and the judge (split by patient), design c in what the budget
    leaves (the GAN on the training rows, the encoder to its latent), every held-out viral and
    bacterial X-ray tuned and switched to healthy; the RESULT line."""
    w, data_dir = args.out_dir, args.data_dir
    paths = {key: os.path.join(w, key) for key in ("classifier", "judge", "gan_data", "results", "explainer", "explained")}
    xray, step = DATASETS["xray"], recorded_steps(w)
    train_classifier_and_judge(step, data_dir, paths, args.seed)
    held_out_file = os.path.join(paths["classifier"], HELD_OUT_FILE)
    n_training = gan_training_set(data_dir, held_out_file, paths["gan_data"])
    n_held_out = load_arrays(held_out_file, ("held_out",), "train_classifier.py")[0].size
    encoder_epochs = args.explainer_epochs or XRAY_ENCODER_EPOCHS
    seconds = training_seconds(args.minutes, XRAY_OTHER_STEPS_SECONDS + (time.monotonic() - start))
    epochs = args.epochs or planned_xray_gan_epochs(seconds, n_training, n_held_out, encoder_epochs, args.filters,
                                                    args.n_batch)
    print(f"the GAN: {epochs} epochs on {n_training} X-rays ({'--epochs' if args.epochs else 'planned for the budget left'}); "
          f"the encoder: {encoder_epochs} epochs", flush=True)
    done = train_gan(step, args, paths["gan_data"], paths["results"], epochs)
    paths["generator"] = run_folder.model_paths(paths["results"], done[-1])["generator"]
    train_explainer(step, data_dir, paths, encoder_epochs, args.seed, XRAY_ENCODER_FLAGS)
    scores = {}
    for label, name in ((VIRAL, "viral"), (BACTERIAL, "bacterial")):
        indices_file = os.path.join(paths["explained"], f"held_out_{label}.npz")
        writable_folder(paths["explained"])
        save_arrays(indices_file, indices=held_out_of_class(paths, os.path.join(data_dir, xray.labels_file), label))
        out_dir = os.path.join(paths["explained"], name)
        explain_held_out(step, data_dir, paths, label, indices_file, out_dir, args.seed, "--steps", XRAY_PROJECTION_STEPS,
                         "--tune_steps", XRAY_TUNE_STEPS, "--exaggerate", XRAY_EXAGGERATE)
        measures = explained_measures(os.path.join(out_dir, f"explain_{os.path.splitext(xray.images_file)[0]}.npz"))
        scores.update({f"judge_flip_rate_{name}": measures["judge_flip_rate"],
                       f"explain_recon_ssim_{name}": measures["recon_ssim"],
                       **{f"judge_deletion_auc_{key}_{name}": measures[f"judge_deletion_auc_{curve_map}"]
                          for key, curve_map in (("explain", "delta"), ("gradcam", "gradcam"), ("random", "random"))}})
    print(f"\noutputs in {w}/: classifier/, judge/, gan_data/ (the GAN's training X-rays), results/ (the GAN), "
          "explainer/ (the encoder: run_config.json, explainer_NNN.weights.h5, switched_eNNN.png), "
          "explained/viral/, explained/bacterial/ (explain_img_align_xray.png and .npz)")
    minutes = (time.monotonic() - start) / 60
    print(" ".join(["RESULT", *(f"{key}={value:.4f}" for key, value in scores.items()), f"minutes={minutes:.2f}"]),
          flush=True)


def main(argv=None):
    start = time.monotonic()
    args = parse_args(argv)
    with cli.exit_on_bad_input():
        check_args(args)
        epochs, plan = (None, None) if args.data_dir else training_plan(args)
        prepare_work_dir(args.out_dir)
        if args.data_dir:
            try:
                explain_xrays(args, start)
            except KeyboardInterrupt:
                fail("interrupted", status=cli.EXIT_INTERRUPTED)
            finally:
                with contextlib.suppress(OSError):
                    record_files(args.out_dir)
            return
    n_images = 3 * args.n
    explainer_epochs = args.explainer_epochs or planned_explainer_epochs(
        training_seconds(args.minutes) * EXPLAINER_SHARE, int(n_images * (1 - HELD_OUT_SHARE)))
    print(f"demo training settings: {n_images} phantoms ({args.n} per class), lesion_strength={args.lesion_strength:g} "
          f"lesion_place={args.lesion_place} "
          f"haze_strength={args.haze_strength:g}; width {args.filters}, {epochs} epochs ({plan}) of "
          f"{n_images // args.n_batch} batches of {args.n_batch}, d_lr={args.d_lr:g} g_lr={args.g_lr:g} d_beta1={args.d_beta1:g}"
          f"{', bfloat16' if args.mixed_precision else ''}; the explainer {explainer_epochs} epochs; seed {args.seed}",
          flush=True)
    ground_truth = os.path.join(args.out_dir, GROUND_TRUTH)
    try:
        with cli.exit_on_bad_input():
            paths = run_demo(args, epochs, explainer_epochs)
            print(f"\nscores against {ground_truth} (paint threshold 0.2):", flush=True)
            painted = pooled_scores(paths["heatmap_files"], ground_truth)
            images, labels = load_prepared(DATASETS["xray"], args.out_dir)  # the training set, checked
            mean_diffs = mean_differences(images, labels)
            rows, compared = compare(paths, ground_truth, args.average_latents, painted, mean_diffs)
            (accuracy,) = load_arrays(os.path.join(paths["classifier"], "held_out.npz"), ("accuracy",), "train_classifier.py")
            comparison_figure(paths, images, labels, ground_truth, mean_diffs,
                              os.path.join(args.out_dir, "comparison.png"))
    except KeyboardInterrupt:
        fail("interrupted", status=cli.EXIT_INTERRUPTED)
    finally:  # what a step stopped halfway wrote, and the comparison
        with contextlib.suppress(OSError):
            record_files(args.out_dir)
    print(f"\nevery map against the ground truth (classifier's held-out accuracy {float(accuracy):.4f}); lesion: the "
          "bacterial-vs-healthy maps against the lesion region, lungs: the viral-vs-healthy maps against the lung fields")
    print("\n".join(score_table(rows)))
    print(f"IG's headline baseline: {METHOD_NAMES[IG_HEADLINE]}: the black one erases dark regions (a lung pixel is "
          "near black, so IG gives it little whatever the classifier reads there); the healthy mean asks what the "
          "delta asks, what the finding adds to a healthy chest")
    print("\nthe same held-out images without their masks (explain_image.py --classifier): the classifier's "
          "probability of the image's class as its pixels, in each map's order, are blurred away (deletion, lower is "
          "better) or put back (insertion, higher is better); these ask the classifier, so they favour its own "
          "Grad-CAM and IG")
    print("\n".join(measure_lines(compared)))
    print("\nthe generators against the real phantoms, mean over the heatmapped epochs [real against real]:")
    summaries, collapsed, coverage = evaluation_summary(os.path.join(paths["evaluation"], "evaluation.csv"))
    for line in summaries:
        print("  " + line)
    print(f"chance: ROC-AUC 0.5; energy, pointing and painted share score the region's area: lesion "
          f"{painted['lesion_area']:.3f}, lungs {painted['lung_area']:.3f} (the union regions); per image, "
          f"the image's own mask: lesion {compared['lesion_image_area']:.3f}, lungs {compared['lungs_image_area']:.3f} on average")
    print_outputs(args.out_dir, paths)
    minutes = (time.monotonic() - start) / 60
    print(result_line(painted, compared, float(accuracy), minutes, len(collapsed), coverage), flush=True)


if __name__ == "__main__":
    main()

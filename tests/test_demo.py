"""demo.py end to end at a tiny setting, its refusals of bad input, and its minutes -> epochs plan."""

import csv
import json
import os
import re

import numpy as np
import pytest

from cganlib.storage import InputError
from demo import planned_epochs, planned_explainer_epochs, planned_xray_gan_epochs
from helpers import auc_by_hand, error_line, make_phantom_set

RESULT_KEYS = (
    "bacterial_in_lesion", "lesion_area", "viral_in_lungs", "lung_area",  # today's
    "delta_auc_lesion", "gradcam_auc_lesion", "cam_auc_lesion", "ig_auc_lesion",
    "delta_auc_lungs", "gradcam_auc_lungs", "cam_auc_lungs", "ig_auc_lungs",
    "delta_energy_lesion", "gradcam_energy_lesion", "delta_energy_lungs", "gradcam_energy_lungs", "classifier_accuracy",
    "delta_painted_lesion", "delta_painted_lungs", "gradcam_image_auc_lesion", "gradcam_image_auc_lungs",
    "random_delta_auc_lesion", "random_gradcam_auc_lesion", "random_delta_auc_lungs", "random_gradcam_auc_lungs",
    "mean_diff_auc_lesion", "mean_diff_auc_lungs", "mean_diff_energy_lesion", "mean_diff_energy_lungs",
    "mean_diff_image_auc_lesion", "mean_diff_image_auc_lungs", "mean_diff_image_energy_lesion",
    "mean_diff_image_energy_lungs", "ig_blur_auc_lesion", "ig_blur_auc_lungs", "ig_reference_auc_lesion",
    "ig_reference_auc_lungs", "explain_image_auc_lesion", "explain_image_auc_lungs", "explain_image_energy_lesion",
    "explain_image_energy_lungs",
    *(f"explain_{score}_{finding}" for score in ("recon_ssim", "flip_rate", "outside_change")
      for finding in ("lesion", "lungs")),
    "gradcam_image_energy_lesion", "gradcam_image_energy_lungs",
    *(f"{key}_{finding}" for finding in ("lesion", "lungs") for key in (
        "recon_ssim", *(f"{judge}{measure}" for judge in ("", "judge_") for measure in (
            "recon_agree", "flip_rate", *(f"{curve}_auc_{name}" for curve in ("deletion", "insertion")
                                          for name in ("delta", "gradcam", "ig", "mean_diff", "random")))))),
    "collapsed_classes", "gen_precision", "gen_recall", "minutes",
)
# the explainer's pooled keys come right after the classifier's accuracy
POOLED = ("explain_recon_ssim", "explain_flip_rate", "explain_outside_change")
RESULT_KEYS = (*RESULT_KEYS[:RESULT_KEYS.index("classifier_accuracy") + 1], *POOLED,
               *RESULT_KEYS[RESULT_KEYS.index("classifier_accuracy") + 1:])
RESULT = re.compile("RESULT " + " ".join(rf"{key}=(\S+)" for key in RESULT_KEYS))


@pytest.mark.slow
def test_tiny_demo_writes_every_output_and_a_result_line(run, tmp_path):
    work = tmp_path / "demo"
    done = run("demo.py", "--work_dir", work, "--n", 22, "--epochs", 1, "--explainer_epochs", 1, "--filters", 8,
               "--n_samples", 1, "--average_latents", 64, "--evaluate_n", 8, "--explain_n", 4)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "absl::InitializeLog" not in done.stderr and "cudart_stub" not in done.stderr  # TensorFlow's start-up lines
    for name in (
        "ground_truth.npz", "chest_xray/train/NORMAL/IM-0001-0001.jpeg",
        "chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg", "chest_xray/train/PNEUMONIA/person2_virus_1.jpeg",
        "img_align_xray.npz", "labels_align_xray.npz", "results/real_plots/real_plot_e001.png",
        "results/generator_model_001.h5", "results/generator_model_gan001.h5", "results/generator_model_dis001.h5",
        "results/generated_plot_e001.png", "results/history.csv", "results/losses.png",
        "heatmaps/generator_model_001.h5.png", "heatmaps/generator_model_001.h5.npz",
        "heatmaps/generator_model_001.h5.average.png", "heatmaps/generator_model_001.h5.average.npz",
        "classifier/classifier.keras", "classifier/held_out.npz", "saliency/saliency_1.npz", "saliency/saliency_2.npz",
        "heatmaps_randomized/generator_model_001.h5.average.npz", "saliency_randomized/saliency_2.npz", "comparison.png",
        "evaluation/evaluation.csv", "evaluation/evaluation.png",
        "explained/lesion/explain_img_align_xray.npz", "explained/lungs/explain_img_align_xray.npz",
        "explained/lesion/explain_img_align_xray.png", "judge/classifier.keras", "judge/held_out.npz",
        "explainer/run_config.json", "explainer/explainer_001.weights.h5", "explainer/switched_e001.png",
    ):
        assert os.path.isfile(work / name), name
    # every step's command is shown, and the settings the training ran with
    for script in ("make_phantoms.py", "prepare_xrays.py", "train_classifier.py", "train_cgan.py", "heatmaps.py",
                   "evaluate.py", "saliency.py", "train_explainer.py", "explain_image.py"):
        assert f"$ python files/{script}" in done.stdout
    assert "--randomized_weights" in done.stdout  # the sanity check's runs
    assert "width 8, 1 epochs" in done.stdout and "the explainer 1 epochs" in done.stdout
    assert "--architecture vgg" in done.stdout and "--explainer" in done.stdout and "--judge" in done.stdout
    # the table: every method against both findings, with the chance levels
    for method in ("delta", "explainer", "class-mean difference", "Grad-CAM", "CAM", "IG (black baseline)",
                   "IG (blurred baseline)", "IG (healthy-mean baseline)", "delta, re-initialized",
                   "Grad-CAM, re-initialized"):
        for finding in ("lesion", "lungs"):
            assert re.search(rf"^{re.escape(method)} +{finding} ", done.stdout, re.MULTILINE), (method, finding)
    assert "chance: ROC-AUC 0.5" in done.stdout
    for finding in ("lesion", "lungs"):  # explain_image.py --classifier's measures, a row per map
        for name in ("explainer", "Grad-CAM", "IG (black baseline)", "class-mean difference", "random"):
            assert re.search(rf"^  {finding} +{re.escape(name)} +\S+ +\S+ +\S+ +\S+$", done.stdout, re.MULTILINE), (
                finding, name)
    # the evaluation's summary: a line per class, the heatmapped epoch's measures beside the floor
    for name in ("healthy", "viral", "bacter"):
        assert re.search(rf"^  {name} \(epochs 1\): label_accuracy \S+ \[\S+\], diversity_gen ", done.stdout,
                         re.MULTILINE), name
    last = done.stdout.strip().splitlines()[-1]
    match = RESULT.fullmatch(last)
    assert match, last
    scores = dict(zip(RESULT_KEYS, map(float, match.groups())))
    assert all(0 <= value <= 1 for key, value in scores.items() if key not in ("minutes", "collapsed_classes"))
    for key in POOLED:  # both findings' images
        assert scores[key] == pytest.approx((scores[f"{key}_lesion"] + scores[f"{key}_lungs"]) / 2, abs=2e-4)
    assert match.group(RESULT_KEYS.index("collapsed_classes") + 1) in ("0", "1", "2", "3")
    assert 0 < scores["lesion_area"] < scores["lung_area"] < 1  # the consolidation lies inside the lungs
    assert scores["minutes"] >= 0  # the demo's wall time (test_claims.py checks it on a clock of its own)
    # the scores are those of the files this run wrote, recounted here by hand
    for key, value in scores_of_the_files(work).items():
        assert scores[key] == pytest.approx(value, abs=2e-4), key


def scores_of_the_files(work):
    """Some of the RESULT scores, from the demo's files: the painted shares of epoch 1's heatmap,
    the ROC-AUCs of its averaged delta (and the re-initialized one's), of the mean Grad-CAM and of
    the class-mean difference against the union regions; the classifier's held-out accuracy; the
    classes evaluate.py's table says collapsed at the last epoch and its precision and recall
    there, means over the classes."""
    with np.load(work / "ground_truth.npz") as truth:
        regions = {"lesion": truth["lesion"].astype(bool).any(axis=0), "lungs": truth["lungs"].astype(bool).any(axis=0)}
    pair = {"lesion": (2, 0), "lungs": (1, 0)}  # bacterial, viral brighter than healthy
    scores = {}
    with np.load(work / "heatmaps" / "generator_model_001.h5.npz") as heatmap:
        assert heatmap["labels"].tolist() == [0, 1, 2]
        for key, finding in (("bacterial_in_lesion", "lesion"), ("viral_in_lungs", "lungs")):
            painted = heatmap["deltas"][pair[finding]] > 0.2
            scores[key] = (painted & regions[finding]).sum() / max(painted.sum(), 1)
    for prefix, folder in (("delta", "heatmaps"), ("random_delta", "heatmaps_randomized")):
        with np.load(work / folder / "generator_model_001.h5.average.npz") as average:
            for finding in ("lesion", "lungs"):
                scores[f"{prefix}_auc_{finding}"] = auc_by_hand(average["mean"][pair[finding]], regions[finding])
    with np.load(work / "saliency" / "saliency_2.npz") as maps:  # the bacterial images' maps, against the lesion
        gradcam = maps["gradcam"] / np.maximum(np.abs(maps["gradcam"]).max(axis=(1, 2), keepdims=True), 1e-30)
        scores["gradcam_auc_lesion"] = auc_by_hand(gradcam.mean(axis=0), regions["lesion"])
    with np.load(work / "img_align_xray.npz") as images, np.load(work / "labels_align_xray.npz") as labels:
        grey, label = images["arr_0"].astype(np.float64) / 255, labels["arr_0"]
        viral_minus_healthy = (grey[label == 1].mean(axis=0) - grey[label == 0].mean(axis=0)).sum(axis=-1)
        scores["mean_diff_auc_lungs"] = auc_by_hand(viral_minus_healthy, regions["lungs"])
    with np.load(work / "classifier" / "held_out.npz") as held_out:
        scores["classifier_accuracy"] = float(held_out["accuracy"])
    with open(work / "evaluation" / "evaluation.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["epoch"] == "1" and row["label"] != "all"]
    assert len(rows) == 3
    scores["collapsed_classes"] = sum(
        1 - float(row["diversity_gen"]) < 0.5 * (1 - float(row["diversity_real"])) for row in rows)
    for key in ("precision", "recall"):
        scores[f"gen_{key}"] = np.mean([float(row[key]) for row in rows])
    return scores


@pytest.mark.parametrize("args, message", [
    (("--n", 0), "--n: must be at least 8, got 0"),
    (("--n", 8, "--n_batch", 28), "fewer than one batch of 28"),
    (("--n_batch", 7), "--n_batch must be even"),
    (("--n_batch", 6), "--n_batch must be a multiple of 4, got 6 (or --mode_seeking 0)"),
    (("--mode_seeking", -1), "--mode_seeking: must be at least 0, got -1"),
    (("--minutes", -1), "--minutes: must be above 0, got -1"),
    (("--epochs", 0), "--epochs: must be at least 1, got 0"),
])
def test_bad_input_is_one_line_exit_2(run, tmp_path, args, message):
    done = run("demo.py", "--work_dir", tmp_path / "demo", *args)
    assert message in error_line(done.returncode, done.stderr)
    assert not (tmp_path / "demo").exists()


def test_refuses_a_folder_that_is_not_a_demo_run(run, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = run("demo.py", "--work_dir", tmp_path, "--epochs", 1)
    assert done.returncode == 2 and "holds no demo run" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_more_minutes_plan_more_epochs_and_wider_models_fewer():
    assert planned_epochs(30, 900, 16) > planned_epochs(15, 900, 16) > planned_epochs(15, 900, 32) >= 1
    with pytest.raises(InputError, match=r"--minutes 0.1 cannot be met: .* give --minutes 3.1 or more, or --epochs"):
        planned_epochs(0.1, 900, 16)  # a budget smaller than the fixed steps and one epoch


def test_the_explainers_plan_counts_its_batches():
    assert planned_explainer_epochs(1500, 2927, {"n_batch": 32}) > planned_explainer_epochs(1500, 2927, {"n_batch": 16})
    assert planned_explainer_epochs(1, 2927) == 1


def test_the_xray_gans_plan_pays_for_the_encoder_and_the_tuning_first():
    """demo.py --data_dir: the GAN gets what the encoder's epochs and the tuning of each held-out
    X-ray leave; at least one epoch."""
    base = planned_xray_gan_epochs(1500, 2927, 700, 20, 16, 16)
    assert planned_xray_gan_epochs(1500, 2927, 100, 20, 16, 16) > base > planned_xray_gan_epochs(1500, 2927, 700, 60, 16, 16)
    assert planned_xray_gan_epochs(1500, 2927, 700, 20, 32, 16) < base
    assert planned_xray_gan_epochs(10, 2927, 700, 20, 16, 16) == 1


XRAY_RESULT_KEYS = (*(f"{key}_{name}" for name in ("viral", "bacterial") for key in (
    "judge_flip_rate", "explain_recon_ssim", "judge_deletion_auc_explain", "judge_deletion_auc_gradcam",
    "judge_deletion_auc_random")), "minutes")


@pytest.mark.slow
def test_the_demo_explains_your_own_xrays(run, tmp_path):
    """--data_dir: the classifier and the judge on one patient split, the GAN on the other X-rays,
    the encoder to it, every held-out viral and bacterial X-ray tuned and switched to healthy, and
    the RESULT line of their measures."""
    import prepare_xrays

    make_phantom_set(tmp_path / "raw", 10, 128)
    data = tmp_path / "data"
    prepare_xrays.main(["--images", str(tmp_path / "raw" / "chest_xray"), "--out_dir", str(data)])
    work = tmp_path / "demo"
    done = run("demo.py", "--data_dir", data, "--out_dir", work, "--epochs", 1, "--explainer_epochs", 1, "--n_batch", 4)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("classifier/classifier.keras", "judge/classifier.keras", "results/generator_model_001.h5",
                 "explainer/explainer_001.weights.h5", "explained/viral/explain_img_align_xray.npz",
                 "explained/bacterial/explain_img_align_xray.png"):
        assert os.path.isfile(work / name), name
    with np.load(work / "classifier" / "held_out.npz") as split, np.load(data / "img_align_xray.npz") as images, \
            np.load(work / "gan_data" / "img_align_xray.npz") as gan_images:
        keep = np.setdiff1d(np.arange(len(images["arr_0"])), split["held_out"])
        assert np.array_equal(gan_images["arr_0"], images["arr_0"][keep])  # the GAN never sees a held-out X-ray
    config = json.loads((work / "explainer" / "run_config.json").read_text())
    assert config["config"]["architecture"] == "inversion"
    assert config["flags"]["model"] == str(work / "results" / "generator_model_001.h5")
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch("RESULT " + " ".join(rf"{key}=(\S+)" for key in XRAY_RESULT_KEYS), last)
    assert match, last
    scores = dict(zip(XRAY_RESULT_KEYS, map(float, match.groups())))
    with np.load(work / "classifier" / "held_out.npz") as split, np.load(data / "labels_align_xray.npz") as labels:
        held_out = split["held_out"][labels["arr_0"][split["held_out"]] == 1]
    with np.load(work / "explained" / "viral" / "explain_img_align_xray.npz") as saved:
        assert np.array_equal(saved["indices"], held_out)  # every held-out viral X-ray
        assert scores["judge_flip_rate_viral"] == pytest.approx(np.mean(saved["judge_relabelled_classes"] == 0),
                                                                abs=1e-4)
        assert scores["explain_recon_ssim_viral"] == pytest.approx(saved["ssim"].mean(), abs=1e-4)

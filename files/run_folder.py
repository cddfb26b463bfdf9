"""A training run's folder (placeholder until the run-folder work lands): generator files."""

import os
import re

from storage import InputError


def generator_files(models_dir):
    """(epoch, path) of the generators in models_dir, by epoch: every .h5 whose name has
    neither `_gan` nor `_dis`, its epoch the first number in the name."""
    if not os.path.isdir(models_dir):
        raise InputError(f"models folder {models_dir} not found")
    found = []
    for name in os.listdir(models_dir):
        number = re.search(r"\d+", name.removesuffix(".h5"))  # not the 5 of ".h5"
        # hidden names include the temporary files of writes still in progress
        if name.endswith(".h5") and "_gan" not in name and "_dis" not in name and not name.startswith(".") and number:
            found.append((int(number.group()), os.path.join(models_dir, name)))
    found.sort()
    if not found:
        raise InputError(f"no generator .h5 files in {models_dir}")
    return found


def model_paths(results_dir, epoch):
    """The three files of an epoch, by the original's names."""
    return {
        "generator": os.path.join(results_dir, f"generator_model_{epoch:03d}.h5"),
        "gan": os.path.join(results_dir, f"generator_model_gan{epoch:03d}.h5"),
        "discriminator": os.path.join(results_dir, f"generator_model_dis{epoch:03d}.h5"),
    }


def complete_epochs(results_dir):
    """Epochs whose generator and discriminator files both exist."""
    if not os.path.isdir(results_dir):
        return []
    return sorted(epoch for epoch, _ in generator_files(results_dir)
                  if os.path.exists(model_paths(results_dir, epoch)["discriminator"]))
